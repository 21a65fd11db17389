"""The scenario language as typed data.

A scenario describes one world (services, network, workflows, load) and the coordination styles
(topologies) to compare in it. It is validated once, here, at the border: unknown keys are rejected,
every number is checked against its unit and range, and every cross-reference (a step naming a
service, a load naming a workflow) is resolved. The model code downstream never re-checks raw data.

Numbers must be finite, and are bounded (:mod:`sim.scenario.limits`) so that whatever validates
runs without overflowing or exhausting memory: times at most ``MAX_SECONDS`` (1e9 s), rates at
most ``MAX_RATE``, servers of one component at most ``MAX_SERVERS``, and so on.

Times are in seconds, rates in events per second.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    Discriminator,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sim.scenario.autoscale import Autoscale, Scalable
from sim.scenario.base import StrictModel
from sim.scenario.broker import Broker
from sim.scenario.costs import Costs
from sim.scenario.distributions import ZERO, Distribution, Spec, Uniform, _checked_path, _read_samples
from sim.scenario.engine import Orchestrator
from sim.scenario.grid import SweepSpec
from sim.scenario.limits import (
    MAX_CLIENTS,
    MAX_COUNT,
    MAX_FACTOR,
    MAX_RATE,
    MAX_REPLICATIONS,
    MAX_SECONDS,
    MAX_SEED,
    MAX_SERVERS,
    MAX_STEPS,
    MIN_FACTOR,
)
from sim.scenario.retry import Retry

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Autoscale", "Broker", "Retry"]  # re-exported: part of the language's one namespace

TOPOLOGY_KINDS = ("orchestration", "choreography", "hybrid")
ENGINE_KINDS = frozenset({"orchestration", "hybrid"})
"""Kinds of topology that run an engine."""
BROKER_KINDS = frozenset({"choreography", "hybrid"})
"""Kinds of topology that run a broker."""


_Model = StrictModel


def _servers_fit(what: str, a: int, b: int, names: str) -> None:
    """Refuse a component whose servers (the product of two factors) exceed MAX_SERVERS."""
    if a * b > MAX_SERVERS:
        raise ValueError(f"{what} has {a * b:,} servers ({names}); at most {MAX_SERVERS:,}")


class CircuitBreaker(_Model):
    """A count-based circuit breaker (resilience4j's model and defaults): it opens when at least
    ``failure_rate`` of the last ``window`` calls failed, or at least ``slow_call_rate`` of them
    took ``slow_call_duration`` or longer (once ``minimum_calls`` were seen), fails calls fast for
    ``open_for`` seconds, then lets ``half_open_calls`` probes through and judges them alike."""

    failure_rate: float = Field(0.5, gt=0, le=1, description="Failure share that opens the breaker.")
    slow_call_rate: float = Field(
        1.0, gt=0, le=1, description="Share of slow calls (failed or not) that opens the breaker."
    )
    slow_call_duration: PositiveFloat = Field(
        60.0, le=MAX_SECONDS, description="Seconds from sending a call to its outcome that make it slow."
    )
    window: PositiveInt = Field(100, le=MAX_COUNT, description="Calls in the sliding window.")
    minimum_calls: PositiveInt = Field(
        100, le=MAX_COUNT, description="Calls needed before the rate is judged."
    )
    open_for: PositiveFloat = Field(60.0, le=MAX_SECONDS, description="Seconds the breaker stays open.")
    half_open_calls: PositiveInt = Field(10, le=MAX_COUNT, description="Probe calls allowed when half-open.")


class Bulkhead(_Model):
    """A limit on concurrent calls to a service from its caller (resilience4j: 25, no waiting)."""

    max_concurrent: PositiveInt = Field(25, le=MAX_COUNT, description="Calls in progress at once.")
    max_waiting: Annotated[int, Field(ge=0, le=MAX_COUNT)] = Field(
        0, description="Calls that may wait for a slot."
    )


class Compensation(_Model):
    """The undo action of a service's step in a saga: a request to the same service."""

    latency: Distribution = Field(description="Service time of the compensating request, in seconds.")
    error_probability: float = Field(0.0, ge=0, le=1, description="Probability that it fails.")


class Service(Scalable, _Model):
    """A service: ``replicas`` × ``concurrency`` identical servers in front of one FIFO queue
    (at most 100,000 servers)."""

    latency: Distribution = Field(description="Service time of one request, in seconds.")
    replicas: PositiveInt = Field(
        1,
        le=MAX_SERVERS,
        description="Number of instances of the service (replicas × concurrency ≤ 100,000).",
    )
    concurrency: PositiveInt = Field(
        1,
        le=MAX_SERVERS,
        description="Requests one replica works on at once (replicas × concurrency ≤ 100,000).",
    )
    queue_limit: Annotated[int, Field(ge=0, le=MAX_COUNT)] | None = Field(
        None,
        description="Requests that may wait (beyond those in service); one that finds the queue "
        "full is rejected. Omit for an unbounded queue.",
    )
    error_probability: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Probability that a request ends in a transient error (after its work); such "
        "errors are retried with the retry policy.",
    )
    business_error_probability: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Probability that a request is refused for a business reason (a card declined, "
        "no stock): never retried; the step fails at once and the saga starts.",
    )
    timeout: PositiveFloat | None = Field(
        None, le=MAX_SECONDS, description="Caller's timeout per attempt, in seconds. Omit for none."
    )
    connect_timeout: PositiveFloat = Field(
        1.0,
        le=MAX_SECONDS,
        description="Seconds a caller needs to find that the service is down or unreachable.",
    )
    retry: Retry | None = Field(
        None,
        description="Retries of failed calls (errors, timeouts, refusals). Omit: none, except that "
        "an engine that polls uses Temporal's default (1 s, ×2, at most 100 s, unlimited attempts).",
    )
    schedule_to_start: PositiveFloat | None = Field(
        None,
        le=MAX_SECONDS,
        description="Poll dispatch: longest wait of a task in its task queue; past it the step fails, "
        "without retry (as in Temporal: a retry would wait in the same queue). Omit: no limit.",
    )
    start_to_close: PositiveFloat | None = Field(
        None,
        le=MAX_SECONDS,
        description="Poll dispatch: longest run of one attempt once a worker took it; past it the "
        "attempt fails and is retried. Omit: the service's timeout, or else 300 s (the job timeout "
        "of Zeebe's Java client), which is also when a crashed worker's task is noticed.",
    )
    schedule_to_close: PositiveFloat | None = Field(
        None,
        le=MAX_SECONDS,
        description="Longest time for all attempts of a step together; past it the step fails.",
    )
    heartbeat: PositiveFloat | None = Field(
        None,
        le=MAX_SECONDS,
        description="Poll dispatch: a worker heartbeats while it works; a crashed worker's task is "
        "noticed this long after the crash (instead of at start_to_close) and retried.",
    )
    publish: Literal["dual_write", "outbox"] = Field(
        "dual_write",
        description="How the service publishes its events (choreography, and a hybrid's choreographed "
        "workflows): dual_write, straight to the broker after its local commit (an event still in "
        "the producer when its replica crashes, or that the producer gives up on, is lost); outbox, "
        "written with the local commit and relayed after outbox_delay (never lost; a relay that "
        "fails before it records the publish sends it again, a duplicate).",
    )
    outbox_delay: Distribution = Field(
        default_factory=lambda: Uniform(dist="uniform", low=0.0, high=0.5),
        description="publish: outbox: seconds from the local commit to the relay's publish. Default: "
        "uniform over 0-0.5 s, a relay polling every 500 ms (Debezium's poll.interval.ms).",
    )
    stuck_after: PositiveFloat = Field(
        300.0,
        le=MAX_SECONDS,
        description="publish: dual_write: seconds after one of its events was lost that a stalled "
        "workflow is noticed and ended (inconsistent, or lost if nothing took effect).",
    )
    idempotent: bool = Field(
        False,
        description="Whether it recognises a repeated request for the same workflow step (an "
        "idempotency key) and absorbs it; otherwise every repeat that succeeds applies again "
        "(a duplicate effect, such as a second charge).",
    )
    circuit_breaker: CircuitBreaker | None = Field(None, description="Circuit breaker in front of it.")
    bulkhead: Bulkhead | None = Field(None, description="Limit on concurrent calls to it.")
    compensation: Compensation | None = Field(
        None, description="How its step is undone when a workflow fails later. Omit: it cannot be."
    )
    autoscale: Autoscale | None = Field(
        None,
        description="Scale the replicas (workers polling the engine, consumers of the broker) as the "
        "Kubernetes HPA does; they start from `replicas` within [min, max]. Omit: fixed.",
    )

    @model_validator(mode="after")
    def _errors_fit(self) -> Service:
        if self.error_probability + self.business_error_probability > 1:
            raise ValueError("error_probability + business_error_probability must not exceed 1")
        return self

    @model_validator(mode="after")
    def _fits(self) -> Service:
        _servers_fit("the service", self.most_replicas, self.concurrency, "replicas × concurrency")
        return self

    @property
    def servers(self) -> int:
        """Servers it may ever have (its replicas' at the most)."""
        return self.most_replicas * self.concurrency


