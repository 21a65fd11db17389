"""The broker against theory: a log is partitions processed in order, not a pooled queue.

Each test derives its expectation from queueing theory or from the mechanism's arithmetic (a
partition is an M/M/1 queue fed by a thinning of the arrivals; a rebalance of length R at rate λ
builds a backlog of about λR; a visibility timeout V duplicates the deliveries whose work
outlasts it), with tolerances from the run itself or from Poisson counts, never tuned to the
code's own numbers.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sim
from sim.model.broker.keys import partition_shares
from sim.model.records import GroupRecord
from sim.scenario.broker import Key
from sim.scenario.errors import ScenarioError
from tests.helpers import QUEUE, batch_means, erlang_c_wait, run_topology, scenario


def exp(mean: float) -> dict:
    return {"dist": "exponential", "mean": mean}


def log(**broker: Any) -> dict:
    """A choreography over a broker with these settings (a log unless ``kind`` says otherwise)."""
    return {"kind": "choreography", "broker": broker}


def mean_in(g: GroupRecord, lane: int, lo: float, hi: float, end: float) -> float:
    """Time-average number of lane ``lane``'s messages in the subscription during [lo, hi)."""
    mine = g.lane == lane
    a = g.entered[mine]
    b = np.where(np.isnan(g.left[mine]), end, g.left[mine])
    return float(np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0, None).sum() / (hi - lo))


# --- a log is partitions, not a pool ---------------------------------------------------------


def test_each_partition_of_a_log_is_an_mm1_queue_where_a_queue_is_one_mmc() -> None:
    """λ = 15 over P = 2 partitions of exponential work (mean 0.1 s) with 4 consumers: each
    partition is an M/M/1 queue fed λ/P, so the mean time is 1/(μ − λ/P) = 0.4 s; the same
    service behind a queue broker is one M/M/4 queue (Erlang C, about 0.13 s)."""
    lam, mu, parts, servers = 15.0, 10.0, 2, 4
    sc = scenario(
        {"s": {"replicas": servers, "latency": exp(1 / mu)}},
        ["s"],
        rate=lam,
        duration=3000,
        warmup=100,
        topologies={"log": log(partitions=parts), "queue": {"kind": "choreography", **QUEUE}},
    )
    mean, half = batch_means(run_topology(sc, "log").requests, sc.warmup, sc.duration)
    expected = 1 / (mu - lam / parts)
    assert abs(mean - expected) < half, f"partition M/M/1 {mean:.4f} vs {expected:.4f} ± {half:.4f}"
    mean, half = batch_means(run_topology(sc, "queue").requests, sc.warmup, sc.duration)
    pooled = erlang_c_wait(servers, lam, mu) + 1 / mu
    assert abs(mean - pooled) < half, f"queue M/M/4 {mean:.4f} vs {pooled:.4f} ± {half:.4f}"


def test_max_in_flight_lets_a_partition_use_several_workers() -> None:
    """With max_in_flight equal to the workers, one partition's consumer is an M/M/c queue."""
    lam, mu, c = 2.4, 1.0, 3
    sc = scenario(
        {"s": {"concurrency": c, "latency": exp(1 / mu)}},
        ["s"],
        rate=lam,
        duration=15000,
        warmup=500,
        topologies={"log": log(partitions=1, max_in_flight=c)},
    )
    mean, half = batch_means(run_topology(sc, "log").requests, sc.warmup, sc.duration)
    expected = erlang_c_wait(c, lam, mu) + 1 / mu
    assert abs(mean - expected) < half, f"M/M/3 {mean:.4f} vs {expected:.4f} ± {half:.4f}"


