"""Calibration from a real system: a scenario skeleton read from OpenTelemetry traces.

``sim calibrate TRACES`` reads traces in OTLP/JSON (what ``sim run --trace`` writes, and what an
OpenTelemetry collector's file exporter writes) or Jaeger's JSON (its UI's download, its query
API) and writes a scenario: one service per traced service, its latency the durations of its
server spans (resampled, or a fitted lognormal or gamma); per workflow (the root span's name), the
steps in the order its services' spans start, spans that overlap in time forming a parallel group;
the arrival rate of each workflow (roots per second over the traced period, divided by the
share of workflows traced); and each service's replicas, the most of its spans open at once (a
lower bound of its capacity, one server a replica).

What a trace cannot tell is left to the user: a server span's duration includes the wait inside
the service, so at high utilization it overstates the service time (calibrate from a quiet
period, or lower the latencies); a branch of several services in sequence inside a parallel group
is read as that many parallel services; the coordination (engine, broker) is not inferred, and
the skeleton has one plain orchestration topology to start from.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

COORDINATORS = frozenset({"client", "orchestrator", "broker"})
"""Service names of the spans ``sim run --trace`` writes for other than services' work."""


@dataclass
class Span:
    """One span, as calibration needs it."""

    trace: str
    service: str
    name: str
    start: float
    end: float
    root: bool
    index: int | None = None
    """The instance's number within its workflow, when the trace says (``sim run --trace``
    writes ``correlation_id: <workflow>-<n>``): sampled traces then still give the rate."""


@dataclass
class Calibration:
    """What calibration read: per workflow its step lists (one per trace) and root start times,
    per service its span durations."""

    steps: dict[str, list[tuple[tuple[str, ...], ...]]] = field(default_factory=lambda: defaultdict(list))
    starts: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    indices: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    durations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    intervals: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))


