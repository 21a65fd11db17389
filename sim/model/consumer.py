"""A service consuming the events of its subscription: at least once, retried, then dead-lettered.

The one consumer of the model, used by choreography for every step and by the hybrid for its
asynchronous steps, whatever the broker: the broker's consumer group (:mod:`sim.model.broker`)
decides *when* a consumer takes a message (partition order, prefetch, rebalances, redelivery);
this module decides what processing it means:

* the event's work runs at the service's station like any request; a failed workflow's step
  events are skipped (its services start nothing new for it), its compensations are not;
* work that ends in an error is retried in place with the service's retry policy (a log's
  consumer blocks its partition meanwhile, as Kafka's blocking retries do);
* after the retries, or when the group gives up on the message (``max_deliveries`` of a log,
  ``max_receives`` or a full queue), the message goes to the dead-letter queue and its step fails;
* a message delivered again after it was processed (a consumer crashed before it committed, a
  visibility timeout expired) is processed again, a duplicate: only its first outcome counts;
* a message dropped by the broker's retention ends its workflow (:meth:`Owner.expired`).

What the outcome means to the workflow is the owner's (the coordinator):
:class:`Owner` is the interface it implements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sim.model.resilience import Breaker, RetryPolicy
from sim.model.station import JobOptions
from sim.model.workflow import Instance
from sim.model.world import BUSINESS, OK, World

if TYPE_CHECKING:
    from sim.model.broker.groups import Group


class Work:
    """What an event asks of its consumer: step ``step`` of ``inst`` (``undo``: its
    compensation; ``copy``: an event appended twice, whose outcome its owner has had; ``again``:
    a step tried again after its retries ran out, past its saga's pivot, so its work and outcome
    are a retry's, not the instance's first)."""

    __slots__ = ("again", "copy", "inst", "step", "undo")

    def __init__(
        self, inst: Instance, step: int, undo: bool = False, copy: bool = False, again: bool = False
    ) -> None:
        self.inst = inst
        self.step = step
        self.undo = undo
        self.copy = copy
        self.again = again

    def resent(self) -> Work:
        """The same event appended to the log a second time."""
        return Work(self.inst, self.step, self.undo, True, self.again)


class Message:
    """One event in a consumer group's subscription, over all its deliveries.

    ``id`` numbers the group's messages (their lag records); ``lane`` is the partition lane it
    waits in (a log) and ``ready`` when it reaches its consumer (commit, delivery latency and
    hop). ``settled`` once its first delivery has an outcome; ``started`` once its owner counts
    it as running."""

    __slots__ = ("committed", "deliveries", "id", "item", "lane", "ready", "settled", "started")

    def __init__(self, item: Work, id: int, lane: int, committed: float, ready: float) -> None:
        self.item = item
        self.id = id
        self.lane = lane
        self.committed = committed
        self.ready = ready
        self.settled = False
        self.started = False
        self.deliveries = 0


class Receipt:
    """One delivery of a message to a consumer (replica ``consumer``): its ``number`` among the
    message's deliveries, the ``attempt`` of its work within this delivery, the station ``visit``
    of that attempt, when it was ``received``; ``live`` while the group counts it in progress."""

    __slots__ = (
        "abandoned",
        "attempt",
        "began",
        "consumer",
        "cost",
        "group",
        "lapsed",
        "live",
        "message",
        "number",
        "received",
        "visit",
    )

    def __init__(self, group: Group, message: Message, consumer: int, received: float) -> None:
        message.deliveries += 1
        self.group = group
        self.message = message
        self.number = message.deliveries
        self.attempt = 1
        self.consumer = consumer
        self.received = received
        self.began = received
        """When its current attempt began (a breaker judges its duration)."""
        self.cost = 0
        """Retry-budget tokens its current attempt took (0: a first attempt, or no budget)."""
        self.abandoned: dict[int, int] | None = None
        """Visits of attempts its consumer gave up on at their timeout, still working, with
        their attempt numbers."""
        self.visit = -1
        self.live = True
        self.lapsed = False
        """Whether its lease has run out and the message was made visible again (a queue)."""


class Owner(Protocol):
    """What a coordinator does with the outcome of its events' processing."""

    def wants(self, work: Work) -> bool:
        """Whether the event still asks for work (a failed workflow's steps do not)."""
        ...

    def started(self, work: Work) -> None:
        """The event's processing begins, the first time (the step is running)."""
        ...

    def handled(self, work: Work) -> None:
        """The work succeeded (its first success)."""
        ...

    def repeated(self, work: Work) -> None:
        """The work succeeded again (a redelivery, or a copy of the event): the service
        publishes its outcome again if the first publish was lost."""
        ...

    def given_up(self, work: Work) -> None:
        """The event went to the dead-letter queue: its step failed."""
        ...

    def expired(self, work: Work, started: bool) -> None:
        """The broker dropped the event (retention); ``started``: it had begun processing once."""
        ...