def test_a_hot_key_loads_its_partition_with_its_share_of_the_traffic() -> None:
    """Keys drawn from a Zipf law: partition p gets the share f_p of the events its keys hold,
    a Poisson stream of rate f_p λ, so it is an M/M/1 queue with ρ_p = f_p λ/μ and a mean lag
    (messages in the subscription) of ρ_p/(1 − ρ_p)."""
    lam, mu, parts = 6.0, 10.0, 4
    key = {"keys": 20, "skew": 1.2}
    shares = partition_shares(Key(**key), parts)
    assert shares.max() > 0.4  # the hot key's partition: well above 1/P
    sc = scenario(
        {"s": {"replicas": parts, "latency": exp(1 / mu)}},
        ["s"],
        rate=lam,
        duration=4000,
        warmup=100,
        topologies={"log": log(partitions=parts, key=key)},
    )
    run = run_topology(sc, "log")
    group = run.groups[0]
    in_window = (group.entered >= sc.warmup) & (group.entered < sc.duration)
    n = int(in_window.sum())
    edges = np.linspace(sc.warmup, sc.duration, 21)
    for p in range(parts):
        got = int((in_window & (group.lane == p)).sum())
        sd = math.sqrt(n * shares[p] * (1 - shares[p]))
        assert abs(got - n * shares[p]) < 4 * sd + 1, f"partition {p}: {got} of {n}, share {shares[p]:.3f}"
        rho = shares[p] * lam / mu
        batches = [mean_in(group, p, a, b, run.end_time) for a, b in itertools.pairwise(edges)]
        half = 3.88 * np.std(batches, ddof=1) / math.sqrt(len(batches))
        assert abs(np.mean(batches) - rho / (1 - rho)) < half, f"partition {p} lag vs M/M/1 at rho {rho:.3f}"


def test_more_consumers_than_partitions_stay_idle() -> None:
    """Six consumers on two partitions: four own no partition, so the service does at most two
    things at once (the components table says so)."""
    sc = scenario(
        {"s": {"replicas": 6, "latency": exp(0.1)}},
        ["s"],
        rate=5,
        duration=200,
        topologies={"log": log(partitions=2)},
    )
    comps = sim.run(sc).components.set_index("name")
    assert comps.loc["s", "concurrency"] == 2
    assert comps.loc["s", "partitions"] == 2
    assert comps.loc["s", "lag_max"] >= 1


# --- consumer-group dynamics -----------------------------------------------------------------


def _rejoin(protocol: str) -> pd.Series:
    """λ = 5 through a one-partition log whose second consumer (owning only the empty
    compensation partition) is lost for 1 s and comes back, joining again: a rebalance."""
    sc = scenario(
        {"s": {"replicas": 2, "latency": exp(0.01)}},
        ["s"],
        rate=5,
        duration=300,
        warmup=50,
        topologies={
            "log": log(partitions=1, session_timeout=1000, rebalance={"protocol": protocol, "time": 10})
        },
        faults=[{"type": "capacity_loss", "target": "s", "at": 150, "duration": 1, "replicas": 1}],
    )
    result = sim.run(sc)
    return result.components.set_index("name").loc["s"], result.summary.iloc[0]


def test_an_eager_rebalance_pauses_every_partition_for_its_time() -> None:
    """Eager: every partition pauses for the rebalance time R = 10 s, so the step events pile up:
    a backlog of about λR = 50 (Poisson), worked off at once afterwards."""
    comp, row = _rejoin("eager")
    expected = 5 * 10
    assert abs(comp["lag_max"] - expected) < 4 * math.sqrt(expected) + 2
    assert row["rebalances"] == 1
    assert row["completed"] == row["arrived"]


def test_a_cooperative_rebalance_pauses_only_the_partitions_that_move() -> None:
    """Cooperative: the returning consumer gets back its own (empty) partition; the partition
    with the events does not move, so it never pauses and no backlog builds."""
    comp, row = _rejoin("cooperative")
    assert comp["lag_max"] <= 6
    assert row["rebalances"] == 1


