"""One self-contained HTML report of a run: ``report.html`` in the run folder.

The page carries everything inline (plots as ``data:`` images, a small stylesheet, no script), so
it opens from disk in any browser, offline, and can be mailed as one file. It shows the scenario,
the facts of the run, the side-by-side table of ``sim run`` (with the six outcomes of a workflow),
with more than one workflow the same figures per workflow, the paired differences, the
components, for a run with faults the fault windows and the blast radius against the fault-free
baseline (with their two plots), the verdicts on the scenario's objectives with the ranked
recommendation, and every standard plot (fault windows shaded in the timelines), and ends with the
resolved scenario.

The work is split in two so that no user text can ever reach the page unescaped: this module
turns the frames into plain data (strings, numbers, booleans, lists of rows; every number written
by :mod:`sim.analysis.formatting`), and the Jinja2 template ``templates/report.html.j2`` does all
the markup, with autoescaping on. Names, descriptions and fault targets are therefore escaped by
the template engine, and text that looks like a template (``{{ 7*7 }}``) is shown, not evaluated.

The report reads a run through :class:`ReportFrames`, a protocol, rather than the API's
``RunResult``: the API layer sits above analysis (its ``write_report`` reads the run folder and
calls :func:`render_report`), so this module must not know it. Nothing here imports the
simulation engine.
"""

from __future__ import annotations

import base64
import functools
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from sim.analysis.blast_radius import blast_radius_summary_lines
from sim.analysis.formatting import MINUS, as_stated, cell, count, factor, margin, missing, quantity, target
from sim.analysis.plots import blast_radius_bars, fault_timelines, standard_plots, topology_colours
from sim.analysis.plots.style import write_figure
from sim.analysis.statistics import format_difference
from sim.analysis.tables import WORKFLOW_DETAIL_ROWS, bottleneck_mode, side_by_side_rows, workflow_rows
from sim.scenario.models import Scenario

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TEMPLATE = "report.html.j2"
"""The page, in ``sim/analysis/templates`` (shipped as package data)."""

PLOT_CAPTIONS = {
    "latency_cdf": (
        "Latency distribution",
        "Empirical CDF of the latency of completed workflows that arrived in the measured window "
        "(log time axis).",
    ),
    "percentiles": (
        "Latency percentiles",
        "p50, p95 and p99 per topology; with several replications, the mean and its interval.",
    ),
    "timelines": (
        "Over time",
        "Throughput, p99 latency and workflows in flight per time window (mean over replications); "
        "the warm-up is shaded grey.",
    ),
    "utilization": ("Utilization per component", "Busy servers ÷ servers, one bar per topology."),
    "utilization_heatmap": (
        "Utilization heatmap",
        "Component × topology, mean over replications; blank cells: unlimited servers or absent.",
    ),
    "bottleneck": (
        "Bottleneck",
        "The three most utilized components of each topology; the outlined bar is the bottleneck.",
    ),
    "replicas": (
        "Replicas over time",
        "Replicas of each autoscaled component, running (paid for) solid and serving dashed, one "
        "line per topology (its first replication), against the arrival rate in grey.",
    ),
}

FAULT_PLOT_CAPTIONS = {
    "fault_timelines": (
        "Faulted run against its baseline",
        "Per topology: throughput, p99 latency, failures and backlog per time window, the baseline "
        "(same seed, no faults) dashed, the run with faults solid, the fault windows shaded; mean "
        "over replications.",
    ),
    "blast_radius": (
        "Blast radius",
        "Per topology: affected share, recovery time, peak backlog (beside the baseline's, hatched) "
        "and retry amplification; error bars are 95 % t intervals over replications, * marks a "
        "topology that did not recover in some replication.",
    ),
}

PLOT_ORDER = [
    "latency_cdf",
    "percentiles",
    "timelines",
    "replicas",
    "utilization_heatmap",
    "bottleneck",
    "utilization",
]
"""Order of the plots in the report (every standard plot appears; unknown ones go last)."""


# --- what the report reads ----------------------------------------------------------------------


class _Timeseries(Protocol):
    """The part of a baseline the report draws: its time series."""

    @property
    def timeseries(self) -> pd.DataFrame: ...


