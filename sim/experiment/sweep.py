"""Sweeps: the same comparison over a grid of scenario variants, with replications.

A sweep expands its factors (``--vary PATH=VALUES`` or the scenario's ``sweep:`` section) into
grid points, and runs every (replication, point, topology) as one task: replications in the outer
loop, so that every point of replication r sees the same random numbers (common random numbers
across the grid as well as across topologies). Tasks run on any executor; each finished task is
written to ``tasks/<key>.json`` at once, keyed by a hash of its resolved scenario, seed,
replication, topology and simulator version, so re-running the same sweep skips finished work and
an interruption loses nothing already done. A task that crashes is recorded in
``tasks/<key>.error.json`` and the sweep goes on.

The sweep folder also holds the tidy table (``sweep.csv``: one row per point × topology ×
replication), the aggregated table with intervals (``sweep_summary.csv``), paired differences
between topologies per point (``sweep_differences.csv``), errors (``errors.csv``), the saturation
analysis of a load sweep (``saturation.csv``) and plots of metrics against each factor.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.metrics import components_table, summary_table
from sim.analysis.statistics import aggregate, paired_differences
from sim.experiment.executors import Executor, make_executor
from sim.experiment.results import COMPARED, HEADLINE, with_overrides
from sim.experiment.runner import run_topology
from sim.scenario.loader import ScenarioError, load_scenario, read_scenario_data
from sim.scenario.models import Scenario
from sim.scenario.sweeps import (
    Factor,
    expand_grid,
    factors_from_spec,
    parse_vary,
    point_key,
    point_label,
    scenario_for_point,
)

Task = tuple[str, int, str, Scenario, str, int]
"""(key, point index, point label, scenario, topology, replication)."""


def sweep_task(task: Task) -> dict[str, Any]:
    """Run one task and condense it to its summary row and component rows (small, picklable)."""
    _, _, _, scenario, topology, replication = task
    run = run_topology(scenario, topology, replication=replication)
    components = components_table([run], scenario)
    summary = summary_table([run], scenario, components)
    return {
        "summary": summary.iloc[0].to_dict(),
        "components": components.to_dict("records"),
        "wall_seconds": run.wall_seconds,
    }


@dataclass
class SweepResult:
    """A finished (or partly finished) sweep, as frames."""

    folder: Path
    factors: list[Factor]
    points: list[dict[str, Any]]
    tidy: pd.DataFrame
    components: pd.DataFrame
    summary: pd.DataFrame
    differences: pd.DataFrame
    errors: pd.DataFrame
    saturation: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def factor_names(self) -> list[str]:
        return [f.path for f in self.factors]

    def plot(self, metric: str = "latency_p99", factor: str | None = None):
        """``metric`` against ``factor`` (default: the first), one line per topology with its
        interval band; other factors, if any, are shown as separate panels."""
        from sim.analysis.plots import sweep_curves

        return sweep_curves(self.summary, metric, factor or self.factor_names[0], self.factor_names)


def _version() -> str:
    import importlib.metadata as md

    try:
        return md.version("orchestration-sim")
    except md.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def plan(
    path: str | Path,
    vary: Sequence[str | Factor] = (),
    topologies: Sequence[str] | None = None,
    seed: int | None = None,
    duration: float | None = None,
    replications: int | None = None,
    confidence: float | None = None,
) -> tuple[Scenario, list[Factor], list[dict[str, Any]], list[Task]]:
    """Validate the sweep and list its tasks, without running anything."""
    path = Path(path)
    base = load_scenario(path)  # report problems of the file itself once, not per point
    data = read_scenario_data(path)
    data.pop("sweep", None)
    factors = [f if isinstance(f, Factor) else parse_vary(f) for f in vary]
    given = {f.path for f in factors}
    if base.sweep is not None:
        factors = [f for f in factors_from_spec(base.sweep) if f.path not in given] + factors
    if not factors:
        raise ScenarioError(str(path), ["nothing to vary: give --vary PATH=VALUES or a sweep: section"])
    names = list(topologies) if topologies else list(base.topologies)
    unknown = [n for n in names if n not in base.topologies]
    if unknown:
        known = ", ".join(base.topologies)
        raise ScenarioError("--topology", [f"unknown topology {n!r} (known: {known})" for n in unknown])
    points = expand_grid(factors)
    scenarios = []
    for point in points:
        sc = scenario_for_point(data, point, str(path), base_dir=path.parent)
        scenarios.append(
            with_overrides(sc, duration=duration, seed=seed, replications=replications, confidence=confidence)
        )
    reps = scenarios[0].replications
    version = _version()
    tasks: list[Task] = []
    for r in range(reps):
        for i, (point, sc) in enumerate(zip(points, scenarios, strict=True)):
            resolved = {"scenario": sc.model_dump(mode="json", by_alias=True), "simulator": version}
            for name in names:
                key = point_key(resolved, sc.seed, r, name)
                tasks.append((key, i, point_label(point), sc, name, r))
    return base, factors, points, tasks


def default_sweep_folder(base: Scenario, factors: Sequence[Factor], root: str | Path = "results") -> Path:
    label = "+".join(f.path for f in factors)
    return Path(root) / base.name / f"sweep-{label}"[:120]


def run_sweep(
    path: str | Path,
    vary: Sequence[str | Factor] = (),
    out: str | Path | None = None,
    topologies: Sequence[str] | None = None,
    seed: int | None = None,
    duration: float | None = None,
    replications: int | None = None,
    confidence: float | None = None,
    executor: str | Executor = "processes",
    workers: int | None = None,
    dask: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    plots: bool = True,
) -> SweepResult:
    """Run a sweep, skipping tasks already finished in ``out``; return its tables.

    ``executor`` is ``serial``, ``processes`` (default: all cores) or an Executor; ``dask`` (a
    scheduler address or ``local``) selects the Dask executor. ``progress(done, total)`` is
    called after every finished task, counting those found already done.
    """
    base, factors, points, tasks = plan(path, vary, topologies, seed, duration, replications, confidence)
    folder = Path(out) if out is not None else default_sweep_folder(base, factors)
    store = folder / "tasks"
    store.mkdir(parents=True, exist_ok=True)
    todo = [t for t in tasks if not (store / f"{t[0]}.json").exists()]
    done = len(tasks) - len(todo)
    if progress is not None:
        progress(done, len(tasks))
    started = time.perf_counter()
    if todo:
        owned = not isinstance(executor, Executor)
        pool = make_executor(executor, workers, dask) if owned else executor
        try:
            for task, result, error in pool.map(sweep_task, todo):
                _record(store, task, result, error)
                done += 1
                if progress is not None:
                    progress(done, len(tasks))
        finally:
            if owned:
                pool.close()
    result = collect(folder, factors, points, tasks)
    result.meta = {
        "scenario": base.name,
        "source": str(path),
        "factors": {f.path: list(f.values) for f in factors},
        "topologies": list(dict.fromkeys(t[4] for t in tasks)),
        "replications": max(t[5] for t in tasks) + 1,
        "tasks": len(tasks),
        "ran": len(todo),
        "skipped": len(tasks) - len(todo),
        "failed": len(result.errors),
        "wall_seconds": time.perf_counter() - started,
        "simulator": _version(),
    }
    _write_tables(result, plots)
    return result


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _record(store: Path, task: Task, result: dict[str, Any] | None, error: BaseException | None) -> None:
    key, index, label, _, topology, replication = task
    ident = {"key": key, "point": index, "label": label, "topology": topology, "replication": replication}
    if error is not None:
        text = "".join(traceback.format_exception(error)).strip()
        _atomic_write(store / f"{key}.error.json", json.dumps({**ident, "error": text}, default=str))
        return
    assert result is not None
    (store / f"{key}.error.json").unlink(missing_ok=True)
    _atomic_write(store / f"{key}.json", json.dumps({**ident, **result}, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if value is pd.NA:
        return None
    return str(value)


def collect(
    folder: Path, factors: Sequence[Factor], points: Sequence[dict[str, Any]], tasks: Sequence[Task]
) -> SweepResult:
    """Read the finished tasks of a sweep back into its tables."""
    store = folder / "tasks"
    rows, comp_rows, errors = [], [], []
    for key, index, label, _, topology, replication in tasks:
        point = {f.path: points[index][f.path] for f in factors}
        ident = {"point": index, "label": label, **point}
        ok = store / f"{key}.json"
        if ok.exists():
            data = json.loads(ok.read_text(encoding="utf-8"))
            rows.append({**ident, **data["summary"]})
            comp_rows.extend({**ident, **c} for c in data["components"])
            continue
        failed = store / f"{key}.error.json"
        if failed.exists():
            data = json.loads(failed.read_text(encoding="utf-8"))
            errors.append({**ident, "topology": topology, "replication": replication, "error": data["error"]})
    tidy = pd.DataFrame(rows)
    names = [f.path for f in factors]
    summary = pd.DataFrame()
    differences = pd.DataFrame()
    confidence = tasks[0][3].confidence if tasks else 0.95
    if not tidy.empty:
        by = ["point", *names, "topology"]
        metrics = [m for m in HEADLINE if m in tidy.columns]
        summary = aggregate(tidy, by, metrics, confidence)
        topologies = list(dict.fromkeys(tidy["topology"]))
        if len(topologies) > 1:
            differences = paired_differences(tidy, topologies[0], COMPARED, confidence, by=["point", *names])
    result = SweepResult(
        folder=folder,
        factors=list(factors),
        points=[dict(p) for p in points],
        tidy=tidy,
        components=pd.DataFrame(comp_rows),
        summary=summary,
        differences=differences,
        errors=pd.DataFrame(errors, columns=["point", "label", *names, "topology", "replication", "error"]),
        saturation=pd.DataFrame(),
    )
    result.saturation = saturation(result)
    return result


def saturation(result: SweepResult, tolerance: float = 0.01) -> pd.DataFrame:
    """For a sweep of a load rate: per topology, the highest offered load it sustains (mean
    throughput within ``tolerance`` of the mean offered rate) and the component that saturates
    first (the bottleneck at the first point above it that it does not sustain)."""
    rates = [f.path for f in result.factors if f.path.startswith("load.") and f.path.endswith(".rate")]
    if not rates or result.tidy.empty:
        return pd.DataFrame()
    factor = rates[0]
    others = [f for f in result.factor_names if f != factor]
    rows = []
    for keys, group in result.tidy.groupby(["topology", *others], sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        means = group.groupby(factor).agg(
            throughput=("throughput", "mean"),
            offered=("offered_rate", "mean"),
            latency_p99=("latency_p99", "mean"),
            bottleneck=("bottleneck", lambda s: s.mode().iloc[0] if s.notna().any() else None),
        )
        means = means.sort_index()
        sustained = means["throughput"] >= (1 - tolerance) * means["offered"]
        ok = means[sustained]
        not_ok = means[~sustained]
        highest = ok.index.max() if not ok.empty else None
        first_bad = not_ok[not_ok.index > highest] if highest is not None else not_ok
        row = dict(zip(["topology", *others], keys, strict=True))
        row.update(
            {
                "factor": factor,
                "highest_sustained": highest,
                "p99_at_highest": ok["latency_p99"].get(highest) if highest is not None else None,
                "first_unsustained": first_bad.index.min() if not first_bad.empty else None,
                "saturates_first": first_bad["bottleneck"].iloc[0] if not first_bad.empty else None,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _write_tables(result: SweepResult, plots: bool) -> None:
    folder = result.folder
    tables = {
        "sweep.csv": result.tidy,
        "sweep_components.csv": result.components,
        "sweep_summary.csv": result.summary,
        "sweep_differences.csv": result.differences,
        "errors.csv": result.errors,
        "saturation.csv": result.saturation,
    }
    for name, frame in tables.items():
        _atomic_write(folder / name, frame.to_csv(index=False))
    _atomic_write(folder / "sweep.json", json.dumps(result.meta, indent=2, default=_json_default) + "\n")
    if plots and not result.summary.empty:
        from sim.analysis.plots import save_sweep_plots

        save_sweep_plots(result.summary, result.factor_names, folder / "plots")


def read_sweep(folder: str | Path) -> SweepResult:
    """Read a sweep folder written by :func:`run_sweep` back into a :class:`SweepResult`."""
    folder = Path(folder)
    meta = json.loads((folder / "sweep.json").read_text(encoding="utf-8"))
    factors = [Factor(path, tuple(values)) for path, values in meta["factors"].items()]

    def table(name: str) -> pd.DataFrame:
        path = folder / name
        if not path.exists() or path.stat().st_size <= 1:
            return pd.DataFrame()
        try:
            return pd.read_csv(path)
        except pd.errors.EmptyDataError:
            return pd.DataFrame()

    tidy = table("sweep.csv")
    names = [f.path for f in factors]
    points = (
        tidy[["point", *names]].drop_duplicates().sort_values("point")[names].to_dict("records")
        if not tidy.empty
        else []
    )
    return SweepResult(
        folder=folder,
        factors=factors,
        points=points,
        tidy=tidy,
        components=table("sweep_components.csv"),
        summary=table("sweep_summary.csv"),
        differences=table("sweep_differences.csv"),
        errors=table("errors.csv"),
        saturation=table("saturation.csv"),
        meta=meta,
    )
