"""With every overhead at zero the model is a plain queueing network: compare with exact results.

Tolerances are batch-means confidence intervals (99.9 %) computed from the run itself, never
hand-tuned constants; seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sim.analysis.metrics import component_stats
from tests.helpers import QUEUE, batch_means, erlang_c_wait, run_topology, scenario

TOPOLOGIES = ["orchestration", "choreography"]


def exp(mean: float) -> dict:
    return {"dist": "exponential", "mean": mean}


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_mm1_mean_latency_and_utilization(topology: str) -> None:
    lam, mu = 5.0, 10.0
    sc = scenario({"s": {"latency": exp(1 / mu)}}, ["s"], rate=lam, duration=8000, warmup=100)
    run = run_topology(sc, topology)
    mean, half = batch_means(run.requests, sc.warmup, sc.duration)
    expected = 1 / (mu - lam)
    assert abs(mean - expected) < half, f"M/M/1 mean latency {mean:.4f} vs {expected:.4f} ± {half:.4f}"
    # Utilization: per-batch busy fractions give their own interval around rho.
    rec = run.components[0]
    edges = np.linspace(sc.warmup, sc.duration, 21)
    utils = [component_stats(rec, a, b, run.end_time)["utilization"] for a, b in itertools.pairwise(edges)]
    u_half = 3.88 * np.std(utils, ddof=1) / math.sqrt(len(utils))
    assert abs(np.mean(utils) - lam / mu) < u_half, f"utilization {np.mean(utils):.4f} vs rho 0.5"


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_mmc_erlang_c(topology: str) -> None:
    c, lam, mu = 3, 2.4, 1.0
    sc = scenario(
        {"s": {"replicas": 1, "concurrency": c, "latency": exp(1 / mu)}},
        ["s"],
        rate=lam,
        duration=20000,
        warmup=500,
    )
    run = run_topology(sc, topology)
    mean, half = batch_means(run.requests, sc.warmup, sc.duration)
    expected = erlang_c_wait(c, lam, mu) + 1 / mu
    assert abs(mean - expected) < half, f"M/M/3 latency {mean:.4f} vs Erlang C {expected:.4f} ± {half:.4f}"


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_jackson_tandem_is_sum_of_mm1(topology: str) -> None:
    lam = 4.0
    mus = {"a": 10.0, "b": 6.0, "c": 8.0}
    sc = scenario(
        {n: {"latency": exp(1 / m)} for n, m in mus.items()}, list(mus), rate=lam, duration=8000, warmup=200
    )
    run = run_topology(sc, topology)
    mean, half = batch_means(run.requests, sc.warmup, sc.duration)
    expected = sum(1 / (m - lam) for m in mus.values())
    assert abs(mean - expected) < half, f"tandem latency {mean:.4f} vs Jackson {expected:.4f} ± {half:.4f}"


def test_shared_service_sees_the_sum_of_both_workflows_load() -> None:
    """Two workflows share one M/M/1 service: it behaves as one queue with the merged rate."""
    from sim import scenario_from_dict

    sc = scenario_from_dict(
        {
            "duration": 8000,
            "warmup": 100,
            "services": {"s": {"latency": exp(0.1)}},
            "workflows": {"a": {"steps": ["s"]}, "b": {"steps": ["s"]}},
            "load": {"a": {"rate": 2.0}, "b": {"rate": 4.0}},
            "topologies": {"orchestration": {}},
        }
    )
    run = run_topology(sc, "orchestration")
    mean, half = batch_means(run.requests, sc.warmup, sc.duration)
    assert abs(mean - 1 / (10 - 6)) < half


def _in_system_integral(components: list, lo: float, hi: float) -> float:
    """∫ N(t) dt over [lo, hi), N(t) = requests at the stations (waiting or in service), from the
    stations' own records: each visit occupies its station from its arrival to its end."""
    total = 0.0
    for rec in components:
        ends = rec.ended if rec.ended.size == rec.arrived.size else np.full(rec.arrived.size, hi)
        total += float(np.clip(np.minimum(ends, hi) - np.maximum(rec.arrived, lo), 0, None).sum())
    return total


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_littles_law(topology: str) -> None:
    """Little's law, L = λW, with L measured as the time integral of the requests present at the
    stations (the stations' records) and W from the workflows' own latencies (the outcome
    records): with zero coordination costs a workflow is always at some station, so the two
    bookkeepings must agree on the sample path. L must also match the Jackson network's value."""
    lam = 5.0
    sc = scenario(
        {"a": {"latency": exp(0.1)}, "b": {"replicas": 2, "latency": exp(0.3)}},
        ["a", "b"],
        rate=lam,
        duration=3000,
    )
    run = run_topology(sc, topology)
    req = run.requests
    assert (req["status"] == "completed").all()
    horizon = run.end_time
    l_mean = _in_system_integral(run.components, 0.0, horizon) / horizon
    lam_hat = len(req) / horizon
    w_mean = float(req["latency"].mean())
    assert l_mean == pytest.approx(lam_hat * w_mean, rel=1e-9), "station occupancy vs workflow latencies"
    # Against theory: L = ρ/(1 − ρ) at a (M/M/1) plus L_q + λ/μ at b (M/M/2), with a batch-means
    # tolerance over 20 windows of the measured time average.
    expected_l = 0.5 / (1 - 0.5) + lam * erlang_c_wait(2, lam, 1 / 0.3) + lam * 0.3
    edges = np.linspace(0.0, sc.duration, 21)
    batches = [_in_system_integral(run.components, a, b) / (b - a) for a, b in itertools.pairwise(edges)]
    half = 3.88 * np.std(batches, ddof=1) / math.sqrt(len(batches))
    assert abs(np.mean(batches) - expected_l) < half, (
        f"L {np.mean(batches):.3f} vs {expected_l:.3f} ± {half:.3f}"
    )


