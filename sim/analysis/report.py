"""One self-contained HTML report of a run: ``report.html`` in the run folder.

The page carries everything inline (plots as ``data:`` images, a small stylesheet, no script), so
it opens from disk in any browser, offline, and can be mailed as one file. It shows the scenario,
the facts of the run, the side-by-side table of ``sim run`` (with the six outcomes of a workflow),
the paired differences, the components, for a run with faults the fault windows and the blast
radius against the fault-free baseline (with their two plots), the verdicts on the scenario's
objectives with the ranked recommendation, and every standard plot (fault windows shaded in the
timelines), and ends with the resolved scenario. All text that comes from the user (names,
descriptions, fault targets) is escaped.

This module does not import the simulation engine; :func:`write_report` reads the run folder
through :func:`sim.read_run`, imported when called.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from sim.analysis.blast_radius import blast_radius_summary_lines
from sim.analysis.formatting import cell as _fmt
from sim.analysis.formatting import missing as _missing
from sim.analysis.plots import blast_radius_bars, fault_timelines, standard_plots, topology_colours
from sim.analysis.plots.style import PNG_DPI
from sim.analysis.statistics import format_difference
from sim.analysis.tables import bottleneck_mode, side_by_side_rows

if TYPE_CHECKING:
    from sim.api.results import RunResult

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

PLOT_ORDER = ["latency_cdf", "percentiles", "timelines", "utilization_heatmap", "bottleneck", "utilization"]
"""Order of the plots in the report (every standard plot appears; unknown ones go last)."""

STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #1d1d1f; max-width: 1120px; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
nav { font-size: 0.9em; color: #555; }
nav a { margin-right: 0.9em; color: #1f5fa8; text-decoration: none; }
.description { white-space: pre-line; color: #333; }
.note { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { padding: 0.28em 0.7em; border-bottom: 1px solid #e5e5e5; text-align: right; }
th { background: #f5f5f7; font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; }
tr.bottleneck td { font-weight: 600; }
.num { font-variant-numeric: tabular-nums; }
.met { color: #176b2c; font-weight: 600; }
.missed { color: #b3261e; font-weight: 600; }
.undecided { color: #8a5a00; }
ol.ranking li, ul.blast li { margin: 0.25em 0; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1.2em; }
dl.facts dt { color: #555; }
dl.facts dd { margin: 0; }
figure { margin: 1.2em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f7f7f9; border: 1px solid #e5e5e5; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px; margin-right: 0.35em;
          vertical-align: baseline; }
"""


