"""Verdict logic on known numbers, and objectives end to end."""

from __future__ import annotations

import pandas as pd
import pytest

import sim
from sim.analysis.verdicts import ranking, recommendation, verdicts

SUMMARY = pd.DataFrame(
    {
        "topology": ["a", "a", "a", "b", "b", "b"],
        "replication": [0, 1, 2, 0, 1, 2],
        "latency_p99": [0.50, 0.52, 0.48, 0.90, 1.10, 1.00],
        "success_rate": [0.999, 0.998, 0.999, 0.9999, 0.9999, 0.9999],
        "throughput": [40.0, 40.0, 40.0, 40.0, 40.0, 40.0],
    }
)


def test_met_missed_margins_and_confidence() -> None:
    v = verdicts({"latency_p99": 0.8, "success_rate": 0.9995}, SUMMARY).set_index(["topology", "objective"])
    a99, b99 = v.loc[("a", "latency_p99")], v.loc[("b", "latency_p99")]
    assert a99["met"] and a99["confident"] and a99["margin"] == pytest.approx(0.3)
    assert not b99["met"] and b99["margin"] == pytest.approx(-0.2)
    assert b99["relative_margin"] == pytest.approx(-0.25)
    assert not v.loc[("a", "success_rate"), "met"] and v.loc[("b", "success_rate"), "met"]


def test_an_interval_across_the_target_is_undecided() -> None:
    v = verdicts({"latency_p99": 1.0}, SUMMARY).set_index("topology")
    assert v.loc["b", "met"]  # mean exactly 1.0 meets an upper bound of 1.0
    assert not v.loc["b", "confident"]  # but its interval reaches above it


def test_ranking_and_recommendation() -> None:
    v = verdicts({"latency_p99": 0.8, "success_rate": 0.9995, "throughput": 30}, SUMMARY)
    ranked = ranking(v, SUMMARY)
    # Both meet 2 of 3; a misses success_rate by 0.05 %, b misses p99 by 25 %: a ranks first.
    assert list(ranked["topology"]) == ["a", "b"]
    lines = recommendation(v, SUMMARY)
    assert lines[0].startswith("1. a: meets 2 of 3 objectives; misses success_rate")
    assert "latency_p99 by 200 ms (25%)" in lines[1]


def test_extreme_targets_read_as_numbers() -> None:
    """A target of zero has no relative margin; a tiny one gives a huge but finite share."""
    radius = pd.DataFrame({"topology": ["a", "b"], "replication": [0, 0], "affected_share": [0.2, 0.0]})
    v = verdicts({"affected_share": 0.0, "latency_p99": 1e-9}, SUMMARY, radius)
    lines = recommendation(v, SUMMARY)
    text = " ".join(lines)
    assert "nan" not in text and "inf" not in text
    assert "misses affected_share by 20.00 points," in lines[1]  # no share of a zero target
    assert "latency_p99 by 500 ms (5.0e+10%)" in lines[1]  # 0.5 s against 1 ns
    assert "latency_p99 by 1.00 s (1.0e+11%)" in lines[0]


def test_fault_objectives_need_a_blast_radius() -> None:
    assert verdicts({"recovery_time": 10.0}, SUMMARY).empty
    radius = pd.DataFrame({"topology": ["a", "b"], "replication": [0, 0], "recovery_time": [5.0, 20.0]})
    v = verdicts({"recovery_time": 10.0}, SUMMARY, radius).set_index("topology")
    assert v.loc["a", "met"] and not v.loc["b", "met"]


def test_objectives_end_to_end() -> None:
    sc = sim.scenario_from_dict(
        {
            "duration": 100,
            "services": {"s": {"latency": {"dist": "exponential", "mean": 0.1}}},
            "workflows": {"wf": {"steps": ["s"]}},
            "load": {"wf": {"rate": 5}},
            "topologies": {
                "orchestration": {"orchestrator": {"shard_concurrency": 1000, "decision_cpu": 0.5}},
                "choreography": {},
            },
            "objectives": {"latency_p99": 1.5, "success_rate": 0.99},
        }
    )
    result = sim.run(sc)
    assert result.recommendation()[0].startswith("1. choreography: meets 2 of 2")
    data = result.to_dict()
    assert {v["objective"] for v in data["verdicts"]} == {"latency_p99", "success_rate"}
    assert data["recommendation"] == result.recommendation()
    assert result.meta["verdicts"]


def test_every_plot_of_a_run_is_a_figure() -> None:
    import matplotlib.pyplot as plt

    sc = sim.scenario_from_dict(
        {
            "duration": 40,
            "services": {"s": {"latency": {"dist": "exponential", "mean": 0.1}}},
            "workflows": {"wf": {"steps": ["s"]}},
            "load": {"wf": {"rate": 5}},
            "topologies": {"orchestration": {}, "choreography": {}},
            "faults": [{"type": "outage", "target": "s", "at": 10, "duration": 5}],
        }
    )
    result = sim.run(sc, trace=1)
    assert {"fault_timelines", "blast_radius", "waterfall"} <= set(result.plot_names())
    for name in result.plot_names():
        fig = result.plot(name)
        assert fig.axes, name
        plt.close(fig)
    with pytest.raises(ValueError, match="unknown plot"):
        result.plot("nope")
