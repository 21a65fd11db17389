"""The message broker: producers append events, the broker commits them, consumer groups read them.

Producing (both kinds). A publish is a produce request to the event's partition (by its key, see
:mod:`sim.model.broker.keys`): with ``linger`` the producer first gathers events per partition
into a batch of up to ``batch_size`` (Kafka's accumulator), one request for all. A request
occupies one of the broker's ``partitions`` append slots for 1/capacity seconds (requests queue
when all are busy; no capacity: never), and its events are committed ``publish_latency`` later
(the leader appends, the in-sync followers replicate; then the records are visible). Committed
events go to the consumer groups (:mod:`sim.model.broker.groups`) their coordinator names.

Faults. A whole-broker outage stops everything: producers buffer their requests until it is back
(``when_down: buffer``) or fail after the connect timeout and retry with the producer's retry
policy (``retry``), giving up when it is exhausted; deliveries wait. In a log, partition i is led
by broker node i mod ``brokers``: a node's crash or loss makes its partitions unavailable (to
producers and consumers) until ``leader_election`` has passed and a surviving node leads them
(KRaft fences the node, then elects at once); a fault may also take single partitions. A request
whose append is interrupted by a crash is sent again: it completes after the recovery, or fails
to its producer under ``retry``; none is ever left hanging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.model.broker.groups import Group, LogGroup, QueueGroup
from sim.model.broker.keys import KeyLaw
from sim.model.consumer import Consumer
from sim.model.faults import Health
from sim.model.hashing import bucket_of
from sim.model.resilience import RetryPolicy
from sim.model.workflow import Instance
from sim.model.world import World
from sim.scenario.broker import Broker


class Request:
    """A produce request: events for one partition (one event, or a batch), and the attempt."""

    __slots__ = ("attempt", "epoch", "events", "partition", "producer", "sent", "visit")

    def __init__(self, producer: str, events: list[Any], partition: int) -> None:
        self.producer = producer
        self.events = events
        self.partition = partition
        self.attempt = 1
        self.epoch = -1
        """The broker's failure count when it appended the request (see :meth:`_commit`)."""
        self.sent = False
        self.visit = -1
        """While a producer buffers it: its visit at the broker, recorded as waiting there."""


