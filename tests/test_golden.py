"""Pinned outputs for a fixed scenario and seed (as Ciw pins its own): any change to the model,
the random streams or the statistics that moves these numbers must be deliberate, and the new
values written here with the reason in the commit."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim

CHECKOUT = Path(__file__).parent.parent / "scenarios" / "checkout.yaml"

GOLDEN = {
    "orchestration": {
        "arrived": 2427,
        "latency_mean": 0.42579913086911914,
        "latency_p99": 1.4785796312970874,
    },
    "choreography": {"arrived": 2427, "latency_mean": 0.31588557895284747, "latency_p99": 0.6732646560455845},
    "hybrid": {"arrived": 2427, "latency_mean": 0.353808800369615, "latency_p99": 1.4222312044577654},
}
LATENCY_SUMS = {
    "orchestration": 2089.584099604755,
    "choreography": 1517.0065871240154,
    "hybrid": 1745.446241315921,
}


def test_checkout_for_120_seconds_gives_the_pinned_numbers() -> None:
    result = sim.run(CHECKOUT, duration=120)
    summary = result.summary.set_index("topology")
    for topology, expected in GOLDEN.items():
        assert summary.loc[topology, "arrived"] == expected["arrived"]
        assert summary.loc[topology, "completed"] == expected["arrived"]
        assert summary.loc[topology, "latency_mean"] == pytest.approx(expected["latency_mean"], rel=1e-12)
        assert summary.loc[topology, "latency_p99"] == pytest.approx(expected["latency_p99"], rel=1e-12)
    sums = result.requests.groupby("topology")["latency"].sum()
    for topology, expected in LATENCY_SUMS.items():
        assert sums[topology] == pytest.approx(expected, rel=1e-12)
