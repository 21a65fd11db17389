"""The fairness check: with every coordination cost zero, an engine that dispatches by polling
and a broker of competing consumers are the same queueing network, and the same saga rules
apply, so orchestration and choreography give identical outcomes and latencies, instance by
instance (common random numbers make this checkable), through an outage, transient errors with
retries, business errors and sagas. What differs is inherent to the two mechanisms, and each
such difference is pinned below by a test that names it (and described in the README).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import sim


def exp(mean: float) -> dict[str, Any]:
    return {"dist": "exponential", "mean": mean}


RETRY = {"max_attempts": 3, "initial": 0.05, "multiplier": 2, "jitter": "full"}


def _trips(order: str) -> dict[str, Any]:
    """Book, then pay and ship in parallel; transient errors everywhere (retried with backoff
    and jitter), card declines (never retried), compensations that sometimes fail, and pay
    down for 20 s (a restart of all its replicas at once, their work drained first)."""
    return {
        "name": "fairness",
        "seed": 21,
        "duration": 400,
        "services": {
            "book": {
                "latency": exp(0.02),
                "replicas": 2,
                "error_probability": 0.05,
                "retry": RETRY,
                "compensation": {"latency": exp(0.02), "error_probability": 0.3},
            },
            "pay": {
                "latency": exp(0.03),
                "replicas": 2,
                "error_probability": 0.2,
                "business_error_probability": 0.05,
                "retry": RETRY,
                "compensation": {"latency": exp(0.02)},
            },
            "ship": {
                "latency": exp(0.02),
                "replicas": 2,
                "error_probability": 0.1,
                "retry": RETRY,
                "compensation": {"latency": exp(0.01)},
            },
        },
        "workflows": {"trip": {"steps": ["book", {"parallel": ["pay", "ship"]}]}},
        "load": {"trip": {"rate": 20}},
        "saga": {"order": order},
        "faults": [
            {
                "type": "deploy",
                "target": "pay",
                "at": 100,
                "batch": 2,
                "restart_time": 20,
                "drain_timeout": 30,
            }
        ],
        "topologies": {
            "orchestration": {"orchestrator": {"dispatch": "poll"}},
            # a lease longer than any processing, retries in place included (see below)
            "choreography": {"broker": {"kind": "queue", "visibility_timeout": 300}},
        },
    }


def _pair(data: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    result = sim.run(sim.scenario_from_dict(data))
    req = result.requests.set_index("id")
    return req[req["topology"] == "orchestration"], req[req["topology"] == "choreography"], result.summary


@pytest.mark.parametrize("order", ["sequential", "parallel"])
def test_orchestration_and_choreography_agree_instance_by_instance(order: str) -> None:
    o, c, summary = _pair(_trips(order))
    assert len(o) == len(c) > 7000
    for column in [
        "status",
        "failed_at",
        "effects",
        "duplicate_effects",
        "undone_effects",
        "standing_effects",
    ]:
        assert o[column].equals(c[column]), column
    for column in ["latency", "inconsistency_start", "inconsistency_end"]:
        assert np.array_equal(o[column].to_numpy(), c[column].to_numpy(), equal_nan=True), column
    # the check is not vacuous: every outcome, retries and compensations occurred
    assert set(o["status"]) >= {"completed", "compensated", "inconsistent"}
    s = summary.set_index("topology")
    assert s.loc["orchestration", "attempts"] == s.loc["choreography", "attempts"] > 1.2 * len(o) * 2
    assert (s["undone_effects"] > 0).all()


def _crash(engine: dict[str, Any], broker: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One worker takes 1 s per request, one request every 10 s; it crashes at 50.5 s, in the
    middle of the request that arrived at 50 s, and is back 1 s later."""
    data = {
        "name": "crash",
        "duration": 200,
        "services": {
            "pay": {
                "latency": 1.0,
                "start_to_close": 3.0,
                "retry": {"max_attempts": 3, "initial": 0.5, "jitter": "none"},
            }
        },
        "workflows": {"w": {"steps": ["pay"]}},
        "load": {"w": {"arrival": "deterministic", "rate": 0.1}},
        "faults": [{"type": "outage", "target": "pay", "at": 50.5, "duration": 1}],
        "topologies": {
            "orchestration": {"orchestrator": {"dispatch": "poll", **engine}},
            "choreography": {"broker": {"kind": "queue", **broker}},
        },
    }
    return _pair(data)


def test_inherent_a_crash_mid_work_is_a_failed_attempt_to_an_engine_but_a_redelivery_to_a_queue() -> None:
    """Temporal notices a crashed worker's task at its start-to-close timeout and retries it as
    a failed attempt, after the retry policy's backoff (and counted against max_attempts); SQS
    makes the message visible again when its lease (the visibility timeout, equal here) runs
    out, and it is taken at once (counted against max_receives). The crashed request is late by
    3 s under both, and by the backoff more under the engine; nothing else differs."""
    o, c, summary = _crash({}, {"visibility_timeout": 3.0})
    late = o["latency"] != c["latency"]
    assert late.sum() == 1
    assert o.loc[late, "latency"].item() == pytest.approx(1.0 + 2.5 + 0.5 + 1.0 - 0.5)
    assert o.loc[late, "latency"].item() - c.loc[late, "latency"].item() == pytest.approx(0.5)
    s = summary.set_index("topology")
    assert s.loc["orchestration", "duplicates"] == 0 and s.loc["choreography", "duplicates"] == 1


def test_inherent_a_queue_lease_covers_the_retries_in_place() -> None:
    """An engine's start-to-close timeout bounds one attempt; a queue's visibility timeout runs
    from the receipt, across the consumer's retries in place: with a lease shorter than the
    retries take, the message is delivered again while the consumer still retries it (a
    duplicate), where the engine just retries."""
    data = _trips("sequential")
    data["faults"] = []
    data["topologies"]["choreography"]["broker"]["visibility_timeout"] = 0.1
    _, _, summary = _pair(data)
    s = summary.set_index("topology")
    assert s.loc["orchestration", "duplicates"] == 0
    assert s.loc["choreography", "duplicates"] > 0