class MessageBroker:
    """The broker component of a topology (see the module docstring). Every event published
    through it is reported to ``committed(event)`` once it is in the log, or to
    ``failed(event)`` if its producer gives up; an event is anything with an ``inst``."""

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
        self.log = config.kind == "log"
        partitions = config.partitions
        if self.log:  # node faults act on partition leadership, not on the append slots
            self.station = world.add_station("broker", "broker", config.servers)
            health = world.faults.register("broker", None, config.brokers)
        else:
            self.station, health = world.add_component("broker", "broker", config.servers, partitions)
        self.health = health
        self.partitions = partitions
        self.move_time = 0.0 if config.capacity is None else 1.0 / config.capacity
        self.publish_latency = world.draws(config.publish_latency, "broker/publish")
        self.instant_commit = config.publish_latency.is_zero
        self.delivery_latency = world.draws(config.delivery_latency, "broker/delivery")
        self.producer_retry = RetryPolicy(
            config.producer_retry, world.uniforms("broker/jitter"), world.counters
        )
        self.keys = (
            KeyLaw(config.key, partitions, world.uniforms("broker/keys"))
            if self.log and config.key is not None
            else None
        )
        self.available = [True] * partitions
        """Whether each partition has a leader (a log; a queue's are always available)."""
        self.leader = [p % config.brokers for p in range(partitions)]
        self.electing: set[int] = set()
        self.blocked: list[Request] = []
        """Requests buffered by their producers until their partition is available again."""
        self.waiting: list[tuple[Callable[[Any], None], Any]] = []
        """Deliveries waiting for the broker to be back (a queue)."""
        self.groups: list[Group] = []
        self.batches: dict[tuple[str, int], Request] = {}
        self.linger = config.linger
        self.counters = world.counters
        self.producer_died: Callable[[Any], bool] | None = None
        """Whether an event died with its producer's process while it waited there (a dual
        write's replica crashed): asked each time a request is sent, the event then dropped."""
        self.failures = [0] * len(self.available)
        """Times each partition became unavailable (the broker down, or its leader lost): an
        append in progress on it then may have been replicated without its acknowledgement
        reaching the producer."""
        self.unavailable = [False] * len(self.available)
        health.on_change.append(self._changed)
        self.may_fail = any(
            getattr(f, "target", None) == "broker" or "broker" in getattr(f, "between", ())
            for f in world.scenario.faults
        )
        """Whether any fault touches the broker: if none does, publishes take the short path."""

    # -- placement and groups ------------------------------------------------------------------------

    def place(self, inst: Instance) -> None:
        """Give a new workflow instance its partition (every topic has the same count, so a
        workflow's events share one partition index): a hash of its key."""
        if self.keys is not None:
            inst.partition = self.keys()
        elif self.partitions > 1:
            inst.partition = bucket_of(inst.plan.name, inst.index, self.partitions)

    def group(self, service: str, consumer: Consumer) -> Group:
        """The consumer group through which ``service`` reads its subscription."""
        world = self.world
        station = world.stations[service]
        health = world.faults.health(service)
        kind = LogGroup if self.log else QueueGroup
        group = kind(world, self, service, station, consumer, health)
        self.groups.append(group)
        world.subscriptions.append(group)
        return group

    @property
    def down(self) -> bool:
        """Whether the whole broker is down (an outage; for a queue, also every replica lost)."""
        return self.health.outages > 0 or (not self.log and self.station.down)

    def hold(self, fn: Callable[[Any], None], arg: Any) -> None:
        """Run ``fn(arg)`` once the broker is back."""
        self.waiting.append((fn, arg))

    # -- producing ------------------------------------------------------------------------------------

    def publish(self, producer: str, event: Any) -> None:
        """``producer`` sends ``event`` (already across the network)."""
        if self.linger > 0:
            self._gather(producer, event)
        elif not self.may_fail:
            self.counters.produce_requests += 1
            self.station.submit(self.move_time, self._appended_one, event)
        else:
            self._send(Request(producer, [event], event.inst.partition))

    def _gather(self, producer: str, event: Any) -> None:
        """Linger: the event joins its producer's open batch for its partition."""
        partition = event.inst.partition
        key = (producer, partition)
        request = self.batches.get(key)
        if request is None:
            request = self.batches[key] = Request(producer, [event], partition)
            self.world.after(self.linger, self._flush, request)
        else:
            request.events.append(event)
        if len(request.events) >= self.config.batch_size:
            self._flush(request)

    def _flush(self, request: Request) -> None:
        if request.sent:
            return
        request.sent = True
        del self.batches[(request.producer, request.partition)]
        self._send(request)

    def _send(self, request: Request) -> None:
        world = self.world
        if self.producer_died is not None:
            died = self.producer_died
            request.events = [e for e in request.events if not died(e)]
            if not request.events:
                return
        cut = world.network.cut(request.producer, "broker") if world.network.any_cut else None
        if cut is not None and cut.mode == "hold":
            world.after(world.network.heals_in(cut), self._send, request)
            return
        unavailable = self.down or not self.available[request.partition]
        if cut is not None or (unavailable and self.config.when_down == "retry"):
            world.after(self.CONNECT_TIMEOUT, self._refused, request)
            return
        if unavailable and self.log:  # the producer holds it until the partition has a leader
            request.visit = self.station.enter()  # counted as waiting for the broker meanwhile
            self.blocked.append(request)
            return
        self.counters.produce_requests += 1
        self.station.submit(self.move_time, self._appended, request, self._interrupted)

    def _refused(self, request: Request) -> None:
        self.counters.publish_failures += 1
        retry = self.producer_retry
        if not retry.allows(request.attempt) or retry.charge() < 0:
            for event in request.events:
                self.failed(event)
            return
        wait = self.producer_retry.next_delay(request.attempt)
        request.attempt += 1
        self.world.after(wait, self._send, request)

    def _interrupted(self, request: Request) -> None:
        """A crash interrupted the append: the producer sends the request again."""
        if self.config.when_down == "retry":
            self._refused(request)
        else:
            self._send(request)

    def _appended_one(self, event: Any) -> None:
        self.counters.events += 1
        if self.instant_commit:
            self.world.immediate(self.committed, event)
        else:
            self.world.after(self.publish_latency(), self.committed, event)

    def _appended(self, request: Request) -> None:
        request.epoch = self.failures[request.partition]
        self.world.after(0.0 if self.instant_commit else self.publish_latency(), self._commit, request)

    def _commit(self, request: Request) -> None:
        """The request is committed. If the broker failed between the append and now, the
        producer never got its acknowledgement and sends it again: an idempotent producer's
        retry is recognised by its sequence numbers; another one's is appended a second time,
        each event a copy its consumers get again."""
        if request.epoch != self.failures[request.partition] and not self.config.idempotent_producer:
            again = Request(request.producer, [e.resent() for e in request.events], request.partition)
            self.counters.republished += len(again.events)
            self.world.after(self.CONNECT_TIMEOUT, self._send, again)
        self.counters.events += len(request.events)
        for event in request.events:
            self.committed(event)

    # -- faults -----------------------------------------------------------------------------------------

    def _changed(self, health: Health) -> None:
        """Availability changed: partitions lose or regain leaders; what waited goes on."""
        if self.log:
            self._leaders(health)
        down = self.down
        for p, up in enumerate(self.available):
            unavailable = down or not up
            if unavailable and not self.unavailable[p]:
                self.failures[p] += 1
            self.unavailable[p] = unavailable
        if not self.down and self.waiting:
            waiting, self.waiting = self.waiting, []
            for fn, arg in waiting:
                self.world.immediate(fn, arg)
        if self.blocked:
            blocked, self.blocked = self.blocked, []
            for request in blocked:
                self.station.leave(request.visit)
                request.visit = -1
                self.world.immediate(self._send, request)
        for group in self.groups:
            group.resume()

    def _leaders(self, health: Health) -> None:
        """Partitions whose leader is down elect another after ``leader_election``; with every
        node down there is none to elect: the election waits for a node to come back."""
        outage = health.outages > 0
        down = health.down_replicas()
        electable = not outage and len(down) < self.config.brokers
        for p in range(self.partitions):
            if electable and self.leader[p] in down and p not in self.electing:
                self.electing.add(p)
                self.world.after(self.config.leader_election, self._elect, p)
            self.available[p] = (
                not outage and health.partition_outages.get(p, 0) <= 0 and self.leader[p] not in down
            )

    def _elect(self, p: int) -> None:
        """The election after a leader's failure: a surviving node leads partition ``p``."""
        self.electing.discard(p)
        health = self.health
        down = health.down_replicas()
        if self.leader[p] in down:
            live = [b for b in range(self.config.brokers) if b not in down]
            if live:
                self.leader[p] = live[p % len(live)]
        self._changed(health)
