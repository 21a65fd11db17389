"""Tracing: the same sampled instances everywhere, valid Chrome and OTLP exports, observability."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

import sim
from sim.analysis.plots import waterfall
from sim.analysis.traces import chrome_trace, observability, otlp_trace

SCENARIO = {
    "duration": 60,
    "warmup": 10,
    "network": {"latency": {"dist": "exponential", "mean": 0.001}},
    "services": {
        "a": {"latency": {"dist": "exponential", "mean": 0.05}},
        "b": {"latency": {"dist": "exponential", "mean": 0.03}},
        "c": {"latency": {"dist": "exponential", "mean": 0.02}},
    },
    "workflows": {"wf": {"steps": ["a", {"parallel": ["b", "c"]}]}},
    "load": {"wf": {"rate": 5}},
    "topologies": {
        "orchestration": {"orchestrator": {"shard_concurrency": 1000, "decision_cpu": 0.004}},
        "choreography": {"broker": {"publish_latency": 0.002}},
        "hybrid": {"asynchronous": ["c"]},
    },
}


@pytest.fixture(scope="module")
def traced() -> sim.RunResult:
    return sim.run(sim.scenario_from_dict(SCENARIO), trace=4)


def test_the_same_instances_are_traced_in_every_topology(traced: sim.RunResult) -> None:
    roots = traced.spans[traced.spans["span"] == 0]
    per_topology = roots.groupby("topology")["instance"].apply(lambda s: sorted(s))
    assert len(per_topology) == 3
    assert all(ids == per_topology.iloc[0] for ids in per_topology)
    assert len(per_topology.iloc[0]) == 4
    arrivals = traced.requests.set_index(["topology", "id"])["arrival"]
    assert all(arrivals[("orchestration", i)] >= 10 for i in per_topology.iloc[0])


def test_tracing_changes_no_result(traced: sim.RunResult) -> None:
    plain = sim.run(sim.scenario_from_dict(SCENARIO))
    pd.testing.assert_frame_equal(plain.requests, traced.requests)


def test_children_lie_inside_their_workflow(traced: sim.RunResult) -> None:
    for (topology, _instance), trace in traced.spans.groupby(["topology", "instance"]):
        root = trace[trace["span"] == 0].iloc[0]
        children = trace[trace["span"] != 0]
        assert (children["parent"] == 0).all()
        assert (children["end"] >= children["start"]).all()
        assert (children["start"] >= root["start"]).all()
        synchronous = children[~children["operation"].str.contains("async")]
        assert (synchronous["end"] <= root["end"] + 1e-9).all(), topology
        assert children["span"].is_unique


def test_chrome_trace_is_valid(traced: sim.RunResult) -> None:
    doc = json.loads(json.dumps(chrome_trace(traced.spans)))
    events = doc["traceEvents"]
    complete = [e for e in events if e["ph"] == "X"]
    assert len(complete) == len(traced.spans)
    assert all(e["dur"] >= 0 and e["ts"] >= 0 and isinstance(e["tid"], int) for e in complete)
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert names == {"orchestration", "choreography", "hybrid"}


def test_otlp_trace_is_valid_with_consistent_parents(traced: sim.RunResult) -> None:
    doc = json.loads(json.dumps(otlp_trace(traced.spans)))
    spans = [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert len(spans) == len(traced.spans)
    by_id = {(s["traceId"], s["spanId"]): s for s in spans}
    for s in spans:
        assert re.fullmatch(r"[0-9a-f]{32}", s["traceId"]) and re.fullmatch(r"[0-9a-f]{16}", s["spanId"])
        assert int(s["startTimeUnixNano"]) <= int(s["endTimeUnixNano"])
        if "parentSpanId" in s:
            parent = by_id[(s["traceId"], s["parentSpanId"])]
            assert int(parent["startTimeUnixNano"]) <= int(s["startTimeUnixNano"])
    services = {
        a["value"]["stringValue"]
        for rs in doc["resourceSpans"]
        for a in rs["resource"]["attributes"]
        if a["key"] == "service.name"
    }
    assert {"orchestrator", "broker", "a", "b", "c"} <= services


def test_observability_figures(traced: sim.RunResult) -> None:
    obs = observability(traced.spans).set_index("topology")
    # The engine's history holds the whole flow; in choreography every service and the broker do.
    assert obs.loc["orchestration", "log_sources"] == 1
    assert obs.loc["orchestration", "engine_fan_out"] == 3
    assert obs.loc["choreography", "log_sources"] == 4
    assert obs.loc["choreography", "engine_fan_out"] == 0
    assert obs.loc["hybrid", "engine_fan_out"] == 2


def test_run_folder_holds_traces_and_reads_them_back(traced: sim.RunResult, tmp_path) -> None:
    folder = traced.save(tmp_path / "run", plots=False)
    assert (folder / "traces" / "chrome.json").exists() and (folder / "traces" / "otlp.json").exists()
    back = sim.read_run(folder)
    pd.testing.assert_frame_equal(back.spans, traced.spans)
    fig = waterfall(traced.spans)
    assert len(fig.axes) == 3
