"""Every shipped scenario is valid, documented, and runs (briefly) with conservation intact."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim

SCENARIOS = sorted(
    p for p in (Path(__file__).parent.parent / "scenarios").glob("*.yaml") if p.name != "prices.yaml"
)
"""The shipped scenarios (prices.yaml is the price lists they may include)."""


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenario_validates_and_says_what_it_answers(path: Path) -> None:
    scenario = sim.load_scenario(path)
    head = path.read_text(encoding="utf-8").splitlines()[:12]
    assert any("Question" in line for line in head), f"{path.name} must say what question it answers"
    assert scenario.topologies


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenario_runs(path: Path) -> None:
    scenario = sim.load_scenario(path)
    duration = min(scenario.duration, max(scenario.warmup + 20, 40))
    result = sim.run(scenario, duration=duration)
    s = result.summary
    outcomes = ["completed", "failed", "compensated", "inconsistent", "lost", "in_flight"]
    assert (s["arrived"] == s[outcomes].sum(axis=1)).all()
    assert (s["arrived"] > 0).all()


def test_checkout_matches_the_documented_shape() -> None:
    """The checkout scenario compares all three styles on the article's five-step checkout."""
    scenario = sim.load_scenario(Path(__file__).parent.parent / "scenarios" / "checkout.yaml")
    assert [scenario.topology_kind(t) for t in scenario.topologies] == [
        "orchestration",
        "choreography",
        "hybrid",
    ]
    assert set(scenario.services) == {"payment", "warehouse", "inventory", "shipping", "email"}
