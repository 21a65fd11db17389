"""Runs that once went wrong, each a minimal scenario: every workflow must end (nothing left in
flight after the drain), and the run must not raise. Each docstring says the mechanism."""

from __future__ import annotations

from typing import Any

import pytest

import sim

QUEUE_LEASE = {"kind": "queue", "visibility_timeout": 0.2}


def exp(mean: float) -> dict[str, Any]:
    return {"dist": "exponential", "mean": mean}


def _ends(data: dict[str, Any]) -> Any:
    result = sim.run(sim.scenario_from_dict(data))
    summary = result.summary
    assert (summary["run_in_flight"] == 0).all(), summary[["topology", "run_in_flight"]]
    return result


@pytest.mark.parametrize("broker", [{}, {"kind": "queue"}])
def test_a_step_past_the_pivot_is_retried_with_fresh_draws(broker: dict[str, Any]) -> None:
    """A choreographed step after the pivot whose retries ran out is offered again: the new
    attempt draws its work and error as a retry does, or it would fail the same way forever."""
    _ends(
        {
            "name": "pivot",
            "duration": 10,
            "drain": 3000,
            "services": {"c": {"latency": exp(0.02), "error_probability": 0.5}, "d": {"latency": exp(0.02)}},
            "workflows": {"w1": {"steps": ["d", "c"], "saga": {"pivot": "d"}}},
            "load": {"w1": {"rate": 3}},
            "topologies": {"chor": {"kind": "choreography", "broker": broker}},
        }
    )


def test_a_timed_out_consumers_retry_survives_a_crash_of_another_replica() -> None:
    """A log consumer's retry after a timeout queues for any replica of the service; if that
    replica crashes, the consumer's call failed (and is retried), its message is not lost."""
    _ends(
        {
            "name": "retry-crash",
            "duration": 60,
            "drain": 3000,
            "services": {
                "a": {"latency": exp(0.05), "replicas": 2, "timeout": 0.05, "retry": {"initial": 0}}
            },
            "workflows": {"w1": {"steps": ["a"]}},
            "load": {"w1": {"rate": 5}},
            "faults": [{"type": "crash", "target": "a", "mtbf": exp(3), "mttr": exp(1)}],
            "topologies": {"chor": {"kind": "choreography"}},
        }
    )


def test_a_redelivery_of_a_failed_workflows_event_still_being_worked_on_is_not_skipped() -> None:
    """A deadline fails the workflow while its event is in work; the lease lapses and the event
    comes again. Skipping it would settle the event, and the first delivery's outcome would
    never reach the workflow, which would wait for it for ever."""
    _ends(
        {
            "name": "redelivery",
            "duration": 10,
            "drain": 3000,
            "services": {"b": {"latency": exp(0.2)}},
            "workflows": {"w1": {"steps": ["b"], "deadline": 0.3}},
            "load": {"w1": {"rate": 20}},
            "topologies": {
                "chor": {"kind": "choreography", "broker": {"kind": "queue", "visibility_timeout": 0.2}}
            },
        }
    )


def test_a_start_hook_that_offers_work_does_not_take_the_same_server() -> None:
    """A retry starting after its lease ran out redelivers the message from its start hook, at
    once: the server it starts on must already be taken, or the redelivery takes it too."""
    data = {
        "name": "hook",
        "seed": 1,
        "duration": 20,
        "drain": 3000,
        "services": {"a": {"latency": exp(0.02), "error_probability": 0.5, "retry": {"max_attempts": 5}}},
        "workflows": {"w2": {"steps": ["a"]}},
        "load": {"w2": {"rate": 30}},
        "faults": [{"type": "crash", "target": "a", "mtbf": exp(30), "mttr": exp(0.2)}],
        "topologies": {"c": {"kind": "choreography", "broker": QUEUE_LEASE}},
    }
    _ends(data)


