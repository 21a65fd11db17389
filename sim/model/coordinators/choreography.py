"""Event choreography: services react to each other's events through a broker.

There is no central controller. A client publishes the workflow's first event; each service
consumes its own subscription, does its work and publishes a completion event, which the broker
delivers to the services of the next step. A join (the step after a parallel group) waits, per
correlation id, until the completion events of every branch have arrived; only then does the
service queue the work. Events that only fill a join take no service time. A workflow is complete
when the broker has committed the completion events of its last steps.

Failures, the choreographed way:

* a consumer whose work ends in an error retries it locally with the service's retry policy;
  when that is exhausted (or without one) the event goes to the dead-letter queue and the
  service publishes a failure event;
* a consumer that crashes while processing an event does not acknowledge it: the broker delivers
  it again after ``redelivery_delay`` (at-least-once; counted as a duplicate), up to
  ``max_deliveries`` times, then dead-letters it;
* events for a down consumer wait in its subscription and are worked off when it is back
  (catch-up); a full subscription (``queue_limit``) rejects the event, which fails the step;
* when a failure event is committed, no service starts new work for that workflow, and every
  service whose step took effect compensates itself (in parallel, retrying a failed compensation
  with its retry policy) and publishes a compensation event; the workflow ends compensated,
  inconsistent or failed when the last one is committed and no step of it is still running.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from sim.model.broker import MessageBroker
from sim.model.consumer import Consumer, Delivery
from sim.model.coordinators.base import Coordinator
from sim.model.outcomes import COMPLETED, FAILED
from sim.model.workflow import Instance
from sim.model.world import World
from sim.scenario.models import Topology

ENTRY = -1
"""Pseudo step index of the event that starts a workflow."""

Kind = Literal["step", "undo"]


class Event(NamedTuple):
    """An event a service (or the client, for step ``ENTRY``) publishes: a step's completion or
    failure, or a compensation's outcome (``kind`` undo)."""

    inst: Instance
    step: int
    ok: bool
    kind: Kind


class Compensation(NamedTuple):
    """A compensation of a step, delivered to its service; ``attempt`` counts its tries."""

    inst: Instance
    step: int
    attempt: int = 1


