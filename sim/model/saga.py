"""Saga bookkeeping: which steps of a workflow took effect, and how a failed workflow ends.

A step *takes effect* when its work succeeds at its service (the effect ledger,
:mod:`sim.model.effects`, records every application). When a workflow fails, the steps its
coordinator knows took effect are compensated (each coordinator decides how the compensations
travel); once none is running any more, the workflow ends:

* ``failed`` when no step ever took effect;
* ``compensated`` when every effect was undone;
* ``inconsistent`` when an effect remains (a compensation failed, the service has none, or an
  effect the coordinator never learnt of: a duplicate, an abandoned attempt's late work).

Compensated and inconsistent workflows carry their *inconsistency window*, from the first effect
to the end of the last compensation. One implementation for every coordinator, so an outcome
means the same whatever the topology, and so do the order of the compensations (``saga.order``)
and the point of no return (``saga.pivot``): see :class:`Saga`.
"""

from __future__ import annotations

import math

from sim.model.outcomes import COMPENSATED, FAILED, INCONSISTENT, LOST
from sim.model.workflow import Instance
from sim.model.world import World

FORWARD_DELAY = 1.0
"""Seconds before a step after the pivot whose retries are exhausted is tried again, when its
service has no retry policy to say (with one: its longest backoff)."""


class Saga:
    """The saga rules of one world, applied to its instances.

    Every coordinator follows the same rules, so that a difference between topologies comes
    from how the compensations travel, not from when or in what order they run: compensations
    begin once no step of the failed workflow is running any more, and undo the steps its
    coordinator knows took effect, one after another with the most recent first (``sequential``)
    or all at once (``parallel``); a step after the workflow's pivot is retried forward instead
    of failing it, once the workflow has passed the pivot."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.services = world.scenario.services

    def next_compensations(self, inst: Instance) -> list[int]:
        """The steps of a failed ``inst`` whose compensation starts now (none while a step is
        still running, or, sequentially, while a compensation is). A known effect whose service
        has no compensation is left standing."""
        if inst.calls > 0 or (inst.undoing and not inst.plan.parallel_undo):
            return []
        out = []
        while inst.effects:
            k = inst.effects.pop()
            if self.services[inst.plan.steps[k].service].compensation is None:
                inst.undo_failed = True
                continue
            out.append(k)
            if not inst.plan.parallel_undo:
                break
        return out

    def passes(self, inst: Instance, stage: int) -> None:
        """``inst`` starts a step of ``stage``: past the pivot's stage, it has passed its pivot."""
        if stage > inst.plan.pivot_stage >= 0:
            inst.committed = True

    def forward(self, inst: Instance, k: int) -> float | None:
        """If step ``k`` of ``inst`` comes after a pivot it has passed, the delay before it is
        tried again instead of failing the workflow; else None."""
        plan = inst.plan
        if not inst.committed or plan.steps[k].stage <= plan.pivot_stage:
            return None
        retry = self.services[plan.steps[k].service].retry
        return retry.max_backoff if retry is not None else FORWARD_DELAY

    def settle(self, inst: Instance) -> None:
        """A failed instance whose compensations are all over ends failed (no step ever took
        effect), compensated (every effect undone) or inconsistent (an effect stands: a
        compensation failed or is not defined, or a step took effect unknown to its
        coordinator), as the effect ledger says."""
        world = self.world
        if math.isnan(inst.first_effect):
            world.finish(inst, FAILED, inst.failure)
            return
        status = INCONSISTENT if world.effects.stands(inst) else COMPENSATED
        if not inst.finished:
            world.record_window(inst, inst.first_effect)
        world.finish(inst, status, inst.failure)

    def vanish(self, inst: Instance) -> None:
        """The instance can never go on (a non-durable engine forgot it, an event it waited for
        was dropped): it ends lost, or inconsistent if effects of it stand."""
        if self.world.effects.stands(inst):
            if not inst.finished:
                self.world.record_window(inst, inst.first_effect)
            self.world.finish(inst, INCONSISTENT, inst.failure)
        else:
            self.world.finish(inst, LOST, inst.failure)
