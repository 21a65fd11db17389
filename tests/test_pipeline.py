"""One evaluation pipeline: ``sim run``, replications and every sweep point give the same rows;
and the coordinators share one consumer, so the hybrid's asynchronous steps follow the same
policies as choreography's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import sim
from sim.api.sweep import run_sweep

BASE: dict[str, Any] = {
    "name": "pipeline",
    "seed": 11,
    "duration": 80,
    "warmup": 5,
    "window": 4,
    "services": {
        "a": {"replicas": 2, "latency": {"dist": "exponential", "mean": 0.1}},
        "b": {"latency": {"dist": "exponential", "mean": 0.05}, "retry": {"max_attempts": 2}},
    },
    "workflows": {"wf": {"steps": ["a", "b"]}},
    "load": {"wf": {"rate": 6}},
    "topologies": {
        "orchestration": {"orchestrator": {"shard_concurrency": 2, "decision_cpu": 0.01}},
        "choreography": {"broker": {"publish_latency": 0.003}},
    },
}


def _write(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({**BASE, **changes}, sort_keys=False), encoding="utf-8")
    return path


def _same_rows(sweep_rows: pd.DataFrame, run_rows: pd.DataFrame, factors: list[str]) -> None:
    """The sweep's rows of one point are ``sim run``'s rows, field for field."""
    extra = ["point", "label", *factors]
    mine = sweep_rows.drop(columns=extra).reset_index(drop=True)
    theirs = run_rows.reset_index(drop=True)[list(mine.columns)]
    assert list(mine.columns) == [c for c in theirs.columns]
    assert set(mine.columns) == set(run_rows.columns), "the sweep keeps every column sim run has"
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False, check_categorical=False)


@pytest.mark.parametrize(
    "changes",
    [
        {"warmup": "auto"},
        {
            "faults": [{"type": "outage", "target": "a", "at": 30, "duration": 10}],
            "objectives": {"latency_p99": 1.0, "recovery_time": 20},
        },
    ],
    ids=["warmup-auto", "faults"],
)
def test_a_sweep_point_equals_sim_run_of_its_resolved_scenario(tmp_path: Path, changes: dict) -> None:
    path = _write(tmp_path, **changes)
    sweep = run_sweep(path, ["load.wf.rate=4,7"], out=tmp_path / "sweep", executor="serial", replications=2)
    assert sweep.errors.empty, sweep.errors["error"].tolist()
    for index, rate in enumerate([4, 7]):
        point = sim.scenario_from_dict({**BASE, **changes, "load": {"wf": {"rate": rate}}})
        result = sim.run(point, replications=2, executor="serial")
        rows = sweep.tidy[sweep.tidy["point"] == index]
        _same_rows(rows, result.summary, ["load.wf.rate"])
        comps = sweep.components[sweep.components["point"] == index]
        _same_rows(comps, result.components, ["load.wf.rate"])
        if "faults" in changes:
            radius = sweep.blast_radius[sweep.blast_radius["point"] == index]
            _same_rows(radius, result.blast_radius, ["load.wf.rate"])
            verdicts = sweep.verdicts[sweep.verdicts["point"] == index]
            _same_rows(verdicts, result.verdicts, ["load.wf.rate"])


def test_every_sweep_point_keeps_its_resolved_scenario(tmp_path: Path) -> None:
    path = _write(tmp_path, warmup="auto")
    sweep = run_sweep(path, ["load.wf.rate=4,7"], out=tmp_path / "sweep", executor="serial")
    files = sorted((tmp_path / "sweep" / "points").glob("*.yaml"))
    assert len(files) == 2
    for file in files:
        scenario = sim.load_scenario(file)
        assert scenario.warmup != "auto", "the resolved scenario carries the chosen warm-up"
        again = sim.run(file, executor="serial")
        rate = scenario.load["wf"].rate
        rows = sweep.tidy[sweep.tidy["load.wf.rate"] == rate]
        _same_rows(rows, again.summary, ["load.wf.rate"])


def test_warmup_auto_with_faults_keeps_the_fault_in_the_measured_window() -> None:
    data = {
        **BASE,
        "duration": 120,
        "warmup": "auto",
        "faults": [{"type": "outage", "target": "a", "at": 20, "duration": 15}],
    }
    result = sim.run(sim.scenario_from_dict(data), executor="serial")
    assert result.scenario.warmup <= 20, "the warm-up never passes the first fault"
    assert result.warmup_chosen_by == "MSER-5"


def test_the_hybrid_consumer_follows_the_services_retry_policy() -> None:
    """An asynchronous step whose work fails with probability p, retried up to 5 attempts, fails
    for good with probability p⁵: a handful of failures, not p × arrivals."""
    p, rate, duration = 0.3, 20.0, 200.0
    data = {
        "name": "async-retry",
        "seed": 4,
        "duration": duration,
        "services": {
            "checkout": {"latency": 0.01},
            "email": {
                "latency": 0.005,
                "replicas": 4,
                "error_probability": p,
                "retry": {"max_attempts": 5, "initial": 0.01},
            },
        },
        "workflows": {"order": {"steps": ["checkout", "email"]}},
        "load": {"order": {"rate": rate}},
        "topologies": {"hybrid": {"asynchronous": ["email"]}},
    }
    result = sim.run(sim.scenario_from_dict(data), executor="serial")
    row = result.summary.iloc[0]
    arrived = row["run_arrived"]
    expected = arrived * p**5
    failed = result.requests["async_failures"].sum()
    assert abs(failed - expected) < 4 * math.sqrt(expected) + 2, (
        f"{failed} async failures, expected ~{expected:.1f}"
    )
    assert row["attempts"] > arrived * (2 + p / (1 - p)) * 0.95, "retried attempts are counted"


@pytest.mark.parametrize(
    "broker",
    # (the log's rebalances after each return must be shorter than the crash interval, or the
    # group never gets to work: a rebalance storm)
    [
        {"max_deliveries": 3, "rebalance": {"time": 0.05}},
        {"kind": "queue", "max_receives": 3, "visibility_timeout": 1},
    ],
    ids=["log", "queue"],
)
def test_the_hybrid_consumer_dead_letters_after_max_deliveries(broker: dict) -> None:
    """A consumer that keeps crashing gets the event again up to ``max_deliveries`` times (a
    log) or ``max_receives`` (a queue), then the event is dead-lettered: no asynchronous step
    stays open forever."""
    data = {
        "name": "async-crash",
        "seed": 2,
        "duration": 60,
        "drain": 400,
        "services": {"checkout": {"latency": 0.01}, "email": {"latency": 2.0}},
        "workflows": {"order": {"steps": ["checkout", "email"]}},
        "load": {"order": {"rate": 0.5}},
        "faults": [
            {
                "type": "crash",
                "target": "email",
                "mtbf": {"dist": "exponential", "mean": 1.0},
                "mttr": 0.1,
            }
        ],
        "topologies": {"hybrid": {"asynchronous": ["email"], "broker": broker}},
    }
    result = sim.run(sim.scenario_from_dict(data), executor="serial")
    row = result.summary.iloc[0]
    assert row["dead_letters"] > 0
    assert row["async_in_flight"] == 0
    assert row["duplicates"] <= 2 * (row["dead_letters"] + row["run_arrived"])
