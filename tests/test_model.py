"""Fairness, determinism, conservation and the behaviour of each coordination style."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from sim.model.world import World
from tests.helpers import QUEUE, batch_means, run_topology, scenario

CONST_ORCH = {"orchestrator": {"shard_concurrency": 1000, "decision_cpu": 0.01}}
CONST_BROKER = {"broker": {"kind": "queue", "publish_latency": 0.004}}


def exp(mean: float) -> dict:
    return {"dist": "exponential", "mean": mean}


def checkout_like(**topologies: dict) -> sim.Scenario:
    return scenario(
        {
            "payment": {
                "replicas": 2,
                "concurrency": 2,
                "latency": {"dist": "lognormal", "median": 0.08, "p99": 0.4},
            },
            "warehouse": {"replicas": 2, "latency": exp(0.05)},
            "inventory": {"replicas": 2, "latency": exp(0.03)},
            "shipping": {"replicas": 2, "latency": {"dist": "gamma", "mean": 0.06, "cv": 0.5}},
            "email": {"latency": 0.02},
        },
        ["payment", {"parallel": ["warehouse", "inventory"]}, "shipping", "email"],
        rate=20,
        duration=120,
        warmup=10,
        network={"latency": exp(0.001)},
        topologies=topologies
        or {
            "orchestration": {
                "orchestrator": {
                    "shard_concurrency": 4,
                    "decision_cpu": {"dist": "exponential", "mean": 0.01},
                }
            },
            "choreography": {
                "broker": {
                    "kind": "queue",
                    "publish_latency": 0.002,
                    "delivery_latency": 0.001,
                    "capacity": 500,
                }
            },
            "hybrid": {
                "orchestrator": {
                    "shard_concurrency": 4,
                    "decision_cpu": {"dist": "exponential", "mean": 0.01},
                },
                "broker": {
                    "kind": "queue",
                    "publish_latency": 0.002,
                    "delivery_latency": 0.001,
                    "capacity": 500,
                },
                "asynchronous": ["email", "inventory"],
            },
        },
    )


# --- common random numbers -------------------------------------------------------------------


def test_every_topology_sees_the_same_arrivals_and_work() -> None:
    """Each instance brings the same service times in every topology, whatever its path.

    With unlimited servers and constant coordination costs, latency = the instance's total work +
    a known constant per topology: orchestration pays one decision at the start and one per reply,
    choreography one publish for the entry event and one per step. Subtracting those constants
    must leave exactly the same number per instance in both topologies.
    """
    services = {n: {"replicas": 10_000, "latency": exp(m)} for n, m in [("a", 0.1), ("b", 0.2), ("c", 0.05)]}
    sc = scenario(
        services,
        ["a", "b", "c"],
        rate=30,
        duration=60,
        topologies={"orchestration": CONST_ORCH, "choreography": CONST_BROKER},
    )
    orch = run_topology(sc, "orchestration").requests
    chor = run_topology(sc, "choreography").requests
    np.testing.assert_array_equal(orch["arrival"], chor["arrival"])
    work_o = orch["latency"] - 4 * 0.01
    work_c = chor["latency"] - 4 * 0.004
    np.testing.assert_allclose(work_o, work_c, rtol=0, atol=1e-9)
    assert work_o.std() > 0.05, "the work must actually vary between instances"


def test_world_draws_depend_on_instance_not_on_order() -> None:
    sc = checkout_like()
    w1, w2 = World(sc), World(sc)
    plan1, plan2 = w1.plans[0], w2.plans[0]
    first = [w1.instance(plan1, i, 0.0).work for i in range(50)]
    second = [w2.instance(plan2, i, 0.0).work for i in range(50)]
    assert first == second


def test_streams_are_named_so_an_extra_service_changes_nothing_else() -> None:
    base = checkout_like()
    data = base.model_dump(by_alias=True, exclude_none=True)
    data["services"]["audit"] = {"latency": exp(0.5)}
    data["workflows"]["other"] = {"steps": ["audit"]}
    data["load"]["other"] = {"rate": 3}
    bigger = sim.scenario_from_dict(data)
    a = run_topology(base, "choreography").requests
    b = run_topology(bigger, "choreography").requests
    b = b[b["workflow"] == "wf"].reset_index(drop=True)
    np.testing.assert_array_equal(a["arrival"], b["arrival"])


# --- determinism ------------------------------------------------------------------------------


def test_same_scenario_and_seed_give_identical_results() -> None:
    sc = checkout_like()
    r1 = sim.run(sc)
    r2 = sim.run(sc)
    pd.testing.assert_frame_equal(r1.summary, r2.summary)
    pd.testing.assert_frame_equal(r1.components, r2.components)
    pd.testing.assert_frame_equal(r1.requests, r2.requests)
    pd.testing.assert_frame_equal(r1.timeseries, r2.timeseries)


def test_another_seed_gives_other_numbers() -> None:
    sc = checkout_like()
    a = sim.run(sc, topologies=["orchestration"]).summary
    b = sim.run(sc, topologies=["orchestration"], seed=sc.seed + 1).summary
    assert a["latency_mean"].iloc[0] != b["latency_mean"].iloc[0]


def test_a_topology_runs_the_same_alone_or_with_others() -> None:
    sc = checkout_like()
    alone = sim.run(sc, topologies=["hybrid"]).requests
    together = sim.run(sc).requests
    together = together[together["topology"] == "hybrid"].reset_index(drop=True)
    # (the topology is a category: of one topology alone, of all three together)
    pd.testing.assert_frame_equal(alone, together, check_categorical=False)


# --- conservation -----------------------------------------------------------------------------


@pytest.mark.parametrize("topology", ["orchestration", "choreography", "hybrid"])
def test_every_request_is_accounted_for_with_errors_rejections_and_overload(topology: str) -> None:
    sc = scenario(
        {
            "a": {"error_probability": 0.1, "latency": exp(0.05)},
            "b": {"queue_limit": 2, "latency": exp(0.09)},
            "c": {"latency": exp(0.2)},  # overloaded: in flight at the end
        },
        ["a", {"parallel": ["b", "c"]}],
        rate=10,
        duration=60,
        warmup=5,
        drain=1,
        topologies={
            "orchestration": {},
            "choreography": QUEUE,
            "hybrid": {"asynchronous": ["c"]},
        },
    )
    result = sim.run(sc, topologies=[topology])
    row = result.summary.iloc[0]
    outcomes = ["completed", "failed", "compensated", "inconsistent", "lost", "in_flight"]
    assert row["arrived"] == sum(row[o] for o in outcomes)
    assert row["run_arrived"] == sum(row[f"run_{o}"] for o in outcomes)
    # a's errors fail workflows before anything took effect; b's rejections after a took effect,
    # which no compensation undoes.
    assert row["failed"] > 0 and row["inconsistent"] > 0
    if topology != "hybrid":
        assert row["in_flight"] > 0, "c is overloaded, so some workflows must still be running"
    comps = result.components.set_index("name")
    if topology == "choreography":  # b's queue is in the broker: overflow goes to the dead-letter queue
        assert row["dead_letters"] > 0
    else:
        assert comps.loc["b", "rejected"] > 0


def test_conservation_check_detects_a_lost_instance() -> None:
    sc = checkout_like()
    world = World(sc)
    world.status[0] = 7  # an outcome that is none of the known ones
    with pytest.raises(AssertionError, match="conservation"):
        world.check_conservation()


# --- metamorphic ------------------------------------------------------------------------------


def test_more_replicas_means_lower_latency() -> None:
    means = []
    for replicas in (1, 2, 3):
        sc = scenario(
            {"s": {"replicas": replicas, "latency": exp(0.15)}},
            ["s"],
            rate=6,
            duration=2000,
            topologies={"choreography": QUEUE},
        )
        means.append(run_topology(sc, "choreography").requests["latency"].mean())
    assert means[0] > means[1] > means[2], f"latency should fall with replicas: {means}"


def test_more_consumers_than_partitions_do_not_help_a_log() -> None:
    """A log's consumer group processes each partition in order: beyond one consumer per
    partition, more replicas change nothing (the surplus consumers own no partition)."""
    means = []
    for replicas in (2, 3, 6):
        sc = scenario(
            {"s": {"replicas": replicas, "latency": exp(0.15)}},
            ["s"],
            rate=6,
            duration=500,
            topologies={"choreography": {"broker": {"partitions": 2}}},
        )
        means.append(run_topology(sc, "choreography").requests["latency"].mean())
    assert means[0] == means[1] == means[2]


def test_orchestrator_overhead_raises_orchestration_latency_only() -> None:
    def at(overhead: float) -> pd.DataFrame:
        sc = checkout_like(
            orchestration={"orchestrator": {"shard_concurrency": 8, "decision_cpu": overhead}},
            choreography={"broker": {"publish_latency": 0.002}},
        )
        return sim.run(sc).summary.set_index("topology")

    low, high = at(0.001), at(0.02)
    assert high.loc["orchestration", "latency_mean"] > low.loc["orchestration", "latency_mean"] + 5 * 0.019
    cols = ["latency_mean", "latency_p99", "completed", "throughput"]
    pd.testing.assert_series_equal(low.loc["choreography", cols], high.loc["choreography", cols])


def test_an_engine_with_too_few_workers_becomes_the_bottleneck() -> None:
    sc = checkout_like(orchestration={"orchestrator": {"shard_concurrency": 1, "decision_cpu": 0.007}})
    row = sim.run(sc).summary.iloc[0]
    assert row["bottleneck"] == "orchestrator"
    assert row["bottleneck_utilization"] > 0.75


# --- topology semantics -----------------------------------------------------------------------


def test_messages_per_workflow() -> None:
    sc = checkout_like(orchestration={}, choreography=QUEUE, hybrid={"asynchronous": ["email"], **QUEUE})
    rows = sim.run(sc).summary.set_index("topology")["messages_per_workflow"]
    # Orchestration: start + request and reply for each of 5 calls.
    assert rows["orchestration"] == 11
    # Choreography: entry publish; deliveries: payment 1, warehouse+inventory 2, shipping 2 (join
    # inputs), email 1; publishes: 5 completions.
    assert rows["choreography"] == 12
    # Hybrid with email asynchronous: start + 4 request/reply pairs + publish + delivery.
    assert rows["hybrid"] == 11


def test_hybrid_takes_asynchronous_steps_off_the_critical_path() -> None:
    services = {"a": {"replicas": 1000, "latency": 0.1}, "slow": {"replicas": 1000, "latency": 2.0}}
    sc = scenario(
        services,
        ["a", "slow"],
        rate=5,
        duration=50,
        topologies={
            "orchestration": {},
            "hybrid": {
                "broker": {"kind": "queue", "publish_latency": 0.01, "delivery_latency": 0.005},
                "asynchronous": ["slow"],
            },
        },
    )
    res = sim.run(sc)
    s = res.summary.set_index("topology")
    assert s.loc["orchestration", "latency_mean"] == pytest.approx(2.1)
    # Critical path: a (0.1) then the publish (0.01) of the asynchronous step.
    assert s.loc["hybrid", "latency_mean"] == pytest.approx(0.11)
    # The asynchronous step finishes 0.1 + 0.01 + 0.005 + 2.0 after arrival.
    assert s.loc["hybrid", "async_latency_mean"] == pytest.approx(2.115)
    assert s.loc["hybrid", "async_in_flight"] == 0


def test_choreography_join_waits_for_every_branch() -> None:
    services = {
        "a": {"replicas": 1000, "latency": 0.1},
        "b": {"replicas": 1000, "latency": 0.5},
        "c": {"replicas": 1000, "latency": 0.2},
        "d": {"replicas": 1000, "latency": 0.05},
    }
    sc = scenario(
        services,
        [{"parallel": ["a", ["b", "c"]]}, "d"],
        rate=5,
        duration=20,
        topologies={
            "choreography": {"broker": {"kind": "queue", "publish_latency": 0.01}},
            "orchestration": {},
        },
    )
    s = sim.run(sc).summary.set_index("topology")
    # Entry publish, then the slower branch b→c (0.5 + 0.01 + 0.2 + 0.01), then d and its publish.
    assert s.loc["choreography", "latency_mean"] == pytest.approx(0.01 + 0.72 + 0.06)
    assert s.loc["orchestration", "latency_mean"] == pytest.approx(0.75)


def test_failed_step_stops_the_workflow_in_every_topology() -> None:
    sc = scenario(
        {
            "a": {"latency": exp(0.01)},
            "bad": {"error_probability": 1.0, "latency": exp(0.01)},
            "c": {"latency": 0.01},
        },
        ["a", "bad", "c"],
        rate=5,
        duration=100,
        topologies={"orchestration": {}, "choreography": {}, "hybrid": {}},
    )
    res = sim.run(sc)
    # "a" took effect and has no compensation: every workflow is left inconsistent.
    assert (res.requests["status"] == "inconsistent").all()
    assert (res.requests["failed_at"] == "bad").all()
    assert (res.components.set_index(["topology", "name"]).xs("c", level="name")["handled"] == 0).all()


def test_failure_share_matches_error_probabilities() -> None:
    p = {"a": 0.05, "b": 0.1}
    sc = scenario(
        {n: {"error_probability": q, "latency": exp(0.01)} for n, q in p.items()}, ["a", "b"], 20, 1000
    )
    req = run_topology(sc, "choreography").requests
    expected = 1 - (1 - p["a"]) * (1 - p["b"])
    share = (req["status"] != "completed").mean()
    # Without overheads a workflow fails at the instant its service reports the error.
    comps = sim.run(sc, topologies=["choreography"]).components.set_index("name")
    in_window = req["completion"] < sc.duration
    assert comps["errors"].sum() == ((req["status"] != "completed") & in_window).sum()
    assert comps.loc["a", "errors"] == ((req["failed_at"] == "a") & in_window).sum()
    sd = np.sqrt(expected * (1 - expected) / len(req))
    assert abs(share - expected) < 4 * sd


def test_piecewise_schedule_changes_the_load() -> None:
    sc = sim.scenario_from_dict(
        {
            "duration": 300,
            "services": {"s": {"latency": exp(0.01)}},
            "workflows": {"wf": {"steps": ["s"]}},
            "load": {
                "wf": {
                    "arrival": "poisson",
                    "schedule": [{"at": 0, "rate": 5}, {"at": 100, "rate": 50}, {"at": 200, "rate": 0}],
                }
            },
            "topologies": {"orchestration": {}},
            "window": 100,
        }
    )
    res = sim.run(sc)
    ts = res.timeseries
    counts = ts["arrivals"].to_numpy()[:3]
    assert abs(counts[0] - 500) < 5 * np.sqrt(500)
    assert abs(counts[1] - 5000) < 5 * np.sqrt(5000)
    assert counts[2] == 0


def test_deterministic_arrivals_are_evenly_spaced() -> None:
    sc = sim.scenario_from_dict(
        {
            "duration": 10,
            "services": {"s": {"latency": 0.01}},
            "workflows": {"wf": {"steps": ["s"]}},
            "load": {"wf": {"arrival": "deterministic", "rate": 4}},
            "topologies": {"orchestration": {}},
        }
    )
    arr = sim.run(sc).requests["arrival"].to_numpy()
    np.testing.assert_allclose(np.diff(arr), 0.25)
    assert len(arr) == 40
    np.testing.assert_allclose(sim.run(sc).requests["latency"], 0.01)


def test_arrivals_come_in_time_order_whatever_the_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrivals of several workflows (one of them without any, two on the same deterministic
    instants) merge in time order, ties in workflow order, however many are turned into Python
    numbers at a time."""
    sc = sim.scenario_from_dict(
        {
            "duration": 20,
            "services": {"s": {"latency": 0.01}},
            "workflows": {w: {"steps": ["s"]} for w in ("a", "none", "b", "c")},
            "load": {
                "a": {"arrival": "deterministic", "rate": 2},
                "none": {"arrival": "poisson", "rate": 0.001},
                "b": {"arrival": "poisson", "rate": 3},
                "c": {"arrival": "deterministic", "rate": 2},
            },
            "topologies": {"orchestration": {}},
        }
    )
    world = World(sc)
    assert [len(times) for times in world.drawn][1] == 0
    expected = sorted(
        ((t, w, i) for w, times in enumerate(world.drawn) for i, t in enumerate(times.tolist())),
        key=lambda x: (x[0], x[1]),
    )
    for chunk in (1, 7, 65_536):
        monkeypatch.setattr("sim.model.world.ARRIVALS_CHUNK", chunk)
        got = [(t, world.plans.index(plan), i) for t, plan, i in world.arrivals()]
        assert got == expected


