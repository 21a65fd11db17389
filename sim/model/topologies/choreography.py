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

from typing import Literal

from sim.model import streams
from sim.model.resilience import backoff
from sim.model.topologies.base import Coordinator
from sim.model.topologies.broker import MessageBroker
from sim.model.world import COMPLETED, FAILED, Instance, World
from sim.scenario.models import Topology

ENTRY = -1
"""Pseudo step index of the event that starts a workflow."""

Kind = Literal["step", "undo"]
Event = tuple[Instance, int, bool, Kind]
"""(instance, step index, success, kind): a completion or failure event, or a compensation event."""
Delivery = tuple[Instance, int, int, int]
"""(instance, step index, delivery number, attempt number)."""


class Choreography(Coordinator):
    """Coordinates steps by events on a shared broker."""

    def __init__(self, world: World, name: str, config: Topology) -> None:
        super().__init__(world, name, config)
        self.broker = MessageBroker(world, config.broker)
        self.services = world.scenario.services
        self.jitter = streams.uniforms(world.seed, f"{name}/jitter", world.replication)

    def arrive(self, inst: Instance) -> None:
        """A client publishes the event that starts the workflow."""
        inst.pending = len(inst.plan.stages[-1])
        self.world.messages += 1
        self.world.after(inst.net_entry, self.publish, (inst, ENTRY, True, "step"))

    # -- events through the broker -----------------------------------------------------------

    def publish(self, event: Event) -> None:
        inst, k = event[0], event[1]
        producer = "client" if k == ENTRY else inst.plan.steps[k].service
        if inst.marks is not None:
            self.world.mark(inst, ("publish", k, event[3]))
        self.broker.publish(producer, self.committed, event, self.unpublished)

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
            self.broker.deliver(inst.net_in[step.index], self.deliver, (inst, step.index, 1, 1))

    # -- consumers --------------------------------------------------------------------------

    def deliver(self, delivery: Delivery) -> None:
        """An event reaches a subscriber; a join waits until all its inputs are there."""
        inst, k, _, _ = delivery
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
        self.consume(delivery)

    def consume(self, delivery: Delivery) -> None:
        """The consumer takes the event from its subscription (unless it cannot be reached)."""
        inst, k, number, attempt = delivery
        service = inst.plan.steps[k].service
        cut = self.world.faults.partitioned("broker", service)
        if cut is not None:
            if cut.mode == "hold":
                self.world.after(cut.at + cut.duration - self.world.env.now, self.consume, delivery)
            else:
                self.redeliver(delivery)
            return
        self.world.attempts += 1
        if inst.marks is not None:
            self.world.mark(inst, ("handle", k, number, attempt))
        work = inst.work[k] if number == 1 and attempt == 1 else inst.plan.retry_work[k]()
        if not inst.plan.steps[k].station.submit(work, self.served, delivery, self.redeliver):
            self.dead_letter(inst, k)

    def served(self, delivery: Delivery) -> None:
        inst, k, number, attempt = delivery
        first = number == 1 and attempt == 1
        ok = self.world.succeeded(inst, k, None if first else inst.plan.retry_errors[k]())
        if inst.marks is not None:
            self.world.span(inst, ("handle", k, number, attempt), inst.plan.steps[k].service, "handle", ok)
        if ok:
            self.world.effect_time(inst)
            inst.effects.append(k)
            inst.calls -= 1
            if inst.failure >= 0:  # it learns of the failure: undo at once
                self.undo(inst, k)
                self.maybe_end(inst)
            else:
                self.emit(inst, k, True, "step")
            return
        retry = self.services[inst.plan.steps[k].service].retry
        if retry is not None and attempt < retry.max_attempts and inst.failure < 0:
            wait = backoff(retry, attempt, self.jitter())
            self.world.after(wait, self.consume, (inst, k, number, attempt + 1))
            return
        self.dead_letter(inst, k)

    def redeliver(self, delivery: Delivery) -> None:
        """The event was not acknowledged (the consumer crashed or was unreachable): the broker
        delivers it again after the redelivery delay, or dead-letters it."""
        inst, k, number, attempt = delivery
        if number >= self.broker.config.max_deliveries:
            self.dead_letter(inst, k)
            return
        self.world.duplicates += 1
        again = (inst, k, number + 1, attempt)
        self.world.after(self.broker.config.redelivery_delay, self._deliver_again, again)

    def _deliver_again(self, delivery: Delivery) -> None:
        self.broker.deliver(self.world.hop(), self.consume, delivery)

    def dead_letter(self, inst: Instance, k: int) -> None:
        """The event is given up: the step fails and the service says so."""
        self.world.dead_letters += 1
        inst.calls -= 1
        if inst.failure >= 0:
            self.maybe_end(inst)
        else:
            self.emit(inst, k, False, "step")

    def emit(self, inst: Instance, k: int, ok: bool, kind: Kind) -> None:
        """The service publishes an event over the network."""
        self.world.messages += 1
        self.world.after(
            inst.net_out[k] if kind == "step" else self.world.hop(), self.publish, (inst, k, ok, kind)
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
        self.broker.deliver(self.world.hop(), self._compensate, (inst, k, 1))

    def _compensate(self, item: tuple[Instance, int, int]) -> None:
        inst, k, _ = item
        self.world.attempts += 1
        if inst.marks is not None:
            self.world.mark(inst, ("undo", k))
        work = inst.plan.compensation_work[k]()  # type: ignore[misc]
        if not inst.plan.steps[k].station.submit(work, self._compensated, item, self._compensate_later):
            self.emit(inst, k, False, "undo")

    def _compensate_later(self, item: tuple[Instance, int, int]) -> None:
        """A crash aborted the compensation: the failure event is delivered again later."""
        self.world.duplicates += 1
        self.world.after(self.broker.config.redelivery_delay, self._compensate, item)

    def _compensated(self, item: tuple[Instance, int, int]) -> None:
        inst, k, attempt = item
        service = self.services[inst.plan.steps[k].service]
        assert service.compensation is not None
        ok = inst.plan.compensation_errors[k]() >= service.compensation.error_probability
        if inst.marks is not None:
            self.world.span(inst, ("undo", k), inst.plan.steps[k].service, "compensate", ok)
        retry = service.retry
        if not ok and retry is not None and attempt < retry.max_attempts:  # retried like its step
            wait = backoff(retry, attempt, self.jitter())
            self.world.after(wait, self._compensate, (inst, k, attempt + 1))
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
            self.world.end_failed(inst)
