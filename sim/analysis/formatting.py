"""How numbers are written in tables: the CLI and the HTML report show the same cells."""

from __future__ import annotations

import math

import pandas as pd


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
        if unit == "" and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if unit == "s":
            return f"{value * 1000:.1f} ms" if abs(value) < 1 else f"{value:.3f} s"
        if unit == "%":
            return f"{value * 100:.1f} %"
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
    return f"{mean:.2f} ± {half:.2f}"
