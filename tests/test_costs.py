"""The cost model: counted units times unit prices, exactly, and prices taken from a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import sim
from sim.analysis.tables import side_by_side_rows

PRICES = {
    "per_transition": 0.000025,
    "per_action": 0.00005,
    "engine_hour": 0.5,
    "store_hour": 0.25,
    "per_store_write": 0.000001,
    "per_event": 0.0000004,
    "per_gb": 0.1,
    "event_size_kb": 2.0,
    "partition_hour": 0.0015,
    "broker_hour": 0.21,
    "replica_hour": 0.05,
    "services": {"b": 0.1},
}


def _chain(costs: dict[str, Any] | None = PRICES, **extra: Any) -> dict[str, Any]:
    """Two steps, 10 workflows a second evenly spaced for 360 s, constant work far below
    capacity: every count is known in advance."""
    data: dict[str, Any] = {
        "name": "costs",
        "duration": 360,
        "drain": 0,
        "services": {"a": {"latency": 0.01, "replicas": 2}, "b": {"latency": 0.01, "replicas": 3}},
        "workflows": {"w": {"steps": ["a", "b"]}},
        "load": {"w": {"arrival": "deterministic", "rate": 10}},
        "topologies": {
            "orchestration": {"orchestrator": {"replicas": 3, "store": {"writes_per_decision": 2}}},
            "choreography": {"broker": {"partitions": 4, "brokers": 3}},
        },
        **extra,
    }
    if costs is not None:
        data["costs"] = costs
    return data


def test_cost_is_the_counted_units_times_the_prices() -> None:
    result = sim.run(sim.scenario_from_dict(_chain()))
    s = result.summary.set_index("topology")
    n = 3600
    for name in ("orchestration", "choreography"):
        assert s.loc[name, "run_completed"] == n
    hours = {name: s.loc[name, "end_time"] / 3600 for name in s.index}
    services = {name: (2 * 0.05 + 3 * 0.1) * h for name, h in hours.items()}
    # orchestration: 3 decisions per workflow (start, a, b), 3 actions (start, 2 calls), 2 writes a decision
    h = hours["orchestration"]
    engine = n * 3 * 0.000025 + n * 3 * 0.00005 + 3 * h * 0.5 + h * 0.25 + n * 3 * 2 * 0.000001
    assert s.loc["orchestration", "cost_engine"] == pytest.approx(engine, rel=1e-12)
    assert s.loc["orchestration", "cost_broker"] == 0
    # choreography: 3 events per workflow (the start, a's and b's completions), 2 KB each;
    # a topic of 4 partitions per consuming service; 3 brokers
    h = hours["choreography"]
    events = n * 3
    broker = events * 0.0000004 + events * 2.0 / 1e6 * 0.1 + 4 * 2 * h * 0.0015 + 3 * h * 0.21
    assert s.loc["choreography", "cost_broker"] == pytest.approx(broker, rel=1e-12)
    assert s.loc["choreography", "cost_engine"] == 0
    for name in s.index:
        assert s.loc[name, "cost_services"] == pytest.approx(services[name], rel=1e-12)
        total = s.loc[name, "cost_engine"] + s.loc[name, "cost_broker"] + s.loc[name, "cost_services"]
        assert s.loc[name, "cost"] == pytest.approx(total)
        assert s.loc[name, "cost_per_1k"] == pytest.approx(1000 * total / n)


def test_without_prices_there_is_no_cost() -> None:
    result = sim.run(sim.scenario_from_dict(_chain(costs=None)))
    assert result.summary["cost_per_1k"].isna().all()
    assert "cost / 1k workflows" not in [row.label for row in side_by_side_rows(result)]


def test_cost_per_1k_is_an_objective() -> None:
    """The orchestration pays about 0.29 per 1,000 workflows (three engine hosts at 0.5 an hour
    for a tenth of an hour, over 3,600 workflows), the choreography about 0.03."""
    data = _chain(objectives={"cost_per_1k": 0.1})
    verdicts = sim.run(sim.scenario_from_dict(data)).verdicts.set_index("topology")
    assert not verdicts.loc["orchestration", "met"]
    assert verdicts.loc["choreography", "met"]


def test_prices_come_from_a_file_and_a_topology_overrides_them(tmp_path: Path) -> None:
    (tmp_path / "prices.yaml").write_text(
        "step-functions: {per_transition: 0.000025}\n"
        "temporal-cloud: {per_action: 0.00005}\n"
        "fargate: {replica_hour: 0.05}\n"
    )
    costs = {"include": "prices.yaml", "use": ["step-functions", "fargate"], "services": {"b": 0.1}}
    data = _chain(costs)
    data["topologies"]["temporal"] = {
        "kind": "orchestration",
        "costs": {"per_transition": 0, "per_action": 0.00005},
    }
    sc = sim.scenario_from_dict(data, base_dir=tmp_path)
    assert sc.costs is not None
    assert sc.costs.per_transition == 0.000025 and sc.costs.replica_hour == 0.05 and sc.costs.per_action == 0
    s = sim.run(sc).summary.set_index("topology")
    n = 3600
    assert s.loc["orchestration", "cost_engine"] == pytest.approx(n * 3 * 0.000025)
    assert s.loc["temporal", "cost_engine"] == pytest.approx(n * 3 * 0.00005)


@pytest.mark.parametrize(
    ("costs", "message"),
    [
        ({"include": "prices.yaml", "use": ["nope"]}, "has no price list 'nope'"),
        ({"include": "prices.yaml"}, "both give per_transition"),
        ({"use": ["a"]}, "give include"),
        ({"include": "../prices.yaml"}, "costs.include"),
        ({"include": "missing.yaml"}, "^<scenario>: costs.include: missing.yaml: file not found$"),
    ],
)
def test_price_files_are_checked(tmp_path: Path, costs: dict[str, Any], message: str) -> None:
    (tmp_path / "prices.yaml").write_text("a: {per_transition: 1}\nb: {per_transition: 2}\n")
    (tmp_path / "inner").mkdir()
    base = tmp_path / "inner" if costs.get("include") == "../prices.yaml" else tmp_path
    with pytest.raises(sim.ScenarioError, match=message):
        sim.scenario_from_dict(_chain(costs), base_dir=base)


def test_every_shipped_price_list_is_a_valid_set_of_prices() -> None:
    """scenarios/prices.yaml: each list, used alone, validates, and says where it comes from."""
    path = Path(__file__).resolve().parents[1] / "scenarios" / "prices.yaml"
    text = path.read_text(encoding="utf-8")
    lists = yaml.safe_load(text)
    assert lists
    for name in lists:
        data = _chain({"include": "prices.yaml", "use": [name]})
        costs = sim.scenario_from_dict(data, base_dir=path.parent).costs
        assert costs is not None and costs.model_fields_set - {"services"}
        block = text.split(f"\n{name}:\n", 1)[1].split("\n\n", 1)[0]
        assert "# V:" in block or "# S:" in block, name
