"""Closed-loop clients: interactive users who think, submit, wait, and lose patience.

Expectations come from queueing theory and from the clients' own arithmetic, never from the
code's numbers: the interactive response-time law X = N / (R + Z) on the sample path (with a
bound derived from the run's own boundary effects), the machine-repairman model M/M/1//N for
its exact throughput (within a batch-means interval of the run), and counts of submissions,
abandonments and retries worked out by hand from constant times.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from sim import scenario_from_dict
from sim.cli.app import app
from sim.model.effects import APPLIED
from sim.running.simulate import Task, simulate
from sim.scenario.errors import ScenarioError
from sim.scenario.limits import expected_arrivals
from sim.scenario.models import Scenario
from tests.helpers import QUEUE, batch_means, run_topology

TOPOLOGIES = ["orchestration", "choreography", "hybrid"]


def exp(mean: float) -> dict[str, Any]:
    return {"dist": "exponential", "mean": mean}


def closed(
    services: dict[str, Any],
    steps: list[Any],
    load: dict[str, Any],
    duration: float,
    warmup: float = 0.0,
    **extra: Any,
) -> Scenario:
    """A one-workflow scenario with closed-loop ``load`` and zero coordination costs."""
    data = {
        "name": "clients",
        "seed": 1,
        "duration": duration,
        "warmup": warmup,
        "services": copy.deepcopy(services),
        "workflows": {"wf": {"steps": steps}},
        "load": {"wf": load},
        "topologies": {"orchestration": {}, "choreography": QUEUE, "hybrid": {}},
        **extra,
    }
    return scenario_from_dict(data)


# --- the laws of closed networks -----------------------------------------------------------------


@pytest.mark.parametrize("topology", ["orchestration", "choreography"])
def test_interactive_response_time_law_holds_on_the_sample_path(topology: str) -> None:
    """X = N / (R + Z). With a constant think time Z, each client's life is a sequence of cycles
    (think Z, then wait R_i) that tile time, so the cycles of the C instances submitted in the
    window [lo, hi) of length T cover T up to one cycle at each end: |C (Z + R) − N T| <
    N (Z + R_max), R the mean response time of those instances, R_max the longest of all.
    Hence |X (R + Z) − N| < N (Z + R_max) / T with X = C / T: a bound, not a guess."""
    n, z = 8, 2.0
    sc = closed(
        {"a": {"latency": exp(0.1)}, "b": {"replicas": 2, "latency": exp(0.3)}},
        ["a", "b"],
        {"clients": n, "think_time": z},
        duration=2000,
        warmup=100,
        drain=1000,
    )
    run = run_topology(sc, topology)
    req = run.requests
    assert (req["status"] == "completed").all()
    lo, hi = sc.warmup_seconds, sc.duration
    cohort = req[(req["arrival"] >= lo) & (req["arrival"] < hi)]
    x = len(cohort) / (hi - lo)
    r = float(cohort["latency"].mean())
    bound = n * (z + float(req["latency"].max())) / (hi - lo)
    assert abs(x * (r + z) - n) < bound, f"X (R + Z) = {x * (r + z):.4f} vs N = {n} ± {bound:.4f}"
    assert bound < 0.05 * n, "the run is long enough for the law to say something"
    assert run.counters["client_submissions"] == len(req)


def machine_repairman(n: int, s: float, z: float) -> float:
    """Exact throughput of M/M/1//N (N clients, exponential think time of mean Z, one exponential
    server of mean S): X = (1 − p0) / S, p0 = [Σ_{k=0..N} N!/(N−k)! (S/Z)^k]^-1."""
    total = sum(math.factorial(n) / math.factorial(n - k) * (s / z) ** k for k in range(n + 1))
    return (1 - 1 / total) / s


@pytest.mark.parametrize("topology", ["orchestration", "choreography"])
def test_machine_repairman_throughput_and_response_time(topology: str) -> None:
    """One exponential server, N clients with exponential think time: the simulated throughput
    is within a 99.9 % batch-means interval of the exact M/M/1//N value, and so is the mean
    response time of its consequence R = N / X − Z."""
    n, s, z = 5, 1.0, 4.0
    sc = closed(
        {"s": {"latency": exp(s)}},
        ["s"],
        {"clients": n, "think_time": exp(z)},
        duration=20000,
        warmup=200,
    )
    run = run_topology(sc, topology)
    expected = machine_repairman(n, s, z)
    lo, hi, batches = sc.warmup_seconds, sc.duration, 20
    done = run.requests[run.requests["status"] == "completed"]["completion"].to_numpy()
    edges = np.linspace(lo, hi, batches + 1)
    rates = np.histogram(done, bins=edges)[0] / np.diff(edges)
    half = stats.t.ppf(0.9995, batches - 1) * rates.std(ddof=1) / math.sqrt(batches)
    assert abs(rates.mean() - expected) < half, f"X {rates.mean():.4f} vs {expected:.4f} ± {half:.4f}"
    mean, r_half = batch_means(run.requests, lo, hi)
    r_exact = n / expected - z
    assert abs(mean - r_exact) < r_half, f"R {mean:.4f} vs {r_exact:.4f} ± {r_half:.4f}"


def test_fewer_clients_offer_less_load_than_more() -> None:
    """The point of a closed loop: the offered load answers the response time. Doubling the
    clients of a saturated server cannot double the throughput (it is at most 1 / S)."""
    base = {"s": {"latency": exp(0.5)}}
    few = run_topology(closed(base, ["s"], {"clients": 4, "think_time": exp(2.0)}, 3000), "orchestration")
    many = run_topology(closed(base, ["s"], {"clients": 8, "think_time": exp(2.0)}, 3000), "orchestration")
    x_few, x_many = len(few.requests) / 3000, len(many.requests) / 3000
    assert x_few < x_many < 2.0  # the server serves at most 2 per second
    assert x_many < 1.5 * x_few


# --- patience and retries ------------------------------------------------------------------------

SLOW = {"slow": {"latency": 2.0}}
"""One server that takes 2 s: longer than the clients' patience of 1 s."""


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize(
    ("retry", "attempts"),
    [({"max_attempts": 3, "initial": 0.1, "jitter": "none"}, 3), (None, 2), ({"max_attempts": 1}, 1)],
)
def test_impatient_clients_abandon_every_submission_and_retry_as_allowed(
    topology: str, retry: dict[str, Any] | None, attempts: int
) -> None:
    """Four clients think 10 s, submit at 10, give up at 11 (the server takes 2 s), retry after
    the backoff as often as the policy allows (the default: once), then think 10 s again, past
    the end of the arrivals at 15 s. Every submission is abandoned, every abandoned instance
    goes on and completes (abandonment cancels nothing)."""
    clients = 4
    load: dict[str, Any] = {"clients": clients, "think_time": 10, "patience": 1.0}
    if retry is not None:
        load["retry"] = retry
    run = run_topology(closed(SLOW, ["slow"], load, duration=15, drain=200), topology)
    submitted = clients * attempts
    assert run.counters["client_submissions"] == submitted
    assert run.counters["abandoned"] == submitted
    assert run.counters["client_retries"] == clients * (attempts - 1)
    assert len(run.requests) == submitted
    assert (run.requests["status"] == "completed").all()
    if attempts == 3:  # 10; 10 + 1 + 0.1; 11.1 + 1 + 0.2 (no jitter)
        expected = np.repeat([10.0, 11.1, 12.3], clients)
        np.testing.assert_allclose(np.sort(run.requests["arrival"].to_numpy()), expected, atol=1e-9)


