"""Central orchestration: an engine drives every workflow instance step by step.

The engine (Temporal, Camunda/Zeebe, Step Functions style) takes a *decision* when a workflow
starts and one after every reply it receives. A decision occupies one engine worker for the step
overhead (persisting the workflow's state, dispatching commands); when workers are all busy,
decisions wait in the engine's queue. Each step is a request over the network to the service, the
service's work, and a reply over the network back to the engine. A parallel group fans out from
the engine and joins there: the engine goes on when the last branch has replied.

A failed or rejected call fails the workflow at the decision that receives its reply; replies of
other branches that arrive later still cost a decision, and are then ignored.

Left out here (see the fault model): retries, timeouts, compensation and engine outages.
"""

from __future__ import annotations

from sim.model.topologies.base import Coordinator
from sim.model.world import COMPLETED, FAILED, Instance, StepPlan, World
from sim.scenario.models import Orchestrator, Topology

START = -1
"""Pseudo step index of the decision that starts a workflow."""


class Orchestration(Coordinator):
    """Coordinates every step through a central engine."""

    def __init__(self, world: World, name: str, config: Topology) -> None:
        super().__init__(world, name, config)
        engine = config.orchestrator or Orchestrator()
        self.engine = world.add_component("orchestrator", "orchestrator", engine.servers)
        self.overhead = world.draws(engine.step_overhead, "orchestrator/overhead")
        self.decisions = 0

    # The life of a workflow, as the engine sees it.

    def arrive(self, inst: Instance) -> None:
        """A client starts the workflow: one message to the engine, then the first decision."""
        self.world.messages += 1
        self.world.after(inst.net_entry, self.decide, (inst, START, True))

    def decide(self, reply: tuple[Instance, int, bool]) -> None:
        """A start request or a reply reaches the engine and waits for a worker."""
        self.decisions += 1
        self.engine.submit(self.overhead(), self.decided, reply)

    def decided(self, reply: tuple[Instance, int, bool]) -> None:
        """The engine has persisted the reply; it dispatches what comes next."""
        inst, k, ok = reply
        if inst.finished:
            return
        if k == START:
            self.start_stage(inst, 0)
            return
        if not ok:
            self.world.finish(inst, FAILED, k)
            return
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
        """Send the request of ``step`` to its service."""
        self.world.messages += 1
        self.world.after(inst.net_in[step.index], self.call, (inst, step.index))

    def call(self, request: tuple[Instance, int]) -> None:
        """The request reaches the service: it is queued, served, or rejected when full."""
        inst, k = request
        station = inst.plan.steps[k].station
        if not station.submit(inst.work[k], self.served, request):
            self.reply(inst, k, False)

    def served(self, request: tuple[Instance, int]) -> None:
        inst, k = request
        self.reply(inst, k, self.world.succeeded(inst, k))

    def reply(self, inst: Instance, k: int, ok: bool) -> None:
        """The service answers the engine over the network."""
        self.world.messages += 1
        self.world.after(inst.net_out[k], self.decide, (inst, k, ok))
