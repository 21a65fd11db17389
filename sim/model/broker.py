"""The message broker: a log that accepts, commits and delivers events.

A published event occupies one partition for 1/capacity seconds (events queue when every
partition is busy), is committed ``publish_latency`` later, and reaches each subscriber
``delivery_latency`` after the commit, plus the network hop to the consumer. With no capacity
given the broker never queues. (Kafka's producer path: the leader appends the record, followers
replicate it, and the record is committed, hence visible to consumers, once the in-sync replicas
have it.)

Under faults: while the broker is down, producers either buffer their events (they wait in the
broker's queue and go out when it is back) or fail after the connect timeout and retry with the
producer's retry policy, giving up when it is exhausted; deliveries pause and resume when the
broker is back. A partition between the broker and a component fails or holds that traffic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from sim.model.faults import Health
from sim.model.resilience import RetryPolicy
from sim.model.world import World
from sim.scenario.models import Broker


class Publish(NamedTuple):
    """A publish the producer had to retry: who produces what, and the attempt it is at."""

    producer: str
    event: Any
    attempt: int = 1


class Delivered(NamedTuple):
    """An event on its way from the log to one consumer."""

    consumer: Callable[[Any], None]
    event: Any


class MessageBroker:
    """The broker component of a topology, with its own station and latency streams. Every
    event published through it is reported to ``committed(event)`` once it is durably in the
    log, or to ``failed(event)`` if its producer gives up."""

    CONNECT_TIMEOUT = 1.0
    """Seconds a producer needs to find the broker unreachable."""

    def __init__(
        self,
        world: World,
        config: Broker | None,
        committed: Callable[[Any], None],
        failed: Callable[[Any], None],
    ) -> None:
        config = config or Broker()
        self.world = world
        self.config = config
        self.committed = committed
        self.failed = failed
        self.station, health = world.add_component("broker", "broker", config.servers, config.partitions)
        self.move_time = 0.0 if config.capacity is None else 1.0 / config.capacity
        self.publish_latency = world.draws(config.publish_latency, "broker/publish")
        self.delivery_latency = world.draws(config.delivery_latency, "broker/delivery")
        self.producer_retry = RetryPolicy(config.producer_retry, world.uniforms("broker/jitter"))
        self.paused: list[Delivered] = []
        health.on_change.append(self._changed)
        self.may_fail = any(
            getattr(f, "target", None) == "broker" or "broker" in getattr(f, "between", ())
            for f in world.scenario.faults
        )
        """Whether any fault touches the broker: if none does, publishes and deliveries take the
        short path (no partition or pause to check)."""
        self.counters = world.counters

    # -- publishing -------------------------------------------------------------------------

    def publish(self, producer: str, event: Any) -> None:
        """``producer`` sends ``event`` (already across the network)."""
        if self.may_fail:
            self._send(Publish(producer, event))
        else:
            self.station.submit(self.move_time, self._accepted, event)

    def _send(self, p: Publish) -> None:
        world = self.world
        refused = world.network.cut(p.producer, "broker")
        if refused is not None and refused.mode == "hold":
            world.after(world.network.heals_in(refused), self._send, p)
            return
        if refused is not None or (self.station.down and self.config.when_down == "retry"):
            world.after(self.CONNECT_TIMEOUT, self._refused, p)
            return
        self.station.submit(self.move_time, self._accepted, p.event)

    def _refused(self, p: Publish) -> None:
        self.world.counters.publish_failures += 1
        if not self.producer_retry.allows(p.attempt):
            self.failed(p.event)
            return
        wait = self.producer_retry.next_delay(p.attempt)
        self.world.after(wait, self._send, p._replace(attempt=p.attempt + 1))

    def _accepted(self, event: Any) -> None:
        self.world.after(self.publish_latency(), self.committed, event)

    # -- delivering -------------------------------------------------------------------------

    def deliver(self, hop: float, consumer: Callable[[Any], None], event: Any) -> None:
        """Deliver to a consumer after the delivery latency and the network ``hop``; deliveries
        pause while the broker is down."""
        self.counters.messages += 1
        if self.may_fail:
            self.world.after(self.delivery_latency() + hop, self._arrive, Delivered(consumer, event))
        else:
            self.world.after(self.delivery_latency() + hop, consumer, event)

    def _arrive(self, d: Delivered) -> None:
        if self.station.down:
            self.paused.append(d)
            return
        d.consumer(d.event)

    def _changed(self, health: Health) -> None:
        if not self.station.down and self.paused:
            paused, self.paused = self.paused, []
            for d in paused:
                self.world.immediate(d.consumer, d.event)
