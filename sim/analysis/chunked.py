"""Exact statistics of records read a chunk at a time (a long run's visits, written out of
memory during the run): the largest number of open intervals, and quantiles.

Both give the very numbers the whole-array computations of :mod:`sim.analysis.metrics` give, so a
run's figures do not depend on whether its records fit in memory; only sums, added chunk by
chunk rather than in one ``numpy.sum``, may differ in their last bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np

T = TypeVar("T")


class LevelPeak:
    """The largest number of intervals [open, close) open at once within each window
    [edges[i], edges[i + 1]), fed the intervals a chunk at a time in the order of each chunk's
    earliest opening (closings come first at equal instants; empty intervals are left out).

    The largest is reached just after an opening, or is the number open as the window starts.
    A chunk's intervals are only counted up to the earliest opening of the chunks still to come
    (``bound``): before it every interval that could be open is known. Intervals opening later,
    and closings after it, wait for the next chunk; they are few unless intervals are long."""

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = np.asarray(edges, dtype=float)
        windows = self.edges.size - 1
        self.opened = 0
        """Openings before the bound reached so far."""
        self.closed = 0
        """Closings before it."""
        self.opens = np.empty(0)
        self.closes = np.empty(0)
        self.peaks = np.zeros(windows, dtype=np.int64)
        self.at_start = np.zeros(windows, dtype=np.int64)
        """Intervals open as each window starts (opened at or before it, not closed)."""

    def add(self, opens: np.ndarray, closes: np.ndarray, bound: float) -> None:
        """Count the intervals [opens_i, closes_i), all openings at or after the bounds given
        before; every interval still to come opens at ``bound`` or later (inf: none)."""
        real = closes > opens
        # (timsort: a component's openings and closings come nearly in order, sorted in one pass)
        opens, closes = np.sort(opens[real], kind="stable"), np.sort(closes[real], kind="stable")
        starts = self.edges[:-1]
        self.at_start += np.searchsorted(opens, starts, side="right")
        self.at_start -= np.searchsorted(closes, starts, side="right")
        self.opens = _merged(self.opens, opens)
        self.closes = _merged(self.closes, closes)
        now = int(np.searchsorted(self.opens, bound, side="left"))  # openings before the bound
        t = self.opens[:now]
        window = np.searchsorted(self.edges, t, side="right") - 1
        inside = (window >= 0) & (window < self.peaks.size)
        if inside.any():
            t = t[inside]
            level = (
                self.opened
                + np.searchsorted(self.opens, t, side="right")
                - self.closed
                - np.searchsorted(self.closes, t, side="right")
            )
            np.maximum.at(self.peaks, window[inside], level)
        gone = int(np.searchsorted(self.closes, bound, side="left"))
        self.opened += now
        self.closed += gone
        self.opens = self.opens[now:]
        self.closes = self.closes[gone:]

    def add_in_order(self, opens: np.ndarray, closes: np.ndarray) -> None:
        """:meth:`add` a chunk whose openings come after every earlier chunk's and before every
        later one's (a subscription's messages, entered in order)."""
        self.add(opens, closes, float(opens[-1]) if opens.size else -math.inf)

    def result(self) -> np.ndarray:
        """The largest level in each window (at least the level as it starts, and at least 0),
        once every chunk is in."""
        if self.opens.size:
            self.add(np.empty(0), np.empty(0), math.inf)
        return np.maximum(np.maximum(self.peaks, self.at_start), 0)


def _merged(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sorted ``a`` and ``b`` as one sorted array."""
    if not a.size:
        return b
    return np.sort(np.concatenate([a, b]), kind="stable")


def in_order(chunks: Iterable[tuple[float, T]]) -> Iterator[tuple[T, float]]:
    """Chunks given as (earliest opening, chunk), in any order: each chunk in the order of their
    earliest openings, with the ``bound`` for :meth:`LevelPeak.add` (the next one's earliest
    opening; inf for the last)."""
    ordered = sorted(chunks, key=lambda c: c[0])
    for k, (_, chunk) in enumerate(ordered):
        yield chunk, ordered[k + 1][0] if k + 1 < len(ordered) else math.inf


