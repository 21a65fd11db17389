"""The evaluation pipeline: the raw records of a scenario's runs in, every frame a user sees out.

``sim run``, replications and every point of a sweep go through :func:`evaluate`, so a number
means the same wherever it is shown:

1. **warm-up**: a fixed warm-up is taken as is; ``warmup: auto`` is chosen by MSER-5 on every
   run's latencies in arrival order, the largest choice over topologies and replications, so all
   are measured over the same window. With faults it is chosen on the fault-free baseline twins
   and never reaches past the first fault, so the fault stays inside the measured window.
2. **frames**: per-instance requests, per-component statistics, the summary (one row per topology
   and replication, conservation checked again over the measured window), the same figures per
   workflow, and time series.
3. **baseline and blast radius**: with faults, the baseline twins get the same frames, and every
   faulted run is compared with its twin (:mod:`sim.analysis.blast_radius`).
4. **verdicts**: each topology judged against the scenario's objectives, those on all workflows
   by the summary and those on one workflow by its rows (:mod:`sim.analysis.verdicts`).

:class:`Evaluation` holds the frames and the condensed views of them: intervals over
replications, paired differences between topologies, the JSON summary and the plots.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sim.analysis.costs import COST_FIGURES
from sim.analysis.metrics import (
    FIGURES,
    component_records,
    component_stats,
    components_table,
    lag_table,
    partitions_table,
    parts_table,
    requests_frame,
    spans_frame,
    summary_table,
    timeseries_table,
    workflows_table,
)
from sim.analysis.replicas import replicas_table
from sim.analysis.statistics import aggregate, format_difference, mser5_warmup, paired_differences
from sim.model.records import TopologyRun
from sim.scenario.models import BROKER_KINDS, ENGINE_KINDS, Scenario

if TYPE_CHECKING:
    from matplotlib.figure import Figure

HEADLINE = [
    "throughput",
    "latency_mean",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "latency_max",
    "messages_per_workflow",
    "decisions_per_workflow",
    "store_writes_per_workflow",
    "bottleneck_utilization",
    "arrived",
    "completed",
    "failed",
    "compensated",
    "inconsistent",
    "lost",
    "in_flight",
    "async_latency_mean",
    "async_latency_p99",
    "cost",
    "cost_per_1k",
    "replica_hours",
]
"""Summary metrics that get a confidence interval across replications."""

COMPARED = ["throughput", "latency_mean", "latency_p50", "latency_p95", "latency_p99"]
"""Metrics compared between topologies, replication by replication."""

COMPONENT_FIELDS = [
    "name",
    "kind",
    "servers",
    "utilization",
    "mean_busy",
    "mean_queue",
    "max_queue",
    "mean_wait",
    "p99_wait",
    "handled",
    "rejected",
    "errors",
    "hottest_shard_utilization",
    "schedule_to_start_p50",
    "schedule_to_start_p99",
    "concurrency",
    "partitions",
    "hottest_partition_utilization",
    "lag_mean",
    "lag_max",
    "dead_lettered",
    "expired",
    "effects",
    "duplicate_effects",
    "absorbed_effects",
    "undone_effects",
    "orphan_effects",
]
"""Per-component figures of the JSON summary."""

WORKFLOW_OUTCOMES = ["arrived", "completed", "failed", "compensated", "inconsistent", "lost", "in_flight"]
"""Counts of the JSON summary's per-workflow block."""

EFFECT_FIGURES = ["effects", "duplicate_effects", "absorbed_effects", "undone_effects", "orphan_effects"]
"""The effect ledger's figures of the JSON summary."""

BROKER_COUNTERS = ["duplicates", "dead_letters", "expired", "rebalances", "produce_requests", "polls"]
"""Run totals of the JSON summary's broker block."""

CLIENT_COUNTERS = ["client_submissions", "abandoned", "client_retries"]
"""Run totals of the JSON summary's clients block (a scenario with closed-loop clients)."""


def _empty() -> pd.DataFrame:
    return pd.DataFrame()


