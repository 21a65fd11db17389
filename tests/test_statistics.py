"""Replication intervals, paired comparisons and MSER-5 warm-up detection.

Hand computations use published t quantiles; the simulation tests compare against the exact
M/M/1 mean with binomial tolerances derived from the number of intervals. Seeds are fixed, so
every test is deterministic.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from sim.analysis.statistics import (
    aggregate,
    format_difference,
    mser5,
    mser5_warmup,
    paired_differences,
    t_interval,
)
from tests.helpers import run_topology, scenario

# 0.975 quantiles of Student t in closed form (Hill 1970), independent of scipy; tables give
# 12.706, 4.303 and 2.776 for 1, 2 and 4 degrees of freedom.
P = 0.975
T_975_1 = math.tan(math.pi * (P - 0.5))
T_975_2 = (2 * P - 1) / math.sqrt(2 * P * (1 - P))
_A = 4 * P * (1 - P)
T_975_4 = 2 * math.sqrt(math.cos(math.acos(math.sqrt(_A)) / 3) / math.sqrt(_A) - 1)


def exp(mean: float) -> dict:
    return {"dist": "exponential", "mean": mean}


def mean_latency(run, sc) -> float:
    """The README's latency mean: completed workflows that arrived in [warmup, duration)."""
    req = run.requests
    cohort = req[(req["arrival"] >= sc.warmup) & (req["arrival"] < sc.duration)]
    return float(cohort.loc[cohort["status"] == "completed", "latency"].mean())


# --- t intervals and aggregation -------------------------------------------------------------


def test_t_interval_matches_hand_computation() -> None:
    iv = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, s = sqrt(2.5), s / sqrt(5) = sqrt(0.5)
    half = T_975_4 * math.sqrt(0.5)
    assert iv.mean == 3.0 and iv.n == 5 and iv.confidence == 0.95
    assert iv.half_width == pytest.approx(half, rel=1e-12)
    assert (iv.low, iv.high) == pytest.approx((3.0 - half, 3.0 + half), rel=1e-12)


def test_t_interval_drops_nans_and_handles_tiny_samples() -> None:
    iv = t_interval([1.0, math.nan, 3.0])
    assert iv.n == 2 and iv.mean == 2.0
    assert iv.half_width == pytest.approx(T_975_1 * math.sqrt(2.0) / math.sqrt(2), rel=1e-12)
    one = t_interval([4.0, math.nan])
    assert one.n == 1 and one.mean == 4.0 and math.isnan(one.half_width) and math.isnan(one.low)
    none = t_interval([math.nan, math.nan])
    assert none.n == 0 and math.isnan(none.mean)
    assert t_interval([7.0, 7.0, 7.0]).half_width == 0.0
    with pytest.raises(ValueError):
        t_interval([1.0, 2.0], confidence=95)


def test_aggregate_tiny_frame_keeps_first_seen_group_order() -> None:
    tidy = pd.DataFrame(
        {
            "topology": ["orch", "orch", "chor", "chor", "orch", "chor"],
            "replication": [0, 1, 0, 1, 2, 2],
            "latency_mean": [1.0, 2.0, 10.0, 10.0, 3.0, 10.0],
            "throughput": [5.0, 5.0, 5.0, math.nan, 5.0, 7.0],
        }
    )
    out = aggregate(tidy, ["topology"], ["latency_mean", "throughput"])
    assert list(out["topology"]) == ["orch", "chor"]
    assert list(out.columns) == [
        "topology",
        *[f"{m}{s}" for m in ("latency_mean", "throughput") for s in ("", "_low", "_high", "_half_width")],
        "n",
    ]
    orch, chor = out.iloc[0], out.iloc[1]
    half = T_975_2 * 1.0 / math.sqrt(3)  # s = 1 for 1, 2, 3
    assert orch["latency_mean"] == 2.0
    assert orch["latency_mean_half_width"] == pytest.approx(half, rel=1e-12)
    assert orch["latency_mean_low"] == pytest.approx(2.0 - half, rel=1e-12)
    assert chor["latency_mean_half_width"] == 0.0
    assert chor["throughput"] == 6.0  # the NaN replication is left out of this metric only
    assert list(out["n"]) == [3, 3]
    whole = aggregate(tidy, [], ["latency_mean"])
    assert len(whole) == 1 and whole["n"].iloc[0] == 6


# --- intervals against a known answer, through the simulator ----------------------------------