def _keys(values: np.ndarray) -> np.ndarray:
    """Unsigned integers that sort as the floats ``values`` do (NaN excluded by the caller)."""
    bits = values.astype(np.float64).view(np.uint64)
    negative = (bits >> np.uint64(63)).astype(bool)
    return np.where(negative, ~bits, bits | np.uint64(1 << 63))


DIGIT = 16
"""Bits of the sort key settled per pass over the data."""
COLLECT = 1 << 20
"""Values gathered and sorted once the candidates for a rank are this few."""


def _select(passes: Callable[[], Iterable[np.ndarray]], ranks: list[int]) -> dict[int, float]:
    """The values of the given ranks (0-based, in sorted order) among the values the chunks
    yielded by ``passes()`` hold, by radix selection: each pass over the data settles the next
    :data:`DIGIT` bits of each rank's sort key, until its candidates are few enough to sort."""
    out: dict[int, float] = {}
    # Per rank still open: the settled high bits of its key, how many, and its rank among the
    # values that share them.
    todo = {r: (0, 0, r) for r in ranks}
    while todo:
        counts = {(p, s): np.zeros(1 << DIGIT, dtype=np.int64) for p, s, _ in todo.values()}
        for chunk in passes():
            keys = _keys(chunk)
            for (prefix, settled), count in counts.items():
                mine = keys if settled == 0 else keys[(keys >> np.uint64(64 - settled)) == np.uint64(prefix)]
                digit = (mine >> np.uint64(64 - settled - DIGIT)) & np.uint64((1 << DIGIT) - 1)
                count += np.bincount(digit.astype(np.int64), minlength=1 << DIGIT)
        narrowed = {}
        for rank, (prefix, settled, within) in todo.items():
            cum = np.cumsum(counts[(prefix, settled)])
            d = int(np.searchsorted(cum, within, side="right"))
            below = int(cum[d - 1]) if d else 0
            narrowed[rank] = ((prefix << DIGIT) | d, settled + DIGIT, within - below, int(cum[d]) - below)
        todo = {}
        sort: dict[tuple[int, int], list[int]] = {}
        for rank, (prefix, settled, within, size) in narrowed.items():
            if settled == 64:
                out[rank] = float(_float(prefix))  # every candidate has this very value
            elif size <= COLLECT:
                sort.setdefault((prefix, settled), []).append(rank)
            else:
                todo[rank] = (prefix, settled, within)
        if sort:
            found: dict[tuple[int, int], list[np.ndarray]] = {key: [] for key in sort}
            for chunk in passes():
                keys = _keys(chunk)
                for (prefix, settled), parts in found.items():
                    parts.append(chunk[(keys >> np.uint64(64 - settled)) == np.uint64(prefix)])
            for key, rs in sort.items():
                candidates = np.sort(np.concatenate(found[key]))
                for rank in rs:
                    out[rank] = float(candidates[narrowed[rank][2]])
    return out


def _float(key: int) -> np.float64:
    """The float whose sort key is ``key`` (the inverse of :func:`_keys`)."""
    bits = key ^ (1 << 63) if key >> 63 else ~key & ((1 << 64) - 1)
    return np.array([bits], dtype=np.uint64).view(np.float64)[0]


def quantile(passes: Callable[[], Iterable[np.ndarray]], q: float) -> float:
    """``numpy.quantile(values, q)`` (its default linear method, to the last bit) of the values
    in the chunks that ``passes()`` yields, reading them a few times rather than holding them
    all; NaN if there are none. The values must not be NaN."""
    chunks = [chunk.size for chunk in passes()]
    n = int(sum(chunks))
    if n == 0:
        return math.nan
    if len(chunks) == 1:  # all in memory at once
        (values,) = passes()
        return float(np.quantile(values, q))
    virtual = (n - 1) * np.float64(q)
    below = math.floor(virtual)
    above = min(below + 1, n - 1)
    found = _select(passes, sorted({below, above}))
    a, b = np.float64(found[below]), np.float64(found[above])
    t = virtual - np.float64(below)
    diff = b - a
    return float(b - diff * (1 - t) if t >= 0.5 else a + diff * t)
