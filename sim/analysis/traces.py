"""Traces of sampled workflow instances: exports and observability figures (the waterfall plot is
in :mod:`sim.analysis.plots.traces`).

Spans come from ``sim run --trace N`` (a frame with topology, replication, workflow, instance,
span, parent, component, operation, start, end, status). They are exported as

* Chrome Trace Event JSON (open in Perfetto or chrome://tracing): one process per topology, one
  thread per component, complete events (``ph: "X"``) in microseconds;
* OTLP/JSON (the OpenTelemetry protocol's JSON encoding, importable by trace backends): one
  resource per (topology, component), trace ids derived from (topology, replication, workflow,
  instance), times in nanoseconds since the start of the simulation.

Observability figures, per topology and traced workflow:

* ``components_touched``: distinct components that took part in the workflow;
* ``log_sources``: components whose logs a developer must read to reconstruct the workflow's
  flow. The engine's history records every step it drives, so services called by an orchestrator
  do not count; in choreography every service that handled an event, and the broker, do;
* ``engine_fan_out``: distinct services the orchestrator calls directly (coupling of the engine);
  ``event_hops``: events passed through the broker.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

SPAN_COLUMNS = [
    "topology",
    "replication",
    "workflow",
    "instance",
    "span",
    "parent",
    "component",
    "operation",
    "start",
    "end",
    "status",
]


def _hex(text: str, digits: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:digits]


def _trace_key(row: Any) -> str:
    return f"{row.topology}/{row.replication}/{row.workflow}/{row.instance}"


def chrome_trace(spans: pd.DataFrame) -> dict[str, Any]:
    """The spans as a Chrome Trace Event document."""
    events: list[dict[str, Any]] = []
    topologies = list(dict.fromkeys(spans["topology"]))
    threads: dict[tuple[str, str], int] = {}
    for pid, topology in enumerate(topologies, start=1):
        events.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": topology}})
        for component in dict.fromkeys(spans.loc[spans["topology"] == topology, "component"]):
            tid = threads.setdefault((topology, component), len(threads) + 1)
            events.append(
                {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": component}}
            )
    for row in spans.itertuples(index=False):
        pid = topologies.index(row.topology) + 1
        events.append(
            {
                "name": row.operation,
                "cat": row.component,
                "ph": "X",
                "ts": round(row.start * 1e6, 3),
                "dur": round((row.end - row.start) * 1e6, 3),
                "pid": pid,
                "tid": threads[(row.topology, row.component)],
                "args": {
                    "correlation_id": f"{row.workflow}-{row.instance}",
                    "replication": int(row.replication),
                    "span": int(row.span),
                    "parent": int(row.parent),
                    "status": row.status,
                },
            }
        )
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def otlp_trace(spans: pd.DataFrame) -> dict[str, Any]:
    """The spans as an OTLP/JSON ``ExportTraceServiceRequest``."""
    resources: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in spans.itertuples(index=False):
        key = _trace_key(row)
        span: dict[str, Any] = {
            "traceId": _hex(key, 32),
            "spanId": _hex(f"{key}/{row.span}", 16),
            "name": row.operation,
            "kind": 1,
            "startTimeUnixNano": str(round(row.start * 1e9)),
            "endTimeUnixNano": str(round(row.end * 1e9)),
            "attributes": [
                {"key": "workflow", "value": {"stringValue": str(row.workflow)}},
                {"key": "correlation_id", "value": {"stringValue": f"{row.workflow}-{row.instance}"}},
                {"key": "replication", "value": {"intValue": str(int(row.replication))}},
            ],
            "status": {"code": 1 if row.status in ("ok", "completed") else 2},
        }
        if row.parent >= 0:
            span["parentSpanId"] = _hex(f"{key}/{row.parent}", 16)
        resources.setdefault((row.topology, row.component), []).append(span)
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": component}},
                        {"key": "deployment.topology", "value": {"stringValue": topology}},
                    ]
                },
                "scopeSpans": [{"scope": {"name": "orchestration-sim"}, "spans": items}],
            }
            for (topology, component), items in resources.items()
        ]
    }


def observability(spans: pd.DataFrame) -> pd.DataFrame:
    """Per topology: mean components touched, log sources, engine fan-out and event hops over its
    traced workflows (definitions in the module docstring)."""
    rows = []
    for (topology, replication, workflow, instance), trace in spans.groupby(
        ["topology", "replication", "workflow", "instance"], sort=False
    ):
        parts = trace[trace["component"] != "client"]
        engine_ops = parts.loc[parts["component"] == "orchestrator", "operation"]
        called = {op.split()[1] for op in engine_ops if op.startswith(("call ", "undo "))}
        components = set(parts["component"])
        rows.append(
            {
                "topology": topology,
                "replication": replication,
                "workflow": workflow,
                "instance": instance,
                "components_touched": len(components),
                "log_sources": len(components - called),
                "engine_fan_out": len(called),
                "event_hops": int(parts["operation"].str.startswith("publish").sum()),
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return (
        frame.groupby("topology", sort=False)[
            ["components_touched", "log_sources", "engine_fan_out", "event_hops"]
        ]
        .mean()
        .reset_index()
    )
