"""Event choreography: services react to each other's events through a broker.

There is no central controller. A client publishes the workflow's first event; each service
consumes its own subscription (a consumer group of the broker, :mod:`sim.model.broker`), does
its work and publishes a completion event, which the broker delivers to the services of the next
step. A join (the step after a parallel group) waits, per correlation id, until the completion
events of every branch are in; only then does the service get the work. A workflow is complete
when the broker has committed the completion events of its last steps.

Failures, the choreographed way (the consumer's rules are in :mod:`sim.model.consumer`):

* a consumer whose work ends in an error retries it in place with the service's retry policy;
  when that is exhausted (or without one) the event goes to the dead-letter queue and the
  service publishes a failure event;
* a consumer that crashes before it committed (a log) or acknowledged (a queue) gets its events
  delivered again, to itself or another consumer (at least once; counted as duplicates); events
  for a down consumer wait in the broker and are worked off when it is back (catch-up);
* when a failure event is committed, no service starts new work for that workflow (its queued
  step events are skipped); once none of its steps is running, the services whose steps took
  effect compensate themselves in the saga's order (:mod:`sim.model.saga`), each reading a
  failure event from its subscription (retrying a failed compensation with its retry policy)
  and publishing a compensation event; the workflow ends compensated, inconsistent or failed
  when the last one is committed;
* a service publishes its events by a dual write (an event still in a replica that crashes, or
  given up by its producer, is lost, and its workflow stalls until the service works on the
  step again or ``stuck_after`` passes) or through an outbox (relayed after ``outbox_delay``,
  never lost, sent twice when the relay fails before it records the publish); an event appended
  twice reaches its consumers twice (:class:`Event` ``copy``);
* an event the broker dropped (its retention) ends its workflow: lost, or inconsistent if
  effects stand.
"""

from __future__ import annotations

from typing import Literal

from sim.model.broker import Group, MessageBroker
from sim.model.consumer import Consumer, Work
from sim.model.coordinators.base import Coordinator
from sim.model.outcomes import COMPLETED, FAILED
from sim.model.resilience import RetryPolicy
from sim.model.station import Station
from sim.model.workflow import Instance
from sim.model.world import World
from sim.scenario.models import Topology

ENTRY = -1
"""Pseudo step index of the event that starts a workflow."""

Kind = Literal["step", "undo"]


class Origin:
    """Where a service's event was produced: the replica of ``station`` that did the work, and
    how often that replica had crashed then (``crashes``). A crash of that replica since means
    the process that held the event in memory is gone."""

    __slots__ = ("crashes", "replica", "station")

    def __init__(self, station: Station) -> None:
        self.station = station
        self.replica = station.finisher
        self.crashes = station.crashes[self.replica]

    def crashed(self) -> bool:
        return self.station.crashes[self.replica] != self.crashes


class Event:
    """An event a service (or the client, for step ``ENTRY``) publishes: a step's completion or
    failure, or a compensation's outcome (``kind`` undo). ``origin``: the replica that produced
    it, when a crash of it matters (see :meth:`Choreography.emit`); ``copy``: whether it is a
    second append of an event already in the log."""

    __slots__ = ("copy", "inst", "kind", "ok", "origin", "step")

    def __init__(
        self,
        inst: Instance,
        step: int,
        ok: bool,
        kind: Kind,
        origin: Origin | None = None,
        copy: bool = False,
    ) -> None:
        self.inst = inst
        self.step = step
        self.ok = ok
        self.kind = kind
        self.origin = origin
        self.copy = copy

    def resent(self) -> Event:
        """The same event appended to the log a second time."""
        return Event(self.inst, self.step, self.ok, self.kind, self.origin, True)