@pytest.mark.slow
def test_replication_intervals_cover_the_mm1_mean_at_their_nominal_rate() -> None:
    """100 intervals, each from 5 replications of an M/M/1 queue (λ = 5, μ = 10, E[latency] = 0.2 s).

    If the intervals are right, the number containing 0.2 is Binomial(100, 0.95); the band is
    0.95 ± 3 binomial standard deviations. A run of 280 measured seconds is a finite horizon, so
    each replication mean is slightly biased (the ratio estimator, and the empty start left
    after a 20 s warm-up that is ~17 relaxation times 1 / (μ(1 − √ρ)²) ≈ 1.2 s). That bias is
    O(1/T), far below the ~0.01 s standard error of a replication mean, so it moves coverage by
    much less than the band allows.
    """
    lam, mu, k, intervals = 5.0, 10.0, 5, 100
    sc = scenario({"s": {"latency": exp(1 / mu)}}, ["s"], rate=lam, duration=300, warmup=20)
    rows = [
        {
            "interval": i,
            "replication": r,
            "latency_mean": mean_latency(run_topology(sc, "orchestration", seed=seed), sc),
        }
        for i in range(intervals)
        for r, seed in enumerate(range(1000 + k * i, 1000 + k * (i + 1)))
    ]
    out = aggregate(pd.DataFrame(rows), ["interval"], ["latency_mean"])
    assert (out["n"] == k).all()
    expected = 1 / (mu - lam)
    covered = ((out["latency_mean_low"] <= expected) & (expected <= out["latency_mean_high"])).mean()
    band = 3 * math.sqrt(0.95 * 0.05 / intervals)
    assert abs(covered - 0.95) <= band, f"coverage {covered:.2f} outside 0.95 ± {band:.3f}"


# --- paired comparisons ------------------------------------------------------------------------


def test_paired_differences_hand_frame() -> None:
    tidy = pd.DataFrame(
        {
            "rate": [1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2],
            "topology": ["a", "b", "a", "b", "a", "b", "c", "a", "b", "a", "b"],
            "replication": [0, 0, 1, 1, 2, 2, 0, 0, 0, 1, 1],
            "p99": [1.0, 1.5, 2.0, 2.4, 3.0, 3.6, 9.0, 5.0, 4.0, 6.0, 5.5],
        }
    )
    out = paired_differences(tidy, "a", ["p99"], by=["rate"])
    assert list(zip(out["rate"], out["topology"])) == [(1, "b"), (1, "c"), (2, "b")]
    assert (out["reference"] == "a").all() and (out["metric"] == "p99").all()
    b1 = out.iloc[0]  # differences 0.5, 0.4, 0.6
    assert b1["difference"] == pytest.approx(0.5)
    assert b1["n"] == 3
    assert b1["half_width"] == pytest.approx(T_975_2 * 0.1 / math.sqrt(3))
    c1 = out.iloc[1]  # only replication 0 pairs up
    assert c1["n"] == 1 and c1["difference"] == 8.0 and math.isnan(c1["half_width"])
    b2 = out.iloc[2]  # paired on the sweep point: −1.0, −0.5
    assert b2["difference"] == pytest.approx(-0.75) and b2["n"] == 2
    with pytest.raises(ValueError, match="reference"):
        paired_differences(tidy, "z", ["p99"], by=["rate"])
    with pytest.raises(ValueError, match="cannot pair"):
        paired_differences(tidy, "a", ["p99"])  # without `rate`, replication 0 of "a" appears twice


def test_pairing_beats_independent_samples_under_common_random_numbers() -> None:
    """Same seed per replication: both topologies see the same arrivals and service times, so
    their mean latencies move together and the paired interval is far narrower than Welch's.

    The orchestrator has one worker so that its queueing makes the difference vary from one
    replication to the next (with unlimited workers it would be the constant 2·0.01 − 2·0.004).
    """
    sc = scenario(
        {"s": {"latency": exp(0.1)}},
        ["s"],
        rate=6.0,
        duration=300,
        warmup=20,
        topologies={
            "orchestration": {"orchestrator": {"shard_concurrency": 1, "decision_cpu": 0.01}},
            "choreography": {"broker": {"publish_latency": 0.004}},
        },
    )
    rows = [
        {"topology": t, "replication": r, "latency_mean": mean_latency(run_topology(sc, t, seed=100 + r), sc)}
        for r in range(10)
        for t in ("orchestration", "choreography")
    ]
    tidy = pd.DataFrame(rows)
    row = paired_differences(tidy, "orchestration", ["latency_mean"]).iloc[0]
    means = aggregate(tidy, ["topology"], ["latency_mean"]).set_index("topology")["latency_mean"]
    assert row["n"] == 10
    assert row["difference"] == pytest.approx(means["choreography"] - means["orchestration"], rel=1e-12)
    assert row["high"] < 0  # choreography pays 2 × 4 ms of broker, orchestration 2 × 10 ms + queueing
    assert 0 < row["half_width"] < row["unpaired_half_width"] / 10
    text = format_difference(row)
    assert text.startswith("latency_mean: choreography − orchestration = −") and " ms [−" in text


