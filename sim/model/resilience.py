"""Resilience policies of a caller towards one service: retry backoff, circuit breaker, bulkhead.

These are the client-side mechanisms of resilience4j, Polly or an SDK's retry mode, modelled as
small state machines that the coordinators consult: whether a call may go out now, and how long
to wait before the next attempt. They hold no simulation processes of their own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from sim.scenario.models import Bulkhead, CircuitBreaker, Retry


def backoff(policy: Retry, retry: int, u: float) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first retry); ``u`` is a U(0, 1)
    draw used for jitter."""
    base = min(policy.max_backoff, policy.initial * policy.multiplier ** (retry - 1))
    if policy.jitter == "full":
        return u * base
    if policy.jitter == "equal":
        return base / 2 + u * base / 2
    return base


class Breaker:
    """A count-based circuit breaker: closed, open (fails calls fast), half-open (probes)."""

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(self, policy: CircuitBreaker) -> None:
        self.policy = policy
        self.state = self.CLOSED
        self.outcomes: deque[bool] = deque(maxlen=policy.window)
        self.opened_at = 0.0
        self.probes = 0
        self.probe_failures = 0
        self.probe_results = 0
        self.opened = 0
        """How many times the breaker opened."""

    def allow(self, now: float) -> bool:
        """Whether a call may go out at ``now`` (a half-open breaker admits its probes)."""
        if self.state == self.OPEN:
            if now - self.opened_at < self.policy.open_for:
                return False
            self.state, self.probes, self.probe_failures, self.probe_results = self.HALF_OPEN, 0, 0, 0
        if self.state == self.HALF_OPEN:
            if self.probes >= self.policy.half_open_calls:
                return False
            self.probes += 1
        return True

    def record(self, ok: bool, now: float) -> None:
        """The outcome of a call that went out."""
        if self.state == self.HALF_OPEN:
            self.probe_results += 1
            self.probe_failures += not ok
            if self.probe_results >= self.policy.half_open_calls:
                if self.probe_failures / self.probe_results >= self.policy.failure_rate:
                    self._open(now)
                else:
                    self.state = self.CLOSED
                    self.outcomes.clear()
            return
        if self.state == self.OPEN:
            return  # a late reply of a call sent before the breaker opened
        self.outcomes.append(ok)
        n = len(self.outcomes)
        if n >= self.policy.minimum_calls and (n - sum(self.outcomes)) / n >= self.policy.failure_rate:
            self._open(now)

    def _open(self, now: float) -> None:
        self.state = self.OPEN
        self.opened_at = now
        self.opened += 1
        self.outcomes.clear()


class Slots:
    """A bulkhead: at most ``max_concurrent`` calls at once, ``max_waiting`` more may wait."""

    def __init__(self, policy: Bulkhead) -> None:
        self.policy = policy
        self.in_use = 0
        self.waiting: deque[tuple[Callable[[Any], None], Any]] = deque()
        self.refused = 0

    def acquire(self, go: Callable[[Any], None], arg: Any) -> bool:
        """Run ``go(arg)`` now or when a slot frees; False if refused (the call fails fast)."""
        if self.in_use < self.policy.max_concurrent:
            self.in_use += 1
            go(arg)
            return True
        if len(self.waiting) < self.policy.max_waiting:
            self.waiting.append((go, arg))
            return True
        self.refused += 1
        return False

    def release(self) -> None:
        if self.waiting:
            go, arg = self.waiting.popleft()
            go(arg)
        else:
            self.in_use -= 1
