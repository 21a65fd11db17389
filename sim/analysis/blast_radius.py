"""Blast radius of injected faults: what a fault did, measured against the same run without it.

For a scenario with faults the tool also runs its **baseline**: the same scenario and seed without
faults. With common random numbers the i-th instance of a workflow has the same arrival and the
same work in both runs, so every instance of the faulted run is compared with its **twin**, the
instance of the baseline with the same (topology, replication, workflow, id). Everything here is
computed from the frames of the two runs (``requests``, ``timeseries``, ``components``,
``summary``) and the list of fault windows; one row per (topology, replication). Definitions:

* **fault windows**: dicts ``{"type", "target", "start", "end"}``, the actual windows (a crash
  process yields many). A window may carry ``topology`` and/or ``replication`` keys and then
  applies only there; ``faults`` may also be a mapping from a replication, a topology or a
  ``(topology, replication)`` pair to such a list, or a frame with those columns.
  **fault_start** = earliest start, **fault_end** = latest end of the windows that apply;
  **faults** = their number; **fault_targets** = their targets (both ends of a partition),
  sorted and ``;``-joined.
* **affected** instance: a twin pair whose outcomes (``status``) differ, or whose outcomes are the
  same, with a finite latency on both sides, and the faulted latency L_f strictly exceeds
  ``max(latency_factor × L_b, L_b + latency_slack)`` (L_b: the twin's latency; defaults 2 and
  1 s). An instance that finished in the baseline but is in flight in the faulted run differs in
  outcome, so it is affected; twins both in flight (both NaN latency) are not. Instances without
  a twin are not affected; **unpaired** counts them (0 when the runs share their arrivals).
  **affected** counts the affected instances of the whole run; **affected_<status>** splits them
  by their *faulted* outcome (completed, compensated, failed, inconsistent, lost, in_flight).
* **band** (per time-series window, the two runs' windows matched on ``t_start``; a window that
  only one run has counts as empty in the other: no completions, NaN p99, no backlog): with
  c_b, c_f the completions of the window and w its length (the last window of the shorter run is
  taken as long as the other run's window, so both rates share w), thr = c / w, the window is
  *within the band* when ``|thr_f − thr_b| ≤ max(rel × thr_b, 2 √max(c_b, 1) / w)`` (a relative
  tolerance, or two Poisson standard deviations of the baseline count) **and**
  ``p99_f ≤ max(p99_b × (1 + rel_p99), p99_b + abs_p99)``; a p99 that is NaN on either side
  (nothing completed there) passes the p99 test, the throughput test then decides. Defaults
  (:class:`Band`): rel = 0.1, rel_p99 = 0.5, abs_p99 = 0.05 s.
* **impact window** ``[impact_start, impact_end)``: impact_start = fault_start. Candidate windows
  are those with ``t_end > fault_end`` (the one holding fault_end and all later ones). impact_end
  is the ``t_end`` of the first candidate window k such that windows k, k+1, ..., k+settle−1 are
  all within the band, or, when fewer than ``settle`` windows remain, all windows from k to the
  end of the run are (``settle`` = 3 by default); **settled_by** says which rule applied:
  ``"settle"``, ``"end_of_run"``, or ``"never"``. When no candidate qualifies (also when a fault
  is still on at the end of the run), impact_end = the end of the run (the largest ``t_end`` of
  either run) and **recovered** = False.
* **recovery_time** = impact_end − fault_end (≥ 0; window resolution: with the window holding
  fault_end already within the band it is less than one window).
* **workflows_in_window**: instances of the faulted run that arrived in [impact_start, impact_end),
  and the affected ones that arrived outside it (in flight when the fault began, or after the
  impact window ended); **affected_share** = affected / workflows_in_window, so at most 1 (NaN
  when there are none).
* **peak_backlog** / **baseline_backlog**: the largest faulted / baseline ``backlog`` (sampled at
  window ends) over the windows whose end lies in (impact_start, impact_end].
* **drain_time**: ``t_end − fault_end`` of the first window, at or after both the fault's end and
  the window of the peak backlog (when the backlog left its band at all), whose faulted backlog
  b_f is back within ``b_f ≤ max(backlog_factor × b_b, b_b + backlog_abs)``, b_b being the
  baseline backlog at the end of the same window (defaults 2 and 1); NaN when it never is. Unlike
  the impact window it need not stay there. Searching from the peak matters for retries: calls
  waiting to be retried sit in no queue, so an orchestrated backlog may build only after the fault.
* **attempts** / **baseline_attempts**: service calls attempted in the whole run (retries
  included); **retry_amplification** = attempts / baseline_attempts (NaN when the baseline made
  none); **duplicates**, **duplicate_effects**, **orphan_effects**, **lost**, **lost_work**: the
  faulted run's ``summary`` values (``lost`` counted from the requests when the summary lacks
  it); **affected_duplicate_effects**: the duplicate effects of the affected workflows (the
  double charges the fault caused).
* **affected_components**: components other than the fault targets whose statistics over the
  impact window left the baseline band, sorted and ``;``-joined; **affected_component_count**
  their number. A window's ``target`` is a component name; a partition's two ends are its
  ``target`` and its ``peer`` (both are targets). Statistics come from the optional callable
  ``component_stats(run, topology, replication, lo, hi)`` with [lo, hi) = the impact window, or,
  without it, from the measured-window ``components`` frames. A component present in only one run
  counts as idle in the other (zero counts, zero queue, no wait). With error rate
  e = (errors + rejected) / max(handled, 1), a component leaves the band when
  ``e_f > e_b + error_abs`` and ``e_f > error_factor × e_b``, or
  ``p99_wait_f > max(wait_factor × p99_wait_b, p99_wait_b + wait_abs)``, or
  ``mean_queue_f > max(queue_factor × mean_queue_b, mean_queue_b + queue_abs)`` (a NaN wait, i.e.
  no request waited, is taken as 0). Defaults: error_abs = 0.01, error_factor = 2, wait_factor = 2,
  wait_abs = 0.05 s, queue_factor = 2, queue_abs = 1.

A (topology, replication) with no applicable fault window gets NaN timings, ``recovered`` = NA and
``settled_by`` = ``"no_fault"``; its affected counts are still computed.

Pure functions over numpy and pandas; the figures are in :mod:`sim.analysis.plots.faults`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from sim.analysis.statistics import t_interval

STATUSES = ("completed", "compensated", "failed", "inconsistent", "lost", "in_flight")
KEYS = ["topology", "replication"]
TWIN_KEYS = ["topology", "replication", "workflow", "id"]
_EPS = 1e-9


@dataclass(frozen=True)
class Band:
    """Tolerances of "within the baseline band" (see the module docstring for their use)."""

    rel: float = 0.1  # throughput: relative tolerance
    rel_p99: float = 0.5  # p99 latency: relative tolerance
    abs_p99: float = 0.05  # p99 latency: absolute tolerance (s)
    settle: int = 3  # consecutive windows within the band that end the impact window
    backlog_factor: float = 2.0
    backlog_abs: float = 1.0
    error_abs: float = 0.01
    error_factor: float = 2.0
    wait_factor: float = 2.0
    wait_abs: float = 0.05
    queue_factor: float = 2.0
    queue_abs: float = 1.0

    def __post_init__(self) -> None:
        if int(self.settle) != self.settle or self.settle < 1:
            raise ValueError(f"settle must be a positive whole number, got {self.settle}")
        for name, value in self.__dict__.items():
            if name != "settle" and not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"band.{name} must be a finite number ≥ 0, got {value}")


DEFAULT_BAND = Band()


class RunFrames(Protocol):
    """What :func:`blast_radius` reads of a run (a ``RunResult`` has all four)."""

    requests: pd.DataFrame
    timeseries: pd.DataFrame
    components: pd.DataFrame
    summary: pd.DataFrame


ComponentStats = Callable[[Any, str, int, float, float], pd.DataFrame]


# --- inputs ------------------------------------------------------------------------------------


def _text(values: pd.Series) -> pd.Series:
    """A column as strings (so Categoricals compare and merge like the strings they hold)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        labels = np.append(values.cat.categories.astype(str).to_numpy(dtype=object), "nan")
        return pd.Series(labels[values.cat.codes.to_numpy()], index=values.index)  # code −1: "nan"
    return values.astype(str)