def test_a_crashed_consumer_stalls_its_partitions_until_its_session_times_out() -> None:
    """λ = 4 over two partitions, one consumer each; one consumer is lost for good at t = 100.
    Its partition (λ/2) stalls for the session timeout (30 s), then the eager rebalance pauses
    both for R = 3 s: a peak lag of about λ/2 · (30 + 3) + λ/2 · 3 = 72."""
    lam, session, pause = 4.0, 30.0, 3.0
    sc = scenario(
        {"s": {"replicas": 2, "latency": exp(0.01)}},
        ["s"],
        rate=lam,
        duration=300,
        warmup=50,
        topologies={"log": log(partitions=2, session_timeout=session, rebalance={"time": pause})},
        faults=[{"type": "capacity_loss", "target": "s", "at": 100, "duration": 150, "replicas": 1}],
    )
    result = sim.run(sc)
    comp = result.components.set_index("name").loc["s"]
    expected = lam / 2 * (session + pause) + lam / 2 * pause
    assert abs(comp["lag_max"] - expected) < 4 * math.sqrt(expected) + 2
    row = result.summary.iloc[0]
    assert row["completed"] == row["arrived"]  # the surviving consumer takes the partition over
    assert row["rebalances"] == 2  # the member found dead, and its return


def test_a_rolling_deploy_restarts_every_replica_and_loses_nothing() -> None:
    """A deploy drains, restarts and brings back each replica in turn: engine-polled workers
    just lose capacity for a while; a consumer group also rebalances when each consumer leaves
    and when it returns. No workflow fails, none stays in flight."""
    sc = scenario(
        {"s": {"replicas": 3, "concurrency": 2, "latency": exp(0.05)}},
        ["s", "s"],
        rate=20,
        duration=150,
        warmup=10,
        topologies={
            "orchestration": {"orchestrator": {"dispatch": "poll"}},
            "log": log(partitions=6),
            "queue": {"kind": "choreography", **QUEUE},
        },
        faults=[{"type": "deploy", "target": "s", "at": 50, "batch": 1, "restart_time": 5}],
    )
    result = sim.run(sc)
    s = result.summary.set_index("topology")
    assert (s["completed"] == s["arrived"]).all()
    assert (s["run_in_flight"] == 0).all()
    assert s.loc["log", "rebalances"] == 6  # each of 3 consumers leaves and comes back
    assert s.loc["queue", "rebalances"] == 0
    window = result.faults[result.faults["topology"] == "log"].iloc[0]
    assert window["type"] == "deploy" and window["start"] == 50
    assert window["end"] >= 50 + 3 * 5


# --- retention and the queue's visibility timeout -----------------------------------------------


def test_a_burst_loses_nothing_with_long_retention_and_drops_old_events_with_short() -> None:
    """A 30 s burst at twice a constant consumer's capacity leaves a backlog that takes about a
    minute to work off. Kafka's 7-day retention keeps every event; a 10 s retention drops the
    events that waited longer, and their workflows end lost, counted as expired."""
    sc = sim.scenario_from_dict(
        {
            "duration": 200,
            "drain": 200,
            "services": {"s": {"latency": 0.1}},
            "workflows": {"wf": {"steps": ["s"]}},
            "load": {
                "wf": {
                    "arrival": "poisson",
                    "schedule": [{"at": 0, "rate": 5}, {"at": 50, "rate": 20}, {"at": 80, "rate": 5}],
                }
            },
            "topologies": {"long": log(), "short": log(retention=10)},
        }
    )
    s = sim.run(sc).summary.set_index("topology")
    assert s.loc["long", "completed"] == s.loc["long", "arrived"]
    assert s.loc["long", "expired"] == 0
    assert s.loc["short", "expired"] > 50
    assert s.loc["short", "lost"] == s.loc["short", "expired"]
    assert s.loc["short", "lost"] + s.loc["short", "completed"] == s.loc["short", "arrived"]