@dataclass
class Evaluation:
    """The frames of one scenario's runs: ``summary`` has one row per topology and replication;
    ``intervals`` and ``differences`` condense the replications."""

    scenario: Scenario
    """The scenario as measured (its warm-up resolved)."""
    seed: int
    summary: pd.DataFrame
    components: pd.DataFrame
    requests: pd.DataFrame
    timeseries: pd.DataFrame
    workflows: pd.DataFrame = field(default_factory=_empty)
    """One row per topology, replication and workflow: the summary's figures of that workflow's
    instances alone (see :func:`sim.analysis.metrics.workflows_table`)."""
    baseline: Evaluation | None = None
    """With faults: the same scenario and seed run without them (the twins)."""
    faults: pd.DataFrame = field(default_factory=_empty)
    """With faults: the fault windows applied, per topology and replication."""
    blast_radius: pd.DataFrame = field(default_factory=_empty)
    """With faults: one row per topology and replication, see :mod:`sim.analysis.blast_radius`."""
    verdicts: pd.DataFrame = field(default_factory=_empty)
    """With objectives: one row per topology and objective, see :mod:`sim.analysis.verdicts`."""
    spans: pd.DataFrame = field(default_factory=_empty)
    """With tracing: the spans of the sampled workflow instances, see :mod:`sim.analysis.traces`."""
    shards: pd.DataFrame = field(default_factory=_empty)
    """With an engine: one row per topology, replication and shard (see
    :func:`sim.analysis.metrics.parts_table`)."""
    partitions: pd.DataFrame = field(default_factory=_empty)
    """With a log broker: one row per topology, replication, consumer group and partition (see
    :func:`sim.analysis.metrics.partitions_table`)."""
    lag: pd.DataFrame = field(default_factory=_empty)
    """With a broker: each consumer group's lag per time window (see
    :func:`sim.analysis.metrics.lag_table`)."""
    replicas: pd.DataFrame = field(default_factory=_empty)
    """With autoscaling: every change of an autoscaled component's replicas (see
    :func:`sim.analysis.replicas.replicas_table`)."""
    warmup_chosen_by: str = "scenario"
    """``scenario`` (a fixed warm-up) or ``MSER-5`` (``warmup: auto``)."""

    @property
    def topologies(self) -> list[str]:
        return list(dict.fromkeys(self.summary["topology"]))

    @property
    def replications(self) -> int:
        return int(self.summary["replication"].nunique())

    @property
    def confidence(self) -> float:
        return self.scenario.confidence

    @property
    def intervals(self) -> pd.DataFrame:
        """Per topology: the mean of each headline metric over replications, with its Student-t
        interval (``<metric>_low``, ``<metric>_high``, ``<metric>_half_width``; empty with one
        replication)."""
        metrics = [m for m in HEADLINE if m in self.summary.columns]
        return aggregate(self.summary, ["topology"], metrics, self.confidence)

    @property
    def workflow_intervals(self) -> pd.DataFrame:
        """Per topology and workflow: the mean of each of its figures over replications, with its
        Student-t interval, as :attr:`intervals` per topology (every figure, since the
        per-workflow table shows success rates and effects too; empty without rows)."""
        if self.workflows.empty:
            return pd.DataFrame(columns=["topology", "workflow"])
        metrics = [m for m in FIGURES if m in self.workflows.columns]
        return aggregate(self.workflows, ["topology", "workflow"], metrics, self.confidence)

    @property
    def differences(self) -> pd.DataFrame:
        """Each topology minus the first one, replication by replication, with the interval of the
        mean difference: the headline a user quotes. Pairing removes the noise the topologies
        share through common random numbers."""
        if len(self.topologies) < 2:
            return pd.DataFrame()
        return paired_differences(self.summary, self.topologies[0], COMPARED, self.confidence)

    def difference_lines(self) -> list[str]:
        """The differences as sentences, e.g. ``latency_p99: choreography − orchestration = …``."""
        if self.replications < 2:
            return []
        frame = self.differences
        if frame.empty:
            return []
        lines = []
        for row in frame.to_dict("records"):
            scale, unit = (1.0, "/s") if row["metric"] == "throughput" else (1000.0, "ms")
            lines.append(format_difference(row, unit_scale=scale, unit=unit))
        return lines

    def recommendation(self) -> list[str]:
        """The topologies ranked by the objectives they meet, in sentences (empty without objectives)."""
        from sim.analysis.verdicts import recommendation

        return [] if self.verdicts.empty else recommendation(self.verdicts, self.summary)

    def fault_windows(self) -> list[tuple[float, float, str]]:
        """The distinct fault windows of the run, for shading plots."""
        return fault_labels(self.faults)

    def plot_names(self) -> list[str]:
        """The plots :meth:`plot` can draw for this run."""
        from sim.analysis.plots.standard import STANDARD_PLOTS

        names = list(STANDARD_PLOTS)
        if self.baseline is not None:
            names += ["fault_timelines", "blast_radius"]
        if not self.spans.empty:
            names.append("waterfall")
        if not self.replicas.empty and "replicas" not in names:
            names.append("replicas")
        return names

    def plot(self, name: str = "latency_cdf") -> Figure:
        """One of :meth:`plot_names` as a matplotlib Figure (fault windows shaded)."""
        from sim.analysis.plots import figure

        if name not in self.plot_names():
            raise ValueError(f"unknown plot {name!r} (known: {', '.join(self.plot_names())})")
        return figure(self, name)

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain data (what ``sim run --json`` prints). With several replications
        each number is the mean over replications, and ``intervals`` gives its interval."""
        out: dict[str, Any] = {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "duration": self.scenario.duration,
            "warmup": self.scenario.warmup,
            "replications": self.replications,
            "confidence": self.confidence,
            "topologies": [],
        }
        intervals = self.intervals.set_index("topology")
        for name in self.topologies:
            rows = self.summary[self.summary["topology"] == name]
            row = rows.mean(numeric_only=True).to_dict()
            first = rows.iloc[0]
            comps = self.components[self.components["topology"] == name]
            comp_rows = (
                comps.groupby("name", sort=False)
                .agg({**{c: "mean" for c in COMPONENT_FIELDS[2:]}, "kind": "first"})
                .reset_index()
            )
            priced = not math.isnan(row.get("cost", math.nan))
            entry = {
                "topology": name,
                "kind": first["kind"],
                "arrived": row["arrived"],
                "completed": row["completed"],
                "failed": row["failed"],
                "compensated": row.get("compensated", 0),
                "inconsistent": row.get("inconsistent", 0),
                "lost": row.get("lost", 0),
                "in_flight": row["in_flight"],
                "throughput": row["throughput"],
                "offered_rate": row["offered_rate"],
                "messages_per_workflow": row["messages_per_workflow"],
                "latency": {k: row[f"latency_{k}"] for k in ("mean", "p50", "p95", "p99", "max")},
                "bottleneck": rows["bottleneck"].mode().iloc[0] if rows["bottleneck"].notna().any() else None,
                "bottleneck_utilization": row["bottleneck_utilization"],
                "effects": {k: row.get(k) for k in EFFECT_FIGURES},
                **({"cost": {k: row.get(k) for k in COST_FIGURES}} if priced else {}),
                "resilience": {
                    k: row.get(k)
                    for k in (
                        "attempts",
                        "retries_refused",
                        "breaker_openings",
                        "bulkhead_refusals",
                        "deadlines",
                        "lost_work",
                    )
                },
                "components": [{k: c[k] for k in COMPONENT_FIELDS} for c in comp_rows.to_dict("records")],
            }
            if first["kind"] in ENGINE_KINDS:
                entry["engine"] = {
                    "decisions_per_workflow": row.get("decisions_per_workflow"),
                    "store_writes_per_workflow": row.get("store_writes_per_workflow"),
                    "shards": int((self.shards["topology"] == name).sum() / max(len(rows), 1))
                    if not self.shards.empty
                    else None,
                    "hottest_shard_utilization": comps.loc[
                        comps["name"] == "orchestrator", "hottest_shard_utilization"
                    ].mean()
                    if "hottest_shard_utilization" in comps.columns
                    else None,
                }
            if first["kind"] in BROKER_KINDS:
                broker = self.scenario.topologies[name].broker
                parts = (
                    self.partitions[self.partitions["topology"] == name]
                    if not self.partitions.empty
                    else None
                )
                entry["broker"] = {
                    "kind": broker.kind if broker is not None else "log",
                    "lag_max": row.get("lag_max"),
                    "hottest_partition_share": float(parts["share"].max())
                    if parts is not None and not parts.empty
                    else None,
                    **{
                        k: row.get(k)
                        for k in (
                            "duplicates",
                            "dead_letters",
                            "expired",
                            "rebalances",
                            "produce_requests",
                            "polls",
                            "publish_failures",
                            "lost_events",
                            "republished",
                        )
                    },
                }
            scaled = self._autoscaling(name)
            if scaled:
                entry["autoscaling"] = scaled
            if bool(first["async_steps"]):
                entry["asynchronous"] = {
                    "latency": {k: row[f"async_latency_{k}"] for k in ("mean", "p50", "p95", "p99", "max")},
                    "failed": row["async_failed"],
                    "in_flight": row["async_in_flight"],
                }
            if any(load.closed for load in self.scenario.load.values()):
                entry["clients"] = {k: row.get(k) for k in CLIENT_COUNTERS}
            if self.replications > 1:
                entry["intervals"] = _interval_block(intervals.loc[name], self.summary)
            out["topologies"].append(entry)
        out["workflows"] = self._workflow_entries()
        if self.replications > 1 and len(self.topologies) > 1:
            out["differences"] = self.differences.to_dict("records")
        if not self.blast_radius.empty:
            radius = self.blast_radius
            for entry in out["topologies"]:
                rows = radius[radius["topology"] == entry["topology"]]
                entry["blast_radius"] = {
                    **rows.mean(numeric_only=True).drop("replication", errors="ignore").to_dict(),
                    "affected_components": sorted(
                        {c for v in rows["affected_components"].dropna() for c in str(v).split(";") if c}
                    ),
                }
            out["faults"] = self.faults.to_dict("records")
        if not self.verdicts.empty:
            from sim.analysis.verdicts import verdict_records

            out["verdicts"] = verdict_records(self.verdicts)
            out["recommendation"] = self.recommendation()
        return plain(out)

    def _autoscaling(self, topology: str) -> dict[str, dict[str, Any]]:
        """The JSON summary's ``autoscaling`` block of a topology: per autoscaled component, its
        replicas running over the measured window (mean and most, over replications) and how
        often they rose and fell per replication."""
        if self.replicas.empty:
            return {}
        comps = self.components[self.components["topology"] == topology]
        mine = self.replicas[self.replicas["topology"] == topology]
        out: dict[str, dict[str, Any]] = {}
        for name, changes in mine.groupby("component", sort=False):
            rows = comps[comps["name"] == name]
            steps = changes.groupby("replication")["replicas"].diff().dropna()
            runs = max(1, changes["replication"].nunique())
            out[str(name)] = {
                "replicas_mean": float(rows["replicas_mean"].mean()),
                "replicas_max": float(rows["replicas_max"].max()),
                "scale_ups": float((steps > 0).sum() / runs),
                "scale_downs": float((steps < 0).sum() / runs),
            }
        return out

    def _workflow_entries(self) -> list[dict[str, Any]]:
        """The JSON summary's ``workflows`` block: per topology and workflow, the mean over
        replications of each figure, nested as in a topology's entry, and with replications
        ``intervals``."""
        if self.workflows.empty:
            return []
        intervals = self.workflow_intervals.set_index(["topology", "workflow"])
        entries = []
        for (topology, workflow), rows in self.workflows.groupby(["topology", "workflow"], sort=False):
            row = rows.mean(numeric_only=True)
            entry: dict[str, Any] = {
                "topology": topology,
                "workflow": workflow,
                **{k: row[k] for k in WORKFLOW_OUTCOMES},
                "success_rate": row["success_rate"],
                "throughput": row["throughput"],
                "offered_rate": row["offered_rate"],
                "latency": {k: row[f"latency_{k}"] for k in ("mean", "p50", "p95", "p99", "max")},
                "effects": {k: row[k] for k in EFFECT_FIGURES},
                "inconsistency_window": {k: row[f"inconsistency_window_{k}"] for k in ("mean", "max")},
            }
            if self.replications > 1:
                entry["intervals"] = _interval_block(intervals.loc[(topology, workflow)], self.workflows)
            entries.append(entry)
        return entries


def _interval_block(iv: pd.Series, frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The ``intervals`` of a JSON entry: each headline metric of ``frame`` with its interval."""
    return {
        m: {
            "mean": iv[m],
            "low": iv[f"{m}_low"],
            "high": iv[f"{m}_high"],
            "half_width": iv[f"{m}_half_width"],
        }
        for m in HEADLINE
        if m in frame.columns
    }


def plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN and missing values to None."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def fault_labels(faults: pd.DataFrame) -> list[tuple[float, float, str]]:
    """The distinct fault windows of a fault frame as (start, end, label), for shading plots."""
    if faults.empty:
        return []
    rows = faults.drop_duplicates(["type", "target", "start", "end"])
    out = []
    for r in rows.to_dict("records"):
        peer = r.get("peer")
        ends = f"{r['target']} ↔ {peer}" if isinstance(peer, str) and peer else str(r["target"])
        out.append((float(r["start"]), float(r["end"]), f"{r['type']}: {ends}"))
    return out


FAULT_COLUMNS = ["topology", "replication", "type", "target", "peer", "start", "end"]


def choose_warmup(scenario: Scenario, runs: Sequence[TopologyRun]) -> float:
    """MSER-5 warm-up: the largest truncation point over the runs' latency series (in arrival
    order). With faults only the fault-free baseline runs are read, and the warm-up never passes
    the first fault, so that what the fault did stays in the measured window."""
    chosen = 0.0
    baseline = [r for r in runs if not r.faulted] if scenario.faults else list(runs)
    for run in baseline:
        out = run.outcomes
        keep = out.arrival < scenario.duration
        order = out.arrival[keep].argsort(kind="stable")
        arrival = out.arrival[keep][order]
        latency = (out.completion - out.arrival)[keep][order]
        latency[out.status[keep][order] != 1] = math.nan  # completed instances only
        chosen = max(chosen, mser5_warmup(arrival, latency))
    if scenario.faults:
        starts = [float(w["start"]) for r in runs if r.faulted for w in r.faults]  # type: ignore[arg-type]
        if starts:
            chosen = min(chosen, min(starts))
    return float(chosen)


