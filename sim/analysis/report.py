"""One self-contained HTML report of a run: ``report.html`` in the run folder.

The page carries everything inline (plots as ``data:`` images, a small stylesheet, no script), so
it opens from disk in any browser, offline, and can be mailed as one file. It shows the scenario,
the facts of the run, the side-by-side table of ``sim run``, the paired differences, the
components, the verdicts on the scenario's objectives and every standard plot, and ends with the
resolved scenario. All text that comes from the user (names, descriptions) is escaped.

This module does not import the simulation engine; :func:`write_report` reads the run folder
through :func:`sim.read_run`, imported when called.
"""

from __future__ import annotations

import base64
import io
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import pandas as pd
import yaml

from sim.analysis.plots import PNG_DPI, standard_plots, topology_colours
from sim.analysis.statistics import format_difference

if TYPE_CHECKING:
    from sim.experiment.results import RunResult

REPORT_NAME = "report.html"

RUN_FILES = (
    "scenario.yaml",
    "meta.json",
    "summary.csv",
    "components.csv",
    "requests.parquet",
    "timeseries.csv",
)
"""Files that make a folder a run folder (see :mod:`sim.experiment.rundir`)."""

TABLE_ROWS = [
    ("arrived", "arrived", ""),
    ("completed", "completed", ""),
    ("failed", "failed", ""),
    ("compensated", "compensated", ""),
    ("inconsistent", "inconsistent", ""),
    ("lost", "lost", ""),
    ("in flight", "in_flight", ""),
    ("throughput (/s)", "throughput", ""),
    ("latency mean", "latency_mean", "s"),
    ("latency p50", "latency_p50", "s"),
    ("latency p95", "latency_p95", "s"),
    ("latency p99", "latency_p99", "s"),
    ("latency max", "latency_max", "s"),
    ("messages / workflow", "messages_per_workflow", ""),
    ("bottleneck", "bottleneck", ""),
    ("bottleneck utilization", "bottleneck_utilization", "%"),
]
"""Rows of the side-by-side table: the same as the table ``sim run`` prints. A row whose column
the summary lacks (a run folder written by an older version) is left out."""

ASYNC_ROWS = [("async completion p50", "async_latency_p50"), ("async completion p99", "async_latency_p99")]

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
        "the warm-up is shaded.",
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


class NotARunFolder(ValueError):
    """The folder given to :func:`write_report` is not a readable run folder."""


# --- formatting ---------------------------------------------------------------------------------


def _missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _fmt(value: object, unit: str = "") -> str:
    """A cell as ``sim run`` prints it (seconds below 1 s in ms, fractions as %)."""
    if _missing(value):
        return "-"
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        value = float(value) if unit else value
    if isinstance(value, float):
        if unit == "" and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if unit == "s":
            return f"{value * 1000:.1f} ms" if abs(value) < 1 else f"{value:.3f} s"
        if unit == "%":
            return f"{value * 100:.1f} %"
        return f"{value:.2f}"
    return str(value)


def _fmt_interval(mean: float, half: float, unit: str) -> str:
    """``mean ± half`` with the unit written once, as in ``sim run``."""
    if math.isnan(half):
        return _fmt(mean, unit)
    if unit == "s":
        scale, suffix = (1000.0, " ms") if abs(mean) < 1 else (1.0, " s")
        return f"{mean * scale:.1f} ± {half * scale:.1f}{suffix}"
    if unit == "%":
        return f"{mean * 100:.1f} ± {half * 100:.1f} %"
    return f"{mean:.2f} ± {half:.2f}"


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
    if meta.get("created"):
        items.append(("created", str(meta["created"])))
    if isinstance(meta.get("wall_seconds"), int | float):
        items.append(("wall time", f"{meta['wall_seconds']:.1f} s"))
    versions = meta.get("versions")
    if isinstance(versions, Mapping) and versions:
        items.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
    return f'<dl class="facts">{rows}</dl>'


def _mode(result: RunResult, name: str) -> object:
    values = result.summary.loc[result.summary["topology"] == name, "bottleneck"].dropna()
    return values.mode().iloc[0] if not values.empty else None


