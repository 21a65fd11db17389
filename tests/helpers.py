"""Shared helpers for tests: small scenarios as data, and batch-means confidence intervals."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sim import scenario_from_dict
from sim.analysis.metrics import requests_frame
from sim.model.records import TopologyRun
from sim.running.simulate import Task, simulate
from sim.scenario.models import Scenario

QUEUE: dict[str, Any] = {"broker": {"kind": "queue"}}
"""A choreography whose services compete for one queue each (RabbitMQ, SQS): with no coordination
costs, the same queueing network as an orchestration, instance by instance. (A log is not: its
partitions are processed in order; see the partitioned formulas in the textbook tests.)"""


def scenario(
    services: dict[str, Any],
    steps: list[Any],
    rate: float,
    duration: float,
    warmup: float = 0.0,
    topologies: dict[str, Any] | None = None,
    seed: int = 1,
    **extra: Any,
) -> Scenario:
    """A one-workflow scenario with zero overheads unless ``topologies`` says otherwise (by default
    an orchestration and a choreography over a queue broker)."""
    data = {
        "name": "test",
        "seed": seed,
        "duration": duration,
        "warmup": warmup,
        "services": copy.deepcopy(services),
        "workflows": {"wf": {"steps": steps}},
        "load": {"wf": {"arrival": "poisson", "rate": rate}},
        "topologies": topologies if topologies is not None else {"orchestration": {}, "choreography": QUEUE},
        **extra,
    }
    return scenario_from_dict(data)


class Simulated:
    """One simulation's raw records, with its per-instance requests frame at hand."""

    def __init__(self, records: TopologyRun) -> None:
        self.records = records
        self.requests = requests_frame(records)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.records, name)


def run_topology(sc: Scenario, topology: str, seed: int | None = None, replication: int = 0) -> Simulated:
    """Simulate one topology of ``sc`` (with ``seed`` instead of the scenario's, if given)."""
    if seed is not None:
        sc = sc.model_copy(update={"seed": seed})
    return Simulated(simulate(Task(sc, topology, replication)))


def batch_means(
    requests: pd.DataFrame, warmup: float, duration: float, batches: int = 20, confidence: float = 0.999
) -> tuple[float, float]:
    """Mean latency of completed workflows and the half-width of its batch-means interval.

    Workflows are grouped by arrival time into ``batches`` consecutive batches; batch means are
    nearly independent when batches are long compared with the system's relaxation time, so the
    Student-t interval over them is an honest tolerance derived from the run itself.
    """
    done = requests[(requests["status"] == "completed") & (requests["arrival"] >= warmup)]
    done = done[done["arrival"] < duration]
    edges = np.linspace(warmup, duration, batches + 1)
    idx = np.clip(np.searchsorted(edges, done["arrival"].to_numpy(), side="right") - 1, 0, batches - 1)
    means = pd.Series(done["latency"].to_numpy()).groupby(idx).mean().to_numpy()
    half = stats.t.ppf(0.5 + confidence / 2, len(means) - 1) * means.std(ddof=1) / np.sqrt(len(means))
    return float(done["latency"].mean()), float(half)


def erlang_c_wait(c: int, lam: float, mu: float) -> float:
    """Mean waiting time in queue of an M/M/c queue (Erlang C formula)."""
    a = lam / mu
    rho = a / c
    terms = sum(a**k / math.factorial(k) for k in range(c))
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (terms + top)
    return p_wait / (c * mu - lam)


SMALL_TOPOLOGIES: dict[str, Any] = {
    "orchestration": {"orchestrator": {"shard_concurrency": 2, "decision_cpu": 0.004}},
    "choreography": {"broker": {"capacity": 500}},
    "hybrid": {"asynchronous": ["b"]},
}
"""The three styles on :func:`small_scenario` (the hybrid's orchestrator and broker unlimited)."""


def small_scenario(name: str, topologies: dict[str, Any] | None = None, **extra: Any) -> Scenario:
    """A small workflow (a step, then two in parallel) at 12 per second for 30 s, on
    ``SMALL_TOPOLOGIES`` unless told otherwise: quick to run, with something in every output."""
    services = {
        "a": {"latency": {"dist": "exponential", "mean": 0.05}, "replicas": 2},
        "b": {"latency": 0.02},
        "c": {"latency": {"dist": "exponential", "mean": 0.01}, "error_probability": 0.01},
    }
    steps = ["a", {"parallel": ["b", "c"]}]
    chosen = SMALL_TOPOLOGIES if topologies is None else topologies
    return scenario(services, steps, 12, 30, warmup=3, topologies=chosen, seed=5, name=name, **extra)
