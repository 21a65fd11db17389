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

    def __init__(
        self, world: World, name: str, config: Topology, retries: dict[str, RetryPolicy] | None = None
    ) -> None:
        self.world = world
        self.name = name
        self.config = config
        self.saga = Saga(world)
        self.services = world.scenario.services
        self.jitters = {n: world.uniforms(f"jitter/{n}") for n in self.services}
        """One U(0, 1) stream per service for the backoff jitter of the calls to it, named after
        the service only, so that every topology draws the same jitter for the same retry."""
        if retries is None:
            configs = {n: s.retry for n, s in self.services.items()}
            retries = retry_policies(configs, self.jitters, world.counters)
        self.retries: dict[str, RetryPolicy] = retries
        """The retry policy of each service that has one (every caller of a topology shares it,
        and so its budget)."""

    def arrive(self, inst: Instance) -> None:
        """A new workflow instance has arrived; start coordinating it."""
        raise NotImplementedError

    def watch(self, inst: Instance) -> None:
        """Arm the deadline of a new instance, if its workflow has one."""
        deadline = inst.plan.deadline
        if deadline is not None:
            self.world.after(deadline, self.overdue, inst)

    def overdue(self, inst: Instance) -> None:
        """The instance's deadline has passed: if it is still running, it fails now."""
        raise NotImplementedError

    def fails_at(self, inst: Instance) -> int:
        """The step a workflow failed by its deadline is said to have failed at: the first step
        after the last one known to have taken effect."""
        return min(max(inst.effects, default=-1) + 1, len(inst.plan.steps) - 1)
