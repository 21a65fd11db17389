"""Running a comparison and holding its results as pandas frames.

:func:`run` is what ``sim run`` does, as a function a notebook can call: every selected topology
of a scenario is simulated with the same seed (so with common random numbers), with its
fault-free baseline twin when the scenario has faults, and the raw records go through the one
evaluation pipeline (:func:`sim.analysis.evaluation.evaluate`) that sweeps use too.
:class:`RunResult` keeps the frames, writes them to a run folder and reads them back.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.analysis.evaluation import Evaluation, evaluate
from sim.analysis.verdicts import verdict_records
from sim.running.batch import run_tasks
from sim.running.executors import Executor, check_executor
from sim.running.simulate import tasks_for
from sim.scenario.errors import ScenarioError
from sim.scenario.limits import check_limits
from sim.scenario.loader import load_scenario
from sim.scenario.models import Scenario
from sim.scenario.overrides import select_topologies, with_overrides


@dataclass
class RunResult(Evaluation):
    """The outcome of one comparison: the frames of :class:`~sim.analysis.evaluation.Evaluation`
    and what the run was (``meta``: seed, versions, wall time)."""

    meta: dict[str, Any] = field(default_factory=dict)

    def save(
        self,
        folder: str | Path,
        plots: bool = True,
        formats: tuple[str, ...] = ("png",),
        overwrite: bool = False,
    ) -> Path:
        """Write the run folder atomically; ``overwrite`` replaces an earlier run folder there.
        See :mod:`sim.api.rundir` and :mod:`sim.api.folders`."""
        from sim.api.rundir import write_run

        return write_run(self, folder, plots=plots, formats=formats, overwrite=overwrite)


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
    force: bool = False,
    allow_outside: bool = False,
) -> RunResult:
    """Simulate the topologies of ``scenario`` side by side and summarise them.

    ``scenario`` is a :class:`Scenario` or the path of a scenario file. ``topologies`` selects
    topologies by name (default: all, in file order); ``seed``, ``duration``, ``replications``
    and ``confidence`` override the file. Replication r of every topology shares its random
    numbers. ``executor`` is ``serial``, ``processes`` (default when there is more than one
    replication) or an :class:`~sim.running.executors.Executor`. ``progress(label,
    fraction)`` is called as the work advances. ``trace`` > 0 records spans for that many
    sampled instances of each workflow (the same instances in every topology). A run larger than
    :mod:`sim.scenario.limits` allows is refused unless ``force``; files an empirical
    distribution names must lie in the scenario's folder unless ``allow_outside``.
    """
    source = str(scenario) if not isinstance(scenario, Scenario) else None
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, allow_outside=allow_outside)
    scenario = with_overrides(
        scenario, duration=duration, seed=seed, replications=replications, confidence=confidence
    )
    check_limits(scenario, force=force, source=source)
    names = select_topologies(scenario, topologies)
    check_executor(executor, workers)
    if trace < 0:
        raise ScenarioError("--trace", [f"must be 0 or more, not {trace}"])
    started = time.perf_counter()
    runs = run_tasks(tasks_for(scenario, names, trace), executor, workers, progress)
    evaluation = evaluate(scenario, runs)
    result = RunResult(**vars(evaluation))
    result.meta = {
        "scenario": result.scenario.name,
        "seed": result.scenario.seed,
        "topologies": names,
        "replications": scenario.replications,
        "confidence": scenario.confidence,
        "warmup": result.scenario.warmup,
        "warmup_chosen_by": result.warmup_chosen_by,
        "faults": len(scenario.faults),
        "wall_seconds": time.perf_counter() - started,
        "simulation_seconds": {f"{r.topology}/{r.replication}": r.wall_seconds for r in runs if r.faulted},
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if not result.verdicts.empty:
        result.meta["verdicts"] = verdict_records(result.verdicts)
        result.meta["recommendation"] = result.recommendation()
    return result


def versions() -> dict[str, str]:
    """Versions of Python, the simulator and the libraries that shape its numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("orchestration-sim", "simpy", "numpy", "pandas", "pydantic"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def summary_json(result: Evaluation) -> str:
    """The JSON summary ``sim run --json`` prints."""
    return json.dumps(result.to_dict(), indent=2)