def evaluate(scenario: Scenario, runs: Sequence[TopologyRun]) -> Evaluation:
    """Every frame of a scenario's runs (faulted runs and, with faults, their baseline twins, as
    :func:`sim.running.simulate.tasks_for` lists them), through the steps in the module
    docstring."""
    chosen_by = "scenario"
    if scenario.warmup == "auto":
        scenario = scenario.model_copy(update={"warmup": choose_warmup(scenario, runs)})
        chosen_by = "MSER-5"
    faulted = [r for r in runs if r.faulted]
    twins = [r for r in runs if not r.faulted]
    result = _frames(scenario, faulted)
    result.warmup_chosen_by = chosen_by
    result.spans = spans_frame([r for r in faulted if r.spans])
    if scenario.faults:
        result.baseline = _frames(scenario.model_copy(update={"faults": []}), twins)
        result.faults = pd.DataFrame(
            [{"topology": r.topology, "replication": r.replication, **w} for r in faulted for w in r.faults],
            columns=FAULT_COLUMNS,
        )
        result.blast_radius = _blast_radius(scenario, result, faulted, twins)
    objectives = scenario.objectives.model_dump()
    if any(v is not None for v in objectives.values()):
        from sim.analysis.verdicts import verdicts

        radius = result.blast_radius if not result.blast_radius.empty else None
        result.verdicts = verdicts(
            objectives, result.summary, radius, scenario.confidence, workflows=result.workflows
        )
    return result


