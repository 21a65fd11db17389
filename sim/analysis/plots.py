"""Standard plots of a run, as matplotlib Figures (one fixed colour per topology).

Every function takes frames of a :class:`~sim.experiment.results.RunResult` and returns a
Figure, so notebooks can restyle or combine them; :func:`save_standard_plots` writes the set a run
folder carries. This module does not import the simulation engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from sim.experiment.results import RunResult

KIND_COLOURS = {"orchestration": "#1f77b4", "choreography": "#ff7f0e", "hybrid": "#2ca02c"}
EXTRA_COLOURS = ["#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def topology_colours(names: Sequence[str]) -> dict[str, str]:
    """A stable colour per topology: the kind's colour for topologies named after a kind."""
    out: dict[str, str] = {}
    spare = iter(EXTRA_COLOURS * 4)
    for name in names:
        out[name] = KIND_COLOURS.get(name) or next(spare)
    return out


def latency_cdf(requests: pd.DataFrame, warmup: float = 0.0, duration: float = np.inf) -> Figure:
    """Empirical CDF of workflow latency per topology, on a log time axis."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
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
        ax.plot(lat, np.arange(1, lat.size + 1) / lat.size, label=name, color=colours[name])
    ax.set_xscale("log")
    ax.set_xlabel("workflow latency (s)")
    ax.set_ylabel("fraction of completed workflows")
    ax.set_title("Latency distribution")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def timelines(timeseries: pd.DataFrame, warmup: float = 0.0) -> Figure:
    """Throughput, p99 latency and workflows in flight over time, per topology; the warm-up is
    shaded."""
    fig, (top, bottom, backlog) = plt.subplots(3, 1, figsize=(8, 7.5), sharex=True)
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
            ax.axvspan(0, warmup, color="grey", alpha=0.15, lw=0)
        ax.grid(True, alpha=0.3)
    top.set_ylabel("completed / s")
    top.set_title("Throughput, p99 latency and workflows in flight over time (grey: warm-up)")
    bottom.set_ylabel("p99 latency (s)")
    backlog.set_ylabel("in flight")
    backlog.set_xlabel("simulated time (s)")
    top.legend()
    fig.tight_layout()
    return fig


def utilization_bars(components: pd.DataFrame) -> Figure:
    """Utilization of every component, grouped by component, one bar per topology."""
    names = list(dict.fromkeys(components["topology"]))
    comps = list(dict.fromkeys(components["name"]))
    colours = topology_colours(names)
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(comps) + 2), 4.2))
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


def save_standard_plots(result: RunResult, folder: str | Path) -> list[Path]:
    """Write the run folder's PNG plots and return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sc = result.scenario
    figures = {
        "latency_cdf.png": latency_cdf(result.requests, sc.warmup, sc.duration),
        "timelines.png": timelines(result.timeseries, sc.warmup),
        "utilization.png": utilization_bars(result.components),
    }
    paths = []
    for name, fig in figures.items():
        path = folder / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def sweep_curves(summary: pd.DataFrame, metric: str, factor: str, factors: Sequence[str] = ()) -> Figure:
    """``metric`` (mean over replications) against ``factor``, one line per topology with its
    confidence band; one panel per combination of the other factors."""
    others = [f for f in factors if f != factor]
    panels = list(summary.groupby(others, sort=False)) if others else [((), summary)]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    names = list(dict.fromkeys(summary["topology"]))
    colours = topology_colours(names)
    for ax, (keys, frame) in zip(axes[0], panels, strict=True):
        for name in names:
            sel = frame[frame["topology"] == name].sort_values(factor)
            if sel.empty:
                continue
            x = pd.to_numeric(sel[factor], errors="coerce")
            x = x if x.notna().all() else sel[factor].astype(str)
            ax.plot(x, sel[metric], marker="o", label=name, color=colours[name])
            low, high = sel.get(f"{metric}_low"), sel.get(f"{metric}_high")
            if low is not None and high is not None and low.notna().any():
                ax.fill_between(x, low, high, color=colours[name], alpha=0.2, lw=0)
        keys = keys if isinstance(keys, tuple) else (keys,)
        ax.set_title(", ".join(f"{k}={v}" for k, v in zip(others, keys, strict=True)) or metric)
        ax.set_xlabel(factor)
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


SWEEP_METRICS = ["throughput", "latency_mean", "latency_p99", "bottleneck_utilization"]


def save_sweep_plots(summary: pd.DataFrame, factors: Sequence[str], folder: str | Path) -> list[Path]:
    """One PNG per headline metric and factor: ``<metric>-vs-<factor>.png``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for factor in factors:
        for metric in SWEEP_METRICS:
            if metric not in summary.columns:
                continue
            fig = sweep_curves(summary, metric, factor, factors)
            path = folder / f"{metric}-vs-{factor}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            paths.append(path)
    return paths