class Choreography(Coordinator):
    """Coordinates steps by events on a shared broker."""

    def __init__(
        self,
        world: World,
        name: str,
        config: Topology,
        shared: tuple[MessageBroker, dict[str, Group], dict[str, RetryPolicy]] | None = None,
    ) -> None:
        """``shared``: the broker, consumer groups and retry policies of a hybrid whose
        choreographed workflows this coordinates (its broker reports their events here)."""
        super().__init__(world, name, config, shared[2] if shared else None)
        self.outbox = {
            n: world.draws(s.outbox_delay, f"outbox/{n}")
            for n, s in self.services.items()
            if s.publish == "outbox"
        }
        """The relay delay of each service that publishes through an outbox."""
        self.stalled: dict[tuple[int, int, bool], Event] = {}
        """The events dual writes lost, by (instance, step, undo), until they are published
        again or their workflow is noticed stuck."""
        if shared is None:
            self.broker = MessageBroker(world, config.broker, self.committed, self.unpublished)
            self.broker.producer_died = self.died
            consumer = Consumer(world, self.retries, self)
            self.groups: dict[str, Group] = {n: self.broker.group(n, consumer) for n in self.services}
        else:
            self.broker, self.groups = shared[0], shared[1]

    def arrive(self, inst: Instance) -> None:
        """A client publishes the event that starts the workflow."""
        self.watch(inst)
        self.broker.place(inst)
        inst.pending = len(inst.plan.stages[-1])
        self.world.counters.messages += 1
        self.world.after(inst.net_entry, self.publish, Event(inst, ENTRY, True, "step"))

    # -- events through the broker -----------------------------------------------------------

    def publish(self, event: Event) -> None:
        """The event leaves its producer for the broker: a dual write whose replica crashed
        since its local commit never sends it (the event died with the process); an outbox's
        relay sends it whatever became of the replica, and notes the replica's crashes from now
        until the broker acknowledges."""
        inst, k = event.inst, event.step
        origin = event.origin
        if origin is not None:
            if inst.plan.steps[k].service in self.outbox:
                origin.crashes = origin.station.crashes[origin.replica]
            elif self.died(event):
                return
        producer = "client" if k == ENTRY else inst.plan.steps[k].service
        if inst.marks is not None:
            self.world.mark(inst, ("publish", k, event.kind))
        self.broker.publish(producer, event)

    def died(self, event: Event) -> bool:
        """Whether a dual write's event died with its producer's replica before it reached the
        broker (then it is lost); an outbox's event never does."""
        origin = event.origin
        if origin is None or not origin.crashed() or event.inst.plan.steps[event.step].service in self.outbox:
            return False
        if not event.copy:  # a producer's second send dies with it, unnoticed: the first got through
            self.lost(event)
        return True

    def lost(self, event: Event) -> None:
        """A dual write lost the event: its workflow stalls, until the service works on the same
        step again (the event it consumed is delivered again) and publishes anew, or until it is
        noticed ``stuck_after`` later and ends (inconsistent, or lost if nothing of it stands)."""
        self.world.counters.lost_events += 1
        inst = event.inst
        key = (inst.gid, event.step, event.kind == "undo")
        self.stalled[key] = event
        self.world.after(self.services[inst.plan.steps[event.step].service].stuck_after, self.stuck, key)

    def stuck(self, key: tuple[int, int, bool]) -> None:
        event = self.stalled.pop(key, None)
        if event is not None and not event.inst.finished:
            self.saga.vanish(event.inst)

    def repeated(self, work: Work) -> None:
        """The service worked on a step again: if its event had been lost, it publishes it now."""
        key = (work.inst.gid, work.step, work.undo)
        event = self.stalled.get(key) if self.stalled else None
        if event is not None and event.ok and not work.inst.finished:  # (a lost failure stays stuck)
            del self.stalled[key]
            self.emit(work.inst, work.step, True, event.kind)

    def unpublished(self, event: Event) -> None:
        """The producer gave up publishing (the broker stayed unreachable): the client's start
        fails; a service's outbox relay tries again later; a service's dual write has lost the
        event (its local commit stands)."""
        inst, k = event.inst, event.step
        if inst.finished:
            return
        if k == ENTRY:
            self.world.finish(inst, FAILED)
            return
        delay = self.outbox.get(inst.plan.steps[k].service)
        if delay is not None:
            self.world.after(delay(), self.publish, event)
        else:
            self.lost(event)

    def copied(self, event: Event) -> None:
        """The broker appended an event a second time (a relay or a producer sent it again):
        its consumers get it again and work on it again; a duplicate outcome changes nothing
        (a join has that branch already)."""
        inst, k = event.inst, event.step
        if k == ENTRY or not event.ok or event.kind == "undo" or inst.plan.steps[k].terminal:
            return
        for step in inst.plan.steps[k].followers:
            if step.inputs == 1:
                self.groups[step.service].offer(Work(inst, step.index, copy=True), self.world.hop())

    def committed(self, event: Event) -> None:
        """The event is in the log: the workflow moves on, fails, or its saga advances."""
        inst, k, ok, kind = event.inst, event.step, event.ok, event.kind
        origin = event.origin
        if (
            origin is not None
            and self.outbox
            and origin.crashed()
            and inst.plan.steps[k].service in self.outbox
        ):
            # the relay crashed before it recorded the publish: it sends the event again
            self.world.counters.republished += 1
            delay = self.outbox[inst.plan.steps[k].service]
            self.world.after(delay(), self.publish, Event(inst, k, ok, kind, None, True))
        if event.copy:
            self.copied(event)
            return
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
            if step.inputs > 1:  # a join: the work waits for the completion of every branch
                joins = inst.joins
                if joins is None:
                    joins = inst.joins = {}
                seen = joins.get(step.index, 0) + 1
                joins[step.index] = seen
                if seen < step.inputs:  # delivered too, but it only fills the join
                    self.world.counters.messages += 1
                    continue
            if inst.marks is not None:
                self.world.mark(inst, ("deliver", step.index))
            if inst.plan.pivot_stage >= 0:
                self.saga.passes(inst, step.stage)
            self.groups[step.service].offer(Work(inst, step.index), inst.net_in[step.index])

    # -- what the consumers report (sim.model.consumer.Owner) -----------------------------------

    def wants(self, work: Work) -> bool:
        """A failed (or finished) workflow's step events ask for nothing; compensations do."""
        inst = work.inst
        return work.undo or (inst.failure < 0 and not inst.finished)

    def started(self, work: Work) -> None:
        inst = work.inst
        if inst.marks is not None:
            service = inst.plan.steps[work.step].service
            self.world.span(inst, ("deliver", work.step), "broker", f"deliver to {service}")
        if not work.undo:
            inst.calls += 1

    def handled(self, work: Work) -> None:
        """The service's work succeeded: it took effect, and the service says so (or, if the
        workflow failed meanwhile, it counts among the effects its saga undoes)."""
        inst, k = work.inst, work.step
        if work.undo:
            self.emit(inst, k, True, "undo")
            return
        inst.effects.append(k)
        inst.calls -= 1
        if inst.failure >= 0:
            self.compensate(inst)
        else:
            self.emit(inst, k, True, "step")

    def given_up(self, work: Work) -> None:
        """The event went to the dead-letter queue (or the service refused it): the step (or
        compensation) failed, and the service says so; past the workflow's pivot the step is
        tried again instead."""
        inst, k = work.inst, work.step
        if work.undo:
            self.emit(inst, k, False, "undo")
            return
        forward = None if inst.failure >= 0 else self.saga.forward(inst, k)
        if forward is not None:
            self.world.after(forward, self._again, work)
            return
        inst.calls -= 1
        if inst.failure >= 0:
            self.compensate(inst)
        else:
            self.emit(inst, k, False, "step")

    def _again(self, work: Work) -> None:
        """A step after the pivot goes to its service again (retried forward, as through a
        retry topic)."""
        inst, k = work.inst, work.step
        inst.calls -= 1  # it counts as running again once its new event is taken
        if inst.failure >= 0 or inst.finished:  # it failed meanwhile (a deadline): nothing runs now
            self.compensate(inst)
            return
        self.groups[inst.plan.steps[k].service].offer(Work(inst, k, again=True), self.world.hop())

    def expired(self, work: Work, started: bool) -> None:
        """The broker dropped the event: nobody will ever act on it. A lost compensation leaves
        its effect standing; a lost step event strands its workflow, which ends now."""
        inst = work.inst
        if work.undo:
            self.undone(inst, work.step, False)
            return
        if started:
            inst.calls -= 1
        if inst.failure >= 0:
            self.compensate(inst)
        else:
            self.saga.vanish(inst)

    def emit(self, inst: Instance, k: int, ok: bool, kind: Kind) -> None:
        """The service publishes an event over the network, straight after its local commit
        (``dual_write``) or through its outbox's relay (``outbox``). Produced as its work ends,
        the event remembers the replica that holds it."""
        self.world.counters.messages += 1
        step = inst.plan.steps[k]
        station = step.station
        # (only a station that faults can take servers from ever crashes)
        origin = Origin(station) if station.tracked and station.finisher >= 0 else None
        delay = inst.net_out[k] if kind == "step" else self.world.hop()
        if self.outbox:
            relay = self.outbox.get(step.service)
            if relay is not None:
                delay += relay()
        self.world.after(delay, self.publish, Event(inst, k, ok, kind, origin))

    # -- the choreographed saga -----------------------------------------------------------------

    def overdue(self, inst: Instance) -> None:
        """The workflow's deadline (a scheduled timeout event, as a saga's timeout service
        publishes): if it is still running, it fails as if a step had."""
        if inst.finished or inst.failure >= 0:
            return
        self.world.counters.deadlines += 1
        self.fail(inst, self.fails_at(inst))

    def fail(self, inst: Instance, k: int) -> None:
        """A failure event is committed: no service starts new work for the workflow, and once
        none of its steps is running the services whose steps took effect compensate
        themselves, in the saga's order."""
        if inst.failure >= 0:
            return
        inst.failure = k
        self.compensate(inst)

    def compensate(self, inst: Instance) -> None:
        """Deliver the compensations the saga's order allows (each a failure event read by the
        service whose step took effect); when none is left, the workflow ends."""
        started = self.saga.next_compensations(inst)
        for k in started:
            inst.undoing += 1
            self.groups[inst.plan.steps[k].service].offer(Work(inst, k, True), self.world.hop())
        if not started and inst.calls == 0 and inst.undoing == 0:
            self.saga.settle(inst)

    def undone(self, inst: Instance, k: int, ok: bool) -> None:
        """A compensation event is committed (or the compensation was lost)."""
        inst.undoing -= 1
        if not ok:
            inst.undo_failed = True
        self.compensate(inst)