class Network(_Model):
    """One network hop between two components (a request, a reply, a publish or a delivery)."""

    latency: Distribution = Field(ZERO, description="Latency of one hop, in seconds.")


def _branch_kind(value: Any) -> str:
    return "branch-sequence" if isinstance(value, list) else "branch-service"


Branch = Annotated[
    Union[Annotated[str, Tag("branch-service")], Annotated[list[str], Tag("branch-sequence")]],
    Discriminator(_branch_kind),
]


class Parallel(_Model):
    """A fan-out: every branch runs at once and the workflow goes on when all have finished.

    A branch is one service, or a list of services called in sequence."""

    parallel: list[Branch] = Field(min_length=1, description="Branches that run at once.")


def _step_kind(value: Any) -> str:
    return "step-parallel" if isinstance(value, (dict, Parallel)) else "step-service"


Step = Annotated[
    Union[Annotated[str, Tag("step-service")], Annotated[Parallel, Tag("step-parallel")]],
    Discriminator(_step_kind),
]


class SagaSettings(_Model):
    """How a failed workflow is undone, the same way in every topology: once none of its steps
    is running any more, the steps that took effect are compensated one after another, the most
    recent first (``sequential``, the classic saga), or all at once (``parallel``). Steps in the
    stages after the ``pivot`` are never compensated: once the workflow has passed it, they are
    retried forward until they succeed."""

    order: Literal["sequential", "parallel"] = Field(
        "sequential",
        description="sequential: one compensation after another, last effect first; parallel: all at once.",
    )
    pivot: str | None = Field(
        None,
        description="The service of the pivot step (the point of no return). Omit: every step can "
        "be compensated.",
    )


