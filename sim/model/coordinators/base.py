"""What every coordination style has in common: a world to act in, and a way in for arrivals."""

from __future__ import annotations

from sim.model.resilience import RetryPolicy, retry_policies
from sim.model.saga import Saga
from sim.model.workflow import Instance
from sim.model.world import World
from sim.scenario.models import Topology


class Coordinator:
    """Coordinates the steps of workflow instances in a :class:`World`.

    A coordinator owns only what its style adds to the world (an orchestrator, a broker) and the
    rules that move an instance from step to step. Services, network and load belong to the world;
    how a failed instance ends belongs to the saga.
    """

    kind = "coordinator"

    def __init__(self, world: World, name: str, config: Topology) -> None:
        self.world = world
        self.name = name
        self.config = config
        self.saga = Saga(world)
        self.services = world.scenario.services
        self.retries: dict[str, RetryPolicy] = retry_policies(
            {n: s.retry for n, s in self.services.items()}, world.uniforms(f"{name}/jitter")
        )
        """The retry policy of each service that has one; the topology's retries share one
        jitter stream, drawn in order of use."""

    def arrive(self, inst: Instance) -> None:
        """A new workflow instance has arrived; start coordinating it."""
        raise NotImplementedError