def test_a_workflow_that_ends_at_its_arrival_does_not_end_before_it() -> None:
    """The clock may stand a rounding step short of an arrival instant; a workflow that ends in
    no time must not end before it arrived."""
    result = _ends(
        {
            "name": "instant",
            "seed": 5448,
            "duration": 120,
            "drain": 3000,
            "services": {
                "a": {"latency": exp(0.02)},
                "b": {"latency": exp(0.05)},
                "c": {"latency": exp(0.02)},
            },
            "workflows": {"w1": {"steps": [{"parallel": ["b", "a"]}, "c"]}},
            "load": {"w1": {"profile": "diurnal", "peak": 5, "trough": 2, "period": 60}},
            "topologies": {"hyb": {"kind": "hybrid", "hybrid": {"asynchronous": ["a", "b", "c"]}}},
        }
    )
    req = result.requests
    assert (req["completion"] >= req["arrival"]).all()


def test_a_producers_second_send_is_never_a_lost_event() -> None:
    """A producer that is not idempotent sends again what the broker could not acknowledge; if
    its replica has crashed meanwhile, that second send dies with it, unnoticed: the first got
    through. Lost events and stalled workflows are those of the first sends, with or without."""

    def data(idempotent: bool) -> dict[str, Any]:
        return {
            "name": "copies",
            "seed": 1,
            "duration": 300,
            "drain": 3000,
            "services": {
                "a": {"latency": exp(0.01), "replicas": 2, "stuck_after": 5},
                "b": {"latency": 10.0, "replicas": 200},
            },
            "workflows": {"w": {"steps": ["a", "b"]}},
            "load": {"w": {"rate": 5}},
            "faults": [{"type": "crash", "target": "a", "mtbf": exp(3), "mttr": 0.2}]
            + [{"type": "outage", "target": "broker", "at": t, "duration": 0.5} for t in range(10, 290, 10)],
            "topologies": {
                "c": {
                    "kind": "choreography",
                    "broker": {"partitions": 256, "publish_latency": 0.3, "idempotent_producer": idempotent},
                }
            },
        }

    safe = _ends(data(True)).summary.iloc[0]
    loose = _ends(data(False)).summary.iloc[0]
    assert loose["republished"] > 0
    assert loose["lost_events"] == safe["lost_events"] > 0
    assert loose["run_inconsistent"] == safe["run_inconsistent"]


# --- what a service can do at once -----------------------------------------------------------------


def _components(data: dict[str, Any]) -> Any:
    result = _ends(data)
    return result.components.set_index(["topology", "name"])


@pytest.mark.parametrize(
    "broker",
    [{"kind": "log", "partitions": 12}, {"kind": "queue"}, {"kind": "queue", "prefetch": 4}],
    ids=["log", "queue", "queue-prefetch"],
)
def test_work_a_consumer_gave_up_on_keeps_its_server(broker: dict[str, Any]) -> None:
    """A consumer's attempt past the service's timeout fails and is retried, but its work goes
    on and holds a server: the group must not start more work than the servers left (the log
    group once counted the worker free, and the service worked on more than its servers)."""
    comps = _components(
        {
            "name": "util",
            "duration": 60,
            "services": {
                "s1": {
                    "latency": 0.25,
                    "concurrency": 2,
                    "timeout": 0.05,
                    "retry": {"max_attempts": 3, "initial": 0.01, "jitter": "none"},
                }
            },
            "workflows": {"w0": {"steps": ["s1"]}},
            "load": {"w0": {"rate": 4}},
            "topologies": {"choreography": {"broker": broker}, "orchestration": {}},
        }
    )
    for topology in ("choreography", "orchestration"):
        row = comps.loc[(topology, "s1")]
        assert row["mean_busy"] <= 2 + 1e-9
        assert row["utilization"] <= 1 + 1e-9


