"""The workflow engine in the scenario language: shards, dispatch, a persistence store, a rate limit.

An orchestration topology's ``orchestrator`` describes the engine as it runs (Temporal, Camunda
8/Zeebe, Step Functions): workflow instances live on ``shards`` (Temporal history shards, Zeebe
partitions), each taking its decisions on ``shard_concurrency`` workers; shards are spread over
``replicas``; a decision costs ``decision_cpu`` on its shard and, with a ``store``, durable writes
before its commands take effect; commands then reach services after ``dispatch_latency``,
pushed to them (``push``) or waiting in a task queue until a worker polls (``poll``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from sim.scenario.autoscale import Autoscale, Scalable
from sim.scenario.base import StrictModel
from sim.scenario.distributions import ZERO, Constant, Distribution
from sim.scenario.limits import MAX_RATE, MAX_SECONDS, MAX_SERVERS

_Model = StrictModel


class Store(_Model):
    """The engine's persistence store (Temporal's database, Zeebe's replicated log): every
    decision commits ``writes_per_decision`` writes, one after another, each a request of
    ``latency`` seconds at a store of ``servers`` connections."""

    writes_per_decision: int = Field(
        3,
        ge=0,
        le=100,
        description="Durable writes per decision (Temporal: about 3 per activity: schedule, start, "
        "complete).",
    )
    latency: Distribution = Field(
        Constant(value=0.005),
        description="Service time of one write, in seconds (5 ms: PlanetScale's Temporal figure).",
    )
    servers: PositiveInt | None = Field(
        None, le=MAX_SERVERS, description="Writes the store serves at once (connections). Omit for unlimited."
    )
    pipelined: bool = Field(
        False,
        description="false (Temporal): a shard stays busy until its writes commit, so one write's "
        "latency bounds a shard's throughput. true (Zeebe): the shard goes on with the next "
        "decision while the writes commit; the commands still wait for the commit.",
    )


class RateLimit(_Model):
    """A token bucket on the engine (Temporal Cloud namespace actions per second, Step Functions
    state-transition and StartExecution quotas): ``per_second`` tokens refill a bucket of
    ``burst``."""

    per_second: PositiveFloat = Field(le=MAX_RATE, description="Tokens added per second.")
    burst: PositiveInt | None = Field(
        None, le=MAX_RATE, description="Bucket size (tokens that may be spent at once). Default: per_second."
    )
    applies_to: Literal["transitions", "starts"] = Field(
        "transitions", description="transitions: every decision takes a token; starts: only workflow starts."
    )

    @property
    def bucket(self) -> int:
        return self.burst if self.burst is not None else max(1, int(self.per_second))


_REPLACED = {
    "step_overhead": "decision_cpu (engine work that holds a shard worker) and dispatch_latency "
    "(matching or push delay that holds nothing)",
    "workers": "shards (Temporal history shards, Zeebe partitions) and shard_concurrency "
    "(decisions one shard takes at once)",
}


class Orchestrator(Scalable, _Model):
    """A central workflow engine (see the module docstring)."""

    dispatch: Literal["push", "poll"] = Field(
        "push",
        description="push (Step Functions calling Lambda or HTTP): the engine calls the service, "
        "which may refuse it; poll (Temporal, Zeebe): tasks wait in a task queue until one of the "
        "service's workers takes them.",
    )
    shards: PositiveInt = Field(
        1,
        le=MAX_SERVERS,
        description="Shards (Temporal history shards, Zeebe partitions); a workflow stays on one.",
    )
    shard_concurrency: PositiveInt = Field(
        1,
        le=MAX_SERVERS,
        description="Decisions one shard takes at once (1: strictly serial, as a Zeebe partition).",
    )
    replicas: PositiveInt = Field(1, le=MAX_SERVERS, description="Engine hosts the shards are spread over.")
    decision_cpu: Distribution = Field(
        ZERO, description="Engine work per decision, holding a shard worker (s)."
    )
    dispatch_latency: Distribution = Field(
        ZERO, description="Delay between a committed command and its task reaching the service (s)."
    )
    store: Store | None = Field(None, description="Persistence store the decisions write to. Omit: none.")
    rate_limit: RateLimit | None = Field(None, description="Token bucket on decisions or starts. Omit: none.")
    when_throttled: Literal["queue", "reject"] = Field(
        "queue",
        description="A start finding no token: wait for one, or be rejected (other decisions always wait).",
    )
    durable: bool = Field(
        True,
        description="Durable (Temporal-like): workflows survive an engine outage and resume. "
        "Not durable: workflows on a shard that goes down are lost.",
    )
    failover_time: NonNegativeFloat | None = Field(
        None,
        le=MAX_SECONDS,
        description="Seconds until the shards of a failed replica move to the surviving ones (or, with "
        "no survivor, a standby takes over). Omit: shards wait for their own replica.",
    )
    when_down: Literal["queue", "reject"] = Field(
        "queue", description="New workflows whose shard is down: wait for it, or are rejected."
    )
    handover_time: NonNegativeFloat = Field(
        0.1,
        le=MAX_SECONDS,
        description="Seconds a shard is unavailable while it moves to another replica on purpose "
        "(a scale-out or scale-in; a graceful Zeebe leader hand-over takes about 80 ms).",
    )
    autoscale: Autoscale | None = Field(
        None,
        description="Scale the engine's replicas as the Kubernetes HPA does (metric utilization or "
        "queue). The shards are fixed: scaling moves them between replicas. Omit: fixed.",
    )

    @model_validator(mode="after")
    def _fits(self) -> Orchestrator:
        if self.shards * self.shard_concurrency > MAX_SERVERS:
            raise ValueError(
                f"the engine has {self.shards * self.shard_concurrency:,} decision workers "
                f"(shards × shard_concurrency); at most {MAX_SERVERS:,}"
            )
        if self.autoscale is not None and self.autoscale.metric == "lag":
            raise ValueError("the engine scales on utilization or queue (it has no lag)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _replaced_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            old = [name for name in _REPLACED if name in data]
            if old:
                raise ValueError("; ".join(f"{name} was replaced by {_REPLACED[name]}" for name in old))
        return data
