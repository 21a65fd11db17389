"""Confidence intervals over replications, paired comparisons, and automatic warm-up detection.

**Intervals.** A run of a scenario is one replication; its summary metrics (mean latency, p99,
throughput, ...) are single observations. Replications with distinct seeds are independent and
identically distributed, so the Student-t interval over their values is an honest interval for
the metric's expected value (the replication/deletion approach, Law, *Simulation Modeling and
Analysis*, 5th ed., §9.4). Nothing here assumes independence *within* a run.

**Paired comparisons.** Replication r of every topology uses the same seed, hence the same
arrivals and service-time draws (common random numbers). The per-replication differences
(topology − reference) are therefore i.i.d. across replications, and the t interval over them
is the paired-t interval (Law §10.2.1). Because the two topologies' values are positively
correlated, it is usually much narrower than the Welch interval that treats the samples as
independent; both half-widths are reported so the gain is visible.

**Warm-up: MSER-5** (White, "An effective truncation heuristic for bias reduction in simulation
output", *Simulation* 69(6), 1997; White, Cobb & Spratt, WSC 2000). The output series (e.g.
workflow latencies in arrival order) is cut into batches of 5 consecutive observations
Z_1..Z_m. For each truncation d, the statistic

    MSER(d) = sum_{i>d} (Z_i − mean(Z_{d+1..m}))² / (m − d)²

estimates the squared standard error of the truncated mean; it falls while deleting biased
early batches and rises once deleting only throws away data. The chosen d minimises it over
d ≤ m/2 (the usual restriction: a minimum in the second half means the run is too short to
tell, and the statistic is unstable when few batches remain). 5·d observations are deleted.

Pure functions over numpy and pandas; no simulation engine is imported.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MSER_BATCH = 5


@dataclass(frozen=True)
class Interval:
    """A Student-t confidence interval for a mean; ``half_width`` is NaN when n < 2."""

    mean: float
    half_width: float
    low: float
    high: float
    n: int
    confidence: float


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _t_quantile(confidence: float, df: float) -> float:
    from scipy import stats  # (imported here: it adds about 0.6 s to the start of every command)

    return float(stats.t.ppf(0.5 + confidence / 2.0, df))


def _floats(values: Iterable[float]) -> np.ndarray:
    """Values as a float array, with missing values (None, pd.NA) as NaN."""
    if not isinstance(values, np.ndarray | pd.Series | pd.api.extensions.ExtensionArray):
        values = list(values)
    return pd.Series(values, dtype="Float64").to_numpy(dtype=float, na_value=np.nan)


def t_interval(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """Student-t interval for the mean of i.i.d. values (one per replication); NaNs are dropped.

    A replication may lack a value (say, no workflow completed), so NaNs are skipped rather than
    poisoning the interval; ``n`` says how many values were used.
    """
    _check_confidence(confidence)
    x = _floats(values)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0, confidence)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, math.nan, 1, confidence)
    half = _t_quantile(confidence, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, half, mean - half, mean + half, n, confidence)


def _groups(frame: pd.DataFrame, by: Sequence[str]) -> Iterable[tuple[tuple[Any, ...], pd.DataFrame]]:
    """Groups of ``frame`` by ``by`` in order of first appearance (one group when ``by`` is empty)."""
    if not by:
        yield (), frame
        return
    for key, group in frame.groupby(list(by), sort=False, dropna=False):
        yield (key if isinstance(key, tuple) else (key,)), group


def aggregate(
    tidy: pd.DataFrame, by: Sequence[str], metrics: Sequence[str], confidence: float = 0.95
) -> pd.DataFrame:
    """One row per group: each metric's mean over replications and its t interval.

    ``tidy`` holds one row per (group, replication). Output columns: the ``by`` columns, then per
    metric ``<metric>``, ``<metric>_low``, ``<metric>_high``, ``<metric>_half_width``, then ``n``
    (rows in the group; a metric's NaNs are dropped from its own interval). Groups keep the order
    in which they first appear, so topologies stay in scenario order.
    """
    _check_confidence(confidence)
    missing = [c for c in [*by, *metrics] if c not in tidy.columns]
    if missing:
        raise KeyError(f"columns not in the frame: {missing}")
    rows = []
    for key, group in _groups(tidy, by):
        row: dict[str, Any] = dict(zip(by, key))
        for m in metrics:
            iv = t_interval(group[m], confidence)
            row[m] = iv.mean
            row[f"{m}_low"] = iv.low
            row[f"{m}_high"] = iv.high
            row[f"{m}_half_width"] = iv.half_width
        row["n"] = len(group)
        rows.append(row)
    columns = [*by, *(f"{m}{s}" for m in metrics for s in ("", "_low", "_high", "_half_width")), "n"]
    return pd.DataFrame(rows, columns=columns)


def welch_half_width(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of the Welch interval for mean(a) − mean(b), treating a and b as independent."""
    _check_confidence(confidence)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = a.size, b.size
    if na < 2 or nb < 2:
        return math.nan
    va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
    se2 = va + vb
    if se2 == 0.0:
        return 0.0
    df = se2**2 / (va**2 / (na - 1) + vb**2 / (nb - 1))  # Welch–Satterthwaite
    return _t_quantile(confidence, df) * math.sqrt(se2)


def paired_differences(
    tidy: pd.DataFrame,
    reference: str,
    metrics: Sequence[str],
    confidence: float = 0.95,
    by: Sequence[str] = (),
    topology_col: str = "topology",
    replication_col: str = "replication",
) -> pd.DataFrame:
    """Per-replication differences (topology − reference) of each metric, with their t interval.

    Rows are matched on the replication (and on ``by``, e.g. a sweep point): with common random
    numbers the matched values are positively correlated and their difference varies far less
    than either value. Replications missing on either side, or with a NaN on either side, are
    left out of that metric's pair count ``n``. ``unpaired_half_width`` is the Welch interval of
    the same values treated as independent samples, to show what pairing gains.
    """
    _check_confidence(confidence)
    by = list(by)
    keys = [*by, replication_col]
    missing = [c for c in [*keys, topology_col, *metrics] if c not in tidy.columns]
    if missing:
        raise KeyError(f"columns not in the frame: {missing}")
    topologies = list(pd.unique(tidy[topology_col]))
    if reference not in topologies:
        raise ValueError(f"reference topology {reference!r} not in the frame (have {topologies})")
    duplicated = tidy.duplicated([*keys, topology_col])
    if duplicated.any():
        raise ValueError(f"several rows per ({', '.join([*keys, topology_col])}): cannot pair them")
    ref = tidy[tidy[topology_col] == reference][[*keys, *metrics]]
    rows = []
    for key, group in _groups(tidy, by):
        for topology in pd.unique(group[topology_col]):
            if topology == reference:
                continue
            other = group[group[topology_col] == topology][[*keys, *metrics]]
            pairs = other.merge(ref, on=keys, suffixes=("", "__ref"))
            for m in metrics:
                x = _floats(pairs[m])
                y = _floats(pairs[f"{m}__ref"])
                ok = ~(np.isnan(x) | np.isnan(y))
                iv = t_interval(x[ok] - y[ok], confidence)
                rows.append(
                    {
                        **dict(zip(by, key)),
                        "topology": topology,
                        "reference": reference,
                        "metric": m,
                        "difference": iv.mean,
                        "low": iv.low,
                        "high": iv.high,
                        "half_width": iv.half_width,
                        "n": iv.n,
                        "unpaired_half_width": welch_half_width(x[ok], y[ok], confidence),
                    }
                )
    columns = [*by, "topology", "reference", "metric", "difference", "low", "high", "half_width", "n"]
    return pd.DataFrame(rows, columns=[*columns, "unpaired_half_width"])


def _decimals(half_width: float) -> int:
    """Decimals that show the half-width to 1 or 2 significant digits (Particle Data Group rule:
    2 digits when its leading three digits are below 355, else 1), never fewer than 0."""
    exponent = math.floor(math.log10(half_width))
    leading = half_width / 10.0 ** (exponent - 2)  # in [100, 1000)
    digits = 2 if leading < 355 else 1
    return max(0, digits - 1 - exponent)


def _number(value: float, decimals: int | None) -> str:
    text = f"{value:.3g}" if decimals is None else f"{value:.{decimals}f}"
    if text.startswith("-") and float(text) == 0.0:
        text = text[1:]  # no "−0"
    return text.replace("-", "\N{MINUS SIGN}")


def format_difference(
    row: Mapping[str, Any] | pd.Series, unit_scale: float = 1000.0, unit: str = "ms"
) -> str:
    """One row of :func:`paired_differences` as text, e.g. ``p99: b − a = −42 ms [−48, −37]``.

    Values are multiplied by ``unit_scale`` (seconds → ms by default; use 1 and ``"/s"`` for
    rates) and rounded to the precision the interval supports, so no digit is spurious.
    """
    scale = float(unit_scale)
    diff = float(row["difference"]) * scale
    half = float(row["half_width"]) * scale
    head = f"{row['metric']}: {row['topology']} \N{MINUS SIGN} {row['reference']} = "
    suffix = f" {unit}" if unit else ""
    if math.isnan(diff):
        return f"{head}n/a"
    if math.isnan(half):
        return f"{head}{_number(diff, None)}{suffix} [no interval: n = {int(row['n'])}]"
    # An interval far narrower than the value (a nearly constant difference) needs no more
    # than 4 significant digits of the value itself.
    negligible = half == 0 or half < 1e-4 * abs(diff)
    decimals = None if negligible else _decimals(half)
    if negligible and diff != 0:
        decimals = max(0, 3 - math.floor(math.log10(abs(diff))))
    low, high = float(row["low"]) * scale, float(row["high"]) * scale
    return f"{head}{_number(diff, decimals)}{suffix} [{_number(low, decimals)}, {_number(high, decimals)}]"


def mser5(values: Sequence[float] | np.ndarray) -> int:
    """MSER-5 truncation point: how many leading observations to delete (a multiple of 5).

    See the module docstring for the method (White 1997). Observations after the last full batch
    of 5 are ignored by the statistic. Fewer than two batches: nothing is deleted. Warns when the
    minimum sits at the end of the searched half, a sign the run is too short for its transient.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError("mser5 expects a one-dimensional series")
    if not np.isfinite(x).all():
        raise ValueError("mser5 expects finite values (drop NaNs first)")
    m = x.size // MSER_BATCH
    if m < 2:
        return 0
    z = x[: m * MSER_BATCH].reshape(m, MSER_BATCH).mean(axis=1)
    z = z - z.mean()  # centring keeps the running-sum formula below accurate
    # Sums over the kept batches z[d:], for every d at once.
    s1 = np.cumsum(z[::-1])[::-1]
    s2 = np.cumsum((z * z)[::-1])[::-1]
    kept = m - np.arange(m)
    sse = np.maximum(s2 - s1 * s1 / kept, 0.0)
    stat = sse / kept.astype(float) ** 2
    last = m // 2
    d = int(np.argmin(stat[: last + 1]))
    if d == last and last > 0:
        warnings.warn(
            "MSER-5 minimum at the end of the searched half of the series: "
            "the run is probably too short for its initial transient",
            RuntimeWarning,
            stacklevel=2,
        )
    return MSER_BATCH * d


def mser5_warmup(times: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray) -> float:
    """Warm-up time chosen by MSER-5: the time of the first observation it keeps (0.0 if none cut).

    ``times`` are the observation instants in non-decreasing order (e.g. workflow arrivals) and
    ``values`` the matching observations (e.g. latencies); pairs whose value is NaN (workflows
    that did not complete) are dropped first. Use the result as the scenario's ``warmup``.
    """
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError("times and values must be one-dimensional and of equal length")
    if np.any(np.diff(t) < 0):
        raise ValueError("times must be sorted (non-decreasing)")
    keep = ~np.isnan(v)
    t, v = t[keep], v[keep]
    cut = mser5(v)
    return float(t[cut]) if cut > 0 else 0.0
