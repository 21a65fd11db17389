"""Hostile input: whatever a scenario says, the answer is a valid scenario that runs, or a clear error.

The principle of the scenario language is that bad input gets ``<file>: <field.path>: <message>``
and exit code 2, never a traceback, and that whatever validates runs without crashing or hanging.
These tests hold it against input written to break it:

* a property-based test mutates the shipped scenarios (wrong types, hostile numbers, missing and
  unknown keys, odd names) and requires either a valid ``Scenario`` (which must then pass or fail
  :func:`~sim.scenario.limits.check_limits` cleanly and simulate briefly without an exception or a
  hang) or a ``ScenarioError`` of ``path: message`` lines;
* one test per known reproducer (the files of ``tests/hostile``, and files made at test time for
  what cannot be committed: control characters, FIFOs, symbolic links, 10 MB files).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import signal
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from sim.cli.app import app
from sim.model.resilience import backoff
from sim.running.simulate import Task, simulate
from sim.scenario.distributions import Mixture, Normal
from sim.scenario.errors import ScenarioError
from sim.scenario.grid import MAX_POINTS, SweepSpec, expand_grid, parse_values, parse_vary
from sim.scenario.limits import (
    MAX_ARRIVALS,
    MAX_CRASHES,
    MAX_DEPTH,
    MAX_NODES,
    MAX_WINDOWS,
    check_limits,
    expected_arrivals,
)
from sim.scenario.loader import load_scenario, read_scenario_data, scenario_from_dict
from sim.scenario.models import Retry, Scenario
from sim.scenario.overrides import with_overrides

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = Path(__file__).resolve().parent / "hostile"
SHIPPED = sorted(p for p in (ROOT / "scenarios").glob("*.yaml") if p.name != "prices.yaml")
RAW = {path.name: read_scenario_data(path) for path in SHIPPED}

SMALL = (
    (HOSTILE / "normal_far_below_zero.yaml")
    .read_text(encoding="utf-8")
    .replace("{dist: normal, mean: -6, sd: 1}", "{dist: exponential, mean: 0.05}")
)
"""A small valid scenario (payment and stock, orchestration and choreography), as YAML text."""

BUDGET = 20
"""Wall-clock seconds any single validation or short simulation may take here."""


class Hang(Exception):
    """Raised by :func:`time_limit` when the time is up."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the block after ``seconds`` of wall-clock time (SIGALRM, in the main
    thread; elsewhere the block simply runs). The previous handler and timer are restored."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def invoke(*args: str | Path) -> Result:
    """``sim`` in-process, stdout and stderr apart, within :data:`BUDGET` seconds."""
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()
    with time_limit(BUDGET):
        return runner.invoke(app, [str(a) for a in args])


def assert_problem_lines(exc: ScenarioError) -> None:
    """Every line of the error is ``source: path: message``, with a path and a message."""
    assert exc.problems, "an error without problems"
    for problem in exc.problems:
        path, sep, message = problem.partition(": ")
        assert sep and path.strip() and message.strip(), f"not 'path: message': {problem!r}"
        assert "Traceback" not in problem
        assert all(unicodedata.category(c) not in ("Cc", "Zl", "Zp") for c in problem), repr(problem)
    for line in str(exc).splitlines():
        assert line.startswith(f"{exc.source}: "), line


def assert_exit_2(result: Result, path: Path | str, field: str | None, message: str) -> None:
    """Exit code 2, no traceback, and ``error: <file>: <field>: <message...>`` on stderr."""
    output = result.stdout + result.stderr
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    expected = f"error: {path}: {message}" if field is None else f"error: {path}: {field}: {message}"
    assert any(line.startswith(expected) for line in result.stderr.splitlines()), result.stderr


# --- the property-based test ---------------------------------------------------------------------

