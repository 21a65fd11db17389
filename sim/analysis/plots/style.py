"""One look for every figure: the style, a fixed colour per topology, and how figures are made
and saved.

Figures are built with matplotlib's object-oriented API (:class:`~matplotlib.figure.Figure`),
never through pyplot: the library never chooses a backend, never registers figures in pyplot's
global state (so nothing needs closing), and a notebook that imports it keeps its own backend.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import matplotlib
from matplotlib.figure import Figure

KIND_COLOURS = {"orchestration": "#1f77b4", "choreography": "#ff7f0e", "hybrid": "#2ca02c"}
EXTRA_COLOURS = ["#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
FAULT_COLOUR = "#f4a6a6"
"""Fill of fault windows in timelines (a pale red, distinct from every line colour)."""

STYLE: dict[str, Any] = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "svg.fonttype": "path",
}
"""Matplotlib settings every standard plot is drawn with."""

PNG_DPI = 110

_F = TypeVar("_F", bound=Callable[..., Figure])


def styled(func: _F) -> _F:
    """Draw the figure under :data:`STYLE`, so every plot looks alike."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def subplots(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kwargs: Any
) -> tuple[Figure, Any]:
    """A new Figure with a grid of axes, as ``pyplot.subplots`` would give, without pyplot."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def topology_colours(names: Sequence[str]) -> dict[str, str]:
    """A stable colour per topology: the kind's colour for topologies named after a kind."""
    out: dict[str, str] = {}
    spare = iter(EXTRA_COLOURS * 4)
    for name in names:
        out[name] = KIND_COLOURS.get(name) or next(spare)
    return out


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` in the format of the file suffix (PNG at :data:`PNG_DPI`, reproducible SVG)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    metadata = {"Date": None} if fmt == "svg" else None
    fig.savefig(path, dpi=PNG_DPI, format=fmt, metadata=metadata)
    return path


def check_formats(formats: Sequence[str]) -> list[str]:
    """The image formats asked for, without repeats; raise ValueError for an unknown one."""
    wanted = list(dict.fromkeys(f.lower().lstrip(".") for f in formats))
    supported = Figure().canvas.get_supported_filetypes()
    unknown = [f for f in wanted if f not in supported]
    if unknown:
        raise ValueError(f"unsupported plot format(s) {unknown} (e.g. png, svg)")
    return wanted
