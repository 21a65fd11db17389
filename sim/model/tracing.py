"""Tracing: spans for a few sampled workflow instances, the way a distributed tracer sees them.

The sampled instances are chosen by index (evenly spread over the measured window of each
workflow), so every topology traces the same instances, with the same work: their traces can be
laid side by side. Closed-loop clients arrive while the run goes on, so their workflow's sampled
instances are chosen as they arrive: the first at or after each of evenly spread instants
(:meth:`sim.model.world.World.instance`), different instances in each topology.

A span has a component (the service, ``orchestrator``, ``broker`` or ``client``), an operation,
a start and an end, and belongs to its workflow's root span; spans are recorded only for sampled
instances, so tracing costs nothing for the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Span:
    """One timed operation of a traced workflow instance."""

    workflow: str
    instance: int
    span: int
    parent: int
    component: str
    operation: str
    start: float
    end: float
    status: str = "ok"


@dataclass
class Tracer:
    """Collects the spans of the sampled instances (``sampled[workflow]`` holds their indices)."""

    sampled: dict[str, set[int]] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)
    _next: dict[tuple[str, int], int] = field(default_factory=dict)

    def wants(self, workflow: str, index: int) -> bool:
        chosen = self.sampled.get(workflow)
        return chosen is not None and index in chosen

    def record(
        self,
        workflow: str,
        index: int,
        component: str,
        operation: str,
        start: float,
        end: float,
        status: str = "ok",
        parent: int = 0,
    ) -> int:
        """Add a span under the instance's root (span 0) or ``parent``; returns its number."""
        key = (workflow, index)
        number = self._next.get(key, 1)
        self._next[key] = number + 1
        self.spans.append(Span(workflow, index, number, parent, component, operation, start, end, status))
        return number

    def root(self, workflow: str, index: int, start: float, end: float, status: str) -> None:
        """The workflow's own span, from arrival to its outcome."""
        self.spans.append(Span(workflow, index, 0, -1, "client", f"workflow {workflow}", start, end, status))


def sample_indices(arrivals: np.ndarray, lo: float, hi: float, count: int) -> set[int]:
    """``count`` instance indices evenly spread over the arrivals in [lo, hi)."""
    inside = np.flatnonzero((arrivals >= lo) & (arrivals < hi))
    if count <= 0 or inside.size == 0:
        return set()
    picks = np.rint(np.linspace(0, inside.size - 1, min(count, inside.size))).astype(int)
    return {int(i) for i in inside[picks]}
