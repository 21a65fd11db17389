"""Run totals every component and coordinator reports through.

One object per world, so a counter means the same in every topology (an attempt is an attempt,
whoever makes it) and the records carry them under fixed names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Counters:
    """Totals of one run, over the whole run (not only the measured window)."""

    messages: int = 0
    """Network messages: client → coordinator, requests, replies, publishes, deliveries."""
    decisions: int = 0
    """Engine decisions taken (orchestration, hybrid)."""
    actions: int = 0
    """Engine actions, as Temporal Cloud bills them: workflows started in the engine, activity
    attempts it dispatched, events it published (a hybrid's asynchronous steps)."""
    events: int = 0
    """Events the broker appended (copies of an event appended twice included)."""
    store_writes: int = 0
    """Writes the engine committed to its persistence store."""
    throttled: int = 0
    """Engine decisions or starts that found the rate limit's bucket empty (waited or rejected)."""
    attempts: int = 0
    """Service calls attempted, retries and compensations included."""
    duplicates: int = 0
    """Deliveries of an event that had been delivered before: a consumer crashed before it
    committed or acknowledged, or a queue's visibility timeout ran out."""
    dead_letters: int = 0
    """Events given up and moved to the dead-letter queue."""
    expired: int = 0
    """Events the broker dropped, older than its retention when their turn came."""
    lost_events: int = 0
    """Events a service's dual write lost (its replica crashed before the event left it, or its
    producer gave up); each stalls its workflow."""
    republished: int = 0
    """Events appended twice: an outbox relay or a producer that is not idempotent sent them
    again after the broker had them."""
    publish_failures: int = 0
    """Publishes a producer found refused (the broker down or unreachable)."""
    produce_requests: int = 0
    """Produce requests the broker appended (an event each, or a batch with linger)."""
    polls: int = 0
    """Polls of log consumers that returned events."""
    rebalances: int = 0
    """Consumer-group rebalances (a member joined, left, or was found dead)."""
    breaker_openings: int = 0
    """Times a circuit breaker opened."""
    bulkhead_refusals: int = 0
    """Calls refused by a full bulkhead."""
    retries_refused: int = 0
    """Retries refused by an empty retry budget (the call failed instead)."""
    deadlines: int = 0
    """Workflows failed by their workflow's deadline."""
    schedule_to_start_timeouts: int = 0
    """Tasks that waited in their task queue past the service's schedule_to_start."""
    scale_ups: int = 0
    """Times an autoscaler added replicas."""
    scale_downs: int = 0
    """Times an autoscaler removed replicas."""
    shard_moves: int = 0
    """Engine shards handed over to another replica when the engine scaled."""
    client_submissions: int = 0
    """Instances closed-loop clients submitted, their retries included."""
    abandoned: int = 0
    """Instances a closed-loop client gave up waiting for (its patience ran out); each went on."""
    client_retries: int = 0
    """Instances closed-loop clients submitted again after giving up on one."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
