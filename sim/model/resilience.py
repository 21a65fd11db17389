"""Resilience policies of a caller towards one service: retries, circuit breaker, bulkhead.

These are the client-side mechanisms of resilience4j, Polly or an SDK's retry mode, modelled as
small state machines that every caller consults the same way (an engine calling a service, a
consumer retrying its work, a producer retrying a publish): whether a call may go out now, and
how long to wait before the next attempt. They hold no simulation processes of their own, and
report what they do through the run's :class:`~sim.model.counters.Counters`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

from sim.model.counters import Counters
from sim.scenario.models import Bulkhead, CircuitBreaker, Retry


def backoff(policy: Retry, retry: int, u: float) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first retry); ``u`` is a U(0, 1)
    draw used for jitter.

    The exponential growth is capped at ``max_backoff``; a power that overflows (multiplier 2
    after about 1,025 retries, or a multiplier of 1e200 at the second) is past the cap, so the
    backoff is the cap. Below it the arithmetic is exactly the textbook formula.
    """
    if policy.initial == 0:
        return 0.0
    try:
        grown = policy.initial * policy.multiplier ** (retry - 1)  # inf if only the product overflows
    except OverflowError:  # float ** int raises rather than giving inf
        grown = math.inf
    base = min(policy.max_backoff, grown)
    if policy.jitter == "full":
        return u * base
    if policy.jitter == "equal":
        return base / 2 + u * base / 2
    return base


class RetryPolicy:
    """When a failed attempt is tried again, and after how long (the AWS SDK's standard mode:
    capped exponential backoff with jitter).

    ``jitter`` is the caller's U(0, 1) stream; one draw is taken per retry whatever the jitter
    mode, so changing the mode never shifts the numbers of later retries.
    """

    __slots__ = ("config", "jitter")

    def __init__(self, config: Retry, jitter: Callable[[], float]) -> None:
        self.config = config
        self.jitter = jitter

    def allows(self, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (1 for the first) may be followed by another."""
        limit = self.config.max_attempts
        return limit is None or attempt < limit

    def next_delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` before the next one."""
        return backoff(self.config, attempt, self.jitter())


def retry_policies(configs: dict[str, Retry | None], jitter: Callable[[], float]) -> dict[str, RetryPolicy]:
    """One :class:`RetryPolicy` per name that has a retry configuration, sharing ``jitter``."""
    return {name: RetryPolicy(c, jitter) for name, c in configs.items() if c is not None}


class Breaker:
    """A count-based circuit breaker: closed, open (fails calls fast), half-open (probes)."""

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(self, policy: CircuitBreaker, counters: Counters) -> None:
        self.policy = policy
        self.counters = counters
        self.state = self.CLOSED
        self.outcomes: deque[bool] = deque(maxlen=policy.window)
        self.opened_at = 0.0
        self.probes = 0
        self.probe_failures = 0
        self.probe_results = 0

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
        self.counters.breaker_openings += 1
        self.outcomes.clear()


class Slots:
    """A bulkhead: at most ``max_concurrent`` calls at once, ``max_waiting`` more may wait."""

    def __init__(self, policy: Bulkhead, counters: Counters) -> None:
        self.policy = policy
        self.counters = counters
        self.in_use = 0
        self.waiting: deque[tuple[Callable[[Any], None], Any]] = deque()

    def acquire(self, go: Callable[[Any], None], arg: Any) -> bool:
        """Run ``go(arg)`` now or when a slot frees; False if refused (the call fails fast)."""
        if self.in_use < self.policy.max_concurrent:
            self.in_use += 1
            go(arg)
            return True
        if len(self.waiting) < self.policy.max_waiting:
            self.waiting.append((go, arg))
            return True
        self.counters.bulkhead_refusals += 1
        return False

    def release(self) -> None:
        if self.waiting:
            go, arg = self.waiting.popleft()
            go(arg)
        else:
            self.in_use -= 1