def test_patient_clients_never_abandon() -> None:
    """Three clients in step: the last served waits 6 s, within its patience."""
    load = {"clients": 3, "think_time": 10, "patience": 6.5}
    run = run_topology(closed(SLOW, ["slow"], load, duration=100), "orchestration")
    assert run.counters["abandoned"] == run.counters["client_retries"] == 0
    assert run.counters["client_submissions"] == len(run.requests) > 0


def test_a_retry_budget_caps_the_clients_retries() -> None:
    """A retry budget of 10 tokens at 5 a retry lets two retries go out in all, whatever the
    clients and their attempts allow: the first two clients to give up take the tokens, the
    other two find the bucket empty, and so do the first two when they give up again."""
    retry = {"max_attempts": 5, "initial": 0.1, "budget": {"capacity": 10, "retry_cost": 5}}
    load = {"clients": 4, "think_time": 10, "patience": 1.0, "retry": retry}
    run = run_topology(closed(SLOW, ["slow"], load, duration=15, drain=200), "orchestration")
    assert run.counters["client_retries"] == 2
    assert run.counters["retries_refused"] == 4
    assert run.counters["client_submissions"] == run.counters["abandoned"] == 6


# --- determinism, accounting, common random numbers ---------------------------------------------


def mixed(seed: int = 5, with_clients: bool = True) -> Scenario:
    """A closed-loop checkout (two steps, a compensable failing one) beside an open-loop flow."""
    data: dict[str, Any] = {
        "name": "mixed",
        "seed": seed,
        "duration": 300,
        "warmup": 30,
        "services": {
            "a": {"latency": exp(0.2), "replicas": 2},
            "b": {"latency": exp(0.1), "error_probability": 0.1, "compensation": {"latency": 0.01}},
        },
        "workflows": {"checkout": {"steps": ["a", "b"]}, "feed": {"steps": ["b"]}},
        "load": {
            "checkout": {"clients": 6, "think_time": exp(1.0), "patience": 0.5},
            "feed": {"rate": 2},
        },
        "topologies": {"orchestration": {}, "choreography": QUEUE, "hybrid": {"asynchronous": ["b"]}},
    }
    if not with_clients:
        del data["workflows"]["checkout"], data["load"]["checkout"]
    return scenario_from_dict(data)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_same_seed_same_numbers_and_every_instance_accounted_for(topology: str) -> None:
    first, again = run_topology(mixed(), topology), run_topology(mixed(), topology)
    pd.testing.assert_frame_equal(first.requests, again.requests)
    assert first.counters == again.counters
    np.testing.assert_array_equal(first.effects.gid, again.effects.gid)
    other = run_topology(mixed(seed=6), topology)
    assert not first.requests["arrival"].equals(other.requests["arrival"])
    # The world proved conservation at the end of the run; the records agree with it.
    assert first.counters["abandoned"] > 0 and first.counters["client_retries"] > 0
    req = first.requests
    assert len(req) == first.total
    clients = req[req["workflow"] == "checkout"]
    assert len(clients) == first.counters["client_submissions"]
    # Each workflow's instances are contiguous, in the order they were created.
    offsets = [(w.name, w.offset, w.count) for w in first.workflows]
    assert offsets == [("checkout", 0, len(clients)), ("feed", len(clients), first.total - len(clients))]
    for w in first.workflows:
        arrivals = first.outcomes.arrival[w.offset : w.offset + w.count]
        assert np.all(np.diff(arrivals) >= 0)
    # The ledger follows the permutation: a completed instance (its asynchronous steps, if any,
    # done) took effect once per step.
    applied = np.bincount(first.effects.gid[first.effects.kind == APPLIED], minlength=first.total)
    out = first.outcomes
    ok = (out.status == 1) & (out.async_failures == 0) & (out.async_pending == 0)
    steps = np.repeat([2, 1], [len(clients), first.total - len(clients)])
    np.testing.assert_array_equal(applied[ok], steps[ok])


