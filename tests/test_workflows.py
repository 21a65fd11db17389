"""Per-workflow results: the summary's figures of each workflow's instances alone, in the run
result, the run folder, the JSON, the CLI and the report, and objectives on one workflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner, Result

import sim
from sim.analysis.metrics import EFFECT_KINDS, FIGURES, OUTCOMES
from sim.cli.app import app

TWO: dict[str, Any] = {
    "name": "two-workflows",
    "seed": 4,
    "duration": 40,
    "warmup": 4,
    "services": {
        "pay": {"latency": {"dist": "exponential", "mean": 0.05}, "error_probability": 0.1},
        "log": {"latency": {"dist": "exponential", "mean": 0.02}},
    },
    "workflows": {"checkout": {"steps": ["pay", "log"]}, "analytics": {"steps": ["log"]}},
    "load": {"checkout": {"rate": 6}, "analytics": {"rate": 12}},
    "topologies": {
        "orchestration": {"orchestrator": {"shard_concurrency": 2, "decision_cpu": 0.004}},
        "choreography": {},
    },
}
"""Two workflows sharing a service, with errors so that some instances fail."""

ADDED = ["arrived", *OUTCOMES, "throughput", *EFFECT_KINDS, "orphan_effects"]
"""Figures that add up over the workflows of a topology to the topology's."""


def with_objectives(objectives: dict[str, Any], data: dict[str, Any] = TWO) -> dict[str, Any]:
    return {**data, "objectives": objectives}


def invoke(*args: str | Path) -> Result:
    """Run ``sim`` in-process with stdout and stderr captured apart."""
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()
    return runner.invoke(app, [str(a) for a in args])


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def result() -> sim.RunResult:
    return sim.run(sim.scenario_from_dict(TWO), replications=2, executor="serial")


def in_window(result: sim.RunResult, requests: pd.DataFrame) -> pd.DataFrame:
    lo, hi = float(result.scenario.warmup), result.scenario.duration
    return requests[(requests["arrival"] >= lo) & (requests["arrival"] < hi)]


# --- the frame ----------------------------------------------------------------------------------


def test_one_row_per_topology_replication_and_workflow(result: sim.RunResult) -> None:
    frame = result.workflows
    assert list(frame.columns[:3]) == ["topology", "replication", "workflow"]
    assert set(FIGURES) <= set(frame.columns)
    assert len(frame) == len(result.summary) * len(TWO["workflows"])
    keys = frame[["topology", "replication", "workflow"]].drop_duplicates()
    assert len(keys) == len(frame)
    assert list(dict.fromkeys(frame["workflow"])) == list(TWO["workflows"])


def test_workflow_rows_add_up_to_the_topology_row(result: sim.RunResult) -> None:
    sums = result.workflows.groupby(["topology", "replication"])[ADDED].sum()
    summary = result.summary.set_index(["topology", "replication"])
    assert (summary["failed"] > 0).any()  # the check below is not about zeros only
    for key, row in sums.iterrows():
        for figure in ADDED:
            assert row[figure] == pytest.approx(summary.loc[key, figure], rel=1e-12), (key, figure)


def test_a_workflow_row_is_computed_from_that_workflows_requests(result: sim.RunResult) -> None:
    span = result.scenario.duration - float(result.scenario.warmup)
    lo, hi = float(result.scenario.warmup), result.scenario.duration
    for row in result.workflows.to_dict("records"):
        mine = result.requests[
            (result.requests["topology"] == row["topology"])
            & (result.requests["replication"] == row["replication"])
            & (result.requests["workflow"] == row["workflow"])
        ]
        cohort = in_window(result, mine)
        done = cohort[cohort["status"] == "completed"]
        assert row["arrived"] == len(cohort)
        assert row["completed"] == len(done)
        assert row["failed"] == int((cohort["status"] == "failed").sum())
        assert row["success_rate"] == pytest.approx(len(done) / len(cohort))
        assert row["latency_p99"] == pytest.approx(float(np.quantile(done["latency"], 0.99)), rel=1e-12)
        assert row["latency_mean"] == pytest.approx(float(done["latency"].mean()), rel=1e-12)
        completed = mine[(mine["status"] == "completed")]
        finished_in = ((completed["completion"] >= lo) & (completed["completion"] < hi)).sum()
        assert row["throughput"] == pytest.approx(finished_in / span, rel=1e-12)
        assert row["duplicate_effects"] == int(cohort["duplicate_effects"].sum())


