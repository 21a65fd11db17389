"""Hybrid: an engine drives the critical path, side effects travel as events.

Per workflow (``hybrid.coordination``), a hybrid orchestrates or choreographs: a choreographed
workflow is coordinated exactly as in :mod:`choreography`, on the hybrid's broker, and never
touches the engine. What follows is about the orchestrated ones.

The engine coordinates the workflow exactly as in :mod:`orchestration`, except for the steps of
the ``asynchronous`` services: for those, the engine publishes an event to the broker and goes on
as soon as the broker has committed it (the acknowledgement is a reply like any other). The
service consumes the event later, off the critical path, with the same consumer as choreography
(:mod:`sim.model.consumer`: the service's retry policy, redelivery after a crash, dead-lettering
after ``max_deliveries``). The workflow's latency is the critical path; the completion of its
asynchronous steps is recorded separately, and their failures do not fail the workflow. An
asynchronous step counts as taken effect once published, so a saga compensates it like any other.
"""

from __future__ import annotations

from typing import Any

from sim.model.broker import Group, MessageBroker
from sim.model.consumer import Consumer, Owner, Work
from sim.model.coordinators.choreography import Choreography, Event
from sim.model.coordinators.orchestration import Orchestration, Reply
from sim.model.workflow import Instance, StepPlan
from sim.model.world import World
from sim.scenario.models import Topology

ASYNC = "async"
"""Tag of the trace marks of an asynchronous step's delivery."""


class AsyncSteps:
    """What the hybrid does with the outcome of an asynchronous step (the
    :class:`~sim.model.consumer.Owner` of its consumer): record it beside the workflow, whose
    critical path has gone on without it."""

    def __init__(self, world: World) -> None:
        self.world = world

    def wants(self, work: Work) -> bool:
        return True  # published, so it will be worked off whatever became of the workflow

    def started(self, work: Work) -> None:
        inst = work.inst
        if inst.marks is not None:
            service = inst.plan.steps[work.step].service
            self.world.span(inst, ("deliver", work.step, ASYNC), "broker", f"deliver to {service} (async)")

    def handled(self, work: Work) -> None:
        self.world.async_done(work.inst, True)

    def repeated(self, work: Work) -> None:
        pass  # the engine had its acknowledgement when the event was published

    def given_up(self, work: Work) -> None:
        self.world.async_done(work.inst, False)

    def expired(self, work: Work, started: bool) -> None:
        self.world.async_done(work.inst, False)


class Steps:
    """The owner of a hybrid's consumers: a service's subscription carries the asynchronous
    steps of orchestrated workflows and the steps of choreographed ones; each goes to its
    coordinator."""

    def __init__(self, asynchronous: Owner, choreographed: frozenset[str]) -> None:
        self.asynchronous = asynchronous
        self.choreographed = choreographed
        self.choreography: Owner = asynchronous

    def _owner(self, work: Work) -> Owner:
        return self.choreography if work.inst.plan.name in self.choreographed else self.asynchronous

    def wants(self, work: Work) -> bool:
        return self._owner(work).wants(work)

    def started(self, work: Work) -> None:
        self._owner(work).started(work)

    def handled(self, work: Work) -> None:
        self._owner(work).handled(work)

    def repeated(self, work: Work) -> None:
        self._owner(work).repeated(work)

    def given_up(self, work: Work) -> None:
        self._owner(work).given_up(work)

    def expired(self, work: Work, started: bool) -> None:
        self._owner(work).expired(work, started)


class Hybrid(Orchestration):
    """Orchestration for the critical path, choreography for the ``asynchronous`` steps and for
    the choreographed workflows."""

    def __init__(self, world: World, name: str, config: Topology) -> None:
        super().__init__(world, name, config)
        self.broker = MessageBroker(world, config.broker, self.committed, self.unpublished)
        self.asynchronous = frozenset(config.async_services)
        self.choreographed = frozenset(
            p.name for p in world.plans if config.coordination(p.name) == "choreography"
        )
        consumed = set(self.asynchronous)
        for plan in world.plans:
            if plan.name in self.choreographed:
                consumed.update(st.service for st in plan.steps)
        owner = Steps(AsyncSteps(world), self.choreographed)
        consumer = Consumer(world, self.retries, owner, operation="handle (async)")
        self.groups: dict[str, Group] = {n: self.broker.group(n, consumer) for n in sorted(consumed)}
        # A consumed service the engine calls too shares its servers: the engine calls the steps
        # of its workflows that it awaits, and the compensations of all their steps (the saga).
        services = world.scenario.services
        for plan in world.plans:
            if plan.name in self.choreographed:
                continue
            for st in plan.steps:
                called = st.service not in self.asynchronous or services[st.service].compensation is not None
                if called and st.service in self.groups:
                    self.groups[st.service].shared = True
        self.choreography: Choreography | None = None
        if self.choreographed:
            self.choreography = Choreography(world, name, config, (self.broker, self.groups, self.retries))
            self.broker.producer_died = self._died
            owner.choreography = self.choreography

    def arrive(self, inst: Instance) -> None:
        if self.choreography is not None and inst.plan.name in self.choreographed:
            self.choreography.arrive(inst)
            return
        self.broker.place(inst)
        super().arrive(inst)

    def dispatch(self, inst: Instance, step: StepPlan) -> None:
        if step.service not in self.asynchronous:
            super().dispatch(inst, step)
            return
        inst.calls += 1
        self.world.counters.messages += 1
        self.world.counters.actions += 1
        self.world.after(self.world.hop(), self.publish, Work(inst, step.index))

    def publish(self, work: Work) -> None:
        if work.inst.marks is not None:
            self.world.mark(work.inst, ("publish", work.step))
        self.broker.publish("orchestrator", work)

    def _died(self, event: Any) -> bool:
        return isinstance(event, Event) and self.choreography is not None and self.choreography.died(event)

    def unpublished(self, work: Any) -> None:
        """The engine could not publish: the step fails (a choreographed workflow's event goes
        to its coordinator)."""
        if isinstance(work, Event):
            assert self.choreography is not None
            self.choreography.unpublished(work)
            return
        self.decide(Reply(work.inst, work.step, False))

    def committed(self, work: Any) -> None:
        """The broker acknowledges to the engine, and the event goes to the service's group (a
        choreographed workflow's event goes to its coordinator)."""
        if isinstance(work, Event):
            assert self.choreography is not None
            self.choreography.committed(work)
            return
        inst, k = work.inst, work.step
        world = self.world
        service = inst.plan.steps[k].service
        if work.copy:  # appended twice: the service gets it again; the engine had its ack
            self.groups[service].offer(work, inst.net_in[k])
            return
        if inst.marks is not None:
            world.span(inst, ("publish", k), "broker", f"publish {service} request")
            world.mark(inst, ("deliver", k, ASYNC))
        world.async_started(inst)
        world.after(world.hop(), self.decide, Reply(inst, k))
        self.groups[service].offer(work, inst.net_in[k])
