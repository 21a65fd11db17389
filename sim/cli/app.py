"""The ``sim`` command: a thin layer that parses, calls the library and prints.

Every command has a library function behind it (:func:`sim.run`, :func:`sim.run_sweep`,
:func:`sim.load_scenario`, :func:`sim.scenario_schema`, :func:`sim.write_report`); scenario
problems end with exit code 2 and one line per problem. The library is imported inside each
command, so that ``sim --help`` and ``sim validate`` start without loading the numerical stack.
"""

from __future__ import annotations

import json
import math
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from sim.scenario.errors import ScenarioError

if TYPE_CHECKING:
    from rich.table import Table

    from sim.api.results import RunResult
    from sim.api.sweep import SweepResult

app = typer.Typer(
    help="Compare orchestration, choreography and hybrid coordination of workflows by simulation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 130)


def _fail(exc: ScenarioError) -> None:
    for line in str(exc).splitlines():
        err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


Executors = typer.Option("--executor", help="Where runs execute: serial, processes (all cores) or dask.")
Force = typer.Option("--force", help="Run even beyond the size limits (expected arrivals, windows, crashes).")
AllowOutside = typer.Option(
    "--allow-outside", help="Let empirical distributions read files outside the scenario's folder."
)


@contextmanager
def _progress(quiet: bool, duration: float | None = None) -> Iterator[Callable[[str, float], None]]:
    """A progress bar on stderr (only when it is a terminal); yields ``update(label, fraction)``.
    With ``duration`` (the simulated seconds of arrivals) it also shows the simulated time."""
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    columns = [
        TextColumn("{task.description:<20}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
    ]
    if duration is not None:
        columns.append(TextColumn("{task.fields[simulated]}"))
    with Progress(
        *columns,
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(label: str, fraction: float) -> None:
            simulated = (
                "" if duration is None else f"{fraction * duration:,.0f} of {duration:,.0f} s simulated"
            )
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=1.0, simulated=simulated)
            bar.update(tasks[label], completed=fraction, simulated=simulated)

        yield update


def _simulated(file: Path, duration: float | None, quiet: bool, allow_outside: bool) -> float | None:
    """The simulated seconds of arrivals a run's progress bar shows (None when no bar shows)."""
    if quiet or not err.is_terminal:
        return None
    if duration is not None:
        return duration
    from sim.scenario.loader import load_scenario

    return load_scenario(file, allow_outside=allow_outside).duration


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Scenario file (YAML).")],
    topology: Annotated[
        list[str] | None, typer.Option("--topology", "-t", help="Topology to run (repeatable; default: all).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed (overrides the file).")] = None,
    duration: Annotated[float | None, typer.Option(help="Seconds of arrivals (overrides the file).")] = None,
    replications: Annotated[
        int | None,
        typer.Option("--replications", "-r", help="Independent replications (overrides the file)."),
    ] = None,
    confidence: Annotated[
        float | None, typer.Option(help="Confidence level of intervals, e.g. 0.95 (overrides the file).")
    ] = None,
    executor: Annotated[str | None, Executors] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default: results/<scenario>/<run-id>).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the earlier run folder at --out (only one of ours).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing but errors (and --json).")
    ] = False,
    plots: Annotated[bool, typer.Option(help="Write PNG plots into the run folder.")] = True,
    svg: Annotated[bool, typer.Option("--svg", help="Write the plots as SVG too.")] = False,
    trace: Annotated[
        int, typer.Option(help="Trace N sampled workflow instances per topology (Chrome and OTLP JSON).")
    ] = 0,
    force: Annotated[bool, Force] = False,
    allow_outside: Annotated[bool, AllowOutside] = False,
) -> None:
    """Simulate every topology of a scenario with the same random numbers and compare them."""
    from sim.analysis.blast_radius import blast_radius_summary_lines
    from sim.api.folders import check_output
    from sim.api.results import run as run_scenario
    from sim.api.results import summary_json
    from sim.api.rundir import default_folder

    try:
        if out_dir is not None:  # refuse a bad --out before the run, not after
            check_output(out_dir, "run", overwrite=overwrite)
        with _progress(quiet, _simulated(file, duration, quiet, allow_outside)) as progress:
            result = run_scenario(
                file,
                topology,
                seed=seed,
                duration=duration,
                replications=replications,
                confidence=confidence,
                executor=executor,
                workers=workers,
                progress=progress,
                trace=trace,
                force=force,
                allow_outside=allow_outside,
            )
    except ScenarioError as exc:
        _fail(exc)
        return
    formats = ("png", "svg") if svg else ("png",)
    try:
        folder = result.save(
            out_dir if out_dir is not None else default_folder(result),
            plots=plots,
            formats=formats,
            overwrite=overwrite,
        )
    except ScenarioError as exc:
        _fail(exc)
        return
    except OSError as exc:
        _fail(ScenarioError("--out", [f"cannot write the run folder: {exc.strerror or exc}"]))
        return
    if as_json:
        print(summary_json(result))
    elif not quiet:
        out.print(summary_table(result))
        per_workflow = workflow_table(result)
        if per_workflow is not None:
            out.print(per_workflow)
        for line in result.difference_lines():
            print(line)
        if not result.verdicts.empty:
            print("Objectives (ranked):")
            for line in result.recommendation():
                print(f"  {line}")
        if not result.blast_radius.empty:
            print("Blast radius (against the same run without faults):")
            for line in blast_radius_summary_lines(result.blast_radius):
                print(f"  {line}")
        print(f"Run folder: {folder}")


