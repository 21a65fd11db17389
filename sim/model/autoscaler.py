"""Autoscalers: a Kubernetes HorizontalPodAutoscaler on the replicas of one component.

Every ``interval`` the autoscaler reads its metric and recommends, as the HPA's replica
calculator does, ceil(current × metric / target) replicas, unless metric / target is within the
tolerance of 1. The recommendation is stabilized as the HPA's behaviours do (a scale-down goes
no lower than the highest recommendation of its window, a scale-up no higher than the lowest of
its window), a scale-up is limited by the default policy (at most max(4 pods, 100 %) added per
15 s) and the result kept within [min, max]. The metrics are KEDA's and the metrics server's:

* ``utilization``: the busy share of the servers over the last interval, replicas still starting
  counted as idle (the HPA counts a pod that is not ready as using nothing when it scales up);
* ``queue``: requests waiting for a worker, now;
* ``lag``: messages not yet processed, now (KEDA's Kafka scaler reads the consumer group's lag).

The component's replicas are its :class:`~sim.model.faults.Health`'s, numbered up to the most it
may have: replicas above the current count are *absent*. A new replica is *starting* for
``startup_time`` (a pod pulling its image, booting, passing its readiness probe), then serves. A
replica scaled in *retires*: it takes no new work and finishes what it holds (Kubernetes takes
the pod out of its Service's endpoints and sends SIGTERM), for at most ``drain_timeout``, then
is absent; its owner sees the same states as in a rolling deploy (a consumer group rebalances
when a consumer leaves and when one joins). A scale-down removes starting replicas first, then
the highest-numbered ones; a scale-up takes the lowest-numbered absent ones.

Each change is recorded as two tallies, ``replicas/<component>`` (replicas running, which are
paid for: starting and retiring ones included) and ``ready/<component>`` (those that serve).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np
import simpy
from simpy.events import Timeout

from sim.model.counters import Counters
from sim.model.faults import Health
from sim.model.station import Station
from sim.scenario.autoscale import Autoscale

SCALE_UP_PERIOD = 15.0
"""The HPA's default scale-up policies apply per 15 seconds."""
SCALE_UP_PODS = 4
"""... and add at most max(4 pods, 100 % of the replicas at the period's start)."""


class BusyMeter:
    """Server-seconds of work done by some stations over a window, read from their records: the
    overlap of each visit's service with the window (visits that ended before the last window
    are skipped for good)."""

    def __init__(self, stations: Sequence[Station]) -> None:
        self.stations = list(stations)
        self.low = [0] * len(self.stations)
        for st in self.stations:
            st.keep = 0.0  # this meter reads the records from here on (see Station.spill)

    def busy(self, t0: float, t1: float) -> float:
        """Server-seconds of service in [t0, t1]."""
        total = 0.0
        for i, st in enumerate(self.stations):
            low = self.low[i]
            at = low - st.base  # (the station keeps this visit and those after it in memory)
            if at >= len(st.started):
                continue
            started = np.frombuffer(st.started[at:], dtype=float)
            ended = np.frombuffer(st.ended[at:], dtype=float)
            begun = ~np.isnan(started)
            overlap = np.minimum(ended[begun], t1) - np.maximum(started[begun], t0)
            total += float(np.sum(overlap[overlap > 0]))
            # Visits before the first one still waiting or ending after t0 are over for good.
            open_ = ~begun | (ended > t0)
            first = int(np.argmax(open_)) if open_.any() else len(open_)
            self.low[i] = low + first
            st.keep = float(low + first)
        return total