NUMBERS: list[Any] = [
    math.inf,
    -math.inf,
    math.nan,
    "inf",
    "-inf",
    "nan",
    "Infinity",
    "1e999",
    1e308,
    -1e308,
    1e9,
    1e-320,
    -1e-320,
    5e-324,
    1e-9,
    -1,
    0,
    0.0,
    0.5,
    1,
    3,
    100,
    1000,
    100_000,
    2**31,
    2**63,
    2**64,
    10**20,
    -(2**64),
]
EXTREME: list[Any] = [5e-324, 1e-300, 1e-9, 0, 0.5, 1, 2, 3, 1000, 99_999, 100_000, 1e6, 1e9]
"""Numbers at or near the bounds that a field may well accept: the cases that must then run."""
NAMES: list[str] = [
    "",
    "x" * 5000,
    "..",
    "/abs",
    "../../etc/passwd",
    "[red]x[/red]",
    "ünïcødé ✓ 名前",
    "a\x00b",
    "\x1b[31mred",
    "tab\there",
    "orchestrator",
    "broker",
    "normal",
    "1",
    "a.b[0]",
]
OTHER: list[Any] = [
    True,
    False,
    None,
    [],
    {},
    [1, 2],
    {"dist": "normal", "mean": -6, "sd": 1},
    {"dist": "gamma", "mean": 1, "cv": 100},
    {"dist": "lognormal", "median": 1e-300, "sigma": 10},
    {
        "dist": "mixture",
        "parts": [{"weight": 1e308, "distribution": 0}, {"weight": 1e308, "distribution": 1}],
    },
    {"dist": "empirical", "samples": [0, 1e9]},
    {"dist": "empirical", "file": "/etc/passwd"},
    {"dist": "uniform", "low": 0, "high": 1e9},
]
VALUES = st.one_of(
    st.sampled_from(NUMBERS),
    st.sampled_from(NAMES),
    st.sampled_from(OTHER),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=30),
)