def summary_table(result: RunResult) -> Table:
    """The side-by-side table printed by ``sim run``: one column per topology; with several
    replications each cell is the mean ± the half-width of its confidence interval."""
    from rich.table import Table

    from sim.analysis.tables import side_by_side_rows

    sc = result.scenario
    reps = result.replications
    title = f"{sc.name}: seed {result.seed}, {sc.duration:g} s of arrivals, warm-up {sc.warmup:g} s"
    if reps > 1:
        title += f", {reps} replications (mean ± {result.confidence:.0%} interval)"
    table = Table(title=escape(title), title_justify="left")
    table.add_column("metric")
    for name in result.topologies:
        table.add_column(escape(name), justify="right")
    for row in side_by_side_rows(result):
        table.add_row(escape(row.label), *(escape(c) for c in row.cells))
    return table


def workflow_table(result: RunResult) -> Table | None:
    """With more than one workflow, a few metrics of each workflow side by side, as the main
    table writes them (None with one workflow: the main table says it all)."""
    from rich.table import Table

    from sim.analysis.tables import workflow_rows

    groups = workflow_rows(result)
    if not groups:
        return None
    title = "per workflow"
    if result.replications > 1:
        title += f" (mean ± {result.confidence:.0%} interval)"
    table = Table(title=title, title_justify="left")
    table.add_column("workflow")
    table.add_column("metric")
    for name in result.topologies:
        table.add_column(escape(name), justify="right")
    for workflow, rows in groups:
        for i, row in enumerate(rows):
            table.add_row(
                escape(workflow) if i == 0 else "",
                escape(row.label),
                *(escape(c) for c in row.cells),
                end_section=i == len(rows) - 1,
            )
    return table


