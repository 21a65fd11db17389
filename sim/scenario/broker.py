"""The message broker in the scenario language: a partitioned log or a queue of competing consumers.

A choreography (and a hybrid's asynchronous steps) travel through a ``broker``. Two kinds:

* ``log`` (Kafka, the default): each step's events go to a topic of ``partitions`` partitions,
  keyed by workflow (or by a ``key`` drawn from a Zipf law: a hot tenant). Each consuming service
  is a consumer group whose replicas share the partitions; a partition is processed in offset
  order, at most ``max_in_flight`` events at once. Consumers poll up to ``max_poll_records``
  events and commit when the whole poll is processed. A crashed consumer is noticed after
  ``session_timeout``; membership changes ``rebalance`` the group. Events older than
  ``retention`` when their turn comes are gone. Partitions are led by ``brokers``; a broker that
  fails leaves its partitions unavailable for ``leader_election``.
* ``queue`` (RabbitMQ, SQS): one queue per consuming service, competing consumers, no ordering.
  A consumer holds at most ``prefetch`` unacknowledged messages; a message not acknowledged
  within ``visibility_timeout`` of its receipt is delivered again (a duplicate), and after
  ``max_receives`` receipts it goes to the dead-letter queue. ``max_length`` bounds the ready
  messages, with ``overflow`` refusing new ones or dead-lettering the oldest.

Both kinds share the producer side: publish and delivery latencies, the append ``capacity`` of a
partition, producer batching (``linger``, ``batch_size``) and what producers do while the
broker is down.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from sim.scenario.base import StrictModel
from sim.scenario.distributions import ZERO, Distribution
from sim.scenario.limits import MAX_ATTEMPTS, MAX_COUNT, MAX_RATE, MAX_SECONDS, MAX_SERVERS
from sim.scenario.retry import Retry

MAX_KEYS = 10_000_000
"""Most distinct keys of a Zipf key law (its cumulative weights are kept in memory)."""

LOG_RETENTION = 7 * 24 * 3600.0
"""Kafka's ``log.retention.hours`` default, 168 h, in seconds."""

QUEUE_RETENTION = 4 * 24 * 3600.0
"""SQS's default message retention, 4 days, in seconds."""


class Key(StrictModel):
    """Event keys drawn per workflow instance from a Zipf law over ``keys`` keys: key i (from 1)
    has weight 1 / i^skew, so skew 0 is uniform and skew 1 the classic Zipf (a few hot tenants
    or products). A key's partition is a hash of the key, as Kafka's default partitioner."""

    keys: PositiveInt = Field(le=MAX_KEYS, description="Distinct keys (at most 10,000,000).")
    skew: NonNegativeFloat = Field(1.0, le=10, description="Zipf exponent s: key i has weight 1/i^s.")


class Rebalance(StrictModel):
    """How a consumer group reassigns partitions when a member joins, leaves or is found dead."""

    protocol: Literal["eager", "cooperative"] = Field(
        "eager",
        description="eager (Kafka's classic protocol): every partition of the group pauses while the "
        "group rebalances; cooperative (KIP-429): only the partitions that move pause.",
    )
    time: NonNegativeFloat = Field(
        3.0,
        le=MAX_SECONDS,
        description="Seconds the paused partitions wait (3 s: Kafka's group.initial.rebalance.delay.ms, "
        "and about what a fresh group takes in kafka-consumer-perf-test).",
    )


LOG_ONLY = (
    "key",
    "max_in_flight",
    "max_poll_records",
    "session_timeout",
    "rebalance",
    "brokers",
    "leader_election",
    "max_deliveries",
)
"""Fields that mean something only for a log."""

QUEUE_ONLY = ("prefetch", "visibility_timeout", "on_crash", "max_receives", "max_length", "overflow")
"""Fields that mean something only for a queue."""

_REPLACED = {
    "redelivery_delay": "a log redelivers a crashed consumer's events after session_timeout and a "
    "rebalance; a queue when the visibility_timeout of their receipt expires",
}


