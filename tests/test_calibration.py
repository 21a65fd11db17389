"""Calibration from traces: a run's own traces give back its scenario. The round trip: simulate
with every instance traced, calibrate from those traces, simulate the calibrated scenario, and
its mean and p99 latency fall within the original's intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import sim
from sim.cli.app import app

ORIGINAL: dict[str, Any] = {
    "name": "original",
    "seed": 5,
    "duration": 400,
    "services": {
        "cart": {"latency": {"dist": "lognormal", "median": 0.03, "sigma": 0.5}, "replicas": 50},
        "stock": {"latency": {"dist": "exponential", "mean": 0.02}, "replicas": 50},
        "label": {"latency": {"dist": "gamma", "mean": 0.04, "cv": 0.5}, "replicas": 50},
        "ship": {"latency": {"dist": "uniform", "low": 0.01, "high": 0.05}, "replicas": 50},
    },
    "workflows": {"order": {"steps": ["cart", {"parallel": ["stock", "label"]}, "ship"]}},
    "load": {"order": {"rate": 5}},
    "topologies": {"orchestration": {}},
}
"""Zero coordination costs and no queueing: a service's span is its service time."""


def _traced(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    result = sim.run(sim.scenario_from_dict(ORIGINAL), trace=10_000)
    result.save(out, plots=False)
    return out / "traces" / "otlp.json"


def _p99_interval(latencies: np.ndarray, batches: int = 10) -> tuple[float, float]:
    """Batch-means interval of the p99 (and of the mean, below), over batches in arrival order."""
    parts = np.array_split(latencies, batches)
    values = np.array([np.quantile(p, 0.99) for p in parts])
    half = 3.25 * values.std(ddof=1) / np.sqrt(batches)  # t(0.995, 9): a 99 % interval
    return float(np.quantile(latencies, 0.99)), float(half)


def test_a_calibrated_scenario_reproduces_its_source(tmp_path: Path) -> None:
    traces = _traced(tmp_path)
    path = sim.calibrate(traces, tmp_path / "calibrated.yaml")
    calibrated = sim.load_scenario(path)
    assert calibrated.workflows["order"].model_dump()["steps"] == [
        "cart",
        {"parallel": ["label", "stock"]},
        "ship",
    ]
    assert calibrated.load["order"].rate == pytest.approx(5, rel=0.1)
    original = sim.run(sim.scenario_from_dict(ORIGINAL)).requests
    again = sim.run(calibrated.model_copy(update={"duration": 400.0, "seed": 9})).requests
    a = original.loc[original["status"] == "completed", "latency"].to_numpy()
    b = again.loc[again["status"] == "completed", "latency"].to_numpy()
    parts = np.array([p.mean() for p in np.array_split(a, 10)])
    half = 3.25 * parts.std(ddof=1) / np.sqrt(10)
    assert abs(b.mean() - a.mean()) < half, (a.mean(), b.mean(), half)
    p99_a, half_a = _p99_interval(a)
    assert abs(np.quantile(b, 0.99) - p99_a) < half_a, (p99_a, np.quantile(b, 0.99), half_a)


@pytest.mark.parametrize(("fit", "service", "mean"), [("lognormal", "cart", 0.034), ("gamma", "stock", 0.02)])
def test_a_fitted_latency_keeps_the_mean(tmp_path: Path, fit: str, service: str, mean: float) -> None:
    """A fit of the distribution a service really has (cart's lognormal: median 30 ms, sigma
    0.5, mean 34 ms; the gamma of any sample has its mean)."""
    traces = _traced(tmp_path)
    cal = sim.load_scenario(sim.calibrate(traces, tmp_path / f"{fit}.yaml", fit=fit))
    assert cal.services[service].latency.mean == pytest.approx(mean, rel=0.1)


def test_jaeger_traces_are_read(tmp_path: Path) -> None:
    """Jaeger's JSON: microseconds, processes naming the services, CHILD_OF references."""
    traces = []
    for i in range(50):
        t0 = 1_000_000 + i * 200_000  # one order every 0.2 s
        spans = [
            {"traceID": f"t{i}", "spanID": "r", "operationName": "checkout", "references": [],
             "startTime": t0, "duration": 90_000, "processID": "p0"},
            {"traceID": f"t{i}", "spanID": "a", "operationName": "POST /pay",
             "references": [{"refType": "CHILD_OF", "spanID": "r"}],
             "startTime": t0 + 1_000, "duration": 40_000, "processID": "p1"},
            {"traceID": f"t{i}", "spanID": "b", "operationName": "POST /ship",
             "references": [{"refType": "CHILD_OF", "spanID": "r"}],
             "startTime": t0 + 45_000, "duration": 30_000, "processID": "p2"},
        ]  # fmt: skip
        processes = {
            "p0": {"serviceName": "gateway"},
            "p1": {"serviceName": "pay"},
            "p2": {"serviceName": "ship"},
        }
        traces.append({"traceID": f"t{i}", "spans": spans, "processes": processes})
    path = tmp_path / "jaeger.json"
    path.write_text(json.dumps({"data": traces}))
    cal = sim.load_scenario(sim.calibrate(path, tmp_path / "j.yaml", sampled=0.5))
    assert cal.workflows["checkout"].model_dump()["steps"] == ["pay", "ship"]
    assert cal.load["checkout"].rate == pytest.approx(2 * 5.0)  # 5 traced a second, half of all
    assert cal.services["pay"].latency.mean == pytest.approx(0.04)


def test_the_cli_writes_a_scenario_and_refuses_bad_input(tmp_path: Path) -> None:
    traces = _traced(tmp_path)
    runner = CliRunner()
    out = tmp_path / "cli.yaml"
    ok = runner.invoke(app, ["calibrate", str(traces), "--out", str(out), "--fit", "lognormal"])
    assert ok.exit_code == 0, ok.output
    assert yaml.safe_load(out.read_text())["services"]["cart"]["latency"]["dist"] == "lognormal"
    again = runner.invoke(app, ["calibrate", str(traces), "--out", str(out)])
    assert again.exit_code == 2 and "exists already" in again.output
    (tmp_path / "bad.json").write_text("{}")
    bad = runner.invoke(app, ["calibrate", str(tmp_path / "bad.json"), "--out", str(tmp_path / "x.yaml")])
    assert bad.exit_code == 2 and "cannot read the traces" in bad.output
