"""The HTML report: the self-contained ``report.html`` (every section, no external reference,
escaped user text, template-looking text shown and not evaluated), the faults and blast-radius
section and the verdicts of a run with faults and objectives, the formatters of its verdicts, and
``sim report``. The plot functions themselves are tested in ``test_plots.py``."""

from __future__ import annotations

import base64
import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

import sim
from sim.analysis import formatting, plots
from sim.analysis import report as report_module
from sim.analysis.report import (
    FAULT_PLOT_CAPTIONS,
    PLOT_CAPTIONS,
    render_report,
)
from sim.analysis.tables import TABLE_ROWS as CLI_ROWS
from sim.analysis.tables import side_by_side_rows
from sim.api.report import REPORT_NAME, NotARunFolder, write_report
from tests.helpers import small_scenario
from tests.stub_plots import stub_standard_plots, tiny_figure

DESCRIPTION = 'Checks <script>alert("x")</script> & friends'


def _scenario(description: str = DESCRIPTION, topologies: dict | None = None) -> sim.Scenario:
    return small_scenario("report-test", topologies, description=description)


@pytest.fixture(scope="module")
def single() -> sim.RunResult:
    return sim.run(_scenario(), replications=1, executor="serial")


@pytest.fixture(scope="module")
def replicated() -> sim.RunResult:
    return sim.run(_scenario(), replications=3, executor="serial")


@pytest.fixture(scope="module")
def folder(replicated: sim.RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return replicated.save(tmp_path_factory.mktemp("runs") / "run", plots=False)


@pytest.fixture(scope="module")
def html(folder: Path) -> str:
    """The report of the replicated run, as ``write_report`` writes it from the run folder."""
    return write_report(folder).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def single_html(single: sim.RunResult) -> str:
    return render_report(single, images="png")


@pytest.fixture
def quick_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    stub_standard_plots(monkeypatch, report_module)


def _fault_scenario() -> sim.Scenario:
    """Two services, an outage of the first, two objectives, two topologies: a short run."""
    return sim.scenario_from_dict(
        {
            "name": "fault-report-test",
            "seed": 3,
            "duration": 40,
            "warmup": 2,
            "window": 2,
            "services": {
                "pay": {
                    "latency": {"dist": "exponential", "mean": 0.05},
                    "replicas": 2,
                    "retry": {"max_attempts": 3, "initial": 0.5, "multiplier": 2, "jitter": "none"},
                },
                "ship": {"latency": 0.02},
            },
            "workflows": {"wf": {"steps": ["pay", "ship"]}},
            "load": {"wf": {"arrival": "poisson", "rate": 10}},
            "faults": [{"type": "outage", "target": "pay", "at": 10, "duration": 6}],
            "objectives": {"latency_p99": 0.5, "recovery_time": 10},
            "topologies": {"orchestration": {"orchestrator": {"shard_concurrency": 4}}, "choreography": {}},
        }
    )


@pytest.fixture(scope="module")
def faulted() -> sim.RunResult:
    return sim.run(_fault_scenario(), replications=2, executor="serial")


@pytest.fixture(scope="module")
def faulted_single() -> sim.RunResult:
    return sim.run(_fault_scenario(), replications=1, executor="serial")


@pytest.fixture(scope="module")
def faulted_folder(faulted: sim.RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return faulted.save(tmp_path_factory.mktemp("runs") / "faulted", plots=False)


@pytest.fixture
def quick_fault_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-ins for the two blast-radius plots (see ``quick_plots``)."""
    monkeypatch.setattr(report_module, "fault_timelines", tiny_figure)
    monkeypatch.setattr(report_module, "blast_radius_bars", tiny_figure)


def _section(html: str, key: str) -> str:
    """The HTML of one section of the report."""
    start = html.index(f'<section id="{key}">')
    return html[start : html.index("</section>", start)]


# --- report -------------------------------------------------------------------------------------


class _Collector(HTMLParser):
    """Tags, ids, image sources and attribute values of a page; checks that tags balance."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[str] = []
        self.attributes: list[str] = []
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])
        if tag == "img":
            self.images.append(values.get("src") or "")
        self.attributes += [v for _, v in attrs if v]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> (open: {self.stack[-3:]})"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Collector:
    page = _Collector()
    page.feed(html)
    page.close()
    assert page.stack == []
    return page


