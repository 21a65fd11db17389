"""Coordination styles. :func:`build` is the one place that maps a topology's kind to its class."""

from __future__ import annotations

from sim.model.coordinators.base import Coordinator
from sim.model.coordinators.choreography import Choreography
from sim.model.coordinators.hybrid import Hybrid
from sim.model.coordinators.orchestration import Orchestration
from sim.model.world import World
from sim.scenario.models import Scenario

KINDS: dict[str, type[Coordinator]] = {
    "orchestration": Orchestration,
    "choreography": Choreography,
    "hybrid": Hybrid,
}


def build(world: World, scenario: Scenario, name: str) -> Coordinator:
    """The coordinator of topology ``name`` of ``scenario``, acting in ``world``."""
    return KINDS[scenario.topology_kind(name)](world, name, scenario.topologies[name])


__all__ = ["KINDS", "Coordinator", "build"]
