"""The workflow engine against theory: shard capacity, shards as thinned queues, the store as an
M/M/c queue, poll dispatch and its timeouts, shard and replica failures, rate limits, and no work
lost or left hanging by a down engine."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

import sim
from sim.analysis.metrics import component_stats
from tests.helpers import batch_means, erlang_c_wait, run_topology


def exp(mean: float) -> dict[str, Any]:
    return {"dist": "exponential", "mean": mean}


def one_step(orchestrator: dict[str, Any], *, rate: float, duration: float, **extra: Any) -> sim.Scenario:
    """A one-step workflow on a fast service, coordinated by the engine given."""
    data: dict[str, Any] = {
        "name": "engine",
        "seed": extra.pop("seed", 3),
        "duration": duration,
        "warmup": extra.pop("warmup", 0),
        "services": extra.pop("services", {"s": {"replicas": 50, "latency": exp(0.01)}}),
        "workflows": {"wf": {"steps": ["s"]}},
        "load": {"wf": {"rate": rate}},
        "topologies": {"orchestration": {"orchestrator": orchestrator}},
        **extra,
    }
    return sim.scenario_from_dict(data)


# --- capacity ----------------------------------------------------------------------------------


def test_one_serial_shard_caps_throughput_at_one_over_two_decisions() -> None:
    """One shard, one worker, constant decision cost d: a one-step workflow needs two decisions,
    so the engine completes at most 1/(2d) workflows per second. Offered more, it runs flat out,
    its backlog grows, and it is the bottleneck."""
    d = 0.01
    sc = one_step({"decision_cpu": d}, rate=60, duration=400, warmup=50)
    result = sim.run(sc)
    row = result.summary.iloc[0]
    engine = result.components.set_index("name").loc["orchestrator"]
    assert abs(engine["handled"] - 350 / d) <= 1, "the shard takes exactly one decision every d seconds"
    cap = 1 / (2 * d)
    assert 0.9 * cap < row["throughput"] <= cap, f"{row['throughput']:.2f}/s vs cap {cap}/s"
    assert row["bottleneck"] == "orchestrator"
    assert row["bottleneck_utilization"] > 0.99
    backlog = result.timeseries["queued_orchestrator"].to_numpy()
    assert backlog[-10] > backlog[10] + 1000, "the backlog grows while arrivals exceed the cap"


def test_shards_are_independent_queues_fed_by_random_thinning() -> None:
    """k shards at rate λ behave like k independent engines each at λ/k: workflows spread over
    the shards by a hash of their id (counts pass a uniformity test), and the mean latency is the
    one of a single shard at λ/k, within batch-means intervals."""
    k, lam, d = 4, 40.0, 0.008
    engine = {"decision_cpu": exp(d), "shards": k}
    many = sim.run(one_step(engine, rate=lam, duration=3000, warmup=100))
    per_shard = many.shards.set_index("name")["handled"].to_numpy()
    assert stats.chisquare(per_shard).pvalue > 0.001, f"shard loads {per_shard} are not an even thinning"
    util = many.shards["utilization"].to_numpy()
    assert util == pytest.approx(np.full(k, 2 * lam / k * d), rel=0.06)
    single = sim.run(one_step({"decision_cpu": exp(d)}, rate=lam / k, duration=12000, warmup=100, seed=9))
    mean_k, half_k = batch_means(many.requests, 100, 3000)
    mean_1, half_1 = batch_means(single.requests, 100, 12000)
    assert abs(mean_k - mean_1) < half_k + half_1, (
        f"{mean_k:.4f} ± {half_k:.4f} vs {mean_1:.4f} ± {half_1:.4f}"
    )


def test_the_store_alone_is_an_m_m_c_queue() -> None:
    """With free decisions and a pipelined store, the store is the only queue of a BCMP network
    (FCFS, exponential, the same rate for every visit): its mean wait is Erlang C's for c servers
    fed at twice the workflow rate (two decisions, one write each)."""
    lam, c, s = 30.0, 2, 0.025
    engine = {
        "shards": 1,
        "shard_concurrency": 1000,
        "store": {"writes_per_decision": 1, "latency": exp(s), "servers": c, "pipelined": True},
    }
    services = {"s": {"replicas": 1000, "latency": exp(1.0)}}
    sc = one_step(engine, rate=lam, duration=4000, warmup=100, services=services)
    run = run_topology(sc, "orchestration")
    store = next(r for r in run.components if r.name == "orchestrator.store")
    expected = erlang_c_wait(c, 2 * lam, 1 / s)
    edges = np.linspace(100, 4000, 21)
    waits = [component_stats(store, a, b, run.end_time)["mean_wait"] for a, b in itertools.pairwise(edges)]
    half = 3.88 * np.std(waits, ddof=1) / math.sqrt(len(waits))
    assert abs(np.mean(waits) - expected) < half, (
        f"store wait {np.mean(waits):.4f} vs Erlang C {expected:.4f} ± {half:.4f}"
    )


def test_a_shard_that_holds_its_writes_is_capped_by_their_latency() -> None:
    """Temporal serialises a shard's updates: with the shard held while its writes commit, one
    shard completes at most 1/(2(d + w·t)) one-step workflows per second; a pipelined store lifts
    that cap."""
    d, w, t = 0.002, 3, 0.004
    held = {"decision_cpu": d, "store": {"writes_per_decision": w, "latency": t}}
    result = sim.run(one_step(held, rate=60, duration=300, warmup=50))
    row = result.summary.iloc[0]
    engine = result.components.set_index("name").loc["orchestrator"]
    assert abs(engine["handled"] - 250 / (d + w * t)) <= 1, "one decision per d + w·t seconds"
    assert engine["utilization"] > 0.999
    cap = 1 / (2 * (d + w * t))
    assert row["throughput"] <= cap
    assert row["store_writes_per_workflow"] == pytest.approx(2 * w, rel=0.01)
    piped = {"decision_cpu": d, "store": {"writes_per_decision": w, "latency": t, "pipelined": True}}
    row = sim.run(one_step(piped, rate=60, duration=300, warmup=50)).summary.iloc[0]
    assert row["throughput"] == pytest.approx(row["offered_rate"], rel=0.03)


def test_a_rate_limit_caps_starts_and_queues_or_rejects_them() -> None:
    limit = {"per_second": 20, "burst": 5, "applies_to": "starts"}
    queued = sim.run(one_step({"rate_limit": limit}, rate=30, duration=300, warmup=30)).summary.iloc[0]
    assert queued["throughput"] == pytest.approx(20, rel=0.02)
    assert queued["failed"] == 0 and queued["throttled"] > 0
    rejected = sim.run(
        one_step({"rate_limit": limit, "when_throttled": "reject"}, rate=30, duration=300, warmup=30)
    ).summary.iloc[0]
    assert rejected["throughput"] == pytest.approx(20, rel=0.03)
    assert rejected["failed"] == pytest.approx(10 * 270, rel=0.1)


def test_a_rate_limit_on_transitions_counts_every_decision() -> None:
    limit = {"per_second": 40, "burst": 10}
    result = sim.run(one_step({"rate_limit": limit}, rate=30, duration=300, warmup=30))
    engine = result.components.set_index("name").loc["orchestrator"]
    assert engine["handled"] == pytest.approx(40 * 270, rel=0.005), "40 decisions per second, no more"
    assert result.summary.iloc[0]["throughput"] <= 20, "two decisions per workflow share 40 tokens/s"


# --- poll dispatch -----------------------------------------------------------------------------


def _outage_run(dispatch: str, **service: Any) -> sim.RunResult:
    lam = 5.0
    services = {"s": {"replicas": 2, "latency": exp(0.05), **service}}
    faults = [{"type": "outage", "target": "s", "at": 100, "duration": 200}]
    sc = one_step({"dispatch": dispatch}, rate=lam, duration=500, services=services, faults=faults, drain=600)
    return sim.run(sc)


def test_poll_waits_out_an_outage_with_no_failure() -> None:
    row = _outage_run("poll").summary.iloc[0]
    assert row["failed"] == 0 and row["completed"] == row["arrived"]


def test_poll_with_schedule_to_start_fails_the_tasks_that_wait_longer() -> None:
    """A task waits in its queue for at most T: the ones scheduled in the first D − T seconds of
    a D-second outage fail (without retry); the rest start in time (the backlog drains at μ > λ)."""
    lam, down, limit = 5.0, 200.0, 50.0
    result = _outage_run("poll", schedule_to_start=limit)
    row = result.summary.iloc[0]
    expected = lam * (down - limit)
    assert abs(row["failed"] - expected) < 4 * math.sqrt(expected), f"{row['failed']} vs {expected}"
    failed = result.requests[result.requests["status"] == "failed"]
    assert failed["arrival"].between(99, 100 + down - limit + 1).all()
    assert row["schedule_to_start_timeouts"] == row["failed"]


def test_push_fails_the_calls_that_meet_the_outage() -> None:
    lam, down = 5.0, 200.0
    row = _outage_run("push").summary.iloc[0]
    assert abs(row["failed"] - lam * down) < 4 * math.sqrt(lam * down) + 3


def test_poll_reports_schedule_to_start_latency() -> None:
    result = _outage_run("poll")
    comp = result.components.set_index("name").loc["s"]
    assert comp["schedule_to_start_p99"] > 100, "tasks of the outage waited for the service to return"
    assert comp["schedule_to_start_p50"] < 1


def test_poll_notices_a_crashed_worker_after_its_heartbeat_and_retries() -> None:
    """Workers crash often; a crashed task is retried after the heartbeat timeout (or else at
    start-to-close), so nothing fails, and the heartbeat shortens the wait."""
    crash = [{"type": "crash", "target": "s", "mtbf": exp(20), "mttr": 1.0}]

    def run(**service: Any) -> Any:
        services = {"s": {"replicas": 2, "latency": exp(0.5), "start_to_close": 60, **service}}
        sc = one_step({"dispatch": "poll"}, rate=1, duration=300, services=services, faults=crash, drain=2000)
        return sim.run(sc).summary.iloc[0]

    slow, quick = run(), run(heartbeat=2)
    assert slow["failed"] == 0 and quick["failed"] == 0
    assert slow["completed"] == slow["arrived"] and quick["completed"] == quick["arrived"]
    assert quick["latency_max"] < 20 < slow["latency_max"]


# --- failures of the engine ---------------------------------------------------------------------


def test_losing_one_shard_of_four_affects_a_quarter_of_the_workflows_in_its_window() -> None:
    faults = [{"type": "outage", "target": "orchestrator", "shards": [0], "at": 100, "duration": 60}]
    sc = one_step({"shards": 4, "dispatch": "poll"}, rate=20, duration=300, faults=faults)
    result = sim.run(sc)
    twins = result.requests.merge(result.baseline.requests, on=["workflow", "id"], suffixes=("", "_b"))
    during = twins[twins["arrival"].between(100, 160)]
    late = (during["latency"] > during["latency_b"] + 1).mean()
    assert abs(late - 0.25) < 3 * math.sqrt(0.25 * 0.75 / len(during)), (
        f"{late:.3f} of the window's workflows"
    )
    assert result.summary.iloc[0]["failed"] == 0


def test_a_failed_replica_stalls_its_shards_until_the_survivors_take_them_over() -> None:
    """One of three replicas down for 60 s: its shards (a third) stall for the failover time,
    then the survivors own them."""
    faults = [{"type": "capacity_loss", "target": "orchestrator", "replicas": 1, "at": 100, "duration": 60}]
    engine = {"shards": 6, "replicas": 3, "failover_time": 5}
    result = sim.run(one_step(engine, rate=20, duration=300, faults=faults))
    twins = result.requests.merge(result.baseline.requests, on=["workflow", "id"], suffixes=("", "_b"))
    stalled = twins[twins["latency"] > twins["latency_b"] + 0.5]
    assert stalled["arrival"].between(95, 106).all(), "only workflows of the failover window wait"
    assert stalled["latency"].max() < 6
    share = len(stalled) / len(twins[twins["arrival"].between(100, 105)])
    assert 0.15 < share < 0.5, f"a third of the shards: {share:.2f}"


def test_a_non_durable_engine_loses_the_workflows_of_a_replica_it_loses() -> None:
    """Losing one of two replicas of a non-durable engine loses the workflows on its shards: none
    stays in flight. Their calls in progress still take effect at the service, which the engine
    has forgotten, so those end inconsistent; the others end lost."""
    faults = [{"type": "capacity_loss", "target": "orchestrator", "replicas": 1, "at": 100, "duration": 30}]
    services = {"s": {"replicas": 50, "latency": exp(2.0)}}
    engine = {"shards": 4, "replicas": 2, "durable": False, "dispatch_latency": 0.5}
    row = sim.run(one_step(engine, rate=10, duration=300, services=services, faults=faults)).summary.iloc[0]
    assert row["lost"] > 0 and row["inconsistent"] > 0 and row["in_flight"] == 0
    # only the half of the workflows in flight on the lost shards (2.5 s each, 10 per second)
    assert row["lost"] + row["inconsistent"] < 10 * 2.5 * 0.75


def test_a_down_engine_fires_no_retries() -> None:
    """A durable engine that is down keeps its timers: no retry reaches the service during the
    engine's outage; they go out when it is back."""
    services = {
        "s": {"replicas": 5, "latency": exp(0.05), "error_probability": 0.5, "retry": {"max_attempts": 10}}
    }
    faults = [{"type": "outage", "target": "orchestrator", "at": 100, "duration": 30}]
    run = run_topology(one_step({}, rate=10, duration=200, services=services, faults=faults), "orchestration")
    service = next(r for r in run.components if r.name == "s")
    during = (service.arrived > 100.5) & (service.arrived < 130)
    assert not during.any(), f"{int(during.sum())} attempts reached the service while the engine was down"


