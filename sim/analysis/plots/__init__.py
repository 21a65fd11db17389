"""Figures of runs and sweeps, as matplotlib Figures drawn from frames.

:func:`figure` draws any plot of a run by name and :func:`save_run_plots` writes the set a run
folder carries: the standard plots (:mod:`.standard`), with faults the timelines against the
baseline and the blast-radius bars (:mod:`.faults`), with tracing the waterfall (:mod:`.traces`).
Sweep curves are in :mod:`.sweeps`. Nothing here imports the simulation engine or pyplot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from sim.analysis.heap import older_objects_frozen
from sim.analysis.plots.faults import blast_radius_bars, fault_timelines
from sim.analysis.plots.standard import (
    STANDARD_PLOTS,
    bottleneck_chart,
    latency_cdf,
    percentile_bars,
    standard_plots,
    timelines,
    utilization_bars,
    utilization_heatmap,
)
from sim.analysis.plots.style import check_formats, save_figure, topology_colours
from sim.analysis.plots.sweeps import sweep_curves
from sim.analysis.plots.traces import waterfall

if TYPE_CHECKING:
    from sim.analysis.evaluation import Evaluation

FAULT_PLOTS = ["fault_timelines", "blast_radius"]


def _makers(frames: Evaluation) -> dict[str, Callable[[], Figure]]:
    makers = standard_plots(frames, frames.fault_windows())
    baseline = frames.baseline
    if baseline is not None:
        makers["fault_timelines"] = lambda: fault_timelines(
            baseline.timeseries, frames.timeseries, frames.faults
        )
        makers["blast_radius"] = lambda: blast_radius_bars(frames.blast_radius)
    if not frames.spans.empty:
        makers["waterfall"] = lambda: waterfall(frames.spans)
    return makers


def figure(frames: Evaluation, name: str) -> Figure:
    """The plot ``name`` of a run (see :meth:`Evaluation.plot_names`)."""
    makers = _makers(frames)
    if name not in makers:
        raise ValueError(f"unknown plot {name!r} (known: {', '.join(makers)})")
    return makers[name]()


def save_run_plots(frames: Evaluation, folder: str | Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Write every plot of a run as ``<name>.<format>`` into ``folder``: the standard plots in
    each of ``formats`` (png, svg), the fault and trace plots as PNG; return the paths."""
    wanted = check_formats(formats)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    standard = set(standard_plots(frames))  # (with autoscaling, the replicas plot too)
    with older_objects_frozen():
        for name, make in _makers(frames).items():
            fig = make()
            for fmt in wanted if name in standard else ["png"]:
                paths.append(save_figure(fig, folder / f"{name}.{fmt}"))
    return paths


__all__ = [
    "FAULT_PLOTS",
    "STANDARD_PLOTS",
    "blast_radius_bars",
    "bottleneck_chart",
    "fault_timelines",
    "figure",
    "latency_cdf",
    "percentile_bars",
    "save_figure",
    "save_run_plots",
    "standard_plots",
    "sweep_curves",
    "timelines",
    "topology_colours",
    "utilization_bars",
    "utilization_heatmap",
    "waterfall",
]
