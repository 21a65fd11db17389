"""The world every topology runs in: services, network, load and the work each instance brings.

The world is modelled once. A coordinator (:mod:`sim.model.coordinators`) only decides how the
steps of a workflow instance are coordinated; it asks the world for stations, network delays and
the instance's pre-drawn work, and reports how each instance ends.

Common random numbers: arrival instants are drawn up front per workflow, and when the i-th
instance of a workflow arrives it draws its service times, error outcomes and network-hop
latencies from streams named after the (workflow, step), in arrival order. Arrivals happen in the
same order in every topology, so instance i gets the same work everywhere, whatever order its
steps later run in. Draws that only one topology uses (engine overheads, broker latencies, extra
hops) come from their own streams; retries and compensations draw from streams of their own too.

Closed-loop clients (:mod:`sim.model.clients`) make their arrivals while the run goes on, in
answer to its response times, so the number of instances is not known up front. A world with
clients is *dynamic*: it numbers instances in the order they are created (their global id, the
slot of the outcome arrays, which grow), and :meth:`World.records` permutes every per-instance
output so that each workflow's instances are contiguous again, as the records promise. A world
without clients preallocates its arrays per workflow, as it always has. The i-th instance of a
workflow still brings the same work in every topology; only its arrival instant differs.

The world also holds the fault driver (:mod:`sim.model.faults`), the run's counters
(:mod:`sim.model.counters`) and the tracer of sampled instances. How a failed instance ends is
the saga's business (:mod:`sim.model.saga`); the world only records the outcome it is given, and
proves at the end of the run that every arrival is accounted for.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import simpy

from sim.model import streams
from sim.model.autoscaler import Autoscaler, BusyMeter
from sim.model.clients import Clients
from sim.model.clock import Due, due, run
from sim.model.counters import Counters
from sim.model.effects import UNDONE, EffectLedger
from sim.model.faults import Faults, Health
from sim.model.network import Network
from sim.model.outcomes import COMPENSATED, FAILED, FINISHED, IN_FLIGHT, INCONSISTENT, LOST, STATUS_NAMES
from sim.model.records import (
    ComponentRecord,
    GroupRecord,
    OutcomeRecord,
    SpillFolder,
    TopologyRun,
    WorkflowRecord,
    as_array,
)
from sim.model.station import Immediate, Station
from sim.model.tracing import Tracer, sample_indices
from sim.model.workflow import Instance, StepPlan, WorkflowPlan
from sim.model.workload import arrival_times
from sim.scenario.autoscale import Autoscale
from sim.scenario.distributions import Spec
from sim.scenario.models import Parallel, Scenario


def _latest(keys: np.ndarray, values: np.ndarray) -> dict[int, float]:
    """The largest value per key."""
    out: dict[int, float] = {}
    for key, value in zip(keys.tolist(), values.tolist(), strict=True):
        if value > out.get(key, -math.inf):
            out[key] = value
    return out


OK, TRANSIENT, BUSINESS = 0, 1, 2
"""How a request ends (:meth:`World.outcome`): done, a transient error (retried), a business
refusal (never retried)."""


class Subscription(Protocol):
    """Something that records a subscription during a run (a consumer group), and writes the
    records it is done with out of memory when asked."""

    def record(self) -> GroupRecord: ...

    def crowded(self) -> bool: ...

    def spill(self, folder: SpillFolder) -> None: ...


class World:
    """Services, network and workload of a scenario, built on a fresh SimPy environment.

    ``finish`` and the ``completion``/``status`` arrays are the single place where an instance's
    outcome is recorded; ``check_conservation`` proves that every arrival is accounted for.
    """

    def __init__(
        self, scenario: Scenario, seed: int | None = None, replication: int = 0, trace: int = 0
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.replication = replication
        self.env = simpy.Environment()
        self.immediate = Immediate()
        self.stations: dict[str, Station] = {
            name: Station(
                self.env,
                name,
                "service",
                svc.servers,
                svc.queue_limit,
                self.immediate,
                svc.error_probability,
                replicas=svc.most_replicas,
            )
            for name, svc in scenario.services.items()
        }
        self.faults = Faults(self.env, scenario, self.seed, replication)
        self.counters = Counters()
        self.tallies: dict[str, array] = {}
        """Per-observation tallies by name (e.g. ``schedule_to_start/payment``): instants and
        values, interleaved."""
        self.autoscalers: list[Autoscaler] = []
        self.backlogs: dict[str, Callable[[str], float]] = {}
        """What a service's autoscaler reads as its queue or lag, by service: its consumer group
        replaces the station's own (:meth:`station_backlog`) when it reads a broker."""
        for name, svc in scenario.services.items():
            station = self.stations[name]
            health = self.faults.register(
                name, station, svc.most_replicas, svc.error_probability, per_replica=True
            )
            if svc.autoscale is not None:
                self._autoscale_service(name, svc.autoscale, svc.initial_replicas, svc.concurrency, health)
        self.components: list[Station] = list(self.stations.values())
        self.folder: SpillFolder | None = None
        """Where records are written out of memory (made when first needed, see :meth:`spill`)."""
        self.subscriptions: list[Subscription] = []
        """The consumer groups of the topology's broker (they hand over their records)."""
        self.latency = scenario.network.latency
        self.network = Network(self.env, self.latency, self.draws(self.latency, "net-extra"))
        self.faults.register_network(self.network)
        self.hop = self.network.hop
        """Latency of a hop that only some topologies make (drawn in order of use)."""
        self.dynamic = any(scenario.load[w].closed for w in scenario.workflows)
        """Whether instances are numbered as they are created (closed-loop clients), not
        preallocated per workflow (see the module's docstring)."""
        self.plans: list[WorkflowPlan] = []
        self.drawn: list[np.ndarray] = []
        """Each workflow's arrival instants drawn up front (none for closed-loop clients)."""
        offset = 0
        for wname, wf in scenario.workflows.items():
            load = scenario.load[wname]
            times = (
                np.empty(0)
                if load.closed
                else arrival_times(
                    load, scenario.duration, streams.generator(self.seed, f"arrivals/{wname}", replication)
                )
            )
            size = 0 if self.dynamic else len(times)  # dynamic: counted as they are created
            self.plans.append(self._compile(wname, wf.steps, offset, size))
            self.drawn.append(times)
            offset += size
        self.total = offset
        self.arrival = np.concatenate(self.drawn) if self.drawn else np.empty(0)
        """Arrival instants by global id (dynamic: those drawn up front, in workflow order)."""
        bounds = np.cumsum([0, *(len(times) for times in self.drawn)]).tolist()
        self.drawn = [self.arrival[a:b] for a, b in itertools.pairwise(bounds)]  # views, not a second copy
        self.created = array("d")
        """Dynamic: arrival instants by global id, as instances are created."""
        self.gids: dict[str, array] = {p.name: array("q") for p in self.plans} if self.dynamic else {}
        """Dynamic: the global ids of each workflow's instances, by index."""
        self.clients = [
            Clients(self, plan, scenario.load[plan.name])
            for plan in self.plans
            if scenario.load[plan.name].closed
        ]
        self.waiting: dict[int, simpy.Event] = {}
        """Events to succeed with the outcome of instances a client waits for, by global id."""
        self.tracer: Tracer | None = None
        self.trace_marks: dict[str, deque[float]] = {}
        """Closed-loop workflows traced: instants still to reach, the first instance created at or
        after each being traced (their arrivals cannot be sampled up front)."""
        if trace > 0:
            lo, hi = scenario.warmup_seconds, scenario.duration
            self.tracer = Tracer(
                {
                    p.name: sample_indices(a, lo, hi, trace)
                    for p, a in zip(self.plans, self.drawn, strict=True)
                }
            )
            for c in self.clients:
                self.trace_marks[c.plan.name] = deque(np.linspace(lo, hi, trace, endpoint=False).tolist())
        # Outcomes, one slot per instance, in compact arrays (a run may hold millions).
        self.completion = array("d", [math.nan]) * self.total
        self.status = array("b", [IN_FLIGHT]) * self.total
        self.failed_step = array("i", [-1]) * self.total
        self.async_completion = array("d", [math.nan]) * self.total
        self.async_failures = array("i", [0]) * self.total
        self.async_pending = array("i", [0]) * self.total
        self.undo_start = array("d", [math.nan]) * self.total
        self.undo_end = array("d", [math.nan]) * self.total
        """Inconsistency window of compensated and inconsistent instances: from the first effect
        that had to be undone to the end of the last compensation."""
        idempotent = frozenset(n for n, svc in scenario.services.items() if svc.idempotent)
        self.effects = EffectLedger(self.total, idempotent, self.env)
        """Every application and undo of a step's effect (see :mod:`sim.model.effects`)."""
        self.open = 0
        """Instances and asynchronous steps not yet finished."""
        self.arrivals_over = False
        self.idle = self.env.event()
        """Succeeds when arrivals are over and nothing is open any more."""
        self.quiet: simpy.Event | None = None
        """Once idle: succeeds when the stations have worked off what they still held."""

    # -- building -----------------------------------------------------------------------------

    def draws(self, dist: Spec, name: str) -> Callable[[], float]:
        """Draw function of ``dist`` from the stream ``name`` of this world's seed."""
        return streams.draws(dist, self.seed, name, self.replication)

    def uniforms(self, name: str) -> Callable[[], float]:
        """U(0, 1) draw function from the stream ``name`` of this world."""
        return streams.uniforms(self.seed, name, self.replication)

    def add_component(
        self, name: str, kind: str, servers: int | None, replicas: int = 1
    ) -> tuple[Station, Health]:
        """A coordination component (orchestrator, broker) of the topology being run; it can be
        the target of faults by its name, and its owner reacts to them through its health."""
        station = self.add_station(name, kind, servers)
        return station, self.faults.register(name, station, replicas)

    def autoscale(
        self,
        name: str,
        config: Autoscale,
        health: Health,
        initial: int,
        utilization: Callable[[float, float, int], float],
        backlog: Callable[[str], float],
    ) -> Autoscaler:
        """Put the replicas of the component ``name`` under an autoscaler (started with the run)."""
        scaler = Autoscaler(
            self.env, name, config, health, initial, utilization, backlog, self.tally, self.counters
        )
        self.autoscalers.append(scaler)
        return scaler

    def _autoscale_service(
        self, name: str, config: Autoscale, initial: int, concurrency: int, health: Health
    ) -> None:
        """An autoscaler on a service's replicas: it reads their busy share from the station's
        records, and its queue or lag from the station (or from its consumer group, later)."""
        station = self.stations[name]
        station.track_replicas()
        station.on_idle = health.replica_idle
        meter = BusyMeter([station])

        def utilization(t0: float, t1: float, replicas: int) -> float:
            return meter.busy(t0, t1) / (replicas * concurrency * (t1 - t0))

        self.backlogs[name] = functools.partial(self.station_backlog, station)
        self.autoscale(name, config, health, initial, utilization, lambda m: self.backlogs[name](m))

    @staticmethod
    def station_backlog(station: Station, metric: str) -> float:
        """A station's queue (requests waiting) or lag (waiting or in service: a task queue's
        backlog and the tasks its workers hold)."""
        if metric == "queue":
            return float(station.waiting)
        return float(station.waiting + station.in_service)

    def add_station(self, name: str, kind: str, servers: int | None) -> Station:
        """A station of a coordination component whose owner handles its faults itself."""
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
        workflow = self.scenario.workflows[wname]
        saga = workflow.saga or self.scenario.saga
        bursts = {f.target for f in self.scenario.faults if f.type == "error_burst"}
        may_fail = {
            n
            for n, svc in services.items()
            if svc.error_probability > 0 or svc.business_error_probability > 0
        } | bursts
        net_const = self.latency.is_zero or self.latency.dist == "constant"
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
                (st.index, streams.uniforms(self.seed, f"errors/{k}", self.replication))
                for st, k in zip(steps, key, strict=True)
                if st.service in may_fail
            ],
            retry_work=[
                self.draws(services[st.service].latency, f"retry-work/{k}")
                for st, k in zip(steps, key, strict=True)
            ],
            retry_errors=[streams.uniforms(self.seed, f"retry-errors/{k}", self.replication) for k in key],
            compensation_work=[
                None if undo is None else self.draws(undo.latency, f"undo-work/{k}")
                for undo, k in zip((services[st.service].compensation for st in steps), key, strict=True)
            ],
            compensation_errors=[
                streams.uniforms(self.seed, f"undo-errors/{k}", self.replication) for k in key
            ],
            net_in_draws=None if net_const else [self.draws(self.latency, f"net-in/{k}") for k in key],
            net_out_draws=None if net_const else [self.draws(self.latency, f"net-out/{k}") for k in key],
            net_entry_draw=None if net_const else self.draws(self.latency, f"net-entry/{wname}"),
            no_errors=[2.0] * len(steps),
            business=[services[st.service].business_error_probability for st in steps],
            parallel_undo=saga.order == "parallel",
            deadline=workflow.deadline,
            pivot_stage=next((st.stage for st in steps if st.service == saga.pivot), -1),
        )

    # -- running ------------------------------------------------------------------------------

    def instance(self, plan: WorkflowPlan, index: int, arrival: float) -> Instance:
        """Create instance ``index`` of ``plan`` with all the work it brings, drawn now (a
        dynamic world: the next instance of ``plan``, given its slot now)."""
        gid = self._allocate(plan, index, arrival) if self.dynamic else plan.offset + index
        inst = Instance(plan, index, arrival, gid)
        if self.tracer is not None and self.tracer.wants(plan.name, index):
            inst.marks = {}
        inst.work = [draw() for draw in plan.service_draws]
        if plan.error_draws:
            errors = list(plan.no_errors)
            for k, u in plan.error_draws:
                errors[k] = u()
            inst.errors = errors
        else:
            inst.errors = plan.no_errors
        if plan.net_in_draws is None:
            hop = self.latency.mean
            inst.net_in = inst.net_out = [hop] * len(plan.steps)
            inst.net_entry = hop
        else:
            assert plan.net_out_draws is not None and plan.net_entry_draw is not None
            inst.net_in = [d() for d in plan.net_in_draws]
            inst.net_out = [d() for d in plan.net_out_draws]
            inst.net_entry = plan.net_entry_draw()
        return inst

    def _allocate(self, plan: WorkflowPlan, index: int, arrival: float) -> int:
        """A slot in every per-instance array for the next instance of ``plan`` (a dynamic
        world); return its global id."""
        assert index == plan.count, "a dynamic world creates each workflow's instances in order"
        gid = self.total
        self.total += 1
        plan.count += 1
        self.gids[plan.name].append(gid)
        self.created.append(arrival)
        self.completion.append(math.nan)
        self.status.append(IN_FLIGHT)
        self.failed_step.append(-1)
        self.async_completion.append(math.nan)
        self.async_failures.append(0)
        self.async_pending.append(0)
        self.undo_start.append(math.nan)
        self.undo_end.append(math.nan)
        self.effects.grow()
        marks = self.trace_marks.get(plan.name)
        if marks and arrival >= marks[0] and arrival < self.scenario.duration:
            assert self.tracer is not None
            marks.popleft()
            self.tracer.sampled.setdefault(plan.name, set()).add(index)
        return gid

    def submit(self, plan: WorkflowPlan, arrive: Callable[[Instance], None]) -> simpy.Event:
        """Start the next instance of ``plan`` now (for a client); the event returned succeeds
        with its outcome code when the instance ends (:meth:`finish`)."""
        done = self.env.event()
        inst = self.instance(plan, plan.count, self.env._now)
        self.waiting[inst.gid] = done
        self.open += 1
        arrive(inst)
        return done

    def after(self, delay: float, fn: Callable[[Any], None], arg: Any) -> None:
        """Call ``fn(arg)`` after ``delay`` seconds (at once, without an engine event, if 0)."""
        if delay == 0:
            self.immediate(fn, arg)
        else:
            due(self.env, delay, (fn, arg), _fire)

    def served(self, inst: Instance, k: int, undo: bool, first: bool) -> int:
        """The work of step ``k`` of ``inst`` (``undo``: its compensation) has just ended at its
        service, whoever asked for it: how it ended, :data:`OK`, a :data:`TRANSIENT` error or a
        :data:`BUSINESS` refusal (an error is recorded at its service), and, if it succeeded, its
        effect applied (or undone) in the ledger. The instance's ``first`` attempt compares its own
        uniform draw with the service's business error probability, then with its transient
        error probability *now* on top of it (so an error burst and the baseline share their
        draws); any other attempt draws anew."""
        plan = inst.plan
        if undo:
            compensation = self.scenario.services[plan.steps[k].service].compensation
            assert compensation is not None
            if plan.compensation_errors[k]() < compensation.error_probability:
                return TRANSIENT
            self.effects.undo(inst, k)
            return OK
        station = plan.steps[k].station
        v = inst.errors[k] if first else plan.retry_errors[k]()
        business = plan.business[k]
        if v < business + station.error_probability:
            station.errors.append(self.env._now)
            return BUSINESS if v < business else TRANSIENT
        self.effects.apply(inst, k)
        return OK

    def tally(self, name: str, value: float) -> None:
        """Record one observation of the tally ``name`` now."""
        values = self.tallies.get(name)
        if values is None:
            values = self.tallies[name] = array("d")
        values.append(self.env._now)
        values.append(value)

    def mark(self, inst: Instance, key: object) -> None:
        """Open a span of a traced instance now (a no-op for the others)."""
        if inst.marks is not None:
            inst.marks[key] = self.env._now

    def span(self, inst: Instance, key: object, component: str, operation: str, ok: bool = True) -> None:
        """Close the span opened under ``key`` now and record it (a no-op for untraced instances)."""
        if inst.marks is not None and key in inst.marks:
            assert self.tracer is not None
            start = inst.marks.pop(key)
            status = "ok" if ok else "error"
            self.tracer.record(inst.plan.name, inst.index, component, operation, start, self.env._now, status)

    def finish(self, inst: Instance, status: int, failed_step: int = -1) -> None:
        """Record how ``inst`` ended (once; later calls for the same instance are ignored)."""
        if inst.finished:
            return
        inst.finished = True
        if inst.marks is not None:
            assert self.tracer is not None
            self.tracer.root(inst.plan.name, inst.index, inst.arrival, self.env._now, STATUS_NAMES[status])
        self._close()
        # (the clock may stand a rounding step short of an arrival it was set to reach)
        self.completion[inst.gid] = max(self.env._now, inst.arrival)
        self.status[inst.gid] = status
        self.failed_step[inst.gid] = failed_step
        if self.waiting:
            client = self.waiting.pop(inst.gid, None)
            if client is not None:
                client.succeed(status)

    def record_window(self, inst: Instance, start: float) -> None:
        """Record the inconsistency window of ``inst``: from ``start`` until now."""
        self.undo_start[inst.gid] = start
        self.undo_end[inst.gid] = self.env._now

    def async_done(self, inst: Instance, ok: bool) -> None:
        """Record that one asynchronous step of ``inst`` has finished (hybrid)."""
        gid = inst.gid
        self._close()
        self.async_pending[gid] -= 1
        if not ok:
            self.async_failures[gid] += 1
        if self.async_pending[gid] == 0:
            self.async_completion[gid] = self.env._now

    def async_started(self, inst: Instance) -> None:
        """Record that an asynchronous step of ``inst`` has been dispatched (hybrid)."""
        self.async_pending[inst.gid] += 1
        self.open += 1

    def _close(self) -> None:
        self.open -= 1
        if self.open == 0 and self.arrivals_over and not self.idle.triggered:
            self.idle.succeed()

    def arrivals(self) -> Iterator[tuple[float, WorkflowPlan, int]]:
        """All arrivals drawn up front, of all workflows, in time order (ties: workflow order,
        then index). Turned into Python numbers a chunk at a time: a whole run's as lists would
        take about 70 bytes an arrival for as long as arrivals go on."""
        sizes = [len(times) for times in self.drawn]
        starts = np.cumsum([0, *sizes[:-1]]).tolist()
        ends = np.cumsum(sizes)
        order = np.argsort(self.arrival, kind="stable")
        plans = self.plans
        for lo in range(0, len(order), ARRIVALS_CHUNK):
            if lo:
                self.spill()
            gids = order[lo : lo + ARRIVALS_CHUNK]
            owners = np.searchsorted(ends, gids, side="right").tolist()
            for t, g, i in zip(self.arrival[gids].tolist(), gids.tolist(), owners, strict=True):
                yield t, plans[i], g - starts[i]

    def _source(self, arrive: Callable[[Instance], None]) -> None:
        """Start every workflow instance at its arrival instant: each arrival, once started,
        schedules the next (as a SimPy process would, started now, but without a process)."""
        self._arrive = arrive
        self._upcoming = self.arrivals()
        due(self.env, 0.0, None, self._arrivals, urgent=True)

    def _arrivals(self, event: Due) -> None:
        """The instant of the arrival ``event`` carries has come (none, the first time): start
        it and those due now, then wait for the next."""
        if event._value is not None:
            self._start(event._value)
        env = self.env
        for arrival in self._upcoming:
            if arrival[0] > env._now:
                due(env, arrival[0] - env._now, arrival, self._arrivals)
                return
            self._start(arrival)
        if not self.clients:  # else arrivals are over when the clients stop: at the duration
            self._arrivals_end()

    def _start(self, arrival: tuple[float, WorkflowPlan, int]) -> None:
        t, plan, index = arrival
        self.open += 1
        self._arrive(self.instance(plan, index, t))

    def _arrivals_end(self) -> None:
        self.arrivals_over = True
        if self.open == 0 and not self.idle.triggered:
            self.idle.succeed()

    def run(
        self, arrive: Callable[[Instance], None], progress: Callable[[float], None] | None = None
    ) -> None:
        """Run arrivals for ``duration``, then let open work drain for at most ``drain_time``.

        The run stops as soon as every instance (and asynchronous step) has finished and the
        services have worked off what they still held (abandoned attempts, duplicates: work that
        may still take effect), or at the end of the drain.
        """
        env = self.env
        self.faults.start()
        for scaler in self.autoscalers:
            scaler.start()
        self._source(arrive)
        for clients in self.clients:
            clients.start(arrive)
        duration = self.scenario.duration
        for t in np.linspace(0, duration, 41)[1:].tolist():
            run(env, t)
            self.spill()
            if progress is not None:
                progress(t / duration)
        if self.clients:  # the clock stands at the duration: clients submit nothing from now on
            self._arrivals_end()
        deadline = duration + self.scenario.drain_time
        step = deadline / 40  # (records are written out between steps, as during arrivals)
        while not self.idle.triggered and env._now < deadline:
            run(env, env.any_of([self.idle, env.timeout(min(step, deadline - env._now))]))
            self.spill()
        if self.idle.triggered and env._now < deadline and not self._quiet():
            self.quiet = env.event()
            for station in self.components:
                station.after_finish = self._maybe_quiet
            run(env, env.any_of([self.quiet, env.timeout(deadline - env._now)]))
        self.reconcile_effects()
        self.check_conservation()
        self.effects.check()
        if self.tracer is not None:
            # A root span says how its instance ended, as finally counted: a late effect may
            # have turned a failed instance inconsistent since its span was written.
            plans = {p.name: p for p in self.plans}
            for span in self.tracer.spans:
                if span.parent == -1:
                    span.status = STATUS_NAMES[self.status[self._gid(plans[span.workflow], span.instance)]]
            # Sampled instances still running get an open-ended root span.
            arrivals = self.arrivals_by_gid()
            for plan in self.plans:
                for index in sorted(self.tracer.sampled.get(plan.name, ())):
                    gid = self._gid(plan, index)
                    if self.status[gid] == IN_FLIGHT:
                        arrival = float(arrivals[gid])
                        self.tracer.root(plan.name, index, arrival, float(env._now), "in_flight")

    def spill(self) -> None:
        """Let every station write its finished visits out of memory (:meth:`Station.spill`),
        every consumer group the messages that left it, and the effect ledger its entries
        (:meth:`EffectLedger.spill`): called every :data:`ARRIVALS_CHUNK` arrivals and at every
        fortieth of the arrivals and of the drain, so that a long run holds a bounded number."""
        holders: list[Station | EffectLedger | Subscription] = [
            *self.components,
            self.effects,
            *self.subscriptions,
        ]
        for holder in holders:
            if holder.crowded():
                if self.folder is None:
                    self.folder = SpillFolder()
                holder.spill(self.folder)

    def _gid(self, plan: WorkflowPlan, index: int) -> int:
        """The global id of instance ``index`` of ``plan`` (one that has arrived)."""
        return self.gids[plan.name][index] if self.dynamic else plan.offset + index

    def arrivals_by_gid(self) -> np.ndarray:
        """The arrival instant of every instance, by global id (dynamic: a copy, so the array
        of arrivals can still grow)."""
        return np.array(self.created, dtype=float) if self.dynamic else self.arrival

    def _quiet(self) -> bool:
        """Whether no station holds a request (in service, on a draining replica, or waiting)."""
        return all(
            st.busy == 0 and not st.queue and (st.rbusy is None or not any(st.rbusy))
            for st in self.components
        )

    def _maybe_quiet(self) -> None:
        if self.quiet is not None and not self.quiet.triggered and self._quiet():
            self.quiet.succeed()

    def reconcile_effects(self) -> None:
        """Outcomes as the ledger has them at the end of the run, for the workflows whose effects
        changed after they had ended. One that ended failed, compensated or lost while an effect
        of it landed afterwards (an abandoned attempt's late work, a duplicate) is inconsistent,
        its window running to the end of the run; one that ended inconsistent but whose last
        standing effect a late compensation undid afterwards (one its engine had given up
        waiting for) is compensated, its window ending with that undo."""
        ledger = self.effects
        standing = np.frombuffer(ledger.standing, dtype=np.int32)
        status = np.frombuffer(self.status, dtype=np.int8)
        late = np.nonzero((standing > 0) & np.isin(status, (FAILED, COMPENSATED, LOST)))[0]
        now = float(self.env._now)
        for gid in late.tolist():
            status[gid] = INCONSISTENT
            if math.isnan(self.undo_start[gid]):
                self.undo_start[gid] = ledger.first[gid]
            self.undo_end[gid] = now
        healed = np.nonzero((standing == 0) & (status == INCONSISTENT) & ~np.isnan(ledger.first))[0]
        if healed.size:
            undos = [(g[k == UNDONE], t[k == UNDONE]) for t, g, _, k in ledger.record().chunks()]
            last = _latest(np.concatenate([u[0] for u in undos]), np.concatenate([u[1] for u in undos]))
            for gid in healed.tolist():
                status[gid] = COMPENSATED
                self.undo_end[gid] = max(self.undo_end[gid], last.get(gid, self.undo_end[gid]))

    def check_conservation(self) -> None:
        """Every arrival is completed, failed, compensated, inconsistent, lost or still in flight,
        exactly once; raise if not."""
        status = np.frombuffer(self.status, dtype=np.int8)  # views: a long run's arrays are large
        counts = {code: int(np.count_nonzero(status == code)) for code in STATUS_NAMES}
        if sum(counts.values()) != self.total:
            raise AssertionError(f"conservation violated: {self.total} arrived, outcomes {counts}")
        done = np.frombuffer(self.completion, dtype=float)
        finished = ~np.isnan(done)
        if int(finished.sum()) != sum(counts[c] for c in FINISHED):
            raise AssertionError("conservation violated: finished instances without an outcome")
        arrival = self.arrivals_by_gid()
        if arrival.size != self.total:
            raise AssertionError(
                f"conservation violated: {self.total} arrived, {arrival.size} arrival instants"
            )
        if np.any(done[finished] > self.env._now) or np.any(done[finished] < arrival[finished]):
            raise AssertionError("conservation violated: a completion outside the run")
        open_async = int(np.sum(self.async_pending))
        if self.open != counts[IN_FLIGHT] + open_async:
            raise AssertionError(
                f"conservation violated: {self.open} open, {counts[IN_FLIGHT]} in flight + {open_async} async"
            )

    def records(self, topology: str, kind: str, started: float, faulted: bool = True) -> TopologyRun:
        """Everything this world recorded, as plain arrays (``started``: the wall-clock instant,
        from :func:`time.perf_counter`, at which the world was built)."""
        counters: dict[str, float] = dict(self.counters.as_dict())
        counters["lost_work"] = float(sum(st.lost_work for st in self.components))
        outcomes = OutcomeRecord(
            arrival=self.arrivals_by_gid(),
            completion=as_array(self.completion, float),
            status=as_array(self.status, np.int8),
            failed_step=as_array(self.failed_step, np.int32),
            inconsistency_start=as_array(self.undo_start, float),
            inconsistency_end=as_array(self.undo_end, float),
            async_completion=as_array(self.async_completion, float),
            async_pending=as_array(self.async_pending, np.int32),
            async_failures=as_array(self.async_failures, np.int32),
        )
        effects = self.effects.record()
        offsets = [p.offset for p in self.plans]
        if self.dynamic:
            # Global ids in creation order → each workflow's instances contiguous, by index.
            order = np.concatenate([np.array(self.gids[p.name], dtype=np.int64) for p in self.plans])
            outcomes = OutcomeRecord(**{k: v[order] for k, v in vars(outcomes).items()})
            renumber = np.empty(self.total, dtype=np.int64)
            renumber[order] = np.arange(self.total, dtype=np.int64)
            effects.gid = renumber[effects.gid].astype(effects.gid.dtype)
            effects.renumber = renumber
            offsets = np.cumsum([0, *(p.count for p in self.plans[:-1])]).tolist()
        return TopologyRun(
            topology=topology,
            kind=kind,
            seed=self.seed,
            replication=self.replication,
            workflows=[
                WorkflowRecord(p.name, offset, p.count, [s.service for s in p.steps])
                for p, offset in zip(self.plans, offsets, strict=True)
            ],
            outcomes=outcomes,
            components=[
                ComponentRecord(
                    name=st.name,
                    kind=st.kind,
                    servers=st.servers,
                    arrived=as_array(st.arrived, float),
                    started=as_array(st.started, float),
                    ended=as_array(st.ended, float),
                    rejected=as_array(st.rejected, float),
                    aborted=as_array(st.aborted, float),
                    errors=as_array(st.errors, float),
                    left=as_array(st.left, np.int64),
                    group=st.group,
                    held=as_array(st.held, np.int64),
                    held_at=as_array(st.held_at, float),
                    spilled=st.spilled,
                )
                for st in self.components
            ],
            end_time=float(self.env._now),
            wall_seconds=time.perf_counter() - started,
            counters=counters,
            faults=list(self.faults.windows),
            spans=[] if self.tracer is None else list(self.tracer.spans),
            faulted=faulted,
            tallies={k: np.array(v, dtype=float).reshape(-1, 2) for k, v in self.tallies.items()},
            groups=[g.record() for g in self.subscriptions],
            effects=effects,
        )


ARRIVALS_CHUNK = 65_536
"""Arrivals turned into Python numbers at a time (:meth:`World.arrivals`)."""


def _fire(event: Due) -> None:
    fn, arg = event._value
    fn(arg)