def test_report_has_every_section(html: str, replicated: sim.RunResult) -> None:
    # ``html`` was read back from the run folder, whose frames' types differ a little from a
    # fresh run's; ``single_html`` covers a fresh result.
    page = _parse(html)
    for section in (
        "scenario",
        "comparison",
        "differences",
        "components",
        "verdicts",
        "plots",
        "scenario-file",
    ):
        assert section in page.ids, section
    for name in plots.STANDARD_PLOTS:
        assert f"plot-{name}" in page.ids, name
        assert PLOT_CAPTIONS[name][0] in html
    text = "".join(page.text)
    assert "report-test" in text
    # The side-by-side table has the rows of the CLI table (those the summary has columns for),
    # in the same order.
    ours = [row.label for row in side_by_side_rows(replicated) if row.kind == "metric"]
    cli = [label for label, key, _ in CLI_ROWS if key in replicated.summary.columns and label in ours]
    assert [label for label in ours if label in cli] == cli
    assert "store writes / workflow" not in ours, "a row nobody has a value for is left out"
    for label in cli:
        assert f"<td>{label}</td>" in html, label
    for name in replicated.topologies:
        assert name in text
    assert "±" in text  # replications: mean ± half-width
    # Paired differences, the components and the run facts.
    assert "choreography − orchestration" in text
    assert "latency_p99" in text
    assert "orchestrator" in text and "broker" in text
    assert "versions" in text and "simpy" in text
    assert "No objectives stated in the scenario" in text
    assert "<pre>" in html and "workflows:" in text  # the resolved scenario


def test_report_is_self_contained(html: str) -> None:
    assert "http://" not in html
    assert "https://" not in html
    assert 'src="//' not in html
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "@import" not in html and "url(" not in html
    page = _parse(html)
    assert len(page.images) == len(plots.STANDARD_PLOTS)
    for src in page.images:
        assert src.startswith(("data:image/svg+xml;base64,", "data:image/png;base64,"))
        assert b"<svg" in base64.b64decode(src.split(",", 1)[1])[:3000]
    for value in page.attributes:
        assert not re.match(r"^\s*(https?:|//|file:|ftp:)", value), value


def test_report_with_png_images(single_html: str, single: sim.RunResult) -> None:
    page = _parse(single_html)
    assert len(page.images) == len(plots.STANDARD_PLOTS)
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert base64.b64decode(page.images[0].split(",", 1)[1]).startswith(b"\x89PNG")
    assert "http://" not in single_html and "https://" not in single_html
    with pytest.raises(ValueError):
        render_report(single, images="gif")


def test_report_escapes_user_text(html: str) -> None:
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; friends" in html
    page = _parse(html)
    assert DESCRIPTION in "".join(page.text)  # the browser shows the text as written


def test_report_shows_template_looking_user_text_escaped_and_unevaluated(quick_plots: None) -> None:
    # Text that looks like HTML or like Jinja2 must reach the reader as written: escaped by the
    # template engine, never evaluated as a template (no 49 for {{ 7*7 }}).
    description = "{{ 7*7 }} <b>x</b>"
    topology = "<i>t</i>"
    sc = _scenario(description, {topology: {"kind": "orchestration"}, "choreography": {}})
    html = render_report(sim.run(sc, replications=1, executor="serial"), images="png")
    assert "<b>" not in html and "<i>" not in html
    paragraph = re.search(r'<p class="description">(.*?)</p>', html)
    assert paragraph is not None
    assert paragraph.group(1) == "{{ 7*7 }} &lt;b&gt;x&lt;/b&gt;"
    assert "49" not in paragraph.group(1)
    # The topology's name in the side-by-side header, the components and the run facts.
    escaped = "&lt;i&gt;t&lt;/i&gt;"
    assert f"</span>{escaped}</th>" in _section(html, "comparison")
    assert f"</span>{escaped}</td>" in _section(html, "components")
    assert f"<dd>{escaped}, choreography</dd>" in _section(html, "scenario")
    # The resolved scenario shows the description as the YAML holds it.
    scenario_file = _section(html, "scenario-file")
    assert "{{ 7*7 }} &lt;b&gt;x&lt;/b&gt;" in scenario_file and "49" not in scenario_file
    text = "".join(_parse(html).text)
    assert description in text and topology in text  # the browser shows the text as written


def test_report_with_one_replication_says_there_is_no_interval(
    single_html: str, single: sim.RunResult
) -> None:
    page = _parse(single_html)
    text = "".join(page.text)
    assert "differences" in page.ids
    assert "One replication" in text
    assert "±" not in "".join(row.label for row in side_by_side_rows(single))
    for name in plots.STANDARD_PLOTS:
        assert f"plot-{name}" in page.ids