def with_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a string ``topology`` and an integer ``replication`` (0 when absent)."""
    topology = _text(frame["topology"]) if "topology" in frame.columns else "default"
    replication = frame["replication"].astype(int) if "replication" in frame.columns else 0
    return frame.assign(topology=topology, replication=replication)


def group_keys(*frames: pd.DataFrame | None) -> list[tuple[str, int]]:
    """(topology, replication) pairs in order of first appearance over the frames."""
    seen: dict[tuple[str, int], None] = {}
    for frame in frames:
        if frame is None or frame.empty:
            continue
        keyed = with_keys(frame[[c for c in KEYS if c in frame.columns]].drop_duplicates())
        for topo, rep in zip(keyed["topology"], keyed["replication"]):
            seen.setdefault((str(topo), int(rep)), None)
    return list(seen)


def _split(frame: pd.DataFrame | None) -> dict[tuple[str, int], pd.DataFrame]:
    """A frame's rows per (topology, replication), keyed once (frames may hold millions of rows)."""
    if frame is None or frame.empty:
        return {}
    keyed = with_keys(frame)
    return {
        (str(topo), int(rep)): group for (topo, rep), group in keyed.groupby(KEYS, sort=False, dropna=False)
    }


def fault_frame(faults: Any) -> pd.DataFrame:
    """Fault windows as a frame: type, target, peer, start, end, topology, replication (None =
    any); ``peer`` is the other end of a partition and empty for other faults.

    ``faults`` is a list of dicts, a frame, or a mapping from a replication (int), a topology
    (str) or a ``(topology, replication)`` pair to a list of dicts.
    """
    rows: list[dict[str, Any]] = []
    if faults is None:
        pass
    elif isinstance(faults, pd.DataFrame):
        rows = faults.to_dict("records")
    elif isinstance(faults, Mapping):
        for key, items in faults.items():
            if isinstance(key, tuple):
                scope = {"topology": key[0], "replication": key[1]}
            elif isinstance(key, str):
                scope = {"topology": key}
            else:
                scope = {"replication": key}
            rows.extend({**dict(item), **scope} for item in items)
    else:
        rows = [dict(item) for item in faults]
    out = []
    for row in rows:
        start, end = float(row["start"]), float(row["end"])
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise ValueError(f"fault window must have finite start ≤ end, got {row}")
        topo, rep, peer = row.get("topology"), row.get("replication"), row.get("peer")
        out.append(
            {
                "type": str(row.get("type", "")),
                "target": str(row.get("target", "")),
                "peer": "" if _missing(peer) else str(peer),
                "start": start,
                "end": end,
                "topology": None if _missing(topo) else str(topo),
                "replication": None if rep is None or _missing(rep) else int(rep),
            }
        )
    return pd.DataFrame(out, columns=["type", "target", "peer", "start", "end", "topology", "replication"])


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def faults_for(table: pd.DataFrame, topology: str, replication: int | None) -> pd.DataFrame:
    """The windows that apply to a topology and replication (None: to any replication)."""
    keep = table["topology"].isna() | (table["topology"] == topology)
    if replication is not None:
        keep &= table["replication"].isna() | (table["replication"] == replication)
    return table[keep]