def test_a_visibility_timeout_shorter_than_the_work_delivers_duplicates() -> None:
    """At low load every message is received as it arrives; one whose work (exponential, mean
    1 s) outlasts the visibility timeout V = 3 s is delivered again: about P(work > V) = e⁻³ of
    the deliveries (plus the rare duplicate of a duplicate, at most p² per message). Only the
    first outcome counts: every workflow completes once."""
    p = math.exp(-3)
    sc = scenario(
        {"s": {"replicas": 50, "latency": exp(1.0)}},
        ["s"],
        rate=0.2,
        duration=20000,
        topologies={"queue": {"kind": "choreography", "broker": {"kind": "queue", "visibility_timeout": 3}}},
    )
    row = sim.run(sc).summary.iloc[0]
    n = row["run_arrived"]
    assert abs(row["duplicates"] - n * p) < 4 * math.sqrt(n * p) + n * p * p
    assert row["completed"] == row["arrived"]


def test_a_message_received_too_often_goes_to_the_dead_letter_queue() -> None:
    """Work always longer than the visibility timeout: every receipt lapses, and after
    max_receives receipts the message is dead-lettered; its step fails. Each receipt's work
    still ends, and takes effect: three charges for a failed order, which ends inconsistent."""
    sc = scenario(
        {"s": {"replicas": 100, "latency": 5.0}},
        ["s"],
        rate=1,
        duration=50,
        topologies={
            "queue": {
                "kind": "choreography",
                "broker": {"kind": "queue", "visibility_timeout": 1, "max_receives": 3},
            }
        },
    )
    row = sim.run(sc).summary.iloc[0]
    assert row["inconsistent"] == row["arrived"]
    assert row["dead_letters"] == row["run_arrived"]
    assert row["duplicates"] == 2 * row["run_arrived"]


# --- leadership and the producer side ------------------------------------------------------------


def test_an_outage_of_one_partition_delays_only_its_share_of_the_workflows() -> None:
    """One of four partitions unavailable for 20 s: only the workflows keyed to it wait (about
    a quarter of those arriving meanwhile), and none fails."""
    sc = scenario(
        {"s": {"replicas": 4, "latency": exp(0.01)}},
        ["s"],
        rate=10,
        duration=200,
        warmup=20,
        topologies={"log": log(partitions=4)},
        faults=[{"type": "outage", "target": "broker", "partitions": [0], "at": 100, "duration": 20}],
    )
    req = run_topology(sc, "log").requests
    during = req[(req["arrival"] >= 100) & (req["arrival"] < 120)]
    slow = int((during["latency"] > 1).sum())
    n = len(during)
    assert abs(slow - n / 4) < 4 * math.sqrt(n * 0.25 * 0.75) + 1
    assert (req["status"] == "completed").all()


def test_a_failed_broker_node_leaves_its_partitions_without_a_leader_until_the_election() -> None:
    """Three nodes lead three partitions; the loss of one leaves its partition unavailable for
    leader_election = 5 s, after which a survivor leads it: its workflows arriving meanwhile wait
    up to 5 s, the others not at all."""
    sc = scenario(
        {"s": {"replicas": 3, "latency": exp(0.01)}},
        ["s"],
        rate=10,
        duration=200,
        warmup=20,
        topologies={"log": log(partitions=3, brokers=3, leader_election=5)},
        faults=[{"type": "capacity_loss", "target": "broker", "at": 100, "duration": 60, "replicas": 1}],
    )
    req = run_topology(sc, "log").requests
    late = req[req["latency"] > 0.5]
    assert late["arrival"].between(100, 105).all()
    assert late["latency"].max() < 5.5
    expected = 10 * 5 / 3
    assert abs(len(late) - expected) < 4 * math.sqrt(expected) + 1
    assert (req["status"] == "completed").all()


