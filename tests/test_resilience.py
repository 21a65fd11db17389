"""Resilience policies applied alike by an engine and by consumers: the retry budget's token
arithmetic, slow-call breakers and workflow deadlines.

Expectations come from the policies' own rules (the AWS SDK's retry quota, resilience4j's slow
calls), never from the code's numbers.
"""

from __future__ import annotations

import math

import pytest

import sim
from tests.helpers import QUEUE, scenario

TOPOLOGIES = {"orchestration": {"orchestrator": {"dispatch": "push"}}, "choreography": QUEUE}


def test_the_retry_budget_caps_retries_as_its_tokens_say() -> None:
    """A service failing 90 % of calls, with one retry each, 10 calls/s. Without a budget about
    9 retries/s go out. With the AWS SDK's bucket (500 tokens, 5 per retry, 1 back per first-try
    success, a successful retry's 5 back), once the bucket is empty only the first-try successes
    refill it: λ(1 − p) tokens/s pay for λ(1 − p) / (5p) failing retries' tokens, so the run
    retries ≈ 500 / (5p) + T λ (1 − p) / (5p) times."""
    lam, p, T = 10.0, 0.9, 1000.0
    service = {"latency": 0.01, "replicas": 10, "error_probability": p}
    retry = {"max_attempts": 2, "initial": 0, "jitter": "none"}
    free = scenario({"s": {**service, "retry": retry}}, ["s"], rate=lam, duration=T, topologies=TOPOLOGIES)
    capped = scenario(
        {"s": {**service, "retry": {**retry, "budget": True}}},
        ["s"],
        rate=lam,
        duration=T,
        topologies=TOPOLOGIES,
    )
    for name in TOPOLOGIES:
        row = sim.run(free, topologies=[name]).summary.iloc[0]
        n = row["run_arrived"]
        assert abs((row["attempts"] - n) - p * n) < 4 * math.sqrt(n * p * (1 - p))
        row = sim.run(capped, topologies=[name]).summary.iloc[0]
        n = row["run_arrived"]
        retries = row["attempts"] - n
        expected = 500 / (5 * p) + n * (1 - p) / (5 * p)
        assert retries == pytest.approx(expected, rel=0.05), (name, retries, expected)
        assert row["retries_refused"] + retries == pytest.approx(p * n, rel=0.05)


@pytest.mark.parametrize("topology", list(TOPOLOGIES))
def test_slow_calls_open_the_breaker(topology: str) -> None:
    """Every call takes 2 s, slower than the breaker's 1 s threshold: as soon as its window is
    judged, the breaker opens, though no call ever failed."""
    breaker = {"slow_call_duration": 1.0, "slow_call_rate": 0.5, "window": 10, "minimum_calls": 10}
    sc = scenario(
        {"s": {"latency": 2.0, "replicas": 50, "circuit_breaker": breaker}},
        ["s"],
        rate=5,
        duration=100,
        topologies=TOPOLOGIES,
    )
    row = sim.run(sc, topologies=[topology]).summary.iloc[0]
    assert row["breaker_openings"] > 0
    fast = scenario(
        {"s": {"latency": 0.5, "replicas": 50, "circuit_breaker": breaker}},
        ["s"],
        rate=5,
        duration=100,
        topologies=TOPOLOGIES,
    )
    assert sim.run(fast, topologies=[topology]).summary.iloc[0]["breaker_openings"] == 0