def test_format_difference_rounds_to_the_interval() -> None:
    row = {
        "metric": "p99",
        "topology": "choreography",
        "reference": "orchestration",
        "difference": -0.0423,
        "half_width": 0.0054,
        "low": -0.0477,
        "high": -0.0369,
        "n": 10,
    }
    assert format_difference(row) == "p99: choreography − orchestration = −42 ms [−48, −37]"
    # A half-width led by 1..3 keeps two significant digits: 1.4 ms → one decimal.
    row2 = {**row, "difference": -0.0423, "half_width": 0.0014, "low": -0.0437, "high": -0.0409}
    assert format_difference(row2) == "p99: choreography − orchestration = −42.3 ms [−43.7, −40.9]"
    rate = {**row, "metric": "throughput", "difference": 0.5, "half_width": 0.25, "low": 0.25, "high": 0.75}
    assert format_difference(rate, unit_scale=1, unit="/s") == (
        "throughput: choreography − orchestration = 0.50 /s [0.25, 0.75]"
    )
    single = {**row, "half_width": math.nan, "low": math.nan, "high": math.nan, "n": 1}
    assert format_difference(single) == "p99: choreography − orchestration = −42.3 ms [no interval: n = 1]"


# --- MSER-5 ------------------------------------------------------------------------------------


def test_mser5_hand_example() -> None:
    """Batch means 10, 0, 1, 0, 1, 0, 1, 0: MSER(d) for d = 0..4 is 1.28, 0.035, 0.042, 0.048, 0.063,
    so one batch (5 observations) is deleted."""
    batches = [10, 0, 1, 0, 1, 0, 1, 0]
    assert mser5(np.repeat(batches, 5).astype(float)) == 5
    assert mser5([1.0, 2.0, 3.0]) == 0  # fewer than two batches: nothing to decide
    with pytest.raises(ValueError):
        mser5([1.0, math.nan, 2.0, 3.0, 4.0, 5.0])


def test_mser5_cuts_a_known_transient() -> None:
    """2,000 observations, N(10, 1), whose first 300 carry a bias falling linearly from +20 to 0.

    The cut must remove the stretch where the bias still exceeds two noise standard deviations
    (t < 270) and should not throw away more than half as much again as the transient (450)."""
    rng = np.random.default_rng(12345)
    t = np.arange(2000)
    bias = np.where(t < 300, 20.0 * (1 - t / 300), 0.0)
    values = 10.0 + bias + rng.normal(0.0, 1.0, t.size)
    cut = mser5(values)
    assert cut % 5 == 0
    assert 270 <= cut <= 450, cut
    times = 0.1 * t  # e.g. arrival instants of a 10/s workload
    assert mser5_warmup(times, values) == pytest.approx(times[cut])


def test_mser5_deletes_little_from_a_stationary_series() -> None:
    rng = np.random.default_rng(2024)
    values = 10.0 + rng.normal(0.0, 1.0, 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no "run too short" warning
        cut = mser5(values)
    assert cut <= 100, cut  # at most 5 % of the series
    assert mser5_warmup(np.arange(2000.0), np.full(2000, 3.0)) == 0.0  # constant: nothing to cut


def test_mser5_warmup_skips_unfinished_workflows_and_checks_order() -> None:
    times = np.arange(30.0)
    values = np.r_[np.full(5, 50.0), np.zeros(25)]
    values[7] = math.nan  # a workflow that never completed: dropped with its time
    assert mser5_warmup(times, values) == 5.0
    with pytest.raises(ValueError, match="sorted"):
        mser5_warmup(times[::-1], values)


def test_mser5_warns_when_the_transient_fills_the_run() -> None:
    values = np.linspace(100.0, 0.0, 500)  # never settles
    with pytest.warns(RuntimeWarning, match="too short"):
        assert mser5(values) == 5 * (100 // 2)
