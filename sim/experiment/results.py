"""Running a comparison and holding its results as pandas frames.

:func:`run` is what ``sim run`` does, as a function a notebook can call: every selected topology
of a scenario is simulated with the same seed (so with common random numbers) and the raw records
are summarised into frames. :class:`RunResult` keeps those frames, writes them to a run folder and
reads them back.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.metrics import component_stats as component_stats_of
from sim.analysis.metrics import components_table, summary_table, timeseries_table
from sim.analysis.statistics import aggregate, format_difference, mser5_warmup, paired_differences
from sim.experiment.executors import Executor, make_executor
from sim.experiment.records import TopologyRun
from sim.experiment.runner import run_topology, simulate
from sim.scenario.loader import ScenarioError, load_scenario
from sim.scenario.models import Scenario


@dataclass
class RunResult:
    """The outcome of one comparison: ``summary`` has one row per topology and replication;
    ``intervals`` and ``differences`` condense the replications."""

    scenario: Scenario
    seed: int
    summary: pd.DataFrame
    components: pd.DataFrame
    requests: pd.DataFrame
    timeseries: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    baseline: RunResult | None = None
    """With faults: the same scenario and seed run without them (the twins)."""
    faults: pd.DataFrame = field(default_factory=pd.DataFrame)
    """With faults: the fault windows applied, per topology and replication."""
    blast_radius: pd.DataFrame = field(default_factory=pd.DataFrame)
    """With faults: one row per topology and replication, see :mod:`sim.analysis.blast_radius`."""
    verdicts: pd.DataFrame = field(default_factory=pd.DataFrame)
    """With objectives: one row per topology and objective, see :mod:`sim.analysis.verdicts`."""
    spans: pd.DataFrame = field(default_factory=pd.DataFrame)
    """With tracing: the spans of the sampled workflow instances, see :mod:`sim.analysis.traces`."""

    def plot_names(self) -> list[str]:
        """The plots :meth:`plot` can draw for this run."""
        from sim.analysis.plots import STANDARD_PLOTS

        names = list(STANDARD_PLOTS)
        if self.baseline is not None:
            names += ["fault_timelines", "blast_radius"]
        if not self.spans.empty:
            names.append("waterfall")
        return names

    def plot(self, name: str = "latency_cdf"):
        """One of :meth:`plot_names` as a matplotlib Figure (fault windows shaded)."""
        if name == "fault_timelines" and self.baseline is not None:
            from sim.analysis.blast_radius import fault_timelines

            return fault_timelines(self.baseline.timeseries, self.timeseries, self.faults)
        if name == "blast_radius" and self.baseline is not None:
            from sim.analysis.blast_radius import blast_radius_bars

            return blast_radius_bars(self.blast_radius)
        if name == "waterfall" and not self.spans.empty:
            from sim.analysis.traces import waterfall

            return waterfall(self.spans)
        from sim.analysis.plots import standard_plots
        from sim.experiment.rundir import fault_windows

        makers = standard_plots(self, fault_windows(self))
        if name not in makers:
            raise ValueError(f"unknown plot {name!r} (known: {', '.join(self.plot_names())})")
        return makers[name]()

    def recommendation(self) -> list[str]:
        """The topologies ranked by the objectives they meet, in sentences (empty without objectives)."""
        from sim.analysis.verdicts import recommendation

        return [] if self.verdicts.empty else recommendation(self.verdicts, self.summary)

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
                "components": [{k: c[k] for k in COMPONENT_FIELDS} for c in comp_rows.to_dict("records")],
            }
            if bool(first["async_steps"]):
                entry["asynchronous"] = {
                    "latency": {k: row[f"async_latency_{k}"] for k in ("mean", "p50", "p95", "p99", "max")},
                    "failed": row["async_failed"],
                    "in_flight": row["async_in_flight"],
                }
            if self.replications > 1:
                iv = intervals.loc[name]
                entry["intervals"] = {
                    m: {
                        "mean": iv[m],
                        "low": iv[f"{m}_low"],
                        "high": iv[f"{m}_high"],
                        "half_width": iv[f"{m}_half_width"],
                    }
                    for m in HEADLINE
                    if m in self.summary.columns
                }
            out["topologies"].append(entry)
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
            out["verdicts"] = self.verdicts.to_dict("records")
            out["recommendation"] = self.recommendation()
        return _plain(out)

    def save(self, folder: str | Path, plots: bool = True, formats: tuple[str, ...] = ("png",)) -> Path:
        """Write the run folder atomically; see :mod:`sim.experiment.rundir`."""
        from sim.experiment.rundir import write_run

        return write_run(self, folder, plots=plots, formats=formats)


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
]


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN and missing values to None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def with_overrides(
    scenario: Scenario,
    duration: float | None = None,
    seed: int | None = None,
    replications: int | None = None,
    confidence: float | None = None,
) -> Scenario:
    """The scenario with the command-line overrides applied and checked."""
    update: dict[str, Any] = {}
    if replications is not None:
        if replications < 1:
            raise ScenarioError("--replications", ["must be at least 1"])
        update["replications"] = replications
    if confidence is not None:
        if not 0 < confidence < 1:
            raise ScenarioError("--confidence", ["must be between 0 and 1 (e.g. 0.95)"])
        update["confidence"] = confidence
    if seed is not None:
        if seed < 0:
            raise ScenarioError("--seed", ["must be at least 0"])
        update["seed"] = seed
    if duration is not None:
        if not (math.isfinite(duration) and duration > 0):
            raise ScenarioError("--duration", ["must be a finite number greater than 0"])
        if scenario.warmup != "auto" and scenario.warmup >= duration:
            raise ScenarioError("--duration", [f"must be greater than the warm-up ({scenario.warmup:g} s)"])
        update["duration"] = duration
        if scenario.window is not None and scenario.window > duration:
            update["window"] = None
    return scenario.model_copy(update=update) if update else scenario


HEADLINE = [
    "throughput",
    "latency_mean",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "latency_max",
    "messages_per_workflow",
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
]
"""Summary metrics that get a confidence interval across replications."""

COMPARED = ["throughput", "latency_mean", "latency_p50", "latency_p95", "latency_p99"]
"""Metrics compared between topologies, replication by replication."""


def run(
    scenario: Scenario | str | Path,
    topologies: Sequence[str] | None = None,
    seed: int | None = None,
    duration: float | None = None,
    replications: int | None = None,
    confidence: float | None = None,
    executor: str | Executor | None = None,
    workers: int | None = None,
    progress: Callable[[str, float], None] | None = None,
    trace: int = 0,
) -> RunResult:
    """Simulate the topologies of ``scenario`` side by side and summarise them.

    ``scenario`` is a :class:`Scenario` or the path of a scenario file. ``topologies`` selects
    topologies by name (default: all, in file order); ``seed``, ``duration``, ``replications``
    and ``confidence`` override the file. Replication r of every topology shares its random
    numbers. ``executor`` is ``serial``, ``processes`` (default when there is more than one
    replication) or an :class:`~sim.experiment.executors.Executor`. ``progress(label,
    fraction)`` is called as the work advances. ``trace`` > 0 records spans for that many
    sampled instances of each workflow (the same instances in every topology).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    scenario = with_overrides(
        scenario, duration=duration, seed=seed, replications=replications, confidence=confidence
    )
    names = list(topologies) if topologies else list(scenario.topologies)
    unknown = [n for n in names if n not in scenario.topologies]
    if unknown:
        known = ", ".join(scenario.topologies)
        raise ScenarioError("--topology", [f"unknown topology {n!r} (known: {known})" for n in unknown])
    started = time.perf_counter()
    runs = _simulate_all(scenario, names, executor, workers, progress, trace)
    baseline_runs: list[TopologyRun] = []
    if scenario.faults:
        # The twin run: same scenario and seed, no faults. Its labels keep progress bars apart.
        plain = scenario.model_copy(update={"faults": []})
        label = (lambda n, f: progress(f"{n} (baseline)", f)) if progress is not None else None
        baseline_runs = _simulate_all(plain, names, executor, workers, label)
    chosen_warmup = None
    if scenario.warmup == "auto":
        chosen_warmup = choose_warmup(runs + baseline_runs, scenario.duration)
        scenario = scenario.model_copy(update={"warmup": chosen_warmup})
    result = _frames(scenario, runs)
    if trace > 0:
        result.spans = pd.concat([r.spans for r in runs], ignore_index=True)
    if baseline_runs:
        result.baseline = _frames(scenario.model_copy(update={"faults": []}), baseline_runs)
        result.faults = pd.DataFrame(
            [{"topology": r.topology, "replication": r.replication, **w} for r in runs for w in r.faults],
            columns=["topology", "replication", "type", "target", "start", "end"],
        )
        result.blast_radius = _blast_radius(scenario, result, runs, baseline_runs)
    objectives = scenario.objectives.model_dump()
    if any(v is not None for v in objectives.values()):
        from sim.analysis.verdicts import verdict_records, verdicts

        radius = result.blast_radius if not result.blast_radius.empty else None
        result.verdicts = verdicts(objectives, result.summary, radius, scenario.confidence)
    result.meta = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "topologies": names,
        "replications": scenario.replications,
        "confidence": scenario.confidence,
        "warmup": scenario.warmup,
        "warmup_chosen_by": "MSER-5" if chosen_warmup is not None else "scenario",
        "faults": len(scenario.faults),
        "wall_seconds": time.perf_counter() - started,
        "simulation_seconds": {f"{r.topology}/{r.replication}": r.wall_seconds for r in runs},
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if not result.verdicts.empty:
        result.meta["verdicts"] = verdict_records(result.verdicts)
        result.meta["recommendation"] = result.recommendation()
    return result