class Workflow(_Model):
    """A business workflow: ordered steps; a string calls a service, ``parallel`` fans out."""

    steps: list[Step] = Field(min_length=1, description="Steps in order (at most 10,000 in all).")
    saga: SagaSettings | None = Field(None, description="The workflow's saga settings. Omit: the scenario's.")
    deadline: PositiveFloat | None = Field(
        None,
        le=MAX_SECONDS,
        description="Seconds after its arrival by which a workflow must be over; a workflow still "
        "running then fails and its saga undoes what took effect. Omit: none.",
    )

    @model_validator(mode="after")
    def _not_too_long(self) -> Workflow:
        count = 0
        for step in self.steps:
            if isinstance(step, Parallel):
                count += sum(1 if isinstance(b, str) else len(b) for b in step.parallel)
            else:
                count += 1
        if count > MAX_STEPS:
            raise ValueError(f"a workflow has at most {MAX_STEPS:,} steps (this one has {count:,})")
        return self


class RatePeriod(_Model):
    """From ``at`` (seconds) on, arrivals come at ``rate`` per second, until the next period."""

    at: NonNegativeFloat = Field(le=MAX_SECONDS, description="Start of the period, in seconds.")
    rate: NonNegativeFloat = Field(le=MAX_RATE, description="Arrival rate, per second (at most 1e9).")


OPEN_LOOP_FIELDS = (
    "arrival",
    "rate",
    "schedule",
    "profile",
    "peak",
    "trough",
    "period",
    "peak_at",
    "times",
    "counts",
    "file",
    "column",
    "per_second",
)
"""Fields of an open-loop load (arrivals drawn up front), which ``clients`` excludes."""
CLOSED_LOOP_FIELDS = ("think_time", "patience", "retry")
"""Fields of a closed-loop load, which need ``clients``."""
DEFAULT_CLIENT_RETRY = Retry(max_attempts=2)
"""What an impatient client does when ``retry`` is omitted: it tries once more (a user who
reloads the page once), then goes back to thinking."""


