"""Event choreography: services react to each other's events through a broker.

There is no central controller. A client publishes the workflow's first event; each service
consumes its own subscription, does its work and publishes a completion event, which the broker
delivers to the services of the next step. A join (the step after a parallel group) waits, per
correlation id, until the completion events of every branch have arrived; only then does the
service queue the work. Events that only fill a join take no service time.

A workflow is complete when the broker has committed the completion events of its last steps. A
failed or rejected step publishes a failure event instead; the workflow fails when that event is
committed; from then on no service starts new work for that workflow (services see its failure
event by correlation id), as an orchestrator would stop dispatching.

Left out here (see the fault model): redelivery, dead letters, compensation and outages.
"""

from __future__ import annotations

from sim.model.topologies.base import Coordinator
from sim.model.topologies.broker import MessageBroker
from sim.model.world import COMPLETED, FAILED, Instance, World
from sim.scenario.models import Topology

ENTRY = -1
"""Pseudo step index of the event that starts a workflow."""


class Choreography(Coordinator):
    """Coordinates steps by events on a shared broker."""

    def __init__(self, world: World, name: str, config: Topology) -> None:
        super().__init__(world, name, config)
        self.broker = MessageBroker(world, config.broker)

    def arrive(self, inst: Instance) -> None:
        """A client publishes the event that starts the workflow."""
        inst.pending = len(inst.plan.stages[-1])
        self.world.messages += 1
        self.world.after(inst.net_entry, self.publish, (inst, ENTRY, True))

    def publish(self, event: tuple[Instance, int, bool]) -> None:
        self.broker.publish(self.committed, event)

    def committed(self, event: tuple[Instance, int, bool]) -> None:
        """The event is in the log: the workflow ends, or its subscribers are served."""
        inst, k, ok = event
        if not ok:
            self.world.finish(inst, FAILED, k)
            return
        if inst.finished:  # the workflow has failed: its services start nothing new for it
            return
        steps = inst.plan.steps
        followers = inst.plan.entry_steps if k == ENTRY else steps[k].followers
        if k != ENTRY and steps[k].terminal:
            inst.pending -= 1
            if inst.pending == 0:
                self.world.finish(inst, COMPLETED)
            return
        world = self.world
        for step in followers:
            world.messages += 1
            world.after(
                self.broker.delivery_latency() + inst.net_in[step.index], self.deliver, (inst, step.index)
            )

    def deliver(self, delivery: tuple[Instance, int]) -> None:
        """An event reaches a subscriber; a join waits until all its inputs are there."""
        inst, k = delivery
        step = inst.plan.steps[k]
        if step.inputs > 1:
            joins = inst.joins
            if joins is None:
                joins = inst.joins = {}
            seen = joins.get(k, 0) + 1
            joins[k] = seen
            if seen < step.inputs:
                return
        if not step.station.submit(inst.work[k], self.served, delivery):
            self.emit(inst, k, False)

    def served(self, delivery: tuple[Instance, int]) -> None:
        inst, k = delivery
        self.emit(inst, k, self.world.succeeded(inst, k))

    def emit(self, inst: Instance, k: int, ok: bool) -> None:
        """The service publishes its completion (or failure) event over the network."""
        self.world.messages += 1
        self.world.after(inst.net_out[k], self.publish, (inst, k, ok))
