"""Central orchestration: an engine drives every workflow instance step by step.

The engine (Temporal, Camunda/Zeebe, Step Functions style) takes a *decision* when a workflow
starts and one after every reply it receives. A decision occupies one engine worker for the step
overhead (persisting the workflow's state, dispatching commands); when workers are all busy,
decisions wait in the engine's queue. Each step is a request over the network to the service, the
service's work, and a reply over the network back to the engine. A parallel group fans out from
the engine and joins there: the engine goes on when the last branch has replied.

Calls follow the service's resilience policies, applied by the engine without a decision (as
Temporal retries activities server-side): a circuit breaker may fail the call fast, a bulkhead may
refuse it, a timeout abandons an attempt (whose work goes on at the service, wasted), a call to a
down or partitioned service fails after the connect timeout, a crash resets it, and failed
attempts are retried with backoff until the retry policy is exhausted.

A step that fails for good fails the workflow. The engine waits for the replies of steps still
running (their pending retries are cancelled), then compensates every step that took effect, one
by one in reverse order, each compensation a call with the service's policies (a saga); the
workflow ends compensated, inconsistent (a compensation failed or none is defined) or failed
(nothing took effect). The work of an abandoned (timed-out) attempt still runs at the service,
wasted: the engine never learns of its effect.

Engine outages: a durable engine (Temporal-like) keeps every workflow's state; decisions wait for
it and resume, and replies that arrive meanwhile queue. A non-durable engine loses the workflows
in flight when it goes down. A standby takes over after ``failover_time``. New workflows arriving
while it is down wait, or are rejected (``when_down``).
"""

from __future__ import annotations

from typing import NamedTuple

from sim.model.coordinators.base import Coordinator
from sim.model.outcomes import COMPLETED, FAILED
from sim.model.resilience import Breaker, Slots
from sim.model.station import Station
from sim.model.workflow import Instance, StepPlan
from sim.model.world import World
from sim.scenario.models import Orchestrator, Topology

START = -1
"""Pseudo step index of the decision that starts a workflow."""


class Reply(NamedTuple):
    """What reaches the engine and needs a decision: the start of a workflow (step ``START``),
    or the outcome of a step's call (``undo``: of a compensation)."""

    inst: Instance
    step: int
    ok: bool = True
    undo: bool = False


class Attempt:
    """One attempt of a call from the engine to a service (``undo``: a compensation)."""

    __slots__ = ("inst", "k", "number", "ok", "open", "sent", "slot", "undo")

    def __init__(self, inst: Instance, k: int, number: int, undo: bool) -> None:
        self.inst = inst
        self.k = k
        self.number = number
        self.undo = undo
        self.open = True
        self.sent = False
        self.slot = False
        self.ok = False
        """The answer the service gave (or the caller concluded), once there is one."""


