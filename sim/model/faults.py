"""Fault injection: the scenario's faults, applied to the components of one world.

Each fault is a small process that changes a component's state at the instants its window opens
and closes: servers lost (outage, capacity loss, crashes of single replicas drawn from MTBF and
MTTR), replicas restarted one batch after another (a rolling deploy: each drains, is down, comes
back), a slowdown factor, or an error probability. Components take part by registering: a
station registers with :meth:`Faults.register` and gets its :class:`Health`, on which its owner
hangs the hooks that say what the component *does* while degraded (a broker keeping a down
consumer's events, an engine losing non-durable workflows); the network registers with
:meth:`Faults.register_network` and is handed the partitions to schedule on its links. The fault
driver never calls into a coordinator directly, and coordinators never read its tables.

Every window actually applied is recorded in ``windows`` (type, target, peer, start, end), so the
analysis can shade them and measure recovery; a partition's two ends are its target and its peer.
Crash processes draw from their own named stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Generator
from dataclasses import dataclass, field
from typing import Any

import simpy
from simpy.events import Timeout

from sim.model import streams
from sim.model.network import Network
from sim.model.station import Station
from sim.scenario.limits import MAX_FACTOR, MIN_FACTOR
from sim.scenario.models import (
    CapacityLoss,
    CrashProcess,
    Deploy,
    ErrorBurst,
    Outage,
    Partition,
    Scenario,
    Slowdown,
)

Windowed = Outage | Slowdown | ErrorBurst | CapacityLoss


@dataclass
class Health:
    """How much of a component is lost right now, by cause; its owner registers ``on_change``
    hooks to react to it. A component with a ``station`` has its servers set here; one without
    (the engine, whose shards live on replicas) reads the state in its hook."""

    station: Station | None
    replicas: int
    per_replica: float
    outages: int = 0
    lost: int = 0
    """Replicas lost to capacity-loss faults (the highest-numbered ones still up)."""
    crashed: set[int] = field(default_factory=set)
    """Replicas down in a crash process, by number."""
    draining: set[int] = field(default_factory=set)
    """Replicas draining in a deploy: they finish their work but take no new work."""
    restarting: set[int] = field(default_factory=set)
    """Replicas down between their drain and their return in a deploy."""
    absent: set[int] = field(default_factory=set)
    """Replicas that do not exist now: above an autoscaled component's current count."""
    starting: set[int] = field(default_factory=set)
    """Replicas an autoscaler has started that do not serve yet (their startup time)."""
    retiring: set[int] = field(default_factory=set)
    """Replicas an autoscaler is removing: they drain, then are gone."""
    shard_outages: dict[int, int] = field(default_factory=dict)
    """Outages of single shards of an engine, by shard."""
    partition_outages: dict[int, int] = field(default_factory=dict)
    """Outages of single partitions of a broker, by partition."""
    parts: list[Station] = field(default_factory=list)
    """Stations of a component without a station of its own (an engine's shards): slowdowns apply
    to them, and crashes abort their requests in service."""
    base_error: float = 0.0
    bursts: list[float] = field(default_factory=list)
    slowdowns: list[float] = field(default_factory=list)
    """Factors of the slowdowns active now; the station's factor is their product, recomputed
    (not divided back out, which left 1e-320 × (1 / 1e-320) = inf behind)."""
    masked: bool = False
    """A standby has taken over: the component works at full capacity until its fault is over."""
    on_change: list[Callable[[Health], None]] = field(default_factory=list)
    """Hooks called as hook(health) whenever availability changes."""
    drain_checks: list[Callable[[int], bool]] = field(default_factory=list)
    """What besides the station must hold for a draining replica to be done (a consumer group:
    its consumer has nothing in progress); owners call :meth:`replica_idle` when it may."""
    _waits: list[tuple[set[int], simpy.Event]] = field(default_factory=list)

    @property
    def stations(self) -> list[Station]:
        """The stations the component's faults act on."""
        return [self.station] if self.station is not None else self.parts

    def take_over(self) -> None:
        """A standby has taken over: the component works at full capacity until its fault is over."""
        self.masked = True
        self.apply()

    @property
    def leaving(self) -> set[int]:
        """Replicas that take no new work but finish what they hold: draining in a deploy, or
        retiring after a scale-in."""
        return self.draining | self.retiring if self.retiring else self.draining

    def present(self) -> list[int]:
        """The replicas that exist now, by number."""
        return [r for r in range(self.replicas) if r not in self.absent]

    def serving(self) -> list[int]:
        """The replicas up and taking new work now, by number (a whole-component outage aside)."""
        down, leaving = self.down_replicas(), self.leaving
        return [r for r in range(self.replicas) if r not in down and r not in leaving]

    def down_replicas(self) -> set[int]:
        """The replicas down now, by number (a whole-component outage aside): crashed, restarting,
        absent or still starting, and as many of the highest-numbered others as capacity losses
        take."""
        down = self.crashed | self.restarting
        if self.absent or self.starting:
            down = down | self.absent | self.starting
        target = len(down) + self.lost
        for replica in range(self.replicas - 1, -1, -1):
            if len(down) >= target:
                break
            down.add(replica)
        return down

    def down_now(self) -> Container[int]:
        """The replicas down now, an outage of the whole component included: computed once for a
        loop over thousands of replicas, which would be quadratic through :meth:`replica_down`."""
        if self.masked:
            return ()
        if self.outages > 0:
            return range(self.replicas)
        return self.down_replicas()

    def replica_down(self, replica: int) -> bool:
        """Whether ``replica`` is down now (an outage of the whole component included)."""
        return replica in self.down_now()

    def apply(self) -> None:
        if self.masked and self.outages <= 0 and not self.crashed and self.lost <= 0:
            self.masked = False
        station = self.station
        if station is not None and station.rbusy is not None:
            if self.masked:
                station.set_replicas(self.absent | self.starting, set())
            elif self.outages > 0:
                station.set_replicas(set(range(self.replicas)), set())
            else:
                station.set_replicas(self.down_replicas(), self.leaving)
        elif station is not None:
            down = len(self.down_replicas() | self.leaving)
            if self.masked:
                servers: float = station.full_capacity()
            elif self.outages > 0:
                servers = 0.0
            elif self.per_replica == math.inf:
                servers = math.inf if down < self.replicas else 0
            else:
                servers = max(0, self.replicas - down) * self.per_replica
            station.set_available(servers)
        for hook in self.on_change:
            hook(self)
        self.replica_idle()

    # -- draining (a deploy) ------------------------------------------------------------------

    def drained(self, replica: int) -> bool:
        """Whether a draining replica has finished everything it held."""
        station = self.station
        if station is not None and station.rbusy is not None and station.rbusy[replica] > 0:
            return False
        return all(check(replica) for check in self.drain_checks)

    def wait_drained(self, env: simpy.Environment, replicas: set[int]) -> simpy.Event:
        """An event that succeeds once every replica of ``replicas`` has drained."""
        event = env.event()
        self._waits.append((set(replicas), event))
        self.replica_idle()
        return event

    def replica_idle(self, replica: int = -1) -> None:
        """Something a draining replica held has ended: wake the waits now fully drained."""
        if not self._waits:
            return
        still = []
        for replicas, event in self._waits:
            if event.triggered:
                continue
            if all(self.drained(r) for r in replicas):
                event.succeed()
            else:
                still.append((replicas, event))
        self._waits = still