class Choreography(Coordinator):
    """Coordinates steps by events on a shared broker."""

    def __init__(self, world: World, name: str, config: Topology) -> None:
        super().__init__(world, name, config)
        self.broker = MessageBroker(world, config.broker, self.committed, self.unpublished)
        self.consumer = Consumer(world, self.broker, self.retries, self.handled, self.dead_lettered)

    def arrive(self, inst: Instance) -> None:
        """A client publishes the event that starts the workflow."""
        inst.pending = len(inst.plan.stages[-1])
        self.world.counters.messages += 1
        self.world.after(inst.net_entry, self.publish, Event(inst, ENTRY, True, "step"))

    # -- events through the broker -----------------------------------------------------------

    def publish(self, event: Event) -> None:
        inst, k = event.inst, event.step
        producer = "client" if k == ENTRY else inst.plan.steps[k].service
        if inst.marks is not None:
            self.world.mark(inst, ("publish", k, event.kind))
        self.broker.publish(producer, event)

    def unpublished(self, event: Event) -> None:
        """The producer gave up publishing (the broker stayed unreachable)."""
        inst, k, _, kind = event
        if inst.finished:
            return
        if k == ENTRY:
            self.world.finish(inst, FAILED)
        elif kind == "undo":
            self.undone(inst, k, False)
        else:
            self.fail(inst, k)

    def committed(self, event: Event) -> None:
        """The event is in the log: the workflow moves on, fails, or its saga advances."""
        inst, k, ok, kind = event
        if inst.marks is not None:
            name = (
                "start"
                if k == ENTRY
                else f"{inst.plan.steps[k].service} {'undone' if kind == 'undo' else 'done'}"
            )
            self.world.span(inst, ("publish", k, kind), "broker", f"publish {name}", ok)
        if inst.finished:
            return
        if kind == "undo":
            self.undone(inst, k, ok)
            return
        if not ok:
            self.fail(inst, k)
            return
        if inst.failure >= 0:  # the workflow has failed: its services start nothing new for it
            return
        steps = inst.plan.steps
        if k != ENTRY and steps[k].terminal:
            inst.pending -= 1
            if inst.pending == 0:
                self.world.finish(inst, COMPLETED)
            return
        followers = inst.plan.entry_steps if k == ENTRY else steps[k].followers
        for step in followers:
            if inst.marks is not None:
                self.world.mark(inst, ("deliver", step.index, k))
            self.broker.deliver(inst.net_in[step.index], self.deliver, Delivery(inst, step.index))

    # -- consumers --------------------------------------------------------------------------

    def deliver(self, d: Delivery) -> None:
        """An event reaches a subscriber; a join waits until all its inputs are there."""
        inst, k = d.inst, d.step
        step = inst.plan.steps[k]
        if inst.marks is not None:
            for source in [*(p for p in range(-1, k) if ("deliver", k, p) in inst.marks)]:
                self.world.span(inst, ("deliver", k, source), "broker", f"deliver to {step.service}")
        if inst.failure >= 0 or inst.finished:
            return
        if step.inputs > 1:
            joins = inst.joins
            if joins is None:
                joins = inst.joins = {}
            seen = joins.get(k, 0) + 1
            joins[k] = seen
            if seen < step.inputs:
                return
        inst.calls += 1
        self.consumer.consume(d)

    def handled(self, d: Delivery) -> None:
        """The service's work succeeded: it took effect, and the service says so (or undoes it at
        once if it has learnt that the workflow failed meanwhile)."""
        inst, k = d.inst, d.step
        self.saga.took_effect(inst)
        inst.effects.append(k)
        inst.calls -= 1
        if inst.failure >= 0:
            self.undo(inst, k)
            self.maybe_end(inst)
        else:
            self.emit(inst, k, True, "step")

    def dead_lettered(self, d: Delivery) -> None:
        """The event was given up: the step fails and the service says so."""
        inst = d.inst
        inst.calls -= 1
        if inst.failure >= 0:
            self.maybe_end(inst)
        else:
            self.emit(inst, d.step, False, "step")

    def emit(self, inst: Instance, k: int, ok: bool, kind: Kind) -> None:
        """The service publishes an event over the network."""
        self.world.counters.messages += 1
        self.world.after(
            inst.net_out[k] if kind == "step" else self.world.hop(), self.publish, Event(inst, k, ok, kind)
        )

    # -- the choreographed saga -----------------------------------------------------------------

    def fail(self, inst: Instance, k: int) -> None:
        """A failure event is committed: every service that took effect compensates itself."""
        if inst.failure >= 0:
            return
        inst.failure = k
        for done in list(inst.effects):
            self.undo(inst, done)
        self.maybe_end(inst)

    def undo(self, inst: Instance, k: int) -> None:
        """The failure event reaches the service of step ``k``, which compensates its effect."""
        if self.services[inst.plan.steps[k].service].compensation is None:
            inst.undo_failed = True
            return
        inst.undoing += 1
        self.broker.deliver(self.world.hop(), self._compensate, Compensation(inst, k))

    def _compensate(self, c: Compensation) -> None:
        inst, k = c.inst, c.step
        self.world.counters.attempts += 1
        if inst.marks is not None:
            self.world.mark(inst, ("undo", k))
        work = inst.plan.compensation_work[k]()  # type: ignore[misc]
        if inst.plan.steps[k].station.submit(work, self._compensated, c, self._compensate_later) < 0:
            self.emit(inst, k, False, "undo")

    def _compensate_later(self, c: Compensation) -> None:
        """A crash aborted the compensation: the failure event is delivered again later."""
        self.world.counters.duplicates += 1
        self.world.after(self.broker.config.redelivery_delay, self._compensate, c)

    def _compensated(self, c: Compensation) -> None:
        inst, k = c.inst, c.step
        name = inst.plan.steps[k].service
        service = self.services[name]
        assert service.compensation is not None
        ok = inst.plan.compensation_errors[k]() >= service.compensation.error_probability
        if inst.marks is not None:
            self.world.span(inst, ("undo", k), name, "compensate", ok)
        retry = self.retries.get(name)
        if not ok and retry is not None and retry.allows(c.attempt):  # retried like its step
            self.world.after(retry.next_delay(c.attempt), self._compensate, c._replace(attempt=c.attempt + 1))
            return
        self.emit(inst, k, ok, "undo")

    def undone(self, inst: Instance, k: int, ok: bool) -> None:
        """A compensation event is committed."""
        inst.undoing -= 1
        if ok:
            inst.effects.remove(k)
        else:
            inst.undo_failed = True
        self.maybe_end(inst)

    def maybe_end(self, inst: Instance) -> None:
        if inst.failure >= 0 and inst.calls == 0 and inst.undoing == 0:
            self.saga.settle(inst)
