"""The effect ledger: every application of a step's effect is counted, wherever it comes from.

Expectations come from the mechanism's probabilities (a timed-out attempt still takes effect
with the probability that its work outlasts the timeout) and from the ledger's identity
(applications − undone = standing), never from the code's own numbers.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

import sim
from tests.helpers import QUEUE, scenario


def exp(mean: float) -> dict:
    return {"dist": "exponential", "mean": mean}


TIMEOUT_CALLERS = {
    "orchestration": {"orchestrator": {"dispatch": "push"}},
    "queue": {"kind": "choreography", "broker": {"kind": "queue"}},
    "log": {"kind": "choreography", "broker": {"partitions": 64}},
}


def _timeouts(idempotent: bool, caller: str = "orchestration") -> pd.Series:
    """Exponential work with mean 1 s behind a caller timeout of 1 s and one retry, at low load
    with plenty of servers: the first attempt times out with probability e⁻¹, and its work
    still ends, and takes effect, after the caller (the engine, or the service's consumer
    calling its downstream) has given up."""
    sc = scenario(
        {
            "pay": {
                "replicas": 200,
                "latency": exp(1.0),
                "timeout": 1.0,
                "retry": {"max_attempts": 2, "initial": 0, "jitter": "none"},
                "idempotent": idempotent,
            }
        },
        ["pay"],
        rate=2,
        duration=2000,
        topologies={caller: TIMEOUT_CALLERS[caller]},
    )
    return sim.run(sc).summary.iloc[0]


@pytest.mark.parametrize("caller", list(TIMEOUT_CALLERS))
def test_timed_out_attempts_still_take_effect_and_duplicate_at_a_service_without_idempotency(
    caller: str,
) -> None:
    row = _timeouts(idempotent=False, caller=caller)
    n = row["arrived"]
    expected = n / math.e
    sd = math.sqrt(n * (1 / math.e) * (1 - 1 / math.e))
    assert abs(row["duplicate_effects"] - expected) < 4 * sd, (row["duplicate_effects"], expected)
    assert row["effects"] == n  # every order is charged at least once
    assert row["absorbed_effects"] == 0
    # both attempts timed out (e⁻²): the engine gave up, but both charges stand
    assert row["inconsistent"] > 0 and row["failed"] == 0


@pytest.mark.parametrize("caller", list(TIMEOUT_CALLERS))
def test_an_idempotent_service_absorbs_the_repeats(caller: str) -> None:
    row = _timeouts(idempotent=True, caller=caller)
    n = row["arrived"]
    sd = math.sqrt(n * (1 / math.e) * (1 - 1 / math.e))
    assert row["duplicate_effects"] == 0
    assert abs(row["absorbed_effects"] - n / math.e) < 4 * sd
    assert row["effects"] == n


def _faulted() -> dict[str, Any]:
    return {
        "name": "ledger",
        "seed": 11,
        "duration": 300,
        "drain": 300,
        "services": {
            "book": {"latency": exp(0.05), "compensation": {"latency": 0.02}, "timeout": 0.1},
            "pay": {
                "latency": exp(0.05),
                "compensation": {"latency": 0.02, "error_probability": 0.2},
                "retry": {"max_attempts": 3, "initial": 0.01},
                "timeout": 0.12,
            },
            "ship": {"latency": exp(0.05), "error_probability": 0.2},
        },
        "workflows": {"trip": {"steps": ["book", "pay", "ship"]}},
        "load": {"trip": {"rate": 5}},
        "faults": [{"type": "crash", "target": "pay", "mtbf": exp(20), "mttr": exp(2)}],
        "topologies": {
            "push": {"kind": "orchestration", "orchestrator": {"dispatch": "push"}},
            "poll": {"kind": "orchestration", "orchestrator": {"dispatch": "poll"}},
            "log": {"kind": "choreography", "broker": {"partitions": 2, "session_timeout": 5}},
            "queue": {"kind": "choreography", "broker": {"kind": "queue", "visibility_timeout": 0.2}},
            "hybrid": {"asynchronous": ["ship"], **QUEUE},
        },
    }


def test_every_application_is_standing_undone_or_absorbed() -> None:
    """Per instance: applications − undone = standing at the end; a workflow that did not
    complete and ended without an effect standing is failed, compensated or lost, and one with an
    effect standing is inconsistent (or still in flight)."""
    result = sim.run(sim.scenario_from_dict(_faulted()))
    req = result.requests
    standing = req["effects"] + req["duplicate_effects"] - req["undone_effects"]
    assert (standing == req["standing_effects"]).all()
    assert (req["standing_effects"] >= 0).all()
    clean = req["status"].isin(["failed", "compensated", "lost"])
    assert (req.loc[clean, "standing_effects"] == 0).all()
    broken = req["status"] == "inconsistent"
    assert (req.loc[broken, "standing_effects"] > 0).all()
    # every step of a completed trip took effect (but the hybrid's asynchronous ship, which may
    # fail without failing its trip)
    done = (req["status"] == "completed") & (req["async_failures"] == 0)
    assert (req.loc[done, "effects"] == 3).all()
    s = result.summary.set_index("topology")
    assert (s["duplicate_effects"] > 0).any()
    assert (s["orphan_effects"] > 0).all()
    comps = result.components
    services = comps[comps["kind"] == "service"].groupby("topology")[["effects", "orphan_effects"]].sum()
    assert (services["effects"] == s.loc[services.index, "effects"]).all()
    assert (services["orphan_effects"] == s.loc[services.index, "orphan_effects"]).all()


@pytest.mark.parametrize("topology", ["log", "queue"])
def test_redelivered_events_apply_again(topology: str) -> None:
    """A log consumer that crashes before it commits, and a queue whose lease runs out, deliver
    events again: a service that is not idempotent applies them again."""
    data = _faulted()
    data["faults"] = [{"type": "crash", "target": "book", "mtbf": exp(10), "mttr": exp(1)}]
    data["services"]["book"]["latency"] = exp(0.15)
    row = sim.run(sim.scenario_from_dict(data), topologies=[topology]).summary.iloc[0]
    assert row["duplicates"] > 0
    assert row["duplicate_effects"] > 0


@pytest.mark.parametrize("topology", ["orchestration", "choreography"])
def test_a_business_error_is_never_retried_and_starts_the_saga(topology: str) -> None:
    """A card declined with probability p on the last step: about p × arrivals compensated, and
    not one retry, although the service has a generous retry policy."""
    p = 0.1
    sc = scenario(
        {
            "book": {"latency": exp(0.01), "compensation": {"latency": 0.01}},
            "pay": {
                "latency": exp(0.01),
                "business_error_probability": p,
                "retry": {"max_attempts": 5, "initial": 0.01},
            },
        },
        ["book", "pay"],
        rate=10,
        duration=500,
    )
    row = sim.run(sc, topologies=[topology]).summary.iloc[0]
    n = row["run_arrived"]
    assert abs(row["run_compensated"] - p * n) < 4 * math.sqrt(n * p * (1 - p))
    assert row["run_completed"] + row["run_compensated"] == n
    assert row["attempts"] == 2 * n + row["run_compensated"]  # book, pay, and one refund each
    assert row["dead_letters"] == 0


def _declined(order: str) -> pd.DataFrame:
    """book and hold take effect, pay always declines: both are compensated, each refund taking
    exactly 1 s, at a load where nothing waits."""
    services = {
        "book": {"latency": 0.1, "compensation": {"latency": 1.0}, "replicas": 50},
        "hold": {"latency": 0.1, "compensation": {"latency": 1.0}, "replicas": 50},
        "pay": {"latency": 0.1, "business_error_probability": 1.0, "replicas": 50},
    }
    sc = scenario(services, ["book", "hold", "pay"], rate=2, duration=100, saga={"order": order})
    return sim.run(sc).requests


@pytest.mark.parametrize(("order", "window"), [("sequential", 2.2), ("parallel", 1.2)])
def test_the_saga_order_is_the_same_in_every_topology(order: str, window: float) -> None:
    """From book's effect (0.1 s) to the end of the last refund: after pay's refusal at 0.3 s,
    two refunds one after another (2.3 s) or at once (1.3 s), whatever the topology."""
    req = _declined(order)
    assert (req["status"] == "compensated").all()
    spans = req["inconsistency_end"] - req["inconsistency_start"]
    assert spans.to_numpy() == pytest.approx(window, abs=1e-9)
    assert req.groupby("topology").size().nunique() == 1


def _forward(pivot: str | None) -> pd.Series:
    sc = scenario(
        {
            "book": {"latency": exp(0.01), "compensation": {"latency": 0.01}},
            "pay": {"latency": exp(0.01), "compensation": {"latency": 0.01}},
            "ship": {
                "latency": exp(0.01),
                "error_probability": 0.5,
                "retry": {"max_attempts": 2, "initial": 0.01, "max_backoff": 0.05},
            },
        },
        ["book", "pay", "ship"],
        rate=10,
        duration=200,
        saga={"pivot": pivot} if pivot else {},
    )
    return sim.run(sc).summary.set_index("topology")


def test_steps_after_the_pivot_are_retried_forward_never_compensated() -> None:
    """Without a pivot a quarter of the trips fail twice at ship and are compensated; with pay
    as the pivot, ship is tried again until it succeeds, and every trip completes."""
    free = _forward(None)
    n = free["run_arrived"]
    assert ((free["run_compensated"] - n / 4).abs() < 4 * (n * 3 / 16) ** 0.5).all()
    pinned = _forward("pay")
    assert (pinned["run_completed"] == pinned["run_arrived"]).all()
    assert (pinned["undone_effects"] == 0).all()
    assert (pinned["attempts"] > 3 * pinned["run_arrived"]).all()


def test_a_pivot_must_be_a_step_and_nothing_after_it_may_refuse() -> None:
    base = {
        "name": "p",
        "duration": 10,
        "services": {"a": {"latency": 0.1}, "b": {"latency": 0.1, "business_error_probability": 0.1}},
        "workflows": {"w": {"steps": ["a", "b"]}},
        "load": {"w": {"rate": 1}},
        "topologies": {"orchestration": {}},
    }
    with pytest.raises(sim.ScenarioError, match=r"saga\.pivot: 'nope' is not a step"):
        sim.scenario_from_dict({**base, "saga": {"pivot": "nope"}})
    with pytest.raises(sim.ScenarioError, match="'b' comes after the pivot"):
        sim.scenario_from_dict({**base, "saga": {"pivot": "a"}})