class Consumer:
    """The processing of every message of one topology's consumer groups."""

    def __init__(
        self, world: World, retries: dict[str, RetryPolicy], owner: Owner, operation: str = "handle"
    ) -> None:
        self.world = world
        self.retries = retries
        self.owner = owner
        self.operation = operation
        """Name of the span of the work, for traces."""
        self.counters = world.counters
        self.breakers = {
            n: Breaker(s.circuit_breaker, world.counters)
            for n, s in world.scenario.services.items()
            if s.circuit_breaker is not None
        }
        """The consumers' circuit breakers, one per service: a breaker that is open fails the
        work fast, as resilience4j around a handler's downstream call does."""
        self.timeouts = {n: s.timeout for n, s in world.scenario.services.items() if s.timeout is not None}
        """The services' timeouts, applied by their consumers to each attempt of their work."""
        self.again_options = JobOptions(on_start=self.begun)
        self.policies = bool(self.breakers or retries)
        """Whether any service has a breaker or a retry policy (a success has more to record)."""
        self.served = self._served
        self.interrupted = self._aborted
        """The continuations of every attempt (bound once: this is the hot path)."""

    # -- what a group asks ----------------------------------------------------------------------

    def process(self, r: Receipt) -> None:
        """A consumer took the message: do its work (or skip it when nothing is wanted any more)."""
        m = r.message
        work = m.item
        if work.copy and not m.settled:  # a second copy of an event: worked on, unknown to its owner
            m.settled = m.started = True
            self.counters.duplicates += 1
        if not m.settled and not m.started and not self.owner.wants(work):
            r.group.skip(r)  # (once started, its outcome is owed to the owner: worked on again)
            return
        if not m.started and not m.settled:
            m.started = True
            self.owner.started(work)
        if r.number > 1:
            self.counters.duplicates += 1
        if self.breakers or self.timeouts:
            self._attempt(r)
            return
        # The first attempt (the hot path: :meth:`_attempt` written out).
        inst, k = work.inst, work.step
        r.began = self.world.env._now
        self.counters.attempts += 1
        if inst.marks is not None:
            self.world.mark(inst, ("handle", k, r.number, 1, work.undo))
        if work.undo:
            amount = inst.plan.compensation_work[k]()  # type: ignore[misc]
        else:
            amount = inst.work[k] if r.number == 1 and not work.again else inst.plan.retry_work[k]()
        r.group.execute(r, amount, self.served, self.interrupted)

    def dead_letter(self, r: Receipt) -> None:
        """The message goes to the dead-letter queue (retries exhausted, or given up by its
        group); its step fails, unless an earlier delivery had settled it."""
        m = r.message
        self.counters.dead_letters += 1
        if not m.settled:
            m.settled = True
            if not m.started:
                m.started = True
                self.owner.started(m.item)
            self.owner.given_up(m.item)
        r.group.done(r, dead=True)

    def refuse(self, r: Receipt) -> None:
        """The service refused the work for a business reason: the step fails (no dead letter:
        the event was handled), unless an earlier delivery had settled it."""
        m = r.message
        if not m.settled:
            m.settled = True
            self.owner.given_up(m.item)
        r.group.done(r)

    def expire(self, m: Message) -> None:
        """The broker dropped the message, too old when its turn came."""
        self.counters.expired += 1
        if not m.settled:
            m.settled = True
            self.owner.expired(m.item, m.started)

    # -- processing ---------------------------------------------------------------------------

    def _attempt(self, r: Receipt) -> None:
        work = r.message.item
        inst, k = work.inst, work.step
        now = self.world.env._now
        breaker = self.breakers.get(inst.plan.steps[k].service) if self.breakers else None
        if breaker is not None and not breaker.allow(now):  # failed fast: no work, no attempt
            self._failed(r)
            return
        r.began = now
        self.counters.attempts += 1
        if inst.marks is not None:
            self.world.mark(inst, ("handle", k, r.number, r.attempt, work.undo))
        amount = self._amount(r)
        if r.abandoned is not None:  # its earlier attempt still holds a server: wait for another
            station = inst.plan.steps[k].station
            r.visit = station.visit_count()  # the visit submit gives it, read by on_start
            r.visit = station.submit(amount, self.served, r, self.interrupted, self.again_options)
            if r.visit < 0:
                self._unanswered(r)
                self._failed(r)
            return
        r.group.execute(r, amount, self.served, self.interrupted)
        if self.timeouts:
            station = inst.plan.steps[k].station
            if r.visit >= 0 and station.started_of(r.visit) == now:
                self.begun(r)

    def _amount(self, r: Receipt) -> float:
        work = r.message.item
        inst, k = work.inst, work.step
        if work.undo:
            return inst.plan.compensation_work[k]()  # type: ignore[misc]
        first = r.number == 1 and r.attempt == 1 and not work.again
        return inst.work[k] if first else inst.plan.retry_work[k]()

    # -- timeouts ---------------------------------------------------------------------------------

    def begun(self, r: Receipt) -> None:
        """An attempt's work has started: if it will outlast the service's timeout, the consumer
        gives up on it then."""
        work = r.message.item
        step = work.inst.plan.steps[work.step]
        limit = self.timeouts.get(step.service)
        if limit is not None and step.station.ended_of(r.visit) - self.world.env._now > limit:
            self.world.after(limit, self._timed_out, (r, r.visit))

    def _timed_out(self, item: tuple[Receipt, int]) -> None:
        """The consumer gives up on an attempt past its timeout, as a handler's call to its
        downstream does: the attempt fails (and may be retried) while its work goes on, and may
        still take effect."""
        r, visit = item
        if not r.live or r.visit != visit or r.message.settled:
            return
        work = r.message.item
        step = work.inst.plan.steps[work.step]
        if step.station.ended_of(visit) <= self.world.env._now:
            return  # it ended (or a crash aborted it) first
        if r.abandoned is None:
            r.abandoned = {}
        r.abandoned[visit] = r.attempt
        r.group.hold(r, True)
        r.visit = -1
        breaker = self.breakers.get(step.service) if self.breakers else None
        if breaker is not None:
            breaker.record(False, self.world.env._now, self.world.env._now - r.began)
        self._failed(r, timeout=True)

    def _late(self, r: Receipt, attempt: int) -> None:
        """Work the consumer had given up on has ended: a success takes effect all the same."""
        world = self.world
        work = r.message.item
        first = r.number == 1 and attempt == 1 and not work.again and not work.undo
        world.served(work.inst, work.step, work.undo, first)

    def _served(self, r: Receipt) -> None:
        world = self.world
        m = r.message
        work = m.item
        inst, k = work.inst, work.step
        if r.abandoned is not None:
            attempt = r.abandoned.pop(inst.plan.steps[k].station.ending, 0)
            if attempt:
                r.group.hold(r, False)
                self._late(r, attempt)
                return
        # (a success takes effect, whichever delivery this is)
        first = r.number == 1 and r.attempt == 1 and not work.again and not work.undo
        outcome = world.served(inst, k, work.undo, first)
        ok = outcome == OK
        if outcome == BUSINESS:  # a refusal: never retried, the step fails at once
            if inst.marks is not None:
                span = ("handle", k, r.number, r.attempt, False)
                world.span(inst, span, inst.plan.steps[k].service, self.operation, False)
            self.refuse(r)
            return
        if ok and not self.policies and inst.marks is None:  # the hot path: nothing to record
            self._succeeded(r)
            return
        service = inst.plan.steps[k].service
        if inst.marks is not None:
            operation = "compensate" if work.undo else self.operation
            key = ("handle", k, r.number, r.attempt, work.undo)
            world.span(inst, key, service, operation, ok)
        if self.breakers:
            breaker = self.breakers.get(service)
            if breaker is not None:
                now = world.env._now
                breaker.record(ok, now, now - r.began)
        if ok:
            retry = self.retries.get(service)
            if retry is not None:
                retry.succeeded(r.cost)
            self._succeeded(r)
            return
        self._failed(r)

    def _succeeded(self, r: Receipt) -> None:
        """The work succeeded: its owner hears of it (the first outcome of the message), and the
        message is acknowledged."""
        m = r.message
        if not m.settled:
            m.settled = True
            self.owner.handled(m.item)
        else:
            self.owner.repeated(m.item)
        r.group.done(r)

    def _failed(self, r: Receipt, timeout: bool = False) -> None:
        """An attempt failed (or its breaker refused it, or it timed out): retried in place with
        the service's policy and budget, else dead-lettered."""
        m = r.message
        work = m.item
        inst = work.inst
        retry = self.retries.get(inst.plan.steps[work.step].service)
        if (
            retry is not None
            and retry.allows(r.attempt)
            and not m.settled
            and (work.undo or inst.failure < 0)
        ):
            wait = retry.next_delay(r.attempt)
            cost = retry.charge(timeout)
            if cost >= 0:
                r.attempt += 1
                r.cost = cost
                if r.abandoned is None:  # (its worker, still busy, is not free meanwhile)
                    r.group.retrying(r)
                self.world.after(wait, self._retry, r)
                return
        self.dead_letter(r)

    def _retry(self, r: Receipt) -> None:
        """The backoff is over: try again, unless the group took the message back meanwhile."""
        if r.live:
            self._attempt(r)

    def _aborted(self, r: Receipt) -> None:
        """A crash aborted the work: the message was not acknowledged; the group redelivers it
        (a crash of work the consumer had given up on just ends it)."""
        if r.abandoned is not None:
            station = r.message.item.inst.plan.steps[r.message.item.step].station
            now = self.world.env._now
            for visit in [v for v in r.abandoned if station.ended_of(v) == now]:
                del r.abandoned[visit]  # (the crash ended work it had given up on)
                r.group.hold(r, False)
            if r.visit < 0 or station.ended_of(r.visit) != now:
                return
            # the retry it sent after a timeout went to any replica, which crashed: a failed call
            if r.live:
                self._unanswered(r)
                self._failed(r)
            return
        self._unanswered(r)
        r.group.aborted(r)

    def _unanswered(self, r: Receipt) -> None:
        """An attempt ended without an answer (a crash aborted it, a full queue refused it): its
        breaker counts a failed call, as a caller sees a reset connection, so that a half-open
        breaker's probe always comes back."""
        if self.breakers:
            breaker = self.breakers.get(r.message.item.inst.plan.steps[r.message.item.step].service)
            if breaker is not None:
                now = self.world.env._now
                breaker.record(False, now, now - r.began)