def test_a_service_the_engine_also_calls_shares_its_servers_with_its_group() -> None:
    """A hybrid's service called by the engine (an orchestrated workflow) and read by a consumer
    group (a choreographed one): its utilization is its busy servers over all its servers, not
    over what the group's one partition allows."""
    comps = _components(
        {
            "name": "hybutil",
            "duration": 60,
            "services": {"s1": {"latency": 0.1, "replicas": 4, "concurrency": 4}},
            "workflows": {"a": {"steps": ["s1"]}, "b": {"steps": ["s1"]}},
            "load": {"a": {"rate": 40}, "b": {"rate": 2}},
            "topologies": {
                "hybrid": {
                    "broker": {"kind": "log", "partitions": 1},
                    "hybrid": {"coordination": {"a": "orchestration", "b": "choreography"}},
                }
            },
        }
    )
    row = comps.loc[("hybrid", "s1")]
    assert row["concurrency"] == 1  # (the group's own bound)
    assert row["utilization"] == pytest.approx(row["mean_busy"] / 16)
    assert 0.2 < row["utilization"] < 0.35  # about 42 × 0.1 / 16


def test_a_compensating_service_reads_two_topics() -> None:
    """A service with a compensation reads its step events and the failure events, each topic
    with its own partitions: on one partition per topic it may work on two events at once,
    and its utilization is over both."""
    comps = _components(
        {
            "name": "comp",
            "duration": 60,
            "services": {
                "s0": {
                    "latency": 0.05,
                    "concurrency": 16,
                    "error_probability": 0.2,
                    "compensation": {"latency": 0.05},
                },
                "s1": {"latency": 0.01, "concurrency": 16},
            },
            "workflows": {"w": {"steps": ["s0", "s0", "s0", "s1"]}},
            "load": {"w": {"rate": 9}},
            "topologies": {"choreography": {"broker": {"kind": "log", "partitions": 1}}},
        }
    )
    s0, s1 = comps.loc[("choreography", "s0")], comps.loc[("choreography", "s1")]
    assert s0["concurrency"] == 2 and s1["concurrency"] == 1
    assert s0["mean_busy"] > 1  # (step and failure events at once)
    assert s0["utilization"] == pytest.approx(s0["mean_busy"] / 2)
    assert s0["hottest_partition_utilization"] <= 1 + 1e-9


def test_a_full_queue_shared_with_the_engine_drops_only_messages() -> None:
    """A hybrid whose service is called by the engine and reads a bounded queue: a full queue
    dead-letters its oldest message; the engine's calls waiting at the same service are neither
    counted against the queue's length nor dropped (this once raised)."""
    result = _ends(
        {
            "name": "drop",
            "duration": 20,
            "services": {"s": {"latency": 0.2}},
            "workflows": {"a": {"steps": ["s"]}, "b": {"steps": ["s"]}},
            "load": {"a": {"rate": 4}, "b": {"rate": 4}},
            "topologies": {
                "hybrid": {
                    "broker": {"kind": "queue", "max_length": 1, "overflow": "dead_letter"},
                    "hybrid": {"coordination": {"b": "choreography"}},
                }
            },
        }
    )
    assert result.components.set_index("name").loc["s", "dead_lettered"] > 0
    workflows = result.workflows.set_index("workflow")
    assert workflows.loc["a", "failed"] == 0  # the engine's calls all waited their turn
    assert workflows.loc["b", "failed"] > 0


def test_a_resolved_scenario_keeps_unlimited_retries() -> None:
    """``max_attempts: null`` (unlimited) differs from the default (3): a resolved scenario, which
    leaves nulls out, must still write it, or running the resolved file would not repeat the run."""
    data = {
        "name": "unlimited",
        "duration": 10,
        "services": {"s1": {"latency": 0.02, "error_probability": 0.5, "retry": {"max_attempts": None}}},
        "workflows": {"w": {"steps": ["s1"]}},
        "load": {"w": {"rate": 5}},
        "topologies": {"orchestration": {}},
    }
    sc = sim.scenario_from_dict(data)
    resolved = sc.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert resolved["services"]["s1"]["retry"]["max_attempts"] is None
    assert sim.scenario_from_dict(resolved) == sc


def _most_in_service(started: Any, ended: Any) -> int:
    """The most requests a station served at once, from its visits' start and end instants."""
    import numpy as np

    served = ~np.isnan(started) & (ended > started)
    instants = np.concatenate([started[served], ended[served]])
    steps = np.concatenate([np.ones(served.sum(), dtype=int), -np.ones(served.sum(), dtype=int)])
    order = np.lexsort((steps, instants))  # (at one instant, ends before starts)
    return int(np.cumsum(steps[order]).max(initial=0))