def _frames(scenario: Scenario, runs: Sequence[TopologyRun]) -> Evaluation:
    # Each run's requests are rows of the one frame kept (slices, not a second copy of them).
    sizes = [r.total for r in runs]
    all_requests = _concat_requests([requests_frame(r) for r in runs], runs)
    bounds = np.cumsum([0, *sizes]).tolist()
    requests = [all_requests.iloc[a:b] for a, b in itertools.pairwise(bounds)]
    components = components_table(runs, scenario)
    return Evaluation(
        scenario=scenario,
        seed=scenario.seed,
        summary=summary_table(runs, requests, scenario, components),
        components=components,
        requests=all_requests,
        timeseries=timeseries_table(runs, requests, scenario),
        workflows=workflows_table(runs, requests, scenario),
        shards=parts_table(runs, scenario),
        partitions=partitions_table(runs, scenario),
        lag=lag_table(runs, scenario),
        replicas=replicas_table(runs),
    )


def _concat_requests(frames: list[pd.DataFrame], runs: Sequence[TopologyRun]) -> pd.DataFrame:
    """The runs' requests frames as one, the topology still a category (each run's frame has its
    own categories, which a plain concatenation would turn into a column of strings: they are
    made one set first, in place).

    A column at a time, each run's piece dropped once joined, and a run's outcome arrays then
    read from the joined column (views of its rows): every column is held once, whatever the
    number of runs (a requests frame lends its outcome columns from its run's arrays)."""
    if not frames:
        return pd.DataFrame()
    if len(frames) == 1:
        return frames[0]
    names = list(dict.fromkeys(str(f["topology"].iloc[0]) for f in frames if len(f)))
    for f in frames:  # one set of categories, so that the concatenation keeps them
        f["topology"] = f["topology"].cat.set_categories(names)
    bounds = np.cumsum([0, *(len(f) for f in frames)]).tolist()
    columns: dict[str, pd.Series] = {}
    for name in list(frames[0].columns):
        columns[name] = pd.concat([f[name] for f in frames], ignore_index=True)
        for f in frames:
            del f[name]
        if name in OUTCOME_FIELDS:
            joined = columns[name].cat.codes if name == "status" else columns[name]
            values = joined.to_numpy()
            for run, a, b in zip(runs, bounds[:-1], bounds[1:], strict=True):
                setattr(run.outcomes, name, values[a:b])
    return pd.DataFrame(columns, copy=False)


