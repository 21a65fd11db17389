"""The Python API: run, save, read back; time series consistent with the per-request records."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import sim
from tests.helpers import scenario


@pytest.fixture(scope="module")
def result() -> sim.RunResult:
    sc = scenario(
        {
            "a": {"latency": {"dist": "exponential", "mean": 0.05}, "error_probability": 0.02},
            "b": {"latency": 0.03},
        },
        ["a", {"parallel": ["b", "a"]}],
        rate=10,
        duration=60,
        warmup=5,
        topologies={
            "orchestration": {"orchestrator": {"shard_concurrency": 2, "decision_cpu": 0.004}},
            "choreography": {},
            "hybrid": {"asynchronous": ["b"]},
        },
    )
    return sim.run(sc)


def test_run_folder_round_trip(result: sim.RunResult, tmp_path) -> None:
    folder = result.save(tmp_path / "run", plots=False)
    back = sim.read_run(folder)
    pd.testing.assert_frame_equal(back.requests, result.requests)
    pd.testing.assert_frame_equal(back.components, result.components, check_dtype=False)
    pd.testing.assert_frame_equal(back.timeseries, result.timeseries, check_dtype=False)
    pd.testing.assert_frame_equal(back.summary, result.summary, check_dtype=False)
    assert back.scenario == result.scenario
    assert json.loads((folder / "summary.json").read_text()) == result.to_dict()


def test_a_run_where_nothing_arrives_reads_back_and_plots_quietly(tmp_path) -> None:
    """No workflow arrives within the run: no bottleneck (None, also read back), and the plots
    draw without a warning (an empty latency curve has no legend)."""
    import warnings

    sc = sim.scenario_from_dict(
        {
            "name": "nothing",
            "duration": 20,
            "services": {"s": {"latency": 0.01}},
            "workflows": {"w": {"steps": ["s"]}},
            "load": {"w": {"arrival": "trace", "times": [100.0]}},
            "topologies": {"orchestration": {}},
        }
    )
    result = sim.run(sc)
    assert result.summary["bottleneck"].tolist() == [None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        folder = result.save(tmp_path / "run")
    back = sim.read_run(folder)
    pd.testing.assert_frame_equal(back.summary, result.summary, check_dtype=False)


def test_resolved_scenario_reruns_identically(result: sim.RunResult, tmp_path) -> None:
    folder = result.save(tmp_path / "run", plots=False)
    again = sim.run(folder / "scenario.yaml")
    pd.testing.assert_frame_equal(again.requests, result.requests)


def test_save_replaces_an_existing_folder_and_leaves_no_temporaries(result: sim.RunResult, tmp_path) -> None:
    result.save(tmp_path / "run", plots=False)
    result.save(tmp_path / "run", plots=True, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in (tmp_path / "run" / "plots").iterdir()) == [
        "bottleneck.png",
        "latency_cdf.png",
        "percentiles.png",
        "timelines.png",
        "utilization.png",
        "utilization_heatmap.png",
    ]


def test_timeseries_adds_up_to_the_requests(result: sim.RunResult) -> None:
    for name, ts in result.timeseries.groupby("topology"):
        req = result.requests[result.requests["topology"] == name]
        assert ts["arrivals"].sum() == len(req)
        assert ts["completions"].sum() == (req["status"] == "completed").sum()
        ended_badly = req["status"].isin(["failed", "compensated", "inconsistent", "lost"])
        assert ts["failures"].sum() == ended_badly.sum()
        assert (ts["in_flight"] >= 0).all()
        assert ts["in_flight"].iloc[-1] == (req["status"] == "in_flight").sum()


def test_json_summary_shape(result: sim.RunResult) -> None:
    data = result.to_dict()
    assert set(data) >= {"scenario", "seed", "duration", "warmup", "topologies"}
    topo = data["topologies"][0]
    assert set(topo["latency"]) == {"mean", "p50", "p95", "p99", "max"}
    assert {c["name"] for c in topo["components"]} == {"a", "b", "orchestrator"}
    hybrid = next(t for t in data["topologies"] if t["topology"] == "hybrid")
    assert "asynchronous" in hybrid
    json.dumps(data, allow_nan=False)


def test_utilization_is_busy_time_over_capacity(result: sim.RunResult) -> None:
    comps = result.components.set_index(["topology", "name"])
    row = comps.loc[("orchestration", "orchestrator")]
    assert row["utilization"] == pytest.approx(row["mean_busy"] / 2)
    assert np.isnan(comps.loc[("choreography", "broker"), "utilization"])
