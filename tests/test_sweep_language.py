"""Sweep specifications: VALUES text, PATH=VALUES, grids, applying points, labels and keys."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from sim import ScenarioError
from sim.scenario.grid import (
    Factor,
    SweepSpec,
    expand_grid,
    factors_from_spec,
    parse_path,
    parse_values,
    parse_vary,
    point_key,
    point_label,
)
from sim.scenario.points import apply_point, scenario_for_point

BASE: dict[str, Any] = {
    "name": "sweep-test",
    "seed": 3,
    "duration": 100,
    "warmup": 10,
    "services": {
        "payment": {"latency": {"dist": "exponential", "mean": 0.01}},
        "email": {"latency": 0.002},
    },
    "workflows": {"checkout": {"steps": ["payment", "email"]}},
    "load": {
        "checkout": {
            "arrival": "poisson",
            "schedule": [{"at": 0, "rate": 5}, {"at": 30, "rate": 20}, {"at": 60, "rate": 5}],
        }
    },
    "topologies": {
        "orchestration": {"orchestrator": {"shard_concurrency": 20, "decision_cpu": 0.001}},
        "choreography": {},
    },
}


def problems_of(exc: pytest.ExceptionInfo[ScenarioError]) -> str:
    return str(exc.value)


# ------------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10,20,40", [10, 20, 40]),
        (" 10 , 2.5 ,1e-3 ", [10, 2.5, 0.001]),
        ("orchestration,hybrid", ["orchestration", "hybrid"]),
        ("40", [40]),
        ("0.25", [0.25]),
        ("-3", [-3]),
        ("lognormal", ["lognormal"]),
        ("10:40:10", [10, 20, 30, 40]),  # stop on the grid: included
        ("0:10:3", [0, 3, 6, 9]),  # stop off the grid: excluded
        ("0:9:3", [0, 3, 6, 9]),
        ("5:5:1", [5]),
        ("10:1:-3", [10, 7, 4, 1]),
        ("1:2:0.5", [1.0, 1.5, 2.0]),
        ("0.1:0.5:0.1", [0.1, 0.2, 0.3, 0.4, 0.5]),
        ("0:1:0.1", [round(0.1 * i, 10) for i in range(11)]),
        ("1e-3:5e-3:1e-3", [0.001, 0.002, 0.003, 0.004, 0.005]),
        ("log:1:1000:4", [1, 10, 100, 1000]),
        ("log:0.001:1:4", [0.001, 0.01, 0.1, 1.0]),
        ("log:1000:1:4", [1000, 100, 10, 1]),
        ("log:1:64:7", [1, 2, 4, 8, 16, 32, 64]),
    ],
)
def test_parse_values(text: str, expected: list[Any]) -> None:
    values = parse_values(text)
    assert values == expected
    assert [type(v) for v in values] == [type(v) for v in expected]


def test_integral_text_gives_ints_and_decimal_text_floats() -> None:
    assert [type(v) for v in parse_values("2,3.0,4e0")] == [int, float, float]
    assert all(isinstance(v, int) for v in parse_values("0:100:7"))
    assert all(isinstance(v, float) for v in parse_values("0:1:0.25"))


def test_float_range_has_no_drift() -> None:
    values = parse_values("0.1:0.5:0.1")
    assert len(values) == 5
    assert values[2] == 0.3  # 0.1 + 2 * 0.1 in floats would be 0.30000000000000004
    assert parse_values("0:0.3:0.1")[-1] == 0.3
    assert len(parse_values("0:1:0.01")) == 101


def test_stop_within_tolerance_of_the_grid_is_included() -> None:
    values = parse_values("0:1:0.3333333333333333")
    assert len(values) == 4
    assert values[-1] == 1.0


def test_log_range_between_integers_keeps_fractions() -> None:
    low, mid, high = parse_values("log:1:100:5")[:3]
    assert (low, mid) == (1, pytest.approx(10**0.5))
    assert high == 10 and isinstance(high, int)
    assert mid == float(f"{mid:.12g}")  # rounded to 12 significant digits


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no values given"),
        ("  ", "no values given"),
        ("10,,20", "empty item in the list"),
        ("10,", "empty item in the list"),
        ("1:x:2", "the stop 'x' is not a number"),
        ("1::2", "the stop is missing"),
        ("1:10", "a range is start:stop:step with three numbers"),
        ("1:2:3:4", "a range is start:stop:step with three numbers"),
        ("1:10:0", "the step must not be 0"),
        ("10:1:1", "the step must be negative to go from 10 to 1"),
        ("1:10:-1", "the step must be positive"),
        ("0:1e9:1", "at most"),
        ("log:0:10:3", "must be greater than 0"),
        ("log:-1:10:3", "must be greater than 0"),
        ("log:1:10:1", "the count must be a whole number of at least 2"),
        ("log:1:10:2.5", "the count must be a whole number of at least 2"),
        ("log:1:10", "log:start:stop:count"),
        ("log:a:10:3", "must be numbers"),
        ("10,10", "10 is listed twice"),
        ("10,10.0", "is listed twice"),
        ("1,2:4:1", "a list item cannot be a range"),
        ("1e999", "too large"),
    ],
)
def test_bad_values(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        parse_values(text)
    assert exc.value.source == "--vary"
    assert message in problems_of(exc)
    assert str(exc.value).startswith("--vary: ")


# ---------------------------------------------------------------------------------- vary


def test_parse_vary() -> None:
    assert parse_vary("load.checkout.rate=10,20,40") == Factor("load.checkout.rate", (10, 20, 40))
    assert parse_vary(" services.payment.replicas = 1:3:1 ") == Factor("services.payment.replicas", (1, 2, 3))
    assert parse_vary("topologies.x.kind=orchestration,hybrid").values == ("orchestration", "hybrid")
    assert parse_vary("services.a.latency.dist=a=b").values == ("a=b",)  # only the first '=' splits
    factor = parse_vary("load.checkout.schedule[1].rate=1")
    with pytest.raises(AttributeError):
        factor.path = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("load.checkout.rate", "expected PATH=VALUES"),
        ("=10,20", "the PATH before '=' is missing"),
        ("load.checkout.rate=", "load.checkout.rate: no values after '='"),
        ("load.checkout.rate=  ", "no values after '='"),
        ("load.checkout.rate=1:x:2", "load.checkout.rate: '1:x:2': the stop 'x' is not a number"),
        ("load..rate=1", "empty key"),
        ("load.rate.=1", "ends with a dot"),
        (".load.rate=1", "starts with a dot"),
        ("[0].rate=1", "starts with a field name"),
        ("load.schedule[x]=1", "bad index"),
        ("load.schedule[0]x=1", "unexpected 'x'"),
    ],
)
def test_bad_vary(item: str, message: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        parse_vary(item)
    assert exc.value.source == "--vary"
    assert message in problems_of(exc)


def test_parse_path() -> None:
    assert parse_path("load.checkout.schedule[1].rate") == ("load", "checkout", "schedule", 1, "rate")
    assert parse_path("load.checkout.schedule.1.rate") == ("load", "checkout", "schedule", "1", "rate")
    assert parse_path("a[0][2]") == ("a", 0, 2)
    assert parse_path("flash-sale_2") == ("flash-sale_2",)


# ---------------------------------------------------------------------------------- grid


def test_grid_order_and_size() -> None:
    a = Factor("load.checkout.rate", (10, 20, 40))
    b = Factor("services.payment.replicas", (1, 2))
    c = Factor("topologies.orchestration.kind", ("orchestration", "hybrid"))
    grid = expand_grid([a, b, c])
    assert len(grid) == 3 * 2 * 2
    assert grid[0] == {"load.checkout.rate": 10, "services.payment.replicas": 1, c.path: "orchestration"}
    assert grid[1] == {"load.checkout.rate": 10, "services.payment.replicas": 1, c.path: "hybrid"}
    assert grid[2] == {"load.checkout.rate": 10, "services.payment.replicas": 2, c.path: "orchestration"}
    assert grid[-1] == {"load.checkout.rate": 40, "services.payment.replicas": 2, c.path: "hybrid"}
    assert [p["load.checkout.rate"] for p in grid] == [10] * 4 + [20] * 4 + [40] * 4  # first slowest
    assert all(list(p) == [a.path, b.path, c.path] for p in grid)
    assert expand_grid([a, b, c]) == grid  # stable
    assert len({tuple(p.values()) for p in grid}) == len(grid)


def test_grid_of_one_factor_and_of_none() -> None:
    assert expand_grid([Factor("seed", (1, 2))]) == [{"seed": 1}, {"seed": 2}]
    assert expand_grid([]) == [{}]


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["seed", "seed"], "seed: varied twice"),
        (["a.b[1]", "a.b.1"], "a.b.1: varied twice (as a.b[1])"),
        (["load.checkout", "load.checkout.rate"], "load.checkout.rate: overlaps load.checkout"),
        (["load.checkout.rate", "load.checkout"], "load.checkout: overlaps load.checkout.rate"),
    ],
)
def test_grid_refuses_duplicate_paths(paths: list[str], message: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        expand_grid([Factor(p, (1, 2)) for p in paths])
    assert message in problems_of(exc)


def test_grid_allows_paths_sharing_a_prefix() -> None:
    grid = expand_grid([Factor("load.checkout.rate", (1,)), Factor("load.checkout.rates", (2,))])
    assert grid == [{"load.checkout.rate": 1, "load.checkout.rates": 2}]


# ---------------------------------------------------------------------------- apply point


def test_apply_point_sets_nested_keys_and_list_items() -> None:
    before = copy.deepcopy(BASE)
    out = apply_point(
        BASE,
        {
            "topologies.orchestration.orchestrator.shard_concurrency": 50,
            "load.checkout.schedule[1].rate": 40,
            "load.checkout.schedule.2.at": 70,
            "services.email.latency": 0.005,
        },
        "s.yaml",
    )
    assert out["topologies"]["orchestration"]["orchestrator"]["shard_concurrency"] == 50
    assert out["load"]["checkout"]["schedule"] == [
        {"at": 0, "rate": 5},
        {"at": 30, "rate": 40},
        {"at": 70, "rate": 5},
    ]
    assert out["services"]["email"]["latency"] == 0.005
    assert before == BASE  # the input is untouched
    assert out["services"]["payment"] is not BASE["services"]["payment"]


def test_apply_point_may_replace_a_mapping_by_a_value() -> None:
    out = apply_point(BASE, {"services.payment.latency": 0.02}, "s.yaml")
    assert out["services"]["payment"]["latency"] == 0.02


def test_apply_point_allows_a_new_final_key() -> None:
    out = apply_point(BASE, {"services.payment.replicas": 3, "drain": 50}, "s.yaml")
    assert out["services"]["payment"] == {"latency": {"dist": "exponential", "mean": 0.01}, "replicas": 3}
    assert out["drain"] == 50
    assert "replicas" not in BASE["services"]["payment"]


def test_apply_point_with_no_point_copies() -> None:
    out = apply_point(BASE, {}, "s.yaml")
    assert out == BASE and out is not BASE


def test_apply_point_separates_yaml_aliases() -> None:
    text = """
    engine: &engine {shard_concurrency: 20}
    topologies:
      orchestration: {orchestrator: *engine}
      hybrid: {orchestrator: *engine}
    """
    data = yaml.safe_load(text)
    assert data["topologies"]["orchestration"]["orchestrator"] is data["topologies"]["hybrid"]["orchestrator"]
    out = apply_point(data, {"topologies.orchestration.orchestrator.shard_concurrency": 5}, "s.yaml")
    assert out["topologies"]["orchestration"]["orchestrator"] == {"shard_concurrency": 5}
    assert out["topologies"]["hybrid"]["orchestrator"] == {"shard_concurrency": 20}
    assert out["engine"] == {"shard_concurrency": 20}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("load.chekout.rate", "s.yaml: --vary load.chekout.rate: no 'chekout' in load (known: checkout)"),
        ("lod.checkout", "--vary lod.checkout: no 'lod' at the top level (known: duration, load, name,"),
        (
            "services.paymnt.replicas",
            "--vary services.paymnt.replicas: no 'paymnt' in services (known: email, payment)",
        ),
        (
            "topologies.orchestration.orchestratr.workers",
            "no 'orchestratr' in topologies.orchestration (known: orchestrator)",
        ),
        ("topologies.choreography.broker.capacity", "no 'broker' in topologies.choreography (it is empty)"),
        (
            "load.checkout.schedule[3].rate",
            "no item [3] in load.checkout.schedule (it has 3: [0] to [2])",
        ),
        ("load.checkout.schedule.7", "no item [7] in load.checkout.schedule"),
        (
            "load.checkout.schedule.first.rate",
            "load.checkout.schedule is a list, not a mapping; address an item as load.checkout.schedule[0]",
        ),
        ("services[0].latency", "services is a mapping, not a list (known: email, payment)"),
        (
            "services.email.latency.mean",
            "services.email.latency is 0.002, not a mapping or a list, so it has no 'mean'",
        ),
        ("workflows.checkout.steps[0].x", "workflows.checkout.steps[0] is 'payment', not a mapping"),
        ("load..rate", "empty key"),
    ],
)
def test_apply_point_unknown_path(path: str, message: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        apply_point(BASE, {path: 1}, "s.yaml")
    assert exc.value.source == "s.yaml"
    assert message in problems_of(exc)


def test_apply_point_names_every_bad_path() -> None:
    with pytest.raises(ScenarioError) as exc:
        apply_point(BASE, {"load.chekout.rate": 1, "seed": 4, "lod.x": 2}, "s.yaml", origin="sweep.vary")
    assert exc.value.problems == [
        "sweep.vary load.chekout.rate: no 'chekout' in load (known: checkout)",
        "sweep.vary lod.x: no 'lod' at the top level (known: duration, load, name, seed, services, "
        "topologies, warmup, workflows)",
    ]


def test_apply_point_refuses_data_that_is_not_a_mapping() -> None:
    with pytest.raises(ScenarioError, match="the top level must be a mapping"):
        apply_point([1, 2], {"a": 1}, "s.yaml")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ validation


def test_scenario_for_point_validates() -> None:
    point = {"services.payment.replicas": 3, "load.checkout.schedule[1].rate": 40, "seed": 9}
    scenario = scenario_for_point(BASE, point, "s.yaml")
    assert scenario.services["payment"].replicas == 3
    assert scenario.load["checkout"].schedule is not None
    assert scenario.load["checkout"].schedule[1].rate == 40
    assert scenario.seed == 9


def test_scenario_for_point_reraises_with_the_point() -> None:
    with pytest.raises(ScenarioError) as exc:
        scenario_for_point(BASE, {"services.payment.replicaz": 2}, "s.yaml")
    assert exc.value.source == "s.yaml"
    assert exc.value.problems == [
        "--vary services.payment.replicaz=2: services.payment.replicaz: "
        "unknown field (did you mean 'replicas'?)"
    ]
    assert str(exc.value) == (
        "s.yaml: --vary services.payment.replicaz=2: services.payment.replicaz: "
        "unknown field (did you mean 'replicas'?)"
    )


def test_scenario_for_point_names_the_whole_point() -> None:
    point = {"load.checkout.schedule[1].rate": 7, "services.payment.replicas": 0}
    with pytest.raises(ScenarioError) as exc:
        scenario_for_point(BASE, point, "s.yaml")
    assert exc.value.problems == [
        "--vary load.checkout.schedule[1].rate=7,services.payment.replicas=0: "
        "services.payment.replicas: must be greater than 0"
    ]


def test_scenario_for_point_reports_string_for_number() -> None:
    with pytest.raises(ScenarioError) as exc:
        scenario_for_point(BASE, {"duration": "long"}, "s.yaml")
    assert "--vary duration=long: duration: must be a number, not 'long'" in str(exc.value)


def test_scenario_for_point_path_errors_come_first() -> None:
    with pytest.raises(ScenarioError) as exc:
        scenario_for_point(BASE, {"load.chekout.rate": 40}, "s.yaml")
    assert exc.value.problems == ["--vary load.chekout.rate: no 'chekout' in load (known: checkout)"]


def test_scenario_for_point_without_point_raises_the_plain_error() -> None:
    broken = {**BASE, "duration": -1}
    with pytest.raises(ScenarioError) as exc:
        scenario_for_point(broken, {}, "s.yaml")
    assert exc.value.problems == ["duration: must be greater than 0"]


# ------------------------------------------------------------------------- labels and keys


def test_point_label() -> None:
    assert (
        point_label({"load.checkout.rate": 40, "services.payment.replicas": 2})
        == "load.checkout.rate=40,services.payment.replicas=2"
    )
    assert point_label({"warmup": 0.1, "duration": 40.0}) == "warmup=0.1,duration=40.0"
    assert point_label({"load.checkout.schedule[1].rate": 3}) == "load.checkout.schedule[1].rate=3"
    assert point_label({"services.a.latency.file": "data/x:y.csv"}) == "services.a.latency.file=data_x_y.csv"
    assert point_label({}) == "base"


def test_point_labels_of_a_grid_are_distinct() -> None:
    grid = expand_grid([parse_vary("warmup=0.1:0.5:0.1"), parse_vary("seed=log:1:1000:4")])
    labels = [point_label(p) for p in grid]
    assert len(set(labels)) == len(labels) == 20


RESOLVED: dict[str, Any] = {
    "name": "x",
    "services": {"a": {"replicas": 2, "latency": {"dist": "constant", "value": 0.1}}},
    "load": {"wf": {"rate": 40.0, "schedule": None}},
}


def test_point_key_is_stable() -> None:
    key = point_key(RESOLVED, 7, 0, "orchestration")
    assert len(key) == 16 and int(key, 16) >= 0
    assert point_key(copy.deepcopy(RESOLVED), 7, 0, "orchestration") == key
    reordered = {
        "load": {"wf": {"schedule": None, "rate": 40.0}},
        "services": {"a": {"latency": {"value": 0.1, "dist": "constant"}, "replicas": 2}},
        "name": "x",
    }
    assert point_key(reordered, 7, 0, "orchestration") == key


def test_point_key_changes_with_every_input() -> None:
    key = point_key(RESOLVED, 7, 0, "orchestration")
    changed = copy.deepcopy(RESOLVED)
    changed["services"]["a"]["replicas"] = 3
    other = copy.deepcopy(RESOLVED)
    other["load"]["wf"]["rate"] = 40.000001
    keys = {
        key,
        point_key(changed, 7, 0, "orchestration"),
        point_key(other, 7, 0, "orchestration"),
        point_key(RESOLVED, 8, 0, "orchestration"),
        point_key(RESOLVED, None, 0, "orchestration"),
        point_key(RESOLVED, 7, 1, "orchestration"),
        point_key(RESOLVED, 7, 0, "hybrid"),
    }
    assert len(keys) == 7


def test_point_key_of_a_validated_scenario() -> None:
    one = scenario_for_point(BASE, {"services.payment.replicas": 2}, "s.yaml")
    two = scenario_for_point(BASE, {"services.payment.replicas": 2.0}, "s.yaml")  # 2.0 is read as 2
    three = scenario_for_point(BASE, {"services.payment.replicas": 3}, "s.yaml")
    assert point_key(one, 3, 0, "orchestration") == point_key(two, 3, 0, "orchestration")
    assert point_key(one, 3, 0, "orchestration") == point_key(
        one.model_dump(mode="json", by_alias=True), 3, 0, "orchestration"
    )
    assert point_key(one, 3, 0, "orchestration") != point_key(three, 3, 0, "orchestration")


def test_point_key_refuses_non_finite_numbers() -> None:
    with pytest.raises(ValueError):
        point_key({"rate": float("nan")}, 1, 0, "orchestration")


# ---------------------------------------------------------------------------- sweep in file


def test_sweep_spec_and_factors() -> None:
    spec = SweepSpec.model_validate(
        {
            "vary": {
                "load.checkout.rate": [10, 20.5, 40],
                "services.payment.replicas": "1:3:1",
                "topologies.orchestration.kind": ["orchestration", "hybrid"],
                "warmup": 5,
            }
        }
    )
    assert spec.vary["services.payment.replicas"] == "1:3:1"  # kept as written
    factors = factors_from_spec(spec)
    assert factors == [
        Factor("load.checkout.rate", (10, 20.5, 40)),
        Factor("services.payment.replicas", (1, 2, 3)),
        Factor("topologies.orchestration.kind", ("orchestration", "hybrid")),
        Factor("warmup", (5,)),
    ]
    assert len(expand_grid(factors)) == 3 * 3 * 2


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        ({}, "at least 1 item"),
        ({"load.checkout.rate": []}, "no values given"),
        ({"load.checkout.rate": "1:x:2"}, "'1:x:2': the stop 'x' is not a number"),
        ({"load.checkout.rate": [1, None]}, "must be a number or a string, not null"),
        ({"load.checkout.rate": [1, True]}, "must be a number or a string, not true"),
        ({"load.checkout.rate": [1, [2]]}, "must be a number or a string, not a list"),
        ({"load.checkout.rate": [1, 1]}, "1 is listed twice"),
        ({"load.checkout.rate": None}, "must be a list of values or VALUES text"),
        ({"load.checkout.rate": {"a": 1}}, "must be a list of values or VALUES text"),
        ({"load..rate": [1]}, "empty key"),
        ({"a.b[0]": [1], "a.b.0": [2]}, "a.b.0: varied twice (as a.b[0])"),
        ({"load": [1], "load.checkout": [2]}, "load.checkout: overlaps load"),
    ],
)
def test_bad_sweep_spec(vary: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        SweepSpec.model_validate({"vary": vary})
    assert message in str(exc.value)


def test_sweep_spec_forbids_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        SweepSpec.model_validate({"vary": {"seed": [1, 2]}, "varry": {}})


def test_sweep_spec_round_trips_and_has_a_schema() -> None:
    spec = SweepSpec.model_validate({"vary": {"seed": [1, 2], "warmup": "log:1:100:3"}})
    assert spec.model_dump() == {"vary": {"seed": [1, 2], "warmup": "log:1:100:3"}}
    assert SweepSpec.model_validate(spec.model_dump()) == spec
    schema = SweepSpec.model_json_schema()
    assert schema["additionalProperties"] is False
    assert "description" in schema["properties"]["vary"]