def test_with_one_workflow_its_row_is_the_summary_row() -> None:
    data = {**TWO, "workflows": {"checkout": TWO["workflows"]["checkout"]}, "load": {"checkout": {"rate": 6}}}
    one = sim.run(sim.scenario_from_dict(data))
    left = one.workflows.drop(columns="workflow").set_index(["topology", "replication"])[FIGURES]
    right = one.summary.set_index(["topology", "replication"])[FIGURES]
    pd.testing.assert_frame_equal(left, right, check_dtype=False)


def test_workflow_intervals_over_replications(result: sim.RunResult) -> None:
    iv = result.workflow_intervals.set_index(["topology", "workflow"])
    for (topology, workflow), rows in result.workflows.groupby(["topology", "workflow"]):
        assert iv.loc[(topology, workflow), "latency_p99"] == pytest.approx(rows["latency_p99"].mean())
        assert iv.loc[(topology, workflow), "n"] == 2


# --- run folder, JSON, CLI and report -----------------------------------------------------------


def test_run_folder_holds_workflows_csv_and_reads_it_back(result: sim.RunResult, tmp_path: Path) -> None:
    folder = result.save(tmp_path / "run", plots=False)
    written = pd.read_csv(folder / "workflows.csv")
    assert len(written) == len(result.workflows)
    back = sim.read_run(folder)
    pd.testing.assert_frame_equal(back.workflows, result.workflows, check_dtype=False)


def test_json_has_a_workflows_block(result: sim.RunResult) -> None:
    data = result.to_dict()
    entries = data["workflows"]
    assert [(e["topology"], e["workflow"]) for e in entries] == [
        (t, w) for t in result.topologies for w in TWO["workflows"]
    ]
    for entry in entries:
        rows = result.workflows[
            (result.workflows["topology"] == entry["topology"])
            & (result.workflows["workflow"] == entry["workflow"])
        ]
        assert entry["completed"] == pytest.approx(rows["completed"].mean())
        assert entry["latency"]["p99"] == pytest.approx(rows["latency_p99"].mean())
        assert entry["effects"]["duplicate_effects"] == pytest.approx(rows["duplicate_effects"].mean())
        assert entry["intervals"]["latency_p99"]["mean"] == pytest.approx(rows["latency_p99"].mean())
    assert {"topologies", "scenario", "seed"} <= set(data)  # the existing keys stay


def test_cli_writes_workflows_csv_prints_json_and_a_per_workflow_table(tmp_path: Path) -> None:
    path = write(tmp_path / "two.yaml", TWO)
    res = invoke("run", path, "--json", "--no-plots", "--out", tmp_path / "run")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "run" / "workflows.csv").is_file()
    data = json.loads(res.stdout)
    assert {e["workflow"] for e in data["workflows"]} == set(TWO["workflows"])
    assert len(data["workflows"]) == len(TWO["topologies"]) * len(TWO["workflows"])

    table = invoke("run", path, "--no-plots", "--out", tmp_path / "run2")
    assert table.exit_code == 0, table.stderr
    per_workflow = table.stdout[table.stdout.index("per workflow") :]
    assert "checkout" in per_workflow and "analytics" in per_workflow
    assert "success rate" in per_workflow and "latency p99" in per_workflow


