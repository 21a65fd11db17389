"""Hybrid: an engine drives the critical path, side effects travel as events.

The engine coordinates the workflow exactly as in :mod:`orchestration`, except for the steps of
the ``asynchronous`` services: for those, the engine publishes an event to the broker and goes on
as soon as the broker has committed it (the acknowledgement is a reply like any other). The
service consumes the event later, off the critical path, with the same consumer as choreography
(:mod:`sim.model.consumer`: the service's retry policy, redelivery after a crash, dead-lettering
after ``max_deliveries``). The workflow's latency is the critical path; the completion of its
asynchronous steps is recorded separately, and their failures do not fail the workflow. An
asynchronous step counts as taken effect once published, so a saga compensates it like any other.
"""

from __future__ import annotations

from sim.model.broker import MessageBroker
from sim.model.consumer import Consumer, Delivery
from sim.model.coordinators.orchestration import Orchestration, Reply
from sim.model.workflow import Instance, StepPlan
from sim.model.world import World
from sim.scenario.models import Topology

ASYNC = "async"
"""Tag of the trace marks of an asynchronous step's delivery."""


class Hybrid(Orchestration):
    """Orchestration for the critical path, choreography for the ``asynchronous`` steps."""

    def __init__(self, world: World, name: str, config: Topology) -> None:
        super().__init__(world, name, config)
        self.broker = MessageBroker(world, config.broker, self.committed, self.unpublished)
        self.asynchronous = frozenset(config.asynchronous)
        self.consumer = Consumer(
            world, self.broker, self.retries, self._handled, self._given_up, operation="handle (async)"
        )

    def dispatch(self, inst: Instance, step: StepPlan) -> None:
        if step.service not in self.asynchronous:
            super().dispatch(inst, step)
            return
        inst.calls += 1
        self.world.counters.messages += 1
        self.world.after(self.world.hop(), self.publish, Delivery(inst, step.index))

    def publish(self, d: Delivery) -> None:
        if d.inst.marks is not None:
            self.world.mark(d.inst, ("publish", d.step))
        self.broker.publish("orchestrator", d)

    def unpublished(self, d: Delivery) -> None:
        """The engine could not publish: the step fails."""
        self.decide(Reply(d.inst, d.step, False))

    def committed(self, d: Delivery) -> None:
        """The broker acknowledges to the engine and delivers the event to the service."""
        inst, k = d.inst, d.step
        world = self.world
        if inst.marks is not None:
            world.span(inst, ("publish", k), "broker", f"publish {inst.plan.steps[k].service} request")
            world.mark(inst, ("deliver", k, ASYNC))
        world.async_started(inst)
        world.after(world.hop(), self.decide, Reply(inst, k))
        self.broker.deliver(inst.net_in[k], self._arrived, d)

    def _arrived(self, d: Delivery) -> None:
        inst = d.inst
        if inst.marks is not None:
            service = inst.plan.steps[d.step].service
            self.world.span(inst, ("deliver", d.step, ASYNC), "broker", f"deliver to {service} (async)")
        self.consumer.consume(d)

    def _handled(self, d: Delivery) -> None:
        self.world.async_done(d.inst, True)

    def _given_up(self, d: Delivery) -> None:
        self.world.async_done(d.inst, False)
