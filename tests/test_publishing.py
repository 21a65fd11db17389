"""How a service's events reach the broker: a dual write loses the events its crashed replica
still held, an outbox never loses one but may send one twice, and a producer that is not
idempotent appends a retried publish twice. Expectations come from the mechanisms' windows."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

import sim

HOP = 0.05


def _chain(publish: str, broker: dict[str, Any] | None = None, faults: list | None = None) -> dict[str, Any]:
    """order → ship, 10 orders/s; order's replicas crash every 20 s on average (down 0.5 s)."""
    return {
        "name": "publishing",
        "seed": 3,
        "duration": 600,
        "drain": 600,
        "services": {
            "order": {
                "latency": {"dist": "exponential", "mean": 0.01},
                "replicas": 2,
                "publish": publish,
                "outbox_delay": 0.2,
                "stuck_after": 60,
            },
            "ship": {"latency": {"dist": "exponential", "mean": 0.01}, "replicas": 2},
        },
        "network": {"latency": HOP},
        "workflows": {"w": {"steps": ["order", "ship"]}},
        "load": {"w": {"rate": 10}},
        "faults": faults
        if faults is not None
        else [{"type": "crash", "target": "order", "mtbf": {"dist": "exponential", "mean": 20}, "mttr": 0.5}],
        "topologies": {"choreography": {"broker": broker or {"kind": "queue"}}},
    }


def _row(data: dict[str, Any]) -> tuple[pd.Series, pd.DataFrame]:
    result = sim.run(sim.scenario_from_dict(data))
    return result.summary.iloc[0], result.requests


def test_a_dual_write_loses_the_events_of_a_crashed_replica_and_its_workflows_stall() -> None:
    """order's completion event spends one hop (50 ms) between the local commit and the broker;
    the replica that holds it crashes within that window with probability ≈ 0.05 / 20 (while it
    is up), so about a quarter of a percent of the orders lose their event. Each stalls, and is
    noticed stuck_after (60 s) later: inconsistent, order's effect standing."""
    row, req = _row(_chain("dual_write"))
    n = row["run_arrived"]
    p = HOP / 20
    lost = row["lost_events"]
    assert abs(lost - n * p) < 4 * math.sqrt(n * p) + 2, (lost, n * p)
    assert lost > 0
    stalled = req[(req["status"] == "inconsistent") & (req["effects"] == 1)]
    assert len(stalled) == lost
    assert (stalled["inconsistency_end"] - stalled["inconsistency_start"] >= 60).all()


def test_an_outbox_never_loses_an_event_but_may_send_one_twice() -> None:
    """The same crashes: through an outbox every order completes. The relay's publish is
    acknowledged 0.1 s after it is sent (publish_latency); a crash in that window makes the relay
    send it again, and ship works on the order a second time."""
    broker = {"kind": "queue", "publish_latency": 0.1}
    row, req = _row(_chain("outbox", broker))
    assert row["lost_events"] == 0
    assert (req["status"] == "completed").all()
    assert row["republished"] > 0
    assert row["duplicate_effects"] == row["republished"]  # ship is not idempotent
    dual, _ = _row(_chain("dual_write", broker))
    assert dual["republished"] == 0


def test_a_producer_that_is_not_idempotent_appends_a_retried_publish_twice() -> None:
    """The broker fails twice while appends wait for their acknowledgement (0.2 s): their
    producers retry; only a producer that is not idempotent gets them appended twice."""
    faults = [
        {"type": "outage", "target": "broker", "at": 100, "duration": 2},
        {"type": "outage", "target": "broker", "at": 300, "duration": 2},
    ]
    broker = {"kind": "log", "partitions": 4, "publish_latency": 0.2, "when_down": "buffer"}
    safe, _ = _row(_chain("dual_write", broker, faults))
    assert safe["republished"] == 0 and safe["duplicate_effects"] == 0
    loose, req = _row(_chain("dual_write", {**broker, "idempotent_producer": False}, faults))
    # about 2 × 0.2 s × 10 events/s × 2 topics' events appended in each window
    assert 0 < loose["republished"] < 40
    assert loose["duplicate_effects"] > 0
    assert (req["status"] == "completed").all()


def test_a_lost_event_is_published_again_when_its_consumed_event_is_delivered_again() -> None:
    """A log consumer commits at its next poll: a crash that lost a dual write's event before
    that commit also gets the consumed event delivered again, and the service, working on it
    again (a duplicate effect), publishes anew: that workflow goes on. Only the events lost
    after their consumer's commit stall their workflows."""
    row, req = _row(_chain("dual_write", {"kind": "log", "partitions": 8}))
    stalled = req[(req["status"] == "inconsistent") & (req["effects"] == 1)]
    assert 0 < len(stalled) < row["lost_events"]
    rescued = req[(req["status"] == "completed") & (req["duplicate_effects"] > 0)]
    assert len(rescued) >= row["lost_events"] - len(stalled)
