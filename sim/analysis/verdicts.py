"""Verdicts: each topology judged against the scenario's objectives, and a ranking that follows.

An objective is an upper bound (latencies, affected share, recovery time) or a lower bound
(success rate, throughput). A topology *meets* it when its measured value (the mean over
replications) is on the right side of the target; with replications the verdict is *confident*
when the whole confidence interval lies on the same side as the mean, and *undecided* when the
interval straddles the target (with one replication there is no interval, and no such judgement).
The *margin* is the distance to the target on the good side (negative when missed), also given
relative to the target.

Objectives on one workflow (``objectives.workflows.NAME``) are judged the same way on that
workflow's rows of the per-workflow frame; their verdicts are named after it (``checkout
latency_p99``), carry it in the ``workflow`` column, and count in the ranking like any other.

The ranking orders topologies by objectives met, then by how far they miss the others (the sum of
relative shortfalls), then by p99 latency; the recommendation states that order in words (each
shortfall written by :func:`sim.analysis.formatting.amount`). It follows from the numbers alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from sim.analysis.formatting import amount, percent
from sim.analysis.statistics import t_interval

# objective -> (column in the summary or blast-radius frame, "max" or "min", unit for text)
OBJECTIVES: dict[str, tuple[str, str, str]] = {
    "latency_mean": ("latency_mean", "max", "s"),
    "latency_p50": ("latency_p50", "max", "s"),
    "latency_p95": ("latency_p95", "max", "s"),
    "latency_p99": ("latency_p99", "max", "s"),
    "success_rate": ("success_rate", "min", "%"),
    "throughput": ("throughput", "min", "/s"),
    "affected_share": ("affected_share", "max", "%"),
    "recovery_time": ("recovery_time", "max", "s"),
    "cost_per_1k": ("cost_per_1k", "max", ""),
}
FAULT_OBJECTIVES = {"affected_share", "recovery_time"}

VERDICT_COLUMNS = [
    "topology",
    "objective",
    "workflow",
    "sense",
    "unit",
    "target",
    "measured",
    "low",
    "high",
    "met",
    "confident",
    "margin",
    "relative_margin",
]
"""Columns of the verdict frame; ``objective`` names the workflow too when there is one
(``checkout latency_p99``), and ``workflow`` is None for an objective on all workflows."""


def verdicts(
    objectives: Mapping[str, Any],
    summary: pd.DataFrame,
    blast_radius: pd.DataFrame | None = None,
    confidence: float = 0.95,
    workflows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (topology, objective): target, measured mean and interval, met, confident,
    margin. Objectives about faults are judged only when there is a blast radius; those under
    ``objectives["workflows"]`` (workflow name → objectives) only on the rows of ``workflows``
    (the per-workflow frame) of that workflow."""
    topologies = list(dict.fromkeys(summary["topology"]))
    scopes: list[tuple[str | None, Mapping[str, Any], pd.DataFrame | None]] = [(None, objectives, summary)]
    for workflow, targets in (objectives.get("workflows") or {}).items():
        mine = None if workflows is None or workflows.empty else workflows[workflows["workflow"] == workflow]
        scopes.append((workflow, targets or {}, mine))
    rows = []
    for workflow, targets, frame in scopes:
        for name, target in targets.items():
            if target is None or name not in OBJECTIVES:
                continue
            source = blast_radius if name in FAULT_OBJECTIVES else frame
            rows += _judge(name, float(target), workflow, source, topologies, confidence)
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def _judge(
    name: str,
    target: float,
    workflow: str | None,
    source: pd.DataFrame | None,
    topologies: list[str],
    confidence: float,
) -> list[dict[str, Any]]:
    """The verdict rows of one objective, a row per topology, read from ``source``."""
    column, sense, unit = OBJECTIVES[name]
    if source is None or source.empty or column not in source.columns:
        return []
    rows = []
    for topology in topologies:
        values = source.loc[source["topology"] == topology, column].astype(float)
        iv = t_interval(values, confidence)
        measured = iv.mean
        if math.isnan(measured):
            met, confident = None, None
        else:
            met = measured <= target if sense == "max" else measured >= target
            if math.isnan(iv.half_width):
                confident = None  # one replication: no interval to judge by
            elif sense == "max":
                confident = iv.high <= target if met else iv.low > target
            else:
                confident = iv.low >= target if met else iv.high < target
        margin = (target - measured) if sense == "max" else (measured - target)
        rows.append(
            {
                "topology": topology,
                "objective": name if workflow is None else f"{workflow} {name}",
                "workflow": workflow,
                "sense": sense,
                "unit": unit,
                "target": target,
                "measured": measured,
                "low": iv.low,
                "high": iv.high,
                "met": met,
                "confident": confident,
                "margin": margin,
                "relative_margin": margin / target if target else math.nan,
            }
        )
    return rows


def ranking(verdict_frame: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Topologies ordered by objectives met, then by total relative shortfall, then by p99."""
    if verdict_frame.empty:
        return pd.DataFrame(columns=["rank", "topology", "met", "objectives", "shortfall", "latency_p99"])
    p99 = summary.groupby("topology", sort=False)["latency_p99"].mean()
    rows = []
    for topology, group in verdict_frame.groupby("topology", sort=False):
        decided = group[group["met"].notna()]
        missed = decided[~decided["met"].astype(bool)]
        rows.append(
            {
                "topology": topology,
                "met": int(decided["met"].astype(bool).sum()),
                "objectives": len(decided),
                "shortfall": float(-missed["relative_margin"].sum()),
                "latency_p99": float(p99.get(topology, math.nan)),
            }
        )
    frame = pd.DataFrame(rows).sort_values(
        ["met", "shortfall", "latency_p99"], ascending=[False, True, True], kind="stable"
    )
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def recommendation(verdict_frame: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """The ranking in sentences, best first; each missed objective with its shortfall."""
    ranked = ranking(verdict_frame, summary)
    lines = []
    for row in ranked.to_dict("records"):
        mine = verdict_frame[verdict_frame["topology"] == row["topology"]]
        missed = mine[mine["met"].notna() & ~mine["met"].fillna(True).astype(bool)]
        text = f"{row['rank']}. {row['topology']}: meets {row['met']} of {row['objectives']} objectives"
        if not missed.empty:
            parts = []
            for m in missed.to_dict("records"):
                share = percent(-m["relative_margin"])
                part = f"{m['objective']} by {amount(-m['margin'], m['unit'])}"
                parts.append(f"{part} ({share})" if share else part)
            text += "; misses " + ", ".join(parts)
        undecided = mine[mine["confident"].notna() & ~mine["confident"].fillna(True).astype(bool)]
        if not undecided.empty:
            text += f" (undecided at this confidence: {', '.join(undecided['objective'])})"
        lines.append(text)
    return lines


def verdict_records(verdict_frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain records for ``meta.json``, the JSON summary and the report. ``workflow`` appears
    only in the verdicts of an objective on one workflow."""
    records = []
    for row in verdict_frame.to_dict("records"):
        record = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        if record.get("workflow") is None:
            record.pop("workflow", None)
        records.append(record)
    return records
