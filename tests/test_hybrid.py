"""The per-workflow hybrid: each workflow is orchestrated or choreographed, on one engine and
one broker. A choreographed workflow never touches the engine, and is coordinated exactly as in
a pure choreography; an orchestrated one exactly as in a pure orchestration."""

from __future__ import annotations

from typing import Any

import pytest

import sim

QUEUE = {"kind": "queue"}


def _two_flows(**hybrid: Any) -> dict[str, Any]:
    exp = {"dist": "exponential", "mean": 0.01}
    return {
        "name": "hybrid",
        "seed": 5,
        "duration": 300,
        "services": {
            "cart": {"latency": exp, "error_probability": 0.05, "retry": {"initial": 0.01}},
            "pay": {"latency": exp},
            "track": {"latency": exp, "replicas": 2},
            "score": {"latency": exp, "replicas": 2},
        },
        "workflows": {"checkout": {"steps": ["cart", "pay"]}, "analytics": {"steps": ["track", "score"]}},
        "load": {"checkout": {"rate": 10}, "analytics": {"rate": 60}},
        "faults": [{"type": "outage", "target": "score", "at": 100, "duration": 5}],
        "topologies": {
            "orchestration": {"orchestrator": {"dispatch": "poll"}},
            "choreography": {"broker": QUEUE},
            "hybrid": {"orchestrator": {"dispatch": "poll"}, "broker": QUEUE, "hybrid": hybrid},
        },
    }


def test_each_workflow_is_coordinated_as_in_its_pure_topology() -> None:
    """No coordination costs and no shared service: the hybrid's checkouts are the
    orchestration's, instance by instance, and its analytics flows the choreography's."""
    data = _two_flows(coordination={"checkout": "orchestration", "analytics": "choreography"})
    req = sim.run(sim.scenario_from_dict(data)).requests.set_index(["workflow", "id"])
    by = {name: frame for name, frame in req.groupby("topology")}
    for workflow, pure in [("checkout", "orchestration"), ("analytics", "choreography")]:
        mine = by["hybrid"].loc[workflow]
        theirs = by[pure].loc[workflow]
        assert (mine["status"] == theirs["status"]).all()
        assert mine["latency"].to_numpy() == pytest.approx(
            theirs["latency"].to_numpy(), nan_ok=True, abs=1e-9
        )


def test_a_choreographed_workflow_never_touches_the_engine() -> None:
    data = _two_flows(coordination={"analytics": "choreography"})
    s = sim.run(sim.scenario_from_dict(data)).summary.set_index("topology")
    data_only_checkout = _two_flows()
    data_only_checkout["load"]["analytics"]["rate"] = 0.0001
    alone = sim.run(sim.scenario_from_dict(data_only_checkout), topologies=["orchestration"]).summary
    checkouts = alone.iloc[0]["decisions"]
    assert s.loc["hybrid", "decisions"] == pytest.approx(checkouts, abs=10)
    assert s.loc["hybrid", "decisions"] < s.loc["orchestration", "decisions"] / 3


@pytest.mark.parametrize(
    ("hybrid", "message"),
    [
        ({"coordination": {"nope": "choreography"}}, "hybrid.coordination.nope: no such workflow"),
        (
            {"coordination": {"analytics": "choreography"}, "asynchronous": ["score"]},
            "'score' is only a step of choreographed workflows",
        ),
    ],
)
def test_hybrid_settings_name_what_exists(hybrid: dict[str, Any], message: str) -> None:
    with pytest.raises(sim.ScenarioError, match=message):
        sim.scenario_from_dict(_two_flows(**hybrid))


def test_hybrid_settings_belong_to_a_hybrid() -> None:
    data = _two_flows()
    data["topologies"]["orchestration"]["hybrid"] = {"asynchronous": ["pay"]}
    with pytest.raises(sim.ScenarioError, match="only a hybrid"):
        sim.scenario_from_dict(data)