# --- twins -------------------------------------------------------------------------------------


def _request_view(requests: pd.DataFrame) -> pd.DataFrame:
    req = with_keys(requests)
    if "latency" in req.columns:
        latency = req["latency"].astype(float)
    else:
        latency = req["completion"].astype(float) - req["arrival"].astype(float)
    return pd.DataFrame(
        {
            "topology": req["topology"],
            "replication": req["replication"],
            "workflow": _text(req["workflow"]),
            "id": req["id"],
            "arrival": req["arrival"].astype(float),
            "status": _text(req["status"]),
            "latency": latency,
            "duplicate_effects": req.get("duplicate_effects", 0),
        }
    )


def twin_pairs(
    baseline_requests: pd.DataFrame,
    faulted_requests: pd.DataFrame,
    *,
    latency_factor: float = 2.0,
    latency_slack: float = 1.0,
) -> pd.DataFrame:
    """Every instance beside its twin, with ``affected`` and ``reason``.

    One row per (topology, replication, workflow, id) present in either run: ``arrival`` (faulted,
    else baseline), ``status_b``, ``status_f``, ``latency_b``, ``latency_f``, ``paired`` (present
    in both), ``affected`` and ``reason`` (``"outcome"``, ``"latency"`` or ``""``), as defined in
    the module docstring.
    """
    base = _request_view(baseline_requests)
    fault = _request_view(faulted_requests)
    # Merge on integer codes of the text keys: much faster than on strings for large runs.
    labels = {}
    for col in ("topology", "workflow"):
        codes, labels[col] = pd.factorize(pd.concat([fault[col], base[col]], ignore_index=True))
        fault[col], base[col] = codes[: len(fault)], codes[len(fault) :]
    pairs = fault.merge(base, on=TWIN_KEYS, how="outer", suffixes=("_f", "_b"), indicator=True)
    for col, values in labels.items():
        pairs[col] = np.asarray(values, dtype=object)[pairs[col].to_numpy()]
    pairs["paired"] = (pairs.pop("_merge") == "both").to_numpy()
    pairs["arrival"] = pairs.pop("arrival_f").fillna(pairs.pop("arrival_b"))
    paired = pairs["paired"].to_numpy()
    status_f, status_b = pairs["status_f"].fillna(""), pairs["status_b"].fillna("")
    lat_f = pairs["latency_f"].to_numpy(dtype=float)
    lat_b = pairs["latency_b"].to_numpy(dtype=float)
    outcome = paired & (status_f != status_b).to_numpy(dtype=bool)
    threshold = np.maximum(latency_factor * lat_b, lat_b + latency_slack)
    finite = np.isfinite(lat_f) & np.isfinite(lat_b)
    with np.errstate(invalid="ignore"):
        slow = paired & ~outcome & finite & (lat_f > threshold)
    pairs["affected"] = outcome | slow
    pairs["reason"] = np.where(outcome, "outcome", np.where(slow, "latency", ""))
    pairs["duplicate_effects"] = pairs.pop("duplicate_effects_f").fillna(0).astype(int)
    columns = [*TWIN_KEYS, "arrival", "status_b", "status_f", "latency_b", "latency_f", "paired"]
    return pairs[[*columns, "duplicate_effects", "affected", "reason"]].reset_index(drop=True)


