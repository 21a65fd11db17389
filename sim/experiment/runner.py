"""Running a scenario: each topology in a fresh world with the same seed, raw records out.

This is the only module that touches the simulation engine on behalf of users. It returns plain
data (numpy arrays and pandas frames) so that analysis and plotting never need SimPy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import pandas as pd

from sim.experiment.records import ComponentRecord, TopologyRun
from sim.model import topologies
from sim.model.world import STATUS_NAMES, World
from sim.scenario.models import Scenario


def run_topology(
    scenario: Scenario,
    topology: str,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
    replication: int = 0,
    trace: int = 0,
) -> TopologyRun:
    """Simulate one topology of ``scenario`` (replication ``replication``) and return its raw
    records; ``trace`` > 0 records spans for that many sampled instances of each workflow."""
    started = time.perf_counter()
    world = World(scenario, seed, replication, trace)
    coordinator = topologies.build(world, scenario, topology)
    world.run(coordinator.arrive, progress)
    wall = time.perf_counter() - started
    return TopologyRun(
        topology=topology,
        kind=scenario.topology_kind(topology),
        seed=world.seed,
        replication=replication,
        requests=_requests(world, topology),
        components=[
            ComponentRecord(
                name=st.name,
                kind=st.kind,
                servers=st.servers,
                arrived=np.array(st.arrived, dtype=float),
                started=np.array(st.started, dtype=float),
                ended=np.array(st.ended, dtype=float),
                rejected=np.array(st.rejected, dtype=float),
                aborted=np.array(st.aborted, dtype=float),
                errors=np.array(st.errors, dtype=float),
            )
            for st in world.components
        ],
        messages=world.messages,
        end_time=float(world.env.now),
        wall_seconds=wall,
        counters=_counters(world, coordinator),
        faults=list(world.faults.windows),
        spans=_spans(world, topology),
    )


def _spans(world: World, topology: str) -> pd.DataFrame:
    columns = ["workflow", "instance", "span", "parent", "component", "operation", "start", "end", "status"]
    spans = [] if world.tracer is None else world.tracer.spans
    frame = pd.DataFrame([asdict(s) for s in spans], columns=columns)
    frame.insert(0, "replication", world.replication)
    frame.insert(0, "topology", topology)
    return frame.sort_values(["workflow", "instance", "start", "span"], kind="stable").reset_index(drop=True)


def _counters(world: World, coordinator: object) -> dict[str, float]:
    broker = getattr(coordinator, "broker", None)
    breakers = getattr(coordinator, "breakers", {})
    bulkheads = getattr(coordinator, "bulkheads", {})
    return {
        "decisions": int(getattr(coordinator, "decisions", 0)),
        "attempts": world.attempts,
        "duplicates": world.duplicates,
        "dead_letters": world.dead_letters,
        "lost_work": float(sum(st.lost_work for st in world.components)),
        "publish_failures": broker.publish_failures if broker is not None else 0,
        "breaker_openings": sum(b.opened for b in breakers.values()),
        "bulkhead_refusals": sum(b.refused for b in bulkheads.values()),
    }


def _requests(world: World, topology: str) -> pd.DataFrame:
    """One row per workflow instance, in (workflow, id) order."""
    workflow = np.concatenate([np.full(p.count, p.name, dtype=object) for p in world.plans])
    ids = np.concatenate([np.arange(p.count) for p in world.plans])
    step_names = {p.name: [s.service for s in p.steps] for p in world.plans}
    failed_at = [step_names[w][k] if k >= 0 else None for w, k in zip(workflow.tolist(), world.failed_step)]
    status = np.array(world.status, dtype=np.int8)
    completion = np.array(world.completion, dtype=float)
    frame = pd.DataFrame(
        {
            "topology": topology,
            "replication": np.full(len(ids), world.replication, dtype=np.int32),
            "workflow": workflow,
            "id": ids,
            "arrival": world.arrival,
            "completion": completion,
            "status": pd.Categorical.from_codes(status, [STATUS_NAMES[i] for i in range(len(STATUS_NAMES))]),
            "latency": completion - world.arrival,
            "failed_at": pd.array(failed_at, dtype="string"),
            "inconsistency_start": np.array(world.undo_start, dtype=float),
            "inconsistency_end": np.array(world.undo_end, dtype=float),
            "async_completion": np.array(world.async_completion, dtype=float),
            "async_pending": np.array(world.async_pending, dtype=np.int32),
            "async_failures": np.array(world.async_failures, dtype=np.int32),
        }
    )
    return frame


def simulate(task: tuple[Scenario, str, int, int]) -> TopologyRun:
    """Run one (scenario, topology, replication, trace) task: what executors call in their workers."""
    scenario, topology, replication, trace = task
    return run_topology(scenario, topology, replication=replication, trace=trace)