OUTCOME_FIELDS = {
    "arrival",
    "completion",
    "status",
    "inconsistency_start",
    "inconsistency_end",
    "async_completion",
    "async_pending",
    "async_failures",
}
"""The requests frame's columns that hold a run's outcome arrays as they are."""


def _blast_radius(
    scenario: Scenario, result: Evaluation, runs: Sequence[TopologyRun], twins: Sequence[TopologyRun]
) -> pd.DataFrame:
    """Compare every faulted run with its fault-free twin (same topology, replication, seed)."""
    from sim.analysis.blast_radius import blast_radius

    assert result.baseline is not None
    records = {(id(result), r.topology, r.replication): r for r in runs}
    records.update({(id(result.baseline), r.topology, r.replication): r for r in twins})

    def stats(frames: object, topology: str, replication: int, lo: float, hi: float) -> pd.DataFrame:
        run = records[(id(frames), topology, replication)]
        return pd.DataFrame([component_stats(rec, lo, hi, run.end_time) for rec in component_records(run)])

    windows = {(r.topology, r.replication): r.faults for r in runs}
    return blast_radius(
        result.baseline,
        result,
        windows,
        latency_factor=scenario.blast_radius.latency_factor,
        latency_slack=scenario.blast_radius.latency_slack,
        component_stats=stats,
    )
