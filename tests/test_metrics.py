"""The interval statistics behind the components table, against plain definitions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.analysis.metrics import _levels, _overlap

INTERVALS = st.lists(
    st.tuples(st.integers(0, 30), st.integers(0, 12)), min_size=0, max_size=40
)  # (start, length) on a coarse grid: many ties, empty intervals included
WINDOWS = st.tuples(st.integers(0, 40), st.integers(1, 20))


def reference_levels(starts: list[int], ends: list[int], lo: int, hi: int) -> tuple[float, int]:
    """By definition: the time-average of the number open, on a fine grid of half-steps (every
    interval end is an integer), and its largest value at any instant of [lo, hi)."""
    grid = np.arange(lo, hi, 0.5)
    counts = [sum(1 for s, e in zip(starts, ends, strict=True) if s <= t < e) for t in grid]
    return float(np.mean(counts)), int(max(counts))


@settings(max_examples=300, deadline=None)
@given(intervals=INTERVALS, window=WINDOWS)
def test_levels_are_the_time_average_and_largest_number_open(
    intervals: list[tuple[int, int]], window: tuple[int, int]
) -> None:
    lo, width = window
    hi = lo + width
    starts = [s for s, _ in intervals]
    ends = [s + n for s, n in intervals]
    mean, largest = _levels(np.array(starts, dtype=float), np.array(ends, dtype=float), lo, hi)
    expected_mean, expected_largest = reference_levels(starts, ends, lo, hi)
    assert largest == expected_largest
    assert mean == np.float64(expected_mean) or abs(mean - expected_mean) < 1e-12


def test_overlap_clips_to_the_window() -> None:
    a = np.array([0.0, 2.0, 5.0, 9.0])
    b = np.array([3.0, 4.0, 5.0, 12.0])
    assert _overlap(a, b, 1.0, 10.0) == 2.0 + 2.0 + 0.0 + 1.0
    assert _overlap(a[:0], b[:0], 1.0, 10.0) == 0.0