def places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value inside plain data (the top level excluded)."""
    out = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += places(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += places(item, (*path, i))
    return out


def at(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def mutate(data: dict[str, Any], draw: Any, numeric: bool) -> None:
    """One mutation of ``data`` in place, its kind and place drawn with ``draw``."""
    where = places(data)
    if numeric:  # a number replaced by an extreme one: many of these still validate
        numbers = [p for p in where if type(at(data, p)) in (int, float)]
        if numbers:
            path = draw(st.sampled_from(numbers))
            at(data, path[:-1])[path[-1]] = draw(st.sampled_from(EXTREME))
            return
    path = draw(st.sampled_from(where))
    parent, key = at(data, path[:-1]), path[-1]
    kind = draw(st.sampled_from(["replace", "replace", "delete", "add", "rename"]))
    if kind == "replace":
        parent[key] = copy.deepcopy(draw(VALUES))
    elif kind == "delete" and isinstance(parent, dict):
        del parent[key]
    elif kind == "delete":
        parent.pop(key)
    elif kind == "add" and isinstance(parent, dict):
        parent[draw(st.sampled_from([*NAMES, "unknown_field", "mean", "replicas"]))] = copy.deepcopy(
            draw(VALUES)
        )
    elif kind == "add":
        parent.append(copy.deepcopy(draw(VALUES)))
    elif isinstance(parent, dict):  # rename: a service, a workflow, a topology or a field
        parent[draw(st.sampled_from(NAMES))] = parent.pop(key)
    else:
        parent[key] = draw(st.sampled_from(NAMES))


def briefly(scenario: Scenario) -> Scenario:
    """The scenario cut to a few seconds of simulated time and a few hundred arrivals."""
    rate = expected_arrivals(scenario) / scenario.duration
    duration = min(scenario.duration, 3.0, 300 / rate if rate > 0 else 3.0)
    update = {"duration": duration, "warmup": 0.0, "drain": min(scenario.drain_time, 3.0), "window": None}
    return scenario.model_copy(update=update)


def check_hostile(data: dict[str, Any]) -> None:
    """Validate; a valid scenario must pass or fail the limits cleanly, then run briefly."""
    try:
        with time_limit(BUDGET):
            scenario = scenario_from_dict(data, source="mutated.yaml", base_dir=ROOT / "scenarios")
    except ScenarioError as exc:
        assert_problem_lines(exc)
        event("refused by validation")
        return
    assert isinstance(scenario, Scenario)
    try:
        check_limits(scenario)
        short = briefly(scenario)
        check_limits(short)
    except ScenarioError as exc:
        assert_problem_lines(exc)
        event("refused by check_limits")
        return
    with time_limit(BUDGET):
        for topology in short.topologies:
            run = simulate(Task(short, topology))
            assert run.topology == topology
    event("valid and simulated")


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(name=st.sampled_from(sorted(RAW)), data=st.data())
def test_mutated_scenarios_validate_or_fail_cleanly(name: str, data: st.DataObject) -> None:
    scenario = copy.deepcopy(RAW[name])
    for _ in range(data.draw(st.integers(1, 3))):
        mutate(scenario, data.draw, numeric=False)
    check_hostile(scenario)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(name=st.sampled_from(sorted(RAW)), data=st.data())
def test_extreme_numbers_validate_and_run_or_fail_cleanly(name: str, data: st.DataObject) -> None:
    scenario = copy.deepcopy(RAW[name])
    for _ in range(data.draw(st.integers(1, 2))):
        mutate(scenario, data.draw, numeric=True)
    check_hostile(scenario)


def test_a_hundred_thousand_autoscaled_replicas_run_briefly() -> None:
    """A huge ``autoscale.max`` must cost little per change of replicas and per request: with
    100,000 possible consumers per service, a brief run once took minutes (quadratic checks)."""
    scenario = copy.deepcopy(RAW["black-friday.yaml"])
    for service in scenario["services"].values():  # (one YAML alias: all five at once)
        service["autoscale"]["max"] = 99_999
    short = briefly(scenario_from_dict(scenario, source="huge.yaml", base_dir=ROOT / "scenarios"))
    with time_limit(BUDGET):
        for topology in short.topologies:
            assert simulate(Task(short, topology)).topology == topology


def test_every_field_refuses_every_spelling_of_infinity_and_nan() -> None:
    """pydantic reads "inf", "Infinity", "nan" and "1e999" (text to YAML) as floats; every number
    of every shipped scenario must refuse them."""
    for name, raw in RAW.items():
        for path in places(raw):
            if type(at(raw, path)) not in (int, float):
                continue
            for spelling in ["inf", "-Infinity", "nan", "1e999", math.inf, math.nan]:
                data = copy.deepcopy(raw)
                at(data, path[:-1])[path[-1]] = spelling
                with pytest.raises(ScenarioError) as info:
                    scenario_from_dict(data, source=name, base_dir=ROOT / "scenarios")
                assert_problem_lines(info.value)


# --- item 1: non-finite numbers ------------------------------------------------------------------

NON_FINITE = [
    ("duration_infinity_text.yaml", "duration", "must be a finite number, not 'Infinity'"),
    ("duration_1e999_text.yaml", "duration", "must be a finite number, not '1e999'"),
    ("duration_nan_text.yaml", "duration", "must be a finite number, not 'nan'"),
    ("rate_inf_text.yaml", "load.checkout.rate", "must be a finite number, not 'inf'"),
    ("rate_dot_inf.yaml", "load.checkout.rate", "must be a finite number, not inf"),
]

# --- item 2: huge finite values (field bounds) -------------------------------------------------

HUGE = [
    ("rate_1e300.yaml", "load.checkout.rate", "must be at most 1,000,000,000, not 1e+300"),
    ("replicas_1e20.yaml", "services.payment.replicas", "must be at most 100,000"),
    ("replications_2_64.yaml", "replications", "must be at most 10,000"),
    ("duration_1e308.yaml", "duration", "must be at most 1,000,000,000, not 1e+308"),
]

# --- items 3 to 6: degenerate distributions, endless loops, the loader, file references ----------

REFUSED = [
    ("gamma_cv_tiny.yaml", "services.payment.latency.cv", "must be greater than or equal to 0.001"),
    ("gamma_cv_huge.yaml", "services.payment.latency.cv", "must be less than or equal to 100"),
    ("slowdown_factor_tiny.yaml", "faults[0].factor", "must be greater than or equal to 0.001"),
    ("crash_zero.yaml", "faults[0].mtbf", "must have a mean greater than 0"),
    ("sexagesimal_duration.yaml", "duration", "12:30:00 is read by YAML as the base-60 number 45000"),
    ("alias_bomb.yaml", "network.latency.parts[12].distribution.parts (line 33)", "holds more than 100,000"),
    ("empirical_absolute.yaml", "services.payment.latency.file", "'/etc/passwd' is an absolute path"),
    ("empirical_dotdot.yaml", "services.payment.latency.file", "'../test_cli.py' leads outside"),
]


@pytest.mark.parametrize(("name", "field", "message"), NON_FINITE + HUGE + REFUSED, ids=lambda v: str(v)[:40])
def test_reproducer_gives_exit_2_and_one_clear_line(name: str, field: str, message: str) -> None:
    path = HOSTILE / name
    started = time.perf_counter()
    result = invoke("validate", path)
    assert time.perf_counter() - started < BUDGET
    assert_exit_2(result, path, field, message)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    with pytest.raises(ScenarioError):
        load_scenario(path)


def test_hostile_files_are_all_tested() -> None:
    tested = {name for name, _, _ in NON_FINITE + HUGE + REFUSED} | {
        "window_1e-7.yaml",
        "crash_too_often.yaml",
        "mixture_huge_weights.yaml",
        "retry_multiplier_1e200.yaml",
        "normal_far_below_zero.yaml",
    }
    assert {p.name for p in HOSTILE.glob("*.yaml")} == tested
    for path in HOSTILE.glob("*.yaml"):
        assert path.read_text(encoding="utf-8").startswith("# hostile: ")


@pytest.mark.parametrize(
    "name", ["mixture_huge_weights.yaml", "retry_multiplier_1e200.yaml", "normal_far_below_zero.yaml"]
)
def test_degenerate_but_meaningful_scenarios_now_run(name: str) -> None:
    """Weights of 1e308, a backoff multiplier of 1e200 and a normal with nearly all its mass below
    0 are meaningful: they validate and run (they used to crash or loop)."""
    result = invoke("validate", HOSTILE / name)
    assert result.exit_code == 0, result.stdout + result.stderr
    scenario = load_scenario(HOSTILE / name)
    check_limits(scenario)
    short = scenario.model_copy(update={"duration": 10.0, "warmup": 0.0})
    with time_limit(BUDGET):
        for topology in short.topologies:
            run = simulate(Task(short, topology))
            assert run.topology == topology


@pytest.mark.parametrize(
    ("name", "field", "limit"),
    [
        ("window_1e-7.yaml", "window", f"{MAX_WINDOWS:,}"),
        ("crash_too_often.yaml", "faults[0]", f"{MAX_CRASHES:,}"),
    ],
)
def test_limits_refuse_runs_that_would_exhaust_memory_unless_forced(
    name: str, field: str, limit: str
) -> None:
    scenario = load_scenario(HOSTILE / name)
    with pytest.raises(ScenarioError) as info:
        check_limits(scenario, source=str(HOSTILE / name))
    assert_problem_lines(info.value)
    (line,) = info.value.problems
    assert line.startswith(f"{field}: ") and "about" in line and limit in line and "--force" in line, line
    check_limits(scenario, force=True)


def test_arrivals_limit_counts_the_mean_rate_of_schedules() -> None:
    data = yaml.safe_load(SMALL)
    data["duration"] = 1000
    data["warmup"] = 0
    data["window"] = 100
    data["load"] = {"checkout": {"schedule": [{"at": 0, "rate": 10}, {"at": 500, "rate": 39_990}]}}
    scenario = scenario_from_dict(data)
    assert expected_arrivals(scenario) == 10 * 500 + 39_990 * 500 == MAX_ARRIVALS
    check_limits(scenario)  # exactly at the limit
    data["load"]["checkout"]["schedule"][1]["rate"] = 40_000
    with pytest.raises(ScenarioError) as info:
        check_limits(scenario_from_dict(data), source="s.yaml")
    assert info.value.problems == [
        f"load: about 20,005,000 arrivals per run (mean rate × duration, summed over the workflows) exceed "
        f"the limit of {MAX_ARRIVALS:,}; lower the rates or the duration, or pass --force to run it anyway"
    ]
    assert str(info.value).startswith("s.yaml: load: about 20,005,000 arrivals")


def test_duration_override_is_bounded_like_the_field() -> None:
    scenario = load_scenario(HOSTILE / "mixture_huge_weights.yaml")
    for bad in [1e308, math.inf, math.nan, 1e9 + 1]:
        with pytest.raises(ScenarioError) as info:
            with_overrides(scenario, duration=bad)
        assert info.value.source == "--duration"
    with pytest.raises(ScenarioError, match="at most 10,000"):
        with_overrides(scenario, replications=2**64)
    with pytest.raises(ScenarioError, match="2\\^63"):
        with_overrides(scenario, seed=2**64)
    assert with_overrides(scenario, duration=1e9).duration == 1e9


def test_duration_override_on_the_command_line(tmp_path: Path) -> None:
    result = invoke(
        "run", HOSTILE / "mixture_huge_weights.yaml", "--duration", "1e308", "--out", tmp_path / "r"
    )
    assert_exit_2(result, "--duration", None, "must be at most 1,000,000,000 seconds")
    assert not (tmp_path / "r").exists()


def test_vary_values_refuse_non_finite_numbers() -> None:
    for text in ["1e999", "inf", "nan,1", "-Infinity", "1:1e999:1", "log:1:1e999:3"]:
        with pytest.raises(ScenarioError) as info:
            parse_values(text)
        assert info.value.source == "--vary" and info.value.problems
    with pytest.raises(ScenarioError):
        parse_vary("load.checkout.rate=inf")
    data = yaml.safe_load(SMALL)
    for values in [["inf"], [math.inf], "1e999", ["1e999"], "nan", [10, "Infinity"]]:
        data["sweep"] = {"vary": {"load.checkout.rate": values}}
        with pytest.raises(ScenarioError) as info:
            scenario_from_dict(data, source="s.yaml")
        assert info.value.problems[0].startswith("sweep.vary"), info.value.problems


def test_unknown_fields_get_a_hint_that_fits_their_block() -> None:
    """A misspelt field is matched first against the required fields missing beside it; a field
    of another block is never suggested as its own correction."""
    data = yaml.safe_load(SMALL)
    data["faults"] = [{"type": "outage", "targt": "payment", "start": 1, "duraton": 2}]
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, source="s.yaml")
    problems = info.value.problems
    assert "faults[0].targt: unknown field (did you mean 'target'?)" in problems
    assert "faults[0].duraton: unknown field (did you mean 'duration'?)" in problems
    assert "faults[0].start: unknown field" in problems  # a field of schedules, not of faults


def test_sweep_grids_are_bounded() -> None:
    factors = [parse_vary("load.checkout.rate=1:1000:1"), parse_vary("seed=1:1000:1")]
    with pytest.raises(ScenarioError, match=f"at most {MAX_POINTS:,}"):
        expand_grid(factors)
    with pytest.raises(ValueError, match="points"):
        SweepSpec.model_validate({"vary": {"a": "1:1000:1", "b": "1:1000:1"}})


# --- item 3: degenerate distributions and policies -----------------------------------------------


def test_mixture_weights_whose_sum_overflows_still_sample() -> None:
    mixture = Mixture.model_validate(
        {
            "dist": "mixture",
            "parts": [{"weight": 1e308, "distribution": 1.0}, {"weight": 1e308, "distribution": 3.0}],
        }
    )
    assert mixture.probabilities == [0.5, 0.5]
    assert mixture.mean == 2.0
    x = mixture.sample(np.random.default_rng(1), 10_000)
    assert set(np.unique(x)) == {1.0, 3.0}
    tiny = Mixture.model_validate(
        {
            "dist": "mixture",
            "parts": [{"weight": 5e-324, "distribution": 1.0}, {"weight": 5e-324, "distribution": 3.0}],
        }
    )
    assert tiny.probabilities == [0.5, 0.5]


def test_backoff_stops_at_its_cap_instead_of_overflowing() -> None:
    assert backoff(Retry(multiplier=1e200, jitter="none"), 3, 0.5) == 20.0
    assert backoff(Retry(jitter="none"), 1100, 0.5) == 20.0  # 2^1099 overflows a float
    assert backoff(Retry(jitter="full"), 5000, 0.5) == 10.0
    assert backoff(Retry(initial=0, multiplier=1e200, jitter="equal"), 5000, 0.5) == 0.0
    assert backoff(Retry(initial=5e-324, jitter="none"), 2000, 0.5) == 20.0
    assert backoff(Retry(jitter="none"), 3, 0.5) == 0.1 * 2**2  # the formula itself is unchanged


def test_slowdowns_are_restored_exactly() -> None:
    """Overlapping slowdowns multiply while they last; afterwards the factor is exactly 1 again
    (dividing back out left 1e-320 × (1 / 1e-320) = inf behind, and 3 × (1/3) ≠ 1 in general)."""
    import simpy

    from sim.model.faults import Faults
    from sim.model.station import Station

    data = yaml.safe_load(SMALL)
    data["faults"] = [
        {"type": "slowdown", "target": "payment", "at": 1, "duration": 4, "factor": 0.001},
        {"type": "slowdown", "target": "payment", "at": 2, "duration": 1, "factor": 7},
        {"type": "slowdown", "target": "payment", "at": 2.5, "duration": 5, "factor": 1000},
    ]
    scenario = scenario_from_dict(data)
    env = simpy.Environment()
    station = Station(env, "payment", "service", 2)
    faults = Faults(env, scenario, seed=1, replication=0)
    faults.register("payment", station, 2)
    faults.start()
    seen = []
    for t in [1.5, 2.2, 2.7, 4.0, 6.0, 8.0]:
        env.run(until=t)
        seen.append(station.slowdown)
    assert seen == [0.001, 0.001 * 7, 0.001 * 7 * 1000, 0.001 * 1000, 1000.0, 1.0]
    assert station.slowdown == 1.0


def test_normal_far_below_zero_samples_fast_and_matches_its_mean() -> None:
    normal = Normal.model_validate({"dist": "normal", "mean": -6, "sd": 1})
    started = time.perf_counter()
    x = normal.sample(np.random.default_rng(3), 200_000)
    assert time.perf_counter() - started < 2
    assert (x >= 0).all() and np.isfinite(x).all()
    assert abs(x.mean() - normal.mean) < 5 * x.std() / math.sqrt(x.size)
    edge = Normal.model_validate({"dist": "normal", "mean": -8, "sd": 1})
    assert 0 < edge.mean < 0.2 and math.isfinite(edge.mean)
    y = edge.sample(np.random.default_rng(4), 100_000)
    assert (y >= 0).all() and abs(y.mean() - edge.mean) < 5 * y.std() / math.sqrt(y.size)


def test_crash_process_with_zero_mean_mtbf_is_refused() -> None:
    data = yaml.safe_load(SMALL)
    for mtbf in [0, {"dist": "constant", "value": 0}, {"dist": "uniform", "low": 0, "high": 0}]:
        data["faults"] = [{"type": "crash", "target": "payment", "mtbf": mtbf, "mttr": 0}]
        with pytest.raises(ScenarioError) as info:
            scenario_from_dict(data)
        assert info.value.problems == [
            "faults[0].mtbf: must have a mean greater than 0 (failures 0 s apart would never end)"
        ]


# --- item 5: the YAML loader --------------------------------------------------------------------


def test_control_character_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "control.yaml"
    path.write_text(SMALL.replace("seed: 3", "seed: 3\x01"), encoding="utf-8")
    assert_exit_2(
        invoke("validate", path), path, None, "invalid YAML: line 3, column 8: the control character #x01"
    )


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_deeply_nested_brackets_are_refused(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "nested.yaml"
    path.write_text(SMALL + "description: " + "[" * depth + "]" * depth + "\n", encoding="utf-8")
    assert_exit_2(
        invoke("validate", path), path, "(top level)", f"lists and mappings nested more than {MAX_DEPTH}"
    )


def test_mixtures_nested_200_deep_are_refused(tmp_path: Path) -> None:
    part = "0.1"
    for _ in range(200):
        parts = f"[{{weight: 1, distribution: {part}}}, {{weight: 1, distribution: 0.2}}]"
        part = f"{{dist: mixture, parts: {parts}}}"
    path = tmp_path / "deep.yaml"
    path.write_text(SMALL.replace("{dist: exponential, mean: 0.05}", part), encoding="utf-8")
    assert_exit_2(invoke("validate", path), path, "(top level)", "lists and mappings nested more than")


def test_nesting_within_the_limit_is_fine() -> None:
    data = yaml.safe_load(SMALL)
    part: Any = 0.1
    for _ in range(12):  # 12 mixtures: 40 levels of lists and mappings
        part = {
            "dist": "mixture",
            "parts": [{"weight": 1, "distribution": part}, {"weight": 1, "distribution": 0.2}],
        }
    data["services"]["payment"]["latency"] = part
    scenario = scenario_from_dict(data)
    assert scenario.services["payment"].latency.mean > 0


def test_shared_data_is_measured_with_aliases_expanded() -> None:
    """The same checks guard data given in-process (a shared object is what a YAML alias makes)."""
    data = yaml.safe_load(SMALL)
    part: Any = 0.1
    for _ in range(30):
        part = {
            "dist": "mixture",
            "parts": [{"weight": 1, "distribution": part}, {"weight": 1, "distribution": part}],
        }
    data["network"] = {"latency": part}
    with time_limit(5), pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, source="s.yaml")
    assert f"holds more than {MAX_NODES:,} values" in info.value.problems[0]
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    data = yaml.safe_load(SMALL)
    data["description"] = deep
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, source="s.yaml")
    assert info.value.problems[0].startswith("description[0][0]")
    loop: list[Any] = []
    loop.append(loop)
    data["description"] = loop
    with pytest.raises(ScenarioError, match="contains itself"):
        scenario_from_dict(data, source="s.yaml")


def test_alias_bomb_is_refused_within_a_second() -> None:
    started = time.perf_counter()
    with pytest.raises(ScenarioError) as info:
        load_scenario(HOSTILE / "alias_bomb.yaml")
    assert time.perf_counter() - started < 2
    assert_problem_lines(info.value)


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "recursive.yaml"
    path.write_text(SMALL + "description: &r [*r]\n", encoding="utf-8")
    assert_exit_2(invoke("validate", path), path, "description[0] (line 17)", "contains itself")


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("duration: 1:30", "duration", "1:30 is read by YAML as the base-60 number 90"),
        ("duration: 1:30.5", "duration", "1:30.5 is read by YAML as the base-60 number 90.5"),
        ("seed: 010", "seed", "010 is read by YAML as an octal number (8)"),
        ("seed: 2024-01-02", "seed", "2024-01-02 is read by YAML as a date"),
        ("seed: 2024-13-45", "seed", "2024-13-45 is read by YAML as a date"),
        ("seed: " + "9" * 5000, "seed", "a number of 5000 characters is too long"),
    ],
)
def test_yaml_1_1_surprises_are_errors(tmp_path: Path, line: str, field: str, message: str) -> None:
    key = line.split(":")[0]
    text = "\n".join(line if row.startswith(f"{key}:") else row for row in SMALL.splitlines()) + "\n"
    path = tmp_path / "surprise.yaml"
    path.write_text(text, encoding="utf-8")
    assert_exit_2(invoke("validate", path), path, field, message)


def test_quoted_look_alikes_are_text(tmp_path: Path) -> None:
    path = tmp_path / "quoted.yaml"
    path.write_text(SMALL + 'description: "12:30:00 on 2024-01-02, room 010"\n', encoding="utf-8")
    assert invoke("validate", path).exit_code == 0


def test_explicit_tag_on_a_bad_value_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "tag.yaml"
    path.write_text(SMALL.replace("seed: 3", "seed: !!int three"), encoding="utf-8")
    assert_exit_2(invoke("validate", path), path, None, "invalid YAML: a value cannot be read")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "fifo.yaml"
    os.mkfifo(path)
    assert_exit_2(invoke("validate", path), path, None, "is not a regular file")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_dev_zero_is_refused_without_reading_forever() -> None:
    assert_exit_2(invoke("validate", "/dev/zero"), "/dev/zero", None, "is not a regular file")


def test_a_folder_is_refused(tmp_path: Path) -> None:
    assert_exit_2(invoke("validate", tmp_path), tmp_path, None, "is a folder, not a scenario file")


def test_a_file_over_10_mb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(SMALL + "# " + "x" * 10_000_000 + "\n", encoding="utf-8")
    assert_exit_2(invoke("validate", path), path, None, "the file is larger than 10 MB")


# --- item 6: file references ---------------------------------------------------------------------


def _with_file(folder: Path, name: str) -> Path:
    data = yaml.safe_load(SMALL)
    data["services"]["payment"]["latency"] = {"dist": "empirical", "file": name}
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_a_symbolic_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("latency\n0.1\n0.2\n", encoding="utf-8")
    folder = tmp_path / "scenario"
    folder.mkdir()
    (folder / "link.csv").symlink_to(outside)
    path = _with_file(folder, "link.csv")
    assert_exit_2(invoke("validate", path), path, "services.payment.latency.file", "'link.csv' leads outside")
    # Allowed explicitly, the same file is read.
    scenario = load_scenario(path, allow_outside=True)
    assert scenario.services["payment"].latency.mean == pytest.approx(0.15)


def test_files_inside_the_folder_are_read_and_outside_ones_only_when_allowed(tmp_path: Path) -> None:
    folder = tmp_path / "scenario"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "lat.csv").write_text("latency\n0.1\n0.3\n", encoding="utf-8")
    (tmp_path / "outside.csv").write_text("latency\n0.5\n0.7\n0.9\n", encoding="utf-8")
    assert load_scenario(_with_file(folder, "data/lat.csv")).services[
        "payment"
    ].latency.mean == pytest.approx(0.2)
    assert load_scenario(_with_file(folder, "data/../data/lat.csv")).services["payment"].latency.mean > 0
    for name in ["../outside.csv", str(tmp_path / "outside.csv")]:
        path = _with_file(folder, name)
        with pytest.raises(ScenarioError) as info:
            load_scenario(path)
        assert info.value.problems[0].startswith("services.payment.latency.file: ")
        assert load_scenario(path, allow_outside=True).services["payment"].latency.mean == pytest.approx(0.7)
    data = yaml.safe_load(_with_file(folder, "../outside.csv").read_text(encoding="utf-8"))
    with pytest.raises(ScenarioError):
        scenario_from_dict(data, "s.yaml", folder)
    assert scenario_from_dict(data, "s.yaml", folder, allow_outside=True).services["payment"].latency.mean > 0


def test_errors_never_quote_a_files_content(tmp_path: Path) -> None:
    secret = "root:x:0:0:SECRET-TOKEN-1234:/root:/bin/bash"
    (tmp_path / "secret.csv").write_text(f"{secret}\n{secret}\nonly,two\n", encoding="utf-8")
    (tmp_path / "header.csv").write_text(f"{secret}\nnot-a-number\n", encoding="utf-8")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00SECRET-TOKEN-1234\x00")
    for name, message in [
        ("secret.csv", "cannot read secret.csv as a CSV of numbers"),
        ("header.csv", "its column of header.csv must hold numbers only"),
        ("binary.csv", "cannot read binary.csv as a CSV of numbers"),
    ]:
        path = _with_file(tmp_path, name)
        result = invoke("validate", path)
        assert_exit_2(result, path, "services.payment.latency", message)
        assert "SECRET" not in result.stdout + result.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_as_samples_file_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.csv")
    path = _with_file(tmp_path, "pipe.csv")
    assert_exit_2(
        invoke("validate", path), path, "services.payment.latency", "pipe.csv is not a regular file"
    )
