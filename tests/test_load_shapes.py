"""Load shapes: a diurnal profile and replayed traces. Expectations come from the shapes' own
arithmetic (the rate's integral, the trace's counts), never from the code's numbers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sim
from sim.model.workload import arrival_times
from sim.scenario.limits import expected_arrivals

DAY = 86400.0


def _scenario(load: dict[str, Any], duration: float = 2 * DAY, **extra: Any) -> dict[str, Any]:
    return {
        "name": "load",
        "duration": duration,
        "services": {"a": {"latency": 0.001, "replicas": 100}},
        "workflows": {"w": {"steps": ["a"]}},
        "load": {"w": load},
        "topologies": {"orchestration": {}, "choreography": {"broker": {"kind": "queue"}}},
        **extra,
    }


def _arrivals(data: dict[str, Any], seed: int = 1) -> np.ndarray:
    sc = sim.scenario_from_dict(data)
    return arrival_times(sc.load["w"], sc.duration, np.random.default_rng(seed))


def test_a_diurnal_profile_integrates_to_its_mean_rate_over_whole_cycles() -> None:
    """Over two whole days the sinusoid's mean rate is (peak + trough) / 2: evenly spaced
    arrivals hit it exactly, Poisson ones within their standard deviation."""
    profile = {"profile": "diurnal", "peak": 2.0, "trough": 0.5}
    expected = 1.25 * 2 * DAY
    even = _arrivals(_scenario({**profile, "arrival": "deterministic"}))
    assert abs(even.size - expected) <= 1
    poisson = _arrivals(_scenario(profile))
    assert abs(poisson.size - expected) < 4 * math.sqrt(expected)
    assert expected_arrivals(sim.scenario_from_dict(_scenario(profile))) == pytest.approx(expected)


def test_a_diurnal_profile_peaks_where_it_says() -> None:
    """Arrivals per hour follow the rate's integral hour by hour: low at midnight, high at the
    peak (noon by default, or peak_at)."""
    profile = {"profile": "diurnal", "peak": 3.0, "trough": 0.2, "peak_at": 18 * 3600}
    data = _scenario(profile, duration=DAY)
    times = _arrivals(data)
    load = sim.scenario_from_dict(data).load["w"]
    edges = np.arange(25) * 3600.0
    expected = np.diff(load.diurnal_integral(edges))
    observed = np.histogram(times, bins=edges)[0]
    assert np.all(np.abs(observed - expected) < 4 * np.sqrt(expected) + 1)
    assert np.argmax(observed) in (17, 18)
    assert load.diurnal_rate(np.asarray(18 * 3600.0)) == pytest.approx(3.0)


def test_a_trace_of_instants_is_replayed_in_every_topology(tmp_path: Path) -> None:
    times = [0.5, 1.25, 1.5, 7.0, 9.99, 12.0]
    (tmp_path / "arrivals.csv").write_text("t\n" + "\n".join(str(t) for t in reversed(times)) + "\n")
    data = _scenario({"arrival": "trace", "file": "arrivals.csv"}, duration=10.0)
    sc = sim.scenario_from_dict(data, base_dir=tmp_path)
    assert sc.load["w"].times is not None and sc.load["w"].file is None  # it stands on its own
    req = sim.run(sc).requests
    for _, frame in req.groupby("topology"):
        assert frame["arrival"].tolist() == [t for t in times if t < 10.0]


def test_counts_per_second_are_spread_within_their_second(tmp_path: Path) -> None:
    counts = [3, 0, 5, 1, 2]
    (tmp_path / "counts.csv").write_text("second,n\n" + "\n".join(f"{i},{c}" for i, c in enumerate(counts)))
    data = _scenario({"arrival": "trace", "file": "counts.csv", "column": "n", "per_second": True}, 5.0)
    sc = sim.scenario_from_dict(data, base_dir=tmp_path)
    times = arrival_times(sc.load["w"], sc.duration, np.random.default_rng(3))
    assert np.histogram(times, bins=np.arange(6))[0].tolist() == counts
    assert expected_arrivals(sc) == sum(counts)


@pytest.mark.parametrize(
    ("load", "message"),
    [
        ({"arrival": "trace", "rate": 1, "times": [1.0]}, "no rate, schedule or profile"),
        ({"arrival": "trace"}, "exactly one of times, counts and file"),
        ({"profile": "diurnal", "peak": 1}, "needs peak and trough"),
        ({"profile": "diurnal", "peak": 1, "trough": 2}, "trough must not exceed peak"),
        ({"rate": 1, "peak": 2}, "are for profile: diurnal"),
        ({"rate": 1, "times": [1.0]}, "are for arrival: trace"),
        (
            {"rate": 1, "profile": "diurnal", "peak": 2, "trough": 1},
            "exactly one of rate, schedule and profile",
        ),
    ],
)
def test_load_shapes_are_checked(load: dict[str, Any], message: str) -> None:
    with pytest.raises(sim.ScenarioError, match=message):
        sim.scenario_from_dict(_scenario(load))


def test_a_trace_file_must_stay_in_the_scenario_folder(tmp_path: Path) -> None:
    (tmp_path / "inner").mkdir()
    (tmp_path / "arrivals.csv").write_text("1\n2\n")
    data = _scenario({"arrival": "trace", "file": "../arrivals.csv"}, duration=10.0)
    with pytest.raises(sim.ScenarioError, match="file"):
        sim.scenario_from_dict(data, base_dir=tmp_path / "inner")