def test_warmup_excludes_early_arrivals() -> None:
    sc = scenario({"s": {"latency": exp(0.01)}}, ["s"], rate=10, duration=100, warmup=40)
    row = sim.run(sc).summary.iloc[0]
    assert abs(row["arrived"] - 600) < 5 * np.sqrt(600)
    mean, _half = batch_means(sim.run(sc).requests, 40, 100, batches=10)
    assert mean == pytest.approx(row["latency_mean"])


# --- regressions ------------------------------------------------------------------------------


def test_no_topology_starts_new_work_for_a_failed_workflow() -> None:
    """With zero overheads the topologies stay one queueing network even with errors and
    rejections: a failed workflow's sibling branch stops in choreography as in orchestration."""
    sc = scenario(
        {
            "x": {"error_probability": 0.3, "latency": exp(0.1)},
            "b": {"queue_limit": 1, "latency": exp(0.3)},
            "a": {"replicas": 2, "latency": exp(0.3)},
        },
        [{"parallel": ["x", ["b", "a"]]}, "a"],
        rate=3,
        duration=300,
        # b's queue limit bounds its request queue under orchestration, its queue in the broker
        # under choreography.
        topologies={"orchestration": {}, "choreography": QUEUE, "hybrid": {}},
    )
    res = sim.run(sc)
    req = res.requests
    base = req[req["topology"] == "orchestration"].reset_index(drop=True)
    for name in ("choreography", "hybrid"):
        other = req[req["topology"] == name].reset_index(drop=True)
        np.testing.assert_array_equal(other["status"], base["status"])
        np.testing.assert_allclose(other["completion"], base["completion"], rtol=0, atol=1e-9)
    handled = res.components.set_index(["topology", "name"])["handled"]
    assert handled[("choreography", "a")] == handled[("orchestration", "a")]


