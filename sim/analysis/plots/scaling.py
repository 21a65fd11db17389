"""Figures of autoscaling: each autoscaled component's replicas over time, per topology."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.plots.style import FAULT_COLOUR, styled, subplots, topology_colours


@styled
def replica_timelines(
    replicas: pd.DataFrame,
    end_time: float,
    offered: pd.DataFrame | None = None,
    fault_windows: Sequence[tuple[float, float, str]] = (),
) -> Figure:
    """Replicas running (solid) and serving (dashed) of every autoscaled component, one panel
    each, a line per topology (its first replication); ``offered`` (a time series with
    ``t_start``, ``t_end`` and ``arrivals``) adds the arrival rate on a second axis of the first
    panel, so the replicas can be read against the load that drove them."""
    names = list(dict.fromkeys(replicas["component"]))
    fig, axes = subplots(len(names), 1, figsize=(9.5, 2.6 * len(names) + 0.8), sharex=True, squeeze=False)
    topologies = list(dict.fromkeys(replicas["topology"]))
    colours = topology_colours(topologies)
    for ax, component in zip(axes[:, 0], names, strict=True):
        for topology in topologies:
            rows = replicas[(replicas["topology"] == topology) & (replicas["component"] == component)]
            if rows.empty:
                continue
            rows = rows[rows["replication"] == rows["replication"].min()]
            times = [*rows["time"].tolist(), end_time]
            for column, style in (("replicas", "-"), ("ready", "--")):
                values = rows[column].tolist()
                ax.step(
                    times,
                    [*values, values[-1]],
                    where="post",
                    color=colours[topology],
                    linestyle=style,
                    label=f"{topology} ({'running' if column == 'replicas' else 'serving'})",
                )
        for start, end, _ in fault_windows:
            ax.axvspan(start, end, color=FAULT_COLOUR, alpha=0.5, lw=0)
        ax.set_ylabel(f"{component}\nreplicas")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    first = axes[0, 0]
    if offered is not None and not offered.empty:
        rate = offered.groupby(["t_start", "t_end"], as_index=False)["arrivals"].mean()
        twin = first.twinx()
        width = (rate["t_end"] - rate["t_start"]).to_numpy()
        twin.plot(rate["t_start"] + width / 2, rate["arrivals"] / width, color="#7f7f7f", lw=0.8, alpha=0.6)
        twin.set_ylabel("arrivals / s", color="#7f7f7f")
        twin.set_ylim(bottom=0)
    axes[-1, 0].set_xlabel("simulated time (s)")
    first.set_title("Replicas over time (solid: running, dashed: serving; grey: arrival rate)")
    first.legend(loc="upper left", bbox_to_anchor=(1.08, 1.0))
    fig.tight_layout()
    return fig