def test_linger_batches_events_into_fewer_produce_requests() -> None:
    """Events every 10 ms and a linger of 15 ms: each batch closes with two events, so there are
    half as many produce requests as events, and every event waits for its batch (10 ms on
    average for the client's, all 15 ms for the service's, whose two events come together)."""
    base = {"duration": 20, "drain": 5, "services": {"s": {"latency": 0}}}
    data = {
        **base,
        "workflows": {"wf": {"steps": ["s"]}},
        "load": {"wf": {"arrival": "deterministic", "rate": 100}},
        "topologies": {"plain": log(), "lingering": log(linger=0.015)},
    }
    result = sim.run(sim.scenario_from_dict(data))
    s = result.summary.set_index("topology")
    events = 2 * s.loc["plain", "run_arrived"]  # the client's and the service's
    assert s.loc["plain", "produce_requests"] == events
    assert s.loc["lingering", "produce_requests"] == pytest.approx(events / 2, abs=2)
    assert s.loc["lingering", "latency_mean"] == pytest.approx(0.010 + 0.015, abs=1e-9)


def test_a_broker_crash_during_an_append_completes_it_after_the_recovery() -> None:
    """Appends interrupted by broker crashes are sent again: nothing stays in flight."""
    sc = scenario(
        {"s": {"latency": exp(0.01)}},
        ["s", "s"],
        rate=20,
        duration=200,
        drain=100,
        topologies={
            "queue": {"kind": "choreography", "broker": {"kind": "queue", "capacity": 50, "partitions": 2}}
        },
        faults=[{"type": "crash", "target": "broker", "mtbf": exp(10), "mttr": exp(1)}],
    )
    row = sim.run(sc).summary.iloc[0]
    assert row["run_in_flight"] == 0
    assert row["run_completed"] == row["run_arrived"]


# --- the scenario language ------------------------------------------------------------------------


def _with_broker(broker: dict, **extra: Any) -> dict:
    data = {
        "duration": 10,
        "services": {"s": {"latency": 0.01}},
        "workflows": {"wf": {"steps": ["s"]}},
        "load": {"wf": {"rate": 1}},
        "topologies": {"choreography": {"broker": broker}},
    }
    data.update(extra)
    return data


