"""Where results go: a user's files are never deleted or moved, nothing is written outside the
chosen folder, interrupted work leaves no debris, and bad options end with exit code 2."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

import sim
from sim.api.folders import MARKER, TEMP_TAG, clean_stale, install, safe_component
from sim.cli.app import app

SMALL: dict[str, Any] = {
    "name": "safety",
    "seed": 2,
    "duration": 10,
    "services": {"s": {"latency": {"dist": "exponential", "mean": 0.05}}},
    "workflows": {"wf": {"steps": ["s"]}},
    "load": {"wf": {"rate": 5}},
    "topologies": {"orchestration": {}, "choreography": {}},
}


def _file(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SMALL, **changes}, sort_keys=False), encoding="utf-8")
    return path


def _cli(*args: str, cwd: Path | None = None) -> Result:
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        os.chdir(old)


def _refused(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr, result.stderr


# --- run folders --------------------------------------------------------------------------------


def test_out_onto_a_users_folder_is_refused_and_its_files_stay(tmp_path: Path) -> None:
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious", encoding="utf-8")
    _refused(
        _cli("run", str(_file(tmp_path)), "--no-plots", "--out", str(mine)), "--out", "not a folder written"
    )
    assert [p.name for p in mine.iterdir()] == ["thesis.txt"]
    assert (mine / "thesis.txt").read_text(encoding="utf-8") == "precious"
    _refused(
        _cli("run", str(_file(tmp_path)), "--no-plots", "--overwrite", "--out", str(mine)),
        "not a folder written",
    )
    assert [p.name for p in mine.iterdir()] == ["thesis.txt"]


def test_out_onto_a_file_or_below_one_is_refused_and_the_file_stays(tmp_path: Path) -> None:
    target = tmp_path / "data.csv"
    target.write_text("a,b\n1,2\n", encoding="utf-8")
    _refused(_cli("run", str(_file(tmp_path)), "--no-plots", "--out", str(target)), "is a file")
    _refused(_cli("run", str(_file(tmp_path)), "--no-plots", "--out", str(target / "run")), "is a file")
    assert target.read_text(encoding="utf-8") == "a,b\n1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "s.yaml"], "nothing moved aside"


def test_out_where_nothing_can_be_written_is_refused(tmp_path: Path) -> None:
    _refused(_cli("run", str(_file(tmp_path)), "--no-plots", "--out", "/proc/sim-run-here"), "--out")


def test_an_earlier_run_is_replaced_only_with_overwrite_and_never_with_a_users_file(tmp_path: Path) -> None:
    path, out = _file(tmp_path), tmp_path / "run"
    assert _cli("run", str(path), "--no-plots", "--out", str(out)).exit_code == 0
    assert (out / MARKER).exists()
    _refused(_cli("run", str(path), "--no-plots", "--out", str(out)), "--overwrite")
    first = (out / "meta.json").read_text(encoding="utf-8")
    result = _cli("run", str(path), "--no-plots", "--overwrite", "--seed", "9", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "meta.json").read_text(encoding="utf-8") != first
    (out / "my-notes.md").write_text("keep me", encoding="utf-8")
    _refused(_cli("run", str(path), "--no-plots", "--overwrite", "--out", str(out)), "my-notes.md")
    assert (out / "my-notes.md").read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "s.yaml"], "no temporaries left"


def test_a_report_is_written_into_our_run_folder_but_never_over_a_users_file(tmp_path: Path) -> None:
    path, out = _file(tmp_path), tmp_path / "run"
    assert _cli("run", str(path), "--no-plots", "--out", str(out)).exit_code == 0
    assert _cli("report", str(out)).exit_code == 0
    assert "report.html" in json.loads((out / MARKER).read_text(encoding="utf-8"))["files"]
    assert _cli("run", str(path), "--no-plots", "--overwrite", "--out", str(out)).exit_code == 0, (
        "the report is ours: replacing the run folder is allowed"
    )
    page = tmp_path / "page.html"
    page.write_text("<html>mine</html>", encoding="utf-8")
    _refused(_cli("report", str(out), "--out", str(page)), "not a report of ours")
    assert page.read_text(encoding="utf-8") == "<html>mine</html>"


@pytest.mark.parametrize("name", ["/etc/passwd-like", "..", "../../escape", "a/b", ".hidden", "[red]x[/red]"])
def test_a_scenario_name_never_writes_outside_results(tmp_path: Path, name: str) -> None:
    path = _file(tmp_path, name=name)
    result = _cli("run", str(path), "--no-plots", "--quiet", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "s.yaml"]
    assert written and all(p.resolve().is_relative_to((tmp_path / "results").resolve()) for p in written)
    folders = list((tmp_path / "results").iterdir())
    assert len(folders) == 1 and folders[0].name == safe_component(name)


def test_a_sweep_with_a_hostile_name_stays_inside_results(tmp_path: Path) -> None:
    path = _file(tmp_path, name="/tmp/elsewhere")
    result = _cli(
        "sweep", str(path), "--vary", "load.wf.rate=2,3", "--executor", "serial", "--no-plots", cwd=tmp_path
    )
    assert result.exit_code == 0, result.output
    assert all(p.resolve().is_relative_to((tmp_path / "results").resolve()) for p in tmp_path.rglob("*.csv"))


# --- interrupted work ---------------------------------------------------------------------------


def test_temporaries_of_a_killed_process_are_cleaned_on_the_next_write(tmp_path: Path) -> None:
    dead = 2**22 + 12345  # above the default pid_max: no such process
    stale = tmp_path / f".run{TEMP_TAG}{dead}-0"
    stale.mkdir()
    (stale / "summary.csv").write_text("half", encoding="utf-8")
    assert _cli("run", str(_file(tmp_path)), "--no-plots", "--out", str(tmp_path / "run")).exit_code == 0
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "s.yaml"]


def test_a_replacement_interrupted_between_renames_gets_its_old_folder_back(tmp_path: Path) -> None:
    dead = 2**22 + 54321
    old = tmp_path / f".run{TEMP_TAG}{dead}-old"
    old.mkdir()
    (old / "meta.json").write_text("{}", encoding="utf-8")
    clean_stale(tmp_path)
    assert (tmp_path / "run" / "meta.json").exists() and not old.exists()


def test_install_swaps_folders_in_one_step(tmp_path: Path) -> None:
    final, new = tmp_path / "run", tmp_path / "new"
    final.mkdir()
    (final / "a").write_text("old", encoding="utf-8")
    new.mkdir()
    (new / "a").write_text("new", encoding="utf-8")
    install(new, final)
    assert (final / "a").read_text(encoding="utf-8") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_truncated_sweep_result_is_run_again_and_said(tmp_path: Path) -> None:
    path, out = _file(tmp_path), tmp_path / "sweep"
    args = [
        "sweep",
        str(path),
        "--vary",
        "load.wf.rate=2,3",
        "--executor",
        "serial",
        "--no-plots",
        "--out",
        str(out),
    ]
    assert _cli(*args).exit_code == 0
    point = next((out / "points").glob("*.json"))
    point.write_text(point.read_text(encoding="utf-8")[:40], encoding="utf-8")
    result = _cli(*args)
    assert result.exit_code == 0, result.output
    assert "1 unreadable result file(s) of an earlier attempt were run again" in result.stdout
    assert "2 run now" in result.stdout
    assert json.loads(point.read_text(encoding="utf-8"))["point"] in (0, 1)


def test_a_sweep_never_writes_into_a_users_folder(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "x.txt").write_text("x", encoding="utf-8")
    args = [
        "sweep",
        str(_file(tmp_path)),
        "--vary",
        "load.wf.rate=2",
        "--executor",
        "serial",
        "--out",
        str(mine),
    ]
    _refused(_cli(*args), "not a folder written")
    assert [p.name for p in mine.iterdir()] == ["x.txt"]


# --- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--executor", "bogus"], "unknown executor 'bogus'"),
        (["--workers", "-1"], "--workers"),
        (["--workers", "0"], "--workers"),
        (["--trace", "-2"], "--trace"),
    ],
)
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_bad_options_exit_2_and_write_nothing(
    tmp_path: Path, command: str, option: list[str], message: str
) -> None:
    if command == "sweep" and option[0] == "--trace":
        pytest.skip("sweeps do not trace")
    extra = ["--vary", "load.wf.rate=2"] if command == "sweep" else []
    out = tmp_path / "out"
    _refused(_cli(command, str(_file(tmp_path)), *extra, *option, "--out", str(out)), message)
    assert not out.exists()


def test_markup_in_names_is_printed_as_text(tmp_path: Path) -> None:
    topologies = {
        "[/y]": {"kind": "orchestration"},
        "[link=https://x.example]orchestration[/link]": {"kind": "choreography"},
    }
    path = _file(tmp_path, topologies=topologies, name="[bold]x[/bold]")
    result = _cli("run", str(path), "--no-plots", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "[/y]" in result.stdout
    assert "[link=https://x.example]orchestration[/link]" in result.stdout


def test_no_bottleneck_when_nothing_takes_time(tmp_path: Path) -> None:
    data = {**SMALL, "services": {"s": {"latency": 0}}}
    result = sim.run(sim.scenario_from_dict(data))
    assert result.summary["bottleneck"].isna().all()
    out = _cli(
        "run",
        str(_file(tmp_path, services={"s": {"latency": 0}})),
        "--no-plots",
        "--out",
        str(tmp_path / "r"),
    )
    row = next(
        line for line in out.stdout.splitlines() if "bottleneck " in line and "utilization" not in line
    )
    assert "none" in row
