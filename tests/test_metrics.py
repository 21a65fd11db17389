"""The interval statistics behind the components table, against plain definitions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.analysis.chunked import LevelPeak
from sim.analysis.metrics import _levels, _open_at, _overlap, combined, component_stats
from sim.model.records import ComponentRecord

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


def test_open_at_counts_intervals_whether_or_not_in_order() -> None:
    rng = np.random.default_rng(3)
    starts = np.sort(rng.uniform(0, 100, 500))
    ends = starts + rng.exponential(5, 500)
    ends[::7] = np.nan  # never ended
    instants = np.linspace(0, 120, 49)
    expected = np.array([np.sum((starts <= t) & ~(ends <= t)) for t in instants])
    np.testing.assert_array_equal(_open_at(starts, ends, instants), expected)
    shuffled = rng.permutation(500)
    np.testing.assert_array_equal(_open_at(starts[shuffled], ends[shuffled], instants), expected)


def test_a_single_part_lends_its_visits_and_gives_what_a_concatenation_gives() -> None:
    rng = np.random.default_rng(4)
    arrived = np.sort(rng.uniform(0, 50, 200))
    started = arrived + rng.exponential(1, 200)
    ended = started + rng.exponential(1, 200)
    started[-5:] = ended[-5:] = np.nan
    part = ComponentRecord(
        name="orchestrator/0",
        kind="shard",
        servers=4,
        arrived=arrived,
        started=started,
        ended=ended,
        rejected=np.array([3.0, 9.0]),
        errors=np.array([1.0]),
        aborted=np.empty(0),
        left=np.array([2, 11]),
        group="orchestrator",
        held=np.array([5]),
        held_at=np.array([arrived[5] + 0.1]),
    )
    empty = ComponentRecord(
        name="orchestrator/1",
        kind="shard",
        servers=0,
        arrived=np.empty(0),
        started=np.empty(0),
        ended=np.empty(0),
        rejected=np.empty(0),
        errors=np.empty(0),
        aborted=np.empty(0),
        left=np.empty(0, dtype=np.int64),
        group="orchestrator",
        held=np.empty(0, dtype=np.int64),
        held_at=np.empty(0),
    )
    lent = combined("orchestrator", "orchestrator", [part])
    copied = combined("orchestrator", "orchestrator", [part, empty])
    assert lent.arrived is part.arrived  # no copy
    for name in ("name", "kind", "servers", "group"):
        assert getattr(lent, name) == getattr(copied, name)
    for name in ("arrived", "started", "ended", "rejected", "errors", "aborted", "left", "held", "held_at"):
        np.testing.assert_array_equal(getattr(lent, name), getattr(copied, name))
        assert getattr(lent, name).dtype == getattr(copied, name).dtype
    assert component_stats(lent, 5.0, 45.0, 60.0) == component_stats(copied, 5.0, 45.0, 60.0)


def test_intervals_closing_as_a_window_starts_do_not_count_in_its_largest_level() -> None:
    # Two intervals close at 4, where the second window starts: within [4, 6) one is open.
    # (Counting the level between the two closings, at the same instant, said 2.)
    peak = LevelPeak(np.array([0.0, 4.0, 6.0]))
    peak.add(np.array([1.0, 2.0, 3.0]), np.array([4.0, 4.0, 8.0]), np.inf)
    assert peak.result().tolist() == [3, 1]
