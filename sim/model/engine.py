"""The workflow engine as it runs: shards on replicas, a persistence store, a rate limit.

How Temporal and Camunda 8/Zeebe take their decisions, reduced to what shapes latency, capacity
and failures:

* **Shards.** A workflow instance lives on one shard for life, chosen by a hash of its id
  (Temporal history shards, Zeebe partitions). A shard takes its decisions on
  ``shard_concurrency`` workers (1: strictly serial, as a Zeebe partition's stream processor),
  in arrival order; two decisions of one workflow never run at once.
* **Replicas.** Shards are spread over the engine's ``replicas`` (shard *s* starts on replica
  *s* mod *R*). A replica that goes down stalls the shards it owns; after ``failover_time`` the
  surviving replicas take them over (Temporal's shard movement, a Zeebe Raft election) and carry
  the extra load; with no survivor a standby takes over. A whole-engine outage stalls every
  shard, an outage naming ``shards`` stalls only those. An autoscaled engine
  (:mod:`sim.model.autoscaler`) keeps its shards and moves them: when the replicas that serve
  change, the shards of departing replicas and enough others to even the load are handed over,
  each paused for ``handover_time`` (Temporal's shard movement on a membership change).
* **Store.** A decision's work (``decision_cpu``) holds a shard worker; its writes then go, one
  after another, to the persistence store, a station of its own that can be the bottleneck.
  The decision's commands take effect only once the last write has committed. By default the
  shard stays busy while its writes commit (Temporal serialises a shard's updates, so one
  write's latency bounds a shard's throughput); ``pipelined`` stores release the shard at once
  (Zeebe's stream processor goes on while the log commits).
* **Rate limit.** A token bucket (generic cell rate algorithm) on decisions or on starts:
  Temporal Cloud namespace actions per second, Step Functions' quotas.
* **Nothing runs on a down shard.** Every action of the engine (a decision's commands, a retry
  timer, a timeout, a reply it processes) waits while the workflow's shard is down and runs when
  it is back. A durable engine redoes a decision a crash interrupted; a non-durable one loses
  the workflows of a shard that goes down, which end ``lost``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

from sim.model.autoscaler import BusyMeter
from sim.model.faults import Health
from sim.model.hashing import bucket_of
from sim.model.saga import Saga
from sim.model.station import JobOptions, Station
from sim.model.workflow import Instance
from sim.model.world import World
from sim.scenario.engine import Orchestrator, RateLimit


def shard_of(workflow: str, index: int, shards: int) -> int:
    """The shard of instance ``index`` of ``workflow``: a well-mixed hash of its id, so that the
    shards see independent random thinnings of the arrivals, as Temporal's and Zeebe's hashes of
    workflow ids give."""
    return bucket_of(workflow, index, shards)


class TokenBucket:
    """A token bucket as the generic cell rate algorithm: requests are granted in arrival order,
    each at the earliest instant at which the bucket holds a token."""

    __slots__ = ("interval", "tat", "tolerance")

    def __init__(self, limit: RateLimit) -> None:
        self.interval = 1.0 / limit.per_second
        self.tolerance = (limit.bucket - 1) * self.interval
        self.tat = 0.0
        """Theoretical arrival time of the next request: when the bucket is full again."""

    def delay(self, now: float) -> float:
        """Seconds a request arriving ``now`` waits for its token (and take the token)."""
        tat = max(self.tat, now)
        wait = max(0.0, tat - self.tolerance - now)
        self.tat = tat + self.interval
        return wait

    def available(self, now: float) -> bool:
        """Whether a request arriving now would get a token at once (nothing is taken)."""
        return max(self.tat, now) - self.tolerance - now <= 0


class Decision:
    """One decision in progress, when it needs more than its shard's work (writes to commit, or a
    workflow's other decisions to wait behind it)."""

    __slots__ = ("cpu", "inst", "payload", "shard", "visit", "writes")

    def __init__(self, inst: Instance, cpu: float, payload: Any) -> None:
        self.inst = inst
        self.cpu = cpu
        self.payload = payload
        self.shard = inst.shard
        self.visit = -1
        self.writes = 0