class Autoscaler:
    """The HPA on one component's replicas (see the module docstring). ``utilization(t0, t1,
    current)`` gives the busy share over a window when ``current`` replicas are asked for;
    ``backlog(metric)`` the queue or lag now."""

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        config: Autoscale,
        health: Health,
        initial: int,
        utilization: Callable[[float, float, int], float],
        backlog: Callable[[str], float],
        tally: Callable[[str, float], None],
        counters: Counters,
    ) -> None:
        self.env = env
        self.name = name
        self.config = config
        self.health = health
        self.utilization = utilization
        self.backlog = backlog
        self.tally = tally
        self.counters = counters
        self.current = initial
        """The replicas asked for (the Deployment's spec.replicas)."""
        health.absent = set(range(initial, health.replicas))
        self.recommendations: list[tuple[float, int]] = []
        self.ups: list[tuple[float, int]] = []
        """Scale-ups of the last policy period: when, and how many replicas were added."""
        self.generation = [0] * health.replicas
        """Per replica: voids the startup timer of a replica removed while it was starting."""

    def start(self) -> None:
        """Take the initial replicas, record them and start evaluating."""
        self.health.apply()
        self._record()
        self.env.process(self._loop())

    def _loop(self) -> Generator[simpy.Event, Any, None]:
        interval = self.config.interval
        last = self.env.now
        while True:
            yield Timeout(self.env, interval)
            now = self.env.now
            target = self.evaluate(last, now)
            last = now
            if target != self.current:
                self.scale(target)

    def evaluate(self, t0: float, t1: float) -> int:
        """The replicas the HPA asks for at ``t1``, the metric read over [t0, t1]."""
        config, current = self.config, self.current
        if config.metric == "utilization":
            total = self.utilization(t0, t1, current) * current
        else:
            total = self.backlog(config.metric)
        ratio = total / (config.target * current)
        if abs(ratio - 1.0) <= config.tolerance:
            raw = current
        else:  # (a recommendation above max counts as max: the bounds apply to it in the end)
            need = total / config.target
            raw = config.max if need >= config.max else max(0, math.ceil(need - 1e-9))
        now = self.env.now
        self.recommendations.append((now, raw))
        keep = now - max(config.stabilization_up, config.stabilization_down, 0.0)
        self.recommendations = [(t, r) for t, r in self.recommendations if t >= keep]
        up = min((r for t, r in self.recommendations if t > now - config.stabilization_up), default=raw)
        down = max((r for t, r in self.recommendations if t > now - config.stabilization_down), default=raw)
        up, down = min(up, raw), max(down, raw)
        wanted = current
        if wanted < up:
            wanted = up
        if wanted > down:
            wanted = down
        if wanted > current:
            self.ups = [(t, n) for t, n in self.ups if t + SCALE_UP_PERIOD > now]
            start = current - sum(n for _, n in self.ups)
            wanted = min(wanted, max(start + SCALE_UP_PODS, 2 * start))
        return min(max(wanted, config.min), config.max)

    def scale(self, target: int) -> None:
        """Change the replicas asked for to ``target``, now."""
        health = self.health
        now = self.env.now
        if target > self.current:
            self.counters.scale_ups += 1
            self.ups.append((now, target - self.current))
            for _ in range(target - self.current):
                self._add()
        else:
            self.counters.scale_downs += 1
            for _ in range(self.current - target):
                self._remove()
        self.current = target
        health.apply()
        self._record()

    def _add(self) -> None:
        health = self.health
        if health.retiring:  # one still draining is kept rather than a new one started
            health.retiring.discard(max(health.retiring))
            return
        r = min(health.absent)
        health.absent.discard(r)
        self.generation[r] += 1
        if self.config.startup_time > 0:
            health.starting.add(r)
            self.env.process(self._start_up(r, self.generation[r]))

    def _start_up(self, r: int, generation: int) -> Generator[simpy.Event, Any, None]:
        yield Timeout(self.env, self.config.startup_time)
        if self.generation[r] == generation and r in self.health.starting:
            self.health.starting.discard(r)
            self.health.apply()
            self._record()

    def _remove(self) -> None:
        health = self.health
        if health.starting:
            r = max(health.starting)
            health.starting.discard(r)
            health.absent.add(r)
            self.generation[r] += 1
            return
        serving = [r for r in health.present() if r not in health.retiring]
        r = serving[-1]
        health.retiring.add(r)
        self.generation[r] += 1
        self.env.process(self._retire(r, self.generation[r]))

    def _retire(self, r: int, generation: int) -> Generator[simpy.Event, Any, None]:
        health = self.health
        drained = health.wait_drained(self.env, {r})
        if not drained.triggered:
            yield self.env.any_of([drained, Timeout(self.env, self.config.drain_timeout)])
        if self.generation[r] != generation or r not in health.retiring:
            return  # kept after all
        health.retiring.discard(r)
        health.absent.add(r)
        health.apply()  # what the drain did not finish is aborted
        self._record()

    def _record(self) -> None:
        health = self.health
        running = health.replicas - len(health.absent)
        self.tally(f"replicas/{self.name}", running)
        self.tally(f"ready/{self.name}", running - len(health.starting) - len(health.retiring))