def read_traces(path: str | Path, topology: str | None = None) -> list[Span]:
    """The spans of a trace file, OTLP/JSON or Jaeger JSON (``topology``: only those of that
    ``deployment.topology``, for a file of several topologies)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict) and "resourceSpans" in data:
        return list(_otlp(data, topology))
    if isinstance(data, dict) and "data" in data:
        return list(_jaeger(data))
    raise ValueError(f"{path}: neither OTLP/JSON (resourceSpans) nor Jaeger JSON (data)")


def _value(attribute: dict[str, Any]) -> Any:
    value = attribute.get("value", {})
    return next(iter(value.values()), None) if isinstance(value, dict) else None


def _otlp(data: dict[str, Any], topology: str | None) -> Iterable[Span]:
    for resource in data["resourceSpans"]:
        attrs = {a["key"]: _value(a) for a in resource.get("resource", {}).get("attributes", [])}
        if topology is not None and attrs.get("deployment.topology") not in (None, topology):
            continue
        service = str(attrs.get("service.name", "unknown"))
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                tags = {a["key"]: _value(a) for a in span.get("attributes", [])}
                number = str(tags.get("correlation_id", "")).rpartition("-")[2]
                yield Span(
                    trace=str(span["traceId"]),
                    service=service,
                    name=str(span.get("name", "")),
                    start=int(span["startTimeUnixNano"]) / 1e9,
                    end=int(span["endTimeUnixNano"]) / 1e9,
                    root=not span.get("parentSpanId"),
                    index=int(number) if number.isdigit() else None,
                )


def _jaeger(data: dict[str, Any]) -> Iterable[Span]:
    for trace in data["data"]:
        processes = {k: v.get("serviceName", "unknown") for k, v in trace.get("processes", {}).items()}
        for span in trace.get("spans", []):
            start = span["startTime"] / 1e6
            yield Span(
                trace=str(span.get("traceID", trace.get("traceID"))),
                service=str(processes.get(span.get("processID"), "unknown")),
                name=str(span.get("operationName", "")),
                start=start,
                end=start + span["duration"] / 1e6,
                root=not any(r.get("refType") == "CHILD_OF" for r in span.get("references", [])),
            )


def _stages(spans: list[Span]) -> tuple[tuple[str, ...], ...]:
    """The services of one trace in stages: spans that overlap in time form one stage."""
    stages: list[list[Span]] = []
    end = -math.inf
    for span in sorted(spans, key=lambda s: (s.start, s.service)):
        if stages and span.start < end:
            stages[-1].append(span)
            end = max(end, span.end)
        else:
            stages.append([span])
            end = span.end
    return tuple(tuple(sorted(s.service for s in stage)) for stage in stages)


def calibrate(spans: Iterable[Span]) -> Calibration:
    """Group spans by trace: the root names the workflow; the services' server spans (the
    ``handle`` spans of ``sim run --trace``, or every span of a service outside the coordinators
    that has no child of its own service) give the steps and the durations."""
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace].append(span)
    out = Calibration()
    for trace_spans in by_trace.values():
        roots = [s for s in trace_spans if s.root]
        if not roots:
            continue
        root = min(roots, key=lambda s: s.start)
        workflow = root.name.removeprefix("workflow ").strip() or "workflow"
        work = [s for s in trace_spans if s is not root and s.service not in COORDINATORS]
        work = [s for s in work if s.name == "handle"] or work  # our own traces: the work itself
        if not work:
            continue
        out.steps[workflow].append(_stages(work))
        out.starts[workflow].append(root.start)
        if root.index is not None:
            out.indices[workflow].append(root.index)
        for s in work:
            out.durations[s.service].append(max(s.end - s.start, 0.0))
            out.intervals[s.service].append((s.start, s.end))
    return out


def peak_concurrency(intervals: list[tuple[float, float]]) -> int:
    """The most of ``intervals`` open at once (a request that ends as another starts is not
    counted twice)."""
    events = sorted(
        [(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda e: (e[0], e[1])
    )
    open_, peak = 0, 0
    for _, step in events:
        open_ += step
        peak = max(peak, open_)
    return peak


def _latency(durations: list[float], fit: str) -> dict[str, Any]:
    values = np.asarray(durations, dtype=float)
    if fit == "lognormal":
        positive = values[values > 0]
        logs = np.log(positive)
        return {
            "dist": "lognormal",
            "median": float(np.exp(logs.mean())),
            "sigma": float(max(logs.std(), 1e-6)),
        }
    if fit == "gamma":
        mean = float(values.mean())
        cv = float(values.std() / mean) if mean > 0 else 1.0
        return {"dist": "gamma", "mean": mean, "cv": min(max(cv, 0.001), 100.0)}
    return {"dist": "empirical", "samples": [round(float(v), 9) for v in values]}


def scenario_skeleton(
    cal: Calibration, name: str = "calibrated", fit: str = "empirical", sampled: float = 1.0
) -> dict[str, Any]:
    """A scenario (plain data, ready for YAML) from a calibration: ``sampled`` is the share of
    workflows the traces hold (their rate is divided by it)."""
    if not cal.steps:
        raise ValueError("no workflow found in the traces (no root span with a service's span under it)")
    workflows, load = {}, {}
    first, last = math.inf, -math.inf
    for workflow, variants in cal.steps.items():
        shape = Counter(variants).most_common(1)[0][0]
        steps: list[Any] = [stage[0] if len(stage) == 1 else {"parallel": list(stage)} for stage in shape]
        workflows[workflow] = {"steps": steps}
        starts = sorted(cal.starts[workflow])
        first, last = min(first, starts[0]), max(last, starts[-1])
        span = starts[-1] - starts[0]
        numbers = cal.indices.get(workflow, [])
        if len(numbers) == len(starts) and len(starts) > 1 and span > 0:
            # numbered instances: the arrivals between the first and the last traced one
            rate = (max(numbers) - min(numbers)) / span
        elif len(starts) > 1 and span > 0:
            # n arrivals over their span: n − 1 gaps
            rate = (len(starts) - 1) / span / sampled
        else:
            rate = 1.0  # one arrival: no rate to read
        load[workflow] = {"arrival": "poisson", "rate": rate}
    services = {
        svc: {
            "latency": _latency(values, fit),
            "replicas": max(1, peak_concurrency(cal.intervals[svc])),
        }
        for svc, values in sorted(cal.durations.items())
    }
    duration = max(last - first, 1.0)
    return {
        "name": name,
        "description": "Calibrated from traces: services' latencies from their spans, workflows' "
        "steps from the spans' order and overlap, rates from the roots, replicas from the most requests in "
        "service at once.",
        "seed": 1,
        "duration": round(duration, 6),
        "services": services,
        "workflows": workflows,
        "load": load,
        "topologies": {"orchestration": {}},
    }
