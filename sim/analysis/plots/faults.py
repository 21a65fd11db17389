"""Figures of a run with faults: the faulted run against its baseline over time, and the blast
radius per topology (computed by :mod:`sim.analysis.blast_radius`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sim.analysis.blast_radius import backlog_series, fault_frame, faults_for, group_keys, with_keys
from sim.analysis.plots.style import subplots, topology_colours
from sim.analysis.statistics import t_interval


def _merged_spans(starts: Sequence[float], ends: Sequence[float]) -> list[tuple[float, float]]:
    """Overlapping or touching intervals merged, so many crash windows shade cleanly."""
    spans: list[tuple[float, float]] = []
    for s, e in sorted(zip(starts, ends)):
        if spans and s <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], e))
        else:
            spans.append((s, e))
    return spans


_PANELS = [
    ("throughput", "completed / s"),
    ("latency_p99", "p99 latency (s)"),
    ("failures", "failures / window"),
    ("backlog", "backlog (waiting)"),
]


def fault_timelines(baseline_ts: pd.DataFrame, faulted_ts: pd.DataFrame, faults: Any) -> Figure:
    """Per topology a column of panels (throughput, p99 latency, failures, backlog) over time:
    baseline dashed, faulted solid, fault windows shaded. With replications each window shows the
    mean over them; the shading covers the windows of every replication."""
    table = fault_frame(faults)
    names = [t for t, _ in group_keys(faulted_ts, baseline_ts)]
    names = list(dict.fromkeys(names))
    colours = topology_colours(names)
    ncols = max(1, len(names))
    fig, axes = subplots(len(_PANELS), ncols, figsize=(4.8 * ncols + 1.0, 9.0), sharex="col", squeeze=False)
    for j, name in enumerate(names):
        for ts, style, label in ((baseline_ts, "--", "baseline"), (faulted_ts, "-", "faulted")):
            rows = with_keys(ts)
            rows = rows[rows["topology"] == name].copy()
            if rows.empty:
                continue
            rows["backlog"] = backlog_series(rows)
            if "failures" not in rows.columns:
                rows["failures"] = 0.0
            mean = rows.groupby(["t_start", "t_end"], as_index=False)[[p for p, _ in _PANELS]].mean()
            mid = (mean["t_start"] + mean["t_end"]) / 2
            for i, (metric, _) in enumerate(_PANELS):
                x = mean["t_end"] if metric == "backlog" else mid
                # The baseline goes on top, thinner, so it shows where the runs coincide.
                lw, z = (1.0, 3) if label == "baseline" else (1.6, 2)
                axes[i, j].plot(x, mean[metric], style, color=colours[name], label=label, lw=lw, zorder=z)
        spans = faults_for(table, name, None) if not table.empty else table
        for i in range(len(_PANELS)):
            ax = axes[i, j]
            for s, e in _merged_spans(spans["start"].tolist(), spans["end"].tolist()):
                ax.axvspan(s, e, color="red", alpha=0.12, lw=0)
            ax.grid(True, alpha=0.3)
            if j == 0:
                ax.set_ylabel(_PANELS[i][1])
        axes[0, j].set_title(name, color=colours[name])
        axes[-1, j].set_xlabel("simulated time (s)")
    handles = [
        Line2D([], [], color="black", ls="--", label="baseline (no faults)"),
        Line2D([], [], color="black", ls="-", label="with faults"),
        Patch(color="red", alpha=0.12, label="fault window"),
    ]
    fig.legend(handles=handles, loc="upper center", ncol=3, frameon=False)
    fig.suptitle("Faulted run against its baseline", y=0.995, x=0.02, ha="left", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig


def blast_radius_bars(frame: pd.DataFrame) -> Figure:
    """Per topology: affected share, recovery time, peak backlog (beside the baseline's, hatched)
    and retry amplification, one small panel each; error bars are 95 % t intervals over
    replications, and a ``*`` marks a topology that did not recover in some replication."""
    names = list(dict.fromkeys(frame["topology"]))
    colours = topology_colours(names)
    fig, axes = subplots(1, 4, figsize=(max(10.0, 2.4 * len(names) + 6.0), 3.6))
    x = np.arange(len(names))

    def stats(column: str, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        means, halves = [], []
        for name in names:
            iv = t_interval(scale * frame.loc[frame["topology"] == name, column].astype(float))
            means.append(iv.mean)
            halves.append(iv.half_width if math.isfinite(iv.half_width) else 0.0)
        return np.nan_to_num(np.array(means)), np.array(halves)

    panels = [
        ("affected_share", 100.0, "affected share (%)", "% of workflows in the impact window"),
        ("recovery_time", 1.0, "recovery time (s)", "s after the last fault ends"),
        ("peak_backlog", 1.0, "peak backlog", "requests waiting"),
        ("retry_amplification", 1.0, "retry amplification", "attempts ÷ baseline attempts"),
    ]
    cols = [colours[n] for n in names]
    for ax, (column, scale, title, ylabel) in zip(axes, panels):
        means, halves = stats(column, scale)
        if column == "peak_backlog":
            base, base_h = stats("baseline_backlog")
            w = 0.38
            ax.bar(x - w / 2, base, w, yerr=base_h, color=cols, alpha=0.35, hatch="//", label="baseline")
            ax.bar(x + w / 2, means, w, yerr=halves, color=cols, label="faulted")
            ax.legend(fontsize=8)
        else:
            ax.bar(x, means, 0.6, yerr=halves, color=cols)
        if column == "recovery_time":
            for i, name in enumerate(names):
                rec = frame.loc[frame["topology"] == name, "recovered"].fillna(False).astype(bool)
                if not rec.all():
                    ax.annotate("*", (x[i], means[i]), ha="center", va="bottom", fontsize=14)
        if column == "retry_amplification":
            ax.axhline(1.0, color="grey", lw=1, ls=":")
        top = float(np.nanmax(np.concatenate([means + halves, [0.0]])))
        if column == "peak_backlog":
            top = max(top, float(np.nanmax(np.concatenate([base + base_h, [0.0]]))))
        ax.set_ylim(0, 1.18 * top if top > 0 else 1.0)  # room above the bars for the "*"
        ax.set_xticks(x, names, rotation=20, ha="right")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("Blast radius per topology (* = not recovered in some replication)", fontsize=10)
    fig.tight_layout()
    return fig
