"""Raw records of one run: what a world hands over when it stops, before any statistics.

Plain numpy arrays and small dataclasses, free of the simulation engine, so that the analysis can
turn them into frames without importing SimPy, and executors can send them between processes.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import numpy as np

from sim.model.tracing import Span


@dataclass
class ComponentRecord:
    """Raw timestamps of one component's visits during one run, indexed by visit (the i-th
    request to arrive is visit i): ``arrived[i]``, ``started[i]`` and ``ended[i]`` (the end of its
    service, or the instant it was aborted); start and end are NaN for a visit still waiting when
    the run stopped. ``left`` holds the visits that left the queue unserved (start = end = the
    instant they left). ``group`` names the component a part belongs to (a shard's engine)."""

    name: str
    kind: str
    servers: int | None
    arrived: np.ndarray
    started: np.ndarray
    ended: np.ndarray
    rejected: np.ndarray
    errors: np.ndarray
    aborted: np.ndarray
    left: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    group: str | None = None
    held: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Visits that kept their server after their own work, waiting on another component (a
    shard waiting for its writes); ``held_at`` gives when each wait began (it ends at ``ended``)."""
    held_at: np.ndarray = field(default_factory=lambda: np.empty(0))


@dataclass
class GroupRecord:
    """A consumer group's subscription during one run (the consumers of ``service`` reading a
    broker of ``kind`` log or queue): one slot per message, ``entered`` when it was committed to
    the subscription, ``left`` when it left it (its offset committed or the message acknowledged,
    dead-lettered, or dropped; NaN while still there) and ``how`` (1 processed, 2 dead-lettered,
    3 dropped by retention, 0 still there), ``began`` when the processing of its last delivery
    began (NaN if none did), and ``lane``, its partition (a log: failure events of the
    compensation topic come after the ``partitions`` of the step events; a queue: 0).
    ``topics`` is how many topics a log group reads (2 for a service that compensates: its step
    events and the failure events; else 1). ``concurrency`` is what the group can process at
    once: min(servers, topics × partitions × max_in_flight) for a log. ``shared``: the engine
    calls the service too (a hybrid), so the group has its servers only when the engine's calls
    leave them."""

    service: str
    kind: str
    partitions: int
    consumers: int
    concurrency: int
    max_in_flight: int
    entered: np.ndarray
    left: np.ndarray
    began: np.ndarray
    lane: np.ndarray
    how: np.ndarray
    topics: int = 1
    shared: bool = False


@dataclass
class EffectRecord:
    """The effect ledger of a run (see :mod:`sim.model.effects`): one row per application or
    undo of a workflow step's effect, its instant, the instance's global index, the step and the
    kind (1 applied, 2 duplicate, 3 absorbed, 4 undone)."""

    time: np.ndarray
    gid: np.ndarray
    step: np.ndarray
    kind: np.ndarray


@dataclass
class WorkflowRecord:
    """The instances of one workflow occupy ``count`` consecutive slots of the outcome arrays,
    from ``offset``; ``steps`` names the service of each step (for ``failed_at``)."""

    name: str
    offset: int
    count: int
    steps: list[str]


@dataclass
class OutcomeRecord:
    """How every workflow instance of a run ended, one slot per instance (see
    :mod:`sim.model.world` for the status codes)."""

    arrival: np.ndarray
    completion: np.ndarray
    status: np.ndarray
    failed_step: np.ndarray
    inconsistency_start: np.ndarray
    inconsistency_end: np.ndarray
    async_completion: np.ndarray
    async_pending: np.ndarray
    async_failures: np.ndarray


@dataclass
class TopologyRun:
    """Everything one topology's run produced (one replication, with or without its faults)."""

    topology: str
    kind: str
    seed: int
    replication: int
    workflows: list[WorkflowRecord]
    outcomes: OutcomeRecord
    components: list[ComponentRecord]
    end_time: float
    wall_seconds: float
    counters: dict[str, float] = field(default_factory=dict)
    """Run totals (see :class:`sim.model.counters.Counters`), plus ``lost_work``."""
    faults: list[dict[str, object]] = field(default_factory=list)
    """Fault windows applied in this run: type, target, peer (the other end of a partition, else
    empty), start, end."""
    spans: list[Span] = field(default_factory=list)
    """Spans of the traced workflow instances (empty unless tracing was asked for)."""
    faulted: bool = True
    """False for the fault-free baseline twin of a scenario with faults."""
    tallies: dict[str, np.ndarray] = field(default_factory=dict)
    """Per-observation tallies by name (e.g. ``schedule_to_start/payment``): one row per
    observation, its instant and its value."""
    groups: list[GroupRecord] = field(default_factory=list)
    """The consumer groups of the topology's broker, if it has one."""
    effects: EffectRecord | None = None
    """The effect ledger."""

    @property
    def total(self) -> int:
        """Workflow instances that arrived in the run."""
        return int(self.outcomes.arrival.size)


def as_array(values: array, dtype: type | np.dtype) -> np.ndarray:
    """The recorded ``values`` as a numpy array, sharing their memory when the item types agree
    (no copy of the largest records at the end of a run)."""
    kind = np.dtype(dtype)
    if len(values) and values.itemsize == kind.itemsize and values.typecode in TYPECODES[kind.kind]:
        return np.frombuffer(values, dtype=kind)
    return np.array(values, dtype=kind)


TYPECODES = {"f": "d", "i": "bhilq"}
"""array typecodes whose items read as numpy floats or signed integers of the same size."""
