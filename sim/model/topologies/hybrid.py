"""Hybrid: an engine drives the critical path, side effects travel as events.

The engine coordinates the workflow exactly as in :mod:`orchestration`, except for the steps of
the ``asynchronous`` services: for those, the engine publishes an event to the broker and goes on
as soon as the broker has committed it (the acknowledgement is a reply like any other). The
service consumes the event later, off the critical path. The workflow's latency is the critical
path; the completion of its asynchronous steps is recorded separately, and their failures do not
fail the workflow.
"""

from __future__ import annotations

from sim.model.topologies.broker import MessageBroker
from sim.model.topologies.orchestration import Orchestration
from sim.model.world import Instance, StepPlan, World
from sim.scenario.models import Topology


class Hybrid(Orchestration):
    """Orchestration for the critical path, choreography for the ``asynchronous`` steps."""

    def __init__(self, world: World, name: str, config: Topology) -> None:
        super().__init__(world, name, config)
        self.broker = MessageBroker(world, config.broker)
        self.asynchronous = frozenset(config.asynchronous)

    def dispatch(self, inst: Instance, step: StepPlan) -> None:
        if step.service not in self.asynchronous:
            super().dispatch(inst, step)
            return
        self.world.async_started(inst)
        self.world.messages += 1
        self.world.after(self.world.hop(), self.publish, (inst, step.index))

    def publish(self, event: tuple[Instance, int]) -> None:
        self.broker.publish(self.committed, event)

    def committed(self, event: tuple[Instance, int]) -> None:
        """The broker acknowledges to the engine and delivers the event to the service."""
        inst, k = event
        world = self.world
        world.after(world.hop(), self.decide, (inst, k, True))
        world.messages += 1
        world.after(self.broker.delivery_latency() + inst.net_in[k], self.consume, event)

    def consume(self, event: tuple[Instance, int]) -> None:
        inst, k = event
        if not inst.plan.steps[k].station.submit(inst.work[k], self.consumed, event):
            self.world.async_done(inst, False)

    def consumed(self, event: tuple[Instance, int]) -> None:
        inst, k = event
        self.world.async_done(inst, self.world.succeeded(inst, k))
