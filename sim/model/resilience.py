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
from sim.scenario.retry import RetryBudget


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


class Quota:
    """The tokens of a retry budget (:class:`~sim.scenario.retry.RetryBudget`): one bucket per
    caller and service, as one AWS SDK client holds one for its endpoint."""

    __slots__ = ("config", "counters", "tokens")

    def __init__(self, config: RetryBudget, counters: Counters) -> None:
        self.config = config
        self.counters = counters
        self.tokens = config.capacity

    def take(self, timeout: bool) -> int:
        """Tokens for one retry (after a timeout: ``timeout_cost``), or -1 when too few are left."""
        cost = self.config.timeout_cost if timeout else self.config.retry_cost
        if cost > self.tokens:
            self.counters.retries_refused += 1
            return -1
        self.tokens -= cost
        return cost

    def give(self, cost: int) -> None:
        """A call succeeded: at once (``cost`` 0, the success refund) or after a retry that took
        ``cost`` tokens, which come back."""
        back = cost or self.config.success_refund
        self.tokens = min(self.config.capacity, self.tokens + back)


class RetryPolicy:
    """When a failed attempt is tried again, and after how long (the AWS SDK's standard mode:
    capped exponential backoff with jitter, and its retry quota when ``budget`` is set).

    ``jitter`` is the caller's U(0, 1) stream; one draw is taken per retry whatever the jitter
    mode, so changing the mode never shifts the numbers of later retries.
    """

    __slots__ = ("config", "jitter", "quota")

    def __init__(self, config: Retry, jitter: Callable[[], float], counters: Counters | None = None) -> None:
        self.config = config
        self.jitter = jitter
        self.quota = Quota(config.budget, counters or Counters()) if config.budget is not None else None

    def allows(self, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (1 for the first) may be followed by another (the
        number of attempts only: the budget, if any, is :meth:`charge`)."""
        limit = self.config.max_attempts
        return limit is None or attempt < limit

    def charge(self, timeout: bool = False) -> int:
        """The tokens a retry that :meth:`allows` lets go takes from the budget (0 without one),
        or -1 when the budget refuses it. ``timeout``: the failed attempt timed out."""
        return 0 if self.quota is None else self.quota.take(timeout)

    def succeeded(self, cost: int) -> None:
        """A call succeeded; ``cost``: the tokens its last retry took (0: it never retried)."""
        if self.quota is not None:
            self.quota.give(cost)

    def next_delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` before the next one."""
        return backoff(self.config, attempt, self.jitter())


def retry_policies(
    configs: dict[str, Retry | None],
    jitters: dict[str, Callable[[], float]],
    counters: Counters | None = None,
) -> dict[str, RetryPolicy]:
    """One :class:`RetryPolicy` per name that has a retry configuration, with that name's jitter
    stream (and a retry budget of its own, if configured)."""
    return {name: RetryPolicy(c, jitters[name], counters) for name, c in configs.items() if c is not None}


class Breaker:
    """A count-based circuit breaker (resilience4j's ``COUNT_BASED`` sliding window): closed,
    open (fails calls fast), half-open (probes). It judges both the share of failed calls and
    the share of slow ones."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __init__(self, policy: CircuitBreaker, counters: Counters) -> None:
        self.policy = policy
        self.counters = counters
        self.state = self.CLOSED
        self.outcomes: deque[bool] = deque(maxlen=policy.window)
        self.slow: deque[bool] = deque(maxlen=policy.window)
        self.opened_at = 0.0
        self.probes = 0
        self.probe_failures = 0
        self.probe_slow = 0
        self.probe_results = 0

    def allow(self, now: float) -> bool:
        """Whether a call may go out at ``now`` (a half-open breaker admits its probes)."""
        if self.state == self.OPEN:
            if now - self.opened_at < self.policy.open_for:
                return False
            self.state, self.probes, self.probe_results = self.HALF_OPEN, 0, 0
            self.probe_failures = self.probe_slow = 0
        if self.state == self.HALF_OPEN:
            if self.probes >= self.policy.half_open_calls:
                return False
            self.probes += 1
        return True

    def record(self, ok: bool, now: float, duration: float = 0.0) -> None:
        """The outcome of a call that went out ``duration`` seconds ago."""
        policy = self.policy
        slow = duration >= policy.slow_call_duration
        if self.state == self.HALF_OPEN:
            self.probe_results += 1
            self.probe_failures += not ok
            self.probe_slow += slow
            if self.probe_results >= policy.half_open_calls:
                n = self.probe_results
                if (
                    self.probe_failures / n >= policy.failure_rate
                    or self.probe_slow / n >= policy.slow_call_rate
                ):
                    self._open(now)
                else:
                    self.state = self.CLOSED
                    self.outcomes.clear()
                    self.slow.clear()
            return
        if self.state == self.OPEN:
            return  # a late reply of a call sent before the breaker opened
        self.outcomes.append(ok)
        self.slow.append(slow)
        n = len(self.outcomes)
        if n >= policy.minimum_calls and (
            (n - sum(self.outcomes)) / n >= policy.failure_rate or sum(self.slow) / n >= policy.slow_call_rate
        ):
            self._open(now)

    def _open(self, now: float) -> None:
        self.state = self.OPEN
        self.opened_at = now
        self.counters.breaker_openings += 1
        self.outcomes.clear()
        self.slow.clear()


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