@pytest.mark.parametrize("broker", [{"kind": "log", "partitions": 4}, {"kind": "queue", "prefetch": 1}])
def test_a_consumer_waits_for_a_server_the_engine_holds(broker: dict[str, Any]) -> None:
    """A hybrid's service that the engine calls and a consumer group reads: a consumer that takes
    a message while the engine's calls hold every server waits for one, in turn, instead of
    working on more requests than the service has servers."""
    from sim.running.simulate import Task, simulate

    sc = sim.scenario_from_dict(
        {
            "name": "shared",
            "duration": 60,
            "services": {"s1": {"latency": exp(0.2)}},
            "workflows": {"a": {"steps": ["s1"]}, "b": {"steps": ["s1"]}},
            "load": {"a": {"rate": 1.5}, "b": {"rate": 1.5}},
            "topologies": {
                "hybrid": {"broker": broker, "hybrid": {"coordination": {"b": "choreography"}}},
            },
        }
    )
    run = simulate(Task(sc, "hybrid"))
    (s1,) = [c for c in run.components if c.name == "s1"]
    assert _most_in_service(s1.started, s1.ended) == 1


@pytest.mark.parametrize("election", [0, 0.5])
def test_no_election_while_every_broker_node_is_down(election: float) -> None:
    """With every node of the broker down there is no node to lead a partition: the election
    waits for one to come back (an immediate election once re-ran itself forever, at one
    instant), and the events published meanwhile go through after it."""
    result = _ends(
        {
            "name": "elect",
            "duration": 30,
            "services": {"s": {"latency": 0.01}},
            "workflows": {"w": {"steps": ["s"]}},
            "load": {"w": {"rate": 5}},
            "topologies": {
                "choreography": {"broker": {"kind": "log", "brokers": 1, "leader_election": election}}
            },
            "faults": [{"type": "capacity_loss", "target": "broker", "at": 10, "duration": 5, "replicas": 1}],
        }
    )
    assert (result.summary["completed"] == result.summary["arrived"]).all()


def test_a_fault_from_the_last_instant_of_arrivals() -> None:
    """A partition that begins as arrivals stop leaves an impact window of no length: nothing
    to compare there, and no component counted as affected (its statistics once divided by the
    window's zero length)."""
    result = _ends(
        {
            "name": "fault-at-end",
            "duration": 10,
            "warmup": 0,
            "services": {"s0": {"latency": 0.01}},
            "workflows": {"wf": {"steps": ["s0"]}},
            "load": {"wf": {"rate": 5}},
            "topologies": {"choreography": {"broker": {"kind": "queue"}}},
            "faults": [
                {"type": "partition", "between": ["broker", "s0"], "at": 10, "duration": 5, "mode": "hold"}
            ],
        }
    )
    assert result.blast_radius["affected_component_count"].tolist() == [0]


def test_a_root_span_says_how_its_instance_finally_ended() -> None:
    """An attempt the engine gave up on at its timeout succeeds after its workflow failed: the
    instance ends inconsistent, and its trace's root span says so (it once kept `failed`)."""
    result = sim.run(
        sim.scenario_from_dict(
            {
                "name": "trace-late-effect",
                "seed": 7,
                "duration": 20,
                "warmup": 0,
                "services": {
                    "s1": {
                        "latency": {"dist": "uniform", "low": 0.1, "high": 0.2},
                        "error_probability": 0.3,
                        "timeout": 0.05,
                        "retry": {"max_attempts": 3, "initial": 0.1},
                    }
                },
                "workflows": {"wf": {"steps": ["s1"]}},
                "load": {"wf": {"arrival": "deterministic", "rate": 5}},
                "topologies": {"orchestration": {}},
            }
        ),
        trace=5,
    )
    roots = result.spans[result.spans["parent"] == -1].set_index("instance")["status"]
    statuses = result.requests.set_index("id")["status"].astype(str)  # (one workflow: id = instance)
    assert (roots == statuses.loc[roots.index]).all()
    assert (roots == "inconsistent").any()