class Load(_Model):
    """Arrivals of one workflow: Poisson or evenly spaced at a fixed ``rate``, by a ``schedule``
    of rates, or following a ``profile: diurnal`` (a sinusoid between ``trough`` and ``peak``
    rates over ``period`` seconds, highest at ``peak_at``); or replayed from a ``trace``
    (``arrival: trace``): arrival instants, or counts per second, from a CSV ``file`` (one
    column, or the ``column`` named) or given inline (``times``, ``counts``).

    All of these are open loops: arrivals come whatever the system does. ``clients: N`` makes a
    closed loop instead, the interactive users of a closed queueing network (the machine-repairman
    model, M/M/1//N) and of load generators (a JMeter thread group or Locust users with a think
    time): each client thinks for a draw of ``think_time``, submits one instance, waits for its
    outcome, and thinks again; throughput then follows X = N / (R + Z) (R the response time, Z the
    mean think time), so a slower system is offered less load. A client that has waited
    ``patience`` seconds gives up on its instance (which goes on in the system: abandonment
    cancels nothing server-side) and submits a new one after the backoff of ``retry``, as long
    as its attempts allow; its retries join the load (a retry storm under overload). Arrivals of
    a closed loop depend on the response times, so they differ between topologies (the work of
    the i-th instance of a workflow is still the same everywhere)."""

    arrival: Literal["poisson", "deterministic", "trace"] = Field(
        "poisson",
        description="poisson: exponential gaps; deterministic: evenly spaced (by the rate's integral); "
        "trace: replayed from times, counts or file.",
    )
    rate: PositiveFloat | None = Field(None, le=MAX_RATE, description="Arrivals per second (at most 1e9).")
    schedule: list[RatePeriod] | None = Field(
        None, min_length=1, description="Piecewise-constant rate: periods sorted by 'at', first at 0."
    )
    profile: Literal["diurnal"] | None = Field(
        None, description="diurnal: a sinusoidal rate between trough and peak over each period."
    )
    peak: PositiveFloat | None = Field(None, le=MAX_RATE, description="diurnal: highest rate, per second.")
    trough: NonNegativeFloat | None = Field(
        None, le=MAX_RATE, description="diurnal: lowest rate, per second."
    )
    period: PositiveFloat = Field(
        86400.0, le=MAX_SECONDS, description="diurnal: seconds of one cycle (a day)."
    )
    peak_at: NonNegativeFloat | None = Field(
        None,
        le=MAX_SECONDS,
        description="diurnal: when in the cycle the rate peaks, in seconds. Default: period / 2.",
    )
    times: list[Annotated[float, Field(ge=0, le=MAX_SECONDS)]] | None = Field(
        None, description="trace: arrival instants, in seconds (sorted or not)."
    )
    counts: list[Annotated[float, Field(ge=0, le=MAX_RATE)]] | None = Field(
        None, description="trace: arrivals in each second, from 0 (spread uniformly within it)."
    )
    file: str | None = Field(
        None,
        description="trace: CSV file of arrival instants (or, with per_second, counts per second), "
        "relative to the scenario's folder and inside it (unless files outside are allowed); at "
        "most 10 MB.",
    )
    column: str | None = Field(None, description="trace: column of the CSV file to read.")
    per_second: bool = Field(False, description="trace: the file holds counts per second, not instants.")
    clients: PositiveInt | None = Field(
        None,
        le=MAX_CLIENTS,
        description="A closed loop of this many clients (at most 100,000), each thinking, submitting "
        "one instance and waiting for its outcome, again and again; excludes rate, schedule, "
        "profile and trace.",
    )
    think_time: Distribution | None = Field(
        None,
        description="clients: seconds a client thinks before each submission (required; its mean "
        "must be greater than 0).",
    )
    patience: PositiveFloat | None = Field(
        None,
        le=MAX_SECONDS,
        description="clients: seconds a client waits for its instance before it gives up on it and "
        "retries (the instance goes on). Omit: clients wait for the outcome, however long.",
    )
    retry: Retry | None = Field(
        None,
        description="clients with patience: how a client retries an instance it gave up on "
        "(max_attempts counts the first submission; backoff before each retry). Omit: one retry "
        "after the default backoff (max_attempts: 2); max_attempts: 1 for none.",
    )

    @property
    def closed(self) -> bool:
        """Whether this is a closed loop (``clients``): arrivals made while running."""
        return self.clients is not None

    @property
    def client_retry(self) -> Retry:
        """The retry policy of impatient clients (the default when ``retry`` is omitted)."""
        return DEFAULT_CLIENT_RETRY if self.retry is None else self.retry

    @field_validator("think_time")
    @classmethod
    def _thinking_takes_time(cls, think: Spec | None) -> Spec | None:
        if think is not None and not think.mean > 0:
            raise ValueError(
                "must have a mean greater than 0 (clients that never think, of a system that takes "
                "no time, would submit forever at one instant)"
            )
        return think

    @model_validator(mode="after")
    def _one_loop(self) -> Load:
        # (by value, not by the fields given: a resolved scenario spells out every default)
        fields = type(self).model_fields
        if self.clients is not None:
            extra = [f for f in OPEN_LOOP_FIELDS if getattr(self, f) != fields[f].default]
            if extra:
                raise ValueError(
                    f"clients makes a closed loop (arrivals come from the clients): no {', '.join(extra)}"
                )
            if self.think_time is None:
                raise ValueError("clients needs think_time, e.g. {dist: exponential, mean: 5}")
            if self.retry is not None and self.patience is None:
                raise ValueError("retry is for impatient clients: give patience too")
            return self
        extra = [f for f in CLOSED_LOOP_FIELDS if getattr(self, f) is not None]
        if extra:
            raise ValueError(f"{', '.join(extra)}: for closed-loop clients only (give clients)")
        return self

    @model_validator(mode="after")
    def _one_shape(self, info: ValidationInfo) -> Load:
        if self.clients is not None:
            return self
        if self.arrival == "trace":
            if self.rate is not None or self.schedule is not None or self.profile is not None:
                raise ValueError("a trace gives the arrivals itself: no rate, schedule or profile")
            if sum(x is not None for x in (self.times, self.counts, self.file)) != 1:
                raise ValueError("arrival: trace needs exactly one of times, counts and file")
            if self.file is not None:
                context = info.context or {}
                base = Path(context.get("base_dir", "."))
                path = _checked_path(base, self.file, bool(context.get("allow_outside")))
                values = _read_samples(path, self.file, self.column)
                # The resolved scenario carries the trace itself, so it stands on its own.
                object.__setattr__(self, "counts" if self.per_second else "times", values)
                object.__setattr__(self, "file", None)
                object.__setattr__(self, "column", None)
                object.__setattr__(self, "per_second", False)
            return self
        if self.times is not None or self.counts is not None or self.file is not None:
            raise ValueError("times, counts and file are for arrival: trace")
        if sum(x is not None for x in (self.rate, self.schedule, self.profile)) != 1:
            raise ValueError("give exactly one of rate, schedule and profile")
        if self.schedule is not None:
            starts = [p.at for p in self.schedule]
            if starts[0] != 0:
                raise ValueError("schedule: the first period must start at 0")
            if any(b <= a for a, b in itertools.pairwise(starts)):
                raise ValueError("schedule: periods must be in increasing order of 'at'")
        if self.profile is not None:
            if self.peak is None or self.trough is None:
                raise ValueError("profile: diurnal needs peak and trough")
            if self.trough > self.peak:
                raise ValueError("trough must not exceed peak")
        elif self.peak is not None or self.trough is not None or self.peak_at is not None:
            raise ValueError("peak, trough and peak_at are for profile: diurnal")
        return self

    def periods(self) -> list[tuple[float, float]]:
        """(start, rate) pairs of a fixed rate (one period from 0) or a schedule."""
        if self.schedule is None:
            assert self.rate is not None
            return [(0.0, self.rate)]
        return [(p.at, p.rate) for p in self.schedule]

    def diurnal_rate(self, t: np.ndarray) -> np.ndarray:
        """The diurnal profile's rate at instants ``t``."""
        import numpy as np

        assert self.peak is not None and self.trough is not None
        mean, amplitude = (self.peak + self.trough) / 2, (self.peak - self.trough) / 2
        peak_at = self.period / 2 if self.peak_at is None else self.peak_at
        return mean + amplitude * np.cos(2 * np.pi * (t - peak_at) / self.period)

    def diurnal_integral(self, t: np.ndarray) -> np.ndarray:
        """Expected arrivals of the diurnal profile in ``[0, t)``."""
        import numpy as np

        assert self.peak is not None and self.trough is not None
        mean, amplitude = (self.peak + self.trough) / 2, (self.peak - self.trough) / 2
        peak_at = self.period / 2 if self.peak_at is None else self.peak_at
        w = 2 * np.pi / self.period
        return mean * t + amplitude / w * (np.sin(w * (t - peak_at)) + np.sin(w * peak_at))

    def expected_arrivals(self, duration: float) -> float:
        """Expected arrivals in ``[0, duration)``; for closed-loop clients, whose arrivals depend
        on the response times, an upper bound (:meth:`most_arrivals`)."""
        if self.clients is not None:
            return self.most_arrivals(duration)
        if self.arrival == "trace":
            if self.times is not None:
                return float(sum(1 for t in self.times if t < duration))
            assert self.counts is not None
            whole = int(min(duration, len(self.counts)))
            part = sum(self.counts[:whole])
            if whole < len(self.counts) and duration > whole:
                part += self.counts[whole] * (duration - whole)
            return float(part)
        if self.profile is not None:
            import numpy as np

            return float(self.diurnal_integral(np.asarray(duration)))
        periods = self.periods()
        ends = [start for start, _ in periods[1:]] + [duration]
        return sum(rate * max(0.0, min(end, duration) - start) for (start, rate), end in zip(periods, ends))

    def most_arrivals(self, duration: float) -> float:
        """At most how many instances closed-loop clients submit in ``[0, duration)``, on
        average: each submission follows a think (mean Z) or a wait of ``patience`` (P) given
        up, so N clients make at most N × (duration / Z + duration / P + 1) of them (a response
        time of 0: the bound of the response-time law X = N / (R + Z), plus the retries)."""
        assert self.clients is not None and self.think_time is not None
        per_client = duration / self.think_time.mean + 1
        if self.patience is not None:
            per_client += duration / self.patience
        return self.clients * per_client