# --- time series -------------------------------------------------------------------------------


def backlog_series(ts: pd.DataFrame) -> pd.Series:
    """The ``backlog`` column (``in_flight`` as a stand-in for frames that lack it)."""
    column = "backlog" if "backlog" in ts.columns else "in_flight"
    return ts[column].astype(float)


def align_timeseries(baseline_ts: pd.DataFrame, faulted_ts: pd.DataFrame) -> pd.DataFrame:
    """One topology × replication's windows of both runs side by side, matched on ``t_start``.

    Columns: t_start, t_end (the later of the two runs' ends of that window), width, and per run
    (suffix ``_b`` / ``_f``) completions, failures, latency_p99, backlog. A window only one run
    has is empty in the other (0 completions and failures, NaN p99, 0 backlog).
    """

    def view(ts: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "key": np.round(ts["t_start"].to_numpy(dtype=float), 6),
                "t_start": ts["t_start"].to_numpy(dtype=float),
                "t_end": ts["t_end"].to_numpy(dtype=float),
                "completions": ts["completions"].to_numpy(dtype=float),
                "failures": ts["failures"].to_numpy(dtype=float)
                if "failures" in ts.columns
                else np.zeros(len(ts)),
                "latency_p99": ts["latency_p99"].to_numpy(dtype=float),
                "backlog": backlog_series(ts).to_numpy(),
            }
        )

    merged = view(faulted_ts).merge(view(baseline_ts), on="key", how="outer", suffixes=("_f", "_b"))
    merged = merged.sort_values("key", kind="stable").reset_index(drop=True)
    out = pd.DataFrame({"t_start": merged["t_start_f"].fillna(merged["t_start_b"])})
    out["t_end"] = np.fmax(merged["t_end_f"].to_numpy(), merged["t_end_b"].to_numpy())
    out["width"] = out["t_end"] - out["t_start"]
    for side in ("b", "f"):
        for col in ("completions", "failures", "backlog"):
            out[f"{col}_{side}"] = merged[f"{col}_{side}"].fillna(0.0)
        out[f"latency_p99_{side}"] = merged[f"latency_p99_{side}"]
    return out


