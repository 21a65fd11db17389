"""Standard plots of a run, as matplotlib Figures (one style, one fixed colour per topology).

Every function takes frames (requests, time series, components, summary) and returns a Figure,
so notebooks can restyle or combine them; :func:`standard_plots` lists the set a run folder
carries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import matplotlib.transforms as mtransforms
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from sim.analysis.plots.style import (
    FAULT_COLOUR,
    check_formats,
    decimal_log_labels,
    save_figure,
    styled,
    subplots,
    topology_colours,
)
from sim.analysis.statistics import t_interval
from sim.scenario.models import Scenario

CDF_POINTS = 2000
"""Points per topology drawn by :func:`latency_cdf` (the curve is thinned beyond that)."""


@styled
def latency_cdf(requests: pd.DataFrame, warmup: float = 0.0, duration: float = np.inf) -> Figure:
    """Empirical CDF of workflow latency per topology, on a log time axis.

    Beyond :data:`CDF_POINTS` completed workflows the curve is drawn through evenly spaced
    quantiles (and the maximum), which is indistinguishable on screen and keeps SVGs small."""
    fig, ax = subplots(figsize=(7, 4.2))
    names = list(dict.fromkeys(requests["topology"]))
    colours = topology_colours(names)
    for name in names:
        sel = requests[
            (requests["topology"] == name)
            & (requests["status"] == "completed")
            & (requests["arrival"] >= warmup)
            & (requests["arrival"] < duration)
        ]
        lat = np.sort(sel["latency"].to_numpy())
        if lat.size == 0:
            continue
        rank = np.arange(1, lat.size + 1)
        if lat.size > CDF_POINTS:
            keep = np.unique(np.linspace(0, lat.size - 1, CDF_POINTS).round().astype(int))
            lat, rank = lat[keep], rank[keep]
        ax.plot(lat, rank / rank[-1], label=name, color=colours[name])
    ax.set_xscale("log")
    decimal_log_labels(ax.xaxis)
    ax.set_xlabel("workflow latency (s)")
    ax.set_ylabel("fraction of completed workflows")
    ax.set_title("Latency distribution")
    ax.grid(True, which="both", alpha=0.3)
    if ax.lines:
        ax.legend()
    else:
        note = "no workflow completed"
        ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, color="#555555")
    fig.tight_layout()
    return fig


@styled
def timelines(
    timeseries: pd.DataFrame,
    warmup: float = 0.0,
    fault_windows: Sequence[tuple[float, float, str]] = (),
) -> Figure:
    """Throughput, p99 latency and workflows in flight over time, per topology; the warm-up is
    shaded grey and each fault window ``(start, end, label)`` pale red, labelled at the top."""
    fig, (top, bottom, backlog) = subplots(3, 1, figsize=(9.5, 7.5), sharex=True)
    names = list(dict.fromkeys(timeseries["topology"]))
    colours = topology_colours(names)
    for name in names:
        rows = timeseries[timeseries["topology"] == name]
        # With replications, each window shows the mean over them.
        ts = rows.groupby(["t_start", "t_end"], as_index=False)[
            ["throughput", "latency_p99", "in_flight"]
        ].mean()
        mid = (ts["t_start"] + ts["t_end"]) / 2
        top.plot(mid, ts["throughput"], label=name, color=colours[name])
        bottom.plot(mid, ts["latency_p99"], label=name, color=colours[name])
        backlog.plot(ts["t_end"], ts["in_flight"], label=name, color=colours[name])
    for ax in (top, bottom, backlog):
        if warmup > 0:
            ax.axvspan(0, warmup, color="grey", alpha=0.15, lw=0, label="warm-up" if ax is top else None)
        for i, (start, end, _) in enumerate(fault_windows):
            label = "fault" if ax is top and i == 0 else None
            ax.axvspan(start, end, color=FAULT_COLOUR, alpha=0.5, lw=0, label=label)
        ax.grid(True, alpha=0.3)
    above = mtransforms.blended_transform_factory(top.transData, top.transAxes)
    labelled = False
    for start, _, label in fault_windows:
        if label:
            top.text(start, 1.01, str(label), transform=above, fontsize=7.5, color="#a02020", va="bottom")
            labelled = True
    top.set_ylabel("completed / s")
    top.set_title("Throughput, p99 latency and workflows in flight over time", pad=16 if labelled else 6)
    bottom.set_ylabel("p99 latency (s)")
    backlog.set_ylabel("in flight")
    backlog.set_xlabel("simulated time (s)")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


@styled
def utilization_bars(components: pd.DataFrame) -> Figure:
    """Utilization of every component, grouped by component, one bar per topology."""
    names = list(dict.fromkeys(components["topology"]))
    comps = list(dict.fromkeys(components["name"]))
    colours = topology_colours(names)
    fig, ax = subplots(figsize=(max(6, 1.1 * len(comps) + 2), 4.2))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(comps))
    for i, name in enumerate(names):
        # With replications, the mean utilization over them.
        sel = components[components["topology"] == name].groupby("name")["utilization"].mean()
        values = [float(sel.get(c, np.nan)) for c in comps]
        ax.bar(
            x + (i - (len(names) - 1) / 2) * width,
            np.nan_to_num(values),
            width,
            label=name,
            color=colours[name],
        )
    ax.set_xticks(x, comps, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("utilization (busy servers / servers)")
    ax.set_title("Utilization per component (unlimited components show 0)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


PERCENTILES = [("p50", "latency_p50"), ("p95", "latency_p95"), ("p99", "latency_p99")]


def _time_scale(values: Sequence[float]) -> tuple[float, str]:
    """Milliseconds when every value is below a second, else seconds."""
    finite = [abs(v) for v in values if np.isfinite(v)]
    return (1000.0, "ms") if finite and max(finite) < 1 else (1.0, "s")


@styled
def percentile_bars(summary: pd.DataFrame, confidence: float = 0.95) -> Figure:
    """Latency p50, p95 and p99 per topology, grouped by percentile. With several replications
    (column ``replication``) each bar is the mean over them with its Student-t interval as an
    error bar."""
    names = list(dict.fromkeys(summary["topology"]))
    colours = topology_colours(names)
    cells: dict[tuple[str, str], tuple[float, float]] = {}
    for name in names:
        rows = summary[summary["topology"] == name]
        for label, column in PERCENTILES:
            iv = t_interval(rows[column], confidence)
            cells[(name, label)] = (iv.mean, iv.half_width)
    scale, unit = _time_scale([m + (0 if np.isnan(h) else h) for m, h in cells.values()])
    replicated = "replication" in summary.columns and summary["replication"].nunique() > 1
    fig, ax = subplots(figsize=(max(6.5, 1.3 * len(names) * len(PERCENTILES) / 2 + 3), 4.2))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(PERCENTILES))
    for i, name in enumerate(names):
        means = np.array([cells[(name, label)][0] for label, _ in PERCENTILES]) * scale
        halves = np.array([cells[(name, label)][1] for label, _ in PERCENTILES]) * scale
        pos = x + (i - (len(names) - 1) / 2) * width
        bars = ax.bar(
            pos,
            np.nan_to_num(means),
            width,
            label=name,
            color=colours[name],
            yerr=np.nan_to_num(halves) if replicated else None,
            capsize=3 if replicated else 0,
            error_kw={"elinewidth": 1, "ecolor": "#333333"},
        )
        texts = ["" if np.isnan(m) else f"{m:.3g}" for m in means]
        ax.bar_label(bars, texts, padding=2, fontsize=7.5)
    ax.set_xticks(x, [label for label, _ in PERCENTILES])
    ax.set_ylabel(f"workflow latency ({unit})")
    ax.margins(y=0.12)
    title = "Latency percentiles"
    if replicated:
        title += f" (mean over replications, {confidence:.0%} interval)"
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def _mean_utilization(components: pd.DataFrame) -> pd.DataFrame:
    """Mean utilization over replications, component × topology (NaN: unlimited or absent),
    both in order of first appearance."""
    names = list(dict.fromkeys(components["topology"]))
    comps = list(dict.fromkeys(components["name"]))
    util = pd.to_numeric(components["utilization"], errors="coerce")
    table = util.groupby([components["name"], components["topology"]], sort=False).mean().unstack()
    return table.reindex(index=comps, columns=names)


@styled
def utilization_heatmap(components: pd.DataFrame) -> Figure:
    """Utilization of every component (rows) in every topology (columns), mean over replications,
    each cell annotated; components with unlimited servers, or absent from a topology, are blank."""
    table = _mean_utilization(components)
    names = list(table.columns)
    colours = topology_colours(names)
    values = table.to_numpy(dtype=float)
    fig, ax = subplots(figsize=(max(5.0, 1.5 * len(names) + 2.5), max(3.0, 0.45 * len(table.index) + 1.6)))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="YlOrRd", vmin=0.0, vmax=1.0, aspect="auto")
    for (r, c), value in np.ndenumerate(values):
        if np.isfinite(value):
            colour = "white" if value > 0.6 else "black"
            ax.text(c, r, f"{value:.0%}", ha="center", va="center", fontsize=8.5, color=colour)
    ax.set_xticks(np.arange(len(names)), names)
    for tick, name in zip(ax.get_xticklabels(), names, strict=True):
        tick.set_color(colours[name])
        tick.set_fontweight("bold")
    ax.set_yticks(np.arange(len(table.index)), list(table.index))
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xticks(np.arange(len(names) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(table.index) + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.03)
    bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    bar.set_label("utilization")
    ax.set_title("Utilization per component and topology")
    fig.text(0.01, 0.01, "blank: unlimited servers or not in that topology", fontsize=7.5, color="#555555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def _bottlenecks(summary: pd.DataFrame) -> dict[str, str | None]:
    """The bottleneck of each topology (the most frequent one over replications)."""
    out: dict[str, str | None] = {}
    for name in dict.fromkeys(summary["topology"]):
        values = summary.loc[summary["topology"] == name, "bottleneck"].dropna()
        out[name] = str(values.mode().iloc[0]) if not values.empty else None
    return out


@styled
def bottleneck_chart(summary: pd.DataFrame, components: pd.DataFrame, top: int = 3) -> Figure:
    """Per topology, its ``top`` most utilized components (mean over replications), the
    bottleneck of the summary drawn solid and labelled, the others pale."""
    table = _mean_utilization(components)
    necks = _bottlenecks(summary)
    names = list(dict.fromkeys([*summary["topology"], *table.columns]))
    colours = topology_colours(names)
    fig, axes = subplots(1, len(names), figsize=(max(6.5, 3.3 * len(names)), 2.9), squeeze=False, sharex=True)
    for ax, name in zip(axes[0], names, strict=True):
        util = table[name].dropna() if name in table.columns else pd.Series(dtype=float)
        ranked = util.sort_values(ascending=False, kind="stable")
        chosen = list(ranked.index[:top])
        neck = necks.get(name)
        if neck is not None and neck in ranked.index and neck not in chosen:
            chosen[-1] = neck  # the bottleneck is always shown
        ax.set_title(name, color=colours[name])
        ax.set_xlim(0, 1.15)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.grid(True, axis="x", alpha=0.3)
        if not chosen:
            ax.set_yticks([])
            ax.text(
                0.5,
                0.5,
                "no component with\nlimited servers",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=8.5,
                color="#555555",
            )
            continue
        y = np.arange(len(chosen))[::-1]
        values = [float(ranked[c]) for c in chosen]
        is_neck = [c == neck for c in chosen]
        ax.barh(
            y,
            values,
            0.65,
            color=colours[name],
            linewidth=1.2,
        )
        for patch, b in zip(ax.patches, is_neck, strict=True):
            patch.set_alpha(1.0 if b else 0.35)
            patch.set_edgecolor("black" if b else "none")
        for yi, value, b in zip(y, values, is_neck, strict=True):
            ax.text(
                value + 0.02, yi, f"{value:.0%}", va="center", fontsize=8, fontweight="bold" if b else None
            )
        ax.set_yticks(y, [f"{c}\n(bottleneck)" if b else c for c, b in zip(chosen, is_neck, strict=True)])
        for tick, b in zip(ax.get_yticklabels(), is_neck, strict=True):
            tick.set_fontweight("bold" if b else "normal")
        ax.set_ylim(-0.6, max(top, len(chosen)) - 0.4)
    axes[0][0].set_xlabel("utilization")
    fig.suptitle(
        f"Most utilized components per topology (top {top}; outlined: the bottleneck)",
        fontsize=11,
        fontweight="bold",
    )
    fig.tight_layout()
    return fig


STANDARD_PLOTS = [
    "latency_cdf",
    "timelines",
    "utilization",
    "percentiles",
    "utilization_heatmap",
    "bottleneck",
]
"""Names (file stems) of the plots of every run folder, in the order a report shows them; a run
with autoscaling adds ``replicas``."""


class RunFrames(Protocol):
    """What the standard plots read of a run (an :class:`~sim.analysis.evaluation.Evaluation`
    has it all)."""

    scenario: Scenario
    summary: pd.DataFrame
    components: pd.DataFrame
    requests: pd.DataFrame
    timeseries: pd.DataFrame
    replicas: pd.DataFrame


def standard_plots(
    frames: RunFrames, fault_windows: Sequence[tuple[float, float, str]] = ()
) -> dict[str, Callable[[], Figure]]:
    """The run's standard plots by name, each as a function that draws it (so a caller can make
    and save one Figure at a time)."""
    sc = frames.scenario
    warmup = sc.warmup_seconds
    makers: dict[str, Callable[[], Figure]] = {
        "latency_cdf": lambda: latency_cdf(frames.requests, warmup, sc.duration),
        "timelines": lambda: timelines(frames.timeseries, warmup, fault_windows),
        "utilization": lambda: utilization_bars(frames.components),
        "percentiles": lambda: percentile_bars(frames.summary, sc.confidence),
        "utilization_heatmap": lambda: utilization_heatmap(frames.components),
        "bottleneck": lambda: bottleneck_chart(frames.summary, frames.components),
    }
    if not frames.replicas.empty:
        from sim.analysis.plots.scaling import replica_timelines

        end = float(frames.summary["end_time"].max())
        makers["replicas"] = lambda: replica_timelines(frames.replicas, end, frames.timeseries, fault_windows)
    return makers


def save_standard_plots(
    frames: RunFrames,
    folder: str | Path,
    formats: Sequence[str] = ("png",),
    fault_windows: Sequence[tuple[float, float, str]] = (),
) -> list[Path]:
    """Write every standard plot as ``<name>.<format>`` for each of ``formats`` (``png``,
    ``svg``) into ``folder``; return the paths."""
    wanted = check_formats(formats)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in standard_plots(frames, fault_windows).items():
        fig = make()
        for fmt in wanted:
            paths.append(save_figure(fig, folder / f"{name}.{fmt}"))
    return paths
