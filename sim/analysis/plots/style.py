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
from typing import Any, BinaryIO, TypeVar

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import PlaceHolderLayoutEngine
from matplotlib.ticker import LogFormatter

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
PNG_COMPRESSION = 1
"""zlib level of PNG files: level 1 writes a run's plots in a third of the time of the default 6,
for files about 10 % larger."""

_FORMAT_OPTIONS: dict[str, dict[str, Any]] = {
    "svg": {"metadata": {"Date": None}},  # (reproducible: no timestamp)
    "png": {"pil_kwargs": {"compress_level": PNG_COMPRESSION}},
}

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
    fig = Figure(figsize=figsize, dpi=PNG_DPI)
    FigureCanvasAgg(fig)  # (the layout and the PNG share one renderer, and its cache of text sizes)
    return fig, fig.subplots(nrows, ncols, **kwargs)


class DecimalLogFormatter(LogFormatter):
    """Labels of a log axis as plain decimals (0.1, 1, 10), on the ticks matplotlib's log
    formatter would label; plainer to read for seconds than powers of ten, and drawn without
    mathtext (the slowest part of laying out a figure)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


def decimal_log_labels(axis: Any) -> None:
    """Label a log-scaled ``axis`` (an ``ax.xaxis`` or ``ax.yaxis``) with plain decimals."""
    axis.set_major_formatter(DecimalLogFormatter())
    axis.set_minor_formatter(DecimalLogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))


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
    write_figure(fig, path, path.suffix.lstrip(".").lower())
    return path


def write_figure(fig: Figure, target: str | Path | BinaryIO, fmt: str) -> None:
    """Write ``fig`` as ``fmt`` to a path or a binary file, as every figure of a run is written.

    A figure laid out once by ``tight_layout`` keeps a placeholder layout engine, which makes
    ``savefig`` draw the whole figure twice; the layout is final, so the engine is dropped and the
    figure drawn once. PNG is compressed at :data:`PNG_COMPRESSION`.
    """
    if isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine):
        fig.set_layout_engine(None)
    fig.savefig(target, dpi=PNG_DPI, format=fmt, **_FORMAT_OPTIONS.get(fmt, {}))


def check_formats(formats: Sequence[str]) -> list[str]:
    """The image formats asked for, without repeats; raise ValueError for an unknown one."""
    wanted = list(dict.fromkeys(f.lower().lstrip(".") for f in formats))
    supported = Figure().canvas.get_supported_filetypes()
    unknown = [f for f in wanted if f not in supported]
    if unknown:
        raise ValueError(f"unsupported plot format(s) {unknown} (e.g. png, svg)")
    return wanted