def within_band(aligned: pd.DataFrame, band: Band = DEFAULT_BAND) -> np.ndarray:
    """Per window of :func:`align_timeseries`: is the faulted run within the baseline band?"""
    width = np.maximum(aligned["width"].to_numpy(dtype=float), _EPS)
    c_b = aligned["completions_b"].to_numpy(dtype=float)
    c_f = aligned["completions_f"].to_numpy(dtype=float)
    thr_b, thr_f = c_b / width, c_f / width
    tolerance = np.maximum(band.rel * thr_b, 2.0 * np.sqrt(np.maximum(c_b, 1.0)) / width)
    thr_ok = np.abs(thr_f - thr_b) <= tolerance * (1 + 1e-12)
    p_b = aligned["latency_p99_b"].to_numpy(dtype=float)
    p_f = aligned["latency_p99_f"].to_numpy(dtype=float)
    limit = np.maximum(p_b * (1.0 + band.rel_p99), p_b + band.abs_p99)
    with np.errstate(invalid="ignore"):
        p99_ok = ~(np.isfinite(p_b) & np.isfinite(p_f)) | (p_f <= limit * (1 + 1e-12))
    return thr_ok & p99_ok


def _impact(aligned: pd.DataFrame, fault_end: float, band: Band) -> tuple[float, bool, str]:
    """(impact_end, recovered, settled_by) as defined in the module docstring."""
    if aligned.empty:
        return math.nan, False, "never"
    ok = within_band(aligned, band)
    t_end = aligned["t_end"].to_numpy(dtype=float)
    n = len(ok)
    for k in np.flatnonzero(t_end > fault_end):
        stop = min(k + band.settle, n)
        if ok[k:stop].all():
            return float(t_end[k]), True, "settle" if k + band.settle <= n else "end_of_run"
    return float(t_end.max()), False, "never"


def _drain_time(
    aligned: pd.DataFrame, fault_start: float, fault_end: float, impact_end: float, band: Band
) -> float:
    t_end = aligned["t_end"].to_numpy(dtype=float)
    b_b = aligned["backlog_b"].to_numpy(dtype=float)
    b_f = aligned["backlog_f"].to_numpy(dtype=float)
    limit = np.maximum(band.backlog_factor * b_b, b_b + band.backlog_abs)
    # Search from the later of the fault's end and the backlog's peak: work held outside any
    # queue (calls waiting to be retried) may pile up only after the fault has ended.
    during = np.flatnonzero((t_end > fault_start) & (t_end <= max(impact_end, fault_end)))
    start = fault_end
    if during.size and (b_f[during] > limit[during]).any():
        start = max(fault_end, float(t_end[during[np.argmax(b_f[during])]]))
    hits = np.flatnonzero((t_end >= start) & (b_f <= limit))
    return float(t_end[hits[0]] - fault_end) if hits.size else math.nan


def _aligned(baseline_ts: pd.DataFrame, faulted_ts: pd.DataFrame) -> pd.DataFrame:
    if baseline_ts.empty and faulted_ts.empty:
        return pd.DataFrame()
    cols = ["t_start", "t_end", "completions", "latency_p99", "backlog", "in_flight", "failures"]
    return align_timeseries(
        baseline_ts if not baseline_ts.empty else pd.DataFrame(columns=cols, dtype=float),
        faulted_ts if not faulted_ts.empty else pd.DataFrame(columns=cols, dtype=float),
    )


# --- components --------------------------------------------------------------------------------


