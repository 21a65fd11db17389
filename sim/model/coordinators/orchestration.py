"""Central orchestration: an engine drives every workflow instance step by step.

The engine (Temporal, Camunda/Zeebe, Step Functions; modelled in :mod:`sim.model.engine`) takes
a *decision* when a workflow starts and one after every reply it receives, on the workflow's
shard; once a decision's writes commit, its commands go out: each dispatched step reaches its
service after ``dispatch_latency`` and a network hop. A parallel group fans out from the engine
and joins there: the engine goes on when the last branch has replied.

How a step reaches its service depends on ``dispatch``:

* **push** (Step Functions calling Lambda or HTTP): the engine calls the service. A call to a
  down or partitioned service fails after the connect timeout, a crash resets it, and the
  service's ``timeout`` abandons an attempt (whose work goes on at the service, wasted).
* **poll** (Temporal, Zeebe): the engine puts a task in the service's task queue and the
  service's workers take tasks when they are free. A down service leaves its tasks waiting, with
  no failure: they are worked off when it is back, as a choreographed consumer catches up. The
  Temporal timeouts apply per service: ``schedule_to_start`` (a task waiting too long fails the
  step, without retry, as in Temporal), ``start_to_close`` (an attempt running too long fails
  and is retried; also when a crashed worker's task is noticed, unless ``heartbeat`` notices it
  sooner) and ``schedule_to_close`` (all attempts together). Services without a retry policy use
  Temporal's default: 1 s, ×2, at most 100 s, unlimited attempts, no jitter.

Either way calls follow the service's resilience policies, applied by the engine without a
decision (as Temporal retries activities server-side): a circuit breaker may fail the call fast,
a bulkhead may refuse it, and failed attempts are retried with backoff until the retry policy is
exhausted or ``schedule_to_close`` has passed. Every action of the engine waits while the
workflow's shard is down.

A step that fails for good fails the workflow. The engine waits for the replies of steps still
running (their pending retries are cancelled), then compensates every step that took effect, one
by one in reverse order, each compensation a call with the service's policies (a saga); the
workflow ends compensated, inconsistent (a compensation failed or none is defined) or failed
(nothing took effect). The work of an abandoned (timed-out) attempt still runs at the service,
wasted: the engine never learns of its effect.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.model.coordinators.base import Coordinator
from sim.model.engine import Engine
from sim.model.outcomes import COMPLETED, FAILED, LOST
from sim.model.resilience import Breaker, RetryPolicy, Slots
from sim.model.station import JobOptions, Station
from sim.model.workflow import Instance, StepPlan
from sim.model.world import BUSINESS, OK, World
from sim.scenario.engine import Orchestrator
from sim.scenario.models import Retry, Topology

START = -1
"""Pseudo step index of the decision that starts a workflow."""

TEMPORAL_RETRY = Retry(max_attempts=None, initial=1.0, multiplier=2.0, max_backoff=100.0, jitter="none")
"""Temporal's default activity retry policy: the default under poll dispatch."""

JOB_TIMEOUT = 300.0
"""Default start-to-close under poll (seconds): the job timeout of Zeebe's Java client."""


class Reply:
    """What reaches the engine and needs a decision: the start of a workflow (step ``START``),
    or the outcome of a step's call (``undo``: of a compensation)."""

    __slots__ = ("inst", "ok", "step", "undo")

    def __init__(self, inst: Instance, step: int, ok: bool = True, undo: bool = False) -> None:
        self.inst = inst
        self.step = step
        self.ok = ok
        self.undo = undo


class Activity:
    """All attempts of one call (a step, or its compensation) that has a schedule-to-close
    limit: its deadline, and the attempt in progress."""

    __slots__ = ("current", "deadline", "done", "inst")

    def __init__(self, inst: Instance, deadline: float) -> None:
        self.inst = inst
        self.deadline = deadline
        self.done = False
        self.current: Attempt | None = None


