"""Autoscaling: the HPA's arithmetic after a load step, its stabilization, consumers beyond the
partitions, the engine's shard moves, and what the replicas cost. Expectations come from the
HPA's formula desired = ceil(current × metric / target), never from the code's numbers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import sim
from sim.analysis.replicas import level, replicas_table
from sim.model.records import TopologyRun
from sim.running.simulate import Task, simulate
from sim.scenario.errors import ScenarioError

STEP = 300.0
"""The instant of the load step (a multiple of the interval: the first evaluation after it
reads a window of the new load only)."""


def _scenario(
    schedule: list[tuple[float, float]],
    latency: Any,
    autoscale: dict[str, Any],
    duration: float = 600.0,
    arrival: str = "poisson",
    topologies: dict[str, Any] | None = None,
    **service: Any,
) -> dict[str, Any]:
    return {
        "name": "autoscale",
        "seed": 5,
        "duration": duration,
        "warmup": 0,
        "drain": 60,
        "services": {"a": {"latency": latency, "replicas": 1, "autoscale": autoscale, **service}},
        "workflows": {"w": {"steps": ["a"]}},
        "load": {"w": {"arrival": arrival, "schedule": [{"at": t, "rate": r} for t, r in schedule]}},
        "topologies": topologies or {"orchestration": {}, "choreography": {"broker": {"kind": "queue"}}},
    }


def _runs(data: dict[str, Any]) -> dict[str, TopologyRun]:
    sc = sim.scenario_from_dict(data)
    return {name: simulate(Task(sc, name, 0)) for name in sc.topologies}


def _series(run: TopologyRun, name: str = "a") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frame = replicas_table([run])
    rows = frame[frame["component"] == name]
    return rows["time"].to_numpy(), rows["replicas"].to_numpy(), rows["ready"].to_numpy()


def _at(times: np.ndarray, values: np.ndarray, t: float) -> int:
    return int(values[np.searchsorted(times, t, side="right") - 1])


def test_after_a_load_step_replicas_reach_the_hpa_count_within_interval_plus_startup() -> None:
    """λ S = 0.8 with target 0.5 asks for ceil(1.6) = 2 replicas; after the step to λ S = 1.7 the
    two replicas are 85 % busy (not saturated, so the metric sees the whole load) and the HPA asks
    for ceil(3.4) = 4, running from the first evaluation after the step and serving after the
    startup time. Short requests at a high rate keep the metric's noise far from the rounding
    edges (1.5 and 2.0 replicas' worth of work)."""
    interval, startup = 15.0, 20.0
    data = _scenario(
        [(0, 80.0), (STEP, 170.0)],
        {"dist": "exponential", "mean": 0.01},
        {"min": 1, "max": 10, "target": 0.5, "interval": interval, "startup_time": startup},
    )
    for name, run in _runs(data).items():
        times, running, ready = _series(run)
        expected_before = math.ceil(80 * 0.01 / 0.5)
        expected_after = math.ceil(170 * 0.01 / 0.5)
        assert _at(times, running, STEP - 1) == expected_before, name
        assert _at(times, running, STEP + interval) == expected_after, name
        assert _at(times, ready, STEP + interval + startup - 1e-6) == expected_before, name
        assert _at(times, ready, STEP + interval + startup) == expected_after, name
        # ... and they stay there (the metric within its tolerance, or rounding to the same count)
        after = times >= STEP + interval + startup
        assert set(ready[after].tolist()) == {expected_after}, name
        assert run.counters["scale_ups"] >= 2


def test_exact_arithmetic_and_the_scale_down_stabilization_window() -> None:
    """Evenly spaced arrivals with constant work make the busy share exact: 10/s × 0.1 s on one
    replica is 100 % (desired 2), 17/s on two is 85 % (desired ceil(3.4) = 4), and after the drop
    to 4/s the recommendation is 1 but the scale-down waits for the last high recommendation to
    leave the 300 s window."""
    data = _scenario(
        [(0, 10.0), (STEP, 17.0), (600, 4.0)],
        {"dist": "constant", "value": 0.1},
        {"min": 1, "max": 10, "target": 0.5, "interval": 15, "stabilization_down": 300},
        duration=1200,
        arrival="deterministic",
        topologies={"orchestration": {}},
    )
    run = _runs(data)["orchestration"]
    times, running, ready = _series(run)
    assert _at(times, running, 14.9) == 1
    assert _at(times, running, 15) == 2
    assert _at(times, running, STEP + 15) == 4
    assert _at(times, running, 600 + 300 - 1e-6) == 4  # held by the stabilization window
    assert _at(times, running, 600 + 300) == 1
    assert np.array_equal(running, ready)  # no startup time: a replica serves as it starts


def test_a_scale_up_is_limited_to_the_hpa_default_policy() -> None:
    """A lag of thousands asks for many more replicas at once; the HPA adds at most max(4 pods,
    100 %) per 15 s: 1 → 5 → 10 → 20."""
    data = _scenario(
        [(0, 200.0)],
        {"dist": "constant", "value": 0.1},
        {"min": 1, "max": 40, "metric": "queue", "target": 1, "interval": 15},
        duration=120,
        arrival="deterministic",
        topologies={"orchestration": {}},
    )
    times, running, _ = _series(_runs(data)["orchestration"])
    assert [_at(times, running, t) for t in (0, 15, 30, 45)] == [1, 5, 10, 20]


def test_consumers_beyond_the_partitions_add_nothing_and_rebalance() -> None:
    """Two partitions, each processed one event at a time, serve at most 2 / 0.1 s = 20 events a
    second however many consumers join: the autoscaler on the lag keeps adding consumers (each
    join rebalances the group), and the throughput stays at the partitions' ceiling."""
    data = _scenario(
        [(0, 30.0)],
        {"dist": "constant", "value": 0.1},
        {"min": 1, "max": 6, "metric": "lag", "target": 20, "interval": 15},
        duration=300,
        topologies={"choreography": {"broker": {"partitions": 2}}},
    )
    run = _runs(data)["choreography"]
    _times, running, _ = _series(run)
    assert running.max() == 6
    assert run.counters["rebalances"] >= run.counters["scale_ups"]  # consumers joining at once: one
    done = run.outcomes.completion[~np.isnan(run.outcomes.completion)]
    late = done[(done >= 100) & (done < 300)]
    assert late.size / (300 - 100) == pytest.approx(20.0, rel=0.02)


def test_scaling_on_lag_holds_the_backlog_near_its_target() -> None:
    """With eight partitions and work of 0.1 s, 40 events a second need more than four consumers;
    starting from one, the lag grows until the autoscaler has added them. Then the HPA holds the
    lag near target × consumers (desired = ceil(lag / target)), so by Little's law an event waits
    at most about max × target / λ = 8 × 10 / 40 = 2 s: the backlog is bounded, not growing."""
    data = _scenario(
        [(0, 40.0)],
        {"dist": "exponential", "mean": 0.1},
        {"min": 1, "max": 8, "metric": "lag", "target": 10, "interval": 15, "startup_time": 5},
        duration=900,
        topologies={"choreography": {"broker": {"partitions": 8}}},
    )
    run = _runs(data)["choreography"]
    times, _running, ready = _series(run)
    assert _at(times, ready, 200) >= 5
    lat = run.outcomes.completion - run.outcomes.arrival
    late = lat[run.outcomes.arrival > 600]
    assert np.all(~np.isnan(late))
    assert 0.1 < np.mean(late) < 8 * 10 / 40


def test_the_engine_scales_by_moving_its_fixed_shards() -> None:
    """Engine replicas hold the shards; scaling out hands shards over to the new replicas (each
    move is a short pause, never a lost workflow), and the shards stay as many as configured."""
    data = _scenario(
        [(0, 20.0), (STEP, 60.0)],
        {"dist": "exponential", "mean": 0.01},
        {"min": 1, "max": 4, "target": 0.9},
        topologies={
            "orchestration": {
                "orchestrator": {
                    "shards": 8,
                    "decision_cpu": {"dist": "constant", "value": 0.02},
                    "handover_time": 0.5,
                    "autoscale": {"min": 1, "max": 4, "target": 0.1, "interval": 15},
                }
            }
        },
    )
    run = _runs(data)["orchestration"]
    _times, running, _ = _series(run, "orchestrator")
    assert running.max() == 4
    assert run.counters["shard_moves"] >= 6  # 8 shards evened over up to 4 replicas
    shards = [c for c in run.components if c.group == "orchestrator"]
    assert len(shards) == 8
    assert np.all(run.outcomes.status == 1)  # completed, every one


def test_replicas_are_paid_for_as_they_ran() -> None:
    """The services' cost is the integral of the running replicas times the price, exactly."""
    data = _scenario(
        [(0, 80.0), (STEP, 170.0)],
        {"dist": "exponential", "mean": 0.01},
        {"min": 1, "max": 10, "target": 0.5, "startup_time": 20},
        topologies={"orchestration": {}},
    )
    data["costs"] = {"replica_hour": 0.36}
    result = sim.run(sim.scenario_from_dict(data))
    row = result.summary.iloc[0]
    frame = result.replicas
    times = [*frame["time"].tolist(), float(row["end_time"])]
    seconds = sum(n * (b - a) for n, a, b in zip(frame["replicas"], times[:-1], times[1:], strict=True))
    assert row["cost_services"] == pytest.approx(seconds / 3600 * 0.36, rel=1e-12)
    components = result.components.set_index("name")
    assert components.loc["a", "replicas_max"] == frame["replicas"].max()
    entry = result.to_dict()["topologies"][0]
    assert entry["autoscaling"]["a"]["replicas_max"] == frame["replicas"].max()
    assert entry["autoscaling"]["a"]["scale_ups"] >= 2


def test_utilization_is_against_the_replicas_that_served() -> None:
    """An autoscaled service's utilization divides its busy servers by the servers of the replicas
    serving on average, not by its most: near the target once it has settled."""
    data = _scenario(
        [(0, 170.0)],
        {"dist": "exponential", "mean": 0.01},
        {"min": 1, "max": 20, "target": 0.5, "stabilization_down": 0},
        topologies={"orchestration": {}},
    )
    data["warmup"] = 120
    result = sim.run(sim.scenario_from_dict(data))
    util = float(result.components.set_index("name").loc["a", "utilization"])
    assert util == pytest.approx(1.7 / 4, rel=0.05)


def test_faults_and_deploys_act_on_the_replicas_that_exist() -> None:
    """Crashes, a capacity loss and a rolling deploy on an autoscaled service (choreography over a
    log, whose consumers rebalance): every workflow accounted for, deterministic."""
    data = _scenario(
        [(0, 20.0), (200, 60.0)],
        {"dist": "exponential", "mean": 0.05},
        {"min": 2, "max": 8, "target": 0.5, "startup_time": 10, "stabilization_down": 60},
        topologies={"orchestration": {}, "choreography": {"broker": {"partitions": 8}}},
    )
    data["faults"] = [
        {"type": "crash", "target": "a", "mtbf": 120, "mttr": 15},
        {"type": "capacity_loss", "target": "a", "at": 250, "duration": 30, "replicas": 1},
        {"type": "deploy", "target": "a", "at": 400, "batch": 2},
    ]
    first = _runs(data)
    again = _runs(data)
    for name, run in first.items():
        assert np.array_equal(run.outcomes.completion, again[name].outcomes.completion, equal_nan=True)
        assert np.array_equal(run.tallies["replicas/a"], again[name].tallies["replicas/a"])
        windows = [w for w in run.faults if w["type"] == "crash"]
        assert windows


def test_a_replica_scaled_in_drains_before_it_goes() -> None:
    """Work in progress on a replica scaled in finishes (nothing is aborted) when it fits in the
    drain timeout."""
    data = _scenario(
        [(0, 40.0), (200, 2.0)],
        {"dist": "constant", "value": 0.5},
        {"min": 1, "max": 30, "target": 0.5, "stabilization_down": 0},
        duration=400,
        topologies={"orchestration": {}, "choreography": {"broker": {"kind": "queue"}}},
    )
    for name, run in _runs(data).items():
        _times, running, _ = _series(run)
        assert running.max() > 10 and running[-1] <= 2, name
        service = next(c for c in run.components if c.name == "a")
        assert service.aborted.size == 0, name


@pytest.mark.parametrize(
    ("autoscale", "message"),
    [
        ({"min": 5, "max": 2, "target": 0.5}, "min (5) must not exceed max (2)"),
        ({"max": 2, "target": 1.5}, "at most 1"),
        ({"max": 2, "target": 0.5, "metric": "cpu"}, "metric"),
        ({"target": 0.5}, "max"),
        ({"max": 2, "target": 0.5, "interval": 0.001}, "greater than or equal to 1"),
    ],
)
def test_bad_autoscale_settings_are_refused(autoscale: dict[str, Any], message: str) -> None:
    data = _scenario([(0, 1.0)], 0.1, autoscale)
    with pytest.raises(ScenarioError, match="autoscale") as info:
        sim.scenario_from_dict(data)
    assert message in str(info.value)


def test_an_autoscaler_evaluating_too_often_for_the_run_is_refused() -> None:
    """A year evaluated every second is 31.5 million evaluations: refused unless forced."""
    from sim.scenario.limits import check_limits

    data = _scenario([(0, 0.001)], 0.1, {"max": 2, "target": 0.5, "interval": 1}, duration=365 * 86400)
    data["drain"] = 0
    sc = sim.scenario_from_dict(data)
    with pytest.raises(ScenarioError, match="autoscaler evaluations"):
        check_limits(sc)
    check_limits(sc, force=True)


def test_the_engine_has_no_lag_to_scale_on() -> None:
    data = _scenario([(0, 1.0)], 0.1, {"max": 2, "target": 0.5})
    autoscale = {"max": 3, "metric": "lag", "target": 5}
    data["topologies"] = {"orchestration": {"orchestrator": {"autoscale": autoscale}}}
    with pytest.raises(ScenarioError, match="no lag"):
        sim.scenario_from_dict(data)


def test_level_of_a_step_function() -> None:
    """The time-average of the recorded replicas over a window, and the most."""
    run = TopologyRun.__new__(TopologyRun)
    run.tallies = {"replicas/x": np.array([[0.0, 1], [10.0, 3], [10.0, 4], [30.0, 2]])}
    mean, most = level(run, "replicas", "x", 5.0, 40.0)  # type: ignore[misc]
    assert mean == pytest.approx((5 * 1 + 20 * 4 + 10 * 2) / 35)
    assert most == 4


def test_autoscaling_reaches_the_run_folder_the_report_and_the_command_line(tmp_path: Path) -> None:
    """replicas.csv and plots/replicas.png in the run folder, read back; the report's plot, facts
    and components columns; the command line's rows."""
    from typer.testing import CliRunner

    from sim.api.report import write_report
    from sim.cli.app import app

    data = _scenario(
        [(0, 80.0), (STEP, 170.0)],
        {"dist": "exponential", "mean": 0.01},
        {"min": 1, "max": 10, "target": 0.5, "startup_time": 20},
        duration=400,
    )
    path = tmp_path / "scaled.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    folder = tmp_path / "run"
    out = CliRunner().invoke(app, ["run", str(path), "--out", str(folder)])
    assert out.exit_code == 0, out.output
    assert "autoscaled replica-hours" in out.output and "scale-ups" in out.output
    assert (folder / "replicas.csv").exists() and (folder / "plots" / "replicas.png").exists()
    back = sim.read_run(folder)
    assert set(back.replicas["topology"]) == {"orchestration", "choreography"}
    html = write_report(folder).read_text(encoding="utf-8")
    assert "Replicas over time" in html
    assert "a 1-10 replicas on utilization" in html
    assert "replicas max" in html


def test_a_shard_on_its_way_to_a_host_scaled_in_meanwhile_moves_on() -> None:
    """Shards handed over to a new engine host that is scaled in before they arrive move on to a
    host that serves (the retiring host waits for them): no shard is left on a host that is gone,
    so every workflow finishes."""
    data = _scenario(
        [(0, 20.0), (2, 0.0), (30, 2.0)],
        0.01,
        {"max": 2, "target": 0.5},
        duration=60,
        arrival="deterministic",
        topologies={
            "orchestration": {
                "orchestrator": {
                    "shards": 4,
                    "decision_cpu": 0.04,
                    "handover_time": 5,
                    "autoscale": {"min": 1, "max": 2, "target": 0.1, "interval": 1, "stabilization_down": 0},
                }
            }
        },
    )
    data["services"]["a"].pop("autoscale")
    data["drain"] = 500
    run = _runs(data)["orchestration"]
    _, running, _ = _series(run, "orchestrator")
    assert running.max() == 2 and run.counters["shard_moves"] >= 4
    assert np.all(run.outcomes.status == 1)


def test_shards_of_a_host_scaled_in_while_none_served_move_when_one_returns() -> None:
    """Both engine hosts are lost; the autoscaler scales one in meanwhile, and its drain times out
    with its shards still on it. When the other host returns, those shards move to it: no
    workflow waits forever on a host that is gone."""
    data = _scenario(
        [(0, 20.0), (10, 0.0), (60, 0.5)],
        0.01,
        {"max": 2, "target": 0.5},
        duration=100,
        arrival="deterministic",
        topologies={
            "orchestration": {
                "orchestrator": {
                    "shards": 4,
                    "replicas": 2,
                    "decision_cpu": 0.04,
                    "autoscale": {
                        "min": 1,
                        "max": 2,
                        "target": 0.1,
                        "interval": 1,
                        "stabilization_down": 0,
                        "drain_timeout": 5,
                    },
                }
            }
        },
    )
    data["services"]["a"].pop("autoscale")
    data["drain"] = 500
    data["faults"] = [
        {"type": "capacity_loss", "target": "orchestrator", "at": 10, "duration": 30, "replicas": 2}
    ]
    run = _runs(data)["orchestration"]
    assert np.all(run.outcomes.status == 1)