def test_async_latency_waits_for_every_asynchronous_step() -> None:
    services = {"a": {"latency": 0.1}, "e1": {"latency": 0.2}, "e2": {"replicas": 100, "latency": 3.0}}
    sc = sim.scenario_from_dict(
        {
            "duration": 10,
            "drain": 0,
            "services": services,
            "workflows": {"wf": {"steps": ["a", "e1", "e2"]}},
            "load": {"wf": {"arrival": "deterministic", "rate": 1}},
            "topologies": {"hybrid": {"asynchronous": ["e1", "e2"], **QUEUE}},
        }
    )
    res = sim.run(sc)
    req = res.requests
    pending = req["async_pending"] > 0
    assert pending.any()
    assert req.loc[pending, "async_completion"].isna().all()
    row = res.summary.iloc[0]
    assert row["async_latency_mean"] == pytest.approx(3.1)
    assert row["async_in_flight"] == req["async_pending"].sum()


def test_deterministic_rates_give_exact_counts() -> None:
    def count(load: dict, duration: float) -> int:
        sc = sim.scenario_from_dict(
            {
                "duration": duration,
                "services": {"s": {"latency": 0.01}},
                "workflows": {"wf": {"steps": ["s"]}},
                "load": {"wf": load},
                "topologies": {"orchestration": {}},
            }
        )
        return len(World(sc).arrival)

    assert count({"arrival": "deterministic", "rate": 1.1}, 100) == 110
    schedule = [{"at": 0, "rate": 1.1}, {"at": 100, "rate": 2}]
    assert count({"arrival": "deterministic", "schedule": schedule}, 200) == 310


