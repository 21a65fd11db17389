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
means the same whatever the topology.
"""

from __future__ import annotations

import math

from sim.model.outcomes import COMPENSATED, FAILED, INCONSISTENT, LOST
from sim.model.workflow import Instance
from sim.model.world import World


class Saga:
    """The saga rules of one world, applied to its instances."""

    def __init__(self, world: World) -> None:
        self.world = world

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