@pytest.mark.parametrize("durable", [True, False])
@pytest.mark.parametrize("dispatch", ["push", "poll"])
def test_conservation_with_engine_crashes_while_tasks_wait(durable: bool, dispatch: str) -> None:
    faults = [
        {"type": "crash", "target": "orchestrator", "mtbf": exp(30), "mttr": exp(5)},
        {"type": "crash", "target": "s", "mtbf": exp(20), "mttr": exp(3)},
        {"type": "outage", "target": "orchestrator.store", "at": 50, "duration": 10},
    ]
    engine = {
        "dispatch": dispatch,
        "shards": 4,
        "replicas": 2,
        "durable": durable,
        "failover_time": 2,
        "decision_cpu": exp(0.002),
        "store": {"latency": exp(0.001), "servers": 2},
    }
    services = {"s": {"replicas": 2, "latency": exp(0.2), "retry": {"max_attempts": 4}, "start_to_close": 5}}
    sc = one_step(engine, rate=8, duration=200, services=services, faults=faults, drain=1000)
    result = sim.run(sc)
    for frame in (result.summary, result.baseline.summary):
        outcomes = frame[["completed", "failed", "compensated", "inconsistent", "lost", "in_flight"]].sum(
            axis=1
        )
        assert (outcomes == frame["arrived"]).all()
        assert (frame["in_flight"] == 0).all(), "nothing stays in flight once the run has drained"
    if durable:
        assert result.summary.iloc[0]["lost"] == 0


def test_an_engine_database_outage_stalls_every_decision() -> None:
    faults = [{"type": "outage", "target": "orchestrator.store", "at": 100, "duration": 20}]
    engine = {"store": {"latency": 0.001}}
    result = sim.run(one_step(engine, rate=10, duration=200, faults=faults))
    done = result.requests["completion"]
    assert not ((done > 100.01) & (done < 120)).any(), "no workflow completes while the store is down"
    assert result.summary.iloc[0]["failed"] == 0


def test_old_engine_fields_name_their_replacements() -> None:
    with pytest.raises(sim.ScenarioError, match="step_overhead was replaced by decision_cpu"):
        one_step({"step_overhead": 0.01}, rate=1, duration=10)
    with pytest.raises(sim.ScenarioError, match="workers was replaced by shards"):
        one_step({"workers": 4}, rate=1, duration=10)
