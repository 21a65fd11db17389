"""The plot functions of :mod:`sim.analysis.plots` on real results: every standard plot returns a
Figure, error bars only with replications, the heatmap's blanks, the bottleneck highlight, shaded
fault windows, and the PNG and SVG files ``save_standard_plots`` writes. (The report's embedding
of the plots is tested in ``test_report.py``.)"""

from __future__ import annotations

import gc
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.backend_bases import DrawEvent
from matplotlib.figure import Figure

import sim
from sim.analysis import plots
from sim.analysis.heap import older_objects_frozen
from sim.analysis.plots import standard
from sim.analysis.plots.standard import save_standard_plots
from tests.helpers import small_scenario
from tests.stub_plots import stub_standard_plots


def _scenario() -> sim.Scenario:
    return small_scenario("plot-test")


@pytest.fixture(scope="module")
def single() -> sim.RunResult:
    return sim.run(_scenario(), replications=1, executor="serial")


@pytest.fixture(scope="module")
def replicated() -> sim.RunResult:
    return sim.run(_scenario(), replications=3, executor="serial")


@pytest.fixture(scope="module", params=["single", "replicated"])
def result(request: pytest.FixtureRequest) -> sim.RunResult:
    return request.getfixturevalue(request.param)


@pytest.fixture
def quick_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    stub_standard_plots(monkeypatch, standard)


def _figures(result: sim.RunResult) -> dict[str, Figure]:
    sc = result.scenario
    return {
        "latency_cdf": plots.latency_cdf(result.requests, sc.warmup, sc.duration),
        "timelines": plots.timelines(result.timeseries, sc.warmup),
        "timelines_faults": plots.timelines(
            result.timeseries, sc.warmup, fault_windows=[(10.0, 14.0, "a down"), (20.0, 22.0, "")]
        ),
        "utilization": plots.utilization_bars(result.components),
        "percentiles": plots.percentile_bars(result.summary, sc.confidence),
        "utilization_heatmap": plots.utilization_heatmap(result.components),
        "bottleneck": plots.bottleneck_chart(result.summary, result.components),
    }


def test_every_plot_function_returns_a_figure(result: sim.RunResult) -> None:
    for name, fig in _figures(result).items():
        try:
            assert isinstance(fig, Figure), name
            assert fig.axes, name
        finally:
            plt.close(fig)


def test_percentile_bars_have_error_bars_only_with_replications(
    single: sim.RunResult, replicated: sim.RunResult
) -> None:
    for res, expected in ((single, False), (replicated, True)):
        fig = plots.percentile_bars(res.summary, 0.95)
        try:
            containers = fig.axes[0].containers
            bars = [c for c in containers if hasattr(c, "errorbar")]
            assert len(bars) == len(res.topologies)
            assert all((c.errorbar is not None) == expected for c in bars)
        finally:
            plt.close(fig)


def test_heatmap_leaves_unlimited_and_absent_components_blank(replicated: sim.RunResult) -> None:
    # The hybrid's orchestrator and broker have unlimited servers; choreography has no orchestrator.
    fig = plots.utilization_heatmap(replicated.components)
    try:
        texts = [t.get_text() for t in fig.axes[0].texts]
        comps = replicated.components
        finite = comps.groupby(["topology", "name"])["utilization"].mean().notna().sum()
        assert len(texts) == finite
        assert all(t.endswith("%") for t in texts)
    finally:
        plt.close(fig)


def test_bottleneck_chart_highlights_the_bottleneck(replicated: sim.RunResult) -> None:
    fig = plots.bottleneck_chart(replicated.summary, replicated.components)
    try:
        assert len(fig.axes) == len(replicated.topologies)
        for ax, name in zip(fig.axes, replicated.topologies, strict=True):
            assert ax.get_title() == name
            labels = [t.get_text() for t in ax.get_yticklabels()]
            assert 1 <= len(labels) <= 3
            neck = replicated.summary.loc[replicated.summary["topology"] == name, "bottleneck"].mode()[0]
            assert f"{neck}\n(bottleneck)" in labels
    finally:
        plt.close(fig)


