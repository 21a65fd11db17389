"""Statistics from raw run records. Definitions (also in the README):

* **measured window**: ``[warmup, duration)``, of length T.
* **arrived / completed / failed / in_flight**: workflow instances that arrived in the measured
  window, by how they ended (in flight: not finished when the run stopped).
* **throughput**: instances completed (successfully) with a completion instant inside the measured
  window, per second of T.
* **latency**: completion − arrival of the completed instances that arrived in the window.
* **messages per workflow**: network messages sent in the whole run (client → coordinator,
  requests, replies, publishes, deliveries) divided by the instances that arrived in the run.
* per component, over the window: **utilization** = time-average busy servers / servers (empty
  when the component has unlimited servers); **mean_busy** = time-average busy servers;
  **mean_queue** / **max_queue** = time-average / largest number of requests waiting (not in
  service); **mean_wait** / **p99_wait** = waiting time of the requests that arrived in the window
  and started service; **handled** = services that ended in the window; **rejected** = requests
  refused by a full queue in the window; **errors** = services that ended in an error in the window.
* per consumer group (a service reading a broker), over the window: **lag_mean** / **lag_max** =
  time-average / largest number of its messages committed to its subscription and not yet
  processed (Kafka's consumer lag: log end offset minus committed offset; a queue's ready plus
  in-flight messages); **concurrency** = what it can process at once, min(servers, topics ×
  partitions × max_in_flight) for a log (two topics for a service that compensates), and its
  **utilization** is mean_busy / concurrency (mean_busy / servers for a hybrid's service that
  the engine calls too; above 1 when work a consumer gave up on at its timeout goes on, holding
  servers but no partition);
  **hottest_partition_utilization** = the busiest partition's share of time spent processing
  (from a message's start to its commit), of its max_in_flight; per partition the same lag and
  utilization, and the partition's share of the messages (``partitions.csv``).
* **effects** (the effect ledger, :mod:`sim.model.effects`), of the instances that arrived in
  the window, per topology and per service: **effects** = steps that took effect (first
  applications), **duplicate_effects** = repeats applied again by a service that is not
  idempotent, **absorbed_effects** = repeats an idempotent service absorbed, **undone_effects**
  = applications undone by compensations, **orphan_effects** = applications still standing at
  the end of the run in workflows that ended without completing (not those still in flight).
* **per workflow**: the figures above that are about instances (outcomes, success rate,
  throughput, latency, effects, inconsistency windows) of one workflow's instances alone, computed
  by the same function as the topology's (:func:`request_figures`), so that arrivals, outcomes and
  throughput add up over the workflows to the topology's.
* **bottleneck**: the component with the highest utilization (an engine: its busiest shard's; a
  consumer group: its busiest partition's, if higher); among components within 0.1 % of
  it, the one with the longest mean queue. Unlimited and idle components are not candidates, and
  when no component was busy at all (every service time zero) there is none.

Time-weighted quantities (utilization, queue length) are kept apart from per-request tallies
(waits, latencies), as in salabim's monitors. This module does not import the simulation engine.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict

import numpy as np
import pandas as pd

from sim.analysis.chunked import LevelPeak, in_order, quantile
from sim.analysis.costs import cost_figures
from sim.analysis.replicas import autoscaled_hours, level
from sim.model.outcomes import COMPLETED, IN_FLIGHT, STATUS_NAMES
from sim.model.records import ComponentRecord, GroupRecord, TopologyRun
from sim.scenario.engine import Orchestrator
from sim.scenario.models import Scenario

LATENCY_QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
OUTCOMES = ["completed", "failed", "compensated", "inconsistent", "lost", "in_flight"]
COUNTERS = [
    "attempts",
    "duplicates",
    "dead_letters",
    "lost_work",
    "publish_failures",
    "lost_events",
    "republished",
    "breaker_openings",
    "bulkhead_refusals",
    "retries_refused",
    "deadlines",
    "decisions",
    "actions",
    "events",
    "store_writes",
    "throttled",
    "schedule_to_start_timeouts",
    "expired",
    "produce_requests",
    "polls",
    "rebalances",
    "scale_ups",
    "scale_downs",
    "shard_moves",
    "client_submissions",
    "abandoned",
    "client_retries",
]


def _window(scenario: Scenario) -> tuple[float, float]:
    """The measured window [warm-up, duration); the warm-up must have been resolved."""
    if scenario.warmup == "auto":
        raise ValueError("warmup: auto must be resolved (sim.analysis.evaluation) before measuring")
    return scenario.warmup, scenario.duration


def _overlap(a: np.ndarray, b: np.ndarray, lo: float, hi: float) -> float:
    """Total length of the intervals [a_i, b_i] inside [lo, hi] (in place on one temporary: a
    long run's components hold tens of millions of intervals)."""
    if a.size == 0:
        return 0.0
    inside = np.minimum(b, hi)
    inside -= np.maximum(a, lo)
    np.clip(inside, 0.0, None, out=inside)
    return float(np.sum(inside))


def _levels(starts: np.ndarray, ends: np.ndarray, lo: float, hi: float) -> tuple[float, int]:
    """Time-average and largest number of the intervals [start, end) open during [lo, hi)."""
    peak = LevelPeak(np.array([lo, hi]))
    peak.add(starts, ends, math.inf)
    return _overlap(starts, ends, lo, hi) / (hi - lo), int(peak.result()[0])


def _lag_chunks(
    g: GroupRecord, end_time: float
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The group's messages a chunk at a time: when each entered the subscription and left it
    (the run's end if it did not), when its processing began, its lane and how it left."""
    for _, entered, left, began, lane, how in g.chunks():
        yield entered, np.where(np.isnan(left), end_time, left), began, lane, how


class _Lag:
    """The lag of a subscription (or of one partition) over a window, fed its messages a
    chunk at a time, in order: its time-average, its largest value and the messages that left
    the window in each way, and the processing time of each of ``lanes`` partitions (else of
    all the messages it is fed): from the start of a message's processing to its commit (a
    retry's backoff holds the partition too)."""

    def __init__(self, lo: float, hi: float, lanes: int = 0) -> None:
        self.lo, self.hi = lo, hi
        self.lanes = lanes
        self.area = 0.0
        self.peak = LevelPeak(np.array([lo, hi]))
        self.left_as = {2: 0, 3: 0}
        self.busy = [0.0] * max(lanes, 1)

    def add(
        self, entered: np.ndarray, left: np.ndarray, began: np.ndarray, lane: np.ndarray, how: np.ndarray
    ) -> None:
        lo, hi = self.lo, self.hi
        self.area += _overlap(entered, left, lo, hi)
        self.peak.add_in_order(entered, left)
        left_in = (left >= lo) & (left < hi)  # (the run's end is never inside the window)
        for code in self.left_as:
            self.left_as[code] += int((left_in & (how == code)).sum())
        begun = ~np.isnan(began)
        for k in range(len(self.busy)):
            mine = (lane == k) & begun if self.lanes else begun
            self.busy[k] += _overlap(began[mine], left[mine], lo, hi)

    def levels(self) -> tuple[float, int]:
        """Time-average and largest lag, once every chunk is in."""
        return self.area / (self.hi - self.lo), int(self.peak.result()[0])


def group_stats(g: GroupRecord, lo: float, hi: float, end_time: float) -> dict[str, object]:
    """Lag and outcomes of a consumer group over the window [lo, hi), and (a log) the
    utilization of its busiest partition."""
    lag = _Lag(lo, hi, g.topics * g.partitions if g.kind == "log" else 0)
    for chunk in _lag_chunks(g, end_time):
        lag.add(*chunk)
    lag_mean, lag_max = lag.levels()
    hottest = math.nan
    if g.kind == "log":
        hottest = max((busy / ((hi - lo) * g.max_in_flight) for busy in lag.busy), default=0.0)
    return {
        "lag_mean": lag_mean,
        "lag_max": lag_max,
        "partitions": g.partitions if g.kind == "log" else pd.NA,
        "concurrency": g.concurrency,
        "hottest_partition_utilization": hottest,
        "dead_lettered": lag.left_as[2],
        "expired": lag.left_as[3],
    }


NO_GROUP: dict[str, object] = {
    "hottest_partition_utilization": math.nan,
    "lag_mean": math.nan,
    "lag_max": pd.NA,
    "partitions": pd.NA,
    "dead_lettered": pd.NA,
    "expired": pd.NA,
}
"""The group columns of a component that reads no broker."""


@dataclasses.dataclass
class Grouped:
    """A component made of parts (an engine's shards) whose visits were written out of memory
    during the run, in part: read part by part, chunk by chunk, never all at once."""

    name: str
    kind: str
    servers: int | None
    parts: list[ComponentRecord]


def component_stats(
    rec: ComponentRecord | Grouped, lo: float, hi: float, end_time: float
) -> dict[str, object]:
    """Statistics of one component over the window [lo, hi) (see the module docstring)."""
    parts = rec.parts if isinstance(rec, Grouped) else [rec]
    return _chunked_stats(rec.name, rec.kind, rec.servers, parts, lo, hi, end_time)


def _chunked_stats(
    name: str,
    kind: str,
    servers: int | None,
    parts: Sequence[ComponentRecord],
    lo: float,
    hi: float,
    end_time: float,
) -> dict[str, object]:
    """:func:`component_stats` of the visits of ``parts``, read a chunk at a time: one chunk
    when they are all in memory, else the chunks of every part in the order of their earliest
    arrival (for the largest queue), the waits' p99 reading them a few times more. Sums are
    added chunk by chunk: they may differ in their last bits from one sum over every visit."""
    span = hi - lo
    sources = ((low, (part, k)) for part in parts for k, low in enumerate(part.chunk_lows()))
    peak = LevelPeak(np.array([lo, hi]))
    queued = busy = blocked = waited = 0.0
    handled = waits = 0
    for (part, k), bound in in_order(sources):
        first, arrived, started, ended = part.chunk(k)
        n = arrived.size
        closes = np.where(np.isnan(started), end_time, started)
        queued += _overlap(arrived, closes, lo, hi)
        peak.add(arrived, closes, bound)
        del closes
        served = _served(part, first, started)
        inside = np.minimum(ended, hi)
        inside -= np.maximum(started, lo)
        np.clip(inside, 0.0, None, out=inside)
        busy += float(np.sum(inside[served]))
        del inside
        handled += int(np.count_nonzero(served & (ended >= lo) & (ended < hi)))
        held = (part.held >= first) & (part.held < first + n)
        blocked += _overlap(part.held_at[held], ended[part.held[held] - first], lo, hi)
        served &= arrived >= lo
        served &= arrived < hi
        wait = started[served] - arrived[served]
        waits += wait.size
        waited += float(np.sum(wait))

    def passes() -> Iterator[np.ndarray]:
        for part in parts:
            for first, arrived, started, _ in part.chunks():
                yield _waits(part, first, arrived, started, lo, hi)

    mean_busy = busy / span
    rejected = np.concatenate([p.rejected for p in parts])
    errors = np.concatenate([p.errors for p in parts])
    return {
        "name": name,
        "kind": kind,
        "servers": servers,
        "utilization": mean_busy / servers if servers else math.nan,
        "blocked": blocked / span / servers if servers else math.nan,
        "mean_busy": mean_busy,
        "mean_queue": queued / span,
        "max_queue": int(peak.result()[0]),
        "mean_wait": waited / waits if waits else math.nan,
        "p99_wait": quantile(passes, 0.99),
        "handled": handled,
        "rejected": int(((rejected >= lo) & (rejected < hi)).sum()),
        "errors": int(((errors >= lo) & (errors < hi)).sum()),
    }


def _within(visits: np.ndarray, first: int, n: int) -> np.ndarray:
    """Of ``visits`` (numbers), the indices of those in the chunk of ``n`` visits from ``first``."""
    return visits[(visits >= first) & (visits < first + n)] - first


def _served(part: ComponentRecord, first: int, started: np.ndarray) -> np.ndarray:
    """Which of a chunk's visits were served (those that left the queue unserved waited, but
    had no service and count no wait)."""
    served = ~np.isnan(started)
    served[_within(part.left, first, started.size)] = False
    return served


def _waits(
    part: ComponentRecord, first: int, arrived: np.ndarray, started: np.ndarray, lo: float, hi: float
) -> np.ndarray:
    """The waits of a chunk's visits that arrived in [lo, hi) and were served."""
    served = _served(part, first, started)
    served &= arrived >= lo
    served &= arrived < hi
    return started[served] - arrived[served]


def combined(name: str, kind: str, parts: Sequence[ComponentRecord]) -> ComponentRecord | Grouped:
    """One record for a component made of parts (an engine's shards): their visits together,
    their servers added up. A single part lends its visits as they are (no copy); parts whose
    visits were written out of memory are kept apart and read a chunk at a time."""
    servers = [p.servers for p in parts]
    total = None if any(s is None for s in servers) else int(sum(s for s in servers if s is not None))
    if len(parts) > 1 and any(p.spilled is not None for p in parts):
        return Grouped(name, kind, total, list(parts))
    if len(parts) == 1:
        (p,) = parts
        return dataclasses.replace(
            p,
            name=name,
            kind=kind,
            group=None,
            rejected=np.sort(p.rejected),
            errors=np.sort(p.errors),
            aborted=np.sort(p.aborted),
            left=p.left.astype(np.int64),
            held=p.held.astype(np.int64),
        )
    offsets = np.cumsum([0] + [p.arrived.size for p in parts[:-1]])
    return ComponentRecord(
        name=name,
        kind=kind,
        servers=total,
        arrived=np.concatenate([p.arrived for p in parts]),
        started=np.concatenate([p.started for p in parts]),
        ended=np.concatenate([p.ended for p in parts]),
        rejected=np.sort(np.concatenate([p.rejected for p in parts])),
        errors=np.sort(np.concatenate([p.errors for p in parts])),
        aborted=np.sort(np.concatenate([p.aborted for p in parts])),
        left=np.concatenate([p.left + o for p, o in zip(parts, offsets, strict=True)]).astype(np.int64),
        held=np.concatenate([p.held + o for p, o in zip(parts, offsets, strict=True)]).astype(np.int64),
        held_at=np.concatenate([p.held_at for p in parts]),
    )


def component_records(run: TopologyRun) -> list[ComponentRecord | Grouped]:
    """The run's components as reported: parts of a group (an engine's shards) combined into one
    record named after the group, in the place of the first part."""
    out: list[ComponentRecord | Grouped] = []
    groups: dict[str, list[ComponentRecord]] = {}
    for rec in run.components:
        if rec.group is None:
            out.append(rec)
            continue
        if rec.group not in groups:
            groups[rec.group] = []
            out.append(rec)  # placeholder, replaced below
        groups[rec.group].append(rec)
    for i, placed in enumerate(out):
        if isinstance(placed, ComponentRecord) and placed.group is not None:
            out[i] = combined(placed.group, GROUP_KINDS.get(placed.kind, placed.kind), groups[placed.group])
    return out


GROUP_KINDS = {"shard": "orchestrator"}
"""The kind of the component a group of parts forms."""


def parts_table(runs: Sequence[TopologyRun], scenario: Scenario) -> pd.DataFrame:
    """One row per (topology, replication, part) of grouped components (an engine's shards):
    the group, the part, and its statistics over the measured window."""
    lo, hi = _window(scenario)
    rows = []
    for run in runs:
        for rec in run.components:
            if rec.group is not None:
                stats = component_stats(rec, lo, hi, run.end_time)
                rows.append(
                    {"topology": run.topology, "replication": run.replication, "group": rec.group, **stats}
                )
    return pd.DataFrame(rows)


EFFECT_KINDS = {"effects": 1, "duplicate_effects": 2, "absorbed_effects": 3, "undone_effects": 4}
"""Per-instance (and per-service) counts of the effect ledger's entries, by kind."""


def _services(run: TopologyRun) -> tuple[list[str], list[tuple[int, int, np.ndarray]]]:
    """The sorted names of the services the workflows call, and per workflow its instances
    (first global index, count) and the code of each step's service into those names."""
    names = sorted({s for w in run.workflows for s in w.steps})
    code = {name: i for i, name in enumerate(names)}
    return names, [
        (w.offset, w.count, np.array([code[s] for s in w.steps], dtype=np.int16)) for w in run.workflows
    ]


def _service_of(gid: np.ndarray, step: np.ndarray, plans: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """The service (a code, see :func:`_services`) of each ledger entry: a code, not a name, per
    entry (a long run has tens of millions)."""
    service = np.empty(gid.size, dtype=np.int16)
    for offset, count, steps in plans:
        mine = (gid >= offset) & (gid < offset + count)
        service[mine] = steps[step[mine]]
    return service


def _effect_columns(run: TopologyRun) -> dict[str, np.ndarray]:
    """Per instance: its entries of each kind, and its applications still standing at the end."""
    total = run.total
    out = {name: np.zeros(total, dtype=np.int32) for name in EFFECT_KINDS}
    for _, gid, _, kind in run.effects.chunks() if run.effects is not None else ():
        for name, code in EFFECT_KINDS.items():
            # (added into the 32-bit counts: one temporary of 64-bit counts at a time)
            found = np.bincount(gid[kind == code], minlength=total)
            np.add(out[name], found, out=out[name], casting="unsafe")
    out["standing_effects"] = out["effects"] + out["duplicate_effects"] - out["undone_effects"]
    return out


def requests_frame(run: TopologyRun) -> pd.DataFrame:
    """One row per workflow instance of a run, in (workflow, id) order."""
    out = run.outcomes
    counts = [w.count for w in run.workflows]
    n = sum(counts)
    # Names as categories (a code per row, not a string): the frame of a long run stays small.
    which = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    workflow = pd.Categorical.from_codes(which, list(dict.fromkeys(w.name for w in run.workflows)))
    ids = np.concatenate([np.arange(c, dtype=np.int64) for c in counts]) if counts else np.empty(0, np.int64)
    services = list(dict.fromkeys(s for w in run.workflows for s in w.steps))
    # Per workflow, the code of the service of each step (and -1, no failure, at the end).
    lookup = [np.array([services.index(s) for s in w.steps] + [-1], dtype=np.int32) for w in run.workflows]
    failed = np.full(n, -1, dtype=np.int32)
    for w, steps, start in zip(run.workflows, lookup, np.cumsum([0, *counts[:-1]]).tolist(), strict=True):
        failed[start : start + w.count] = steps[out.failed_step[start : start + w.count]]
    return pd.DataFrame(
        {
            "topology": pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [run.topology]),
            "replication": np.full(n, run.replication, dtype=np.int32),
            "workflow": workflow,
            "id": ids,
            "arrival": out.arrival,
            "completion": out.completion,
            "status": pd.Categorical.from_codes(
                out.status, [STATUS_NAMES[i] for i in range(len(STATUS_NAMES))]
            ),
            "latency": out.completion - out.arrival,
            "failed_at": pd.Categorical.from_codes(failed, services),
            "inconsistency_start": out.inconsistency_start,
            "inconsistency_end": out.inconsistency_end,
            "async_completion": out.async_completion,
            "async_pending": out.async_pending,
            "async_failures": out.async_failures,
            **_effect_columns(run),
        },
        copy=False,  # the outcome columns are the run's own arrays, not a second copy of them
    )


def spans_frame(runs: Sequence[TopologyRun]) -> pd.DataFrame:
    """The spans of the traced instances of ``runs``, one row each."""
    columns = ["workflow", "instance", "span", "parent", "component", "operation", "start", "end", "status"]
    frames = []
    for run in runs:
        frame = pd.DataFrame([asdict(s) for s in run.spans], columns=columns)
        frame.insert(0, "replication", run.replication)
        frame.insert(0, "topology", run.topology)
        frames.append(frame.sort_values(["workflow", "instance", "start", "span"], kind="stable"))
    if not frames:
        return pd.DataFrame(columns=["topology", "replication", *columns])
    return pd.concat(frames, ignore_index=True)


def components_table(runs: Sequence[TopologyRun], scenario: Scenario) -> pd.DataFrame:
    """One row per (topology, replication, component); an engine's shards form one row, with
    the utilization of its busiest shard beside the mean (``hottest_shard_utilization``)."""
    lo, hi = _window(scenario)
    rows = []
    for run in runs:
        hottest: dict[str, float] = {}
        for rec in run.components:
            if rec.group is not None and rec.servers:
                util = float(component_stats(rec, lo, hi, run.end_time)["utilization"])  # type: ignore[arg-type]
                hottest[rec.group] = max(hottest.get(rec.group, 0.0), util)
        groups = {g.service: g for g in run.groups}
        effects = _service_effects(run, lo, hi)
        for comp in component_records(run):
            group = groups.get(comp.name)
            stats = component_stats(comp, lo, hi, run.end_time)
            replicas = _replicas(run, scenario, comp.name, lo, hi)
            ready = level(run, "ready", comp.name, lo, hi)
            if group is not None:
                grouped = group_stats(group, lo, hi, run.end_time)
            else:
                grouped = {**NO_GROUP, "concurrency": comp.servers if comp.servers is not None else pd.NA}
            busy = float(stats["mean_busy"])  # type: ignore[arg-type]
            if group is not None and not group.shared:
                # A consumer group can do no more at once than its partitions allow.
                concurrency = float(group.concurrency)
                if ready is not None:  # ... nor than its consumers serving on average
                    if group.kind == "log":
                        lanes = group.topics * group.partitions * group.max_in_flight
                        concurrency = min(ready[0] * scenario.services[comp.name].concurrency, lanes)
                    else:
                        concurrency = ready[0] * group.concurrency / group.consumers
                stats["utilization"] = busy / concurrency if concurrency else math.nan
            elif ready is not None and comp.kind == "service" and comp.servers:
                # An autoscaled service's servers are those of its replicas serving on average (a
                # service the engine calls too shares them with its consumer group).
                servers = ready[0] * scenario.services[comp.name].concurrency
                stats["utilization"] = busy / servers if servers else math.nan
            rows.append(
                {
                    "topology": run.topology,
                    "replication": run.replication,
                    **stats,
                    "hottest_shard_utilization": hottest.get(comp.name, math.nan),
                    "replicas_mean": replicas[0],
                    "replicas_max": replicas[1],
                    **_tally_quantiles(run, f"schedule_to_start/{comp.name}", "schedule_to_start", lo, hi),
                    **grouped,
                    **(
                        effects.get(comp.name, dict.fromkeys([*EFFECT_KINDS, "orphan_effects"], 0))
                        if comp.kind == "service"
                        else dict.fromkeys([*EFFECT_KINDS, "orphan_effects"], pd.NA)
                    ),
                }
            )
    frame = pd.DataFrame(rows)
    for column in [*EFFECT_KINDS, "orphan_effects"]:
        frame[column] = frame[column].astype("Int64")
    for column in ("servers", "concurrency", "partitions", "lag_max", "dead_lettered", "expired"):
        frame[column] = frame[column].astype("Int64")
    frame["lag_mean"] = frame["lag_mean"].astype(float)
    return frame


def _replicas(run: TopologyRun, scenario: Scenario, name: str, lo: float, hi: float) -> tuple[float, float]:
    """Time-average and largest number of replicas of a service or of the engine over [lo, hi)
    (running ones, as they are paid for); NaN for other components."""
    found = level(run, "replicas", name, lo, hi)
    if found is not None:
        return found
    if name in scenario.services:
        n = float(scenario.services[name].replicas)
        return n, n
    if name == "orchestrator":
        n = float((scenario.topologies[run.topology].orchestrator or Orchestrator()).replicas)
        return n, n
    return math.nan, math.nan


def _service_effects(run: TopologyRun, lo: float, hi: float) -> dict[str, dict[str, int]]:
    """Per service: the effect ledger's entries of the instances that arrived in [lo, hi), by
    kind, and ``orphan_effects``: their applications still standing at the end of the run in
    workflows that ended without completing."""
    if run.effects is None or run.effects.entries == 0:
        return {}
    names, plans = _services(run)
    arrival, status = run.outcomes.arrival, run.outcomes.status
    in_cohort = (arrival >= lo) & (arrival < hi)
    ended_badly = (status != COMPLETED) & (status != IN_FLIGHT)
    rows: dict[int, dict[str, int]] = {}
    for _, gid, step, kind in run.effects.chunks():
        service = _service_of(gid, step, plans)
        cohort = in_cohort[gid]
        failed = ended_badly[gid]
        sign = np.where((kind == 1) | (kind == 2), 1, np.where(kind == 4, -1, 0)).astype(np.int8)
        for code in np.unique(service[cohort]).tolist():
            mine = cohort & (service == code)
            row = rows.setdefault(code, dict.fromkeys([*EFFECT_KINDS, "orphan_effects"], 0))
            for col, k in EFFECT_KINDS.items():
                row[col] += int(np.count_nonzero(mine & (kind == k)))
            row["orphan_effects"] += int(sign[mine & failed].sum(dtype=np.int64))
    return {names[code]: rows[code] for code in sorted(rows)}


def partitions_table(runs: Sequence[TopologyRun], scenario: Scenario) -> pd.DataFrame:
    """One row per (topology, replication, consumer group of a log, partition): the messages
    committed to the partition in the measured window, their share of the group's, and the
    partition's lag (mean and largest). Partitions of the compensation topic appear when they
    carried messages."""
    lo, hi = _window(scenario)
    rows = []
    for run in runs:
        for g in run.groups:
            if g.kind != "log":
                continue
            n = 2 * g.partitions  # the step events' partitions, then the compensations'
            parts = [_Lag(lo, hi) for _ in range(n)]
            counts = np.zeros(n, dtype=np.int64)  # messages committed in the window
            carried = np.zeros(n, dtype=bool)
            for entered, left, began, lanes, how in _lag_chunks(g, run.end_time):
                in_window = (entered >= lo) & (entered < hi)
                for k, part in enumerate(parts):
                    mine = lanes == k
                    carried[k] |= bool(mine.any())
                    counts[k] += int((mine & in_window).sum())
                    part.add(entered[mine], left[mine], began[mine], lanes[mine], how[mine])
            total = int(counts.sum())
            for lane, part in enumerate(parts):
                if lane >= g.partitions and not carried[lane]:
                    continue
                lag_mean, lag_max = part.levels()
                messages = int(counts[lane])
                busy = part.busy[0] / ((hi - lo) * g.max_in_flight)
                rows.append(
                    {
                        "topology": run.topology,
                        "replication": run.replication,
                        "service": g.service,
                        "topic": "steps" if lane < g.partitions else "compensations",
                        "partition": lane % g.partitions,
                        "messages": messages,
                        "share": messages / total if total else math.nan,
                        "utilization": busy,
                        "lag_mean": lag_mean,
                        "lag_max": lag_max,
                    }
                )
    columns = ["topology", "replication", "service", "topic", "partition", "messages", "share", "utilization"]
    return pd.DataFrame(rows, columns=[*columns, "lag_mean", "lag_max"])


def lag_table(runs: Sequence[TopologyRun], scenario: Scenario) -> pd.DataFrame:
    """The lag of every consumer group over time: one row per (topology, replication, group,
    window), the lag at the window's end and its largest value within the window."""
    frames = []
    for run in runs:
        edges = _edges(run, scenario.window_width)
        for g in run.groups:
            at_end = np.zeros(edges.size - 1, dtype=np.int64)
            peak = LevelPeak(edges)
            for entered, left, *_ in _lag_chunks(g, run.end_time):
                at_end += _open_at(entered, left, edges[1:])
                peak.add_in_order(entered, left)
            largest = peak.result()
            frames.append(
                pd.DataFrame(
                    {
                        "topology": run.topology,
                        "replication": run.replication,
                        "service": g.service,
                        "t_start": edges[:-1],
                        "t_end": edges[1:],
                        "lag": at_end,
                        "lag_max": largest,
                    }
                )
            )
    columns = ["topology", "replication", "service", "t_start", "t_end", "lag", "lag_max"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _open_at(starts: np.ndarray, ends: np.ndarray, instants: np.ndarray) -> np.ndarray:
    """How many intervals [start, end) contain each instant."""
    return np.searchsorted(_sorted(starts), instants, side="right") - np.searchsorted(
        _sorted(ends), instants, side="right"
    )


def _window_of(instants: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The window of each instant (those past the last edge in the last window)."""
    return np.clip(np.searchsorted(edges, instants, side="right") - 1, 0, len(edges) - 2)


def _sorted(values: np.ndarray) -> np.ndarray:
    """``values`` in ascending order (NaN last), copied only when they are not already: a
    station's arrivals, and a single FIFO server's starts, come in order."""
    if values.size < 2 or bool(np.all(values[1:] >= values[:-1])):
        return values
    return np.sort(values, kind="stable")  # (timsort: nearly in order, sorted in one pass)


def _edges(run: TopologyRun, width: float) -> np.ndarray:
    """Window edges over the whole run: every ``width`` seconds, the last window ending with the
    run (a sliver shorter than half a window joins the window before it)."""
    n = max(1, math.ceil(run.end_time / width - 1e-9))
    edges = np.arange(n + 1, dtype=float) * width
    edges[-1] = max(run.end_time, edges[-2] + 1e-9)
    if n > 1 and edges[-1] - edges[-2] < width / 2:
        edges = np.delete(edges, -2)
    return edges


def _tally_quantiles(run: TopologyRun, name: str, prefix: str, lo: float, hi: float) -> dict[str, float]:
    """p50 and p99 of the observations of a tally made in [lo, hi) (NaN without any)."""
    values = run.tallies.get(name)
    if values is not None and values.size:
        inside = values[(values[:, 0] >= lo) & (values[:, 0] < hi), 1]
        if inside.size:
            p50, p99 = np.quantile(inside, [0.5, 0.99])
            return {f"{prefix}_p50": float(p50), f"{prefix}_p99": float(p99)}
    return {f"{prefix}_p50": math.nan, f"{prefix}_p99": math.nan}


def _bottleneck(components: pd.DataFrame) -> tuple[str | None, float]:
    """Highest utilization (an engine's: its busiest shard's); among components within 0.1 % of
    it, the one least held up by another (a shard waiting on a saturated store is not the root),
    then the longest queue."""
    finite = components.dropna(subset=["utilization"])
    finite = finite[finite["handled"] > 0]
    # An engine is as saturated as its busiest shard, a consumer group as its busiest partition.
    hottest = [
        c for c in ("hottest_shard_utilization", "hottest_partition_utilization") if c in finite.columns
    ]
    if hottest:
        finite = finite.assign(utilization=finite[["utilization", *hottest]].max(axis=1))
    if finite.empty or finite["utilization"].max() <= 0:  # nothing took any time: no bottleneck
        return None, math.nan
    top = finite[finite["utilization"] >= finite["utilization"].max() - 0.001]
    blocked = top["blocked"].fillna(0.0) if "blocked" in top.columns else pd.Series(0.0, index=top.index)
    ranked = top.assign(_blocked=blocked.round(3)).sort_values(
        ["_blocked", "mean_queue"], ascending=[True, False], kind="stable"
    )
    row = ranked.iloc[0]
    return str(row["name"]), float(row["utilization"])


def _quantiles(values: np.ndarray, prefix: str = "") -> dict[str, float]:
    if values.size == 0:
        return {
            f"{prefix}mean": math.nan,
            **{f"{prefix}{k}": math.nan for k in LATENCY_QUANTILES},
            f"{prefix}max": math.nan,
        }
    qs = np.quantile(values, list(LATENCY_QUANTILES.values()))
    return {
        f"{prefix}mean": float(values.mean()),
        **{f"{prefix}{k}": float(q) for k, q in zip(LATENCY_QUANTILES, qs)},
        f"{prefix}max": float(values.max()),
    }


OUTCOME_FIGURES = [
    "arrived",
    *OUTCOMES,
    "success_rate",
    "offered_rate",
    "throughput",
    *(f"latency_{k}" for k in ("mean", *LATENCY_QUANTILES, "max")),
]
LEDGER_FIGURES = [*EFFECT_KINDS, "orphan_effects", "inconsistency_window_mean", "inconsistency_window_max"]
FIGURES = [*OUTCOME_FIGURES, *LEDGER_FIGURES]
"""The figures :func:`request_figures` gives a set of requests: what a topology's summary row and
a workflow's row have in common."""


def _cohort(req: pd.DataFrame, lo: float, hi: float) -> pd.DataFrame:
    """The requests that arrived in the window [lo, hi): those the window's figures are about."""
    return req[(req["arrival"] >= lo) & (req["arrival"] < hi)]


def request_figures(req: pd.DataFrame, lo: float, hi: float) -> dict[str, float]:
    """The :data:`FIGURES` of a set of requests (rows of :func:`requests_frame`, of one run) over
    the window [lo, hi): the one definition behind a topology's summary row and its per-workflow
    rows, so that each workflow's figures add up to the topology's."""
    span = hi - lo
    cohort = _cohort(req, lo, hi)
    status = cohort["status"]
    done = cohort[status == "completed"]
    completed_all = req[req["status"] == "completed"]
    in_window = ((completed_all["completion"] >= lo) & (completed_all["completion"] < hi)).sum()
    counts = {name: int((status == name).sum()) for name in OUTCOMES}
    window = (cohort["inconsistency_end"] - cohort["inconsistency_start"]).dropna()
    figures: dict[str, float] = {
        "arrived": len(cohort),
        **counts,
        "success_rate": counts["completed"] / len(cohort) if len(cohort) else math.nan,
        "offered_rate": len(cohort) / span,
        "throughput": float(in_window) / span,
        **_quantiles(done["latency"].to_numpy(), "latency_"),
        **{col: int(cohort[col].sum()) for col in EFFECT_KINDS},
        "orphan_effects": int(cohort.loc[~status.isin(["completed", "in_flight"]), "standing_effects"].sum()),
        "inconsistency_window_mean": float(window.mean()) if len(window) else math.nan,
        "inconsistency_window_max": float(window.max()) if len(window) else math.nan,
    }
    return figures


def summary_table(
    runs: Sequence[TopologyRun],
    requests: Sequence[pd.DataFrame],
    scenario: Scenario,
    components: pd.DataFrame,
) -> pd.DataFrame:
    """One row per run with the headline figures (``requests``: :func:`requests_frame` of each
    run)."""
    lo, hi = _window(scenario)
    rows = []
    for run, req in zip(runs, requests, strict=True):
        figures = request_figures(req, lo, hi)
        cohort = _cohort(req, lo, hi)
        mine = components[
            (components["topology"] == run.topology) & (components["replication"] == run.replication)
        ]
        bottleneck, util = _bottleneck(mine)
        has_async = bool((req["async_completion"].notna() | (req["async_pending"] > 0)).any())
        # Only instances whose asynchronous steps have all finished have an asynchronous latency.
        async_lat = (cohort["async_completion"] - cohort["arrival"]).dropna().to_numpy()
        run_counts = {f"run_{name}": int((req["status"] == name).sum()) for name in OUTCOMES}
        row = {
            "topology": run.topology,
            "replication": run.replication,
            "kind": run.kind,
            "seed": run.seed,
            **{k: figures[k] for k in OUTCOME_FIGURES},
            "messages_per_workflow": run.counters["messages"] / len(req) if len(req) else math.nan,
            "decisions_per_workflow": run.counters.get("decisions", 0) / len(req) if len(req) else math.nan,
            "store_writes_per_workflow": run.counters.get("store_writes", 0) / len(req)
            if len(req)
            else math.nan,
            "bottleneck": bottleneck,
            "bottleneck_utilization": util,
            "lag_max": int(mine["lag_max"].max()) if mine["lag_max"].notna().any() else math.nan,
            **{k: figures[k] for k in LEDGER_FIGURES},
            "async_steps": has_async,
            **_quantiles(async_lat, "async_latency_"),
            "async_failed": int(cohort["async_failures"].sum()),
            "async_in_flight": int(cohort["async_pending"].sum()),
            "run_arrived": len(req),
            **run_counts,
            **{k: run.counters.get(k, 0) for k in COUNTERS},
            **cost_figures(run, scenario, run_counts["run_completed"]),
            "replica_hours": autoscaled_hours(run),
            "end_time": run.end_time,
        }
        outcomes = sum(figures[name] for name in OUTCOMES)
        if figures["arrived"] != outcomes or row["run_arrived"] != sum(run_counts.values()):
            raise AssertionError(f"conservation violated in the measured window of {run.topology}")
        rows.append(row)
    return pd.DataFrame(rows)


def workflows_table(
    runs: Sequence[TopologyRun], requests: Sequence[pd.DataFrame], scenario: Scenario
) -> pd.DataFrame:
    """One row per (topology, replication, workflow): the summary's :data:`FIGURES` of that
    workflow's requests alone, over the same window. Every workflow of a run has a row, even one
    that had no arrivals."""
    lo, hi = _window(scenario)
    rows = []
    for run, req in zip(runs, requests, strict=True):
        by_workflow = dict(tuple(req.groupby("workflow", sort=False, observed=True)))
        for w in run.workflows:
            mine = by_workflow.get(w.name, req.iloc[:0])
            rows.append(
                {
                    "topology": run.topology,
                    "replication": run.replication,
                    "workflow": w.name,
                    **request_figures(mine, lo, hi),
                }
            )
    return pd.DataFrame(rows, columns=["topology", "replication", "workflow", *FIGURES])


def timeseries_table(
    runs: Sequence[TopologyRun], requests: Sequence[pd.DataFrame], scenario: Scenario
) -> pd.DataFrame:
    """Fixed windows over the whole run: arrivals, completions, throughput, in flight, latency."""
    frames = []
    for run, req in zip(runs, requests, strict=True):
        edges = _edges(run, scenario.window_width)
        n = len(edges) - 1
        # (Temporaries one at a time, of the instances that matter: a long run has millions.)
        completion = req["completion"].to_numpy()
        ok = (req["status"] == "completed").to_numpy()
        p99 = np.full(n, math.nan)
        mean = np.full(n, math.nan)
        completions = np.zeros(n, dtype=np.int64)
        if ok.any():
            bins = _window_of(completion[ok], edges)
            series = pd.Series(req["latency"].to_numpy()[ok]).groupby(bins)
            q = series.quantile(0.99)
            p99[q.index.to_numpy()] = q.to_numpy()
            m = series.mean()
            mean[m.index.to_numpy()] = m.to_numpy()
            completions = np.bincount(bins, minlength=n)
            del series, bins
        del ok
        failed = req["status"].isin(["failed", "compensated", "inconsistent", "lost"]).to_numpy()
        failed = failed & ~np.isnan(completion)
        failures = np.bincount(_window_of(completion[failed], edges), minlength=n)
        del failed
        arrival = _sorted(req["arrival"].to_numpy())
        # Arrivals per window, as numpy.histogram counts them (the last window holds its end).
        counts = np.searchsorted(arrival, edges, side="left")
        counts[-1] = np.searchsorted(arrival, edges[-1], side="right")
        arrivals = np.diff(counts)
        ends = edges[1:]
        queued = {
            kind: np.zeros(n, dtype=np.int64) for kind in ("service", "orchestrator", "store", "broker")
        }
        consumed = {g.service for g in run.groups}
        unconsumed = np.zeros(n, dtype=np.int64)
        for rec in run.components:
            # Waiting at the window's end: arrived by then and not yet started (NaN: never).
            waiting = sum(_open_at(arrived, started, ends) for _, arrived, started, _ in rec.chunks())
            queued[rec.kind if rec.group is None else GROUP_KINDS.get(rec.kind, rec.kind)] += waiting
            if (rec.name if rec.group is None else rec.group) not in consumed:
                unconsumed += waiting
        lag = np.zeros(n, dtype=np.int64)
        for g in run.groups:
            for entered, left, *_ in _lag_chunks(g, run.end_time):
                lag += _open_at(entered, left, ends)
        started_by = np.searchsorted(arrival, ends, side="right")
        done_by = np.searchsorted(np.sort(completion, kind="stable"), ends, side="right")  # (NaN last)
        frames.append(
            pd.DataFrame(
                {
                    "topology": run.topology,
                    "replication": run.replication,
                    "t_start": edges[:-1],
                    "t_end": ends,
                    "arrivals": arrivals,
                    "completions": completions,
                    "failures": failures,
                    "throughput": completions / np.diff(edges),
                    "in_flight": started_by - done_by,
                    "latency_mean": mean,
                    "latency_p99": p99,
                    "backlog": unconsumed + lag,
                    "lag": lag,
                    "queued_services": queued["service"],
                    "queued_orchestrator": queued["orchestrator"],
                    "queued_store": queued["store"],
                    "queued_broker": queued["broker"],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