def test_cli_prints_no_per_workflow_table_for_one_workflow(tmp_path: Path) -> None:
    data = {**TWO, "workflows": {"checkout": TWO["workflows"]["checkout"]}, "load": {"checkout": {"rate": 6}}}
    res = invoke("run", write(tmp_path / "one.yaml", data), "--no-plots", "--out", tmp_path / "run")
    assert res.exit_code == 0, res.stderr
    assert "per workflow" not in res.stdout
    assert (tmp_path / "run" / "workflows.csv").is_file()


def test_report_has_a_per_workflow_section(result: sim.RunResult, tmp_path: Path) -> None:
    folder = result.save(tmp_path / "run", plots=False)
    html = sim.write_report(folder, images="png").read_text(encoding="utf-8")
    section = html[html.index('<section id="workflows">') :]
    section = section[: section.index("</section>")]
    assert "checkout" in section and "analytics" in section and "latency p99" in section
    assert '<a href="#workflows">' in html


# --- objectives on one workflow -----------------------------------------------------------------


def test_a_workflow_objective_is_judged_on_that_workflows_row(tmp_path: Path) -> None:
    objectives = {"latency_p99": 5.0, "workflows": {"checkout": {"latency_p99": 1e-6, "success_rate": 0.01}}}
    run = sim.run(sim.scenario_from_dict(with_objectives(objectives)))
    v = run.verdicts.set_index(["topology", "objective"])
    rows = run.workflows[run.workflows["workflow"] == "checkout"].set_index("topology")
    for topology in run.topologies:
        missed = v.loc[(topology, "checkout latency_p99")]
        assert pd.notna(missed["met"]) and not missed["met"]
        assert missed["workflow"] == "checkout"
        assert missed["measured"] == pytest.approx(rows.loc[topology, "latency_p99"])
        assert bool(v.loc[(topology, "checkout success_rate"), "met"])
        assert bool(v.loc[(topology, "latency_p99"), "met"])
    assert all("misses checkout latency_p99 by" in line for line in run.recommendation())
    records = run.to_dict()["verdicts"]
    assert {r.get("workflow") for r in records} == {None, "checkout"}
    assert all("workflow" not in r for r in records if r["objective"] == "latency_p99")


def test_cli_reports_workflow_verdicts(tmp_path: Path) -> None:
    objectives = {"workflows": {"checkout": {"latency_p99": 1e-6, "success_rate": 0.01}}}
    path = write(tmp_path / "o.yaml", with_objectives(objectives))
    res = invoke("run", path, "--no-plots", "--out", tmp_path / "run")
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    p99 = next(line for line in lines if "checkout latency_p99 ≤" in line)
    rate = next(line for line in lines if "checkout success_rate ≥" in line)
    assert "missed (" in p99 and "met (" not in p99
    assert "met (" in rate and "missed (" not in rate
    meta = json.loads((tmp_path / "run" / "meta.json").read_text(encoding="utf-8"))
    assert {v["objective"] for v in meta["verdicts"]} == {"checkout latency_p99", "checkout success_rate"}


def test_an_unknown_workflow_in_objectives_is_refused(tmp_path: Path) -> None:
    data = with_objectives({"workflows": {"refund": {"latency_p99": 1.0}}})
    with pytest.raises(sim.ScenarioError, match=r"objectives\.workflows\.refund: no workflow named 'refund'"):
        sim.scenario_from_dict(data)
    path = write(tmp_path / "bad.yaml", data)
    for command in ("validate", "run"):
        res = invoke(command, path, *(["--out", tmp_path / "run"] if command == "run" else []))
        assert res.exit_code == 2
        lines = res.stderr.splitlines()
        assert len(lines) == 1, res.stderr
        assert lines[0].startswith(f"error: {path}: objectives.workflows.refund: no workflow named 'refund'")
    assert not (tmp_path / "run").exists()


def test_blast_radius_objectives_are_not_per_workflow() -> None:
    data = with_objectives({"workflows": {"checkout": {"recovery_time": 10}}})
    with pytest.raises(sim.ScenarioError, match=r"objectives\.workflows\.checkout\.recovery_time"):
        sim.scenario_from_dict(data)