def component_deviations(
    baseline_stats: pd.DataFrame, faulted_stats: pd.DataFrame, band: Band = DEFAULT_BAND
) -> pd.DataFrame:
    """Per component: its statistics in both runs and whether each left the baseline band.

    Input frames have columns name, errors, rejected, handled, p99_wait, mean_queue (one row per
    component). Output: name, error_rate_b/_f, p99_wait_b/_f, mean_queue_b/_f, the flags
    ``errors_out``, ``wait_out``, ``queue_out`` and ``out`` (any of them).
    """
    cols = ["errors", "rejected", "handled", "p99_wait", "mean_queue"]
    how = {"errors": "sum", "rejected": "sum", "handled": "sum", "p99_wait": "max", "mean_queue": "sum"}

    def view(frame: pd.DataFrame | None) -> pd.DataFrame:
        if frame is None or frame.empty:
            return pd.DataFrame({c: np.zeros(0) for c in cols}, index=pd.Index([], dtype=object))
        data = {
            c: pd.to_numeric(frame[c]).to_numpy(dtype=float) if c in frame.columns else np.zeros(len(frame))
            for c in cols
        }
        out = pd.DataFrame(data, index=pd.Index(_text(frame["name"]).to_numpy(dtype=object)))
        return out.groupby(level=0, sort=False).agg(how) if out.index.duplicated().any() else out

    f_view, b_view = view(faulted_stats), view(baseline_stats)
    names = sorted(set(f_view.index) | set(b_view.index))
    # A component missing on one side is idle there; a NaN wait (nobody waited) counts as 0.
    f = {c: np.nan_to_num(f_view[c].reindex(names).to_numpy(dtype=float)) for c in cols}
    b = {c: np.nan_to_num(b_view[c].reindex(names).to_numpy(dtype=float)) for c in cols}
    e_b = (b["errors"] + b["rejected"]) / np.maximum(b["handled"], 1.0)
    e_f = (f["errors"] + f["rejected"]) / np.maximum(f["handled"], 1.0)
    w_b, w_f, q_b, q_f = b["p99_wait"], f["p99_wait"], b["mean_queue"], f["mean_queue"]
    errors_out = (e_f > e_b + band.error_abs) & (e_f > band.error_factor * e_b)
    wait_out = w_f > np.maximum(band.wait_factor * w_b, w_b + band.wait_abs)
    queue_out = q_f > np.maximum(band.queue_factor * q_b, q_b + band.queue_abs)
    return pd.DataFrame(
        {
            "name": pd.Series(names, dtype=object),
            "error_rate_b": e_b,
            "error_rate_f": e_f,
            "p99_wait_b": w_b,
            "p99_wait_f": w_f,
            "mean_queue_b": q_b,
            "mean_queue_f": q_f,
            "errors_out": errors_out,
            "wait_out": wait_out,
            "queue_out": queue_out,
            "out": errors_out | wait_out | queue_out,
        }
    )


# --- the table ---------------------------------------------------------------------------------


def _targets(windows: pd.DataFrame) -> set[str]:
    """The components the windows name: every target, and the peer of every partition."""
    return {str(n) for n in windows["target"]} | {str(p) for p in windows["peer"] if p}


def _summary_value(summary: pd.DataFrame, column: str) -> float:
    if summary.empty or column not in summary.columns:
        return math.nan
    value = summary[column].iloc[0]
    return math.nan if _missing(value) else float(value)


