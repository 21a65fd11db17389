"""The waterfall of a traced workflow instance, laid side by side for every topology."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.plots.style import subplots, topology_colours


def waterfall(spans: pd.DataFrame, workflow: str | None = None, instance: int | None = None) -> Figure:
    """One traced workflow per topology (the same instance everywhere): a bar per span on a
    common time axis, from the workflow's arrival."""
    if workflow is None or instance is None:
        first = spans[spans["replication"] == spans["replication"].min()].iloc[0]
        workflow, instance = first["workflow"], int(first["instance"])
    chosen = spans[(spans["workflow"] == workflow) & (spans["instance"] == instance)]
    if chosen.empty:
        traced = sorted(spans.loc[spans["workflow"] == workflow, "instance"].unique().tolist())
        raise ValueError(f"instance {instance} of {workflow!r} was not traced (traced: {traced})")
    chosen = chosen[chosen["replication"] == chosen["replication"].min()]
    names = list(dict.fromkeys(chosen["topology"]))
    colours = topology_colours(names)
    heights = [max(2, int((chosen["topology"] == n).sum())) for n in names]
    fig, axes = subplots(
        len(names),
        1,
        figsize=(9, 0.32 * sum(heights) + 1.4 * len(names)),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    t0 = chosen["start"].min()
    for ax, name in zip(axes[:, 0], names, strict=True):
        rows = chosen[chosen["topology"] == name].sort_values(["start", "span"])
        labels = [f"{c}: {o}" for c, o in zip(rows["component"], rows["operation"], strict=True)]
        for y, row in enumerate(rows.itertuples(index=False)):
            colour = colours[name] if row.status in ("ok", "completed") else "#d62728"
            ax.barh(y, (row.end - row.start) * 1000, left=(row.start - t0) * 1000, color=colour, height=0.6)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{name}: {workflow} #{instance}", fontsize=9, loc="left")
        ax.grid(True, axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("milliseconds since the workflow arrived")
    fig.tight_layout()
    return fig
