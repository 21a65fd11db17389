"""Saga bookkeeping: which steps of a workflow took effect, and how a failed workflow ends.

A step *takes effect* when its work succeeds at its service. When a workflow fails, the steps
that took effect are compensated (each coordinator decides how the compensations travel); once
none is running any more, the workflow ends:

* ``failed`` when no step ever took effect;
* ``compensated`` when every effect was undone;
* ``inconsistent`` when an effect remains (a compensation failed, or the service has none).

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

    def took_effect(self, inst: Instance) -> None:
        """A step of ``inst`` has just taken effect at its service: the start of the
        inconsistency window if the workflow later fails."""
        if math.isnan(inst.first_effect):
            inst.first_effect = self.world.env.now

    def settle(self, inst: Instance) -> None:
        """A failed instance whose compensations are all over ends failed, compensated or
        inconsistent."""
        world = self.world
        if math.isnan(inst.first_effect):
            world.finish(inst, FAILED, inst.failure)
            return
        status = INCONSISTENT if inst.undo_failed or inst.effects else COMPENSATED
        if not inst.finished:
            world.record_window(inst, inst.first_effect)
        world.finish(inst, status, inst.failure)

    def lose(self, inst: Instance) -> None:
        """The instance vanished with a non-durable engine."""
        self.world.finish(inst, LOST, inst.failure)

    def vanish(self, inst: Instance) -> None:
        """The instance can never go on (an event it waited for was dropped): it ends lost, or
        inconsistent if effects of it stand."""
        if inst.effects:
            if not inst.finished:
                self.world.record_window(inst, inst.first_effect)
            self.world.finish(inst, INCONSISTENT, inst.failure)
        else:
            self.world.finish(inst, LOST, inst.failure)
