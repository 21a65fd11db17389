"""The ``sim`` command: a thin layer that parses, calls the library and prints.

Every command has a library function behind it (:func:`sim.run`, :func:`sim.load_scenario`,
:func:`sim.scenario_schema`); scenario problems end with exit code 2 and one line per problem.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from sim.experiment.results import RunResult, summary_json
from sim.experiment.results import run as run_scenario
from sim.experiment.rundir import default_folder
from sim.scenario.loader import ScenarioError, load_scenario
from sim.scenario.schema import scenario_schema

app = typer.Typer(
    help="Compare orchestration, choreography and hybrid coordination of workflows by simulation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console(highlight=False)


def _fail(exc: ScenarioError) -> None:
    for line in str(exc).splitlines():
        err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Scenario file (YAML).")],
    topology: Annotated[
        list[str] | None, typer.Option("--topology", "-t", help="Topology to run (repeatable; default: all).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed (overrides the file).")] = None,
    duration: Annotated[float | None, typer.Option(help="Seconds of arrivals (overrides the file).")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default: results/<scenario>/<run-id>).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing but errors (and --json).")
    ] = False,
    plots: Annotated[bool, typer.Option(help="Write PNG plots into the run folder.")] = True,
) -> None:
    """Simulate every topology of a scenario with the same random numbers and compare them."""
    try:
        scenario = load_scenario(file)
        show = not quiet and err.is_terminal
        with Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=not show,
        ) as bar:
            tasks: dict[str, int] = {}

            def progress(name: str, fraction: float) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=1.0)
                bar.update(tasks[name], completed=fraction)

            result = run_scenario(scenario, topology, seed=seed, duration=duration, progress=progress)
    except ScenarioError as exc:
        _fail(exc)
        return
    folder = result.save(out_dir if out_dir is not None else default_folder(result), plots=plots)
    if as_json:
        print(summary_json(result))
    elif not quiet:
        out.print(summary_table(result))
        print(f"Run folder: {folder}")


def _fmt(value: object, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        if unit == "s":
            return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.3f} s"
        if unit == "%":
            return f"{value * 100:.1f} %"
        return f"{value:.2f}"
    return str(value)


def summary_table(result: RunResult) -> Table:
    """The side-by-side table printed by ``sim run``."""
    sc = result.scenario
    table = Table(
        title=f"{sc.name}: seed {result.seed}, {sc.duration:g} s of arrivals, warm-up {sc.warmup:g} s",
        title_justify="left",
    )
    table.add_column("metric")
    rows = result.summary.to_dict("records")
    for row in rows:
        table.add_column(str(row["topology"]), justify="right")
    spec = [
        ("arrived", "arrived", ""),
        ("completed", "completed", ""),
        ("failed", "failed", ""),
        ("in flight", "in_flight", ""),
        ("throughput (/s)", "throughput", ""),
        ("latency mean", "latency_mean", "s"),
        ("latency p50", "latency_p50", "s"),
        ("latency p95", "latency_p95", "s"),
        ("latency p99", "latency_p99", "s"),
        ("latency max", "latency_max", "s"),
        ("messages / workflow", "messages_per_workflow", ""),
        ("bottleneck", "bottleneck", ""),
        ("bottleneck utilization", "bottleneck_utilization", "%"),
    ]
    for label, key, unit in spec:
        table.add_row(label, *[_fmt(r[key], unit) for r in rows])
    if any(r["async_steps"] for r in rows):
        table.add_row("async completion p50", *[_fmt(r["async_latency_p50"], "s") for r in rows])
        table.add_row("async completion p99", *[_fmt(r["async_latency_p99"], "s") for r in rows])
        table.add_row("async failed", *[_fmt(r["async_failed"] if r["async_steps"] else None) for r in rows])
    return table


@app.command()
def validate(file: Annotated[Path, typer.Argument(help="Scenario file (YAML).")]) -> None:
    """Check a scenario file and say what is wrong with it, if anything."""
    try:
        scenario = load_scenario(file)
    except ScenarioError as exc:
        _fail(exc)
        return
    topologies = ", ".join(scenario.topologies)
    print(f"{file}: ok (scenario {scenario.name!r}; topologies: {topologies})")


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor completion and checking)."""
    sys.stdout.write(json.dumps(scenario_schema(), indent=2) + "\n")


def main() -> None:
    app()