def test_an_open_loop_beside_clients_keeps_its_arrivals() -> None:
    """Arrivals drawn up front come from their workflow's own stream, clients or not."""
    alone = run_topology(mixed(with_clients=False), "orchestration").requests
    beside = run_topology(mixed(), "orchestration").requests
    np.testing.assert_array_equal(
        alone["arrival"].to_numpy(), beside.loc[beside["workflow"] == "feed", "arrival"].to_numpy()
    )


def test_identical_systems_give_identical_closed_loops() -> None:
    """With zero coordination costs an orchestration and a choreography over a queue are the same
    queueing network: the clients see the same response times, so they submit at the same
    instants, and instance i brings the same work: the runs agree instance by instance."""
    sc = mixed()
    orch = run_topology(sc, "orchestration").requests
    chor = run_topology(sc, "choreography").requests
    for column in ("arrival", "latency", "status"):
        np.testing.assert_array_equal(orch[column].to_numpy(), chor[column].to_numpy())


def test_traces_sample_closed_loop_instances_over_the_window() -> None:
    sc = mixed()
    run = simulate(Task(sc, "orchestration", trace=4))
    roots = [s for s in run.spans if s.parent == -1 and s.workflow == "checkout"]
    assert len(roots) == 4
    assert all(sc.warmup_seconds <= s.start < sc.duration for s in roots)
    assert len({s.instance for s in roots}) == 4
    assert max(s.start for s in roots) > sc.warmup_seconds + 0.5 * (sc.duration - sc.warmup_seconds)


# --- the scenario language ----------------------------------------------------------------------


def base_data(load: dict[str, Any]) -> dict[str, Any]:
    return {
        "duration": 100,
        "services": {"s": {"latency": 0.1}},
        "workflows": {"wf": {"steps": ["s"]}},
        "load": {"wf": load},
        "topologies": {"orchestration": {}},
    }


