"""The network between components: hop latencies and partitions.

Every message (a request, a reply, a publish, a delivery) crosses one hop. Hops on a workflow's
regular path are drawn per instance when it arrives (:mod:`sim.model.world`); hops that only some
topologies make (a retry, a compensation, a redelivery) come from :attr:`Network.hop`, a stream of
their own, drawn in order of use.

A partition cuts the link between two components for a window: messages between them are refused
(``fail``: the caller notices after its connect timeout) or held until the link heals (``hold``).
Partitions are kept per unordered pair of component names, so a partition between ``payment`` and
the orchestrator never touches ``payment-gateway``.
"""

from __future__ import annotations

from collections.abc import Callable

import simpy

from sim.scenario.distributions import Spec
from sim.scenario.models import Partition


class Network:
    """Hop latencies and the partitions scheduled on the links between components."""

    def __init__(self, env: simpy.Environment, latency: Spec, hop: Callable[[], float]) -> None:
        self.env = env
        self.latency = latency
        self.hop = hop
        """Latency of a hop that only some topologies make (drawn in order of use)."""
        self._cuts: dict[frozenset[str], list[Partition]] = {}
        self.any_cut = False
        """Whether any partition is scheduled at all (so callers can skip the lookup)."""

    def schedule(self, partition: Partition) -> None:
        """Cut the link between the partition's two ends during its window (called by the
        fault driver, :mod:`sim.model.faults`)."""
        self._cuts.setdefault(frozenset(partition.between), []).append(partition)
        self.any_cut = True

    def cut(self, a: str, b: str) -> Partition | None:
        """The partition between ``a`` and ``b`` in force now, if any."""
        if not self.any_cut:
            return None
        windows = self._cuts.get(frozenset((a, b)))
        if windows is None:
            return None
        now = self.env.now
        for p in windows:
            if p.at <= now < p.at + p.duration:
                return p
        return None

    def heals_in(self, partition: Partition) -> float:
        """Seconds from now until ``partition`` heals."""
        return partition.at + partition.duration - self.env.now
