"""Faults, resilience, sagas and blast radius: analytic checks, outcomes, conservation, metamorphic."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sim
from sim.analysis.blast_radius import twin_pairs
from tests.helpers import batch_means, run_topology

OUTCOMES = ["completed", "failed", "compensated", "inconsistent", "lost", "in_flight"]


def exp(mean: float) -> dict:
    return {"dist": "exponential", "mean": mean}


def one_service(**extra: Any) -> dict:
    """One exponential service (mean 0.1 s) under Poisson load 5/s, zero overheads."""
    data: dict[str, Any] = {
        "name": "faults",
        "seed": 2,
        "duration": 200,
        "services": {"s": {"latency": exp(0.1)}},
        "workflows": {"wf": {"steps": ["s"]}},
        "load": {"wf": {"rate": 5}},
        "topologies": {
            "orchestration": {},
            "choreography": {"broker": {"kind": "queue", "on_crash": "requeue"}},
        },
    }
    data.update(extra)
    return data


# --- analytic checks ------------------------------------------------------------------------


def test_catch_up_after_a_consumer_outage_drains_in_lambda_d_over_mu_minus_lambda() -> None:
    """A consumer down for D seconds finds about λD + L events waiting (L = ρ/(1−ρ) already in
    the system); an M/M/1 queue starting with n customers empties in n/(μ−λ) on average. Over
    many seeds the mean drain time must match (λD + L)/(μ−λ) within its 99.9 % interval."""
    lam, mu, down, end = 5.0, 10.0, 20.0, 120.0
    expected = (lam * down + (lam / mu) / (1 - lam / mu)) / (mu - lam)
    drains = []
    for seed in range(40):
        sc = sim.scenario_from_dict(
            one_service(
                seed=seed, faults=[{"type": "outage", "target": "s", "at": end - down, "duration": down}]
            )
        )
        rec = next(c for c in run_topology(sc, "choreography").components if c.name == "s")
        # Number in system right after each service completion; the first time it is 0 after
        # recovery is when the backlog has drained.
        ends = np.sort(rec.ended[rec.ended >= end])
        in_system = np.searchsorted(rec.arrived, ends, side="right") - np.searchsorted(
            np.sort(rec.ended), ends, side="right"
        )
        drains.append(float(ends[np.argmax(in_system == 0)] - end))
    half = stats.t.ppf(0.9995, len(drains) - 1) * np.std(drains, ddof=1) / math.sqrt(len(drains))
    assert abs(np.mean(drains) - expected) < half, (
        f"drain {np.mean(drains):.2f} vs {expected:.2f} ± {half:.2f}"
    )


def test_orchestration_without_retries_fails_the_workflows_that_meet_the_outage() -> None:
    """Every workflow that reaches the down service during the outage fails (after the connect
    timeout); they are Poisson(λD) in number, plus at most the few in service at its start."""
    lam, down = 5.0, 40.0
    sc = sim.scenario_from_dict(
        one_service(faults=[{"type": "outage", "target": "s", "at": 100, "duration": down}])
    )
    req = run_topology(sc, "orchestration").requests
    failed = int((req["status"] != "completed").sum())
    assert abs(failed - lam * down) < 4 * math.sqrt(lam * down) + 3
    assert (req.loc[req["status"] != "completed", "arrival"].between(99, 100 + down)).all()


def test_retries_without_backoff_are_bernoulli_feedback() -> None:
    """Each attempt fails with probability p and is retried at once into the same queue: an
    M/M/1 queue with Bernoulli feedback, mean time in system 1/((1−p)μ − λ)."""
    lam, mu, p = 4.0, 10.0, 0.3
    retry = {"max_attempts": 60, "initial": 0, "jitter": "none"}
    data = one_service(duration=6000, warmup=100, topologies={"orchestration": {}})
    data["load"] = {"wf": {"rate": lam}}
    data["services"] = {"s": {"latency": exp(1 / mu), "error_probability": p, "retry": retry}}
    sc = sim.scenario_from_dict(data)
    run = run_topology(sc, "orchestration")
    mean, half = batch_means(run.requests, sc.warmup, sc.duration)
    expected = 1 / ((1 - p) * mu - lam)
    assert abs(mean - expected) < half, f"feedback queue {mean:.4f} vs {expected:.4f} ± {half:.4f}"
    assert (run.requests["status"] == "completed").all()
    assert run.counters["attempts"] / len(run.requests) == pytest.approx(1 / (1 - p), rel=0.03)


# --- outcomes ---------------------------------------------------------------------------------


def saga(**extra: Any) -> dict:
    data: dict[str, Any] = {
        "name": "saga",
        "seed": 4,
        "duration": 300,
        "warmup": 0,
        "drain": 120,
        "services": {
            "book": {"latency": exp(0.05), "compensation": {"latency": 0.02}},
            "pay": {"latency": exp(0.05), "compensation": {"latency": 0.02, "error_probability": 0.3}},
            "note": {"latency": exp(0.02)},
            "ship": {"latency": exp(0.05), "error_probability": 0.2},
        },
        "workflows": {"trip": {"steps": ["book", "pay", "note", "ship"]}},
        "load": {"trip": {"rate": 4}},
        "topologies": {
            "orchestration": {},
            "choreography": {"broker": {"kind": "queue", "on_crash": "requeue"}},
            "hybrid": {"asynchronous": ["note"], "broker": {"kind": "queue", "on_crash": "requeue"}},
        },
    }
    data.update(extra)
    return data


@pytest.mark.parametrize("topology", ["orchestration", "choreography", "hybrid"])
def test_sagas_end_compensated_or_inconsistent(topology: str) -> None:
    sc = sim.scenario_from_dict(saga())
    res = sim.run(sc, topologies=[topology])
    row = res.summary.iloc[0]
    # ship fails 20 %: the saga undoes book and pay (pay's undo fails 30 %) but note has no
    # compensation in the synchronous styles, so those end inconsistent.
    assert row["completed"] > 0 and row["compensated"] + row["inconsistent"] > 0
    failed = res.requests[res.requests["status"].isin(["compensated", "inconsistent"])]
    assert (failed["failed_at"] == "ship").all()
    window = failed["inconsistency_end"] - failed["inconsistency_start"]
    assert (window > 0).all() and (failed["inconsistency_end"] <= failed["completion"] + 1e-9).all()
    share = (row["compensated"] + row["inconsistent"]) / row["arrived"]
    assert abs(share - 0.2) < 4 * math.sqrt(0.2 * 0.8 / row["arrived"])


def test_compensation_order_and_outcome_split() -> None:
    """With note compensable and pay's undo failing 30 %, about 30 % of failed sagas end
    inconsistent and the rest compensated, in both styles."""
    data = saga()
    data["services"]["note"]["compensation"] = {"latency": 0.01}
    res = sim.run(sim.scenario_from_dict(data), topologies=["orchestration", "choreography"])
    for row in res.summary.to_dict("records"):
        failed = row["compensated"] + row["inconsistent"]
        share = row["inconsistent"] / failed
        assert abs(share - 0.3) < 4 * math.sqrt(0.3 * 0.7 / failed), row["topology"]


def test_every_outcome_is_reachable() -> None:
    data = saga(
        drain=0,
        faults=[{"type": "outage", "target": "orchestrator", "at": 100, "duration": 20}],
        # (a dispatch latency: workflows whose first command had not left the engine yet end lost)
        topologies={
            "non-durable": {
                "kind": "orchestration",
                "orchestrator": {"durable": False, "dispatch_latency": 0.5},
            }
        },
    )
    data["services"]["book"]["error_probability"] = 0.1  # fails before anything took effect
    data["services"]["note"]["compensation"] = {"latency": 0.01}
    res = sim.run(sim.scenario_from_dict(data))
    seen = set(res.requests["status"].astype(str))
    assert seen == set(OUTCOMES), f"missing outcomes: {set(OUTCOMES) - seen}"


ALL_FAULTS = [
    {"type": "outage", "target": "pay", "at": 50, "duration": 20},
    {"type": "crash", "target": "book", "mtbf": exp(40), "mttr": exp(5), "until": 250},
    {"type": "slowdown", "target": "ship", "at": 80, "duration": 30, "factor": 4},
    {"type": "error_burst", "target": "note", "at": 120, "duration": 20, "probability": 0.6},
    {"type": "capacity_loss", "target": "book", "at": 150, "duration": 30, "replicas": 1},
    {"type": "partition", "between": ["orchestrator", "ship"], "at": 170, "duration": 10, "mode": "fail"},
    {"type": "partition", "between": ["broker", "ship"], "at": 185, "duration": 10, "mode": "hold"},
    {"type": "outage", "target": "broker", "at": 200, "duration": 15},
    {"type": "outage", "target": "orchestrator", "at": 220, "duration": 10},
]


@pytest.mark.parametrize("fault", ALL_FAULTS, ids=lambda f: f"{f['type']}-{f.get('target', 'x')}")
def test_conservation_and_determinism_under_every_fault(fault: dict) -> None:
    data = saga(faults=[fault])
    data["services"]["book"]["replicas"] = 2
    data["services"]["ship"]["retry"] = {"max_attempts": 3}
    data["topologies"]["non-durable"] = {"kind": "orchestration", "orchestrator": {"durable": False}}
    sc = sim.scenario_from_dict(data)
    first = sim.run(sc)  # run() checks conservation in code and raises if it fails
    again = sim.run(sc)
    pd.testing.assert_frame_equal(first.requests, again.requests)
    pd.testing.assert_frame_equal(first.blast_radius, again.blast_radius)
    s = first.summary
    assert (s["arrived"] == s[OUTCOMES].sum(axis=1)).all()
    assert not first.faults.empty


def test_crashes_cause_redeliveries_in_choreography_and_resets_in_orchestration() -> None:
    data = one_service(
        duration=300, faults=[{"type": "crash", "target": "s", "mtbf": exp(20), "mttr": exp(2)}]
    )
    data["services"]["s"]["retry"] = {"max_attempts": 5, "initial": 0.05}
    data["services"]["s"]["latency"] = exp(0.5)
    data["services"]["s"]["replicas"] = 4
    res = sim.run(sim.scenario_from_dict(data))
    s = res.summary.set_index("topology")
    assert s.loc["choreography", "duplicates"] > 0
    assert s.loc["orchestration", "attempts"] > s.loc["orchestration", "run_arrived"]
    assert s.loc["choreography", "lost_work"] > 0
    assert (res.faults["type"] == "crash").sum() > 5


# --- engines and brokers --------------------------------------------------------------------


def engine_outage(down: float, **orchestrator: Any) -> pd.Series:
    data = one_service(faults=[{"type": "outage", "target": "orchestrator", "at": 100, "duration": down}])
    data["services"]["s"] = {"replicas": 20, "latency": exp(2.0)}  # about 10 workflows in flight
    data["topologies"] = {
        "orchestration": {"orchestrator": {"shard_concurrency": 1000, "decision_cpu": 0.005, **orchestrator}}
    }
    res = sim.run(sim.scenario_from_dict(data))
    return pd.concat(
        [res.summary.iloc[0], res.blast_radius.iloc[0].drop(["topology", "replication", "lost"])]
    )


def test_durable_engine_loses_nothing_and_standby_shortens_the_outage() -> None:
    durable = engine_outage(30)
    fragile = engine_outage(30, durable=False)
    standby = engine_outage(30, failover_time=3)
    assert durable["lost"] == 0 and durable["completed"] == durable["arrived"]
    assert fragile["lost"] + fragile["inconsistent"] > 0  # forgotten; inconsistent if effects stand
    assert durable["lost"] <= fragile["lost"]
    assert standby["affected"] < durable["affected"] / 3
    assert standby["recovery_time"] < durable["recovery_time"]
    rejecting = engine_outage(30, when_down="reject")
    assert abs(rejecting["failed"] - 5 * 30) < 4 * math.sqrt(150)


def test_broker_outage_buffers_or_fails_producers() -> None:
    outage = [{"type": "outage", "target": "broker", "at": 100, "duration": 20}]
    data = one_service(faults=outage)
    data["topologies"] = {
        "buffering": {"kind": "choreography"},
        "giving-up": {
            "kind": "choreography",
            "broker": {"when_down": "retry", "producer_retry": {"max_attempts": 2, "initial": 0.5}},
        },
    }
    s = sim.run(sim.scenario_from_dict(data)).summary.set_index("topology")
    assert s.loc["buffering", "completed"] == s.loc["buffering", "arrived"]
    assert s.loc["buffering", "latency_max"] > 15
    assert s.loc["giving-up", "failed"] > 50
    assert s.loc["giving-up", "publish_failures"] > 0


def test_circuit_breaker_opens_in_an_error_burst_and_fails_fast() -> None:
    data = one_service(
        duration=300,
        faults=[{"type": "error_burst", "target": "s", "at": 100, "duration": 60, "probability": 0.9}],
    )
    data["services"]["s"]["circuit_breaker"] = {
        "minimum_calls": 10,
        "window": 20,
        "open_for": 5,
        "half_open_calls": 2,
    }
    data["topologies"] = {"orchestration": {}}
    row = sim.run(sim.scenario_from_dict(data)).summary.iloc[0]
    assert row["breaker_openings"] >= 2


def test_timeouts_and_retries_amplify_load_on_a_slow_service() -> None:
    slow = [{"type": "slowdown", "target": "s", "at": 100, "duration": 30, "factor": 8}]
    data = one_service(duration=300, faults=slow)
    data["services"]["s"].update(
        {"timeout": 0.3, "retry": {"max_attempts": 4, "initial": 0, "jitter": "none"}}
    )
    data["services"]["s"]["replicas"] = 3
    data["topologies"] = {"orchestration": {}}
    res = sim.run(sim.scenario_from_dict(data))
    assert res.blast_radius.iloc[0]["retry_amplification"] > 1.1


def test_bulkhead_refuses_calls_beyond_its_limit() -> None:
    data = one_service()
    data["services"]["s"].update({"bulkhead": {"max_concurrent": 1}, "latency": exp(0.15)})
    data["topologies"] = {"orchestration": {}}
    row = sim.run(sim.scenario_from_dict(data)).summary.iloc[0]
    assert row["bulkhead_refusals"] > 0 and row["failed"] == row["bulkhead_refusals"]


# --- blast radius ---------------------------------------------------------------------------


def outage_run(down: float) -> sim.RunResult:
    data = one_service(duration=300, warmup=10, window=2)
    data["faults"] = [{"type": "outage", "target": "s", "at": 150, "duration": down}]
    return sim.run(sim.scenario_from_dict(data))


def test_twins_far_from_the_fault_are_never_affected() -> None:
    res = outage_run(20)
    assert res.baseline is not None
    pairs = twin_pairs(res.baseline.requests, res.requests)
    early = pairs[pairs["arrival"] < 140] if "arrival" in pairs else None
    if early is None:
        merged = pairs.merge(res.requests[["topology", "replication", "workflow", "id", "arrival"]])
        early = merged[merged["arrival"] < 140]
    assert not early["affected"].any()
    assert pairs["affected"].any()


def test_a_longer_outage_never_shrinks_the_blast_radius() -> None:
    radii = [outage_run(d).blast_radius.set_index("topology") for d in (5, 15, 40)]
    for topology in ("orchestration", "choreography"):
        affected = [r.loc[topology, "affected"] for r in radii]
        assert affected == sorted(affected), f"{topology}: {affected}"
        assert radii[-1].loc[topology, "impact_end"] >= radii[0].loc[topology, "impact_end"]


def test_choreography_catches_up_where_orchestration_fails() -> None:
    r = outage_run(20).blast_radius.set_index("topology")
    assert r.loc["orchestration", "affected_failed"] > 50  # the article: calls to a down service fail
    assert r.loc["choreography", "affected_failed"] == 0  # events wait and are processed later
    assert r.loc["choreography", "affected_completed"] > 50
    assert r.loc["choreography", "peak_backlog"] > 50
    assert r.loc["choreography", "recovered"]
