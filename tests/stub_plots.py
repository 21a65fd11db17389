"""Stand-in plots for tests about something else: drawing the real ones takes seconds."""

from __future__ import annotations

from types import ModuleType

import pytest
from matplotlib.figure import Figure

from sim.analysis import plots


def tiny_figure(*args: object) -> Figure:
    """A one-line figure, whatever it is asked to draw."""
    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1], [0, 1])
    return fig


def stub_standard_plots(monkeypatch: pytest.MonkeyPatch, *where: ModuleType) -> None:
    """Replace the standard plots by tiny figures, in :mod:`sim.analysis.plots` and in each module
    of ``where`` that imported ``standard_plots`` by name."""

    def makers(result: object, fault_windows: object = ()) -> dict:
        return dict.fromkeys(plots.STANDARD_PLOTS, tiny_figure)

    monkeypatch.setattr(plots, "standard_plots", makers)
    for module in where:
        monkeypatch.setattr(module, "standard_plots", makers)