class ReportFrames(Protocol):
    """The frames of a run the report reads. :class:`sim.analysis.evaluation.Evaluation` with a
    ``meta`` mapping satisfies it (the API's ``RunResult`` does); stating it here keeps the
    report below the API layer and says exactly what a report needs.

    The frames are plain attributes (as in the dataclass) so the run can also be handed to
    :func:`sim.analysis.plots.standard_plots`; what is derived is read-only."""

    scenario: Scenario
    seed: int
    summary: pd.DataFrame
    components: pd.DataFrame
    requests: pd.DataFrame
    timeseries: pd.DataFrame
    workflows: pd.DataFrame
    replicas: pd.DataFrame
    faults: pd.DataFrame
    blast_radius: pd.DataFrame
    verdicts: pd.DataFrame
    spans: pd.DataFrame

    @property
    def baseline(self) -> _Timeseries | None: ...

    @property
    def meta(self) -> Mapping[str, Any]: ...

    @property
    def topologies(self) -> list[str]: ...

    @property
    def replications(self) -> int: ...

    @property
    def confidence(self) -> float: ...

    @property
    def intervals(self) -> pd.DataFrame: ...

    @property
    def workflow_intervals(self) -> pd.DataFrame: ...

    @property
    def differences(self) -> pd.DataFrame: ...

    def recommendation(self) -> list[str]: ...

    def fault_windows(self) -> list[tuple[float, float, str]]: ...