def _frames(scenario: Scenario, runs: list[TopologyRun]) -> RunResult:
    components = components_table(runs, scenario)
    return RunResult(
        scenario=scenario,
        seed=scenario.seed,
        summary=summary_table(runs, scenario, components),
        components=components,
        requests=pd.concat([r.requests for r in runs], ignore_index=True),
        timeseries=timeseries_table(runs, scenario),
    )


def _blast_radius(
    scenario: Scenario, result: RunResult, runs: list[TopologyRun], baseline_runs: list[TopologyRun]
) -> pd.DataFrame:
    """Compare every faulted run with its fault-free twin (same topology, replication, seed)."""
    assert result.baseline is not None
    records = {(id(result), r.topology, r.replication): r for r in runs}
    records.update({(id(result.baseline), r.topology, r.replication): r for r in baseline_runs})

    def component_stats(
        frames: object, topology: str, replication: int, lo: float, hi: float
    ) -> pd.DataFrame:
        run = records[(id(frames), topology, replication)]
        return pd.DataFrame([component_stats_of(rec, lo, hi, run.end_time) for rec in run.components])

    from sim.analysis.blast_radius import blast_radius  # plotting libraries only when needed

    windows = {(r.topology, r.replication): r.faults for r in runs}
    return blast_radius(
        result.baseline,
        result,
        windows,
        latency_factor=scenario.blast_radius.latency_factor,
        latency_slack=scenario.blast_radius.latency_slack,
        component_stats=component_stats,
    )


