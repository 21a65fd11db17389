"""Tables of a sweep: intervals per point, paired differences per point, and saturation.

A sweep's tidy table holds one summary row per (point, topology, replication), with the varied
factors as columns: the same rows :func:`sim.analysis.evaluation.evaluate` gives ``sim run`` for
the point's scenario. Frames in, frames out.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from sim.analysis.evaluation import COMPARED, HEADLINE
from sim.analysis.statistics import aggregate, paired_differences


def sweep_summary(tidy: pd.DataFrame, factors: Sequence[str], confidence: float) -> pd.DataFrame:
    """Per point and topology: the mean of each headline metric over replications, with its
    Student-t interval."""
    if tidy.empty:
        return pd.DataFrame()
    metrics = [m for m in HEADLINE if m in tidy.columns]
    return aggregate(tidy, ["point", *factors, "topology"], metrics, confidence)


def sweep_differences(tidy: pd.DataFrame, factors: Sequence[str], confidence: float) -> pd.DataFrame:
    """Per point: each topology minus the first, replication by replication."""
    if tidy.empty:
        return pd.DataFrame()
    topologies = list(dict.fromkeys(tidy["topology"]))
    if len(topologies) < 2:
        return pd.DataFrame()
    return paired_differences(tidy, topologies[0], COMPARED, confidence, by=["point", *factors])


def saturation(
    tidy: pd.DataFrame, factors: Sequence[str], tolerance: float = 0.01, p99_objective: float | None = None
) -> pd.DataFrame:
    """For a sweep of a load rate: per topology, the highest offered load it sustains (mean
    throughput within ``tolerance`` of the mean offered rate) and the component that saturates
    first (the bottleneck at the first point above it that it does not sustain); with a p99
    objective, also the highest load up to which every point is sustained and meets it (mean
    p99 at most the objective): the capacity at that service level. A sweep of closed-loop
    ``clients`` has none: a closed loop offers only what gets through, so it always keeps up."""
    rates = [f for f in factors if f.startswith("load.") and f.endswith(".rate")]
    if not rates or tidy.empty:
        return pd.DataFrame()
    factor = rates[0]
    others = [f for f in factors if f != factor]
    rows = []
    for keys, group in tidy.groupby(["topology", *others], sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        means = group.groupby(factor).agg(
            throughput=("throughput", "mean"),
            offered=("offered_rate", "mean"),
            latency_p99=("latency_p99", "mean"),
            bottleneck=("bottleneck", lambda s: s.mode().iloc[0] if s.notna().any() else None),
        )
        means = means.sort_index()
        sustained = means["throughput"] >= (1 - tolerance) * means["offered"]
        ok = means[sustained]
        not_ok = means[~sustained]
        highest = ok.index.max() if not ok.empty else None
        first_bad = not_ok[not_ok.index > highest] if highest is not None else not_ok
        row = dict(zip(["topology", *others], keys, strict=True))
        row.update(
            {
                "factor": factor,
                "highest_sustained": highest,
                "p99_at_highest": ok["latency_p99"].get(highest) if highest is not None else None,
                "first_unsustained": first_bad.index.min() if not first_bad.empty else None,
                "saturates_first": first_bad["bottleneck"].iloc[0] if not first_bad.empty else None,
            }
        )
        if p99_objective is not None:
            meets = sustained & (means["latency_p99"] <= p99_objective)
            upto = meets.cummin()  # every lower point meets it too
            row["p99_objective"] = p99_objective
            row["highest_meeting_p99"] = means.index[upto.to_numpy()].max() if upto.any() else None
        rows.append(row)
    return pd.DataFrame(rows)