# --- what the template gets ---------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A table for the template's ``table`` macro, as plain values.

    ``kinds`` says per column how the template shows a value: ``text`` as is; ``topology`` as the
    name after its colour swatch; ``verdict`` (True, False or None) as met, not met or ``-``;
    ``certainty`` (True, False or None) as confident, undecided or nothing. ``header_kinds`` does
    the same for the header cells; ``row_classes`` holds a CSS class per row ("" for none)."""

    header: list[str]
    rows: list[list[object]]
    kinds: list[str]
    header_kinds: list[str]
    row_classes: list[str]


def _table(
    header: list[str],
    rows: list[list[object]],
    kinds: Mapping[int, str] | None = None,
    header_kinds: Mapping[int, str] | None = None,
    row_classes: list[str] | None = None,
) -> Table:
    """A :class:`Table` whose columns are ``text`` unless ``kinds`` (column index → kind) says
    otherwise, so the template never meets a missing kind."""
    width = len(header)
    return Table(
        header=header,
        rows=rows,
        kinds=[(kinds or {}).get(i, "text") for i in range(width)],
        header_kinds=[(header_kinds or {}).get(i, "text") for i in range(width)],
        row_classes=row_classes if row_classes is not None else [""] * len(rows),
    )


@dataclass(frozen=True)
class Plot:
    """One figure of the page: its anchor name, title, caption and inline ``data:`` URI."""

    name: str
    title: str
    caption: str
    uri: str


@dataclass(frozen=True)
class FaultSection:
    """The faults and blast-radius section: the distinct fault windows (None when none was
    recorded), how many more there were beyond the table and in how many runs they could occur
    (0: the frame does not say), the CLI's summary lines, the compact blast-radius table, the
    replications its values are means over, and the two plots."""

    windows: Table | None
    more_windows: int
    runs: int
    summary_lines: list[str]
    blast: Table
    replications: int
    plots: list[Plot]


@dataclass(frozen=True)
class VerdictSection:
    """The verdicts: the table (None: no objectives stated), how many were decided and met,
    whether they were judged from ``result.verdicts`` (``detailed``: the template explains margin
    and confidence) or shown as ``meta.json`` holds them, and the ranked recommendation."""

    table: Table | None
    met: int
    decided: int
    detailed: bool
    recommendation: list[str]


# --- the sections, as data ----------------------------------------------------------------------


def _autoscaled(sc: Scenario) -> list[str]:
    """Each autoscaled component with its bounds, metric and target, as the report states them."""
    found = [(name, svc.autoscale) for name, svc in sc.services.items()]
    found += [
        (f"orchestrator ({name})", topo.orchestrator.autoscale)
        for name, topo in sc.topologies.items()
        if topo.orchestrator is not None
    ]
    return [
        f"{name} {a.min}-{a.max} replicas on {a.metric} (target {a.target:g}, startup {a.startup_time:g} s)"
        for name, a in found
        if a is not None
    ]


def _facts(result: ReportFrames) -> list[tuple[str, str]]:
    sc, meta = result.scenario, result.meta
    warmup = f"{float(sc.warmup):g} s" if sc.warmup != "auto" else "auto"
    if meta.get("warmup_chosen_by") == "MSER-5":
        warmup += " (chosen by MSER-5)"
    items: list[tuple[str, str]] = [
        ("topologies", ", ".join(result.topologies)),
        ("seed", str(result.seed)),
        ("duration", f"{sc.duration:g} s of arrivals"),
        ("warm-up", warmup),
        ("measured window", f"[{float(sc.warmup_seconds):g} s, {sc.duration:g} s)"),
        ("drain", f"{sc.drain_time:g} s"),
        ("replications", str(result.replications)),
        ("confidence", f"{result.confidence:.0%}"),
    ]
    if sc.faults:
        items.append(("faults", f"{len(sc.faults)} (baseline run without them for the blast radius)"))
    scaled = _autoscaled(sc)
    if scaled:
        items.append(("autoscaling", "; ".join(scaled)))
    if meta.get("created"):
        items.append(("created", str(meta["created"])))
    if isinstance(meta.get("wall_seconds"), int | float):
        items.append(("wall time", f"{meta['wall_seconds']:.1f} s"))
    versions = meta.get("versions")
    if isinstance(versions, Mapping) and versions:
        items.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    return items


def _side_by_side(result: ReportFrames) -> Table:
    rows = side_by_side_rows(result)
    names = result.topologies
    return _table(
        ["metric", *names],
        [[row.label, *row.cells] for row in rows],
        header_kinds=dict.fromkeys(range(1, len(names) + 1), "topology"),
    )


def _workflows(result: ReportFrames) -> Table | None:
    """The side-by-side figures per workflow, a block of rows each (None with one workflow)."""
    groups = workflow_rows(result, WORKFLOW_DETAIL_ROWS)
    if not groups:
        return None
    names = result.topologies
    rows: list[list[object]] = []
    classes: list[str] = []
    for workflow, block in groups:
        for i, row in enumerate(block):
            rows.append([workflow if i == 0 else "", row.label, *row.cells])
            classes.append("first" if i == 0 else "")
    return _table(
        ["workflow", "metric", *names],
        rows,
        header_kinds=dict.fromkeys(range(2, len(names) + 2), "topology"),
        row_classes=classes,
    )


def _differences(result: ReportFrames) -> tuple[Table | None, str]:
    """The paired differences, or why there are none (``topologies``, ``replications``,
    ``pairs``)."""
    if len(result.topologies) < 2:
        return None, "topologies"
    if result.replications < 2:
        return None, "replications"
    frame = result.differences
    if frame.empty:
        return None, "pairs"
    rows: list[list[object]] = []
    for row in frame.to_dict("records"):
        scale, unit = (1.0, "/s") if row["metric"] == "throughput" else (1000.0, "ms")
        text = format_difference(row, unit_scale=scale, unit=unit)
        comparison = f"{row['topology']} {MINUS} {row['reference']}"
        unpaired = row.get("unpaired_half_width")
        rows.append(
            [
                row["metric"],
                comparison,
                text.removeprefix(f"{row['metric']}: {comparison} = "),
                "-" if missing(unpaired) else f"± {float(unpaired) * scale:.3g} {unit}",
                str(int(row["n"])),
            ]
        )
    header = ["metric", "comparison", f"difference [{result.confidence:.0%} interval]", "unpaired", "pairs"]
    return _table(header, rows), ""


COMPONENT_COLUMNS = [
    ("utilization", "utilization", "%"),
    ("mean busy", "mean_busy", ""),
    ("mean queue", "mean_queue", ""),
    ("max queue", "max_queue", ""),
    ("mean wait", "mean_wait", "s"),
    ("p99 wait", "p99_wait", "s"),
    ("handled", "handled", ""),
    ("rejected", "rejected", ""),
    ("errors", "errors", ""),
    ("blocked", "blocked", "%"),
    ("replicas mean", "replicas_mean", ""),
    ("replicas max", "replicas_max", ""),
    ("hottest shard", "hottest_shard_utilization", "%"),
    ("schedule-to-start p99", "schedule_to_start_p99", "s"),
    ("partitions", "partitions", ""),
    ("at once", "concurrency", ""),
    ("hottest partition", "hottest_partition_utilization", "%"),
    ("lag mean", "lag_mean", ""),
    ("lag max", "lag_max", ""),
    ("dead-lettered", "dead_lettered", ""),
    ("expired", "expired", ""),
]
"""(label, column of ``result.components``, unit) of the components table."""

OPTIONAL_COMPONENT_COLUMNS = {
    "blocked",
    "replicas_mean",
    "replicas_max",
    "hottest_shard_utilization",
    "schedule_to_start_p99",
    "partitions",
    "concurrency",
    "hottest_partition_utilization",
    "lag_mean",
    "lag_max",
    "dead_lettered",
    "expired",
}
"""Columns shown only when some component has a value there (an engine, poll dispatch, a
broker's consumer groups)."""


def _any_value(column: pd.Series) -> bool:
    values = pd.to_numeric(column, errors="coerce")
    return bool((values.notna() & (values != 0)).any())


def _components(result: ReportFrames) -> Table:
    comps = result.components
    shown = {
        c
        for _, c, _ in COMPONENT_COLUMNS
        if c in comps.columns and (c not in OPTIONAL_COMPONENT_COLUMNS or _any_value(comps[c]))
    }
    if "partitions" not in shown:  # what a component does at once differs from its servers only there
        shown.discard("concurrency")
    if result.replicas.empty:  # replicas vary only under an autoscaler
        shown -= {"replicas_mean", "replicas_max"}
    present = [c for c in COMPONENT_COLUMNS if c[1] in shown]
    necks = {n: bottleneck_mode(result.summary, n) for n in result.topologies}
    rows: list[list[object]] = []
    classes: list[str] = []
    for name in result.topologies:
        sel = comps[comps["topology"] == name]
        for comp, group in sel.groupby("name", sort=False):
            servers = group["servers"].iloc[0] if "servers" in group.columns else None
            cells: list[object] = [
                name,
                str(comp),
                str(group["kind"].iloc[0]) if "kind" in group.columns else "-",
                "∞" if missing(servers) else cell(servers),
            ]
            for _, key, unit in present:
                values = pd.to_numeric(group[key], errors="coerce")
                cells.append(cell(float(values.mean()) if values.notna().any() else None, unit))
            rows.append(cells)
            classes.append("bottleneck" if comp == necks.get(name) else "")
    header = ["topology", "component", "kind", "servers", *(label for label, _, _ in present)]
    return _table(header, rows, kinds={0: "topology"}, row_classes=classes)


VERDICT_KEYS = ("topology", "objective", "target", "measured", "met")
"""Columns of the verdicts as ``meta.json`` holds them (an older run folder)."""

VERDICT_COLUMNS = ("topology", "objective", "sense", "unit", "target", "measured", "met")
"""Columns :func:`_verdicts` needs of ``result.verdicts`` (see :mod:`sim.analysis.verdicts`);
without them (an older run folder) the report shows ``meta["verdicts"]`` as they are."""


def _flag(value: object) -> bool | None:
    """A met/confident cell as True, False or None (missing); a CSV read back gives text."""
    if missing(value):
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _verdicts(result: ReportFrames) -> VerdictSection:
    """The verdicts of ``result.verdicts`` and the ranked recommendation; for a result without
    that frame (or an older one), the verdicts of ``meta.json`` as they are."""
    frame = result.verdicts
    if isinstance(frame, pd.DataFrame) and not frame.empty and set(VERDICT_COLUMNS) <= set(frame.columns):
        return _verdict_table(result, frame)
    return _meta_verdicts(result)


def _verdict_table(result: ReportFrames, frame: pd.DataFrame) -> VerdictSection:
    reps = result.replications
    rows: list[list[object]] = []
    decided, met_count = 0, 0
    for objective in dict.fromkeys(frame["objective"]):
        for v in frame[frame["objective"] == objective].to_dict("records"):
            unit = "" if missing(v.get("unit")) else str(v["unit"])
            bound = "≤" if v.get("sense") == "max" else "≥"
            measured = quantity(v.get("measured"), unit)
            if reps > 1 and not (missing(v.get("low")) or missing(v.get("high"))):
                low = quantity(v["low"], unit, like=v.get("measured"))
                high = quantity(v["high"], unit, like=v.get("measured"))
                measured += f" [{low}, {high}]"
            met = _flag(v.get("met"))
            if met is not None:
                decided += 1
                met_count += int(met)
            rows.append(
                [
                    str(objective),
                    str(v["topology"]),
                    f"{bound} {target(v.get('target'), unit)}",
                    measured,
                    met,
                    _flag(v.get("confident")) if reps > 1 else None,
                    margin(v.get("margin"), v.get("relative_margin"), unit),
                ]
            )
    measured_head = f"measured [{result.confidence:.0%} interval]" if reps > 1 else "measured"
    header = ["objective", "topology", "target", measured_head, "verdict", "confidence", "margin"]
    table = _table(header, rows, kinds={1: "topology", 4: "verdict", 5: "certainty"})
    return VerdictSection(table, met_count, decided, True, _recommendation(result))


RANK_PREFIX = re.compile(r"^\s*\d+\.\s*")
"""The "1. " a recommendation sentence starts with (the ordered list numbers the items)."""


def _recommendation(result: ReportFrames) -> list[str]:
    try:
        lines = result.recommendation()
    except (KeyError, ValueError, TypeError):  # verdicts read from an older run folder
        lines = []
    if not lines:
        saved = result.meta.get("recommendation")
        lines = [str(x) for x in saved] if isinstance(saved, list) else []
    return [RANK_PREFIX.sub("", line) for line in lines]


def _meta_verdicts(result: ReportFrames) -> VerdictSection:
    verdicts = result.meta.get("verdicts")
    entries = [v for v in verdicts if isinstance(v, Mapping)] if isinstance(verdicts, list) else []
    if not entries:
        return VerdictSection(None, 0, 0, False, [])
    rows: list[list[object]] = [
        [*(as_stated(v.get(k)) for k in VERDICT_KEYS[:4]), None if v.get("met") is None else bool(v["met"])]
        for v in entries
    ]
    decided = [v for v in entries if v.get("met") is not None]
    met_count = sum(bool(v.get("met")) for v in decided)
    table = _table(list(VERDICT_KEYS), rows, kinds={4: "verdict"})
    return VerdictSection(table, met_count, len(decided), False, _recommendation(result))


# --- faults and blast radius --------------------------------------------------------------------

FAULT_WINDOW_LIMIT = 40
"""Most fault windows listed (a crash process yields many); the rest are counted."""

BLAST_COLUMNS = [
    ("affected", "affected", "count"),
    ("affected share", "affected_share", "%"),
    ("recovery time", "recovery_time", "s"),
    ("recovered", "recovered", "recovered"),
    ("peak backlog", "peak_backlog", "count"),
    ("drain time", "drain_time", "s"),
    ("retry amplification", "retry_amplification", "x"),
    ("duplicates", "duplicates", "count"),
    ("lost", "lost", "count"),
    ("affected components", "affected_components", "list"),
]
"""The compact blast-radius table: (label, column of ``result.blast_radius``, format)."""


def _radius_frame(result: ReportFrames) -> pd.DataFrame:
    """``result.blast_radius`` with empty text cells as "" (a CSV read back gives NaN)."""
    frame = result.blast_radius.copy()
    for col in ("affected_components", "fault_targets"):
        if col in frame.columns:
            frame[col] = frame[col].astype(object).where(frame[col].notna(), "").astype(str)
    return frame


def _fault_windows(result: ReportFrames) -> tuple[Table | None, int, int]:
    """The distinct fault windows, in order of start, and how many runs each occurred in; how
    many windows did not fit in the table; how many topology × replication runs there were (0 when
    the frame does not say)."""
    faults = result.faults
    keys = ["type", "target", "start", "end"]
    if faults.empty or not set(keys) <= set(faults.columns):
        return None, 0, 0
    scoped = {"topology", "replication"} <= set(faults.columns)
    runs = ["topology", "replication"] if scoped else []
    n_runs = len(faults[runs].drop_duplicates()) if scoped else 0
    distinct = (
        faults.drop_duplicates(keys + runs)
        .groupby(keys, sort=False, dropna=False)
        .size()
        .reset_index(name="runs")
        .sort_values(["start", "end"], kind="stable")
    )
    rows: list[list[object]] = []
    for w in distinct.head(FAULT_WINDOW_LIMIT).to_dict("records"):
        start, end = float(w["start"]), float(w["end"])
        cells: list[object] = [
            str(w["type"]),
            str(w["target"]),
            *(f"{t:g} s" for t in (start, end, end - start)),
        ]
        if scoped:
            cells.append("all" if w["runs"] == n_runs else f"{w['runs']} of {n_runs}")
        rows.append(cells)
    header = ["type", "target", "start", "end", "duration"] + (["runs"] if scoped else [])
    more = max(0, len(distinct) - FAULT_WINDOW_LIMIT)
    return _table(header, rows), more, n_runs


def _blast_cell(rows: pd.DataFrame, column: str, kind: str) -> str:
    """One cell of the blast-radius table: the mean over replications in the column's format, how
    many replications recovered, or the union of the affected components."""
    if column not in rows.columns:
        return "-"
    if kind == "list":
        names = sorted({c for value in rows[column] for c in str(value).split(";") if c and c != "nan"})
        return ", ".join(names) if names else "none"
    if kind == "recovered":
        flags = [_flag(v) for v in rows[column]]
        known = [f for f in flags if f is not None]
        if not known:
            return "-"
        if all(known) and len(known) == len(flags):
            return "yes"
        if not any(known):
            return "no"
        return f"{sum(known)} of {len(flags)}"
    values = pd.to_numeric(rows[column], errors="coerce")
    if not values.notna().any():
        return "-"
    mean = float(values.mean())
    if kind == "count":
        return count(mean)
    if kind == "x":
        return factor(mean)
    return cell(mean, kind)


def _blast_table(frame: pd.DataFrame) -> Table:
    present = [c for c in BLAST_COLUMNS if c[1] in frame.columns]
    rows: list[list[object]] = []
    for name in dict.fromkeys(frame["topology"]):
        sel = frame[frame["topology"] == name]
        rows.append([str(name), *(_blast_cell(sel, col, kind) for _, col, kind in present)])
    header = ["topology", *(label for label, _, _ in present)]
    return _table(header, rows, kinds={0: "topology"})


def _faults(result: ReportFrames, images: str) -> FaultSection:
    frame = _radius_frame(result)
    windows, more, n_runs = _fault_windows(result)
    plots: list[Plot] = []
    baseline = result.baseline
    if baseline is not None:
        title, caption = FAULT_PLOT_CAPTIONS["fault_timelines"]
        fig = fault_timelines(baseline.timeseries, result.timeseries, result.faults)
        plots.append(Plot("fault_timelines", title, caption, _figure_uri(fig, images)))
    title, caption = FAULT_PLOT_CAPTIONS["blast_radius"]
    plots.append(Plot("blast_radius", title, caption, _figure_uri(blast_radius_bars(frame), images)))
    return FaultSection(
        windows=windows,
        more_windows=more,
        runs=n_runs,
        summary_lines=blast_radius_summary_lines(frame),
        blast=_blast_table(frame),
        replications=int(frame["replication"].nunique()) if "replication" in frame.columns else 1,
        plots=plots,
    )


# --- plots --------------------------------------------------------------------------------------


def _figure_uri(fig: Figure, images: str) -> str:
    """The figure as a ``data:`` URI (base64 text, which needs no escaping)."""
    buffer = io.BytesIO()
    write_figure(fig, buffer, images)
    mime = "image/svg+xml" if images == "svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _plots(result: ReportFrames, images: str) -> list[Plot]:
    windows = result.fault_windows()
    makers = standard_plots(result, fault_windows=windows)
    order = [n for n in PLOT_ORDER if n in makers] + [n for n in makers if n not in PLOT_ORDER]
    plots = []
    for name in order:
        title, caption = PLOT_CAPTIONS.get(name, (name.replace("_", " "), ""))
        if name == "timelines" and windows:
            caption += " Fault windows are shaded pale red."
        plots.append(Plot(name, title, caption, _figure_uri(makers[name](), images)))
    return plots


def _scenario_yaml(result: ReportFrames) -> str:
    data = result.scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# --- the page -----------------------------------------------------------------------------------


@functools.cache
def _environment() -> Environment:
    """The Jinja2 environment of the report, made once: autoescaping on, so every value is
    escaped unless the template itself made it markup; an undefined name is an error rather than
    a silently empty cell."""
    return Environment(
        loader=PackageLoader("sim.analysis", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_report(result: ReportFrames, images: str = "svg") -> str:
    """The report of ``result`` as one self-contained HTML page. ``images`` is ``svg`` (crisp at
    any zoom) or ``png``; either way the plots are ``data:`` URIs inside the page."""
    if images not in ("svg", "png"):
        raise ValueError(f"images must be 'svg' or 'png', not {images!r}")
    sc = result.scenario
    differences, no_differences = _differences(result)
    has_faults = not result.blast_radius.empty
    context: dict[str, Any] = {
        "name": sc.name,
        "description": sc.description or "",
        "colours": topology_colours(result.topologies),
        "replications": result.replications,
        "confidence": f"{result.confidence:.0%}",
        "facts": _facts(result),
        "comparison": _side_by_side(result),
        "workflows": _workflows(result),
        "differences": differences,
        "no_differences": no_differences,
        "components": _components(result),
        "faults": _faults(result, images) if has_faults else None,
        "verdicts": _verdicts(result),
        "plots": _plots(result, images),
        "scenario_yaml": _scenario_yaml(result),
    }
    return _environment().get_template(TEMPLATE).render(context)