def test_report_renders_verdicts_from_meta(single: sim.RunResult, quick_plots: None) -> None:
    verdicts = [
        {
            "topology": "orchestration",
            "objective": "latency_p99",
            "target": "< 0.5 s",
            "measured": 0.42,
            "met": True,
        },
        {"topology": "choreography", "objective": "<b>tput</b>", "target": 10, "measured": 9.5, "met": False},
    ]
    res = sim.RunResult(
        scenario=single.scenario,
        seed=single.seed,
        summary=single.summary,
        components=single.components,
        requests=single.requests,
        timeseries=single.timeseries,
        meta={**single.meta, "verdicts": verdicts},
    )
    html = render_report(res)
    section = html[html.index('<section id="verdicts">') : html.index('<section id="plots">')]
    assert "No objectives stated" not in section
    assert "1 of 2 objectives met" in section
    assert "latency_p99" in section and "&lt; 0.5 s" in section and "0.42" in section
    assert "&lt;b&gt;tput&lt;/b&gt;" in section and "<b>" not in section
    assert 'class="met"' in section and 'class="missed"' in section


def test_write_report_into_the_run_folder(html: str, folder: Path) -> None:
    assert (folder / REPORT_NAME).read_text(encoding="utf-8") == html
    assert html.startswith("<!DOCTYPE html>") and "report-test" in html
    assert '<meta name="generator" content="orchestration-sim">' in html[:4096]
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # no temporary left


def test_write_report_elsewhere(folder: Path, tmp_path: Path, quick_plots: None) -> None:
    other = write_report(folder, tmp_path / "elsewhere" / "r.html")
    assert other == tmp_path / "elsewhere" / "r.html" and other.is_file()
    assert write_report(folder, tmp_path) == tmp_path / REPORT_NAME  # a folder: report.html in it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", REPORT_NAME]


def test_write_report_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(NotARunFolder, match="not a run folder"):
        write_report(tmp_path)
    with pytest.raises(NotARunFolder, match="no such folder"):
        write_report(tmp_path / "missing")


# --- faults, blast radius and verdicts -----------------------------------------------------------


def test_report_with_faults_shows_blast_radius_and_verdicts(
    faulted_folder: Path, faulted: sim.RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Quick standard plots that record the fault windows handed to them; the two blast-radius
    # plots are drawn for real.
    handed: list[object] = []

    def makers(result: sim.RunResult, fault_windows: object = ()) -> dict:
        handed.append(fault_windows)
        return dict.fromkeys(plots.STANDARD_PLOTS, tiny_figure)

    monkeypatch.setattr(report_module, "standard_plots", makers)
    html = write_report(faulted_folder).read_text(encoding="utf-8")
    page = _parse(html)
    text = "".join(page.text)

    # The timelines of the standard set get the fault windows.
    assert handed == [faulted.fault_windows()]
    assert handed[0] == [(10.0, 16.0, "outage: pay")]

    # The section, its nav link and its two plots, embedded like the others.
    assert "faults" in page.ids and '<a href="#faults">' in html
    assert "Faults and blast radius" in text
    for name in ("fault_timelines", "blast_radius"):
        assert f"plot-{name}" in page.ids, name
        assert FAULT_PLOT_CAPTIONS[name][0] in text
    assert len(page.images) == len(plots.STANDARD_PLOTS) + 2
    assert all(src.startswith("data:image/svg+xml;base64,") for src in page.images)
    assert "http://" not in html and "https://" not in html

    section = _section(html, "faults")
    faults_text = "".join(_parse(section + "</section>").text)
    # The distinct fault window (one, though every topology × replication run recorded it).
    assert section.count("<td>outage</td>") == 1
    assert "<td>pay</td><td>10 s</td><td>16 s</td><td>6 s</td><td>all</td>" in section
    # One summary line per topology, as the CLI prints them.
    for name in faulted.topologies:
        assert re.search(
            rf"<li>{name} \(mean of 2 replications\): [\d,]+( ± [\d,]+)? workflows affected", section
        )
    assert "in the impact window" in faults_text
    # The compact table: the key columns, one row per topology.
    for header in (
        "affected",
        "affected share",
        "recovery time",
        "recovered",
        "peak backlog",
        "drain time",
        "retry amplification",
        "duplicates",
        "lost",
        "affected components",
    ):
        assert f"<th>{header}</th>" in section, header
    assert "nan" not in faults_text.lower()  # empty affected components read back from CSV
    assert "mean over 2 replications" in faults_text

    # Verdicts: one row per objective × topology, with intervals and a confidence judgement.
    verdicts = _section(html, "verdicts")
    assert "No objectives stated" not in verdicts
    body = verdicts[verdicts.index("<tbody>") : verdicts.index("</tbody>")]
    rows = re.findall(r"<tr>(.*?)</tr>", body)
    assert len(rows) == 2 * len(faulted.topologies)
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in rows]
    assert [c[0] for c in cells] == ["latency_p99"] * 2 + ["recovery_time"] * 2
    assert {c[2] for c in cells} == {"≤ 500 ms", "≤ 10 s"}
    for c in cells:
        assert re.search(r"\[.+, .+\]", c[3]), c  # measured [low, high]
        assert c[4] in ('<span class="met">met</span>', '<span class="missed">not met</span>')
        assert c[5] in ("confident", '<span class="undecided">undecided</span>')
        assert c[6][0] in "+\N{MINUS SIGN}" and c[6].endswith("%)")
    met = int(faulted.verdicts["met"].astype(bool).sum())
    assert f"{met} of {len(faulted.verdicts)} objectives met" in verdicts
    # The ranked recommendation as an ordered list, without the sentences' own numbers.
    ranking = re.search(r'<ol class="ranking">(.*?)</ol>', verdicts)
    assert ranking is not None
    items = re.findall(r"<li>(.*?)</li>", ranking.group(1))
    expected = [re.sub(r"^\d+\. ", "", line) for line in faulted.recommendation()]
    assert len(items) == len(faulted.topologies)
    assert items == [line.replace("'", "&#39;") for line in expected]

    # The side-by-side table has the six outcomes of a workflow.
    comparison = _section(html, "comparison")
    for label in ("completed", "failed", "compensated", "inconsistent", "lost", "in flight"):
        assert f"<td>{label}</td>" in comparison, label
    assert not plt.get_fignums()  # every figure closed


