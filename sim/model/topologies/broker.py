"""The message broker: a log that accepts, commits and delivers events.

A published event occupies one partition for 1/capacity seconds (events queue when every
partition is busy), is committed ``publish_latency`` later, and reaches each subscriber
``delivery_latency`` after the commit, plus the network hop to the consumer. With no capacity
given the broker never queues.

Under faults: while the broker is down, producers either buffer their events (they wait in the
broker's queue and go out when it is back) or fail after the connect timeout and retry with the
producer's retry policy, giving up when it is exhausted; deliveries pause and resume when the
broker is back. A partition between the broker and a component fails or holds that traffic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.model import streams
from sim.model.resilience import backoff
from sim.model.station import Station
from sim.model.world import World
from sim.scenario.models import Broker


class MessageBroker:
    """The broker component of a topology, with its own station and latency streams."""

    CONNECT_TIMEOUT = 1.0
    """Seconds a producer needs to find the broker unreachable."""

    def __init__(self, world: World, config: Broker | None) -> None:
        config = config or Broker()
        self.world = world
        self.config = config
        self.station = world.add_component("broker", "broker", config.servers, config.partitions)
        self.move_time = 0.0 if config.capacity is None else 1.0 / config.capacity
        self.publish_latency = world.draws(config.publish_latency, "broker/publish")
        self.delivery_latency = world.draws(config.delivery_latency, "broker/delivery")
        self.jitter = streams.uniforms(world.seed, "broker/jitter", world.replication)
        self.paused: list[tuple[Callable[[Any], None], Any]] = []
        self.publish_failures = 0
        world.faults.components["broker"].on_change.append(self._changed)

    # -- publishing -------------------------------------------------------------------------

    def publish(
        self,
        producer: str,
        committed: Callable[[Any], None],
        event: Any,
        failed: Callable[[Any], None],
        attempt: int = 1,
    ) -> None:
        """``producer`` sends ``event`` (already across the network); ``committed(event)`` once it
        is durably in the log, ``failed(event)`` if the producer gives up."""
        refused = self.world.faults.partitioned(producer, "broker")
        if refused is not None and refused.mode == "hold":
            self.world.after(
                refused.at + refused.duration - self.world.env.now,
                self._retry,
                (producer, committed, event, failed, attempt),
            )
            return
        if refused is not None or (self.station.down and self.config.when_down == "retry"):
            self.world.after(
                self.CONNECT_TIMEOUT, self._refused, (producer, committed, event, failed, attempt)
            )
            return
        self.station.submit(self.move_time, self._accepted, (committed, event))

    def _refused(self, item: tuple[str, Callable[[Any], None], Any, Callable[[Any], None], int]) -> None:
        producer, committed, event, failed, attempt = item
        self.publish_failures += 1
        policy = self.config.producer_retry
        if attempt >= policy.max_attempts:
            failed(event)
            return
        self.world.after(
            backoff(policy, attempt, self.jitter()),
            self._retry,
            (producer, committed, event, failed, attempt + 1),
        )

    def _retry(self, item: tuple[str, Callable[[Any], None], Any, Callable[[Any], None], int]) -> None:
        self.publish(*item)

    def _accepted(self, item: tuple[Callable[[Any], None], Any]) -> None:
        committed, event = item
        self.world.after(self.publish_latency(), committed, event)

    # -- delivering -------------------------------------------------------------------------

    def deliver(self, hop: float, consumer: Callable[[Any], None], arg: Any) -> None:
        """Deliver to a consumer after the delivery latency and the network ``hop``; deliveries
        pause while the broker is down."""
        self.world.messages += 1
        self.world.after(self.delivery_latency() + hop, self._arrive, (consumer, arg))

    def _arrive(self, item: tuple[Callable[[Any], None], Any]) -> None:
        if self.station.down:
            self.paused.append(item)
            return
        consumer, arg = item
        consumer(arg)

    def _changed(self, station: Station, went_down: bool) -> None:
        if not station.down and self.paused:
            paused, self.paused = self.paused, []
            for consumer, arg in paused:
                self.world.immediate(consumer, arg)