class Broker(StrictModel):
    """A message broker (see the module docstring for the two kinds)."""

    kind: Literal["log", "queue"] = Field(
        "log",
        description="log (Kafka): keyed partitions consumed in order by consumer groups; queue "
        "(RabbitMQ, SQS): competing consumers on one queue per service, no ordering.",
    )
    publish_latency: Distribution = Field(ZERO, description="From accept to commit, in seconds.")
    delivery_latency: Distribution = Field(ZERO, description="From commit to a consumer, in seconds.")
    capacity: PositiveFloat | None = Field(
        None,
        le=MAX_RATE,
        description="Produce requests (one event, or one batch with linger) one partition appends per "
        "second (at most 1e9). Omit for unlimited.",
    )
    partitions: PositiveInt = Field(
        1,
        le=MAX_SERVERS,
        description="Partitions of each topic (log: the units of ordering and of consumer "
        "parallelism; Kafka's num.partitions default is 1); with a capacity, the partitions "
        "append in parallel.",
    )
    when_down: Literal["buffer", "retry"] = Field(
        "buffer",
        description="Publishing while the broker (or the event's partition) is unavailable: buffer in "
        "the producer until it is back, or retry with the producer's retry policy (and fail when it "
        "is exhausted).",
    )
    producer_retry: Retry = Field(Retry(max_attempts=10), description="Retries of failed publishes.")
    idempotent_producer: bool = Field(
        True,
        description="Whether producers are idempotent (Kafka's enable.idempotence, on by default "
        "since 3.0): a publish retried after the broker appended it but before it acknowledged "
        "(a broker failure in between) is not appended twice. false: it is, a duplicate event.",
    )
    linger: NonNegativeFloat = Field(
        0.0,
        le=60,
        description="Seconds a producer waits to fill a batch per partition before sending it "
        "(Kafka's linger.ms: 0 before Kafka 4.0, 5 ms since). 0: every event is its own request.",
    )
    batch_size: PositiveInt = Field(
        16,
        le=MAX_COUNT,
        description="Events per producer batch: a full batch goes at once (Kafka's batch.size is "
        "16 KiB, about 16 events of 1 KiB). Used only with linger.",
    )
    retention: PositiveFloat | None = Field(
        None,
        le=MAX_SECONDS,
        description="Seconds an event is kept: one older than this when its turn comes is gone, and "
        "its workflow ends lost (or inconsistent if effects stand). Default: 7 days for a log "
        "(Kafka), 4 days for a queue (SQS).",
    )
    # -- log ---------------------------------------------------------------------------------
    key: Key | None = Field(
        None, description="Log: keys drawn from a Zipf law (a hot tenant). Default: the workflow id."
    )
    max_in_flight: PositiveInt = Field(
        1,
        le=MAX_SERVERS,
        description="Log: events of one partition processed at once, in offset order (1: strictly "
        "in order, Kafka's usual consumer; more: a key-ordered parallel consumer).",
    )
    max_poll_records: PositiveInt = Field(
        500,
        le=MAX_COUNT,
        description="Log: events one poll returns (Kafka's max.poll.records, 500); a consumer "
        "processes a poll with its workers, commits, then polls again.",
    )
    session_timeout: PositiveFloat = Field(
        45.0,
        le=MAX_SECONDS,
        description="Log: seconds until the group notices a crashed consumer (Kafka's "
        "session.timeout.ms, 45 s since 3.0); until then its partitions stall.",
    )
    rebalance: Rebalance = Field(Rebalance(), description="Log: how the consumer groups rebalance.")
    brokers: PositiveInt = Field(
        3,
        le=MAX_SERVERS,
        description="Log: broker nodes; partition i is led by node i mod brokers. A node's crash or "
        "loss makes the partitions it leads unavailable for leader_election.",
    )
    leader_election: NonNegativeFloat = Field(
        9.0,
        le=MAX_SECONDS,
        description="Log: seconds until a failed node's partitions have new leaders (9 s: KRaft fences "
        "a broker after broker.session.timeout.ms without heartbeats, then elects at once).",
    )
    max_deliveries: PositiveInt = Field(
        5,
        le=MAX_ATTEMPTS,
        description="Log: deliveries of one event (redeliveries after consumer crashes included) before "
        "the consumer sends it to a dead-letter topic (at most 100).",
    )
    # -- queue -------------------------------------------------------------------------------
    prefetch: PositiveInt | None = Field(
        None,
        le=MAX_COUNT,
        description="Queue: unacknowledged messages one consumer holds (RabbitMQ's prefetch count, an "
        "SQS batch); extra ones wait in the consumer. Default: a consumer receives a message only "
        "when one of its workers is free.",
    )
    visibility_timeout: PositiveFloat = Field(
        30.0,
        le=MAX_SECONDS,
        description="Queue: seconds after its receipt until an unacknowledged message is delivered "
        "again (SQS's default 30 s); also when a crashed consumer's messages come back.",
    )
    on_crash: Literal["lease", "requeue"] = Field(
        "lease",
        description="Queue: a crashed consumer's unacknowledged messages come back when their "
        "visibility timeout runs out (lease, SQS) or as soon as the broker sees the connection drop "
        "(requeue, RabbitMQ).",
    )
    max_receives: PositiveInt = Field(
        5,
        le=MAX_ATTEMPTS,
        description="Queue: receipts of one message before it goes to the dead-letter queue (SQS's "
        "maxReceiveCount, RabbitMQ's delivery-limit).",
    )
    max_length: PositiveInt | None = Field(
        None, le=MAX_COUNT, description="Queue: most ready messages per queue. Omit for unbounded."
    )
    overflow: Literal["reject", "dead_letter"] = Field(
        "reject",
        description="Queue: a full queue refuses the new message (reject-publish), or dead-letters its "
        "oldest (drop-head with a dead-letter exchange); either way that message's step fails.",
    )

    @model_validator(mode="before")
    @classmethod
    def _replaced_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            old = [name for name in _REPLACED if name in data]
            if old:
                raise ValueError("; ".join(f"{name} was replaced: {_REPLACED[name]}" for name in old))
        return data

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> Broker:
        other = QUEUE_ONLY if self.kind == "log" else LOG_ONLY
        wrong = [name for name in other if name in self.model_fields_set]
        if wrong:
            owner = "queue" if self.kind == "log" else "log"
            raise ValueError(
                f"{', '.join(wrong)}: only a broker of kind {owner} has {'it' if len(wrong) == 1 else 'them'}"
                f" (this one is kind {self.kind})"
            )
        return self

    @model_serializer(mode="wrap")
    def _only_its_kind(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A dump (a run folder's scenario.yaml, a sweep point) leaves out the other kind's
        fields, so that it validates again."""
        data: dict[str, Any] = handler(self)
        for name in QUEUE_ONLY if self.kind == "log" else LOG_ONLY:
            data.pop(name, None)
        return data

    @property
    def servers(self) -> int | None:
        """Parallel appends of the broker (None: unlimited)."""
        return None if self.capacity is None else self.partitions

    @property
    def retention_seconds(self) -> float:
        if self.retention is not None:
            return self.retention
        return LOG_RETENTION if self.kind == "log" else QUEUE_RETENTION