@app.command()
def sweep(
    file: Annotated[Path, typer.Argument(help="Scenario file (YAML).")],
    vary: Annotated[
        list[str] | None,
        typer.Option(
            "--vary",
            "-v",
            help="PATH=VALUES: a field and its values (a,b,c; start:stop:step; log:start:stop:count). "
            "Repeat for a grid; adds to the file's sweep: section.",
        ),
    ] = None,
    topology: Annotated[
        list[str] | None, typer.Option("--topology", "-t", help="Topology to run (repeatable; default: all).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed (overrides the file).")] = None,
    duration: Annotated[float | None, typer.Option(help="Seconds of arrivals (overrides the file).")] = None,
    replications: Annotated[
        int | None, typer.Option("--replications", "-r", help="Replications per point (overrides the file).")
    ] = None,
    confidence: Annotated[
        float | None, typer.Option(help="Confidence level of intervals, e.g. 0.95 (overrides the file).")
    ] = None,
    executor: Annotated[str, Executors] = "processes",
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")] = None,
    dask: Annotated[
        str | None, typer.Option(help="Run on Dask: a scheduler address, or 'local' to start a LocalCluster.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Sweep folder (default: results/<scenario>/sweep-<factors>).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the aggregated table as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    plots: Annotated[bool, typer.Option(help="Write PNG plots into the sweep folder.")] = True,
    force: Annotated[bool, Force] = False,
    allow_outside: Annotated[bool, AllowOutside] = False,
) -> None:
    """Run the comparison over a grid of scenario variants; re-running skips finished points."""
    from sim.api.sweep import run_sweep

    try:
        with _progress(quiet) as progress:
            result = run_sweep(
                file,
                vary or [],
                out=out_dir,
                topologies=topology,
                seed=seed,
                duration=duration,
                replications=replications,
                confidence=confidence,
                executor=executor,
                workers=workers,
                dask=dask,
                progress=lambda done, total: progress("sweep", done / total if total else 1.0),
                plots=plots,
                force=force,
                allow_outside=allow_outside,
            )
    except ScenarioError as exc:
        _fail(exc)
        return
    except OSError as exc:
        _fail(ScenarioError("--out", [f"cannot write the sweep folder: {exc.strerror or exc}"]))
        return
    if as_json:
        print(result.summary.to_json(orient="records", indent=2))
    elif not quiet:
        out.print(sweep_table(result))
        if not result.saturation.empty:
            out.print(saturation_table(result))
        if not result.errors.empty:
            where = escape(str(result.folder / "errors.csv"))
            err.print(f"{len(result.errors)} simulation(s) failed; see {where}", highlight=False)
        m = result.meta
        if m["unreadable"]:
            print(f"{m['unreadable']} unreadable result file(s) of an earlier attempt were run again")
        print(f"{m['tasks']} runs ({m['ran']} run now, {m['skipped']} already done, {m['failed']} failed)")
        print(f"Sweep folder: {result.folder}")
    if not result.errors.empty:
        raise typer.Exit(1)


def sweep_table(result: SweepResult) -> Table:
    """Per point and topology: throughput and latency (mean ± interval half-width)."""
    from rich.table import Table

    from sim.analysis.formatting import cell_interval, missing

    table = Table(title="Sweep (mean ± interval over replications)", title_justify="left")
    for name in [
        *result.factor_names,
        "topology",
        "throughput (/s)",
        "latency mean",
        "latency p99",
        "bottleneck",
    ]:
        table.add_column(escape(name), justify="right")
    tidy = result.tidy
    for row in result.summary.to_dict("records"):
        sel = tidy[(tidy["point"] == row["point"]) & (tidy["topology"] == row["topology"])]
        neck = sel["bottleneck"].dropna()
        cells = [str(row[f]) for f in result.factor_names] + [row["topology"]]
        for key, unit in (("throughput", ""), ("latency_mean", "s"), ("latency_p99", "s")):
            half = row.get(f"{key}_half_width")
            cells.append(cell_interval(float(row[key]), math.nan if missing(half) else float(half), unit))
        cells.append(str(neck.mode().iloc[0]) if not neck.empty else "-")
        table.add_row(*(escape(c) for c in cells))
    return table


def saturation_table(result: SweepResult) -> Table:
    """The highest load each topology sustains and what saturates first."""
    from rich.table import Table

    from sim.analysis.formatting import cell

    sat = result.saturation
    table = Table(title=escape(f"Saturation ({sat['factor'].iloc[0]})"), title_justify="left")
    cols = [c for c in sat.columns if c != "factor"]
    for c in cols:
        table.add_column(escape(c.replace("_", " ")), justify="right")
    for row in sat.to_dict("records"):
        table.add_row(*[escape(cell(row[c], "s" if c == "p99_at_highest" else "")) for c in cols])
    return table


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="Scenario file (YAML).")],
    force: Annotated[bool, Force] = False,
    allow_outside: Annotated[bool, AllowOutside] = False,
) -> None:
    """Check a scenario file and say what is wrong with it, if anything (the size limits of a
    run included, unless --force)."""
    from sim.scenario.limits import check_limits
    from sim.scenario.loader import load_scenario

    try:
        scenario = load_scenario(file, allow_outside=allow_outside)
        check_limits(scenario, force=force, source=str(file))
    except ScenarioError as exc:
        _fail(exc)
        return
    topologies = ", ".join(scenario.topologies)
    print(f"{file}: ok (scenario {scenario.name!r}; topologies: {topologies})")


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor completion and checking)."""
    from sim.scenario.schema import scenario_schema

    sys.stdout.write(json.dumps(scenario_schema(), indent=2) + "\n")


@app.command()
def report(
    folder: Annotated[Path, typer.Argument(metavar="RUN_FOLDER", help="Run folder (written by sim run).")],
    out_file: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Report file (default: RUN_FOLDER/report.html)."),
    ] = None,
) -> None:
    """Write one self-contained HTML report of a run folder (opens from disk, no network)."""
    from sim.api.report import NotARunFolder, write_report

    try:
        path = write_report(folder, out_file)
    except ScenarioError as exc:
        _fail(exc)
        return
    except NotARunFolder as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    print(path)


@app.command()
def calibrate(
    traces: Annotated[Path, typer.Argument(help="Trace file: OTLP/JSON or Jaeger JSON.")],
    out_file: Annotated[Path, typer.Option("--out", metavar="FILE", help="Scenario file to write.")],
    topology: Annotated[
        str | None, typer.Option(help="Of a file `sim run --trace` wrote: the topology to read.")
    ] = None,
    fit: Annotated[str, typer.Option(help="Service latencies: empirical, lognormal or gamma.")] = "empirical",
    sampled: Annotated[
        float, typer.Option(help="Share of the workflows the traces hold (when not numbered).")
    ] = 1.0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing scenario file.")] = False,
) -> None:
    """Write a scenario skeleton calibrated from traces of a real system: services, their
    latencies, the workflows' steps and parallel groups, and arrival rates."""
    from sim.api.calibrate import calibrate as write_calibrated

    try:
        path = write_calibrated(
            traces, out_file, topology=topology, fit=fit, sampled=sampled, overwrite=overwrite
        )
    except ScenarioError as exc:
        _fail(exc)
        return
    print(path)


def main() -> None:
    # A terminated command unwinds like an interrupted one: half-written folders and the
    # temporary records of a long run are removed on the way out.
    signal.signal(signal.SIGTERM, _terminated)
    app()


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