def blast_radius(
    baseline: RunFrames,
    faulted: RunFrames,
    faults: Any,
    *,
    latency_factor: float = 2.0,
    latency_slack: float = 1.0,
    band: Band | Mapping[str, Any] = DEFAULT_BAND,
    component_stats: ComponentStats | None = None,
) -> pd.DataFrame:
    """One row per (topology, replication) of the faulted run: what its faults did, measured
    against the baseline twin run. The columns are defined in the module docstring.

    ``baseline`` and ``faulted`` carry the frames ``requests``, ``timeseries``, ``components`` and
    ``summary``; ``faults`` are the fault windows; ``band`` is a :class:`Band` or a mapping of its
    fields (``{"rel": 0.2}``); ``component_stats(run, topology, replication, lo, hi)``, when
    given, returns per-component statistics of ``run`` (``baseline`` or ``faulted``) over
    [lo, hi), used for ``affected_components`` over the impact window.
    """
    if not isinstance(band, Band):
        band = Band(**dict(band))
    if latency_factor < 1 or latency_slack < 0:
        raise ValueError("latency_factor must be ≥ 1 and latency_slack ≥ 0")
    table = fault_frame(faults)
    pairs = twin_pairs(
        baseline.requests, faulted.requests, latency_factor=latency_factor, latency_slack=latency_slack
    )
    by_pair = _split(pairs)
    f_req, f_ts, b_ts = _split(faulted.requests), _split(faulted.timeseries), _split(baseline.timeseries)
    f_sums, b_sums = _split(faulted.summary), _split(baseline.summary)
    f_comps, b_comps = _split(faulted.components), _split(baseline.components)
    empty = pd.DataFrame()
    keys = group_keys(faulted.requests, faulted.timeseries, faulted.summary, baseline.requests)
    rows = []
    for key in keys:
        topology, replication = key
        mine = by_pair.get(key, pairs.iloc[:0])
        hit = mine[mine["affected"]]
        row: dict[str, Any] = {"topology": topology, "replication": replication}
        windows = faults_for(table, topology, replication)
        has_fault = not windows.empty
        fault_start = float(windows["start"].min()) if has_fault else math.nan
        fault_end = float(windows["end"].max()) if has_fault else math.nan
        row |= {
            "fault_start": fault_start,
            "fault_end": fault_end,
            "faults": len(windows),
            "fault_targets": ";".join(sorted(_targets(windows))),
            "affected": len(hit),
        }
        counts = hit["status_f"].value_counts()
        for status in STATUSES:
            row[f"affected_{status}"] = int(counts.get(status, 0))
        row["affected_by_latency"] = int((hit["reason"] == "latency").sum())
        row["unpaired"] = int((~mine["paired"]).sum())

        aligned = _aligned(b_ts.get(key, empty), f_ts.get(key, empty))
        if has_fault and not aligned.empty:
            impact_end, recovered, settled_by = _impact(aligned, fault_end, band)
            drain = _drain_time(aligned, fault_start, fault_end, impact_end, band)
        else:
            impact_end, recovered, settled_by, drain = math.nan, pd.NA, "no_fault", math.nan
            if has_fault:
                settled_by, recovered = "never", False
        row |= {
            "impact_start": fault_start,
            "impact_end": impact_end,
            "recovered": recovered,
            "settled_by": settled_by,
            "recovery_time": max(impact_end - fault_end, 0.0) if math.isfinite(impact_end) else math.nan,
        }
        req = f_req.get(key, pd.DataFrame({"arrival": [], "status": []}))
        if math.isfinite(impact_end):
            arrivals = req["arrival"].astype(float)
            in_window = int(((arrivals >= fault_start) & (arrivals < impact_end)).sum())
            outside = (hit["arrival"] < fault_start) | (hit["arrival"] >= impact_end)
            in_window += int(outside.sum())
            ends = aligned["t_end"]
            during = aligned[(ends > fault_start) & (ends <= impact_end)]
            peak = float(during["backlog_f"].max()) if not during.empty else math.nan
            base_peak = float(during["backlog_b"].max()) if not during.empty else math.nan
        else:
            in_window, peak, base_peak = 0, math.nan, math.nan
        row |= {
            "workflows_in_window": in_window,
            "affected_share": len(hit) / in_window if in_window else math.nan,
            "peak_backlog": peak,
            "baseline_backlog": base_peak,
            "drain_time": drain,
        }

        f_sum, b_sum = f_sums.get(key, empty), b_sums.get(key, empty)
        attempts, base_attempts = _summary_value(f_sum, "attempts"), _summary_value(b_sum, "attempts")
        lost = _summary_value(f_sum, "lost")
        if math.isnan(lost):
            lost = float((_text(req["status"]) == "lost").sum())
        row |= {
            "attempts": attempts,
            "baseline_attempts": base_attempts,
            "retry_amplification": attempts / base_attempts if base_attempts > 0 else math.nan,
            "duplicates": _summary_value(f_sum, "duplicates"),
            "duplicate_effects": _summary_value(f_sum, "duplicate_effects"),
            "affected_duplicate_effects": int(hit["duplicate_effects"].sum())
            if "duplicate_effects" in hit
            else 0,
            "orphan_effects": _summary_value(f_sum, "orphan_effects"),
            "lost": lost,
            "lost_work": _summary_value(f_sum, "lost_work"),
        }

        if component_stats is not None and math.isfinite(impact_end):
            if impact_end > fault_start:
                b_comp = component_stats(baseline, topology, replication, fault_start, impact_end)
                f_comp = component_stats(faulted, topology, replication, fault_start, impact_end)
            else:  # a fault from the last instant on: its impact window holds nothing to compare
                b_comp = f_comp = empty
        else:
            b_comp, f_comp = b_comps.get(key, empty), f_comps.get(key, empty)
        dev = component_deviations(b_comp, f_comp, band)
        targets = _targets(windows)
        names = sorted(n for n in dev.loc[dev["out"], "name"] if n not in targets)
        row["affected_components"] = ";".join(names)
        row["affected_component_count"] = len(names)
        rows.append(row)

    frame = pd.DataFrame(rows, columns=_COLUMNS)
    frame["recovered"] = frame["recovered"].astype("boolean")
    for col in ["faults", "affected", *(f"affected_{s}" for s in STATUSES), "affected_by_latency"]:
        frame[col] = frame[col].astype(int)
    frame["workflows_in_window"] = frame["workflows_in_window"].astype(int)
    return frame