class Attempt:
    """One attempt of a call from the engine to a service (``undo``: a compensation)."""

    __slots__ = (
        "activity",
        "began",
        "cost",
        "inst",
        "k",
        "late",
        "number",
        "ok",
        "open",
        "retryable",
        "scheduled",
        "sent",
        "slot",
        "undo",
        "visit",
    )

    def __init__(self, inst: Instance, k: int, number: int, undo: bool, activity: Activity | None) -> None:
        self.inst = inst
        self.k = k
        self.number = number
        self.undo = undo
        self.activity = activity
        self.open = True
        self.sent = False
        self.slot = False
        self.ok = False
        """The answer the service gave (or the caller concluded), once there is one."""
        self.retryable = True
        self.late = False
        """Whether it timed out (a retry after it costs a retry budget more)."""
        self.cost = 0
        """Retry-budget tokens this attempt took (0: a first attempt, or no budget)."""
        self.began = 0.0
        """When it went out (its duration is judged by a breaker's slow-call threshold)."""
        self.scheduled = 0.0
        self.visit = -1
        """The task's visit at the service's station once queued there (its start time is
        recorded there), else -1."""


class Orchestration(Coordinator):
    """Coordinates every step through a central engine."""

    def __init__(self, world: World, name: str, config: Topology) -> None:
        super().__init__(world, name, config)
        engine = config.orchestrator or Orchestrator()
        self.engine_config = engine
        self.engine = Engine(world, engine, self.saga, self.decided)
        self.engine.forgotten = self._forgotten
        self.up = self.engine.up
        """Whether each shard of the engine is up (read on every reply: an engine action)."""
        self.poll = engine.dispatch == "poll"
        self.cpu = (
            None if engine.decision_cpu.is_zero else world.draws(engine.decision_cpu, "orchestrator/cpu")
        )
        self.dispatch_draw = (
            None
            if engine.dispatch_latency.is_zero
            else world.draws(engine.dispatch_latency, "orchestrator/dispatch")
        )
        self.extra_dispatch = world.draws(engine.dispatch_latency, "orchestrator/extra-dispatch")
        self.zeros: dict[str, list[float]] = {}
        services = self.services
        counters = world.counters
        self.breakers = {
            n: Breaker(s.circuit_breaker, counters) for n, s in services.items() if s.circuit_breaker
        }
        self.bulkheads = {n: Slots(s.bulkhead, counters) for n, s in services.items() if s.bulkhead}
        self.call_retries: dict[str, RetryPolicy] = dict(self.retries)
        """The retry policy of the engine's calls to each service."""
        if self.poll:
            for n in services:
                self.call_retries.setdefault(n, RetryPolicy(TEMPORAL_RETRY, self.jitters[n]))
            self.timeouts = {n: s.start_to_close or s.timeout or JOB_TIMEOUT for n, s in services.items()}
        else:
            self.timeouts = {n: s.timeout for n, s in services.items() if s.timeout is not None}
        self.to_start = {n: s.schedule_to_start for n, s in services.items() if s.schedule_to_start}
        self.to_close = {n: s.schedule_to_close for n, s in services.items() if s.schedule_to_close}
        self.heartbeats = {n: s.heartbeat for n, s in services.items() if s.heartbeat}
        self.task_options = JobOptions(on_start=self.started)
        self.counters = counters

    # -- the life of a workflow, as the engine sees it -----------------------------------------

    def arrive(self, inst: Instance) -> None:
        """A client starts the workflow: one message to the engine, then the first decision."""
        self.watch(inst)
        self.engine.place(inst)
        wait = self.engine.admission(inst)
        if wait is None:
            self.world.finish(inst, FAILED)
            return
        # The engine work of the start decision and of the decision after each step, and each
        # step's dispatch latency, are drawn now, in arrival order, so that a run with faults and
        # its baseline give each instance the same engine times; extra decisions and dispatches
        # (retries, compensations) draw from their own streams.
        n = len(inst.plan.steps)
        zeros = self.zeros.get(inst.plan.name)
        if zeros is None:
            zeros = self.zeros[inst.plan.name] = [0.0] * (n + 1)
        inst.overheads = zeros if self.cpu is None else [self.cpu() for _ in range(n + 1)]
        inst.dispatch = zeros if self.dispatch_draw is None else [self.dispatch_draw() for _ in range(n)]
        self.world.counters.messages += 1
        self.world.counters.actions += 1
        self.world.after(inst.net_entry + wait, self.decide, Reply(inst, START))

    def decide(self, reply: Reply) -> None:
        """A start request or a reply reaches the engine: a decision on the workflow's shard."""
        self.world.counters.decisions += 1
        inst, k, undo = reply.inst, reply.step, reply.undo
        if inst.marks is not None:
            self.world.mark(inst, ("decide", k, undo))
        cpu = self.engine.extra_cpu() if undo else inst.overheads[k + 1]
        self.engine.decide(inst, cpu, reply)

    def decided(self, reply: Reply) -> None:
        """The decision has committed; its commands go out."""
        inst, k, ok, undo = reply.inst, reply.step, reply.ok, reply.undo
        if inst.marks is not None:
            self.world.span(inst, ("decide", k, undo), "orchestrator", "start" if k == START else "decide")
        if inst.finished:
            return
        if k == START:
            if inst.failure >= 0:  # overdue before it began
                self.compensate(inst)
            else:
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
        if inst.plan.pivot_stage >= 0:
            self.saga.passes(inst, stage)
        branches = inst.plan.stages[stage]
        inst.pending = len(branches)
        for branch in branches:
            self.dispatch(inst, branch[0])

    def dispatch(self, inst: Instance, step: StepPlan) -> None:
        """Call the service of ``step``."""
        inst.calls += 1
        k = step.index
        self.attempt(Attempt(inst, k, 1, False, None) if not self.to_close else self._first(inst, k, False))

    def _first(self, inst: Instance, k: int, undo: bool) -> Attempt:
        """The first attempt of a call, with its schedule-to-close deadline."""
        limit = self.to_close.get(inst.plan.steps[k].service)
        if limit is None:
            return Attempt(inst, k, 1, undo, None)
        activity = Activity(inst, self.world.env._now + limit)
        a = Attempt(inst, k, 1, undo, activity)
        self.world.after(limit, self._expire, activity)
        return a

    # -- sagas --------------------------------------------------------------------------------

    def overdue(self, inst: Instance) -> None:
        """The workflow's deadline: a timer of the engine (it fires when the shard is up)."""
        self.engine.act(inst, self._overdue, inst)

    def _overdue(self, inst: Instance) -> None:
        """The engine fails the workflow: no call is retried any more, and once none is
        running, its saga begins."""
        if inst.finished or inst.failure >= 0:
            return
        self.world.counters.deadlines += 1
        inst.failure = self.fails_at(inst)
        self.compensate(inst)

    def compensate(self, inst: Instance) -> None:
        """Once no step is running, the engine calls the compensations the saga's order allows
        (each a call with the service's policies, and a decision); when none is left, the
        workflow ends."""
        started = self.saga.next_compensations(inst)
        for k in started:
            inst.undoing += 1
            self.attempt(self._first(inst, k, True))
        if not started and inst.calls == 0 and inst.undoing == 0:
            self.saga.settle(inst)

    def undone(self, inst: Instance, ok: bool) -> None:
        inst.undoing -= 1
        if not ok:
            inst.undo_failed = True
        self.compensate(inst)

    # -- calls and their resilience policies --------------------------------------------------

    def attempt(self, a: Attempt) -> None:
        """Try a call: the breaker and the bulkhead may fail it fast."""
        if a.activity is not None:
            a.activity.current = a
        if not self.breakers and not self.bulkheads:
            self.send(a)
            return
        service = a.inst.plan.steps[a.k].service
        breaker = self.breakers.get(service)
        if breaker is not None and not breaker.allow(self.world.env._now):
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
        """The command leaves the engine: a request to the service (push) or a task for its
        task queue (poll), after the dispatch latency and a network hop."""
        world = self.world
        inst, k = a.inst, a.k
        service = inst.plan.steps[k].service
        a.sent = True
        a.began = world.env._now
        if inst.marks is not None:
            world.mark(inst, ("call", k, a.number, a.undo))
        counters = self.counters
        counters.messages += 1
        counters.attempts += 1
        counters.actions += 1
        first = a.number == 1 and not a.undo
        delay = (inst.dispatch[k] + inst.net_in[k]) if first else (self.extra_dispatch() + world.hop())
        cut = world.network.cut("orchestrator", service) if world.network.any_cut else None
        if self.poll:
            a.scheduled = world.env._now
            limit = self.to_start.get(service)
            if limit is not None:
                world.after(limit, self._engine_timer, (self.schedule_timed_out, a))
            if cut is not None:  # the workers cannot poll: the task waits until the link heals
                delay += world.network.heals_in(cut)
            world.after(delay, self.enqueue, a)
            return
        timeout = self.timeouts.get(service)
        if timeout is not None:
            world.after(timeout, self._engine_timer, (self.timed_out, a))
        if cut is not None:
            if cut.mode == "fail":
                world.after(self.services[service].connect_timeout, self.answer, a)
                return
            delay += world.network.heals_in(cut)
        world.after(delay, self.reach, a)

    def _work(self, a: Attempt) -> float:
        inst, k = a.inst, a.k
        if a.undo:
            return inst.plan.compensation_work[k]()  # type: ignore[misc]
        return inst.work[k] if a.number == 1 else inst.plan.retry_work[k]()

    def _forgotten(self, what: object) -> None:
        """A non-durable engine dropped an action of a workflow it lost: a call still open is
        over, unanswered. It gives its bulkhead permit back (the engine that held the permit is
        gone with the call), and its breaker counts it failed (a half-open breaker's probe
        always comes back)."""
        if isinstance(what, tuple):  # a timer's (action, attempt)
            what = what[1]
        if not isinstance(what, Attempt) or not what.open:
            return
        what.open = False
        service = what.inst.plan.steps[what.k].service
        if what.slot:
            self.bulkheads[service].release()
        if what.sent and service in self.breakers:
            now = self.world.env._now
            self.breakers[service].record(False, now, now - what.began)

    def reach(self, a: Attempt) -> None:
        """Push: the request reaches the service: refused if it is down, else queued or rejected."""
        inst, k = a.inst, a.k
        if inst.finished and self.world.status[inst.gid] == LOST:
            self._forgotten(a)
            return  # a non-durable engine lost the workflow before the command left it
        station: Station = inst.plan.steps[k].station
        if inst.marks is not None:
            self.world.mark(inst, ("handle", k, a.number, a.undo))
        if station.down:
            self.world.after(self.services[station.name].connect_timeout, self.answer, a)
            return
        work = inst.work[k] if a.number == 1 and not a.undo else self._work(a)
        if station.submit(work, self.served, a, self.reset) < 0:
            self.reply(a, False)

    def enqueue(self, a: Attempt) -> None:
        """Poll: the task is in the service's task queue, waiting for a free worker (however
        long the service is down); a full queue refuses it."""
        if not a.open:
            return  # timed out (schedule-to-close) before it got there
        inst, k = a.inst, a.k
        if inst.finished and self.world.status[inst.gid] == LOST:
            self._forgotten(a)
            return  # a non-durable engine lost the workflow before the command left it
        if inst.marks is not None:
            self.world.mark(inst, ("handle", k, a.number, a.undo))
        station = inst.plan.steps[k].station
        a.visit = station.visit_count()  # the visit submit gives it, read by started()
        a.visit = station.submit(self._work(a), self.served, a, self.crashed, self.task_options)
        if a.visit < 0:
            self.reply(a, False)

    def started(self, a: Attempt) -> None:
        """Poll: a worker took the task: the schedule-to-start latency, and the start-to-close
        clock (a timer only when the work will outlast it: its length is known as it starts)."""
        world = self.world
        now = world.env._now
        step = a.inst.plan.steps[a.k]
        world.tally(f"schedule_to_start/{step.service}", now - a.scheduled)
        limit = self.timeouts[step.service]
        if step.station.ended_of(a.visit) - now > limit:
            world.after(limit, self._engine_timer, (self.timed_out, a))

    def served(self, a: Attempt) -> None:
        """The service's work ends: a success takes effect (or undoes one), whether or not the
        engine still waits for this attempt: an abandoned attempt's late work applies too,
        unknown to the engine."""
        inst, k = a.inst, a.k
        outcome = self.world.served(inst, k, a.undo, a.number == 1 and not a.undo)
        ok = outcome == OK
        if outcome == BUSINESS:  # a refusal: retrying would be refused again
            a.retryable = False
        if inst.marks is not None:
            operation = "compensate" if a.undo else "handle"
            self.world.span(inst, ("handle", k, a.number, a.undo), inst.plan.steps[k].service, operation, ok)
        self.reply(a, ok)

    def reset(self, a: Attempt) -> None:
        """Push: a crash aborted the request in service: the connection is reset."""
        self.reply(a, False)

    def crashed(self, a: Attempt) -> None:
        """Poll: the worker crashed while working on the task. Nobody tells the engine: it
        notices after the heartbeat timeout, or else at start-to-close."""
        step = a.inst.plan.steps[a.k]
        service = step.service
        heartbeat = self.heartbeats.get(service)
        began = step.station.started_of(a.visit)
        until_close = max(0.0, began + self.timeouts[service] - self.world.env._now)
        wait = until_close if heartbeat is None else min(heartbeat, until_close)
        self.world.after(wait, self._engine_timer, (self.timed_out, a))

    def reply(self, a: Attempt, ok: bool) -> None:
        """The service answers the engine over the network."""
        world = self.world
        world.counters.messages += 1
        delay = a.inst.net_out[a.k] if a.number == 1 and not a.undo else world.hop()
        a.ok = ok
        world.after(delay, self.answer, a)

    def _engine_timer(self, item: tuple[Callable[[Attempt], None], Attempt]) -> None:
        """A timer of the engine fires: its action waits while the workflow's shard is down."""
        fn, a = item
        self.engine.act(a.inst, fn, a)

    def timed_out(self, a: Attempt) -> None:
        if a.open:
            a.late = True
            self.closed(a, False)

    def schedule_timed_out(self, a: Attempt) -> None:
        """Poll: the task waited in its queue past schedule-to-start: it leaves the queue and the
        step fails without retry (a retry would wait in the same queue)."""
        if not a.open:
            return
        if a.visit >= 0 and not a.inst.plan.steps[a.k].station.cancel(a.visit):
            return  # a worker has taken it
        self.world.counters.schedule_to_start_timeouts += 1
        a.retryable = False
        self.closed(a, False)

    def _expire(self, activity: Activity) -> None:
        """Schedule-to-close has passed: the call fails for good."""
        self.engine.act(activity.inst, self._expired, activity)

    def _expired(self, activity: Activity) -> None:
        a = activity.current
        if activity.done or a is None:
            return
        a.retryable = False
        if a.open:
            if a.visit >= 0:  # a task still waiting leaves the queue
                a.inst.plan.steps[a.k].station.cancel(a.visit)
            self.closed(a, False)

    def answer(self, a: Attempt) -> None:
        """A reply (or a refusal) reaches the engine, which processes it when the shard is up."""
        if not self.up[a.inst.shard]:
            self.engine.act(a.inst, self._answered, a)
        elif a.open:  # else the attempt had timed out: its late reply is dropped
            self.closed(a, a.ok)

    def _answered(self, a: Attempt) -> None:
        if a.open:  # else the attempt had timed out: its late reply is dropped
            self.closed(a, a.ok)

    def closed(self, a: Attempt, ok: bool) -> None:
        """An attempt is over: record it, and retry or report to the engine."""
        a.open = False
        inst = a.inst
        service = inst.plan.steps[a.k].service
        if inst.marks is not None:
            what = f"{'undo' if a.undo else 'call'} {service}" + (
                f" (attempt {a.number})" if a.number > 1 else ""
            )
            self.world.span(inst, ("call", a.k, a.number, a.undo), "orchestrator", what, ok)
        now = self.world.env._now
        if a.sent and service in self.breakers:
            self.breakers[service].record(ok, now, now - a.began)
        if a.slot:
            self.bulkheads[service].release()
        activity = a.activity
        retry = self.call_retries.get(service)
        if ok:
            if retry is not None:
                retry.succeeded(a.cost)
            if activity is not None:
                activity.done = True
            self.decide(Reply(inst, a.k, True, a.undo))
            return
        # A failed workflow's other calls are not retried (the engine cancels them); its
        # compensations are.
        failing = inst.finished or (inst.failure >= 0 and not a.undo)
        if retry is not None and a.retryable and retry.allows(a.number) and not failing:
            wait = retry.next_delay(a.number)
            if activity is None or now + wait < activity.deadline:
                cost = retry.charge(a.late)
                if cost >= 0:
                    nxt = Attempt(inst, a.k, a.number + 1, a.undo, activity)
                    nxt.cost = cost
                    self.world.after(wait, self._engine_timer, (self.attempt, nxt))
                    return
        forward = None if a.undo or failing else self.saga.forward(inst, a.k)
        if forward is not None:  # past the pivot: tried again, never undone
            nxt = Attempt(inst, a.k, a.number + 1, a.undo, None)
            self.world.after(forward, self._engine_timer, (self.attempt, nxt))
            return
        if activity is not None:
            activity.done = True
        self.decide(Reply(inst, a.k, False, a.undo))