class Orchestration(Coordinator):
    """Coordinates every step through a central engine."""

    def __init__(self, world: World, name: str, config: Topology) -> None:
        super().__init__(world, name, config)
        engine = config.orchestrator or Orchestrator()
        self.engine_config = engine
        self.engine, self.health = world.add_component(
            "orchestrator", "orchestrator", engine.servers, engine.replicas
        )
        self.health.on_change.append(self._engine_changed)
        self.overhead = world.draws(engine.step_overhead, "orchestrator/overhead")
        self.extra_overhead = world.draws(engine.step_overhead, "orchestrator/extra-overhead")
        services = self.services
        counters = world.counters
        self.breakers = {
            n: Breaker(s.circuit_breaker, counters) for n, s in services.items() if s.circuit_breaker
        }
        self.bulkheads = {n: Slots(s.bulkhead, counters) for n, s in services.items() if s.bulkhead}
        self.timeouts = {n: s.timeout for n, s in services.items() if s.timeout is not None}
        self.running: dict[int, Instance] = {}
        """Instances in flight, kept only for a non-durable engine, which loses them when it fails."""

    # -- the life of a workflow, as the engine sees it -----------------------------------------

    def arrive(self, inst: Instance) -> None:
        """A client starts the workflow: one message to the engine, then the first decision."""
        if self.engine.down and self.engine_config.when_down == "reject":
            self.world.finish(inst, FAILED)
            return
        if not self.engine_config.durable:
            self._track(inst)
        # The engine time of the start decision and of the decision after each step is drawn now,
        # in arrival order, so that a run with faults and its baseline give each instance the
        # same engine times; extra decisions (compensations) draw from their own stream.
        inst.overheads = [self.overhead() for _ in range(len(inst.plan.steps) + 1)]
        self.world.counters.messages += 1
        self.world.after(inst.net_entry, self.decide, Reply(inst, START))

    def decide(self, reply: Reply) -> None:
        """A start request or a reply reaches the engine and waits for a worker."""
        self.world.counters.decisions += 1
        inst, k, _, undo = reply
        if inst.marks is not None:
            self.world.mark(inst, ("decide", k, undo))
        work = self.extra_overhead() if undo else inst.overheads[k + 1]
        self.engine.submit(work, self.decided, reply, self._decision_aborted)

    def decided(self, reply: Reply) -> None:
        """The engine has persisted the reply; it dispatches what comes next."""
        inst, k, ok, undo = reply
        if inst.marks is not None:
            self.world.span(inst, ("decide", k, undo), "orchestrator", "start" if k == START else "decide")
        if inst.finished:
            return
        if k == START:
            self.start_stage(inst, 0)
        elif undo:
            self.undone(inst, ok)
        else:
            inst.calls -= 1
            if ok:
                inst.effects.append(k)
            if inst.failure >= 0 or not ok:
                if inst.failure < 0:
                    inst.failure = k
                self.compensate(inst)
            else:
                self.step_done(inst, inst.plan.steps[k])

    def step_done(self, inst: Instance, step: StepPlan) -> None:
        """One step has succeeded: go on in its branch, or join its stage."""
        if step.next_in_branch is not None:
            self.dispatch(inst, step.next_in_branch)
            return
        inst.pending -= 1
        if inst.pending == 0:
            self.stage_done(inst, step.stage)

    def stage_done(self, inst: Instance, stage: int) -> None:
        if stage + 1 < len(inst.plan.stages):
            self.start_stage(inst, stage + 1)
        else:
            self.world.finish(inst, COMPLETED)

    def start_stage(self, inst: Instance, stage: int) -> None:
        """Fan out the first step of every branch of ``stage``."""
        branches = inst.plan.stages[stage]
        inst.pending = len(branches)
        for branch in branches:
            self.dispatch(inst, branch[0])

    def dispatch(self, inst: Instance, step: StepPlan) -> None:
        """Call the service of ``step``."""
        inst.calls += 1
        self.attempt(Attempt(inst, step.index, 1, False))

    # -- sagas --------------------------------------------------------------------------------

    def compensate(self, inst: Instance) -> None:
        """Once no step is running, undo the steps that took effect, last first."""
        if inst.calls > 0 or inst.undoing:
            return
        while inst.effects:
            k = inst.effects.pop()
            if self.services[inst.plan.steps[k].service].compensation is None:
                inst.undo_failed = True
                continue
            inst.undoing = 1
            self.attempt(Attempt(inst, k, 1, True))
            return
        self.saga.settle(inst)

    def undone(self, inst: Instance, ok: bool) -> None:
        inst.undoing = 0
        if not ok:
            inst.undo_failed = True
        self.compensate(inst)

    # -- calls and their resilience policies --------------------------------------------------

    def attempt(self, a: Attempt) -> None:
        """Try a call: the breaker and the bulkhead may fail it fast."""
        if not self.breakers and not self.bulkheads:
            self.send(a)
            return
        service = a.inst.plan.steps[a.k].service
        breaker = self.breakers.get(service)
        if breaker is not None and not breaker.allow(self.world.env.now):
            self.closed(a, False)
            return
        slots = self.bulkheads.get(service)
        if slots is not None:
            a.slot = True
            if not slots.acquire(self.send, a):
                a.slot = False
                self.closed(a, False)
            return
        self.send(a)

    def send(self, a: Attempt) -> None:
        """The request leaves the engine (with a timer, if the service has a timeout)."""
        world = self.world
        inst, k = a.inst, a.k
        service = inst.plan.steps[k].service
        a.sent = True
        if inst.marks is not None:
            world.mark(inst, ("call", k, a.number, a.undo))
        world.counters.messages += 1
        world.counters.attempts += 1
        delay = inst.net_in[k] if a.number == 1 and not a.undo else world.hop()
        timeout = self.timeouts.get(service)
        if timeout is not None:
            world.after(timeout, self.timed_out, a)
        cut = world.network.cut("orchestrator", service)
        if cut is not None:
            if cut.mode == "fail":
                world.after(self.services[service].connect_timeout, self.answer, a)
                return
            delay += world.network.heals_in(cut)
        world.after(delay, self.reach, a)

    def reach(self, a: Attempt) -> None:
        """The request reaches the service: refused if it is down, else queued or rejected."""
        inst, k = a.inst, a.k
        station: Station = inst.plan.steps[k].station
        if inst.marks is not None:
            self.world.mark(inst, ("handle", k, a.number, a.undo))
        if station.down:
            self.world.after(self.services[station.name].connect_timeout, self.answer, a)
            return
        if a.undo:
            work = inst.plan.compensation_work[k]()  # type: ignore[misc]
        else:
            work = inst.work[k] if a.number == 1 else inst.plan.retry_work[k]()
        if not station.submit(work, self.served, a, self.reset):
            self.reply(a, False)

    def served(self, a: Attempt) -> None:
        inst, k = a.inst, a.k
        if a.undo:
            undo = self.services[inst.plan.steps[k].service].compensation
            assert undo is not None
            ok = inst.plan.compensation_errors[k]() >= undo.error_probability
        else:
            ok = self.world.succeeded(inst, k, None if a.number == 1 else inst.plan.retry_errors[k]())
            if ok and a.open:  # an abandoned attempt's late work is wasted, unknown to the saga
                self.saga.took_effect(inst)
        if inst.marks is not None:
            operation = "compensate" if a.undo else "handle"
            self.world.span(inst, ("handle", k, a.number, a.undo), inst.plan.steps[k].service, operation, ok)
        self.reply(a, ok)

    def reset(self, a: Attempt) -> None:
        """A crash aborted the request in service: the connection is reset."""
        self.reply(a, False)

    def reply(self, a: Attempt, ok: bool) -> None:
        """The service answers the engine over the network."""
        world = self.world
        world.counters.messages += 1
        delay = a.inst.net_out[a.k] if a.number == 1 and not a.undo else world.hop()
        a.ok = ok
        world.after(delay, self.answer, a)

    def timed_out(self, a: Attempt) -> None:
        if a.open:
            self.closed(a, False)

    def answer(self, a: Attempt) -> None:
        if a.open:  # else the attempt had timed out: its late reply is dropped
            self.closed(a, a.ok)

    def closed(self, a: Attempt, ok: bool) -> None:
        """An attempt is over: record it, and retry or report to the engine."""
        a.open = False
        service = a.inst.plan.steps[a.k].service
        if a.inst.marks is not None:
            what = f"{'undo' if a.undo else 'call'} {service}" + (
                f" (attempt {a.number})" if a.number > 1 else ""
            )
            self.world.span(a.inst, ("call", a.k, a.number, a.undo), "orchestrator", what, ok)
        if a.sent and service in self.breakers:
            self.breakers[service].record(ok, self.world.env.now)
        if a.slot:
            self.bulkheads[service].release()
        if ok:
            self.decide(Reply(a.inst, a.k, True, a.undo))
            return
        retry = self.retries.get(service)
        # A failed workflow's other calls are not retried (the engine cancels them); its
        # compensations are.
        failing = a.inst.finished or (a.inst.failure >= 0 and not a.undo)
        if retry is not None and retry.allows(a.number) and not failing:
            wait = retry.next_delay(a.number)
            self.world.after(wait, self.attempt, Attempt(a.inst, a.k, a.number + 1, a.undo))
            return
        self.decide(Reply(a.inst, a.k, False, a.undo))

    # -- engine faults ------------------------------------------------------------------------

    def _track(self, inst: Instance) -> None:
        running = self.running
        running[inst.gid] = inst
        if len(running) > 4096 and len(running) % 4096 == 0:
            self.running = {g: i for g, i in running.items() if not i.finished}

    def _decision_aborted(self, reply: Reply) -> None:
        """A decision in progress when the engine failed: a durable engine redoes it."""
        if self.engine_config.durable:
            self.engine.submit(self.extra_overhead(), self.decided, reply, self._decision_aborted)

    def _engine_changed(self, station: Station, went_down: bool) -> None:
        if not went_down:
            return
        if not self.engine_config.durable:
            lost, self.running = self.running, {}
            for inst in lost.values():
                if not inst.finished:
                    self.saga.lose(inst)
            station.drop_queue()
        if self.engine_config.failover_time is not None:
            self.world.after(self.engine_config.failover_time, self._take_over, station)

    def _take_over(self, station: Station) -> None:
        """The standby engine takes over with full capacity."""
        self.health.take_over()