def _simulate_all(
    scenario: Scenario,
    names: list[str],
    executor: str | Executor | None,
    workers: int | None,
    progress: Callable[[str, float], None] | None,
    trace: int = 0,
) -> list[TopologyRun]:
    """Every (replication, topology) run, in that order, on the chosen executor."""
    tasks = [(scenario, name, r, trace) for r in range(scenario.replications) for name in names]
    if executor is None:
        executor = "serial" if scenario.replications == 1 else "processes"
    if executor == "serial" and not isinstance(executor, Executor):
        # In-process: progress can follow each topology's simulated clock.
        runs = []
        for sc, name, r, tr in tasks:
            label = name if scenario.replications == 1 else f"{name} #{r}"
            step = (lambda f, n=label: progress(n, f)) if progress is not None else None
            runs.append(run_topology(sc, name, progress=step, replication=r, trace=tr))
        return runs
    owned = not isinstance(executor, Executor)
    pool = make_executor(executor, workers) if owned else executor
    results: dict[tuple[str, int], TopologyRun] = {}
    try:
        for i, (task, run_, error) in enumerate(pool.map(simulate, tasks), start=1):
            if error is not None:
                raise error
            results[(task[1], task[2])] = run_
            if progress is not None:
                progress("replications", i / len(tasks))
    finally:
        if owned:
            pool.close()
    return [results[(name, r)] for _, name, r, _ in tasks]


def choose_warmup(runs: Sequence[TopologyRun], duration: float) -> float:
    """MSER-5 warm-up: the largest truncation point over every run's latency series (in arrival
    order), so that one warm-up serves every topology and replication alike."""
    chosen = 0.0
    for r in runs:
        req = r.requests[r.requests["arrival"] < duration].sort_values("arrival", kind="stable")
        latency = req["latency"].where(req["status"] == "completed")
        chosen = max(chosen, mser5_warmup(req["arrival"].to_numpy(), latency.to_numpy()))
    return float(chosen)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("orchestration-sim", "simpy", "numpy", "pandas", "pydantic"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def summary_json(result: RunResult) -> str:
    return json.dumps(result.to_dict(), indent=2)
