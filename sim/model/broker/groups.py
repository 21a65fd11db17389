"""Consumer groups: how a service's consumers take the messages of its subscription.

One group per consuming service of a topology, over the service's station (its replicas are the
group's consumers, ``concurrency`` workers each). Two kinds, as the broker's ``kind``:

* :class:`LogGroup`, a Kafka consumer group. The subscription is ``partitions`` partitions per
  topic (a service reads two topics: its step events and, in a choreography, the failure events
  it compensates), each a *lane* processed in offset order, at most ``max_in_flight`` messages
  at once. Each topic's lanes are assigned to the group's members: contiguous ranges under the
  eager protocol (Kafka's RangeAssignor), sticky balanced shares under the cooperative one. A
  consumer with a free worker and nothing to start polls up to ``max_poll_records`` ready
  messages of its lanes, and commits what it processed since its last poll (also when it falls
  idle, and when it leaves cleanly); an event counts in the lag from its commit to the end of
  its processing.
  A crashed consumer's lanes stall until ``session_timeout``, then the group rebalances; so it
  does when a consumer leaves cleanly (after draining) or joins. ``eager`` rebalances pause every
  lane of the group for the rebalance ``time``, ``cooperative`` ones only the lanes that move.
  Messages a consumer had polled and not started go back to their lanes; after a crash so do
  those in progress and those processed but not committed, which are delivered again
  (duplicates). A message older than ``retention`` when it is polled is gone. A lane whose
  partition has no leader (see :class:`~sim.model.broker.core.MessageBroker`) is not polled.
  An autoscaled service's consumers join the group as its autoscaler starts them and leave it
  as it retires them, each a rebalance; consumers beyond the partitions get none.
* :class:`QueueGroup`, RabbitMQ or SQS competing consumers on one queue, no ordering. By default
  a consumer receives a message only when one of its workers is free, so the queue is exactly
  the station's FIFO queue (the textbook M/M/c); with ``prefetch`` each consumer holds up to that
  many unacknowledged messages in its own buffer. A message not acknowledged within
  ``visibility_timeout`` of its receipt is delivered again (its first delivery goes on: a
  duplicate); a crashed consumer's messages come back that way too (SQS), or at once
  (``on_crash: requeue``, RabbitMQ). After ``max_receives`` receipts a message goes to the
  dead-letter queue. ``max_length`` (or the service's own ``queue_limit``, if lower) bounds the
  ready messages.

Each group records, per message, when it entered the subscription, when its processing began,
when it left the subscription (committed, acknowledged, dead-lettered or dropped) and its lane:
the lag and the busy time, per partition, afterwards.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from sim.model.consumer import Consumer, Message, Receipt, Work
from sim.model.faults import Health
from sim.model.records import GROUP_COLUMNS, GroupRecord, Spill, SpillFolder, as_array, write_out
from sim.model.station import JobOptions, Station
from sim.model.world import World
from sim.scenario.broker import Broker

if TYPE_CHECKING:
    from sim.model.broker.core import MessageBroker

Serve = Callable[[Receipt], None]

PROCESSED, DEAD, EXPIRED = 1, 2, 3
"""How a message left its subscription (codes of the group records); 0: still in it."""

NAN = math.nan

SPILL_AT = 1 << 17
"""Messages a group holds records of in memory before it writes out those that have left."""

TOPICS = 2
"""Topics a consuming service may read: its step events (lanes 0..P-1) and, when it has a
compensation, the failure events it compensates (lanes P..2P-1)."""


class Group:
    """What both kinds of consumer group share: the service's station, the consumer that
    processes what the group hands it, and the records of the subscription."""

    kind = "group"

    def __init__(
        self,
        world: World,
        broker: MessageBroker,
        service: str,
        station: Station,
        consumer: Consumer,
        health: Health,
    ) -> None:
        self.world = world
        self.env = world.env
        self.broker = broker
        self.config: Broker = broker.config
        self.service = service
        self.station = station
        self.consumer = consumer
        self.on_start = consumer.begun if consumer.timeouts else None
        """What the station calls when work that waited for a shared server starts (the
        consumer's timeout clock)."""
        self.health = health
        self.counters = world.counters
        svc = world.scenario.services[service]
        self.consumers = svc.most_replicas
        """Consumers the group may have (an autoscaled service's absent ones are not members)."""
        self.workers = svc.concurrency
        self.retention = self.config.retention_seconds
        self.immediate_ready = self.config.delivery_latency.is_zero
        self.lanes = 1
        self.topics = 1
        """Topics the service reads (a log: the failure events too, if it compensates)."""
        self.shared = False
        """Whether the engine calls the service too (a hybrid): its servers serve both."""
        self.max_in_flight = 1
        """Messages of one lane processed at once (a queue's one lane: no limit of its own)."""
        # Records, one slot per message: entered (committed to the subscription), left (its lag
        # ends: committed or acknowledged, dead-lettered, dropped), its lane, and how it left.
        self.entered = array("d")
        self.left = array("d")
        self.lane_of = array("i")
        self.how = array("b")
        self.began = array("d")
        self.queue_limit = station.queue_limit
        station.queue_limit = None  # events wait in the broker: a log has no such limit, a queue its own
        self._unsettled = 0
        """Messages before this one have all left the subscription (see :meth:`backlog`)."""
        self.base = 0
        """Messages written out of memory (:meth:`spill`): message ``i`` is at index ``i - base``
        of the records."""
        self.spilled: Spill | None = None
        self.late_began: dict[int, float] = {}
        """Written-out messages whose processing began again afterwards (a duplicate delivery)."""
        if service in world.backlogs:  # an autoscaled service scales on its subscription
            world.backlogs[service] = self.backlog

    def record(self) -> GroupRecord:
        """The group's subscription as plain arrays (see :class:`GroupRecord`)."""
        return GroupRecord(
            service=self.service,
            kind=self.kind,
            partitions=self.lanes // TOPICS if self.kind == "log" else 1,
            consumers=self.consumers,
            concurrency=self.effective_concurrency(),
            max_in_flight=self.max_in_flight,
            topics=self.topics,
            shared=self.shared,
            entered=as_array(self.entered, float),  # (views: no copy of a long run's records)
            left=as_array(self.left, float),
            began=as_array(self.began, float),
            lane=as_array(self.lane_of, np.int32),
            how=as_array(self.how, np.int8),
            spilled=self.spilled,
            late_began=dict(self.late_began),
        )

    def crowded(self) -> bool:
        """Whether :meth:`spill` may write messages out (:data:`SPILL_AT` or more in memory)."""
        return len(self.entered) >= SPILL_AT

    def spill(self, folder: SpillFolder) -> None:
        """Write out of memory the oldest messages that have left the subscription: those before
        the first one still in it. Their records no longer change, but for a duplicate
        delivery's processing that begins later (kept in ``late_began``)."""
        how = np.frombuffer(self.how, dtype=np.int8)
        k = int(np.argmin(how != 0)) if not how.all() else how.size
        del how
        if k < SPILL_AT // 2:
            return
        records: list[array] = [self.entered, self.left, self.began, self.lane_of, self.how]
        self.spilled = write_out(self.spilled, folder, GROUP_COLUMNS, records, k)
        self.base += k

    def _begin(self, i: int, now: float) -> None:
        """The processing of message ``i``'s delivery begins now."""
        j = i - self.base
        if j >= 0:
            self.began[j] = now
        else:
            self.late_began[i] = now

    def effective_concurrency(self) -> int:
        """Messages the group can process at once."""
        return self.consumers * self.workers

    def backlog(self, metric: str) -> float:
        """What an autoscaler reads, now: the messages of the subscription not yet processed
        (``lag``: a Kafka consumer group's lag, SQS's visible and in-flight messages) or, of
        those, the ones no worker has begun (``queue``)."""
        start = max(self._unsettled - self.base, 0)  # (messages written out have all left)
        left = np.frombuffer(self.left[start:], dtype=float) if len(self.left) else np.empty(0)
        pending = np.isnan(left)
        self._unsettled = self.base + start + (int(np.argmax(pending)) if pending.any() else len(left))
        lag = int(np.count_nonzero(pending))
        if metric == "lag":
            return float(lag)
        return float(max(0, lag - self.station.in_service))

    def _message(self, work: Work, lane: int, hop: float) -> Message:
        now = self.world.env._now
        delay = (0.0 if self.immediate_ready else self.broker.delivery_latency()) + hop
        m = Message(work, self.base + len(self.entered), lane, now, now + delay)
        self.entered.append(now)
        self.left.append(math.nan)
        self.lane_of.append(lane)
        self.how.append(0)
        self.began.append(NAN)
        self.counters.messages += 1
        return m

    def _settle(self, m: Message, how: int) -> None:
        """The message leaves the subscription now (its lag ends), ``how`` unless already known."""
        i = m.id - self.base
        if i < 0:
            return  # written out: it has left already
        if math.isnan(self.left[i]):
            self.left[i] = self.world.env._now
        if self.how[i] == 0:
            self.how[i] = how

    def offer(self, work: Work, hop: float) -> None:
        """A committed event for this group: it reaches a consumer after the delivery latency
        and the network ``hop``."""
        raise NotImplementedError

    # -- what the consumer reports --------------------------------------------------------------

    def execute(self, r: Receipt, amount: float, served: Serve, aborted: Serve) -> None:
        """Run one attempt of ``r``'s work (``amount`` seconds) at the station."""
        raise NotImplementedError

    def retrying(self, r: Receipt) -> None:
        """``r``'s work failed and will be tried again after a backoff."""

    def hold(self, r: Receipt, held: bool) -> None:
        """Work of ``r`` its consumer gave up on at a timeout goes on, holding a server of the
        station that the group's workers no longer count (``held``), or it has ended (not
        ``held``). A group that starts work on the station's servers itself counts it as a busy
        worker meanwhile, so that it never starts more work than the servers left."""

    def done(self, r: Receipt, dead: bool = False) -> None:
        """``r`` is over (processed, or sent to the dead-letter queue): acknowledge it."""
        raise NotImplementedError

    def aborted(self, r: Receipt) -> None:
        """A crash aborted ``r``'s work before it was acknowledged."""
        raise NotImplementedError

    def skip(self, r: Receipt) -> None:
        """``r`` asks for no work any more (its workflow failed): acknowledge it as it is."""
        r.message.settled = True
        if r.visit >= 0:
            self.station.leave(r.visit)
        self.done(r)

    def resume(self) -> None:
        """The broker's partitions, or the broker, became available again."""


class Lane:
    """One partition of one topic, as a consumer group reads it."""

    __slots__ = ("index", "log", "owner", "partition", "paused_until", "queued", "running")

    def __init__(self, index: int, partition: int) -> None:
        self.index = index
        self.partition = partition
        self.log: deque[Message] = deque()
        """Messages not yet polled, in offset order."""
        self.owner = -1
        self.paused_until = 0.0
        """The lane waits for a rebalance until then."""
        self.running = 0
        """Messages of this lane in progress (started, not done), whoever polled them."""
        self.queued = False
        """Whether the lane is in its owner's ring of lanes with work to start."""


UP, DOWN, DRAINING, LEFT = "up", "down", "draining", "left"


class Member:
    """One consumer of a log group: the lanes it owns, what it has polled and not yet started,
    and what it has processed since its last commit."""

    __slots__ = (
        "busy",
        "expiry",
        "held",
        "index",
        "joined",
        "lanes",
        "pending",
        "ready",
        "running",
        "state",
        "turn",
        "uncommitted",
        "waiting",
        "wake",
        "working",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.lanes: list[int] = []
        self.joined = True
        """A member of the group as its coordinator sees it (a crashed consumer stays one until its
        session times out)."""
        self.state = UP
        """up; down (crashed or restarting); draining (finishing its work); left (drained, out)."""
        self.pending: dict[int, deque[Receipt]] = {}
        """Polled receipts not yet started, by lane (in offset order)."""
        self.held = 0
        """Polled receipts not yet started, in all."""
        self.ready: deque[int] = deque()
        """Lanes with pending receipts and room for one more in progress: work to start."""
        self.busy = 0
        """Receipts in progress (a receipt waiting out a retry's backoff keeps its worker)."""
        self.running: set[Receipt] = set()
        """Those receipts."""
        self.waiting = 0
        """Messages in the logs of its lanes, not yet polled."""
        self.uncommitted: list[Receipt] = []
        """Receipts processed since the last commit (the next poll commits them; a crash before
        that delivers them again)."""
        self.wake = math.inf
        """When a timer will make the consumer poll (inf: none)."""
        self.turn = 0
        self.working = False
        self.expiry = 0
        """Generation of its session-timeout timer (a return voids an older crash's timer)."""


class LogGroup(Group):
    """A Kafka consumer group over a log (see the module docstring)."""

    kind = "log"

    def __init__(
        self,
        world: World,
        broker: MessageBroker,
        service: str,
        station: Station,
        consumer: Consumer,
        health: Health,
    ) -> None:
        super().__init__(world, broker, service, station, consumer, health)
        config = self.config
        self.partitions = config.partitions
        self.lanes = TOPICS * self.partitions
        self.lane = [Lane(i, i % self.partitions) for i in range(self.lanes)]
        self.topics = TOPICS if world.scenario.services[service].compensation is not None else 1
        self.max_in_flight = config.max_in_flight
        self.max_poll = config.max_poll_records
        self.members = [Member(c) for c in range(self.consumers)]
        for c in health.absent:  # not started (an autoscaled service): not in the group yet
            self.members[c].state = DOWN
            self.members[c].joined = False
        self._assign([m for m in self.members if m.joined])
        health.on_change.append(self._health)
        health.drain_checks.append(self._drained)

    # -- messages in ------------------------------------------------------------------------------

    def offer(self, work: Work, hop: float) -> None:
        lane = work.inst.partition + (self.partitions if work.undo else 0)
        now = self.env._now
        ready = now + hop if self.immediate_ready else now + self.broker.delivery_latency() + hop
        ln = self.lane[lane]
        owner = ln.owner
        member = self.members[owner] if owner >= 0 else None
        # The common case, written out for speed: an idle consumer's poll returns just this
        # message, and a worker starts it at once.
        at_once = (
            member is not None
            and ready <= now
            and not ln.log
            and member.busy < self.workers
            and not member.ready
            and member.held == 0
            and ln.running < self.max_in_flight
            and self._pollable(member, ln, now)
        )
        # A new message (Group._message written out).
        m = Message(work, self.base + len(self.entered), lane, now, ready)
        self.entered.append(now)
        self.left.append(NAN)
        self.lane_of.append(lane)
        self.how.append(0)
        self.began.append(now if at_once else NAN)
        self.counters.messages += 1
        if member is None:
            ln.log.append(m)
        elif at_once:
            self.counters.polls += 1
            if member.uncommitted:
                member.uncommitted.clear()
            r = Receipt(self, m, owner, now)
            ln.running += 1
            member.busy += 1
            if self.station.rbusy is not None:
                member.running.add(r)
            self.consumer.process(r)
        else:
            ln.log.append(m)
            member.waiting += 1
            if self._hungry(member):
                self._wake(member, ready)

    def _pollable(self, member: Member, ln: Lane, now: float) -> bool:
        """Whether ``member`` may poll ``ln`` now."""
        station = self.station
        return (
            member.state == UP
            and member.joined
            and ln.paused_until <= now
            and self.broker.available[ln.partition]
            and (station.rbusy is None or station.ravail[member.index])
            and not self.world.network.any_cut
        )

    def _hungry(self, member: Member) -> bool:
        """Whether the consumer would poll now: a free worker, and nothing it could start."""
        return member.busy < self.workers and not member.ready

    def _wake(self, member: Member, at: float) -> None:
        """Have the consumer poll at ``at`` (at once if that is now)."""
        now = self.world.env._now
        if at <= now:
            self._poll(member)
        elif at < member.wake:
            member.wake = at
            self.world.after(at - now, self._woken, (member, at))

    def _woken(self, item: tuple[Member, float]) -> None:
        member, at = item
        if member.wake == at:
            member.wake = math.inf
            if self._hungry(member):
                self._poll(member)

    def _poll(self, member: Member) -> None:
        """The consumer polls, and its free workers start what it got."""
        if self._fetch(member):
            self._work(member)

    def _fetch(self, member: Member) -> int:
        """The consumer commits what it has processed, then polls its lanes in turn, from the
        one after the last it took from: ready messages in offset order per lane, up to
        max_poll_records in all (a message older than the retention is gone). A lane whose
        polled messages are not yet worked off takes no more than that many waiting in the
        consumer, so a backlogged partition cannot keep the consumer's other partitions, and its
        other workers, waiting. Return how many it got."""
        c = member.index
        if member.state != UP or not member.joined or not self.station.takes(c):
            return 0
        world = self.world
        now = world.env._now
        if world.network.any_cut:
            cut = world.network.cut("broker", self.service)
            if cut is not None:  # the consumer cannot reach the broker: it polls once healed
                self._wake(member, now + world.network.heals_in(cut))
                return 0
        member.uncommitted.clear()
        if not member.waiting:
            return 0
        available = self.broker.available
        lanes = member.lanes
        n = len(lanes)
        room = self.max_poll
        taken = 0
        last = -1
        soonest = math.inf
        pending = member.pending
        for j in range(n):
            ln = self.lane[lanes[(member.turn + j) % n]]
            log = ln.log
            if not log or ln.paused_until > now or not available[ln.partition]:
                continue
            q = pending.get(ln.index)
            space = self.max_poll - (len(q) if q else 0)
            before = taken
            while log and taken < room and space > 0:
                m = log[0]
                if m.ready > now:
                    soonest = min(soonest, m.ready)
                    break
                log.popleft()
                member.waiting -= 1
                if now - m.committed > self.retention:
                    self._settle(m, EXPIRED)
                    self.consumer.expire(m)
                    continue
                r = Receipt(self, m, c, now)
                r.visit = self.station.enter(m.ready)
                if q is None:
                    q = pending[ln.index] = deque()
                q.append(r)
                taken += 1
                space -= 1
            if taken > before:
                last = j
            if q:
                self._ready(ln, member)
            if taken >= room:
                break
        if n:
            member.turn = (member.turn + last + 1) % n
        if taken:
            self.counters.polls += 1
            member.held += taken
        elif soonest < math.inf:
            self._wake(member, soonest)
        return taken

    def _ready(self, ln: Lane, member: Member) -> None:
        """Put ``ln`` in ``member``'s ring if it has work to start and room for it."""
        if not ln.queued and ln.running < self.max_in_flight and ln.index in member.pending:
            ln.queued = True
            member.ready.append(ln.index)

    def _work(self, member: Member) -> None:
        """The consumer's free workers start the next receipt of each ready lane, in turn; with
        a worker still free and nothing to start, it polls again."""
        if member.working:
            return
        member.working = True
        c = member.index
        ready, pending = member.ready, member.pending
        station = self.station
        while (
            member.busy < self.workers and member.state == UP and (station.rbusy is None or station.ravail[c])
        ):
            if not ready:
                if not self._fetch(member) or not ready:
                    break
                continue
            ln = self.lane[ready.popleft()]
            ln.queued = False
            q = pending.get(ln.index)
            if not q or ln.running >= self.max_in_flight:
                continue
            r = q.popleft()
            if not q:
                del pending[ln.index]
            member.held -= 1
            self._begin(r.message.id, self.world.env._now)
            ln.running += 1
            member.busy += 1
            if station.rbusy is not None:
                member.running.add(r)
            self._ready(ln, member)
            if r.message.deliveries > self.config.max_deliveries:  # a poison message
                station.leave(r.visit)
                self.consumer.dead_letter(r)
            else:
                self.consumer.process(r)
        member.working = False

    # -- what the consumer reports --------------------------------------------------------------

    def execute(self, r: Receipt, amount: float, served: Serve, aborted: Serve) -> None:
        # A first attempt starts the visit its poll entered (a message taken at once, and a
        # retry in place, start one of their own, on the same worker).
        visit = r.visit if r.attempt == 1 else -1
        r.visit = self.station.begin(visit, amount, served, r, aborted, r.consumer, self.on_start)

    def done(self, r: Receipt, dead: bool = False) -> None:
        if not r.live:
            return
        r.live = False
        i = r.message.id - self.base
        if i >= 0 and self.how[i] == 0:  # (a message written out has left already)
            self.left[i] = self.world.env._now
            self.how[i] = DEAD if dead else PROCESSED
        member = self.members[r.consumer]
        if self.station.rbusy is not None:  # a crash may come: keep what is not committed
            member.uncommitted.append(r)
            member.running.discard(r)
        # Free the lane and the worker (_release written out: this is the hot path).
        ln = self.lane[r.message.lane]
        ln.running -= 1
        member.busy -= 1
        if ln.owner >= 0:
            owner = self.members[ln.owner]
            if not ln.queued and ln.index in owner.pending:
                self._ready(ln, owner)
            if owner is not member and owner.state == UP:  # the lane moved meanwhile
                self._work(owner)
        if member.state == UP:
            if member.ready or member.waiting:
                self._work(member)
            elif member.busy == 0:  # idle: its poll loop commits what it processed
                member.uncommitted.clear()
        elif member.state == DRAINING and member.busy == 0:
            self._leave(member)

    def hold(self, r: Receipt, held: bool) -> None:
        member = self.members[r.consumer]
        if held:
            member.busy += 1
            return
        member.busy -= 1
        if member.state == UP:
            self._work(member)
        elif member.state == DRAINING and member.busy == 0:
            self._leave(member)

    def aborted(self, r: Receipt) -> None:
        """The consumer crashed: what it held goes back to the lanes when the group hears of
        the crash (:meth:`_health`), this receipt with what it had not committed."""
        if r.live:
            r.live = False
            self._release(r)
            self.members[r.consumer].uncommitted.append(r)

    def _release(self, r: Receipt) -> None:
        ln = self.lane[r.message.lane]
        ln.running -= 1
        holder = self.members[r.consumer]
        holder.busy -= 1
        if holder.running:
            holder.running.discard(r)
        if ln.owner >= 0:
            owner = self.members[ln.owner]
            if not ln.queued and ln.index in owner.pending:
                self._ready(ln, owner)
            if owner is not holder and owner.state == UP:  # the lane moved meanwhile
                self._work(owner)

    def _take_back(self, member: Member, lanes: set[int] | None, crashed: bool) -> None:
        """Return ``member``'s receipts of ``lanes`` (None: all) to their lanes, in offset order:
        those not yet started; after a crash also those in progress and those processed but not
        committed, which whoever owns the lane next processes again (a clean revocation commits
        them, and lets the ones in progress finish)."""
        now = self.world.env._now
        back: dict[int, list[Message]] = {}
        for lane in [lane for lane in member.pending if lanes is None or lane in lanes]:
            for r in member.pending.pop(lane):
                r.live = False
                self.station.leave(r.visit)
                member.held -= 1
                r.message.deliveries -= 1  # polled, never processed: not a delivery
                back.setdefault(lane, []).append(r.message)
            self.lane[lane].queued = False
        member.ready = deque(lane for lane in member.ready if lane in member.pending)
        if crashed:
            for r in member.uncommitted:
                if lanes is None or r.message.lane in lanes:
                    back.setdefault(r.message.lane, []).append(r.message)
            for r in [r for r in member.running if lanes is None or r.message.lane in lanes]:
                r.live = False
                self._release(r)
                back.setdefault(r.message.lane, []).append(r.message)
        member.uncommitted.clear()
        for lane, messages in back.items():
            ln = self.lane[lane]
            for m in sorted(messages, key=lambda m: m.id, reverse=True):
                m.ready = min(m.ready, now)
                ln.log.appendleft(m)
            if ln.owner >= 0:
                self.members[ln.owner].waiting += len(messages)

    # -- membership -------------------------------------------------------------------------------

    def _health(self, health: Health) -> None:
        """The service's replicas changed: consumers crash, drain, come back."""
        rejoined = False
        down, leaving = health.down_now(), health.leaving
        for member in self.members:
            c = member.index
            if c in down:
                state = DOWN
            elif c in leaving:
                state = DRAINING if member.state in (UP, DRAINING) else member.state
            else:
                state = UP
            if state == member.state:
                continue
            before, member.state = member.state, state
            if state == DOWN:
                # Crashed (or restarting): what it held goes back uncommitted; the group notices a
                # crashed member after the session timeout (a drained one has left already).
                self._take_back(member, None, crashed=True)
                if member.joined:
                    member.expiry += 1
                    self.world.after(self.config.session_timeout, self._expired, (member, member.expiry))
            elif state == DRAINING:
                self._take_back(member, None, crashed=False)  # it stops taking work
                if member.busy == 0:
                    self._leave(member)
            elif before != UP:
                member.expiry += 1
                member.joined = True
                rejoined = True
        if rejoined:
            self._rebalance()
        else:
            self._resumed(None)

    def _expired(self, item: tuple[Member, int]) -> None:
        member, generation = item
        if member.expiry == generation and member.state == DOWN and member.joined:
            member.joined = False
            self._rebalance()

    def _leave(self, member: Member) -> None:
        """A drained consumer commits what it processed and leaves the group cleanly: the group
        rebalances at once."""
        member.uncommitted.clear()
        member.state = LEFT
        if member.joined:
            member.joined = False
            self._rebalance()
        self.health.replica_idle(member.index)

    def _drained(self, replica: int) -> bool:
        member = self.members[replica]
        return member.busy == 0 and member.state != DRAINING

    def _rebalance(self) -> None:
        """Reassign the lanes over the members; the lanes the protocol pauses wait out the
        rebalance time, and their polled, unstarted messages go back."""
        world = self.world
        now = world.env._now
        self.counters.rebalances += 1
        before = [ln.owner for ln in self.lane]
        self._assign([m for m in self.members if m.joined])
        if self.config.rebalance.protocol == "eager":
            paused = set(range(self.lanes))
        else:
            paused = {ln.index for ln in self.lane if ln.owner != before[ln.index]}
        until = now + self.config.rebalance.time
        for lane in paused:
            ln = self.lane[lane]
            ln.paused_until = max(ln.paused_until, until)
        for member in self.members:
            if member.state in (UP, DRAINING):
                self._take_back(member, paused, crashed=False)
        world.after(until - now, self._resumed, None)

    def _resumed(self, _: object) -> None:
        for member in self.members:
            if member.state == UP and self._hungry(member):
                self._poll(member)

    def resume(self) -> None:
        self._resumed(None)

    def _assign(self, members: list[Member]) -> None:
        """Assign each topic's partitions over the members, as Kafka's assignors do: contiguous
        ranges under the eager protocol (RangeAssignor, the classic default), and sticky, balanced
        shares under the cooperative one (CooperativeStickyAssignor: a partition stays with its
        owner while that is a member within its share; the others go to those with fewest)."""
        for member in self.members:
            member.lanes = []
        ids = sorted(m.index for m in members)
        sticky = self.config.rebalance.protocol == "cooperative"
        owner = [-1] * self.lanes
        for topic in range(TOPICS):
            lanes = self.lane[topic * self.partitions : (topic + 1) * self.partitions]
            for ln, who in zip(lanes, (_sticky if sticky else _ranges)(lanes, ids), strict=True):
                owner[ln.index] = who
        for ln in self.lane:
            ln.owner = owner[ln.index]
            if ln.owner >= 0:
                self.members[ln.owner].lanes.append(ln.index)
        for member in self.members:
            member.waiting = sum(len(self.lane[lane].log) for lane in member.lanes)

    def effective_concurrency(self) -> int:
        """Messages the group can process at once: min(servers, topics × partitions ×
        max_in_flight), each partition of each topic it reads processing up to max_in_flight."""
        return min(self.consumers * self.workers, self.topics * self.partitions * self.max_in_flight)


def _ranges(lanes: list[Lane], ids: list[int]) -> list[int]:
    """Kafka's RangeAssignor for one topic: members in order take contiguous ranges, the first
    ones one partition more when the count does not divide."""
    if not ids:
        return [-1] * len(lanes)
    base, extra = divmod(len(lanes), len(ids))
    owners: list[int] = []
    for i, member in enumerate(ids):
        owners += [member] * (base + (1 if i < extra else 0))
    return owners


def _sticky(lanes: list[Lane], ids: list[int]) -> list[int]:
    """A sticky, balanced assignment of one topic: a partition stays with its owner while that is
    a member within its share; the others go to the members with the fewest."""
    if not ids:
        return [-1] * len(lanes)
    base, extra = divmod(len(lanes), len(ids))
    count = dict.fromkeys(ids, 0)
    owners = [-1] * len(lanes)
    for i, ln in enumerate(lanes):
        if ln.owner in count and count[ln.owner] < base:
            owners[i] = ln.owner
            count[ln.owner] += 1
    for i, ln in enumerate(lanes):
        if owners[i] < 0 and ln.owner in count and count[ln.owner] == base and extra > 0:
            owners[i] = ln.owner
            count[ln.owner] += 1
            extra -= 1
    for i in range(len(lanes)):
        if owners[i] < 0:
            best = min(ids, key=lambda c: (count[c], c))
            owners[i] = best
            count[best] += 1
    return owners


class QueueGroup(Group):
    """RabbitMQ or SQS competing consumers on one queue (see the module docstring)."""

    kind = "queue"

    def __init__(
        self,
        world: World,
        broker: MessageBroker,
        service: str,
        station: Station,
        consumer: Consumer,
        health: Health,
    ) -> None:
        super().__init__(world, broker, service, station, consumer, health)
        config = self.config
        self.visibility = config.visibility_timeout
        self.max_receives = config.max_receives
        bounds = [b for b in (config.max_length, self.queue_limit) if b is not None]
        self.max_length = min(bounds) if bounds else None
        """Ready messages the service's queue holds: the broker's max_length, or the service's own
        queue_limit if lower (a per-queue length policy)."""
        self.prefetch = config.prefetch
        self.options = JobOptions(on_start=self._received)
        # With prefetch: the ready messages no consumer has room for, each consumer's buffer of
        # received messages (a retry comes back to its front with its work), what it holds
        # unacknowledged and its workers in use.
        self.visible: deque[Message] = deque()
        self.buffers: list[deque[tuple[Receipt, float]]] = [deque() for _ in range(self.consumers)]
        self.held = [0] * self.consumers
        self.busy = [0] * self.consumers
        self.serve: tuple[Serve, Serve] | None = None
        self.ring = -1
        self._refilling = False
        self._again: deque[int] = deque()
        if self.prefetch is not None:
            health.on_change.append(self._health)
            health.drain_checks.append(lambda c: self.busy[c] == 0)

    def offer(self, work: Work, hop: float) -> None:
        m = self._message(work, 0, hop)
        self.world.after(m.ready - self.world.env._now, self._arrive, m)

    def _arrive(self, m: Message) -> None:
        """The message is ready in the queue (or again, after its lease ran out)."""
        broker = self.broker
        if broker.down:
            broker.hold(self._arrive, m)
            return
        if m.settled:
            return
        world = self.world
        if world.network.any_cut:
            cut = world.network.cut("broker", self.service)
            if cut is not None:  # no consumer can reach the queue: the message waits
                world.after(world.network.heals_in(cut), self._arrive, m)
                return
        if self.max_length is not None and self._waiting() >= self.max_length:
            if self.config.overflow == "reject":
                self.consumer.dead_letter(Receipt(self, m, -1, world.env._now))
                return
            self._drop_oldest()
        if self.prefetch is None:
            self.consumer.process(Receipt(self, m, -1, math.nan))
        else:
            self.visible.append(m)
            self._dispatch()

    def _waiting(self) -> int:
        """Messages waiting for a worker (in the station's queue, without prefetching, where
        the engine's calls of a hybrid may wait beside them: only the messages count)."""
        return self.options.waiting if self.prefetch is None else len(self.visible)

    def _drop_oldest(self) -> None:
        """A full queue drops its head to the dead-letter queue."""
        if self.prefetch is None:
            job = self.station.drop_oldest(self.options)
            if job is not None:
                r: Receipt = job[2]
                r.live = True
                self.consumer.dead_letter(r)
        elif self.visible:
            m = self.visible.popleft()
            self.consumer.dead_letter(Receipt(self, m, -1, self.world.env._now))

    # -- leases -------------------------------------------------------------------------------

    def _received(self, r: Receipt) -> bool:
        """Default mode: a worker takes the message, which is its receipt (a retry within the
        same receipt is not a new one). Too old a message is gone instead."""
        now = self.world.env._now
        if r.attempt == 1:
            m = r.message
            if now - m.committed > self.retention and not m.settled:
                r.live = False
                self._settle(m, EXPIRED)
                self.consumer.expire(m)
                return False
            r.received = now
            self._begin(m.id, now)
        if self.station.ended_of(r.visit) > r.received + self.visibility and not r.lapsed:
            self.world.after(max(0.0, r.received + self.visibility - now), self._lapse, r)
        if self.consumer.timeouts:
            self.consumer.begun(r)
        return True

    def _lapse(self, r: Receipt) -> None:
        """``r``'s lease ran out before it was acknowledged: the message is visible again (a
        duplicate; ``r``'s processing goes on, unaware), or past max_receives dead-lettered."""
        if r.lapsed or r.message.settled:
            return
        r.lapsed = True
        m = r.message
        if m.deliveries >= self.max_receives:
            self.consumer.dead_letter(Receipt(self, m, -1, self.world.env._now))
        elif self.prefetch is None:
            self.consumer.process(Receipt(self, m, -1, math.nan))
        else:
            self.visible.append(m)
            self._dispatch()

    # -- what the consumer reports --------------------------------------------------------------

    def execute(self, r: Receipt, amount: float, served: Serve, aborted: Serve) -> None:
        if self.prefetch is None:
            r.visit = self.station.visit_count()  # the visit submit gives it, read by _received
            r.visit = self.station.submit(amount, served, r, aborted, self.options)
            return
        self.serve = (served, aborted)
        if r.attempt == 1:
            self.station.begin(r.visit, amount, served, r, aborted, r.consumer, self.on_start)
        else:  # a retry waits at the front of its consumer's buffer, for a free worker
            self.buffers[r.consumer].appendleft((r, amount))
            self._run(r.consumer)

    def retrying(self, r: Receipt) -> None:
        if self.prefetch is not None:  # the worker is free during the backoff
            self.busy[r.consumer] -= 1
            self._run(r.consumer)

    def hold(self, r: Receipt, held: bool) -> None:
        if self.prefetch is None:  # (the station's own queue starts work on free servers only)
            return
        if held:
            self.busy[r.consumer] += 1
            return
        self.busy[r.consumer] -= 1
        self._refill(r.consumer)

    def done(self, r: Receipt, dead: bool = False) -> None:
        """The message is acknowledged (deleted), whichever receipt did it."""
        m = r.message
        m.settled = True
        self._settle(m, DEAD if dead else PROCESSED)
        if not r.live:
            return
        r.live = False
        if self.prefetch is not None and r.consumer >= 0:
            self.held[r.consumer] -= 1
            self.busy[r.consumer] -= 1
            self._refill(r.consumer)

    def _refill(self, c: int) -> None:
        """Consumer ``c`` has room again: its free workers take its buffer, then the ready
        messages go round. A message acknowledged at once when taken (its workflow is over)
        asks for a refill from within one: the running refill's loop does it, so that a long
        run of such messages does not nest."""
        if self._refilling:
            self._again.append(c)
            return
        self._refilling = True
        self._run(c)
        self._dispatch()
        while self._again:
            self._run(self._again.popleft())
            self._dispatch()
        self._refilling = False

    def aborted(self, r: Receipt) -> None:
        """A crash aborted the work: the message comes back when the lease of its receipt runs
        out (SQS), or at once (``on_crash: requeue``: RabbitMQ requeues on the lost connection)."""
        if not r.live:
            return
        r.live = False
        if self.prefetch is not None:
            self.held[r.consumer] -= 1
            self.busy[r.consumer] -= 1
        self.world.after(self._comes_back_in(r), self._lapse, r)

    def _comes_back_in(self, r: Receipt) -> float:
        if self.config.on_crash == "requeue":
            return 0.0
        return max(0.0, r.received + self.visibility - self.world.env._now)

    # -- prefetch ---------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Hand ready messages to the consumers with room under their prefetch, round the ring."""
        visible, prefetch = self.visible, self.prefetch
        assert prefetch is not None
        n = self.consumers
        now = self.world.env._now
        while visible:
            for _ in range(n):
                self.ring = self.ring + 1 if self.ring + 1 < n else 0
                if self.held[self.ring] < prefetch and self.station.takes(self.ring):
                    break
            else:
                return
            m = visible.popleft()
            if m.settled:
                continue
            if now - m.committed > self.retention:
                self._settle(m, EXPIRED)
                self.consumer.expire(m)
                continue
            c = self.ring
            r = Receipt(self, m, c, now)
            r.visit = self.station.enter()
            self.held[c] += 1
            self.world.after(self.visibility, self._lapse, r)
            self.buffers[c].append((r, math.nan))
            self._run(c)

    def _run(self, c: int) -> None:
        """Consumer ``c``'s free workers take what its buffer holds, in order."""
        buffer = self.buffers[c]
        while buffer and self.busy[c] < self.workers and self.station.takes(c):
            r, amount = buffer.popleft()
            if not r.live:
                continue
            self.busy[c] += 1
            if math.isnan(amount):
                self._begin(r.message.id, self.world.env._now)
                self.consumer.process(r)
            else:
                assert self.serve is not None
                r.visit = self.station.enter()
                served, aborted = self.serve
                self.station.begin(r.visit, amount, served, r, aborted, c, self.on_start)

    def _health(self, health: Health) -> None:
        """Prefetch mode: a consumer that goes down loses its buffer (the messages come back when
        their leases run out); one that drains hands its unstarted messages back at once."""
        down = health.down_now()
        for c in range(self.consumers):
            if self.station.takes(c) or not self.buffers[c]:
                continue
            back_now = c not in down or self.config.on_crash == "requeue"
            for r, _ in self.buffers[c]:
                if not r.live:
                    continue
                r.live = False
                self.held[c] -= 1
                self.station.leave(r.visit)
                if back_now:  # a clean stop, or a broker that requeues: the message is back now
                    r.lapsed = True
                    self.visible.append(r.message)
            self.buffers[c].clear()
        for c in range(self.consumers):
            self._run(c)
        self._dispatch()

    def resume(self) -> None:
        if self.prefetch is not None:
            self._dispatch()

    def effective_concurrency(self) -> int:
        """Messages the group can process at once: its servers (or consumers × prefetch)."""
        per = self.workers if self.prefetch is None else min(self.workers, self.prefetch)
        return self.consumers * per