class _Window(_Model):
    at: NonNegativeFloat = Field(le=MAX_SECONDS, description="Start of the fault, in seconds.")
    duration: PositiveFloat = Field(le=MAX_SECONDS, description="Length of the fault, in seconds.")

    def windows(self) -> list[tuple[float, float]]:
        return [(self.at, self.at + self.duration)]


class Outage(_Window):
    """The target (a service, ``orchestrator``, ``orchestrator.store`` or ``broker``) is down for
    the window; with ``shards``, only those shards of the engine are; with ``partitions``, only
    those partitions of the broker."""

    type: Literal["outage"]
    target: str = Field(description="Service name, orchestrator, orchestrator.store or broker.")
    shards: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, min_length=1, description="With target orchestrator: the shards that are down (from 0)."
    )
    partitions: list[Annotated[int, Field(ge=0)]] | None = Field(
        None,
        min_length=1,
        description="With target broker (a log): the partitions that are unavailable (from 0), for "
        "producers and consumers alike.",
    )


class CrashProcess(_Model):
    """Each replica of the target fails and is repaired again and again: times to failure drawn
    from ``mtbf`` and repair times from ``mttr``, from ``start`` until ``until``.

    ``mtbf`` must have a mean greater than 0: with failures 0 s apart the clock would stand still
    (a crash, a repair, a crash... at one instant, forever). :func:`sim.scenario.limits.check_limits`
    bounds the expected number of crashes of a run."""

    type: Literal["crash"]
    target: str = Field(description="Service name, orchestrator or broker.")
    mtbf: Distribution = Field(
        description="Time between failures of one replica, in seconds; its mean must be greater than 0."
    )
    mttr: Distribution = Field(description="Time to repair one replica, in seconds.")
    start: NonNegativeFloat = Field(0.0, le=MAX_SECONDS, description="When failures may begin, in seconds.")
    until: PositiveFloat | None = Field(None, le=MAX_SECONDS, description="When failures stop. Omit: never.")

    @field_validator("mtbf")
    @classmethod
    def _time_passes(cls, mtbf: Spec) -> Spec:
        if mtbf.is_zero or not mtbf.mean > 0:
            raise ValueError("must have a mean greater than 0 (failures 0 s apart would never end)")
        return mtbf