@pytest.mark.parametrize(
    ("load", "field", "message"),
    [
        ({"clients": 5, "think_time": 1, "rate": 2}, "load.wf", "clients makes a closed loop"),
        ({"clients": 5, "think_time": 1, "schedule": [{"at": 0, "rate": 1}]}, "load.wf", "no schedule"),
        ({"clients": 5, "think_time": 1, "arrival": "deterministic"}, "load.wf", "no arrival"),
        ({"clients": 5}, "load.wf", "clients needs think_time"),
        ({"clients": 0, "think_time": 1}, "load.wf.clients", "must be greater than 0"),
        ({"clients": 2.5, "think_time": 1}, "load.wf.clients", "must be a whole number"),
        ({"clients": 100_001, "think_time": 1}, "load.wf.clients", "must be at most 100,000"),
        ({"clients": 5, "think_time": 0}, "load.wf.think_time", "must have a mean greater than 0"),
        ({"clients": 5, "think_time": 1, "patience": 0}, "load.wf.patience", "must be greater than 0"),
        ({"clients": 5, "think_time": 1, "retry": {}}, "load.wf", "retry is for impatient clients"),
        (
            {"clients": 5, "think_time": 1, "patience": 2, "retry": {"max_attempts": 0}},
            "load.wf.retry.max_attempts",
            "must be greater than 0",
        ),
        ({"rate": 2, "think_time": 1}, "load.wf", "think_time: for closed-loop clients only"),
        ({"rate": 2, "patience": 1}, "load.wf", "patience: for closed-loop clients only"),
    ],
)
def test_bad_client_loads_get_a_clear_error_with_the_field(
    load: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(base_data(load))
    assert any(p.startswith(f"{field}: ") and message in p for p in info.value.problems), info.value.problems


def test_expected_arrivals_of_clients_is_an_upper_bound() -> None:
    sc = scenario_from_dict(base_data({"clients": 10, "think_time": exp(5.0), "patience": 20}))
    assert expected_arrivals(sc) == pytest.approx(10 * (100 / 5 + 100 / 20 + 1))
    run = run_topology(sc, "orchestration")
    assert len(run.requests) <= expected_arrivals(sc)


def test_a_rate_sweep_over_clients_is_a_clear_error(tmp_path: Path) -> None:
    from sim.api.sweep import run_sweep

    with pytest.raises(ScenarioError) as info:
        run_sweep(_write(tmp_path), ["load.checkout.rate=1,2"], out=tmp_path / "sweep", executor="serial")
    assert any("clients makes a closed loop" in p for p in info.value.problems), info.value.problems


# --- the command line ----------------------------------------------------------------------------

SMALL = """\
name: clients-small
seed: 3
duration: 40
warmup: 4
replications: 2
services:
  payment: {replicas: 2, latency: {dist: exponential, mean: 0.2}, error_probability: 0.05,
            compensation: {latency: 0.01}}
  stock: {latency: 0.05}
  email: {latency: {dist: lognormal, median: 0.01, sigma: 0.5}}
workflows:
  checkout:
    steps: [stock, {parallel: [payment, [email]]}]
  browse:
    steps: [stock]
load:
  checkout: {clients: 12, think_time: {dist: exponential, mean: 1}, patience: 0.6,
             retry: {max_attempts: 3, initial: 0.2}}
  browse: {rate: 2}
faults:
  - {type: slowdown, target: payment, at: 15, duration: 10, factor: 5}
topologies:
  orchestration: {orchestrator: {shard_concurrency: 2, decision_cpu: 0.002}}
  choreography: {broker: {publish_latency: 0.001, capacity: 1000}}
  hybrid: {asynchronous: [email]}
"""


def _write(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "clients.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path


def test_sim_run_validate_and_report_with_clients(tmp_path: Path) -> None:
    path = _write(tmp_path)
    runner = CliRunner()
    checked = runner.invoke(app, ["validate", str(path)])
    assert checked.exit_code == 0, checked.output
    folder = tmp_path / "run"
    result = runner.invoke(app, ["run", str(path), "--out", str(folder), "--trace", "3"])
    assert result.exit_code == 0, result.output
    assert result.exception is None, result.exception
    for topology in TOPOLOGIES:
        assert topology in result.stdout
    assert "abandoned by clients" in result.stdout and "client retries" in result.stdout
    for name in ("summary.csv", "summary.json", "requests.parquet", "scenario.yaml", "spans.parquet"):
        assert (folder / name).is_file(), name
    assert list((folder / "plots").glob("*.png")), "plots"
    again = yaml.safe_load((folder / "scenario.yaml").read_text(encoding="utf-8"))
    assert again["load"]["checkout"]["clients"] == 12
    report = runner.invoke(app, ["report", str(folder)])
    assert report.exit_code == 0, report.output
    assert (folder / "report.html").is_file()
    data = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert [t["topology"] for t in data["topologies"]] == TOPOLOGIES
    for topo in data["topologies"]:
        block = topo["clients"]
        assert block["client_submissions"] >= block["abandoned"] >= block["client_retries"] > 0


def test_open_loop_json_has_no_clients_block(tmp_path: Path) -> None:
    data = yaml.safe_load(SMALL)
    data["load"]["checkout"] = {"rate": 4}
    del data["faults"]
    data["replications"] = 1
    path = tmp_path / "open.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["run", str(path), "--json", "--no-plots", "-t", "orchestration", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    assert "clients" not in json.loads(result.stdout)["topologies"][0]
