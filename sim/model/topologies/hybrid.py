"""Hybrid: an engine drives the critical path, side effects travel as events.

The engine coordinates the workflow exactly as in :mod:`orchestration`, except for the steps of
the ``asynchronous`` services: for those, the engine publishes an event to the broker and goes on
as soon as the broker has committed it (the acknowledgement is a reply like any other). The
service consumes the event later, off the critical path. The workflow's latency is the critical
path; the completion of its asynchronous steps is recorded separately, and their failures do not
fail the workflow. An asynchronous step counts as taken effect once published, so a saga
compensates it like any other.
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
        inst.calls += 1
        self.world.messages += 1
        self.world.after(self.world.hop(), self.publish, (inst, step.index))

    def publish(self, event: tuple[Instance, int]) -> None:
        if event[0].marks is not None:
            self.world.mark(event[0], ("publish", event[1]))
        self.broker.publish("orchestrator", self.committed, event, self.unpublished)

    def unpublished(self, event: tuple[Instance, int]) -> None:
        """The engine could not publish: the step fails."""
        inst, k = event
        self.decide((inst, k, False, False))

    def committed(self, event: tuple[Instance, int]) -> None:
        """The broker acknowledges to the engine and delivers the event to the service."""
        inst, k = event
        world = self.world
        if inst.marks is not None:
            world.span(inst, ("publish", k), "broker", f"publish {inst.plan.steps[k].service} request")
            world.mark(inst, ("async", k))
        world.async_started(inst)
        world.after(world.hop(), self.decide, (inst, k, True, False))
        self.broker.deliver(inst.net_in[k], self.consume, event)

    def consume(self, event: tuple[Instance, int]) -> None:
        inst, k = event
        self.world.attempts += 1
        if not inst.plan.steps[k].station.submit(inst.work[k], self.consumed, event, self.consume_later):
            self.world.async_done(inst, False)

    def consume_later(self, event: tuple[Instance, int]) -> None:
        """The consumer crashed while processing the event: it is delivered again later."""
        self.world.duplicates += 1
        self.world.after(self.broker.config.redelivery_delay, self.consume, event)

    def consumed(self, event: tuple[Instance, int]) -> None:
        inst, k = event
        ok = self.world.succeeded(inst, k)
        if inst.marks is not None:
            self.world.span(inst, ("async", k), inst.plan.steps[k].service, "deliver and handle (async)", ok)
        self.world.async_done(inst, ok)