def test_zero_overhead_topologies_agree_exactly() -> None:
    """Without overheads every topology is the same queueing network: identical sample paths,
    even with network latency and a parallel fan-out, because each instance brings the same work."""
    services = {
        "p": {"replicas": 2, "latency": {"dist": "lognormal", "median": 0.08, "p99": 0.4}},
        "w": {"latency": exp(0.05)},
        "i": {"latency": exp(0.03)},
        "s": {"latency": {"dist": "gamma", "mean": 0.06, "cv": 0.5}},
    }
    sc = scenario(
        services,
        ["p", {"parallel": ["w", ["i", "s"]]}, "s"],
        rate=6.0,
        duration=400,
        topologies={"orchestration": {}, "choreography": QUEUE, "hybrid": QUEUE},
        network={"latency": exp(0.002)},
    )
    lat = {t: run_topology(sc, t).requests for t in sc.topologies}
    base = lat["orchestration"]
    for name in ("choreography", "hybrid"):
        np.testing.assert_array_equal(lat[name]["arrival"], base["arrival"])
        np.testing.assert_allclose(lat[name]["latency"], base["latency"], rtol=0, atol=1e-9)


def test_blocking_probability_mm1k() -> None:
    """A queue limit makes the service M/M/1/K: the rejected share matches the Erlang loss formula."""
    lam, mu, limit = 8.0, 10.0, 3  # K = limit + 1 in the system
    sc = scenario({"s": {"queue_limit": limit, "latency": exp(1 / mu)}}, ["s"], rate=lam, duration=20000)
    run = run_topology(sc, "orchestration")
    rho, k = lam / mu, limit + 1
    p_block = (1 - rho) * rho**k / (1 - rho ** (k + 1))
    failed = (run.requests["status"] == "failed").to_numpy()
    n = failed.size
    # Batch the Bernoulli outcomes to absorb their correlation; 99.9 % t interval.
    per_batch = failed[: n - n % 20].reshape(20, -1).mean(axis=1)
    half = 3.88 * per_batch.std(ddof=1) / math.sqrt(20)
    assert abs(failed.mean() - p_block) < half, f"blocking {failed.mean():.4f} vs {p_block:.4f} ± {half:.4f}"
    assert (run.requests.loc[failed, "failed_at"] == "s").all()
