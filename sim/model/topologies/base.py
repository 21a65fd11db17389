"""What every coordination style has in common: a world to act in, and a way in for arrivals."""

from __future__ import annotations

from sim.model.world import Instance, World
from sim.scenario.models import Topology


class Coordinator:
    """Coordinates the steps of workflow instances in a :class:`World`.

    A coordinator owns only what its style adds to the world (an orchestrator, a broker) and the
    rules that move an instance from step to step. Services, network and load belong to the world.
    """

    kind = "coordinator"

    def __init__(self, world: World, name: str, config: Topology) -> None:
        self.world = world
        self.name = name
        self.config = config

    def arrive(self, inst: Instance) -> None:
        """A new workflow instance has arrived; start coordinating it."""
        raise NotImplementedError
