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

from sim.analysis.metrics import components_table, summary_table, timeseries_table
from sim.experiment.runner import run_topologies
from sim.scenario.loader import ScenarioError, load_scenario
from sim.scenario.models import Scenario


@dataclass
class RunResult:
    """The outcome of one comparison run: one row per topology in ``summary``, and details."""

    scenario: Scenario
    seed: int
    summary: pd.DataFrame
    components: pd.DataFrame
    requests: pd.DataFrame
    timeseries: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def topologies(self) -> list[str]:
        return self.summary["topology"].tolist()

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain data (what ``sim run --json`` prints)."""
        out: dict[str, Any] = {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "duration": self.scenario.duration,
            "warmup": self.scenario.warmup,
            "topologies": [],
        }
        for row in self.summary.to_dict("records"):
            comps = self.components[self.components["topology"] == row["topology"]]
            entry = {
                "topology": row["topology"],
                "kind": row["kind"],
                "arrived": row["arrived"],
                "completed": row["completed"],
                "failed": row["failed"],
                "in_flight": row["in_flight"],
                "throughput": row["throughput"],
                "offered_rate": row["offered_rate"],
                "messages_per_workflow": row["messages_per_workflow"],
                "latency": {k: row[f"latency_{k}"] for k in ("mean", "p50", "p95", "p99", "max")},
                "bottleneck": row["bottleneck"],
                "bottleneck_utilization": row["bottleneck_utilization"],
                "components": [
                    {
                        k: c[k]
                        for k in (
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
                        )
                    }
                    for c in comps.to_dict("records")
                ],
            }
            if row["async_steps"]:
                entry["asynchronous"] = {
                    "latency": {k: row[f"async_latency_{k}"] for k in ("mean", "p50", "p95", "p99", "max")},
                    "failed": row["async_failed"],
                    "in_flight": row["async_in_flight"],
                }
            out["topologies"].append(entry)
        return _plain(out)

    def save(self, folder: str | Path, plots: bool = True) -> Path:
        """Write the run folder atomically; see :mod:`sim.experiment.rundir`."""
        from sim.experiment.rundir import write_run

        return write_run(self, folder, plots=plots)


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


def with_overrides(scenario: Scenario, duration: float | None = None, seed: int | None = None) -> Scenario:
    """The scenario with the command-line overrides applied and checked."""
    update: dict[str, Any] = {}
    if seed is not None:
        if seed < 0:
            raise ScenarioError("--seed", ["must be at least 0"])
        update["seed"] = seed
    if duration is not None:
        if not (math.isfinite(duration) and duration > 0):
            raise ScenarioError("--duration", ["must be a finite number greater than 0"])
        if scenario.warmup >= duration:
            raise ScenarioError("--duration", [f"must be greater than the warm-up ({scenario.warmup:g} s)"])
        update["duration"] = duration
        if scenario.window is not None and scenario.window > duration:
            update["window"] = None
    return scenario.model_copy(update=update) if update else scenario


def run(
    scenario: Scenario | str | Path,
    topologies: Sequence[str] | None = None,
    seed: int | None = None,
    duration: float | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> RunResult:
    """Simulate the topologies of ``scenario`` side by side and summarise them.

    ``scenario`` is a :class:`Scenario` or the path of a scenario file. ``topologies`` selects
    topologies by name (default: all, in file order); ``seed`` and ``duration`` override the
    file. ``progress(topology, fraction)`` is called as the simulation advances.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    scenario = with_overrides(scenario, duration=duration, seed=seed)
    names = list(topologies) if topologies else list(scenario.topologies)
    unknown = [n for n in names if n not in scenario.topologies]
    if unknown:
        known = ", ".join(scenario.topologies)
        raise ScenarioError("--topology", [f"unknown topology {n!r} (known: {known})" for n in unknown])
    started = time.perf_counter()
    runs = run_topologies(scenario, names, progress=progress)
    components = components_table(runs, scenario)
    result = RunResult(
        scenario=scenario,
        seed=scenario.seed,
        summary=summary_table(runs, scenario, components),
        components=components,
        requests=pd.concat([r.requests for r in runs], ignore_index=True),
        timeseries=timeseries_table(runs, scenario),
    )
    result.meta = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "topologies": names,
        "wall_seconds": time.perf_counter() - started,
        "wall_seconds_by_topology": {r.topology: r.wall_seconds for r in runs},
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return result


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
