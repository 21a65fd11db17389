"""The side-by-side table of a run, as text cells: one builder for the CLI and the report.

One row per headline metric (mean ± interval half-width with replications), one per objective
(met or missed, with the measured value), and for a hybrid the completion of its asynchronous
steps; one cell per topology, formatted by :mod:`sim.analysis.formatting`. With more than one
workflow, a second table gives a few of the same metrics per workflow, its cells written the same
way.
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
    ("lost events", "lost_events", ""),
    ("republished events", "republished", ""),
    ("retries refused", "retries_refused", ""),
    ("deadlines missed", "deadlines", ""),
    ("client submissions", "client_submissions", ""),
    ("abandoned by clients", "abandoned", ""),
    ("client retries", "client_retries", ""),
    ("duplicate effects", "duplicate_effects", ""),
    ("orphan effects", "orphan_effects", ""),
    ("autoscaled replica-hours", "replica_hours", ""),
    ("scale-ups", "scale_ups", ""),
    ("scale-downs", "scale_downs", ""),
    ("engine shard moves", "shard_moves", ""),
    ("cost / 1k workflows", "cost_per_1k", "money"),
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
    "lost_events",
    "republished",
    "retries_refused",
    "deadlines",
    "client_submissions",
    "abandoned",
    "client_retries",
    "duplicate_effects",
    "orphan_effects",
    "cost_per_1k",
    "replica_hours",
    "scale_ups",
    "scale_downs",
    "shard_moves",
}
"""Rows shown only when some topology has a value other than 0 there (an engine, a store, a
broker's consumer groups and their troubles)."""

ASYNC_ROWS = [("async completion p50", "async_latency_p50"), ("async completion p99", "async_latency_p99")]
"""(label, summary column) of the rows a hybrid adds: completion of its asynchronous steps."""


WORKFLOW_ROWS = [
    ("completed", "completed", ""),
    ("success rate", "success_rate", "%"),
    ("latency p50", "latency_p50", "s"),
    ("latency p99", "latency_p99", "s"),
    ("duplicate effects", "duplicate_effects", ""),
]
"""(label, column of the per-workflow frame, unit) of the compact per-workflow table (the CLI's)."""

WORKFLOW_DETAIL_ROWS = [
    ("arrived", "arrived", ""),
    ("completed", "completed", ""),
    ("failed", "failed", ""),
    ("compensated", "compensated", ""),
    ("inconsistent", "inconsistent", ""),
    ("lost", "lost", ""),
    ("in flight", "in_flight", ""),
    ("success rate", "success_rate", "%"),
    ("throughput (/s)", "throughput", ""),
    ("latency mean", "latency_mean", "s"),
    ("latency p50", "latency_p50", "s"),
    ("latency p95", "latency_p95", "s"),
    ("latency p99", "latency_p99", "s"),
    ("latency max", "latency_max", "s"),
    ("effects", "effects", ""),
    ("duplicate effects", "duplicate_effects", ""),
    ("absorbed effects", "absorbed_effects", ""),
    ("undone effects", "undone_effects", ""),
    ("orphan effects", "orphan_effects", ""),
    ("inconsistency window mean", "inconsistency_window_mean", "s"),
    ("inconsistency window max", "inconsistency_window_max", "s"),
]
"""(label, column, unit) of the full per-workflow table (the report's)."""

WORKFLOW_OPTIONAL_ROWS = OPTIONAL_ROWS | {
    "absorbed_effects",
    "undone_effects",
    "inconsistency_window_mean",
    "inconsistency_window_max",
}
"""Per-workflow rows shown only when some workflow of some topology has a value other than 0."""


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


class WorkflowFrames(Protocol):
    """What the per-workflow table reads of a run (an
    :class:`~sim.analysis.evaluation.Evaluation` has it)."""

    @property
    def workflows(self) -> pd.DataFrame: ...

    @property
    def workflow_intervals(self) -> pd.DataFrame: ...

    @property
    def topologies(self) -> list[str]: ...

    @property
    def replications(self) -> int: ...


@dataclass(frozen=True)
class Row:
    """One row of the side-by-side table: a label and a text cell per topology; ``kind`` is
    ``metric``, ``objective``, ``async`` or (the per-workflow table) ``workflow``."""

    label: str
    cells: list[str]
    kind: str = "metric"


def bottleneck_mode(summary: pd.DataFrame, topology: str) -> object:
    """The most frequent bottleneck of a topology over replications (None if it has none)."""
    values = summary.loc[summary["topology"] == topology, "bottleneck"].dropna()
    return values.mode().iloc[0] if not values.empty else None


def _all_zero(frame: pd.DataFrame, key: str) -> bool:
    return not (pd.to_numeric(frame[key], errors="coerce").fillna(0) != 0).any()


def _cells(
    frame: pd.DataFrame, intervals: pd.DataFrame, names: list[str], reps: int, key: str, unit: str
) -> list[str]:
    """One cell per topology of ``frame`` (one row per topology and replication): its value with
    one replication, else the mean ± half-width from ``intervals`` (indexed by topology) when
    the metric has one there, else the first replication's value (the most frequent bottleneck)."""
    cells = []
    for name in names:
        rows = frame[frame["topology"] == name]
        if rows.empty:
            cells.append("-")
        elif reps == 1 or key not in intervals.columns or name not in intervals.index:
            neck = key == "bottleneck" and reps > 1
            value = bottleneck_mode(frame, name) if neck else rows.iloc[0].get(key)
            cells.append("none" if key == "bottleneck" and missing(value) else cell(value, unit))
        else:
            mean, half = intervals.loc[name, key], intervals.loc[name, f"{key}_half_width"]
            cells.append(cell_interval(float(mean), float(half), unit))
    return cells


def _metric_rows(result: TableFrames) -> list[Row]:
    summary = result.summary
    intervals = result.intervals.set_index("topology")
    rows = []
    for label, key, unit in TABLE_ROWS:
        if key not in summary.columns:
            continue
        if key in OPTIONAL_ROWS and _all_zero(summary, key):
            continue
        rows.append(Row(label, _cells(summary, intervals, result.topologies, result.replications, key, unit)))
    return rows


def workflow_rows(
    result: WorkflowFrames, spec: list[tuple[str, str, str]] = WORKFLOW_ROWS
) -> list[tuple[str, list[Row]]]:
    """Per workflow, in scenario order, its rows of ``spec`` (label, column, unit) with a cell per
    topology, written as the side-by-side table writes them; empty unless there is more than one
    workflow (one workflow's figures are the side-by-side table's)."""
    frame = result.workflows
    if frame.empty or frame["workflow"].nunique() < 2:
        return []
    present = [
        (label, key, unit)
        for label, key, unit in spec
        if key in frame.columns and not (key in WORKFLOW_OPTIONAL_ROWS and _all_zero(frame, key))
    ]
    intervals = result.workflow_intervals
    out = []
    for workflow in dict.fromkeys(frame["workflow"]):
        mine = frame[frame["workflow"] == workflow]
        iv = intervals[intervals["workflow"] == workflow].set_index("topology")
        rows = [
            Row(label, _cells(mine, iv, result.topologies, result.replications, key, unit), "workflow")
            for label, key, unit in present
        ]
        out.append((str(workflow), rows))
    return out


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
