"""A service consuming the events delivered to it: at least once, retried, then dead-lettered.

The one consumer of the model, used by choreography for every step and by the hybrid for its
asynchronous steps. It behaves like a Kafka consumer that commits after processing (or an SQS /
RabbitMQ consumer that acknowledges after processing):

* the event's work queues at the service's station like any request;
* work that ends in an error is retried in place with the service's retry policy (a failed
  workflow's work is not retried);
* a consumer that crashes while processing (or that the broker cannot reach) never acknowledges
  the event, so the broker delivers it again after ``redelivery_delay``: a duplicate;
* after ``max_deliveries`` deliveries, or when the retries are exhausted, or when the service's
  queue is full, the event goes to the dead-letter queue and the step has failed.

What happens next (publish a completion event, record an asynchronous step) is the owner's:
``handled(delivery)`` after success, ``given_up(delivery)`` after dead-lettering.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from sim.model.broker import MessageBroker
from sim.model.resilience import RetryPolicy
from sim.model.workflow import Instance
from sim.model.world import World


class Delivery(NamedTuple):
    """One delivery of a step's event to its consumer: its ``number`` counts deliveries of the
    event, ``attempt`` the tries of its work within this delivery."""

    inst: Instance
    step: int
    number: int = 1
    attempt: int = 1


class Consumer:
    """The consumers of every service of one topology (each service reads its own subscription)."""

    def __init__(
        self,
        world: World,
        broker: MessageBroker,
        retries: dict[str, RetryPolicy],
        handled: Callable[[Delivery], None],
        given_up: Callable[[Delivery], None],
        operation: str = "handle",
    ) -> None:
        self.world = world
        self.broker = broker
        self.retries = retries
        self.handled = handled
        self.given_up = given_up
        self.operation = operation
        """Name of the span of the work, for traces."""

    def consume(self, d: Delivery) -> None:
        """The consumer takes the event from its subscription (unless it cannot be reached)."""
        world = self.world
        inst, k = d.inst, d.step
        step = inst.plan.steps[k]
        if world.network.any_cut:
            cut = world.network.cut("broker", step.service)
            if cut is not None:
                if cut.mode == "hold":
                    world.after(world.network.heals_in(cut), self.consume, d)
                else:
                    self._redeliver(d)
                return
        world.counters.attempts += 1
        if inst.marks is not None:
            world.mark(inst, ("handle", k, d.number, d.attempt))
        work = inst.work[k] if d.number == 1 and d.attempt == 1 else inst.plan.retry_work[k]()
        if step.station.submit(work, self._served, d, self._redeliver) < 0:
            self._dead_letter(d)

    def _served(self, d: Delivery) -> None:
        world = self.world
        inst, k = d.inst, d.step
        first = d.number == 1 and d.attempt == 1
        ok = world.succeeded(inst, k, None if first else inst.plan.retry_errors[k]())
        service = inst.plan.steps[k].service
        if inst.marks is not None:
            world.span(inst, ("handle", k, d.number, d.attempt), service, self.operation, ok)
        if ok:
            self.handled(d)
            return
        retry = self.retries.get(service)
        if retry is not None and retry.allows(d.attempt) and inst.failure < 0:
            world.after(retry.next_delay(d.attempt), self.consume, d._replace(attempt=d.attempt + 1))
            return
        self._dead_letter(d)

    def _redeliver(self, d: Delivery) -> None:
        """The event was not acknowledged (the consumer crashed or was unreachable): the broker
        delivers it again after the redelivery delay, or dead-letters it."""
        if d.number >= self.broker.config.max_deliveries:
            self._dead_letter(d)
            return
        self.world.counters.duplicates += 1
        self.world.after(
            self.broker.config.redelivery_delay, self._deliver_again, d._replace(number=d.number + 1)
        )

    def _deliver_again(self, d: Delivery) -> None:
        self.broker.deliver(self.world.hop(), self.consume, d)

    def _dead_letter(self, d: Delivery) -> None:
        self.world.counters.dead_letters += 1
        self.given_up(d)
