"""Running one simulation: a (scenario, topology, replication) in a fresh world, raw records out.

A :class:`Task` is the unit of work every executor runs, for ``sim run``, replications and sweeps
alike. A scenario with faults is evaluated against its fault-free *baseline twin*: the same
scenario, seed and replication without faults, so the i-th workflow of both runs has the same
arrival and the same work; :func:`tasks_for` lists the twins beside the faulted runs. The result
of a task is the world's raw records (:class:`~sim.model.records.TopologyRun`), after the world
has checked that every arrival is accounted for.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from sim.model import coordinators
from sim.model.records import TopologyRun
from sim.model.world import World
from sim.scenario.models import Scenario


@dataclass(frozen=True)
class Task:
    """One simulation: a topology of a scenario, one replication, with or without its faults
    (``faulted`` False: the baseline twin); ``trace`` > 0 records spans for that many sampled
    instances of each workflow."""

    scenario: Scenario
    topology: str
    replication: int = 0
    faulted: bool = True
    trace: int = 0

    @property
    def label(self) -> str:
        """How progress reports name the task."""
        label = self.topology if self.scenario.replications == 1 else f"{self.topology} #{self.replication}"
        return label if self.faulted else f"{label} (baseline)"


def tasks_for(scenario: Scenario, topologies: Sequence[str], trace: int = 0) -> list[Task]:
    """Every simulation an evaluation of ``scenario`` needs: each replication of each topology
    (replications in the outer loop), then, when the scenario has faults, their baseline twins
    (never traced)."""
    tasks = [
        Task(scenario, name, r, True, trace) for r in range(scenario.replications) for name in topologies
    ]
    if scenario.faults:
        plain = scenario.model_copy(update={"faults": []})
        tasks += [Task(plain, name, r, False) for r in range(scenario.replications) for name in topologies]
    return tasks


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """Hold Python's cyclic garbage collector while a world is built: building makes only objects
    that live as long as the world (a consumer group of 100,000 autoscaled consumers is half a
    million), and each collection would walk all of them again for nothing, several times slower."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def simulate(task: Task, progress: Callable[[float], None] | None = None) -> TopologyRun:
    """Run ``task`` and return its raw records; ``progress(fraction)`` follows simulated time."""
    started = time.perf_counter()
    scenario = task.scenario
    with _no_collection():
        world = World(scenario, None, task.replication, task.trace)
        coordinator = coordinators.build(world, scenario, task.topology)
    world.run(coordinator.arrive, progress)
    return world.records(task.topology, scenario.topology_kind(task.topology), started, task.faulted)
