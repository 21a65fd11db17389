"""How numbers are written for people: the one place every table and sentence gets its text.

The CLI table, the HTML report and the recommendation sentences all show the same quantities
(latencies, shares, rates, counts); writing each kind in one function here keeps them identical
wherever they appear, and keeps the choices (ms below 1 s, shares as %, a minus sign rather than
a hyphen) in one place. Every function takes plain values (NaN, None and ``pd.NA`` count as
missing and read ``-``) and returns plain text; escaping for HTML is the template's business.
"""

from __future__ import annotations

import math

import pandas as pd

MINUS = "\N{MINUS SIGN}"
"""The sign of a negative margin: a true minus, which reads better than a hyphen."""


def missing(value: object) -> bool:
    """None, pd.NA and NaN of any kind (numpy scalars included)."""
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def cell(value: object, unit: str = "") -> str:
    """A cell as ``sim run`` prints it (seconds below 1 s in ms, fractions as %)."""
    if missing(value):
        return "-"
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        value = float(value) if unit else value
    if isinstance(value, float):
        if abs(value) >= 1e15:  # beyond any measured quantity: a stated extreme, kept short
            return f"{value:.4g}{' ' + unit if unit else ''}"
        if unit == "" and value.is_integer():
            return str(int(value))
        if unit == "s":
            return f"{value * 1000:.1f} ms" if abs(value) < 1 else f"{value:.3f} s"
        if unit == "%":
            return f"{value * 100:.1f} %"
        if unit == "money":  # prices per 1,000 workflows may be fractions of a cent
            return f"{value:,.4g}"
        return f"{value:.2f}"
    return str(value)


def cell_interval(mean: float, half: float, unit: str) -> str:
    """``mean ± half`` with the unit written once (seconds shown in ms below 1 s)."""
    if math.isnan(half):
        return cell(mean, unit)
    if unit == "s":
        scale, suffix = (1000.0, " ms") if abs(mean) < 1 else (1.0, " s")
        return f"{mean * scale:.1f} ± {half * scale:.1f}{suffix}"
    if unit == "%":
        return f"{mean * 100:.1f} ± {half * 100:.1f} %"
    if unit == "money":
        return f"{mean:,.4g} ± {half:.2g}"
    return f"{mean:.2f} ± {half:.2f}"


def as_stated(value: object) -> str:
    """A value shown as it was stated (e.g. a verdict read back from ``meta.json``, whose unit is
    unknown): ``-`` when missing, a float in its shortest form, anything else as text."""
    if missing(value):
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def quantity(value: object, unit: str, like: object = None) -> str:
    """A measured value of an objective in its unit: seconds (``s``) as ms below 1 s, shares
    (``%``) as percent, rates (``/s``) per second, anything else with 4 significant digits.

    ``like`` is the value whose size picks the scale, so the bounds of an interval read in the
    same unit as its mean (``[980.0 ms, 1.020 s]`` would be hard to compare)."""
    if missing(value):
        return "-"
    number = float(value)  # type: ignore[arg-type]
    ref = number if missing(like) else float(like)  # type: ignore[arg-type]
    if unit == "s":
        return f"{number * 1000:.1f} ms" if abs(ref) < 1 else f"{number:.3f} s"
    if unit == "%":
        return f"{number * 100:.2f} %"
    if unit == "/s":
        return f"{number:.2f} /s"
    return f"{number:.4g}{(' ' + unit) if unit else ''}"


def target(value: object, unit: str) -> str:
    """A target as the user stated it, in the unit of :func:`quantity` but without padding
    digits: ``0.5`` s reads ``500 ms``, not ``500.0 ms``, so it matches the scenario file."""
    if missing(value):
        return "-"
    number = float(value)  # type: ignore[arg-type]
    if unit == "s":
        return f"{number * 1000:g} ms" if abs(number) < 1 else f"{number:g} s"
    if unit == "%":
        return f"{number * 100:g} %"
    if unit == "/s":
        return f"{number:g} /s"
    return f"{number:g}{(' ' + unit) if unit else ''}"


def margin(value: object, relative: object, unit: str) -> str:
    """The signed distance to a target on the good side (negative: missed), e.g. ``+100.0 ms
    (+20%)``; shares are differences of percentages, so they read in percentage points. The
    bracket, the margin relative to the target, is left out when it is missing or infinite."""
    if missing(value):
        return "-"
    number = float(value)  # type: ignore[arg-type]
    sign = "+" if number >= 0 else MINUS
    if unit == "%":
        text = f"{sign}{abs(number) * 100:.2f} points"
    else:
        text = sign + quantity(abs(number), unit)
    share = percent(relative, signed=True)
    return f"{text} ({share})" if share else text


def percent(relative: object, signed: bool = False) -> str:
    """A size relative to a target as a percentage (``+20%``); empty when there is none (a
    target of zero, a missing value). Beyond a million percent it is written in powers of ten
    (a target of a microsecond missed by a second), never as ``inf%``."""
    if missing(relative):
        return ""
    rel = float(relative)  # type: ignore[arg-type]
    if not math.isfinite(rel):
        return ""
    sign = ("+" if rel >= 0 else MINUS) if signed else ("" if rel >= 0 else MINUS)
    share = abs(rel) * 100
    return f"{sign}{share:,.0f}%" if share < 1e6 else f"{sign}{share:.1e}%"


def amount(value: float, unit: str) -> str:
    """A shortfall in a sentence (the recommendation): rounder than :func:`quantity`, since it
    sits in running text beside its relative size: whole ms below 1 s, shares in points."""
    if unit == "s":
        return f"{value * 1000:.0f} ms" if abs(value) < 0.9995 else f"{value:.2f} s"
    if unit == "%":
        return f"{value * 100:.2f} points"
    return f"{value:.3g}{unit}"


def count(value: object) -> str:
    """A number of things (workflows, messages), with thousands separators; a mean over
    replications that is not whole keeps one decimal rather than pretending to be a count."""
    if missing(value):
        return "-"
    number = float(value)  # type: ignore[arg-type]
    return f"{number:,.0f}" if number.is_integer() else f"{number:,.1f}"


def factor(value: object) -> str:
    """A ratio to a baseline (e.g. retry amplification), as ``1.25×``."""
    if missing(value):
        return "-"
    return f"{float(value):.2f}×"  # type: ignore[arg-type]