def test_timelines_shade_fault_windows(single: sim.RunResult) -> None:
    plain = plots.timelines(single.timeseries, 3.0)
    faulty = plots.timelines(single.timeseries, 3.0, fault_windows=[(10.0, 14.0, "a down")])
    try:
        assert len(faulty.axes[0].patches) == len(plain.axes[0].patches) + 1
        assert "a down" in [t.get_text() for t in faulty.axes[0].texts]
        assert "fault" in [t.get_text() for t in faulty.axes[0].get_legend().get_texts()]
    finally:
        plt.close(plain)
        plt.close(faulty)


def test_save_standard_plots_writes_png_and_svg(replicated: sim.RunResult, tmp_path: Path) -> None:
    paths = save_standard_plots(replicated, tmp_path / "plots", formats=("png", "svg"))
    expected = {f"{n}.{f}" for n in plots.STANDARD_PLOTS for f in ("png", "svg")}
    assert {p.name for p in paths} == expected
    assert {p.name for p in (tmp_path / "plots").iterdir()} == expected
    assert {
        "latency_cdf",
        "timelines",
        "utilization",
        "percentiles",
        "utilization_heatmap",
        "bottleneck",
    } == set(plots.STANDARD_PLOTS)
    for p in paths:
        head = p.read_bytes()[:200]
        if p.suffix == ".png":
            assert head.startswith(b"\x89PNG")
        else:
            assert b"<svg" in p.read_bytes()[:2000]
    assert not plt.get_fignums()  # every figure closed


def test_save_standard_plots_default_is_png_only(
    single: sim.RunResult, tmp_path: Path, quick_plots: None
) -> None:
    paths = save_standard_plots(single, tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{n}.png" for n in plots.STANDARD_PLOTS)
    with pytest.raises(ValueError, match="unsupported plot format"):
        save_standard_plots(single, tmp_path, formats=("bmpx",))


def test_log_axis_labels_are_plain_decimals() -> None:
    fig, ax = plots.style.subplots(figsize=(5, 3))
    ax.plot([0.002, 40.0], [0, 1])
    ax.set_xscale("log")
    plots.style.decimal_log_labels(ax.xaxis)
    fig.canvas.draw()
    major = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert major == ["0.001", "0.01", "0.1", "1", "10", "100"]
    narrow, nax = plots.style.subplots(figsize=(5, 3))
    nax.plot([0.2, 0.5], [0, 1])
    nax.set_xscale("log")
    plots.style.decimal_log_labels(nax.xaxis)
    narrow.canvas.draw()  # (within a decade, the minor ticks are labelled too)
    assert [t.get_text() for t in nax.get_xticklabels(minor=True) if t.get_text()] == [
        "0.2",
        "0.3",
        "0.4",
        "0.6",
    ]


def test_a_laid_out_figure_is_drawn_once_when_saved(single: sim.RunResult, tmp_path: Path) -> None:
    fig = plots.latency_cdf(single.requests)
    draws: list[DrawEvent] = []
    fig.canvas.mpl_connect("draw_event", draws.append)
    plots.save_figure(fig, tmp_path / "cdf.png")
    assert len(draws) == 1
    plots.save_figure(fig, tmp_path / "cdf.svg")
    assert (tmp_path / "cdf.png").read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in (tmp_path / "cdf.svg").read_bytes()[:2000]


def test_plots_are_drawn_with_older_objects_frozen(
    single: sim.RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []
    real = plots.save_figure

    def save(fig: Figure, path: Path) -> Path:
        seen.append(gc.get_freeze_count())
        return real(fig, path)

    monkeypatch.setattr(plots, "save_figure", save)
    plots.save_run_plots(single, tmp_path)
    assert seen and all(count > 0 for count in seen)
    assert gc.get_freeze_count() == 0  # (everything handed back to the collector)
    kept = [object()]
    gc.freeze()  # a program that froze objects itself keeps them frozen
    try:
        with older_objects_frozen():
            pass
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert kept
