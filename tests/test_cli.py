"""Command-line tests: ``sim run``, ``sim validate``, ``sim schema`` and every bad scenario file.

Each file in ``tests/bad_scenarios`` has exactly one problem (its first line says which). Every one
must end with exit code 2 and a single ``error: <file>: <field path>: <message>`` line, never a
traceback, whichever command reads it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from sim.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
BAD_DIR = Path(__file__).resolve().parent / "bad_scenarios"
CHECKOUT = ROOT / "scenarios" / "checkout.yaml"
TOPOLOGIES = ["orchestration", "choreography", "hybrid"]

# file -> (field path, or None for a problem with the file as a whole; start of the message)
EXPECTED: dict[str, tuple[str | None, str]] = {
    "asynchronous_not_hybrid.yaml": (
        "topologies.orchestration.asynchronous",
        "only a hybrid has asynchronous steps",
    ),
    "broker_on_orchestration.yaml": ("topologies.orchestration.broker", "an orchestration has no broker"),
    "clients_and_rate.yaml": (
        "load.checkout",
        "clients makes a closed loop (arrivals come from the clients): no rate",
    ),
    "duplicate_service.yaml": ("services.payment", "duplicate key (lines 4 and 5)"),
    "empirical_missing_csv.yaml": ("services.payment.latency", "file not found"),
    "empty.yaml": (None, "the file is empty"),
    "empty_steps.yaml": ("workflows.checkout.steps", "must not be empty"),
    "error_probability_too_high.yaml": (
        "services.payment.error_probability",
        "must be less than or equal to 1",
    ),
    "invalid_yaml.yaml": (None, "invalid YAML: line 5, column 10: expected ',' or '}'"),
    "latency_missing_dist.yaml": ("services.payment.latency", "must be a bare number of seconds or"),
    "load_unknown_workflow.yaml": ("load.refund", "no workflow named 'refund' (known: checkout)"),
    "lognormal_mixed.yaml": ("services.payment.latency", "give exactly one of: mean and cv;"),
    "missing_duration.yaml": ("duration", "is required"),
    "negative_latency_mean.yaml": ("services.payment.latency.mean", "must be greater than 0"),
    "negative_rate.yaml": ("load.checkout.rate", "must be greater than 0"),
    "no_services.yaml": ("services", "must not be empty"),
    "not_a_mapping.yaml": (None, "the top level must be a mapping"),
    "rate_and_schedule.yaml": ("load.checkout", "give exactly one of rate, schedule and profile"),
    "topology_without_kind.yaml": ("topologies.central.kind", "is required when the name is not one of"),
    "unknown_dist.yaml": ("services.payment.latency", "unknown dist 'weibull' (known: constant,"),
    "unknown_parallel_service.yaml": (
        "workflows.checkout.steps[1].parallel[1][0]",
        "unknown service 'stock' (known: payment, shipping)",
    ),
    "unknown_service_key.yaml": ("services.payment.replica", "unknown field"),
    "unknown_step_service.yaml": ("workflows.checkout.steps[0]", "unknown service 'paymnet'"),
    "unknown_top_key.yaml": ("durration", "unknown field"),
    "unknown_topology_kind.yaml": (
        "topologies.central.kind",
        "must be 'orchestration', 'choreography' or 'hybrid', not 'saga'",
    ),
    "warmup_too_long.yaml": ("warmup", "must be less than duration (10 s)"),
    "workflow_without_load.yaml": ("load", "no load for workflow 'refund'"),
    "wrong_type_replicas.yaml": ("services.payment.replicas", "must be a whole number, not 'two'"),
    "zero_latency_mean.yaml": ("services.payment.latency.mean", "must be greater than 0"),
}
BAD_FILES = sorted(BAD_DIR.glob("*.yaml"))

SMALL = """\
name: small
seed: 3
duration: 20
warmup: 2
services:
  payment: {replicas: 2, latency: {dist: exponential, mean: 0.05}}
  stock: {latency: 0.01}
  email: {latency: {dist: lognormal, median: 0.01, sigma: 0.5}}
workflows:
  checkout:
    steps: [payment, {parallel: [stock, [email]]}]
load:
  checkout: {rate: 5}
topologies:
  orchestration: {orchestrator: {shard_concurrency: 2, decision_cpu: 0.002}}
  choreography: {broker: {publish_latency: 0.001, capacity: 1000}}
  hybrid: {asynchronous: [email]}
