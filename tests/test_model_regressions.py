"""Runs that once went wrong, each a minimal scenario: every workflow must end (nothing left in
flight after the drain), and the run must not raise. Each docstring says the mechanism."""

from __future__ import annotations

from typing import Any

import pytest

import sim

QUEUE_LEASE = {"kind": "queue", "visibility_timeout": 0.2}


def exp(mean: float) -> dict[str, Any]:
    return {"dist": "exponential", "mean": mean}


def _ends(data: dict[str, Any]) -> Any:
    result = sim.run(sim.scenario_from_dict(data))
    summary = result.summary
    assert (summary["run_in_flight"] == 0).all(), summary[["topology", "run_in_flight"]]
    return result


@pytest.mark.parametrize("broker", [{}, {"kind": "queue"}])
def test_a_step_past_the_pivot_is_retried_with_fresh_draws(broker: dict[str, Any]) -> None:
    """A choreographed step after the pivot whose retries ran out is offered again: the new
    attempt draws its work and error as a retry does, or it would fail the same way forever."""
    _ends(
        {
            "name": "pivot",
            "duration": 10,
            "drain": 3000,
            "services": {"c": {"latency": exp(0.02), "error_probability": 0.5}, "d": {"latency": exp(0.02)}},
            "workflows": {"w1": {"steps": ["d", "c"], "saga": {"pivot": "d"}}},
            "load": {"w1": {"rate": 3}},
            "topologies": {"chor": {"kind": "choreography", "broker": broker}},
        }
    )


def test_a_timed_out_consumers_retry_survives_a_crash_of_another_replica() -> None:
    """A log consumer's retry after a timeout queues for any replica of the service; if that
    replica crashes, the consumer's call failed (and is retried), its message is not lost."""
    _ends(
        {
            "name": "retry-crash",
            "duration": 60,
            "drain": 3000,
            "services": {
                "a": {"latency": exp(0.05), "replicas": 2, "timeout": 0.05, "retry": {"initial": 0}}
            },
            "workflows": {"w1": {"steps": ["a"]}},
            "load": {"w1": {"rate": 5}},
            "faults": [{"type": "crash", "target": "a", "mtbf": exp(3), "mttr": exp(1)}],
            "topologies": {"chor": {"kind": "choreography"}},
        }
    )


def test_a_redelivery_of_a_failed_workflows_event_still_being_worked_on_is_not_skipped() -> None:
    """A deadline fails the workflow while its event is in work; the lease lapses and the event
    comes again. Skipping it would settle the event, and the first delivery's outcome would
    never reach the workflow, which would wait for it for ever."""
    _ends(
        {
            "name": "redelivery",
            "duration": 10,
            "drain": 3000,
            "services": {"b": {"latency": exp(0.2)}},
            "workflows": {"w1": {"steps": ["b"], "deadline": 0.3}},
            "load": {"w1": {"rate": 20}},
            "topologies": {
                "chor": {"kind": "choreography", "broker": {"kind": "queue", "visibility_timeout": 0.2}}
            },
        }
    )


def test_a_start_hook_that_offers_work_does_not_take_the_same_server() -> None:
    """A retry starting after its lease ran out redelivers the message from its start hook, at
    once: the server it starts on must already be taken, or the redelivery takes it too."""
    data = {
        "name": "hook",
        "seed": 1,
        "duration": 20,
        "drain": 3000,
        "services": {"a": {"latency": exp(0.02), "error_probability": 0.5, "retry": {"max_attempts": 5}}},
        "workflows": {"w2": {"steps": ["a"]}},
        "load": {"w2": {"rate": 30}},
        "faults": [{"type": "crash", "target": "a", "mtbf": exp(30), "mttr": exp(0.2)}],
        "topologies": {"c": {"kind": "choreography", "broker": QUEUE_LEASE}},
    }
    _ends(data)


def test_a_workflow_that_ends_at_its_arrival_does_not_end_before_it() -> None:
    """The clock may stand a rounding step short of an arrival instant; a workflow that ends in
    no time must not end before it arrived."""
    result = _ends(
        {
            "name": "instant",
            "seed": 5448,
            "duration": 120,
            "drain": 3000,
            "services": {
                "a": {"latency": exp(0.02)},
                "b": {"latency": exp(0.05)},
                "c": {"latency": exp(0.02)},
            },
            "workflows": {"w1": {"steps": [{"parallel": ["b", "a"]}, "c"]}},
            "load": {"w1": {"profile": "diurnal", "peak": 5, "trough": 2, "period": 60}},
            "topologies": {"hyb": {"kind": "hybrid", "hybrid": {"asynchronous": ["a", "b", "c"]}}},
        }
    )
    req = result.requests
    assert (req["completion"] >= req["arrival"]).all()


def test_a_producers_second_send_is_never_a_lost_event() -> None:
    """A producer that is not idempotent sends again what the broker could not acknowledge; if
    its replica has crashed meanwhile, that second send dies with it, unnoticed: the first got
    through. Lost events and stalled workflows are those of the first sends, with or without."""

    def data(idempotent: bool) -> dict[str, Any]:
        return {
            "name": "copies",
            "seed": 1,
            "duration": 300,
            "drain": 3000,
            "services": {
                "a": {"latency": exp(0.01), "replicas": 2, "stuck_after": 5},
                "b": {"latency": 10.0, "replicas": 200},
            },
            "workflows": {"w": {"steps": ["a", "b"]}},
            "load": {"w": {"rate": 5}},
            "faults": [{"type": "crash", "target": "a", "mtbf": exp(3), "mttr": 0.2}]
            + [{"type": "outage", "target": "broker", "at": t, "duration": 0.5} for t in range(10, 290, 10)],
            "topologies": {
                "c": {
                    "kind": "choreography",
                    "broker": {"partitions": 256, "publish_latency": 0.3, "idempotent_producer": idempotent},
                }
            },
        }

    safe = _ends(data(True)).summary.iloc[0]
    loose = _ends(data(False)).summary.iloc[0]
    assert loose["republished"] > 0
    assert loose["lost_events"] == safe["lost_events"] > 0
    assert loose["run_inconsistent"] == safe["run_inconsistent"]
