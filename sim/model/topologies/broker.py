"""The message broker: a log that accepts, commits and delivers events.

A published event occupies one partition for 1/capacity seconds (events queue when every
partition is busy), is committed ``publish_latency`` later, and reaches each subscriber
``delivery_latency`` after the commit (plus the network hop to the consumer, added by the caller).
With no capacity given the broker never queues.

Left out here (see the fault model): broker outages, redelivery and dead-letter queues.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.model.world import World
from sim.scenario.models import Broker


class MessageBroker:
    """The broker component of a topology, with its own station and latency streams."""

    def __init__(self, world: World, config: Broker | None) -> None:
        config = config or Broker()
        self.world = world
        self.station = world.add_component("broker", "broker", config.servers)
        self.move_time = 0.0 if config.capacity is None else 1.0 / config.capacity
        self.publish_latency = world.draws(config.publish_latency, "broker/publish")
        self.delivery_latency = world.draws(config.delivery_latency, "broker/delivery")

    def publish(self, committed: Callable[[Any], None], event: Any) -> None:
        """Accept ``event``; ``committed(event)`` is called once it is durably in the log."""
        self.station.submit(self.move_time, self._accepted, (committed, event))

    def _accepted(self, item: tuple[Callable[[Any], None], Any]) -> None:
        committed, event = item
        self.world.after(self.publish_latency(), committed, event)