"""

RUN_FILES = [
    "summary.csv",
    "summary.json",
    "components.csv",
    "requests.parquet",
    "timeseries.csv",
    "meta.json",
    "scenario.yaml",
]
TOPOLOGY_KEYS = {
    "topology",
    "arrived",
    "completed",
    "failed",
    "in_flight",
    "throughput",
    "messages_per_workflow",
    "latency",
    "bottleneck",
    "components",
}


def invoke(*args: str | Path) -> Result:
    """Run ``sim`` in-process with stdout and stderr captured apart."""
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()
    return runner.invoke(app, [str(a) for a in args])


def assert_clean(result: Result) -> None:
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    """One complete ``sim run --json`` of the small scenario, with plots, shared by several tests."""
    base = tmp_path_factory.mktemp("full")
    scenario = base / "small.yaml"
    scenario.write_text(SMALL, encoding="utf-8")
    folder = base / "run"
    return invoke("run", scenario, "--out", folder, "--json"), folder


def run_json(*args: str | Path) -> dict[str, Any]:
    result = invoke("run", *args, "--json", "--no-plots")
    assert result.exit_code == 0, result.stderr
    assert_clean(result)
    return json.loads(result.stdout)


# --- bad scenario files -------------------------------------------------------------------------


def test_bad_files_match_the_expectations() -> None:
    assert len(BAD_FILES) >= 14
    assert sorted(p.name for p in BAD_FILES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_file_says_what_is_wrong_in_its_first_line(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# wrong: ")


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_file_gives_exit_2_and_one_clear_line(path: Path, command: str, tmp_path: Path) -> None:
    field, message = EXPECTED[path.name]
    args = [command, path] + (["--out", tmp_path / "run"] if command == "run" else [])
    result = invoke(*args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert_clean(result)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    expected = f"error: {path}: {message}" if field is None else f"error: {path}: {field}: {message}"
    assert lines[0].startswith(expected), lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["validate", "run"])
def test_missing_file_gives_exit_2(command: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = invoke(command, missing)
    assert result.exit_code == 2
    assert_clean(result)
    assert result.stderr.strip() == f"error: {missing}: file not found"


def test_problem_text_is_printed_verbatim(tmp_path: Path) -> None:
    data = yaml.safe_load(SMALL)
    data["workflows"]["checkout"]["steps"] = ["[/red]", "[bold]x"]
    path = tmp_path / "markup.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert_clean(result)
    assert "unknown service '[/red]'" in result.stderr
    assert "unknown service '[bold]x'" in result.stderr


def test_booleans_and_infinite_durations_are_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(SMALL)
    first = next(iter(data["services"]))
    data["services"][first]["replicas"] = True
    path = tmp_path / "bool.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert f"services.{first}.replicas: no field here takes true" in result.stderr
    result = invoke("run", CHECKOUT, "--duration", "inf")
    assert result.exit_code == 2
    assert "--duration: must be a finite number" in result.stderr


@pytest.mark.slow
def test_module_entry_point_exit_codes_in_a_real_process() -> None:
    bad = BAD_DIR / "negative_rate.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "validate", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == f"error: {bad}: load.checkout.rate: must be greater than 0"
    ok = subprocess.run(
        [sys.executable, "-m", "sim", "validate", str(CHECKOUT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout


# --- validate and schema ------------------------------------------------------------------------


def test_validate_accepts_the_checkout_scenario() -> None:
    result = invoke("validate", CHECKOUT)
    assert result.exit_code == 0, result.stderr
    assert_clean(result)
    assert result.stderr == ""
    # rich wraps long lines at 80 columns when stdout is not a terminal
    said = " ".join(result.stdout.split())
    assert said == f"{CHECKOUT}: ok (scenario 'checkout'; topologies: orchestration, choreography, hybrid)"


def test_schema_is_json_with_the_scenario_fields() -> None:
    result = invoke("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["type"] == "object"
    assert {"services", "workflows", "load", "topologies", "duration"} <= set(schema["properties"])


# --- run ----------------------------------------------------------------------------------------


def test_run_writes_the_run_folder(full_run: tuple[Result, Path]) -> None:
    result, folder = full_run
    assert result.exit_code == 0, result.stderr
    for name in RUN_FILES:
        assert (folder / name).is_file(), name
    assert sorted((folder / "plots").glob("*.png"))
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    assert meta["seed"] == 3 and meta["topologies"] == TOPOLOGIES
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8")) == json.loads(result.stdout)
    # The resolved scenario is itself a valid scenario file.
    again = invoke("validate", folder / "scenario.yaml")
    assert again.exit_code == 0, again.stderr


def test_run_json_summary(full_run: tuple[Result, Path]) -> None:
    result, _ = full_run
    assert_clean(result)
    data = json.loads(result.stdout)
    assert {"scenario", "seed", "duration", "warmup", "topologies"} <= set(data)
    assert (data["scenario"], data["seed"], data["duration"], data["warmup"]) == ("small", 3, 20, 2)
    assert [t["topology"] for t in data["topologies"]] == TOPOLOGIES
    for topo in data["topologies"]:
        assert set(topo) >= TOPOLOGY_KEYS, topo["topology"]
        assert topo["arrived"] > 0 and 0 < topo["completed"] <= topo["arrived"]
        assert topo["failed"] == 0 and topo["in_flight"] >= 0
        assert topo["throughput"] > 0 and topo["messages_per_workflow"] > 0
        lat = topo["latency"]
        assert set(lat) == {"mean", "p50", "p95", "p99", "max"}
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert lat["mean"] <= lat["max"]
        names = {c["name"] for c in topo["components"]}
        assert {"payment", "stock", "email"} <= names
        assert topo["bottleneck"] in names


def test_run_prints_a_table_and_the_folder(small: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    result = invoke("run", small, "--out", folder, "--no-plots", "--topology", "hybrid")
    assert result.exit_code == 0, result.stderr
    assert_clean(result)
    assert "latency p99" in result.stdout and "bottleneck" in result.stdout
    assert f"Run folder: {folder}" in result.stdout.replace("\n", "")  # rich wraps at 80 columns
    assert not (folder / "plots").exists()


def test_run_topology_selects_topologies(small: Path, tmp_path: Path) -> None:
    data = run_json(small, "--out", tmp_path / "run", "-t", "hybrid", "--topology", "orchestration")
    assert [t["topology"] for t in data["topologies"]] == ["hybrid", "orchestration"]


def test_run_unknown_topology_gives_exit_2(small: Path, tmp_path: Path) -> None:
    result = invoke("run", small, "--out", tmp_path / "run", "--topology", "saga")
    assert result.exit_code == 2
    assert_clean(result)
    assert result.stderr.strip() == (
        "error: --topology: unknown topology 'saga' (known: orchestration, choreography, hybrid)"
    )
    assert not (tmp_path / "run").exists()


def test_run_seed_and_duration_override_the_file(small: Path, tmp_path: Path) -> None:
    base = run_json(small, "--out", tmp_path / "a", "-t", "choreography", "--duration", "10")
    other = run_json(small, "--out", tmp_path / "b", "-t", "choreography", "--duration", "10", "--seed", "11")
    assert (base["seed"], other["seed"]) == (3, 11)
    assert base["duration"] == other["duration"] == 10
    assert base["topologies"][0]["latency"] != other["topologies"][0]["latency"]


def test_run_duration_not_above_warmup_gives_exit_2(small: Path, tmp_path: Path) -> None:
    result = invoke("run", small, "--out", tmp_path / "run", "--duration", "2")
    assert result.exit_code == 2
    assert_clean(result)
    assert result.stderr.strip() == "error: --duration: must be greater than the warm-up (2 s)"


def test_run_quiet_prints_nothing(small: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    result = invoke("run", small, "--out", folder, "--no-plots", "-t", "orchestration", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""
    assert (folder / "summary.csv").is_file()


def test_run_checkout_scenario_shortened(tmp_path: Path) -> None:
    data = yaml.safe_load(CHECKOUT.read_text(encoding="utf-8"))
    data["warmup"] = 1
    path = tmp_path / "checkout.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    summary = run_json(path, "--out", tmp_path / "run", "--duration", "5")
    assert summary["scenario"] == "checkout" and summary["seed"] == 7
    assert [t["topology"] for t in summary["topologies"]] == TOPOLOGIES
    assert all(t["completed"] > 0 for t in summary["topologies"])


@pytest.fixture
def sweep_file(tmp_path: Path) -> Path:
    from tests.test_experiments import SMALL

    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL), encoding="utf-8")
    return path


# --- sweeps and replications ----------------------------------------------------------------


def test_cli_sweep_and_replications(sweep_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli-sweep"
    res = runner.invoke(
        app,
        ["sweep", str(sweep_file), "--vary", "load.wf.rate=3,6", "--executor", "serial", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert "Sweep folder:" in res.stdout and (out / "sweep_summary.csv").exists()
    again = runner.invoke(
        app,
        ["sweep", str(sweep_file), "--vary", "load.wf.rate=3,6", "--executor", "serial", "--out", str(out)],
    )
    assert "0 run now, 4 already done" in again.stdout
    res = runner.invoke(
        app, ["run", str(sweep_file), "-r", "3", "--executor", "serial", "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 0, res.output
    assert "3 replications" in res.stdout and "latency_p99: orchestration − choreography" in res.stdout


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        ("load.wf.rat=3", "load.wf.rat"),
        ("load.nope.rate=3", "no 'nope' in load (known: wf)"),
        ("services.a.replicas=x:y", "--vary"),
        ("nothing", "--vary"),
    ],
)
def test_cli_sweep_bad_paths_exit_2(sweep_file: Path, vary: str, message: str) -> None:
    res = CliRunner().invoke(app, ["sweep", str(sweep_file), "--vary", vary, "--executor", "serial"])
    assert res.exit_code == 2
    assert message in res.stderr
    assert "Traceback" not in res.output


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small run folder, without plots (the report draws its own)."""
    from tests.test_experiments import SMALL

    folder = tmp_path_factory.mktemp("runs") / "run"
    path = folder.parent / "small.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "duration": 20}), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path), "--no-plots", "--quiet", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