# --- formatting ---------------------------------------------------------------------------------


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()) -> str:
    """An HTML table; ``header`` and ``rows`` hold already escaped HTML."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = classes[i] if i < len(classes) and classes[i] else ""
        attr = f' class="{cls}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f'<table class="num"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _swatch(name: str, colours: Mapping[str, str]) -> str:
    colour = colours.get(name, "#999999")
    return f'<span class="swatch" style="background:{_e(colour)}"></span>{_e(name)}'


# --- sections -----------------------------------------------------------------------------------


def _facts(result: RunResult) -> str:
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
    if meta.get("created"):
        items.append(("created", str(meta["created"])))
    if isinstance(meta.get("wall_seconds"), int | float):
        items.append(("wall time", f"{meta['wall_seconds']:.1f} s"))
    versions = meta.get("versions")
    if isinstance(versions, Mapping) and versions:
        items.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
    return f'<dl class="facts">{rows}</dl>'


def _side_by_side(result: RunResult, colours: Mapping[str, str]) -> str:
    header = ["metric", *(_swatch(n, colours) for n in result.topologies)]
    rows = [[_e(row.label), *(_e(c) for c in row.cells)] for row in side_by_side_rows(result)]
    note = ""
    if result.replications > 1:
        note = (
            f'<p class="note">{result.replications} replications: each cell is the mean ± the half-width '
            f"of its {result.confidence:.0%} Student-t interval.</p>"
        )
    return _table(header, rows) + note


def _differences(result: RunResult) -> str:
    if len(result.topologies) < 2:
        return '<p class="note">One topology: nothing to compare.</p>'
    if result.replications < 2:
        return (
            '<p class="note">One replication: no interval for the differences between topologies. '
            "Run with <code>--replications N</code> (N ≥ 2) for paired comparisons.</p>"
        )
    frame = result.differences
    if frame.empty:
        return '<p class="note">No paired differences.</p>'
    rows = []
    for row in frame.to_dict("records"):
        scale, unit = (1.0, "/s") if row["metric"] == "throughput" else (1000.0, "ms")
        text = format_difference(row, unit_scale=scale, unit=unit)
        head = f"{row['metric']}: {row['topology']} \N{MINUS SIGN} {row['reference']} = "
        unpaired = row.get("unpaired_half_width")
        rows.append(
            [
                _e(row["metric"]),
                f"{_e(row['topology'])} \N{MINUS SIGN} {_e(row['reference'])}",
                _e(text.removeprefix(head)),
                "-" if _missing(unpaired) else _e(f"± {float(unpaired) * scale:.3g} {unit}"),
                _e(int(row["n"])),
            ]
        )
    header = ["metric", "comparison", f"difference [{result.confidence:.0%} interval]", "unpaired", "pairs"]
    note = (
        '<p class="note">Differences are paired replication by replication (common random numbers); '
        "“unpaired” is the half-width the same values would give as independent samples.</p>"
    )
    return _table(header, rows) + note


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
]


def _components(result: RunResult, colours: Mapping[str, str]) -> str:
    comps = result.components
    present = [c for c in COMPONENT_COLUMNS if c[1] in comps.columns]
    necks = {n: bottleneck_mode(result.summary, n) for n in result.topologies}
    rows, classes = [], []
    for name in result.topologies:
        sel = comps[comps["topology"] == name]
        for comp, group in sel.groupby("name", sort=False):
            servers = group["servers"].iloc[0] if "servers" in group.columns else None
            cells = [
                _swatch(name, colours),
                _e(comp),
                _e(group["kind"].iloc[0]) if "kind" in group.columns else "-",
                "∞" if _missing(servers) else _e(_fmt(servers)),
            ]
            for _, key, unit in present:
                values = pd.to_numeric(group[key], errors="coerce")
                cells.append(_e(_fmt(float(values.mean()) if values.notna().any() else None, unit)))
            rows.append(cells)
            classes.append("bottleneck" if comp == necks.get(name) else "")
    header = ["topology", "component", "kind", "servers", *(label for label, _, _ in present)]
    note = '<p class="note">Over the measured window; bold: the topology\'s bottleneck; servers ∞: unlimited.'
    if result.replications > 1:
        note += f" Each value is the mean over {result.replications} replications."
    return _table(header, rows, classes) + note + "</p>"


VERDICT_KEYS = ("topology", "objective", "target", "measured", "met")

VERDICT_COLUMNS = ("topology", "objective", "sense", "unit", "target", "measured", "met")
"""Columns :func:`_verdicts` needs of ``result.verdicts`` (see :mod:`sim.analysis.verdicts`);
without them (an older run folder) the report shows ``meta["verdicts"]`` as they are."""


def _verdict_value(value: object) -> str:
    if _missing(value):
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _quantity(value: object, unit: str, like: object = None) -> str:
    """A value of an objective in its unit: seconds as ms below 1 s, shares as %, throughput per
    s. ``like``: the value whose size picks the scale (so an interval reads like its mean)."""
    if _missing(value):
        return "-"
    value = float(value)  # type: ignore[arg-type]
    ref = value if _missing(like) else float(like)  # type: ignore[arg-type]
    if unit == "s":
        return f"{value * 1000:.1f} ms" if abs(ref) < 1 else f"{value:.3f} s"
    if unit == "%":
        return f"{value * 100:.2f} %"
    if unit == "/s":
        return f"{value:.2f} /s"
    return f"{value:.4g}{(' ' + unit) if unit else ''}"


def _target(value: object, unit: str) -> str:
    """A target as stated, in the unit of :func:`_quantity` without padding digits."""
    if _missing(value):
        return "-"
    value = float(value)  # type: ignore[arg-type]
    if unit == "s":
        return f"{value * 1000:g} ms" if abs(value) < 1 else f"{value:g} s"
    if unit == "%":
        return f"{value * 100:g} %"
    if unit == "/s":
        return f"{value:g} /s"
    return f"{value:g}{(' ' + unit) if unit else ''}"


MINUS = "\N{MINUS SIGN}"


def _margin(value: object, relative: object, unit: str) -> str:
    """The signed distance to the target on the good side (negative: missed) and its share of
    the target."""
    if _missing(value):
        return "-"
    value = float(value)  # type: ignore[arg-type]
    sign = "+" if value >= 0 else MINUS
    if unit == "%":
        text = f"{sign}{abs(value) * 100:.2f} points"
    else:
        text = sign + _quantity(abs(value), unit)
    if not _missing(relative) and math.isfinite(float(relative)):  # type: ignore[arg-type]
        rel = float(relative)  # type: ignore[arg-type]
        text += f" ({'+' if rel >= 0 else MINUS}{abs(rel):.0%})"
    return text


def _flag(value: object) -> bool | None:
    """A met/confident cell as True, False or None (missing)."""
    if _missing(value):
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _verdicts(result: RunResult, colours: Mapping[str, str]) -> str:
    """The verdicts of ``result.verdicts`` and the ranked recommendation; for a result without
    that frame (or an older one), the verdicts of ``meta.json`` as they are."""
    frame = result.verdicts
    if isinstance(frame, pd.DataFrame) and not frame.empty and set(VERDICT_COLUMNS) <= set(frame.columns):
        return _verdict_table(result, frame, colours)
    return _meta_verdicts(result)


def _verdict_table(result: RunResult, frame: pd.DataFrame, colours: Mapping[str, str]) -> str:
    reps = result.replications
    rows, decided, met_count = [], 0, 0
    order = list(dict.fromkeys(frame["objective"]))
    for objective in order:
        for v in frame[frame["objective"] == objective].to_dict("records"):
            unit = "" if _missing(v.get("unit")) else str(v["unit"])
            bound = "≤" if v.get("sense") == "max" else "≥"
            measured = _quantity(v.get("measured"), unit)
            if reps > 1 and not (_missing(v.get("low")) or _missing(v.get("high"))):
                low = _quantity(v["low"], unit, like=v.get("measured"))
                high = _quantity(v["high"], unit, like=v.get("measured"))
                measured += f" [{low}, {high}]"
            met = _flag(v.get("met"))
            if met is None:
                status = "-"
            else:
                decided += 1
                met_count += int(met)
                status = '<span class="met">met</span>' if met else '<span class="missed">not met</span>'
            confident = _flag(v.get("confident")) if reps > 1 else None
            if confident is None:
                certainty = ""
            elif confident:
                certainty = "confident"
            else:
                certainty = '<span class="undecided">undecided</span>'
            rows.append(
                [
                    _e(objective),
                    _swatch(str(v["topology"]), colours),
                    _e(f"{bound} {_target(v.get('target'), unit)}"),
                    _e(measured),
                    status,
                    certainty,
                    _e(_margin(v.get("margin"), v.get("relative_margin"), unit)),
                ]
            )
    measured_head = f"measured [{result.confidence:.0%} interval]" if reps > 1 else "measured"
    header = ["objective", "topology", "target", measured_head, "verdict", "confidence", "margin"]
    summary = f"<p>{met_count} of {decided} objectives met.</p>" if decided else ""
    note = (
        '<p class="note">Measured: the mean over replications. Margin: the distance to the target '
        "on the good side (negative when missed) and, in brackets, relative to the target; shares "
        "in percentage points."
    )
    if reps > 1:
        note += (
            " Confident: the whole interval is on the side of the mean; undecided: the interval "
            "straddles the target."
        )
    else:
        note += " One replication: no interval, so no confident or undecided judgement."
    note += "</p>"
    return summary + _table(header, rows) + note + _recommendation(result)


RANK_PREFIX = re.compile(r"^\s*\d+\.\s*")
"""The "1. " a recommendation sentence starts with (the ordered list numbers the items)."""


def _recommendation(result: RunResult) -> str:
    try:
        lines = result.recommendation()
    except (KeyError, ValueError, TypeError):  # verdicts read from an older run folder
        lines = []
    if not lines:
        saved = result.meta.get("recommendation")
        lines = [str(x) for x in saved] if isinstance(saved, list) else []
    if not lines:
        return ""
    items = "".join(f"<li>{_e(RANK_PREFIX.sub('', line))}</li>" for line in lines)
    return (
        "<h3>Recommendation</h3>"
        '<p class="note">Ranked by objectives met, then by the total relative shortfall, then by '
        "p99 latency.</p>"
        f'<ol class="ranking">{items}</ol>'
    )


def _meta_verdicts(result: RunResult) -> str:
    verdicts = result.meta.get("verdicts")
    if not isinstance(verdicts, list) or not verdicts:
        return "<p>No objectives stated in the scenario.</p>"
    entries = [v for v in verdicts if isinstance(v, Mapping)]
    if not entries:
        return "<p>No objectives stated in the scenario.</p>"
    rows, classes = [], []
    for v in entries:
        met = v.get("met")
        if met is None:
            status = "-"
        elif bool(met):
            status = '<span class="met">met</span>'
        else:
            status = '<span class="missed">not met</span>'
        rows.append([*(_e(_verdict_value(v.get(k))) for k in VERDICT_KEYS[:4]), status])
        classes.append("")
    decided = [v for v in entries if v.get("met") is not None]
    met_count = sum(bool(v.get("met")) for v in decided)
    summary = f"<p>{met_count} of {len(decided)} objectives met.</p>" if decided else ""
    return summary + _table(list(VERDICT_KEYS), rows, classes) + _recommendation(result)


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


def _radius_frame(result: RunResult) -> pd.DataFrame:
    """``result.blast_radius`` with empty text cells as "" (a CSV read back gives NaN)."""
    frame = result.blast_radius.copy()
    for col in ("affected_components", "fault_targets"):
        if col in frame.columns:
            frame[col] = frame[col].astype(object).where(frame[col].notna(), "").astype(str)
    return frame


def _count(value: float) -> str:
    if _missing(value):
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _fault_windows_table(result: RunResult) -> str:
    """The distinct fault windows, in order of start, and how many runs each occurred in."""
    faults = result.faults
    keys = ["type", "target", "start", "end"]
    if faults.empty or not set(keys) <= set(faults.columns):
        return '<p class="note">No fault window was recorded.</p>'
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
    rows = []
    for w in distinct.head(FAULT_WINDOW_LIMIT).to_dict("records"):
        start, end = float(w["start"]), float(w["end"])
        cells = [_e(w["type"]), _e(w["target"]), *(_e(f"{t:g} s") for t in (start, end, end - start))]
        if scoped:
            cells.append("all" if w["runs"] == n_runs else _e(f"{w['runs']} of {n_runs}"))
        rows.append(cells)
    header = ["type", "target", "start", "end", "duration"] + (["runs"] if scoped else [])
    note = ""
    if len(distinct) > FAULT_WINDOW_LIMIT:
        more = len(distinct) - FAULT_WINDOW_LIMIT
        note = f'<p class="note">… and {more} more windows (see faults.csv).</p>'
    if scoped:
        note += (
            '<p class="note">Runs: in how many of the topology × replication runs the window '
            f"occurred ({n_runs} in all).</p>"
        )
    return _table(header, rows) + note


def _blast_cell(rows: pd.DataFrame, column: str, kind: str) -> str:
    if column not in rows.columns:
        return "-"
    if kind == "list":
        names = sorted({c for cell in rows[column] for c in str(cell).split(";") if c and c != "nan"})
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
        return _count(mean)
    if kind == "x":
        return f"{mean:.2f}×"
    return _fmt(mean, kind)


def _blast_table(result: RunResult, frame: pd.DataFrame, colours: Mapping[str, str]) -> str:
    present = [c for c in BLAST_COLUMNS if c[1] in frame.columns]
    rows = []
    for name in dict.fromkeys(frame["topology"]):
        sel = frame[frame["topology"] == name]
        rows.append(
            [_swatch(str(name), colours), *(_e(_blast_cell(sel, col, kind)) for _, col, kind in present)]
        )
    header = ["topology", *(label for label, _, _ in present)]
    reps = frame["replication"].nunique() if "replication" in frame.columns else 1
    note = (
        '<p class="note">Each workflow is compared with its twin in the baseline (same seed, no '
        "faults). Affected share: of the workflows arriving in the impact window; recovery time: "
        "from the end of the last fault until throughput and p99 are back in the baseline's band; "
        "drain time: until the backlog is back; retry amplification: service calls attempted ÷ the "
        "baseline's; affected components: other components pushed out of their baseline band."
    )
    if reps > 1:
        note += f" Each value is the mean over {reps} replications; recovered: in how many."
    return _table(header, rows) + note + "</p>"


def _figure(name: str, title: str, caption: str, fig: Any, images: str) -> str:
    uri = _figure_uri(fig, images)
    return (
        f'<figure id="plot-{_e(name)}"><h3>{_e(title)}</h3>'
        f'<img src="{uri}" alt="{_e(title)}"><figcaption>{_e(caption)}</figcaption></figure>'
    )


def _faults(result: RunResult, colours: Mapping[str, str], images: str) -> str:
    frame = _radius_frame(result)
    lines = "".join(f"<li>{_e(line)}</li>" for line in blast_radius_summary_lines(frame))
    parts = [
        "<h3>Fault windows</h3>",
        _fault_windows_table(result),
        "<h3>Blast radius</h3>",
        f'<ul class="blast">{lines}</ul>' if lines else "",
        _blast_table(result, frame, colours),
    ]
    makers: list[tuple[str, Any]] = []
    if result.baseline is not None:
        baseline = result.baseline
        makers.append(
            (
                "fault_timelines",
                lambda: fault_timelines(baseline.timeseries, result.timeseries, result.faults),
            )
        )
    makers.append(("blast_radius", lambda: blast_radius_bars(frame)))
    for name, make in makers:
        title, caption = FAULT_PLOT_CAPTIONS[name]
        parts.append(_figure(name, title, caption, make(), images))
    return "".join(parts)


def _figure_uri(fig: Any, images: str) -> str:
    buffer = io.BytesIO()
    if images == "svg":
        fig.savefig(buffer, format="svg", metadata={"Date": None})
        mime = "image/svg+xml"
    else:
        fig.savefig(buffer, format="png", dpi=PNG_DPI)
        mime = "image/png"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _plots(result: RunResult, images: str) -> str:
    windows = result.fault_windows()
    makers = standard_plots(result, fault_windows=windows)
    order = [n for n in PLOT_ORDER if n in makers] + [n for n in makers if n not in PLOT_ORDER]
    parts = []
    for name in order:
        title, caption = PLOT_CAPTIONS.get(name, (name.replace("_", " "), ""))
        if name == "timelines" and windows:
            caption += " Fault windows are shaded pale red."
        parts.append(_figure(name, title, caption, makers[name](), images))
    return "".join(parts)


def _scenario_yaml(result: RunResult) -> str:
    data = result.scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


SECTIONS = [
    ("scenario", "Scenario"),
    ("comparison", "Side by side"),
    ("differences", "Paired differences"),
    ("components", "Components"),
    ("faults", "Faults and blast radius"),
    ("verdicts", "Verdicts"),
    ("plots", "Plots"),
    ("scenario-file", "Resolved scenario"),
]


def render_report(result: RunResult, images: str = "svg") -> str:
    """The report of ``result`` as one self-contained HTML page. ``images`` is ``svg`` (crisp at
    any zoom) or ``png``; either way the plots are ``data:`` URIs inside the page."""
    if images not in ("svg", "png"):
        raise ValueError(f"images must be 'svg' or 'png', not {images!r}")
    sc = result.scenario
    colours = topology_colours(result.topologies)
    title = f"{sc.name}: orchestration-sim report"
    description = (
        f'<p class="description">{_e(sc.description)}</p>'
        if sc.description
        else '<p class="note">(no description)</p>'
    )
    has_faults = not result.blast_radius.empty
    shown = [(key, label) for key, label in SECTIONS if key != "faults" or has_faults]
    nav = "".join(f'<a href="#{key}">{_e(label)}</a>' for key, label in shown)
    body = {
        "scenario": description + _facts(result),
        "comparison": _side_by_side(result, colours),
        "differences": _differences(result),
        "components": _components(result, colours),
        "faults": _faults(result, colours, images) if has_faults else "",
        "verdicts": _verdicts(result, colours),
        "plots": _plots(result, images),
        "scenario-file": f"<pre>{_e(_scenario_yaml(result))}</pre>",
    }
    sections = "\n".join(
        f'<section id="{key}"><h2>{_e(label)}</h2>\n{body[key]}\n</section>' for key, label in shown
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>{_e(sc.name)}</h1><nav>{nav}</nav></header>\n"
        f"{sections}\n</body>\n</html>\n"
    )
