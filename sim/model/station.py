"""A station: identical servers in front of one FIFO queue.

Every component that does work (a service, the orchestrator's engine, the broker's partitions) is
a station. A request is submitted with its service time and a continuation; if a server is idle
it starts at once, otherwise it waits in the queue (or is rejected when a queue limit is full).
When its service ends, the continuation is called and the next waiting request starts.

The station is written like SimPy's own resources: callbacks on events, not a process per
request, so one service visit costs exactly one engine event. It records raw timestamps
(arrival, start and end of each visit, rejections, errors) into compact arrays; utilisation, queue
lengths and waits are computed from them afterwards (:mod:`sim.analysis.metrics`), so the warm-up
can be re-chosen without re-running.

Left out on purpose: priorities, preemption and per-replica queues (the servers share one queue,
as an ideal load balancer would).
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import Timeout


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
        self._running = True
        try:
            fn(arg)
            pending = self._pending
            while pending:
                fn, arg = pending.popleft()
                fn(arg)
        finally:
            self._pending.clear()
            self._running = False


class Station:
    """``servers`` identical servers (``None``: unlimited) sharing one FIFO queue.

    ``queue_limit`` bounds the requests that may wait; a request that finds the queue full is
    rejected and :meth:`submit` returns False. ``kind`` names the role for reports
    (service, orchestrator, broker).
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        kind: str,
        servers: int | None,
        queue_limit: int | None = None,
        immediate: Immediate | None = None,
    ) -> None:
        self.env = env
        self.immediate = immediate or Immediate()
        self.name = name
        self.kind = kind
        self.servers = servers
        self.queue_limit = queue_limit
        self._capacity: float = math.inf if servers is None else servers
        self.busy = 0
        self.queue: deque[tuple[float, Callable[[Any], None], Any]] = deque()
        # Raw records (compact float arrays). FIFO means the i-th request to start is the i-th
        # accepted one, so arrived[i] and started[i] belong to the same request.
        self.arrived = array("d")
        self.started = array("d")
        self.ended = array("d")
        self.rejected = array("d")
        self.errors = array("d")
        """Instants at which a request served here ended in an error (recorded by the world)."""

    def submit(self, service_time: float, done: Callable[[Any], None], payload: Any) -> bool:
        """Offer a request; ``done(payload)`` is called when its service ends.

        Returns False if the request was rejected because the queue was full.
        """
        now = self.env.now
        if self.busy < self._capacity and not self.queue:
            self.arrived.append(now)
            self._start(now, service_time, done, payload)
        elif self.queue_limit is not None and len(self.queue) >= self.queue_limit:
            self.rejected.append(now)
            return False
        else:
            self.arrived.append(now)
            self.queue.append((service_time, done, payload))
        return True

    def _start(self, now: float, service_time: float, done: Callable[[Any], None], payload: Any) -> None:
        self.started.append(now)
        self.ended.append(now + service_time)
        if service_time == 0:  # takes no time, so it holds no server
            self.immediate(done, payload)
            return
        self.busy += 1
        Timeout(self.env, service_time, (done, payload)).callbacks.append(self._finish)

    def _finish(self, event: Timeout) -> None:
        done, payload = event._value
        self.busy -= 1
        done(payload)
        queue = self.queue
        while queue and self.busy < self._capacity:
            self._start(self.env.now, *queue.popleft())

    @property
    def in_system(self) -> int:
        """Requests waiting or in service now."""
        return self.busy + len(self.queue)
