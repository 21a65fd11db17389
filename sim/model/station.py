"""A station: identical servers in front of one FIFO queue.

Every component that does work (a service, the orchestrator's engine, the broker's partitions) is
a station. A request is submitted with its service time and a continuation; if a server is idle
it starts at once, otherwise it waits in the queue (or is rejected when a queue limit is full).
When its service ends, the continuation is called and the next waiting request starts.

The station is written like SimPy's own resources: callbacks on events, not a process per
request, so one service visit costs exactly one engine event. It records raw timestamps into
compact arrays indexed by visit (the i-th request to arrive is visit i): its arrival, the start
and end of its service (NaN while it waits; start = end for a request that left the queue
unserved), plus rejections, errors and aborts. Utilisation, queue lengths and waits are computed
from them afterwards (:mod:`sim.analysis.metrics`), so the warm-up can be re-chosen without
re-running. A long run writes the visits it has finished with out of memory as it goes
(:meth:`Station.spill`), so its memory does not grow with its length.

Two refinements serve the workflow engine: a request may *hold* its server after its own work
until :meth:`Station.release` (a history shard that stays busy while its write commits), and a
waiting request may be *cancelled* (a task whose schedule-to-start timeout expired leaves its
task queue).

A service's servers belong to its replicas. When faults may act on single replicas, the station
keeps which replica serves each request (:meth:`Station.track_replicas`): a crashed replica
aborts its own requests, a draining one (a rolling deploy) finishes them but takes no new ones.
An owner that schedules requests itself (a consumer group, whose partitions belong to one
consumer) records a request's arrival with :meth:`Station.enter` and starts it on a replica of
its choice with :meth:`Station.begin`; the waiting then happens in the owner, not in the queue.

Left out on purpose: priorities, preemption and per-replica queues (the servers share one queue,
as an ideal load balancer would).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from sim.model.clock import Due, due
from sim.model.records import VISIT_COLUMNS, Spill, SpillFolder, write_out


class Immediate:
    """Runs zero-delay actions one after another rather than nested inside each other.

    A chain of instantaneous steps (zero latency, zero overhead) would otherwise grow the call
    stack by a few frames per step. Actions still run at the same simulated instant, in the
    order they were asked for.
    """

    __slots__ = ("_pending", "_running")

    def __init__(self) -> None:
        self._pending: deque[tuple[Callable[[Any], None], Any]] = deque()
        self._running = False

    def __call__(self, fn: Callable[[Any], None], arg: Any) -> None:
        if self._running:
            self._pending.append((fn, arg))
            return
        # No try/finally: an exception here ends the whole run, and its world with it.
        self._running = True
        fn(arg)
        pending = self._pending
        while pending:
            fn, arg = pending.popleft()
            fn(arg)
        self._running = False


Job = tuple[float, Callable[[Any], None], Any, Callable[[Any], None] | None, int, "JobOptions | None", int]
"""(service time, continuation, payload, what to call if a crash aborts it, visit, options,
replica; 0 unless replicas are tracked)."""


class JobOptions:
    """What few requests need: holding the server after the work, a hook when service starts
    (``on_start(payload)``; if it returns False the request leaves unserved instead).

    ``waiting`` counts the requests submitted with these options that are in the queue (a
    cancelled one until the queue discards it): an owner that shares the station with others,
    such as a broker queue whose service the engine also calls, counts its own requests."""

    __slots__ = ("hold", "on_start", "waiting")

    def __init__(self, hold: bool = False, on_start: Callable[[Any], bool | None] | None = None) -> None:
        self.hold = hold
        self.on_start = on_start
        self.waiting = 0


NAN = math.nan

SPILL_AT = 1 << 17
"""Visits a station holds in memory before it writes the finished ones out (:meth:`Station.spill`):
about 3 MB of records. Runs shorter than this keep every visit in memory."""


class Station:
    """``servers`` identical servers (``None``: unlimited) sharing one FIFO queue.

    ``queue_limit`` bounds the requests that may wait; a request that finds the queue full is
    rejected and :meth:`submit` returns -1 (else the request's visit number). ``kind`` names the
    role for reports (service, shard, store, broker).

    Faults act on a station through three knobs: :meth:`set_available` (servers lost to a crash,
    an outage or a capacity loss; requests in service on a lost server are aborted and their
    ``abort`` continuation is called), ``slowdown`` (a factor on the service time of requests
    that start while it is set) and ``error_probability`` (read by the world when a request ends).
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        kind: str,
        servers: int | None,
        queue_limit: int | None = None,
        immediate: Immediate | None = None,
        error_probability: float = 0.0,
        group: str | None = None,
        replicas: int = 1,
    ) -> None:
        self.env = env
        self.immediate = immediate or Immediate()
        self.name = name
        self.kind = kind
        self.group = group
        """The component this station is one part of (the engine, for a shard), if any."""
        self.servers = servers
        self.queue_limit = queue_limit
        self._full: float = math.inf if servers is None else servers
        self._capacity: float = self._full
        self.busy = 0
        self.queue: deque[Job] = deque()
        self.running: dict[Due, Job] = {}
        self.tracked = False
        """Whether requests in service are tracked so that a crash can abort them (only for
        stations that faults can take servers from: it costs a dictionary entry per visit)."""
        self.cancelled: set[int] = set()
        """Visits cancelled while waiting, still in the queue (skipped when their turn comes)."""
        self.slowdown = 1.0
        self.error_probability = error_probability
        self.lost_work = 0.0
        """Seconds of service thrown away by aborted requests."""
        self.arrived = array("d")
        self.started = array("d")
        self.ended = array("d")
        self.rejected = array("d")
        self.errors = array("d")
        """Instants at which a request served here ended in an error (recorded by the world)."""
        self.aborted = array("d")
        """Instants at which a request in service was aborted by a crash."""
        self.held = array("q")
        """Visits that held their server after their work (see :meth:`release`)."""
        self.held_at = array("d")
        """When each of those visits' own work ended and the hold began."""
        self.left = array("q")
        """Visits that left the queue unserved (cancelled or dropped); their start = end is the
        instant they left."""
        self.base = 0
        """Visits written out of memory (:meth:`spill`): visit ``v`` is at index ``v - base`` of
        ``arrived``, ``started`` and ``ended``."""
        self.spilled: Spill | None = None
        self.keep = math.inf
        """The first visit a reader of the records during the run still needs (an autoscaler's
        meter): it and those after it stay in memory."""
        self.holding: set[int] = set()
        """Visits holding their server now (their end is not final until released)."""
        self.replicas = replicas
        self.per_replica = self._full / replicas
        self.rbusy: list[int] | None = None
        """Requests in service on each replica, once replicas are tracked (else None)."""
        self.ravail: list[bool] = []
        """Whether each replica takes new requests (up, and not draining)."""
        self.rdown: list[bool] = []
        self._open: list[int] = []
        """The replicas that take new requests, in ascending order (a ring of thousands of
        replicas, most of them absent under an autoscaler, is searched only where it is open)."""
        self._ring = 0
        self.on_idle: Callable[[int], None] | None = None
        """Called with a draining replica's number once its last request has ended."""
        self.after_finish: Callable[[], None] | None = None
        """Called after each request ends (set while the world winds down)."""
        self.crashes = [0] * max(1, replicas)
        """Times each replica went down (an untracked station counts on replica 0): a process
        that crashed since it started something no longer holds what it kept in memory."""
        self.finisher = -1
        """The replica whose request is ending, while its continuation runs (else -1)."""
        self.ending = -1
        """The visit of the request that ended last (read by its continuation)."""

    def track_replicas(self) -> None:
        """Keep which replica serves each request, so that faults act on single replicas (called
        before the run starts, for a station whose replicas a fault may take)."""
        self.tracked = True
        if self.rbusy is None:
            self.rbusy = [0] * self.replicas
            self.ravail = [True] * self.replicas
            self.rdown = [False] * self.replicas
            self._open = list(range(self.replicas))

    def takes(self, replica: int) -> bool:
        """Whether ``replica`` takes new requests."""
        return self.rbusy is None or self.ravail[replica]

    def _pick(self) -> int:
        """The replica that serves a new request: the next one round the ring with a free server
        (the caller has checked that some replica has one)."""
        rbusy, per, open_ = self.rbusy, self.per_replica, self._open
        assert rbusy is not None
        m = len(open_)
        j = bisect_right(open_, self._ring)
        for _ in range(m):
            if j >= m:
                j = 0
            r = open_[j]
            if rbusy[r] < per:
                self._ring = r
                return r
            j += 1
        raise AssertionError(f"{self.name}: no replica has a free server")

    @property
    def down(self) -> bool:
        """True while no server is available (an outage, or every replica crashed)."""
        return self._capacity == 0

    @property
    def waiting(self) -> int:
        """Requests waiting for a server."""
        return len(self.queue) - len(self.cancelled)

    @property
    def in_service(self) -> int:
        """Requests being served, those a draining replica finishes included (``busy`` counts only
        the servers that take work)."""
        return self.busy if self.rbusy is None else sum(self.rbusy)

    def submit(
        self,
        service_time: float,
        done: Callable[[Any], None],
        payload: Any,
        abort: Callable[[Any], None] | None = None,
        options: JobOptions | None = None,
    ) -> int:
        """Offer a request; ``done(payload)`` is called when its service ends, ``abort(payload)``
        if a crash aborts it while in service. Return its visit number, or -1 if it was
        rejected because the queue was full."""
        now = self.env._now
        arrived = self.arrived
        visit = self.base + len(arrived)
        if self.busy < self._capacity and not self.queue:
            # An idle server takes it at once (the common case, written out for speed).
            arrived.append(now)
            self.started.append(now)
            service_time *= self.slowdown
            self.ended.append(now + service_time)
            if options is None and service_time == 0:
                self.immediate(done, payload)
                return visit
            # The server is taken before a start hook runs: the hook may offer more work at once.
            self.busy += 1
            replica = 0
            if self.rbusy is not None:
                replica = self._pick()
                self.rbusy[replica] += 1
            if options is not None and options.on_start is not None and options.on_start(payload) is False:
                self._unreserve(replica)
                self.leave(visit)
                return visit
            job = (service_time, done, payload, abort, visit, options, replica)
            event = due(self.env, service_time, job, self._finish)
            if self.tracked:
                self.running[event] = job
            return visit
        if self.queue_limit is not None and self.waiting >= self.queue_limit:
            self.rejected.append(now)
            return -1
        self.arrived.append(now)
        self.started.append(NAN)
        self.ended.append(NAN)
        self._wait((service_time, done, payload, abort, visit, options, 0))
        return visit

    def _wait(self, job: Job) -> None:
        """``job`` waits in the queue (counted among its options' waiting requests)."""
        self.queue.append(job)
        if job[5] is not None:
            job[5].waiting += 1

    def enter(self, at: float | None = None) -> int:
        """Record the arrival of a request its owner will start with :meth:`begin` (``at``: when
        it arrived, if earlier than now); return its visit number. It waits in the owner."""
        visit = self.base + len(self.arrived)
        self.arrived.append(self.env._now if at is None else at)
        self.started.append(NAN)
        self.ended.append(NAN)
        return visit

    def begin(
        self,
        visit: int,
        service_time: float,
        done: Callable[[Any], None],
        payload: Any,
        abort: Callable[[Any], None] | None = None,
        replica: int = -1,
        on_start: Callable[[Any], bool | None] | None = None,
    ) -> int:
        """Start the service of an entered visit now (``visit`` -1: of a request arriving now,
        which waited nowhere), on ``replica`` (-1: any with a free server); a draining replica
        may still go on with work it holds, such as a retry. Return the visit.

        The owner has counted a free worker of its own (a consumer's), but the servers may be
        shared with other callers (a hybrid's engine calls the same service) or still held by
        work the owner gave up on: with none free, the request waits in the queue like any other,
        on any replica, and ``on_start(payload)`` is called when it starts."""
        now = self.env._now
        if (
            self.busy >= self._capacity
            if self.rbusy is None or replica < 0
            else self.rbusy[replica] >= self.per_replica
        ) and service_time * self.slowdown != 0:
            if visit < 0:
                visit = self.enter()
            options = None if on_start is None else JobOptions(on_start=on_start)
            self._wait((service_time, done, payload, abort, visit, options, 0))
            return visit
        service_time *= self.slowdown
        if visit < 0:
            visit = self.base + len(self.arrived)
            self.arrived.append(now)
            self.started.append(now)
            self.ended.append(now + service_time)
        else:
            self.started[visit - self.base] = now
            self.ended[visit - self.base] = now + service_time
        if service_time == 0:
            self.immediate(done, payload)
            return visit
        if self.rbusy is None:
            self.busy += 1
        else:
            if replica < 0:
                replica = self._pick()
            assert not self.rdown[replica], f"{self.name}: replica {replica} is down"
            self.rbusy[replica] += 1
            if self.ravail[replica]:  # a draining replica finishes what it holds, uncounted in busy
                self.busy += 1
        job = (service_time, done, payload, abort, visit, None, replica if replica > 0 else 0)
        event = due(self.env, service_time, job, self._finish)
        if self.tracked:
            self.running[event] = job
        return visit

    def leave(self, visit: int) -> None:
        """An entered visit leaves unserved, now (dropped or handed elsewhere)."""
        now = self.env._now
        self.started[visit - self.base] = now
        self.ended[visit - self.base] = now
        self.left.append(visit)

    def drop_oldest(self, options: JobOptions) -> Job | None:
        """Take the oldest waiting request submitted with ``options`` out of the queue, recorded
        as leaving unserved now (a full queue that drops its head); None if none waits. Requests
        of other owners keep their places."""
        queue, cancelled = self.queue, self.cancelled
        for i, job in enumerate(queue):
            if job[5] is options and not (cancelled and job[4] in cancelled):
                del queue[i]
                options.waiting -= 1
                self.leave(job[4])
                return job
        return None

    def _start(self, now: float, job: Job) -> None:
        service_time = job[0] * self.slowdown
        visit, options = job[4], job[5]
        i = visit - self.base
        self.started[i] = now
        self.ended[i] = now + service_time
        if service_time == 0 and options is None:  # takes no time, so it holds no server
            self.immediate(job[1], job[2])
            return
        # The server is taken before a start hook runs: the hook may offer more work at once.
        self.busy += 1
        replica = 0
        if self.rbusy is not None:
            replica = self._pick()
            self.rbusy[replica] += 1
        if options is not None and options.on_start is not None and options.on_start(job[2]) is False:
            self._unreserve(replica)
            self.leave(visit)
            return
        job = (service_time, job[1], job[2], job[3], visit, options, replica)
        event = due(self.env, service_time, job, self._finish)
        if self.tracked:
            self.running[event] = job

    def _unreserve(self, replica: int) -> None:
        """A start hook refused the request: the server it was given is free again."""
        self.busy -= 1
        if self.rbusy is not None:
            self.rbusy[replica] -= 1

    def _finish(self, event: Due) -> None:
        if self.tracked and self.running.pop(event, None) is None:
            return  # aborted by a crash: its server is already gone
        _, done, payload, _, visit, options, replica = event._value
        self.finisher = replica
        self.ending = visit
        if options is not None and options.hold:
            self.held.append(visit)
            self.held_at.append(self.env._now)
            self.holding.add(visit)
            done(payload)  # the server stays busy until release()
            self.finisher = -1
            return
        rbusy = self.rbusy
        if rbusy is not None:
            rbusy[replica] -= 1
            if not self.ravail[replica]:  # a draining replica's request: no longer counted in busy
                done(payload)
                self.finisher = -1
                if rbusy[replica] == 0 and not self.rdown[replica] and self.on_idle is not None:
                    self.on_idle(replica)
                if self.after_finish is not None:
                    self.after_finish()
                return
        self.busy -= 1
        done(payload)
        self.finisher = -1
        self._serve_queue()
        if self.after_finish is not None:
            self.after_finish()

    def release(self, visit: int) -> None:
        """A held request lets its server go (its service ends now)."""
        self.ended[visit - self.base] = self.env._now
        self.holding.discard(visit)
        self.busy -= 1
        self._serve_queue()

    def _serve_queue(self) -> None:
        queue = self.queue
        while queue and self.busy < self._capacity:
            job = queue.popleft()
            if job[5] is not None:
                job[5].waiting -= 1
            if self.cancelled and job[4] in self.cancelled:
                self.cancelled.discard(job[4])
                continue
            self._start(self.env._now, job)

    def cancel(self, visit: int) -> bool:
        """Take a waiting request out of the queue (it leaves unserved, now); False if it has
        already started (or was never queued here)."""
        i = visit - self.base
        if visit < 0 or i < 0 or i >= len(self.started) or not math.isnan(self.started[i]):
            return False  # (a visit written out of memory has finished)
        if visit in self.cancelled:
            return False
        now = self.env._now
        self.cancelled.add(visit)
        self.started[i] = now
        self.ended[i] = now
        self.left.append(visit)
        return True

    def set_available(self, servers: float, abort: bool = True) -> None:
        """Change the number of working servers (``math.inf`` for an unlimited station).

        If fewer servers remain than requests in service, the most recently started requests are
        aborted: their work is lost and their ``abort`` continuation is called. Waiting requests
        stay queued (a broker keeps a down consumer's events) until servers return. A held server
        (its work done, waiting for :meth:`release`) is not aborted: it frees itself when released.
        Without ``abort`` (a graceful stop) the requests in service finish.
        """
        capacity = min(servers, self._full)
        if capacity < self._capacity and abort:
            self.crashes[0] += 1
        self._capacity = capacity
        while abort and self.busy > self._capacity and self.running:
            event = next(reversed(self.running))
            job = self.running.pop(event)
            self.busy -= 1
            self._abort(job)
        self._serve_queue()

    def set_replicas(self, down: set[int], draining: set[int]) -> None:
        """Which replicas are down (their requests in service are aborted) and which drain (their
        requests finish, but they take no new ones); the others take requests. Needs
        :meth:`track_replicas`."""
        rbusy = self.rbusy
        assert rbusy is not None, f"{self.name}: replicas are not tracked"
        idle = []
        for r in range(self.replicas):
            is_down = r in down
            avail = not is_down and r not in draining
            if is_down and not self.rdown[r] and self.ravail[r]:  # (one that drained first stopped cleanly)
                self.crashes[r] += 1
            if is_down and not self.rdown[r] and rbusy[r] > 0:
                for event, job in list(self.running.items()):
                    if job[6] == r:
                        del self.running[event]
                        rbusy[r] -= 1
                        if self.ravail[r]:
                            self.busy -= 1
                        self._abort(job)
            if self.ravail[r] and not avail:
                self.busy -= rbusy[r]
                if not is_down and rbusy[r] == 0:
                    idle.append(r)
            elif avail and not self.ravail[r]:
                self.busy += rbusy[r]
            self.ravail[r], self.rdown[r] = avail, is_down
        self._open = [r for r in range(self.replicas) if self.ravail[r]]
        up = len(self._open)
        self._capacity = 0 if up == 0 else min(self._full, self.per_replica * up)
        if self.on_idle is not None:
            for r in idle:
                self.on_idle(r)
        self._serve_queue()

    def _abort(self, job: Job) -> None:
        """A request in service is aborted now: its work so far is lost."""
        now = self.env._now
        i = job[4] - self.base
        self.lost_work += now - self.started[i]
        self.ended[i] = now
        self.aborted.append(now)
        if job[3] is not None:
            self.immediate(job[3], job[2])

    def full_capacity(self) -> float:
        """Servers when nothing is lost."""
        return self._full

    def drop_queue(self) -> list[Job]:
        """Remove and return every waiting request (an engine that loses its memory). They are
        recorded as leaving the queue now, with no service."""
        for job in self.queue:
            if job[5] is not None:
                job[5].waiting -= 1
        jobs = [job for job in self.queue if job[4] not in self.cancelled]
        self.queue.clear()
        self.cancelled.clear()
        now = self.env._now
        for job in jobs:
            self.started[job[4] - self.base] = now
            self.ended[job[4] - self.base] = now
            self.left.append(job[4])
        return jobs

    def visit_count(self) -> int:
        """Visits recorded so far (the number the next one gets)."""
        return self.base + len(self.arrived)

    def started_of(self, visit: int) -> float:
        """When ``visit``'s service started (NaN while it waits)."""
        i = visit - self.base
        return self.started[i] if i >= 0 else self._spilled(visit, 1)

    def ended_of(self, visit: int) -> float:
        """When ``visit``'s service ended or is due to end (NaN while it waits)."""
        i = visit - self.base
        return self.ended[i] if i >= 0 else self._spilled(visit, 2)

    def _spilled(self, visit: int, column: int) -> float:
        assert self.spilled is not None, f"{self.name}: visit {visit} is not recorded"
        return self.spilled.value(visit, column)

    def crowded(self) -> bool:
        """Whether :meth:`spill` may write visits out (it holds :data:`SPILL_AT` or more)."""
        return len(self.arrived) >= SPILL_AT

    def spill(self, folder: SpillFolder) -> None:
        """Write the oldest finished visits out of memory, when at least :data:`SPILL_AT` are
        recorded here: those before the first one still waiting, in service, holding its server
        or needed by a reader during the run (their records no longer change)."""
        n = len(self.arrived)
        if n < SPILL_AT:
            return
        now = self.env._now
        ended = np.frombuffer(self.ended, dtype=np.float64)
        done = ended < now  # NaN (waiting) compares false
        k = n if done.all() else int(np.argmin(done))
        del ended, done  # (a numpy view would pin the array's buffer)
        k = int(min(k, min(self.holding, default=math.inf) - self.base, self.keep - self.base))
        if k < SPILL_AT // 2:
            return
        records = [self.arrived, self.started, self.ended]
        self.spilled = write_out(self.spilled, folder, VISIT_COLUMNS, records, k)
        self.base += k
