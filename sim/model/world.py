"""The world every topology runs in: services, network, load and the work each instance brings.

The world is modelled once. A topology (:mod:`sim.model.topologies`) only decides how the steps of
a workflow instance are coordinated; it asks the world for stations, network delays and the
instance's pre-drawn work, and reports how each instance ends.

Common random numbers: arrival instants are drawn up front per workflow, and when the i-th
instance of a workflow arrives it draws its service times, error outcomes and network-hop
latencies from streams named after the (workflow, step), in arrival order. Arrivals happen in the
same order in every topology, so instance i gets the same work everywhere, whatever order its
steps later run in. Draws that only one topology uses (engine overheads, broker latencies, extra
hops) come from their own streams.
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy
from simpy.events import Timeout

from sim.model import streams
from sim.model.station import Immediate, Station
from sim.model.workload import arrival_times
from sim.scenario.distributions import _Spec
from sim.scenario.models import Parallel, Scenario

# Outcome codes of a workflow instance (stored in an int8 array).
IN_FLIGHT, COMPLETED, FAILED = 0, 1, 2
STATUS_NAMES = {IN_FLIGHT: "in_flight", COMPLETED: "completed", FAILED: "failed"}


@dataclass(eq=False)
class StepPlan:
    """One service call of a workflow, with its place in the stage/branch structure."""

    index: int
    service: str
    stage: int
    branch: int
    position: int
    station: Station
    last_in_branch: bool = False
    next_in_branch: StepPlan | None = None
    followers: list[StepPlan] = field(default_factory=list)
    """Steps that act on this step's completion: the next in its branch, or the first step of
    every branch of the next stage."""
    inputs: int = 1
    """Completions this step waits for (the branches of the previous stage, for a join)."""
    terminal: bool = False
    """Whether this step ends a branch of the last stage."""


@dataclass(eq=False)
class WorkflowPlan:
    """A workflow compiled for one world: stages of branches of steps, and its draw functions.

    ``stages[s][b]`` is the list of steps of branch ``b`` of stage ``s``; a plain step is a stage
    with one branch of one step.
    """

    name: str
    offset: int
    count: int
    stages: list[list[list[StepPlan]]]
    steps: list[StepPlan]
    service_draws: list[Callable[[], float]]
    error_draws: list[tuple[int, float, Callable[[], float]]]
    net_in_draws: list[Callable[[], float]] | None
    net_out_draws: list[Callable[[], float]] | None
    net_entry_draw: Callable[[], float] | None
    no_errors: list[bool] = field(default_factory=list)

    @property
    def entry_steps(self) -> list[StepPlan]:
        """First steps of every branch of the first stage."""
        return [branch[0] for branch in self.stages[0]]


class Instance:
    """One running workflow instance: its identity, the work it brings and its progress."""

    __slots__ = (
        "arrival",
        "errors",
        "finished",
        "gid",
        "index",
        "joins",
        "net_entry",
        "net_in",
        "net_out",
        "pending",
        "plan",
        "work",
    )

    def __init__(self, plan: WorkflowPlan, index: int, arrival: float) -> None:
        self.plan = plan
        self.index = index
        self.gid = plan.offset + index
        self.arrival = arrival
        self.finished = False
        self.pending = 0
        self.joins: dict[int, int] | None = None


class World:
    """Services, network and workload of a scenario, built on a fresh SimPy environment.

    ``finish`` and the ``completion``/``status`` arrays are the single place where an instance's
    outcome is recorded; ``check_conservation`` proves that every arrival is accounted for.
    """

    def __init__(self, scenario: Scenario, seed: int | None = None, replication: int = 0) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.replication = replication
        self.env = simpy.Environment()
        self.immediate = Immediate()
        self.stations: dict[str, Station] = {
            name: Station(self.env, name, "service", svc.servers, svc.queue_limit, self.immediate)
            for name, svc in scenario.services.items()
        }
        self.components: list[Station] = list(self.stations.values())
        self.network = scenario.network.latency
        self.hop = self.draws(self.network, "net-extra")
        """Latency of a hop that only some topologies make (drawn in order of use)."""
        self.messages = 0
        self.plans: list[WorkflowPlan] = []
        arrivals: list[np.ndarray] = []
        offset = 0
        for wname, wf in scenario.workflows.items():
            times = arrival_times(
                scenario.load[wname],
                scenario.duration,
                streams.generator(self.seed, f"arrivals/{wname}", replication),
            )
            self.plans.append(self._compile(wname, wf.steps, offset, len(times)))
            arrivals.append(times)
            offset += len(times)
        self.total = offset
        self.arrival = np.concatenate(arrivals) if arrivals else np.empty(0)
        # Outcomes, one slot per instance, in compact arrays (a run may hold millions).
        self.completion = array("d", [math.nan]) * self.total
        self.status = array("b", [IN_FLIGHT]) * self.total
        self.failed_step = array("i", [-1]) * self.total
        self.async_completion = array("d", [math.nan]) * self.total
        self.async_failures = array("i", [0]) * self.total
        self.async_pending = array("i", [0]) * self.total
        self.open = 0
        """Instances and asynchronous steps not yet finished."""
        self.arrivals_over = False
        self.idle = self.env.event()
        """Succeeds when arrivals are over and nothing is open any more."""

    # -- building -----------------------------------------------------------------------------

    def draws(self, dist: _Spec, name: str) -> Callable[[], float]:
        """Draw function of ``dist`` from the stream ``name`` of this world's seed."""
        return streams.draws(dist, self.seed, name, self.replication)

    def add_component(self, name: str, kind: str, servers: int | None) -> Station:
        """A coordination component (orchestrator, broker) of the topology being run."""
        station = Station(self.env, name, kind, servers, immediate=self.immediate)
        self.components.append(station)
        return station

    def _compile(self, wname: str, raw_steps: list[Any], offset: int, count: int) -> WorkflowPlan:
        stages: list[list[list[StepPlan]]] = []
        steps: list[StepPlan] = []
        for s, raw in enumerate(raw_steps):
            branches = raw.parallel if isinstance(raw, Parallel) else [raw]
            stage: list[list[StepPlan]] = []
            for b, branch in enumerate(branches):
                names = [branch] if isinstance(branch, str) else branch
                chain = []
                for p, svc in enumerate(names):
                    step = StepPlan(len(steps), svc, s, b, p, self.stations[svc])
                    steps.append(step)
                    chain.append(step)
                for a, nxt in itertools.pairwise(chain):
                    a.next_in_branch = nxt
                chain[-1].last_in_branch = True
                stage.append(chain)
            stages.append(stage)
        for here, there in itertools.pairwise(stages):
            firsts = [branch[0] for branch in there]
            for branch in here:
                branch[-1].followers = firsts
            for step in firsts:
                step.inputs = len(here)
        for step in steps:
            if step.next_in_branch is not None:
                step.followers = [step.next_in_branch]
        for branch in stages[-1]:
            branch[-1].terminal = True
        services = self.scenario.services
        net_const = self.network.is_zero or self.network.dist == "constant"
        tag = f"{wname}/{{k}}/{{svc}}"
        key = [tag.format(k=st.index, svc=st.service) for st in steps]
        return WorkflowPlan(
            name=wname,
            offset=offset,
            count=count,
            stages=stages,
            steps=steps,
            service_draws=[
                self.draws(services[st.service].latency, f"work/{k}") for st, k in zip(steps, key)
            ],
            error_draws=[
                (
                    st.index,
                    services[st.service].error_probability,
                    streams.uniforms(self.seed, f"errors/{k}", self.replication),
                )
                for st, k in zip(steps, key)
                if services[st.service].error_probability > 0
            ],
            net_in_draws=None if net_const else [self.draws(self.network, f"net-in/{k}") for k in key],
            net_out_draws=None if net_const else [self.draws(self.network, f"net-out/{k}") for k in key],
            net_entry_draw=None if net_const else self.draws(self.network, f"net-entry/{wname}"),
            no_errors=[False] * len(steps),
        )

    # -- running ------------------------------------------------------------------------------

    def instance(self, plan: WorkflowPlan, index: int, arrival: float) -> Instance:
        """Create instance ``index`` of ``plan`` with all the work it brings, drawn now."""
        inst = Instance(plan, index, arrival)
        inst.work = [draw() for draw in plan.service_draws]
        if plan.error_draws:
            errors = list(plan.no_errors)
            for k, p, u in plan.error_draws:
                errors[k] = u() < p
            inst.errors = errors
        else:
            inst.errors = plan.no_errors
        if plan.net_in_draws is None:
            hop = self.network.mean
            inst.net_in = inst.net_out = [hop] * len(plan.steps)
            inst.net_entry = hop
        else:
            assert plan.net_out_draws is not None and plan.net_entry_draw is not None
            inst.net_in = [d() for d in plan.net_in_draws]
            inst.net_out = [d() for d in plan.net_out_draws]
            inst.net_entry = plan.net_entry_draw()
        return inst

    def after(self, delay: float, fn: Callable[[Any], None], arg: Any) -> None:
        """Call ``fn(arg)`` after ``delay`` seconds (at once, without an engine event, if 0)."""
        if delay == 0:
            self.immediate(fn, arg)
        else:
            Timeout(self.env, delay, (fn, arg)).callbacks.append(_fire)

    def succeeded(self, inst: Instance, k: int) -> bool:
        """Whether step ``k`` of ``inst``, just served, succeeded; an error is recorded at its service."""
        if inst.errors[k]:
            inst.plan.steps[k].station.errors.append(self.env.now)
            return False
        return True

    def finish(self, inst: Instance, status: int, failed_step: int = -1) -> None:
        """Record how ``inst`` ended (once; later calls for the same instance are ignored)."""
        if inst.finished:
            return
        inst.finished = True
        self._close()
        self.completion[inst.gid] = self.env.now
        self.status[inst.gid] = status
        self.failed_step[inst.gid] = failed_step

    def async_done(self, inst: Instance, ok: bool) -> None:
        """Record that one asynchronous step of ``inst`` has finished (hybrid)."""
        gid = inst.gid
        self._close()
        self.async_pending[gid] -= 1
        if not ok:
            self.async_failures[gid] += 1
        if self.async_pending[gid] == 0:
            self.async_completion[gid] = self.env.now

    def async_started(self, inst: Instance) -> None:
        """Record that an asynchronous step of ``inst`` has been dispatched (hybrid)."""
        self.async_pending[inst.gid] += 1
        self.open += 1

    def _close(self) -> None:
        self.open -= 1
        if self.open == 0 and self.arrivals_over and not self.idle.triggered:
            self.idle.succeed()

    def arrivals(self) -> Iterator[tuple[float, WorkflowPlan, int]]:
        """All arrivals of all workflows in time order (ties: workflow order, then index)."""
        order = np.argsort(self.arrival, kind="stable")
        owners = np.concatenate([np.full(p.count, i) for i, p in enumerate(self.plans)]) if self.plans else []
        times = self.arrival[order].tolist()
        for t, g in zip(times, order.tolist()):
            plan = self.plans[int(owners[g])]
            yield t, plan, g - plan.offset

    def source(self, arrive: Callable[[Instance], None]) -> Iterator[simpy.Event]:
        """The process that starts every workflow instance at its arrival instant."""
        env = self.env
        for t, plan, index in self.arrivals():
            if t > env.now:
                yield Timeout(env, t - env.now)
            self.open += 1
            arrive(self.instance(plan, index, t))
        self.arrivals_over = True
        if self.open == 0 and not self.idle.triggered:
            self.idle.succeed()

    def run(
        self, arrive: Callable[[Instance], None], progress: Callable[[float], None] | None = None
    ) -> None:
        """Run arrivals for ``duration``, then let open work drain for at most ``drain_time``.

        The run stops as soon as every instance (and asynchronous step) has finished.
        """
        env = self.env
        env.process(self.source(arrive))
        duration = self.scenario.duration
        marks = np.linspace(0, duration, 41)[1:].tolist() if progress is not None else [duration]
        for t in marks:
            env.run(until=t)
            if progress is not None:
                progress(t / duration)
        if not self.idle.triggered and self.scenario.drain_time > 0:
            env.run(until=env.any_of([self.idle, env.timeout(self.scenario.drain_time)]))
        self.check_conservation()

    def check_conservation(self) -> None:
        """Every arrival is completed, failed or still in flight, exactly once; raise if not."""
        status = np.array(self.status, dtype=np.int8)
        counts = {code: int(np.count_nonzero(status == code)) for code in STATUS_NAMES}
        if sum(counts.values()) != self.total:
            raise AssertionError(f"conservation violated: {self.total} arrived, outcomes {counts}")
        done = np.array(self.completion)
        finished = ~np.isnan(done)
        if int(finished.sum()) != counts[COMPLETED] + counts[FAILED]:
            raise AssertionError("conservation violated: finished instances without an outcome")
        if np.any(done[finished] > self.env.now) or np.any(done[finished] < self.arrival[finished]):
            raise AssertionError("conservation violated: a completion outside the run")
        open_async = int(np.sum(self.async_pending))
        if self.open != counts[IN_FLIGHT] + open_async:
            raise AssertionError(
                f"conservation violated: {self.open} open, {counts[IN_FLIGHT]} in flight + {open_async} async"
            )


def _fire(event: Timeout) -> None:
    fn, arg = event._value
    fn(arg)
