"""What a run costs: the counted units of each topology times the scenario's unit prices
(:mod:`sim.scenario.costs`), over the whole run.

Each topology pays for what it runs: the engine (decisions, actions, replica-hours, its store's
hours and writes) under orchestration and hybrid, the broker (events, gigabytes, partition-hours,
node-hours) under choreography and hybrid, and every service's replicas in all of them. Hours
are the run's own, from its start to its end (the drain included); an autoscaled component pays
for the replicas it ran, starting and draining ones included. The price per 1,000
workflows divides by the workflows that completed in the run: a style that fails workflows pays
more for each one that succeeds.
"""

from __future__ import annotations

import math

from sim.analysis.replicas import replica_hours
from sim.model.records import TopologyRun
from sim.scenario.broker import Broker
from sim.scenario.costs import Costs
from sim.scenario.engine import Orchestrator
from sim.scenario.models import BROKER_KINDS, ENGINE_KINDS, Scenario

COST_FIGURES = ["cost_engine", "cost_broker", "cost_services", "cost", "cost_per_1k"]
"""Summary columns of the cost model (NaN when the scenario prices nothing)."""


def prices(scenario: Scenario, topology: str) -> Costs | None:
    """The unit prices a topology pays: the scenario's, with the topology's own over them."""
    own = scenario.topologies[topology].costs
    if scenario.costs is None:
        return own
    return scenario.costs.merged(own)


def cost_figures(run: TopologyRun, scenario: Scenario, completed: int) -> dict[str, float]:
    """The cost of ``run`` by part, in all, and per 1,000 of its ``completed`` workflows."""
    price = prices(scenario, run.topology)
    if price is None:
        return dict.fromkeys(COST_FIGURES, math.nan)
    hours = run.end_time / 3600.0
    counters = run.counters
    topology = scenario.topologies[run.topology]
    engine = broker = 0.0
    if run.kind in ENGINE_KINDS:
        config = topology.orchestrator or Orchestrator()
        engine = (
            counters.get("decisions", 0) * price.per_transition
            + counters.get("actions", 0) * price.per_action
            + replica_hours(run, "orchestrator", config.replicas) * price.engine_hour
            + counters.get("store_writes", 0) * price.per_store_write
            + (hours * price.store_hour if config.store is not None else 0.0)
        )
    if run.kind in BROKER_KINDS:
        config_b = topology.broker or Broker()
        events = counters.get("events", 0)
        topics = len(run.groups)
        broker = (
            events * price.per_event
            + events * price.event_size_kb / 1e6 * price.per_gb
            + (config_b.partitions * topics * hours * price.partition_hour if config_b.kind == "log" else 0.0)
            + (
                config_b.brokers * hours * price.broker_hour
                if config_b.kind == "log"
                else hours * price.broker_hour
            )
        )
    services = sum(
        replica_hours(run, name, svc.replicas) * price.services.get(name, price.replica_hour)
        for name, svc in scenario.services.items()
    )
    total = engine + broker + services
    return {
        "cost_engine": engine,
        "cost_broker": broker,
        "cost_services": services,
        "cost": total,
        "cost_per_1k": 1000.0 * total / completed if completed else math.nan,
    }
