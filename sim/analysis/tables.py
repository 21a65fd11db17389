"""The side-by-side table of a run, as text cells: one builder for the CLI and the report.

One row per headline metric (mean ± interval half-width with replications), one per objective
(met or missed, with the measured value), and for a hybrid the completion of its asynchronous
steps; one cell per topology, formatted by :mod:`sim.analysis.formatting`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from sim.analysis.formatting import cell, cell_interval, missing, target

TABLE_ROWS = [
    ("arrived", "arrived", ""),
    ("completed", "completed", ""),
    ("failed", "failed", ""),
    ("compensated", "compensated", ""),
    ("inconsistent", "inconsistent", ""),
    ("lost", "lost", ""),
    ("in flight", "in_flight", ""),
    ("throughput (/s)", "throughput", ""),
    ("latency mean", "latency_mean", "s"),
    ("latency p50", "latency_p50", "s"),
    ("latency p95", "latency_p95", "s"),
    ("latency p99", "latency_p99", "s"),
    ("latency max", "latency_max", "s"),
    ("messages / workflow", "messages_per_workflow", ""),
    ("decisions / workflow", "decisions_per_workflow", ""),
    ("store writes / workflow", "store_writes_per_workflow", ""),
    ("consumer lag max", "lag_max", ""),
    ("duplicate deliveries", "duplicates", ""),
    ("dead letters", "dead_letters", ""),
    ("expired events", "expired", ""),
    ("rebalances", "rebalances", ""),
    ("duplicate effects", "duplicate_effects", ""),
    ("orphan effects", "orphan_effects", ""),
    ("bottleneck", "bottleneck", ""),
    ("bottleneck utilization", "bottleneck_utilization", "%"),
]
"""(label, summary column, unit) of the metric rows of the side-by-side table."""

OPTIONAL_ROWS = {
    "decisions_per_workflow",
    "store_writes_per_workflow",
    "lag_max",
    "duplicates",
    "dead_letters",
    "expired",
    "rebalances",
    "duplicate_effects",
    "orphan_effects",
}
"""Rows shown only when some topology has a value other than 0 there (an engine, a store, a
broker's consumer groups and their troubles)."""

ASYNC_ROWS = [("async completion p50", "async_latency_p50"), ("async completion p99", "async_latency_p99")]
"""(label, summary column) of the rows a hybrid adds: completion of its asynchronous steps."""


class TableFrames(Protocol):
    """What the side-by-side table reads of a run (an
    :class:`~sim.analysis.evaluation.Evaluation` has it)."""

    @property
    def summary(self) -> pd.DataFrame: ...

    @property
    def verdicts(self) -> pd.DataFrame: ...

    @property
    def topologies(self) -> list[str]: ...

    @property
    def replications(self) -> int: ...

    @property
    def intervals(self) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Row:
    """One row of the side-by-side table: a label and a text cell per topology; ``kind`` is
    ``metric``, ``objective`` or ``async``."""

    label: str
    cells: list[str]
    kind: str = "metric"


def bottleneck_mode(summary: pd.DataFrame, topology: str) -> object:
    """The most frequent bottleneck of a topology over replications (None if it has none)."""
    values = summary.loc[summary["topology"] == topology, "bottleneck"].dropna()
    return values.mode().iloc[0] if not values.empty else None


def _metric_rows(result: TableFrames) -> list[Row]:
    names = result.topologies
    reps = result.replications
    summary = result.summary
    first = {n: summary[summary["topology"] == n].iloc[0] for n in names}
    intervals = result.intervals.set_index("topology")
    rows = []
    for label, key, unit in TABLE_ROWS:
        if key not in summary.columns:
            continue
        if key in OPTIONAL_ROWS and not (pd.to_numeric(summary[key], errors="coerce").fillna(0) != 0).any():
            continue
        cells = []
        for name in names:
            if reps == 1 or key not in intervals.columns:
                value = (
                    first[name].get(key)
                    if key != "bottleneck" or reps == 1
                    else bottleneck_mode(summary, name)
                )
                cells.append("none" if key == "bottleneck" and missing(value) else cell(value, unit))
            else:
                mean, half = intervals.loc[name, key], intervals.loc[name, f"{key}_half_width"]
                cells.append(cell_interval(float(mean), float(half), unit))
        rows.append(Row(label, cells))
    return rows


def _objective_rows(result: TableFrames) -> list[Row]:
    """One row per objective: the target, and per topology met or missed with the value."""
    needed = {"objective", "sense", "unit", "target", "measured", "met", "topology"}
    if result.verdicts.empty or not needed <= set(result.verdicts.columns):
        return []
    rows = []
    for objective, group in result.verdicts.groupby("objective", sort=False):
        first = group.iloc[0]
        unit = {"s": "s", "%": "%"}.get(first["unit"], "")
        sign = "≤" if first["sense"] == "max" else "≥"
        verdict = group.set_index("topology")
        cells = []
        for name in result.topologies:
            if name not in verdict.index or pd.isna(verdict.loc[name, "met"]):
                cells.append("-")
                continue
            word = "met" if bool(verdict.loc[name, "met"]) else "missed"
            cells.append(f"{word} ({cell(float(verdict.loc[name, 'measured']), unit)})")
        rows.append(
            Row(f"{objective} {sign} {target(first['target'], str(first['unit']))}", cells, "objective")
        )
    return rows


def _async_rows(result: TableFrames) -> list[Row]:
    summary = result.summary
    names = result.topologies
    if "async_steps" not in summary.columns:
        return []
    if not any(bool(summary.loc[summary["topology"] == n, "async_steps"].iloc[0]) for n in names):
        return []
    return [
        Row(label, [cell(summary.loc[summary["topology"] == n, key].mean(), "s") for n in names], "async")
        for label, key in ASYNC_ROWS
        if key in summary.columns
    ]


def side_by_side_rows(result: TableFrames) -> list[Row]:
    """Every row of the side-by-side table, in the order shown."""
    return [*_metric_rows(result), *_objective_rows(result), *_async_rows(result)]
