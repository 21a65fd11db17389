"""Figures of a sweep: each headline metric against each varied factor, with interval bands."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.plots.style import save_figure, styled, subplots, topology_colours


@styled
def sweep_curves(summary: pd.DataFrame, metric: str, factor: str, factors: Sequence[str] = ()) -> Figure:
    """``metric`` (mean over replications) against ``factor``, one line per topology with its
    confidence band; one panel per combination of the other factors."""
    others = [f for f in factors if f != factor]
    panels = list(summary.groupby(others, sort=False)) if others else [((), summary)]
    fig, axes = subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
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
            paths.append(save_figure(fig, folder / f"{metric}-vs-{factor}.png"))
    return paths