def test_report_with_faults_and_one_replication(
    faulted_single: sim.RunResult, quick_plots: None, quick_fault_plots: None
) -> None:
    html = render_report(faulted_single, images="png")
    page = _parse(html)
    assert {"faults", "plot-fault_timelines", "plot-blast_radius"} <= page.ids
    body = _section(html, "verdicts")
    rows = re.findall(r"<tr>(.*?)</tr>", body[body.index("<tbody>") :])
    assert len(rows) == 4
    for row in rows:
        cells = re.findall(r"<td>(.*?)</td>", row)
        assert "[" not in cells[3]  # no interval
        assert cells[5] == ""  # no confidence judgement with one replication
    assert "One replication: no interval" in body
    assert "(mean of" not in _section(html, "faults")


def test_report_without_faults_has_no_blast_radius_section(html: str, single_html: str) -> None:
    for page_html in (html, single_html):
        page = _parse(page_html)
        assert "faults" not in page.ids
        assert "#faults" not in page_html
        assert "Faults and blast radius" not in page_html
        assert not {"plot-fault_timelines", "plot-blast_radius"} & page.ids


def test_report_escapes_fault_text(
    faulted: sim.RunResult, quick_plots: None, quick_fault_plots: None
) -> None:
    evil = "<b>pay</b>&co"
    faults = faulted.faults.assign(target=evil)
    radius = faulted.blast_radius.assign(affected_components=f"{evil};ship")
    res = dataclasses.replace(faulted, faults=faults, blast_radius=radius)
    section = _section(render_report(res), "faults")
    assert "<b>" not in section
    assert "&lt;b&gt;pay&lt;/b&gt;&amp;co" in section
    assert evil in "".join(_parse(section + "</section>").text)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (0.25, "s", "250.0 ms"),
        (2.5, "s", "2.500 s"),
        (0.0512, "%", "5.12 %"),
        (35.0, "/s", "35.00 /s"),
    ],
)
def test_verdict_units(value: float, unit: str, expected: str) -> None:
    assert formatting.quantity(value, unit) == expected


def test_verdict_targets_and_margins() -> None:
    assert formatting.target(0.5, "s") == "500 ms"
    assert formatting.target(30, "s") == "30 s"
    assert formatting.target(0.999, "%") == "99.9 %"
    assert formatting.target(35, "/s") == "35 /s"
    assert formatting.margin(-0.02, -0.4, "%") == "\N{MINUS SIGN}2.00 points (\N{MINUS SIGN}40%)"
    assert formatting.margin(0.1, 0.2, "s") == "+100.0 ms (+20%)"
    assert formatting.margin(float("nan"), float("nan"), "s") == "-"
