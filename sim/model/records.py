"""Raw records of one run: what a world hands over when it stops, before any statistics.

Plain numpy arrays and small dataclasses, free of the simulation engine, so that the analysis can
turn them into frames without importing SimPy, and executors can send them between processes.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import shutil
import tempfile
import weakref
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.util import Finalize
from pathlib import Path
from typing import Any

import numpy as np

from sim.model.tracing import Span


class SpillFolder:
    """A temporary folder for the records a run writes out of memory as it goes, removed when
    the last object that refers to it is garbage-collected (or when the interpreter exits)."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="sim-records-"))
        self.files = 0
        # (multiprocessing's finalizer, not weakref's: it also runs when a worker process exits,
        # which skips the interpreter's own exit handlers)
        Finalize(self, shutil.rmtree, args=(self.path, True), exitpriority=0)

    def file(self, suffix: str) -> Path:
        """A new file's path in the folder."""
        self.files += 1
        return self.path / f"{self.files}{suffix}"


class Spill:
    """Records written out of memory during a run: chunks of consecutive rows, each chunk stored
    column after column (of the types ``dtypes``) in one file. Only rows that will not change
    any more are written, the oldest first. ``lows[k]`` is the smallest value of the first
    column in chunk ``k`` (a visit's arrival: nearly, not strictly, in order)."""

    def __init__(self, folder: SpillFolder, dtypes: tuple[type, ...]) -> None:
        self.folder = folder
        self.dtypes = [np.dtype(d) for d in dtypes]
        self.path = folder.file(".rows")
        self.counts: list[int] = []
        self.starts: list[int] = [0]
        """The first row of each chunk, and the number of rows written."""
        self.lows: list[float] = []

    @property
    def rows(self) -> int:
        """Rows written."""
        return self.starts[-1]

    def write(self, *columns: np.ndarray) -> None:
        """Append a chunk of the rows that follow those already written."""
        with open(self.path, "ab") as f:
            for column, dtype in zip(columns, self.dtypes, strict=True):
                f.write(np.ascontiguousarray(column, dtype=dtype).tobytes())
        n = int(columns[0].size)
        self.counts.append(n)
        self.starts.append(self.starts[-1] + n)
        self.lows.append(float(columns[0].min()) if n else math.inf)

    def _offset(self, k: int) -> int:
        return self.starts[k] * sum(d.itemsize for d in self.dtypes)

    def chunk(self, k: int) -> list[np.ndarray]:
        """Chunk ``k``, a column at a time."""
        n, offset, out = self.counts[k], self._offset(k), []
        for dtype in self.dtypes:
            out.append(np.fromfile(self.path, dtype=dtype, count=n, offset=offset))
            offset += n * dtype.itemsize
        return out

    def value(self, row: int, column: int) -> float:
        """One written row's value in ``column``."""
        if not 0 <= row < self.rows:
            raise IndexError(f"row {row} was not written")
        k = bisect.bisect_right(self.starts, row) - 1
        n = self.counts[k]
        offset = self._offset(k) + sum(n * d.itemsize for d in self.dtypes[:column])
        dtype = self.dtypes[column]
        offset += (row - self.starts[k]) * dtype.itemsize
        return float(np.fromfile(self.path, dtype=dtype, count=1, offset=offset)[0])

    def __getstate__(self) -> dict[str, object]:
        # Sent to another process (an executor's worker's result) as the chunks themselves,
        # which the receiver writes out again, with the same boundaries (so that the figures
        # summed chunk by chunk are the same whichever process computes them).
        return {
            "dtypes": [d.str for d in self.dtypes],
            "chunks": [self.chunk(k) for k in range(len(self.counts))],
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(receiving_folder(), tuple(np.dtype(d) for d in state["dtypes"]))  # type: ignore[misc]
        for columns in state["chunks"]:
            self.write(*columns)

    @classmethod
    def of(
        cls, columns: list[np.ndarray], counts: list[int], dtypes: tuple[type, ...]
    ) -> tuple[Spill, list[np.ndarray]]:
        """Rows in memory written out in chunks of ``counts`` rows, and the rows after them."""
        spill = cls(receiving_folder(), dtypes)
        first = 0
        for n in counts:
            spill.write(*(c[first : first + n] for c in columns))
            first += n
        return spill, [c[first:] for c in columns]


def write_out(
    spill: Spill | None, folder: SpillFolder, dtypes: tuple[type, ...], records: list[array], k: int
) -> Spill:
    """Write the first ``k`` rows of the growing ``records`` (one array per column) out of
    memory, into ``spill`` (made in ``folder`` if None), and drop them from the arrays."""
    if spill is None:
        spill = Spill(folder, dtypes)
    spill.write(*(np.frombuffer(c, dtype=c.typecode, count=k) for c in records))
    for c in records:  # (the numpy views are gone: the arrays may shrink)
        del c[:k]
    return spill


def _chunk_count(spill: Spill | None, rest: int) -> int:
    """Chunks of a record: those written out, then the ``rest`` of its rows in memory (one
    chunk when none were written out, and no empty one after those that were)."""
    return 1 if spill is None else len(spill.counts) + (1 if rest else 0)


def _chunk(spill: Spill | None, rest: list[np.ndarray], k: int) -> tuple[int, list[np.ndarray]]:
    """Chunk ``k`` of a record (see :func:`_chunk_count`): its first row's number, its columns."""
    if spill is None or k == len(spill.counts):
        return (0 if spill is None else spill.rows), rest
    return spill.starts[k], spill.chunk(k)


def _whole(chunks: Iterator[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
    """The columns of a record's chunks, each as one array."""
    return [np.concatenate(column) for column in zip(*chunks, strict=True)]


_received: weakref.ref[SpillFolder] | None = None


def receiving_folder() -> SpillFolder:
    """The folder where records that arrive whole (from another process, or from a file) are
    written out again: one per process, while records written there live."""
    global _received
    folder = _received() if _received is not None else None
    if folder is None:
        folder = SpillFolder()
        _received = weakref.ref(folder)
    return folder


VISIT_COLUMNS = (np.float64, np.float64, np.float64)
"""A station's visits as written out: arrived, started, ended."""


@dataclass
class ComponentRecord:
    """Raw timestamps of one component's visits during one run, indexed by visit (the i-th
    request to arrive is visit i): ``arrived[i]``, ``started[i]`` and ``ended[i]`` (the end of its
    service, or the instant it was aborted); start and end are NaN for a visit still waiting when
    the run stopped. ``left`` holds the visits that left the queue unserved (start = end = the
    instant they left). ``group`` names the component a part belongs to (a shard's engine).

    A long run writes the visits it has finished with out of memory as it goes (``spilled``):
    then ``arrived``, ``started`` and ``ended`` hold only the visits after those, and
    :meth:`chunks` reads them all, a chunk at a time. Indices (``left``, ``held``) count every
    visit."""

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
    spilled: Spill | None = None
    """The visits written out of memory during the run, before those in the arrays."""

    @property
    def visits(self) -> int:
        """Visits recorded, written out or not."""
        return (0 if self.spilled is None else self.spilled.rows) + int(self.arrived.size)

    def chunks(self) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """Every visit, a chunk at a time: (number of the chunk's first visit, arrived, started,
        ended), in visit order (one chunk unless visits were written out)."""
        for k in range(_chunk_count(self.spilled, self.arrived.size)):
            yield self.chunk(k)

    def chunk(self, k: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """Chunk ``k`` of :meth:`chunks`."""
        first, (arrived, started, ended) = _chunk(self.spilled, [self.arrived, self.started, self.ended], k)
        return first, arrived, started, ended

    def chunk_lows(self) -> list[float]:
        """The earliest arrival in each chunk (inf in an empty one)."""
        lows = [] if self.spilled is None else list(self.spilled.lows)
        if self.spilled is None or self.arrived.size:
            lows.append(float(self.arrived.min()) if self.arrived.size else math.inf)
        return lows

    def whole(self) -> ComponentRecord:
        """This record with every visit in memory (itself, unless visits were written out)."""
        if self.spilled is None:
            return self
        arrived, started, ended = _whole(c[1:] for c in self.chunks())
        return dataclasses.replace(self, arrived=arrived, started=started, ended=ended, spilled=None)


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
    spilled: Spill | None = None
    """Messages written out of memory during the run (those that had left the subscription),
    before those in the arrays; :meth:`chunks` reads them all, a chunk at a time."""
    late_began: dict[int, float] = field(default_factory=dict)
    """Written-out messages whose last delivery's processing began after they were written (a
    duplicate delivery of a queue's message already acknowledged): when it began."""

    @property
    def messages(self) -> int:
        """Messages recorded, written out or not."""
        return (0 if self.spilled is None else self.spilled.rows) + int(self.entered.size)

    def chunks(self) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Every message, a chunk at a time: (number of the chunk's first message, entered,
        left, began, lane, how), in order (one chunk unless messages were written out)."""
        late = np.array(sorted(self.late_began), dtype=np.int64)
        rest = [self.entered, self.left, self.began, self.lane, self.how]
        for k in range(_chunk_count(self.spilled, self.entered.size)):
            first, (entered, left, began, lane, how) = _chunk(self.spilled, rest, k)
            mine = late[(late >= first) & (late < first + entered.size)]  # (only written-out ones)
            began[mine - first] = [self.late_began[i] for i in mine.tolist()]
            yield first, entered, left, began, lane, how

    def whole(self) -> GroupRecord:
        """This record with every message in memory (itself, unless messages were written out)."""
        if self.spilled is None:
            return self
        entered, left, began, lane, how = _whole(c[1:] for c in self.chunks())
        return dataclasses.replace(
            self, entered=entered, left=left, began=began, lane=lane, how=how, spilled=None, late_began={}
        )


GROUP_COLUMNS = (np.float64, np.float64, np.float64, np.int32, np.int8)
"""A consumer group's messages as written out: entered, left, began, lane, how."""

EFFECT_COLUMNS = (np.float64, np.int64, np.uint16, np.int8)
"""An effect ledger's entries as written out: time, instance, step, kind."""


@dataclass
class EffectRecord:
    """The effect ledger of a run (see :mod:`sim.model.effects`): one row per application or
    undo of a workflow step's effect, its instant, the instance's global index, the step and the
    kind (1 applied, 2 duplicate, 3 absorbed, 4 undone).

    A long run writes its entries out of memory as it goes (``spilled``): the arrays then hold
    the entries after those, and :meth:`chunks` reads them all, a chunk at a time; ``renumber``
    maps the instances' numbers in the written entries to the record's (a world whose
    instances are numbered as they are created)."""

    time: np.ndarray
    gid: np.ndarray
    step: np.ndarray
    kind: np.ndarray
    spilled: Spill | None = None
    renumber: np.ndarray | None = None

    @property
    def entries(self) -> int:
        """Entries recorded, written out or not."""
        return (0 if self.spilled is None else self.spilled.rows) + int(self.kind.size)

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Every entry, a chunk at a time: (time, instance, step, kind), in the ledger's order
        (one chunk unless entries were written out)."""
        written = 0 if self.spilled is None else len(self.spilled.counts)
        rest = [self.time, self.gid, self.step, self.kind]
        for k in range(_chunk_count(self.spilled, self.kind.size)):
            _, (time, gid, step, kind) = _chunk(self.spilled, rest, k)
            if k < written and self.renumber is not None:  # (those in memory are renumbered)
                gid = self.renumber[gid]
            yield time, gid, step, kind

    def whole(self) -> EffectRecord:
        """This record with every entry in memory (itself, unless entries were written out)."""
        if self.spilled is None:
            return self
        time, gid, step, kind = _whole(self.chunks())
        return EffectRecord(time, gid, step, kind)


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
