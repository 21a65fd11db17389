"""Replications, automatic warm-up, executors and sweeps (with resume)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import sim
from sim.api.sweep import plan, run_sweep
from sim.running.executors import DaskExecutor, ProcessExecutor, SerialExecutor

SMALL = {
    "name": "small",
    "seed": 5,
    "duration": 60,
    "warmup": 5,
    "services": {
        "a": {"replicas": 2, "latency": {"dist": "exponential", "mean": 0.1}},
        "b": {"latency": {"dist": "exponential", "mean": 0.05}},
    },
    "workflows": {"wf": {"steps": ["a", "b"]}},
    "load": {"wf": {"rate": 6}},
    "topologies": {
        "orchestration": {"orchestrator": {"shard_concurrency": 2, "decision_cpu": 0.01}},
        "choreography": {"broker": {"kind": "queue", "publish_latency": 0.003}},
    },
}


@pytest.fixture
def small_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL), encoding="utf-8")
    return path


# --- replications ---------------------------------------------------------------------------


def test_replications_give_intervals_and_paired_differences() -> None:
    sc = sim.scenario_from_dict(SMALL)
    result = sim.run(sc, replications=4, executor="serial")
    assert result.replications == 4
    assert sorted(result.summary["replication"].unique()) == [0, 1, 2, 3]
    iv = result.intervals.set_index("topology")
    for name in ("orchestration", "choreography"):
        rows = result.summary[result.summary["topology"] == name]["latency_mean"]
        assert iv.loc[name, "latency_mean"] == pytest.approx(rows.mean())
        assert iv.loc[name, "latency_mean_low"] < rows.mean() < iv.loc[name, "latency_mean_high"]
    diff = result.differences.set_index("metric")
    assert diff.loc["latency_mean", "topology"] == "choreography"
    # Common random numbers: the paired interval is far narrower than the unpaired one.
    assert diff.loc["latency_mean", "half_width"] < 0.5 * diff.loc["latency_mean", "unpaired_half_width"]
    assert any(
        line.startswith("latency_p99: choreography − orchestration = ") for line in result.difference_lines()
    )
    data = result.to_dict()
    assert data["replications"] == 4
    assert "intervals" in data["topologies"][0] and "differences" in data


def test_replication_zero_is_the_single_run_and_others_differ() -> None:
    sc = sim.scenario_from_dict(SMALL)
    single = sim.run(sc, topologies=["choreography"])
    many = sim.run(sc, topologies=["choreography"], replications=2, executor="serial")
    first = many.requests[many.requests["replication"] == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, single.requests)
    second = many.requests[many.requests["replication"] == 1]
    assert not np.array_equal(second["arrival"].to_numpy()[:10], first["arrival"].to_numpy()[:10])


def test_executors_give_identical_results() -> None:
    sc = sim.scenario_from_dict(SMALL)
    serial = sim.run(sc, replications=3, executor=SerialExecutor())
    with ProcessExecutor(2) as pool:
        parallel = sim.run(sc, replications=3, executor=pool)
    pd.testing.assert_frame_equal(serial.summary, parallel.summary)
    pd.testing.assert_frame_equal(serial.requests, parallel.requests)


def test_automatic_warmup_is_chosen_and_reported() -> None:
    data = {**SMALL, "warmup": "auto", "duration": 200}
    data["load"] = {"wf": {"rate": 15}}  # a heavily loaded start-up transient
    result = sim.run(sim.scenario_from_dict(data), executor="serial")
    chosen = result.scenario.warmup
    assert isinstance(chosen, float) and 0 <= chosen < 100
    assert result.meta["warmup_chosen_by"] == "MSER-5"
    assert result.to_dict()["warmup"] == chosen


# --- sweeps ---------------------------------------------------------------------------------


def test_sweep_grid_and_tables(small_file: Path, tmp_path: Path) -> None:
    result = run_sweep(
        small_file,
        ["load.wf.rate=4,8", "services.a.replicas=1:2:1"],
        out=tmp_path / "sweep",
        replications=2,
        executor="serial",
        plots=True,
    )
    assert len(result.points) == 4
    assert len(result.tidy) == 4 * 2 * 2  # points × topologies × replications
    assert set(result.summary.columns) >= {"load.wf.rate", "services.a.replicas", "latency_p99_low", "n"}
    assert (result.summary["n"] == 2).all()
    for name in ("sweep.csv", "sweep_summary.csv", "sweep_differences.csv", "errors.csv", "sweep.json"):
        assert (tmp_path / "sweep" / name).exists()
    assert any((tmp_path / "sweep" / "plots").glob("latency_p99-vs-load.wf.rate.png"))
    back = sim.read_sweep(tmp_path / "sweep")
    pd.testing.assert_frame_equal(back.summary, result.summary, check_dtype=False)
    assert back.points == result.points and back.factor_names == result.factor_names
    # More replicas of the bottleneck service lower latency at the higher load.
    s = result.summary.set_index(["load.wf.rate", "services.a.replicas", "topology"])
    assert s.loc[(8, 2, "choreography"), "latency_mean"] < s.loc[(8, 1, "choreography"), "latency_mean"]


def test_sweep_can_be_described_in_the_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "sweep": {"vary": {"load.wf.rate": "2:6:2"}}}), encoding="utf-8")
    swept = plan(path)
    assert [f.path for f in swept.factors] == ["load.wf.rate"]
    assert [p.values["load.wf.rate"] for p in swept.points] == [2, 4, 6]
    assert len(swept.tasks) == 3 * 2


def test_sweep_resumes_after_an_interruption(small_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    calls = []

    def interrupt(done: int, total: int) -> None:
        calls.append(done)
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(small_file, ["load.wf.rate=2,4,6"], out=out, executor="serial", progress=interrupt)
    # The first point (two simulations) is evaluated; the third simulation waits on disk.
    assert len(list((out / "points").glob("*.json"))) == 1
    assert len(list((out / "tasks").glob("*.npz"))) == 1
    result = run_sweep(small_file, ["load.wf.rate=2,4,6"], out=out, executor="serial")
    assert result.meta["skipped"] == 3 and result.meta["ran"] == 3
    assert not list((out / "tasks").glob("*.npz")), "raw records are dropped once their point is evaluated"
    fresh = run_sweep(small_file, ["load.wf.rate=2,4,6"], out=tmp_path / "fresh", executor="serial")
    cols = ["point", "topology", "replication", "latency_mean", "throughput"]
    pd.testing.assert_frame_equal(
        result.tidy[cols].sort_values(cols[:3]).reset_index(drop=True),
        fresh.tidy[cols].sort_values(cols[:3]).reset_index(drop=True),
    )


def test_sweep_records_a_crashed_point_and_goes_on(small_file: Path, tmp_path: Path, monkeypatch) -> None:
    import sim.api.sweep as sweep_module

    real = sweep_module.simulate_into

    def flaky(job):
        task, _ = job
        if task.topology == "choreography" and task.scenario.load["wf"].rate == 4:
            raise RuntimeError("boom")
        return real(job)

    monkeypatch.setattr(sweep_module, "simulate_into", flaky)
    result = run_sweep(small_file, ["load.wf.rate=2,4"], out=tmp_path / "sweep", executor="serial")
    assert len(result.errors) == 1
    assert "boom" in result.errors.iloc[0]["error"]
    assert result.errors.iloc[0]["topology"] == "choreography"
    # The crashed simulation's point is not evaluated; the other point is, in full.
    assert len(result.tidy) == 2 and set(result.tidy["point"]) == {0}
    monkeypatch.setattr(sweep_module, "simulate_into", real)
    again = run_sweep(small_file, ["load.wf.rate=2,4"], out=tmp_path / "sweep", executor="serial")
    assert again.errors.empty and len(again.tidy) == 4 and again.meta["ran"] == 1


@pytest.mark.slow
def test_sweep_results_are_equal_on_every_executor(small_file: Path, tmp_path: Path) -> None:
    args = (small_file, ["load.wf.rate=3,6"])
    serial = run_sweep(*args, out=tmp_path / "a", executor="serial", replications=2, plots=False)
    procs = run_sweep(*args, out=tmp_path / "b", executor="processes", workers=2, replications=2, plots=False)
    dask = DaskExecutor("local", workers=2)
    try:
        distributed = run_sweep(*args, out=tmp_path / "c", executor=dask, replications=2, plots=False)
    finally:
        dask.close()
    cols = ["point", "topology", "replication", "latency_mean", "latency_p99", "throughput", "completed"]
    key = cols[:3]
    base = serial.tidy[cols].sort_values(key).reset_index(drop=True)
    for other in (procs, distributed):
        pd.testing.assert_frame_equal(base, other.tidy[cols].sort_values(key).reset_index(drop=True))


def test_saturation_finds_the_limit_of_a_load_sweep(tmp_path: Path) -> None:
    data = {**SMALL, "duration": 200, "drain": 0}
    data["services"] = {"a": {"latency": {"dist": "exponential", "mean": 0.1}}}  # capacity 10/s
    data["workflows"] = {"wf": {"steps": ["a"]}}
    path = tmp_path / "sat.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = run_sweep(path, ["load.wf.rate=4,7,13,16"], out=tmp_path / "sat", executor="serial", plots=False)
    sat = result.saturation.set_index("topology")
    for name in ("orchestration", "choreography"):
        assert sat.loc[name, "highest_sustained"] == 7
        assert sat.loc[name, "first_unsustained"] == 13
        assert sat.loc[name, "saturates_first"] == "a"
    assert "highest_meeting_p99" not in sat.columns
    flows = result.workflows
    assert set(flows["workflow"]) == {"wf"} and len(flows) == len(result.tidy)
    assert (tmp_path / "sat" / "sweep_workflows.csv").exists()


def test_saturation_at_a_service_level(tmp_path: Path) -> None:
    """An M/M/1 queue with μ = 10/s: its p99 sojourn is ln(100) / (μ − λ), 0.77 s at 4/s and
    1.5 s at 7/s. With a 1 s p99 objective its capacity at that level is 4/s, though it
    sustains 7/s."""
    data = {**SMALL, "duration": 400, "drain": 0, "objectives": {"latency_p99": 1.0}}
    data["services"] = {"a": {"latency": {"dist": "exponential", "mean": 0.1}}}
    data["workflows"] = {"wf": {"steps": ["a"]}}
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = run_sweep(path, ["load.wf.rate=2,4,7,13"], out=tmp_path / "slo", executor="serial", plots=False)
    sat = result.saturation.set_index("topology")
    for name in ("orchestration", "choreography"):
        assert sat.loc[name, "highest_sustained"] == 7
        assert sat.loc[name, "highest_meeting_p99"] == 4
        assert sat.loc[name, "p99_objective"] == 1.0