class Slowdown(_Window):
    """Service times of the target are multiplied by ``factor`` for requests starting in the window."""

    type: Literal["slowdown"]
    target: str = Field(description="Service name, orchestrator or broker.")
    factor: float = Field(
        ge=MIN_FACTOR,
        le=MAX_FACTOR,
        description="Multiplier of service times, from 0.001 to 1000 (overlapping slowdowns multiply).",
    )


class ErrorBurst(_Window):
    """The target service's error probability is ``probability`` during the window."""

    type: Literal["error_burst"]
    target: str = Field(description="Service name.")
    probability: float = Field(ge=0, le=1, description="Error probability during the window.")


class CapacityLoss(_Window):
    """``replicas`` replicas of the target are lost for the window (their requests are aborted)."""

    type: Literal["capacity_loss"]
    target: str = Field(description="Service name, orchestrator or broker.")
    replicas: PositiveInt = Field(le=MAX_SERVERS, description="Replicas lost.")


class Deploy(_Model):
    """A rolling restart of a service's replicas, ``batch`` at a time, from ``at``: each replica
    drains (takes no new work and finishes what it holds, for at most ``drain_timeout``; what is
    left is aborted), is down for ``restart_time``, and comes back; then the next batch goes.
    Engine-polled and called services lose and regain capacity; a consumer group also rebalances
    when a consumer leaves and when it returns."""

    type: Literal["deploy"]
    target: str = Field(description="Service name.")
    at: NonNegativeFloat = Field(le=MAX_SECONDS, description="Start of the deploy, in seconds.")
    batch: PositiveInt = Field(1, le=MAX_SERVERS, description="Replicas restarted at once.")
    restart_time: NonNegativeFloat = Field(
        10.0, le=MAX_SECONDS, description="Seconds a replica is down between its drain and its return."
    )
    drain_timeout: NonNegativeFloat = Field(
        30.0,
        le=MAX_SECONDS,
        description="Longest drain, in seconds (Kubernetes' terminationGracePeriodSeconds, 30 s); work "
        "still running then is aborted.",
    )