def test_an_overdue_workflow_fails_and_is_compensated_in_every_topology() -> None:
    """book takes 0.1 s, ship 1 s; the deadline is 0.5 s after arrival. Every trip is overdue
    while ship runs; once ship ends (it takes effect), both steps are undone, one after another."""
    sc = scenario(
        {
            "book": {"latency": 0.1, "replicas": 20, "compensation": {"latency": 0.2}},
            "ship": {"latency": 1.0, "replicas": 20, "compensation": {"latency": 0.2}},
        },
        ["book", "ship"],
        rate=2,
        duration=100,
    )
    sc = sc.model_copy(update={"workflows": {"wf": sc.workflows["wf"].model_copy(update={"deadline": 0.5})}})
    result = sim.run(sc)
    s = result.summary.set_index("topology")
    assert (s["run_compensated"] == s["run_arrived"]).all()
    assert (s["deadlines"] == s["run_arrived"]).all()
    req = result.requests
    assert (req["failed_at"] == "ship").all()
    assert (req["inconsistency_end"] - req["arrival"]).to_numpy() == pytest.approx(1.5)


def test_unlimited_retries_without_backoff_are_refused() -> None:
    """A refusal (a full bulkhead, a full queue) retried without end and without backoff would
    hold the clock at one instant: refused at validation, with the field and the reason."""
    data = {
        "name": "spin",
        "duration": 60,
        "services": {"s0": {"latency": 0.5, "retry": {"max_attempts": None, "initial": 0}, "queue_limit": 0}},
        "workflows": {"w": {"steps": ["s0"]}},
        "load": {"w": {"rate": 5}},
        "topologies": {"orchestration": {}},
    }
    with pytest.raises(sim.ScenarioError, match=r"services\.s0\.retry: unlimited attempts"):
        sim.scenario_from_dict(data)
    data["services"]["s0"]["retry"]["initial"] = 0.01
    sim.scenario_from_dict(data)


def test_a_non_durable_engine_that_loses_workflows_gives_their_bulkhead_permits_back() -> None:
    """Calls whose workflows a non-durable engine loses (their replies parked while the engine
    is down, or their requests not yet sent) give back their bulkhead permits: after the outage
    the bulkhead takes calls again and no workflow is left waiting for a permit forever."""
    data = {
        "name": "lost-permits",
        "duration": 89,
        "drain": 2000,
        "services": {
            "s0": {
                "latency": {"dist": "lognormal", "median": 0.202, "sigma": 0.46},
                "bulkhead": {"max_concurrent": 1, "max_waiting": 4},
            }
        },
        "workflows": {"w0": {"steps": ["s0"]}, "w1": {"steps": ["s0"]}},
        "load": {"w0": {"rate": 8.62}, "w1": {"rate": 11.83}},
        "topologies": {"orchestration": {"orchestrator": {"durable": False}}},
        "faults": [{"type": "outage", "target": "orchestrator", "at": 28.9, "duration": 1}],
    }
    requests = sim.run(sim.scenario_from_dict(data)).requests
    assert (requests["status"] == "in_flight").sum() == 0
    late = requests[requests["arrival"] > 40]
    assert (late["status"] == "completed").sum() > 0.1 * len(late)  # the bulkhead works again


def test_a_half_open_breakers_probes_always_come_back() -> None:
    """A probe of a half-open breaker that a crash aborts counts as a failed call (a reset
    connection to its caller): the breaker goes on judging its probes, opening and closing,
    instead of refusing every call for good once its probes are spent."""
    data = {
        "name": "probes",
        "seed": 4,
        "duration": 60,
        "drain": 2000,
        "services": {
            "s": {
                "latency": 1.0,
                "replicas": 2,
                "error_probability": 0.3,
                "retry": {"max_attempts": None, "initial": 0.1},
                "circuit_breaker": {"window": 4, "minimum_calls": 4, "open_for": 5, "half_open_calls": 3},
            }
        },
        "workflows": {"w": {"steps": ["s"]}},
        "load": {"w": {"rate": 2}},
        "topologies": {"choreography": {"broker": {"kind": "queue"}}},
        "faults": [{"type": "crash", "target": "s", "mtbf": 1.5, "mttr": 0.3, "until": 100}],
    }
    result = sim.run(sim.scenario_from_dict(data))
    row = result.summary.iloc[0]
    assert row["run_in_flight"] == 0
    assert row["breaker_openings"] > 1