def test_station_keeps_fifo_order_when_some_requests_take_no_time() -> None:
    import simpy

    from sim.model.station import Station

    env = simpy.Environment()
    station = Station(env, "s", "service", servers=1)
    order: list[str] = []

    def done(name: str) -> None:
        order.append(name)
        if name == "B":  # B's continuation submits D at once: D must queue behind C
            station.submit(1.0, done, "D")

    station.submit(1.0, done, "A")
    station.submit(0.0, done, "B")
    station.submit(1.0, done, "C")
    env.run()
    assert order == ["A", "B", "C", "D"]
    assert list(station.started) == [0.0, 1.0, 1.0, 2.0]


def test_long_chains_of_instant_steps_do_not_exhaust_the_stack() -> None:
    sc = scenario(
        {"a": {"latency": 0}},
        ["a"] * 400,
        rate=2,
        duration=5,
        topologies={"orchestration": {}, "choreography": {}, "hybrid": {}},
    )
    res = sim.run(sc)
    assert (res.requests["status"] == "completed").all()
    assert (res.requests["latency"] == 0).all()


def test_bottleneck_ties_are_broken_by_queue_length() -> None:
    from sim.analysis.metrics import _bottleneck

    comps = pd.DataFrame(
        {
            "name": ["a", "b"],
            "utilization": [0.99949, 0.99951],
            "mean_queue": [500.0, 0.0],
            "handled": [10, 10],
        }
    )
    assert _bottleneck(comps)[0] == "a"