@pytest.mark.parametrize(
    ("broker", "message"),
    [
        ({"kind": "queue", "max_in_flight": 2}, "max_in_flight: only a broker of kind log has it"),
        ({"visibility_timeout": 5}, "visibility_timeout: only a broker of kind queue has it"),
        ({"redelivery_delay": 30}, "redelivery_delay was replaced"),
        ({"key": {"keys": 0}}, "keys"),
    ],
)
def test_broker_fields_of_the_other_kind_are_refused(broker: dict, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        sim.scenario_from_dict(_with_broker(broker), source="s.yaml")
    assert any(message in p for p in info.value.problems), info.value.problems


def test_a_queue_limit_that_applies_nowhere_is_refused() -> None:
    data = _with_broker({})
    data["services"]["s"]["queue_limit"] = 10
    with pytest.raises(ScenarioError) as info:
        sim.scenario_from_dict(data, source="s.yaml")
    assert info.value.problems[0].startswith("services.s.queue_limit: 's' is only consumed from a log")
    data["topologies"]["orchestration"] = {}  # it bounds the engine's calls there
    sim.scenario_from_dict(data)
    data["topologies"] = {"choreography": QUEUE}  # and a queue broker's queue
    sim.scenario_from_dict(data)


OUTAGE = {"type": "outage", "at": 1, "duration": 1}


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            {"type": "outage", "target": "s", "at": 1, "duration": 1, "partitions": [0]},
            "only an outage of the broker",
        ),
        (
            {"type": "outage", "target": "broker", "at": 1, "duration": 1, "partitions": [5]},
            "no topology has partition 5",
        ),
        ({"type": "deploy", "target": "broker", "at": 1}, "a deploy restarts a service"),
        ({"type": "deploy", "target": "s", "at": 1, "batch": 0}, "faults[0].batch: must be greater than 0"),
    ],
)
def test_fault_targets_of_the_broker_are_checked(fault: dict, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        sim.scenario_from_dict(_with_broker({"partitions": 2}, faults=[fault]), source="s.yaml")
    assert any(message in p for p in info.value.problems), info.value.problems


@pytest.mark.parametrize("kind", ["log", "queue"])
def test_a_resolved_broker_validates_again(kind: str) -> None:
    """A run folder's scenario.yaml (the resolved scenario) leaves out the other kind's fields."""
    sc = sim.scenario_from_dict(_with_broker({"kind": kind}))
    again = sim.scenario_from_dict(sc.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert again == sc


# --- queues: prefetch and length limits; logs: polls ----------------------------------------------


def test_prefetch_splits_a_queue_into_one_queue_per_consumer() -> None:
    """With a large prefetch the broker deals messages to two one-worker consumers in turn, so
    each is an E2/M/1 queue (every other arrival of a Poisson stream): mean time 1/(μ(1 − σ)),
    σ the root of σ = (λ/(λ + μ(1 − σ)))². Without prefetch they share one queue: M/M/2."""
    lam, mu = 1.6, 1.0
    sigma = 0.5
    for _ in range(200):  # the fixed point converges from below
        sigma = (lam / (lam + mu * (1 - sigma))) ** 2
    expected = 1 / (mu * (1 - sigma))
    queue = {"kind": "queue", "visibility_timeout": 1e6}
    sc = scenario(
        {"s": {"replicas": 2, "latency": exp(1 / mu)}},
        ["s"],
        rate=lam,
        duration=30000,
        warmup=500,
        topologies={"dealt": log(**queue, prefetch=1000), "shared": log(**queue)},
    )
    mean, half = batch_means(run_topology(sc, "dealt").requests, sc.warmup, sc.duration)
    assert abs(mean - expected) < half, f"E2/M/1 {mean:.4f} vs {expected:.4f} ± {half:.4f}"
    mean, half = batch_means(run_topology(sc, "shared").requests, sc.warmup, sc.duration)
    pooled = erlang_c_wait(2, lam, mu) + 1 / mu
    assert abs(mean - pooled) < half, f"M/M/2 {mean:.4f} vs {pooled:.4f} ± {half:.4f}"


@pytest.mark.parametrize(("overflow", "served"), [("reject", [0, 1, 2, 3]), ("dead_letter", [0, 7, 8, 9])])
def test_a_full_queue_refuses_the_newest_or_drops_the_oldest(overflow: str, served: list[int]) -> None:
    """Ten messages 0.1 s apart for a one-second job and a queue of three: the first goes into
    service and three wait; a full queue then refuses each newcomer (reject), or drops its
    oldest waiting message to make room (dead_letter), which leaves the last three."""
    sc = sim.scenario_from_dict(
        {
            "duration": 1.0,
            "drain": 100,
            "services": {"s": {"latency": 1.0}},
            "workflows": {"wf": {"steps": ["s"]}},
            "load": {"wf": {"arrival": "deterministic", "rate": 10}},
            "topologies": {"queue": log(kind="queue", max_length=3, overflow=overflow)},
        }
    )
    req = run_topology(sc, "queue").requests
    assert sorted(req.loc[req["status"] == "completed", "id"]) == served
    assert (req.loc[req["status"] != "completed", "status"] == "failed").all()


def test_max_poll_records_bounds_what_one_poll_returns() -> None:
    """A busy consumer of one partition: with max_poll_records 1 every event needs a poll of
    its own; with Kafka's 500 one poll brings what has piled up."""
    polls = {}
    for limit in (1, 500):
        sc = scenario(
            {"s": {"latency": exp(0.1)}},
            ["s"],
            rate=8,
            duration=500,
            topologies={"log": log(max_poll_records=limit)},
        )
        row = sim.run(sc).summary.iloc[0]
        polls[limit] = row["polls"] / row["run_arrived"]
    assert polls[1] == 1.0
    assert polls[500] < 0.5