class Partition(_Window):
    """Calls and messages between two components fail (``fail``) or are held until the partition
    heals (``hold``) during the window."""

    type: Literal["partition"]
    between: tuple[str, str] = Field(description="The two components (services, orchestrator, broker).")
    mode: Literal["fail", "hold"] = Field("fail", description="fail: refused; hold: delayed until healed.")


Fault = Annotated[
    Union[Outage, CrashProcess, Slowdown, ErrorBurst, CapacityLoss, Deploy, Partition],
    Field(discriminator="type"),
]


class WorkflowObjectives(_Model):
    """Objectives on the instances of one workflow alone: a checkout may owe a tighter p99 than
    the analytics flow beside it. The blast-radius objectives stay scenario-wide."""

    latency_mean: PositiveFloat | None = Field(None, description="Highest acceptable mean latency (s).")
    latency_p50: PositiveFloat | None = Field(None, description="Highest acceptable median latency (s).")
    latency_p95: PositiveFloat | None = Field(None, description="Highest acceptable p95 latency (s).")
    latency_p99: PositiveFloat | None = Field(None, description="Highest acceptable p99 latency (s).")
    success_rate: float | None = Field(None, gt=0, le=1, description="Lowest share of workflows completed.")
    throughput: PositiveFloat | None = Field(None, description="Lowest acceptable throughput (per s).")


class Objectives(WorkflowObjectives):
    """Service-level objectives every topology is judged against (omit what does not matter): on
    all workflows together, and per workflow under ``workflows``."""

    affected_share: float | None = Field(
        None, ge=0, le=1, description="With faults: highest share of workflows affected in the impact window."
    )
    recovery_time: NonNegativeFloat | None = Field(
        None, description="With faults: longest acceptable recovery after the fault ends (s)."
    )
    cost_per_1k: NonNegativeFloat | None = Field(
        None, description="With costs: highest acceptable cost per 1,000 completed workflows."
    )
    workflows: dict[str, WorkflowObjectives] | None = Field(
        None, description="Workflow name → objectives on that workflow's instances alone."
    )


class BlastRadiusSettings(_Model):
    """How a workflow is judged affected by faults, compared with its twin in the baseline run."""

    latency_factor: float = Field(2.0, ge=1, description="Affected if latency > factor × twin's...")
    latency_slack: NonNegativeFloat = Field(1.0, description="... and > twin's + slack (seconds).")


class HybridSettings(_Model):
    """A hybrid, per workflow: each workflow is orchestrated (the engine drives it, its
    ``asynchronous`` steps as events) or choreographed (its services react to each other's
    events on the same broker, and it never touches the engine), as the article's hybrid does
    with a checkout orchestrated and a high-volume analytics flow choreographed."""

    coordination: dict[str, Literal["orchestration", "choreography"]] = Field(
        {}, description="Workflow name → orchestration | choreography. Omitted workflows: orchestration."
    )
    asynchronous: list[str] = Field(
        [], description="Services whose steps of orchestrated workflows are published as events, not awaited."
    )