class Faults:
    """The faults of a scenario, driving the components registered with :meth:`register`."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, seed: int, replication: int) -> None:
        self.env = env
        self.scenario = scenario
        self.seed = seed
        self.replication = replication
        self._targets: dict[str, Health] = {}
        self._network: Network | None = None
        self._per_replica: set[str] = set()
        self.windows: list[dict[str, object]] = []

    def register(
        self,
        name: str,
        station: Station | None,
        replicas: int,
        error_probability: float = 0.0,
        per_replica: bool = False,
    ) -> Health:
        """Make a component a possible fault target (components a topology lacks are not);
        return its :class:`Health`, for the component's owner to hang hooks on. ``station`` is
        None for a component whose owner applies the faults itself (the engine's shards, a log's
        partitions). With ``per_replica`` (a service) the station keeps which replica serves each
        request, so a crash or a drain acts on that replica's own requests."""
        servers = math.inf if station is None or station.servers is None else station.servers / replicas
        health = Health(station, replicas, servers, base_error=error_probability)
        self._targets[name] = health
        if per_replica:
            self._per_replica.add(name)
        return health

    def health(self, name: str) -> Health:
        """The health of a registered component."""
        return self._targets[name]

    def register_network(self, network: Network) -> None:
        """The network takes the partitions between components."""
        self._network = network

    def start(self) -> None:
        """Start one process per fault whose target exists in this world."""
        for i, fault in enumerate(self.scenario.faults):
            if isinstance(fault, Partition):
                if self._network is not None:
                    self._network.schedule(fault)
                a, b = fault.between
                self.windows.append(_record("partition", a, fault.at, fault.at + fault.duration, peer=b))
                continue
            health = self._targets.get(fault.target)
            if health is None:
                continue
            if isinstance(fault, (Outage, CrashProcess, CapacityLoss, Deploy)):
                for station in health.stations:
                    station.tracked = True
                    if fault.target in self._per_replica:
                        station.track_replicas()
                        station.on_idle = health.replica_idle
            if isinstance(fault, CrashProcess):
                for replica in range(health.replicas):
                    self.env.process(self._crashes(fault, health, i, replica))
            elif isinstance(fault, Deploy):
                self.env.process(self._deploy(fault, health))
            else:
                self.env.process(self._windowed(fault, health))

    # -- processes --------------------------------------------------------------------------

    def _windowed(
        self, fault: Outage | Slowdown | ErrorBurst | CapacityLoss, health: Health
    ) -> Generator[Timeout, Any, None]:
        if fault.at > 0:
            yield Timeout(self.env, fault.at)
        self.windows.append(_record(fault.type, fault.target, fault.at, fault.at + fault.duration))
        self._set(fault, health, True)
        yield Timeout(self.env, fault.duration)
        self._set(fault, health, False)

    def _set(self, fault: Outage | Slowdown | ErrorBurst | CapacityLoss, health: Health, on: bool) -> None:
        sign = 1 if on else -1
        if isinstance(fault, Outage) and fault.shards is not None:
            for shard in fault.shards:
                health.shard_outages[shard] = health.shard_outages.get(shard, 0) + sign
            health.apply()
        elif isinstance(fault, Outage) and fault.partitions is not None:
            for part in fault.partitions:
                health.partition_outages[part] = health.partition_outages.get(part, 0) + sign
            health.apply()
        elif isinstance(fault, Outage):
            health.outages += sign
            health.apply()
        elif isinstance(fault, CapacityLoss):
            health.lost += sign * fault.replicas
            health.apply()
        elif isinstance(fault, Slowdown):
            if on:
                health.slowdowns.append(fault.factor)
            else:
                health.slowdowns.remove(fault.factor)
            product = math.prod(health.slowdowns, start=1.0)  # exactly 1.0 once none is left
            for station in health.stations:
                station.slowdown = min(max(product, MIN_FACTOR**2), MAX_FACTOR**2)
        elif isinstance(fault, ErrorBurst):
            if on:
                health.bursts.append(fault.probability)
            else:
                health.bursts.remove(fault.probability)
            for station in health.stations:
                station.error_probability = max(health.bursts, default=health.base_error)

    def _crashes(
        self, fault: CrashProcess, health: Health, index: int, replica: int
    ) -> Generator[Timeout, Any, None]:
        name = f"faults/{index}/{fault.target}/{replica}"
        up_for = streams.draws(fault.mtbf, self.seed, f"{name}/mtbf", self.replication)
        down_for = streams.draws(fault.mttr, self.seed, f"{name}/mttr", self.replication)
        until = math.inf if fault.until is None else fault.until
        t = fault.start
        if t > 0:
            yield Timeout(self.env, t)
        while True:
            wait = up_for()
            if self.env.now + wait >= until:
                return
            yield Timeout(self.env, wait)
            repair = down_for()
            if replica in health.absent:  # not running now (scaled in): nothing to crash
                yield Timeout(self.env, repair)
                continue
            start = self.env.now
            self.windows.append(_record("crash", fault.target, start, start + repair))
            health.crashed.add(replica)
            health.apply()
            yield Timeout(self.env, repair)
            health.crashed.discard(replica)
            health.apply()

    def _deploy(self, fault: Deploy, health: Health) -> Generator[simpy.Event, Any, None]:
        """A rolling restart: ``batch`` replicas at a time drain (at most ``drain_timeout``), are
        down for ``restart_time`` and come back; the window lasts until the last is back."""
        if fault.at > 0:
            yield Timeout(self.env, fault.at)
        record = _record("deploy", fault.target, self.env.now, self.env.now)
        self.windows.append(record)
        present = health.present()  # replicas an autoscaler adds meanwhile start with the new version
        for first in range(0, len(present), fault.batch):
            batch = set(present[first : first + fault.batch]) - health.absent
            health.draining |= batch
            health.apply()
            drained = health.wait_drained(self.env, batch)
            if not drained.triggered:
                yield self.env.any_of([drained, Timeout(self.env, fault.drain_timeout)])
            health.draining -= batch
            health.restarting |= batch
            health.apply()  # what the drain did not finish is aborted
            if fault.restart_time > 0:
                yield Timeout(self.env, fault.restart_time)
            health.restarting -= batch
            health.apply()
            record["end"] = self.env.now


def _record(kind: str, target: str, start: float, end: float, peer: str = "") -> dict[str, object]:
    """One applied fault window, as the records carry it."""
    return {"type": kind, "target": target, "peer": peer, "start": start, "end": end}