class Engine:
    """The orchestrator component of a topology: shards, their owners, a store, a rate limit.

    Every decision ends in ``decided(payload)``, once its commands take effect; a payload has
    the workflow instance it decides for as its ``inst``."""

    def __init__(
        self, world: World, config: Orchestrator, saga: Saga, decided: Callable[[Any], None]
    ) -> None:
        self.world = world
        self.config = config
        self.saga = saga
        self.decided = decided
        self.forgotten: Callable[[Any], None] | None = None
        """Told of each action a non-durable engine drops with the workflows it loses."""
        env, immediate = world.env, world.immediate
        self.shards = [
            Station(
                env,
                f"orchestrator/{s}",
                "shard",
                config.shard_concurrency,
                None,
                immediate,
                group="orchestrator",
            )
            for s in range(config.shards)
        ]
        world.components.extend(self.shards)
        self.health = world.faults.register("orchestrator", None, config.most_replicas)
        self.health.parts = self.shards
        self.health.on_change.append(self._health_changed)
        self.owner = [s % config.initial_replicas for s in range(config.shards)]
        """The replica that owns each shard now."""
        self.handing: dict[int, int] = {}
        """Shards being handed over on purpose (a scale-out or scale-in), to their new owner."""
        self.serving: set[int] = set(range(config.initial_replicas))
        """The replicas that took shards at the last rebalance."""
        if config.autoscale is not None:
            meter = BusyMeter(self.shards)
            workers = config.shards * config.shard_concurrency
            world.autoscale(
                "orchestrator",
                config.autoscale,
                self.health,
                config.initial_replicas,
                lambda t0, t1, n: meter.busy(t0, t1) / (workers * (t1 - t0)),
                lambda metric: float(sum(st.waiting for st in self.shards)),
            )
            # A host has drained once it owns no shard and none is on its way to it.
            self.health.drain_checks.append(lambda r: r not in self.owner and r not in self.handing.values())
        self.up = [True] * config.shards
        self.paused: list[list[tuple[Callable[[Any], None], Any]]] = [[] for _ in self.shards]
        """Engine actions waiting for their shard to come back."""
        self.moving: set[int] = set()
        """Shards whose takeover by a surviving replica is under way."""
        self.standby_due = False
        self.store: Station | None = None
        self.writes_per_decision = 0
        self.hold = False
        if config.store is not None:
            store = config.store
            self.store = Station(env, "orchestrator.store", "store", store.servers, None, immediate)
            world.components.append(self.store)
            world.faults.register("orchestrator.store", self.store, 1)
            self.write_latency = world.draws(store.latency, "orchestrator/store")
            self.writes_per_decision = store.writes_per_decision
            self.hold = self.writes_per_decision > 0 and not store.pipelined
        self.hold_options = JobOptions(hold=True) if self.hold else None
        self.extra_cpu = world.draws(config.decision_cpu, "orchestrator/extra-decision-cpu")
        self.transitions = TokenBucket(config.rate_limit) if config.rate_limit else None
        self.starts_only = config.rate_limit is not None and config.rate_limit.applies_to == "starts"
        self.serial = config.shard_concurrency > 1
        self.deciding: dict[int, deque[Decision]] = {}
        """Workflows with a decision in progress, and the decisions waiting behind it (only when a
        shard takes several decisions at once)."""
        self.running: list[dict[int, Instance]] = [{} for _ in self.shards]
        """Instances in flight per shard, kept only for a non-durable engine."""
        self.direct = not self.serial and not self.writes_per_decision
        """Whether a decision is only its shard's work: then the shard's station calls
        ``decided`` itself (a shard that goes down aborts what it is working on, so a finished
        decision always finds its shard up)."""
        self.unthrottled = self.direct and (self.transitions is None or self.starts_only)
        """Whether a decision goes straight to its shard (the common case, written out for speed)."""

    # -- workflows -----------------------------------------------------------------------------

    def place(self, inst: Instance) -> int:
        """Put a new workflow instance on its shard (a hash of its id); return the shard."""
        if len(self.shards) > 1:
            inst.shard = shard_of(inst.plan.name, inst.index, len(self.shards))
        if not self.config.durable:
            running = self.running[inst.shard]
            running[inst.gid] = inst
            if len(running) > 4096 and len(running) % 4096 == 0:
                self.running[inst.shard] = {g: i for g, i in running.items() if not i.finished}
        return inst.shard

    def admission(self, inst: Instance) -> float | None:
        """How long a new workflow waits before its start decision: None if it is rejected (its
        shard is down and ``when_down`` rejects, or no token and ``when_throttled`` rejects)."""
        if not self.up[inst.shard] and self.config.when_down == "reject":
            return None
        if self.transitions is None or not self.starts_only:
            return 0.0
        now = self.world.env._now
        if self.config.when_throttled == "reject" and not self.transitions.available(now):
            self.world.counters.throttled += 1
            return None
        wait = self.transitions.delay(now)
        if wait > 0:
            self.world.counters.throttled += 1
        return wait

    def act(self, inst: Instance, fn: Callable[[Any], None], arg: Any) -> None:
        """Run an engine action for ``inst`` now, or when its shard is back."""
        if self.up[inst.shard]:
            fn(arg)
        else:
            self.paused[inst.shard].append((fn, arg))

    # -- decisions -----------------------------------------------------------------------------

    def decide(self, inst: Instance, cpu: float, payload: Any) -> None:
        """Take a decision for ``inst`` on its shard; ``decided(payload)`` once its commands take
        effect (its writes committed, its shard up)."""
        if self.unthrottled:
            self.shards[inst.shard].submit(cpu, self.decided, payload, self._redo)
            return
        if self.transitions is not None and not self.starts_only:
            wait = self.transitions.delay(self.world.env._now)
            if wait > 0:
                self.world.counters.throttled += 1
                self.world.after(wait, self._throttled, (inst, cpu, payload))
                return
        if self.direct:
            self.shards[inst.shard].submit(cpu, self.decided, payload, self._redo)
        else:
            self._queue(Decision(inst, cpu, payload))

    def _throttled(self, item: tuple[Instance, float, Any]) -> None:
        inst, cpu, payload = item
        if self.direct:
            self.shards[inst.shard].submit(cpu, self.decided, payload, self._redo)
        else:
            self._queue(Decision(inst, cpu, payload))

    def _redo(self, payload: Any) -> None:
        """A crash interrupted a direct decision: a durable engine redoes it when the shard is
        back."""
        inst = payload.inst
        if self.config.durable and not inst.finished:
            self.shards[inst.shard].submit(self.extra_cpu(), self.decided, payload, self._redo)

    def _queue(self, d: Decision) -> None:
        if self.serial:
            gid = d.inst.gid
            waiting = self.deciding.get(gid)
            if waiting is not None:
                waiting.append(d)
                return
            self.deciding[gid] = deque()
        self._submit(d)

    def _submit(self, d: Decision) -> None:
        d.visit = self.shards[d.shard].submit(d.cpu, self._computed, d, self._aborted, self.hold_options)

    def _computed(self, d: Decision) -> None:
        if self.writes_per_decision:
            d.writes = self.writes_per_decision
            self._write(d)
        else:
            self._committed(d)

    def _write(self, d: Decision) -> None:
        assert self.store is not None
        self.store.submit(self.write_latency(), self._written, d, self._write)

    def _written(self, d: Decision) -> None:
        self.world.counters.store_writes += 1
        d.writes -= 1
        if d.writes > 0:
            self._write(d)
        else:
            self._committed(d)

    def _committed(self, d: Decision) -> None:
        if self.hold:
            self.shards[d.shard].release(d.visit)
        if self.serial:
            waiting = self.deciding[d.inst.gid]
            if waiting:
                self._submit(waiting.popleft())
            else:
                del self.deciding[d.inst.gid]
        self.act(d.inst, self.decided, d.payload)

    def _aborted(self, d: Decision) -> None:
        """A crash interrupted the decision: a durable engine redoes it when the shard is back."""
        if self.config.durable and not d.inst.finished:
            d.cpu = self.extra_cpu()
            self._submit(d)
        elif self.serial:
            self.deciding.pop(d.inst.gid, None)

    # -- faults --------------------------------------------------------------------------------

    def _health_changed(self, health: Health) -> None:
        down = health.down_replicas()
        whole = health.outages > 0
        for s in range(len(self.shards)):
            owner_down = whole or self.owner[s] in down
            if owner_down and not health.masked and self.config.failover_time is not None:
                self._schedule_move(s)
            up = (health.masked or not owner_down) and health.shard_outages.get(s, 0) <= 0
            self._set_up(s, up and s not in self.handing)
        if self.config.autoscale is not None:
            self._rebalance(health)

    def _rebalance(self, health: Health) -> None:
        """The replicas that serve changed (an autoscaler added or retired some): hand the shards
        of retiring or departed replicas over, and even out the shards over the serving ones, each move
        taking ``handover_time`` (Temporal's shard movement on a membership change, a graceful
        Zeebe leader hand-over). A crashed owner's shards are the failover's business."""
        serving = set(health.serving())
        gone = health.leaving | health.absent
        orphans = any(o in gone and s not in self.handing for s, o in enumerate(self.owner))
        if not serving or (serving == self.serving and not orphans):
            return
        self.serving = serving
        destination = {s: self.handing.get(s, o) for s, o in enumerate(self.owner)}
        load = dict.fromkeys(serving, 0)
        for o in destination.values():
            if o in load:
                load[o] += 1
        for s, o in destination.items():  # (a host scaled in while none served still owns some)
            if o in gone and s not in self.handing:
                to = min(serving, key=lambda r: (load[r], r))
                load[to] += 1
                self._hand_over(s, to)
        while True:
            busiest = max(serving, key=lambda r: (load[r], -r))
            idlest = min(serving, key=lambda r: (load[r], r))
            movable = [s for s, o in destination.items() if o == busiest and s not in self.handing]
            if load[busiest] - load[idlest] <= 1 or not movable:  # (shards on their way stay)
                break
            s = movable[-1]
            load[busiest] -= 1
            load[idlest] += 1
            destination[s] = idlest
            self._hand_over(s, idlest)

    def _hand_over(self, s: int, to: int) -> None:
        """Move shard ``s`` to replica ``to``: it finishes the decisions it has begun, takes no new
        ones for ``handover_time``, then serves from its new owner."""
        self.handing[s] = to
        self.world.counters.shard_moves += 1
        self._set_up(s, False, graceful=True)
        self.world.after(self.config.handover_time, self._handed_over, s)

    def _handed_over(self, s: int) -> None:
        """Shard ``s`` has reached its new owner; if that one is leaving or gone meanwhile (scaled
        in while the shard was on its way), the shard moves on to a host that serves."""
        health = self.health
        old = self.owner[s]
        self.owner[s] = to = self.handing.pop(s)
        if to in health.leaving or to in health.absent:
            serving = health.serving()
            if serving:
                self._hand_over(s, self._least_loaded(serving))
        health.apply()
        health.replica_idle(old)
        health.replica_idle(to)

    def _schedule_move(self, s: int) -> None:
        if s in self.moving:
            return
        self.moving.add(s)
        assert self.config.failover_time is not None
        self.world.after(self.config.failover_time, self._move, s)

    def _move(self, s: int) -> None:
        """The failover time has passed: survivors take the shard over, or a standby the engine."""
        self.moving.discard(s)
        health = self.health
        down = health.down_replicas()
        whole = health.outages > 0
        if not whole and self.owner[s] not in down:
            return  # its replica came back meanwhile
        alive = health.serving()
        if whole or not alive:
            if not health.masked:
                health.take_over()  # a standby takes over the whole engine
            return
        self.owner[s] = self._least_loaded(alive)
        health.apply()

    def _least_loaded(self, replicas: list[int]) -> int:
        """Of ``replicas``, the one that owns the fewest shards (the lowest-numbered on a tie)."""
        load = {r: sum(1 for o in self.owner if o == r) for r in replicas}
        return min(replicas, key=lambda r: (load[r], r))

    def _set_up(self, s: int, up: bool, graceful: bool = False) -> None:
        """Shard ``s`` goes down or comes back; one going down ``graceful``ly (handed over) finishes
        the decisions it has begun and keeps its workflows."""
        if up == self.up[s]:
            return
        self.up[s] = up
        shard = self.shards[s]
        if not up:
            shard.set_available(0, abort=not graceful)
            if not self.config.durable and not graceful:
                self._lose(s)
            return
        shard.set_available(math.inf)
        paused, self.paused[s] = self.paused[s], []
        for fn, arg in paused:
            self.world.immediate(fn, arg)

    def _lose(self, s: int) -> None:
        """A non-durable engine forgets the workflows of a shard that went down, and the actions
        it had put off for them (their owner is told of each: ``forgotten``)."""
        lost, self.running[s] = self.running[s], {}
        for inst in lost.values():
            if not inst.finished:
                self.saga.vanish(inst)
        self.shards[s].drop_queue()
        paused, self.paused[s] = self.paused[s], []
        if self.forgotten is not None:
            for _, arg in paused:
                self.forgotten(arg)