_COLUMNS = [
    "topology",
    "replication",
    "fault_start",
    "fault_end",
    "faults",
    "fault_targets",
    "affected",
    *(f"affected_{s}" for s in STATUSES),
    "affected_by_latency",
    "unpaired",
    "impact_start",
    "impact_end",
    "recovered",
    "settled_by",
    "recovery_time",
    "workflows_in_window",
    "affected_share",
    "peak_backlog",
    "baseline_backlog",
    "drain_time",
    "attempts",
    "baseline_attempts",
    "retry_amplification",
    "duplicates",
    "duplicate_effects",
    "affected_duplicate_effects",
    "orphan_effects",
    "lost",
    "lost_work",
    "affected_components",
    "affected_component_count",
]


# --- text --------------------------------------------------------------------------------------


def _estimate(values: Iterable[float], fmt: str) -> str:
    """Mean over replications, with ± the half-width of its t interval when there are several."""
    iv = t_interval(list(values))
    if iv.n == 0:
        return "n/a"
    text = format(iv.mean, fmt)
    if iv.n > 1 and math.isfinite(iv.half_width) and iv.half_width > 0:
        text += f" ± {format(iv.half_width, fmt)}"
    return text


def blast_radius_summary_lines(frame: pd.DataFrame) -> list[str]:
    """One line per topology of a :func:`blast_radius` frame, for a terminal.

    With several replications every number is the mean over them ± the half-width of its 95 %
    Student-t interval, e.g. ``choreography: 312 workflows affected (4.1 % of 7,600 in the
    impact window), recovered 18.2 s after the fault; peak backlog 640 (baseline 12); retry
    amplification 1.00×``.
    """
    lines = []
    for topology in dict.fromkeys(frame["topology"]):
        rows = frame[frame["topology"] == topology]
        n = len(rows)
        head = f"{topology}" + (f" (mean of {n} replications)" if n > 1 else "")
        if rows["fault_start"].isna().all():
            lines.append(f"{head}: no fault window applies")
            continue
        share = _estimate(100.0 * rows["affected_share"], ".1f")
        text = (
            f"{head}: {_estimate(rows['affected'], ',.0f')} workflows affected "
            f"({share} % of {_estimate(rows['workflows_in_window'], ',.0f')} in the impact window), "
        )
        recovered = rows["recovered"].fillna(False).astype(bool)
        if recovered.all():
            text += f"recovered {_estimate(rows['recovery_time'], '.1f')} s after the fault"
        elif not recovered.any():
            text += (
                f"not recovered by the end of the run "
                f"({_estimate(rows['recovery_time'], '.1f')} s after the fault)"
            )
        else:
            text += (
                f"recovered {_estimate(rows.loc[recovered, 'recovery_time'], '.1f')} s after the fault "
                f"in {int(recovered.sum())} of {n} replications"
            )
        text += (
            f"; peak backlog {_estimate(rows['peak_backlog'], ',.0f')} "
            f"(baseline {_estimate(rows['baseline_backlog'], ',.0f')})"
        )
        amplification = _estimate(rows["retry_amplification"], ".2f")
        text += f"; retry amplification {amplification}×" if amplification != "n/a" else ""
        if rows["lost"].fillna(0).sum() > 0:
            text += f"; {_estimate(rows['lost'], ',.0f')} lost"
        if "affected_duplicate_effects" in rows and rows["affected_duplicate_effects"].fillna(0).sum() > 0:
            duplicates = _estimate(rows["affected_duplicate_effects"], ",.0f")
            text += f"; {duplicates} duplicate effects in affected workflows"
        components = sorted({c for cell in rows["affected_components"] for c in str(cell).split(";") if c})
        if components:
            text += f"; also affected: {', '.join(components)}"
        lines.append(text)
    return lines