class Topology(_Model):
    """One way of coordinating the workflows. ``kind`` may be omitted when the topology's name is
    itself a kind (orchestration, choreography, hybrid)."""

    kind: Literal["orchestration", "choreography", "hybrid"] | None = Field(
        None, description="Coordination style."
    )
    orchestrator: Orchestrator | None = Field(None, description="Engine (orchestration, hybrid).")
    broker: Broker | None = Field(None, description="Broker (choreography, hybrid).")
    asynchronous: list[str] = Field(
        [],
        description="Hybrid: services whose steps are published as events, not awaited (the "
        "same as hybrid.asynchronous).",
    )
    hybrid: HybridSettings | None = Field(None, description="Hybrid: how each workflow is coordinated.")
    costs: Costs | None = Field(
        None, description="This topology's own prices, field by field over the scenario's `costs`."
    )

    @model_validator(mode="after")
    def _one_asynchronous(self) -> Topology:
        if self.asynchronous and self.hybrid is not None and self.hybrid.asynchronous:
            raise ValueError("give the asynchronous services once: asynchronous or hybrid.asynchronous")
        return self

    @property
    def async_services(self) -> list[str]:
        """The hybrid's asynchronous services, wherever they were given."""
        return (
            self.hybrid.asynchronous
            if self.hybrid is not None and self.hybrid.asynchronous
            else self.asynchronous
        )

    def coordination(self, workflow: str) -> str:
        """How a hybrid coordinates ``workflow``: orchestration (the default) or choreography."""
        return (
            "orchestration"
            if self.hybrid is None
            else self.hybrid.coordination.get(workflow, "orchestration")
        )


class Scenario(_Model):
    """A complete experiment: one world and the topologies to compare in it."""

    name: str = Field(
        "scenario", min_length=1, description="Scenario name (used in result paths). Default: file name."
    )
    description: str = Field("", description="What question the scenario answers.")
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = Field(0, description="Root random seed (below 2^63).")
    duration: PositiveFloat = Field(
        le=MAX_SECONDS, description="Simulated seconds during which workflows arrive (at most 1e9)."
    )
    warmup: Annotated[float, Field(ge=0, le=MAX_SECONDS)] | Literal["auto"] = Field(
        0.0,
        description="Initial seconds excluded from statistics, or 'auto' to choose them by MSER-5 "
        "from the latencies of each run (the largest choice over topologies and replications).",
    )
    replications: PositiveInt = Field(
        1,
        le=MAX_REPLICATIONS,
        description="Independent replications (at most 10,000); every topology of replication r shares "
        "its random numbers.",
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Confidence level of the reported intervals.")
    drain: NonNegativeFloat | None = Field(
        None,
        le=MAX_SECONDS,
        description="Seconds after arrivals stop that in-flight workflows may still finish. "
        "Default: as long as duration.",
    )
    window: PositiveFloat | None = Field(
        None,
        le=MAX_SECONDS,
        description="Width of time-series windows, in seconds. Default: duration / 60. A run has at "
        "most 100,000 windows ((duration + drain) / window) unless forced.",
    )
    services: dict[str, Service] = Field(min_length=1, description="Services by name.")
    network: Network = Field(Network(), description="Network between components.")
    workflows: dict[str, Workflow] = Field(min_length=1, description="Workflows by name.")
    load: dict[str, Load] = Field(min_length=1, description="Load per workflow name.")
    topologies: dict[str, Topology] = Field(min_length=1, description="Topologies to compare.")
    sweep: SweepSpec | None = Field(None, description="Fields to vary in `sim sweep` (a grid of runs).")
    faults: list[Fault] = Field([], description="Faults to inject; the baseline run has none.")
    saga: SagaSettings = Field(
        SagaSettings(), description="How failed workflows are undone (every topology)."
    )
    blast_radius: BlastRadiusSettings = Field(BlastRadiusSettings(), description="Blast-radius thresholds.")
    objectives: Objectives = Field(Objectives(), description="Objectives each topology is judged against.")
    costs: Costs | None = Field(
        None,
        description="Unit prices of what the model counts (a cost per 1,000 workflows per topology). "
        "`include: FILE` and `use: [LIST, ...]` take prices from a prices file.",
    )

    @property
    def warmup_seconds(self) -> float:
        """The fixed warm-up (0 while it is still 'auto', before the run has chosen it)."""
        return 0.0 if self.warmup == "auto" else self.warmup

    @property
    def drain_time(self) -> float:
        return self.duration if self.drain is None else self.drain

    @property
    def window_width(self) -> float:
        return self.window if self.window is not None else self.duration / 60

    def topology_kind(self, name: str) -> str:
        topo = self.topologies[name]
        return topo.kind if topo.kind is not None else name
