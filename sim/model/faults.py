"""Fault injection: the scenario's faults, applied to the components of one world.

Each fault is a small process that changes a component's state at the instants its window opens
and closes: servers lost (outage, capacity loss, crashes of single replicas drawn from MTBF and
MTTR), a slowdown factor, an error probability, or a partition between two components. What a
component *does* while degraded (a caller's connect timeout, a broker keeping a down consumer's
events, an engine losing non-durable workflows) belongs to the coordinators, which react to
:meth:`Station.set_available` through ``on_change`` hooks and ask :meth:`Faults.partitioned`.

Every window actually applied is recorded in ``windows`` (type, target, start, end), so the
analysis can shade them and measure recovery. Crash processes draw from their own named stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import simpy
from simpy.events import Timeout

from sim.model import streams
from sim.model.station import Station
from sim.scenario.models import CapacityLoss, CrashProcess, ErrorBurst, Outage, Partition, Scenario, Slowdown

Windowed = Outage | Slowdown | ErrorBurst | CapacityLoss


@dataclass
class ComponentState:
    """How much of a component is lost right now, by cause."""

    station: Station
    replicas: int
    per_replica: float
    outages: int = 0
    lost: int = 0
    base_error: float = 0.0
    bursts: list[float] = field(default_factory=list)
    masked: bool = False
    """A standby has taken over: the component works at full capacity until its fault is over."""
    on_change: list[Callable[[Station, bool], None]] = field(default_factory=list)
    """Hooks called as hook(station, went_down) whenever availability changes."""

    def apply(self) -> None:
        was_down = self.station.down
        if self.masked and self.outages <= 0 and self.lost <= 0:
            self.masked = False
        if self.masked:
            servers: float = self.station.full_capacity()
        elif self.outages > 0:
            servers = 0
        elif self.per_replica == math.inf:
            servers = math.inf if self.lost < self.replicas else 0
        else:
            servers = max(0, self.replicas - self.lost) * self.per_replica
        self.station.set_available(servers)
        for hook in self.on_change:
            hook(self.station, self.station.down and not was_down)


class Faults:
    """The faults of a scenario, driving the components registered with :meth:`register`."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, seed: int, replication: int) -> None:
        self.env = env
        self.scenario = scenario
        self.seed = seed
        self.replication = replication
        self.components: dict[str, ComponentState] = {}
        self.windows: list[dict[str, object]] = []
        self._partitions: list[Partition] = [f for f in scenario.faults if isinstance(f, Partition)]
        self.any_partition = bool(self._partitions)

    def register(
        self, name: str, station: Station, replicas: int, error_probability: float = 0.0
    ) -> ComponentState:
        """Make a component a possible fault target (components a topology lacks are not)."""
        per_replica = math.inf if station.servers is None else station.servers / replicas
        state = ComponentState(station, replicas, per_replica, base_error=error_probability)
        self.components[name] = state
        return state

    def start(self) -> None:
        """Start one process per fault whose target exists in this world."""
        for i, fault in enumerate(self.scenario.faults):
            if isinstance(fault, Partition):
                self.windows.append(
                    {
                        "type": "partition",
                        "target": "-".join(fault.between),
                        "start": fault.at,
                        "end": fault.at + fault.duration,
                    }
                )
                continue
            state = self.components.get(fault.target)
            if state is None:
                continue
            if isinstance(fault, (Outage, CrashProcess, CapacityLoss)):
                state.station.tracked = True
            if isinstance(fault, CrashProcess):
                for replica in range(state.replicas):
                    self.env.process(self._crashes(fault, state, i, replica))
            else:
                self.env.process(self._window(fault, state))

    # -- processes --------------------------------------------------------------------------

    def _window(
        self, fault: Outage | Slowdown | ErrorBurst | CapacityLoss, state: ComponentState
    ) -> Iterator[Timeout]:
        if fault.at > 0:
            yield Timeout(self.env, fault.at)
        self.windows.append(
            {"type": fault.type, "target": fault.target, "start": fault.at, "end": fault.at + fault.duration}
        )
        self._set(fault, state, True)
        yield Timeout(self.env, fault.duration)
        self._set(fault, state, False)

    def _set(
        self, fault: Outage | Slowdown | ErrorBurst | CapacityLoss, state: ComponentState, on: bool
    ) -> None:
        sign = 1 if on else -1
        if isinstance(fault, Outage):
            state.outages += sign
            state.apply()
        elif isinstance(fault, CapacityLoss):
            state.lost += sign * fault.replicas
            state.apply()
        elif isinstance(fault, Slowdown):
            state.station.slowdown *= fault.factor if on else 1 / fault.factor
        elif isinstance(fault, ErrorBurst):
            if on:
                state.bursts.append(fault.probability)
            else:
                state.bursts.remove(fault.probability)
            state.station.error_probability = max(state.bursts, default=state.base_error)

    def _crashes(
        self, fault: CrashProcess, state: ComponentState, index: int, replica: int
    ) -> Iterator[Timeout]:
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
            start = self.env.now
            self.windows.append(
                {"type": "crash", "target": fault.target, "start": start, "end": start + repair}
            )
            state.lost += 1
            state.apply()
            yield Timeout(self.env, repair)
            state.lost -= 1
            state.apply()

    # -- partitions -------------------------------------------------------------------------

    def partitioned(self, a: str, b: str) -> Partition | None:
        """The partition between ``a`` and ``b`` in force now, if any."""
        if not self.any_partition:
            return None
        now = self.env.now
        for p in self._partitions:
            if p.at <= now < p.at + p.duration and {a, b} == set(p.between):
                return p
        return None
