"""Pinned outputs for a fixed scenario and seed (as Ciw pins its own): any change to the model,
the random streams or the statistics that moves these numbers must be deliberate, and the new
values written here with the reason in the commit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import sim
from sim.cli.app import app

CHECKOUT = Path(__file__).parent.parent / "scenarios" / "checkout.yaml"

CHECKOUT_GOLDEN = {
    "orchestration": {"arrived": 2427, "latency_mean": 0.43148052816292315, "latency_p99": 1.452475430882871},
    "choreography": {"arrived": 2427, "latency_mean": 0.37706450657139956, "latency_p99": 0.9368433281247522},
    "hybrid": {"arrived": 2427, "latency_mean": 0.33995808314406223, "latency_p99": 1.2231709210172483},
}
LATENCY_SUMS = {
    "orchestration": 2073.5993474099755,
    "choreography": 1828.261582541203,
    "hybrid": 1614.1508473002,
}


def test_checkout_for_120_seconds_gives_the_pinned_numbers() -> None:
    result = sim.run(CHECKOUT, duration=120)
    summary = result.summary.set_index("topology")
    for topology, expected in CHECKOUT_GOLDEN.items():
        assert summary.loc[topology, "arrived"] == expected["arrived"]
        assert summary.loc[topology, "completed"] == expected["arrived"]
        assert summary.loc[topology, "latency_mean"] == pytest.approx(expected["latency_mean"], rel=1e-12)
        assert summary.loc[topology, "latency_p99"] == pytest.approx(expected["latency_p99"], rel=1e-12)
    sums = result.requests.groupby("topology")["latency"].sum()
    for topology, expected in LATENCY_SUMS.items():
        assert sums[topology] == pytest.approx(expected, rel=1e-12)


# --- pinned command-line outputs ---------------------------------------------------------------

GOLDEN = Path(__file__).parent / "golden"
"""Pinned files: ``small.yaml`` and its ``sim run --json`` output and CLI table."""
UPDATE = os.environ.get("SIM_UPDATE_GOLDEN") == "1"


def _pinned(name: str, text: str) -> str:
    """The pinned text of ``name`` (rewritten first when SIM_UPDATE_GOLDEN=1)."""
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    return path.read_text(encoding="utf-8")


def test_sim_run_json_is_pinned(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", str(GOLDEN / "small.yaml"), "--json", "--no-plots", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    expected = json.loads(_pinned("small.json", json.dumps(got, indent=2) + "\n"))
    assert got == expected


def test_sim_run_table_is_pinned(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", str(GOLDEN / "small.yaml"), "--no-plots", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == f"Run folder: {tmp_path / 'run'}"
    table = "\n".join(lines[:-1]) + "\n"
    assert table == _pinned("small_table.txt", table)