def side_by_side_rows(result: RunResult) -> list[tuple[str, list[str]]]:
    """The rows of the side-by-side table as text: (label, one cell per topology)."""
    names = result.topologies
    reps = result.replications
    summary = result.summary
    first = {n: summary[summary["topology"] == n].iloc[0] for n in names}
    intervals = result.intervals.set_index("topology")
    rows = []
    for label, key, unit in TABLE_ROWS:
        if key not in summary.columns:
            continue
        cells = []
        for name in names:
            if reps == 1 or key not in intervals.columns:
                value = first[name].get(key) if key != "bottleneck" or reps == 1 else _mode(result, name)
                cells.append(_fmt(value, unit))
            else:
                mean, half = intervals.loc[name, key], intervals.loc[name, f"{key}_half_width"]
                cells.append(_fmt_interval(float(mean), float(half), unit))
        rows.append((label, cells))
    if "async_steps" in summary.columns and any(bool(first[n]["async_steps"]) for n in names):
        for label, key in ASYNC_ROWS:
            if key in summary.columns:
                rows.append(
                    (label, [_fmt(summary[summary["topology"] == n][key].mean(), "s") for n in names])
                )
    return rows


def _side_by_side(result: RunResult, colours: Mapping[str, str]) -> str:
    header = ["metric", *(_swatch(n, colours) for n in result.topologies)]
    rows = [[_e(label), *(_e(c) for c in cells)] for label, cells in side_by_side_rows(result)]
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
    necks = {n: _mode(result, n) for n in result.topologies}
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


def _verdict_value(value: object) -> str:
    if _missing(value):
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _verdicts(result: RunResult) -> str:
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
    return summary + _table(list(VERDICT_KEYS), rows, classes)


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
    makers = standard_plots(result)
    order = [n for n in PLOT_ORDER if n in makers] + [n for n in makers if n not in PLOT_ORDER]
    parts = []
    for name in order:
        title, caption = PLOT_CAPTIONS.get(name, (name.replace("_", " "), ""))
        fig = makers[name]()
        try:
            uri = _figure_uri(fig, images)
        finally:
            plt.close(fig)
        parts.append(
            f'<figure id="plot-{_e(name)}"><h3>{_e(title)}</h3>'
            f'<img src="{uri}" alt="{_e(title)}"><figcaption>{_e(caption)}</figcaption></figure>'
        )
    return "".join(parts)


def _scenario_yaml(result: RunResult) -> str:
    data = result.scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


SECTIONS = [
    ("scenario", "Scenario"),
    ("comparison", "Side by side"),
    ("differences", "Paired differences"),
    ("components", "Components"),
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
    nav = "".join(f'<a href="#{key}">{_e(label)}</a>' for key, label in SECTIONS)
    body = {
        "scenario": description + _facts(result),
        "comparison": _side_by_side(result, colours),
        "differences": _differences(result),
        "components": _components(result, colours),
        "verdicts": _verdicts(result),
        "plots": _plots(result, images),
        "scenario-file": f"<pre>{_e(_scenario_yaml(result))}</pre>",
    }
    sections = "\n".join(
        f'<section id="{key}"><h2>{_e(label)}</h2>\n{body[key]}\n</section>' for key, label in SECTIONS
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>{_e(sc.name)}</h1><nav>{nav}</nav></header>\n"
        f"{sections}\n</body>\n</html>\n"
    )


def _check_run_folder(folder: Path) -> None:
    if not folder.exists():
        raise NotARunFolder(f"{folder}: no such folder")
    if not folder.is_dir():
        raise NotARunFolder(f"{folder}: not a run folder (not a folder)")
    missing = [name for name in RUN_FILES if not (folder / name).is_file()]
    if missing:
        raise NotARunFolder(f"{folder}: not a run folder (missing {', '.join(missing)})")


def write_report(folder: str | Path, out: str | Path | None = None, images: str = "svg") -> Path:
    """Read the run folder ``folder`` and write its report atomically, by default as
    ``folder/report.html`` (``out``: another file, or a folder to write ``report.html`` into);
    return the path written. Raises :class:`NotARunFolder` when ``folder`` is not a readable run
    folder, and :class:`~sim.scenario.loader.ScenarioError` when its scenario is invalid."""
    from sim.experiment.rundir import read_run

    folder = Path(folder)
    _check_run_folder(folder)
    try:
        result = read_run(folder)
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())  # one line
        raise NotARunFolder(f"{folder}: cannot read the run folder ({type(exc).__name__}: {reason})") from exc
    target = folder / REPORT_NAME if out is None else Path(out)
    if target.is_dir():
        target = target / REPORT_NAME
    html = render_report(result, images=images)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