# --- sim report ------------------------------------------------------------------------------


def test_cli_report_writes_and_prints_the_path(run_folder: Path, tmp_path: Path) -> None:
    folder = run_folder
    runner = CliRunner()
    out = tmp_path / "cli-report.html"
    result = runner.invoke(app, ["report", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    result = runner.invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(folder / "report.html")


@pytest.mark.parametrize("what", ["empty", "missing", "file", "broken"])
def test_cli_report_on_a_non_run_folder_exits_2(what: str, run_folder: Path, tmp_path: Path) -> None:
    folder = run_folder
    if what == "empty":
        target = tmp_path / "empty"
        target.mkdir()
    elif what == "missing":
        target = tmp_path / "nothing-here"
    elif what == "file":
        target = tmp_path / "a-file.txt"
        target.write_text("x")
    else:  # every file present, but unreadable
        target = tmp_path / "broken"
        target.mkdir()
        for p in folder.iterdir():
            if p.is_file():
                (target / p.name).write_text("{not: [valid")
    result = CliRunner().invoke(app, ["report", str(target)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output


# --- verdicts ---------------------------------------------------------------------------------


def test_cli_table_shows_a_verdict_row_per_objective(tmp_path) -> None:
    import yaml
    from typer.testing import CliRunner

    from sim.cli.app import app

    data = {
        "duration": 60,
        "services": {"s": {"latency": {"dist": "exponential", "mean": 0.1}}},
        "workflows": {"wf": {"steps": ["s"]}},
        "load": {"wf": {"rate": 5}},
        "topologies": {"orchestration": {}, "choreography": {}},
        "objectives": {"latency_p99": 0.05, "throughput": 1},
    }
    path = tmp_path / "o.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    res = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "run"), "--no-plots"])
    assert res.exit_code == 0, res.output
    assert "latency_p99 ≤ 50 ms" in res.stdout and "missed (" in res.stdout and "met (" in res.stdout
    assert "Objectives (ranked):" in res.stdout


# --- size limits and file references ---------------------------------------------------------

HOSTILE = Path(__file__).resolve().parent / "hostile"


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_a_run_beyond_the_size_limits_is_refused_before_it_starts(command: str, tmp_path: Path) -> None:
    extra = ["--vary", "seed=1,2"] if command == "sweep" else []
    out = tmp_path / "out"
    result = invoke(command, HOSTILE / "window_1e-7.yaml", *extra, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert "window:" in result.stderr and "--force" in result.stderr
    assert not out.exists()


def test_force_accepts_a_large_run_and_validate_says_so() -> None:
    assert invoke("validate", HOSTILE / "window_1e-7.yaml").exit_code == 2
    assert invoke("validate", HOSTILE / "window_1e-7.yaml", "--force").exit_code == 0


def test_a_file_reference_outside_the_scenario_folder_needs_allow_outside(tmp_path: Path) -> None:
    samples = tmp_path / "data" / "payment.csv"
    samples.parent.mkdir()
    samples.write_text("latency\n0.1\n0.2\n", encoding="utf-8")
    folder = tmp_path / "scenarios"
    folder.mkdir()
    data = yaml.safe_load(SMALL)
    first = next(iter(data["services"]))
    data["services"][first]["latency"] = {"dist": "empirical", "file": "../data/payment.csv"}
    path = folder / "outside.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    refused = invoke("run", path, "--no-plots", "--out", str(tmp_path / "r1"))
    assert refused.exit_code == 2 and "--allow-outside" in refused.stderr, refused.output
    allowed = invoke("run", path, "--no-plots", "--allow-outside", "--out", str(tmp_path / "r2"))
    assert allowed.exit_code == 0, allowed.output
