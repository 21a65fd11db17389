"""Sweeps: the same comparison over a grid of scenario variants, with replications.

A sweep expands its factors (``--vary PATH=VALUES`` or the scenario's ``sweep:`` section) into
grid points. Each point is evaluated exactly as ``sim run`` would evaluate the point's scenario:
the same simulations (every topology and replication, with the baseline twins when there are
faults) and the same pipeline (:func:`sim.analysis.evaluation.evaluate`: warm-up, frames, blast
radius, verdicts). Replication r of every point uses the seeds of replication r, so points are
compared with common random numbers as well as topologies.

Simulations run on any executor, one task each, and every finished simulation is written at once
to ``tasks/<key>.npz`` by the worker that ran it; once all of a point's simulations are there, the
point is evaluated, its rows written to ``points/<key>.json`` (with its resolved scenario, also
as ``points/<key>.yaml``, which ``sim run`` repeats), and its raw records deleted. Keys are hashes
of the resolved scenario, the topologies, the replication and the simulator's version (with a hash
of its source), so re-running the same sweep skips finished points and finished simulations: an
interruption loses nothing already done, and results of other code are never reused. A
simulation that crashes is recorded in ``tasks/<key>.error.json``; its point is not evaluated,
and the sweep goes on with the others.

The sweep folder also holds the tidy table (``sweep.csv``: one row per point × topology ×
replication), the aggregated table with intervals (``sweep_summary.csv``), paired differences
between topologies per point (``sweep_differences.csv``), the components, blast radius and
verdicts per point when there are any, errors (``errors.csv``), the saturation analysis of a load
sweep (``saturation.csv``) and plots of metrics against each factor.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from matplotlib.figure import Figure

from sim.analysis.evaluation import Evaluation, evaluate
from sim.analysis.sweeps import saturation, sweep_differences, sweep_summary
from sim.api.folders import check_output, safe_component, write_marker
from sim.running.executors import Executor, check_executor, make_executor
from sim.running.simulate import Task, tasks_for
from sim.running.store import load_records, simulate_into
from sim.scenario.grid import (
    VARY_SOURCE,
    Factor,
    Value,
    content_key,
    describe_point,
    expand_grid,
    factors_from_spec,
    parse_vary,
    point_label,
)
from sim.scenario.limits import check_limits
from sim.scenario.loader import ScenarioError, load_scenario, read_scenario_data
from sim.scenario.models import Scenario
from sim.scenario.overrides import select_topologies, with_overrides
from sim.scenario.points import scenario_for_point

POINT_TABLES = ("summary", "components", "blast_radius", "verdicts", "workflows")
"""The frames of an evaluation a sweep keeps per point."""


@dataclass(frozen=True)
class SweepPoint:
    """One grid point: its factor values, its validated scenario and the simulations it needs
    (task key → task)."""

    index: int
    values: dict[str, Value]
    scenario: Scenario
    key: str
    tasks: dict[str, Task]

    @property
    def label(self) -> str:
        return point_label(self.values)


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep will run: the base scenario, its factors, topologies and points."""

    base: Scenario
    factors: list[Factor]
    topologies: list[str]
    points: list[SweepPoint]

    @property
    def tasks(self) -> list[Task]:
        return [t for p in self.points for t in p.tasks.values()]


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
    blast_radius: pd.DataFrame = field(default_factory=pd.DataFrame)
    verdicts: pd.DataFrame = field(default_factory=pd.DataFrame)
    workflows: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per point, topology, replication and workflow: the per-workflow figures of a run."""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def factor_names(self) -> list[str]:
        return [f.path for f in self.factors]

    def plot(self, metric: str = "latency_p99", factor: str | None = None) -> Figure:
        """``metric`` against ``factor`` (default: the first), one line per topology with its
        interval band; other factors, if any, are shown as separate panels."""
        from sim.analysis.plots.sweeps import sweep_curves

        return sweep_curves(self.summary, metric, factor or self.factor_names[0], self.factor_names)


@functools.cache
def simulator_version() -> str:
    """The package's version and a hash of its source code, so that a sweep never reuses results
    that other code made (another release, or an edited checkout)."""
    import importlib.metadata as md

    try:
        version = md.version("orchestration-sim")
    except md.PackageNotFoundError:  # pragma: no cover - running from a source tree
        version = "unknown"
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{version}+{digest.hexdigest()[:12]}"


def plan(
    path: str | Path,
    vary: Sequence[str | Factor] = (),
    topologies: Sequence[str] | None = None,
    seed: int | None = None,
    duration: float | None = None,
    replications: int | None = None,
    confidence: float | None = None,
    force: bool = False,
    allow_outside: bool = False,
) -> SweepPlan:
    """Validate the sweep and list its points and simulations, without running anything; every
    point's runs must fit :mod:`sim.scenario.limits` unless ``force``."""
    path = Path(path)
    base = load_scenario(path, allow_outside=allow_outside)  # the file's own problems once, not per point
    data = read_scenario_data(path)
    data.pop("sweep", None)
    factors = [f if isinstance(f, Factor) else parse_vary(f) for f in vary]
    given = {f.path for f in factors}
    if base.sweep is not None:
        factors = [f for f in factors_from_spec(base.sweep) if f.path not in given] + factors
    if not factors:
        raise ScenarioError(str(path), ["nothing to vary: give --vary PATH=VALUES or a sweep: section"])
    names = select_topologies(base, topologies)
    version = simulator_version()
    points = []
    for i, values in enumerate(expand_grid(factors)):
        sc = scenario_for_point(data, values, str(path), base_dir=path.parent, allow_outside=allow_outside)
        sc = with_overrides(
            sc, duration=duration, seed=seed, replications=replications, confidence=confidence
        )
        check_limits(sc, force=force, source=f"{path}: {VARY_SOURCE} {describe_point(values)}")
        resolved = sc.model_dump(mode="json", by_alias=True)
        tasks = {
            content_key(
                {
                    "scenario": t.scenario.model_dump(mode="json", by_alias=True),
                    "topology": t.topology,
                    "replication": t.replication,
                    "faulted": t.faulted,
                    "simulator": version,
                }
            ): t
            for t in tasks_for(sc, names)
        }
        key = content_key({"scenario": resolved, "topologies": names, "simulator": version})
        points.append(SweepPoint(i, dict(values), sc, key, tasks))
    return SweepPlan(base, factors, names, points)


def default_sweep_folder(base: Scenario, factors: Sequence[Factor], root: str | Path = "results") -> Path:
    """``results/<scenario>/sweep-<factors>``, both reduced to one safe path component."""
    label = safe_component("+".join(f.path for f in factors), "factors")
    return Path(root) / safe_component(base.name) / f"sweep-{label}"[:120]


SWEEP_FILES = ["tasks/*", "points/*", "plots/*", "*.csv", "sweep.json"]
"""What a sweep folder holds (the marker's patterns, see :mod:`sim.api.folders`)."""


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
    force: bool = False,
    allow_outside: bool = False,
) -> SweepResult:
    """Run a sweep, skipping points and simulations already finished in ``out``; return its tables.

    ``executor`` is ``serial``, ``processes`` (default: all cores) or an Executor; ``dask`` (a
    scheduler address or ``local``) selects the Dask executor. ``progress(done, total)`` is
    called after every finished simulation, counting those found already done.
    """
    swept = plan(path, vary, topologies, seed, duration, replications, confidence, force, allow_outside)
    folder = Path(out) if out is not None else default_sweep_folder(swept.base, swept.factors)
    check_output(folder, "sweep")
    check_executor(executor, workers)
    store = _Store(folder)
    write_marker(folder, "sweep", SWEEP_FILES)
    total = len(swept.tasks)
    todo_points = [p for p in swept.points if not store.point_done(p)]
    jobs = [(task, store.records(key)) for p in todo_points for key, task in p.tasks.items()]
    pending = [job for job in jobs if load_records(job[1]) is None]
    # Files of an interrupted earlier attempt that cannot be read back are simply done again.
    unreadable = sum(store.point_file(p).exists() for p in todo_points)
    unreadable += sum(job[1].exists() for job in pending)
    done = total - len(pending)
    if progress is not None:
        progress(done, total)
    started = time.perf_counter()
    owner = {store.records(key): p for p in todo_points for key in p.tasks}
    waiting = {p.key: {store.records(k) for k in p.tasks} - {job[1] for job in pending} for p in todo_points}
    for p in todo_points:
        if len(waiting[p.key]) == len(p.tasks):
            store.finish(p)
    if pending:
        owned = not isinstance(executor, Executor)
        pool = executor if isinstance(executor, Executor) else make_executor(executor, workers, dask)
        try:
            for (task, records), _, error in pool.map(simulate_into, pending):
                point = owner[records]
                if error is not None:
                    store.record_error(records, point, task, error)
                else:
                    store.clear_error(records)
                    waiting[point.key].add(records)
                    if len(waiting[point.key]) == len(point.tasks):
                        store.finish(point)
                done += 1
                if progress is not None:
                    progress(done, total)
        finally:
            if owned:
                pool.close()
    result = collect(folder, swept)
    result.meta = {
        "scenario": swept.base.name,
        "source": str(path),
        "factors": {f.path: list(f.values) for f in swept.factors},
        "topologies": swept.topologies,
        "replications": swept.points[0].scenario.replications,
        "points": len(swept.points),
        "tasks": total,
        "ran": len(pending),
        "skipped": total - len(pending),
        "failed": len(result.errors),
        "unreadable": unreadable,
        "wall_seconds": time.perf_counter() - started,
        "simulator": simulator_version(),
    }
    _write_tables(result, plots)
    return result


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class _Store:
    """The sweep folder's ``points/`` (evaluated points) and ``tasks/`` (raw records, errors)."""

    def __init__(self, folder: Path) -> None:
        self.points = folder / "points"
        self.tasks = folder / "tasks"
        self.points.mkdir(parents=True, exist_ok=True)
        self.tasks.mkdir(parents=True, exist_ok=True)

    def records(self, key: str) -> Path:
        return self.tasks / f"{key}.npz"

    def point_file(self, point: SweepPoint) -> Path:
        return self.points / f"{point.key}.json"

    def point_done(self, point: SweepPoint) -> bool:
        return read_point(self.point_file(point)) is not None

    def finish(self, point: SweepPoint) -> None:
        """Evaluate a point whose simulations are all on disk, write its rows, drop its records."""
        paths = [self.records(k) for k in point.tasks]
        runs = [load_records(p) for p in paths]
        if any(r is None for r in runs):  # pragma: no cover - written moments ago by our own workers
            raise RuntimeError(f"records of sweep point {point.label} cannot be read back")
        try:
            evaluation = evaluate(point.scenario, [r for r in runs if r is not None])
        except Exception as exc:  # recorded like a crashed simulation; the sweep goes on
            self._write_error(self.points / f"{point.key}.error.json", point, None, exc)
            return
        (self.points / f"{point.key}.error.json").unlink(missing_ok=True)
        resolved = evaluation.scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
        with open(self.points / f"{point.key}.yaml", "w", encoding="utf-8") as fh:
            yaml.safe_dump(resolved, fh, sort_keys=False)
        _atomic_write(
            self.point_file(point), json.dumps(_point_record(point, evaluation), default=_json_default)
        )
        for p in paths:
            p.unlink(missing_ok=True)

    def record_error(self, records: Path, point: SweepPoint, task: Task, error: BaseException) -> None:
        self._write_error(records.with_suffix(".error.json"), point, task, error)

    def clear_error(self, records: Path) -> None:
        records.with_suffix(".error.json").unlink(missing_ok=True)

    def errors(self, point: SweepPoint) -> list[Path]:
        """The error files of a point: its crashed simulations, or its failed evaluation."""
        files = [self.records(key).with_suffix(".error.json") for key in point.tasks]
        files.append(self.points / f"{point.key}.error.json")
        return [f for f in files if f.exists()]

    @staticmethod
    def _write_error(path: Path, point: SweepPoint, task: Task | None, error: BaseException) -> None:
        text = "".join(traceback.format_exception(error)).strip()
        ident: dict[str, Any] = {"point": point.index, "label": point.label}
        if task is not None:
            ident |= {
                "topology": task.topology,
                "replication": task.replication,
                "baseline": not task.faulted,
            }
        _atomic_write(path, json.dumps({**ident, "error": text}))


def _point_record(point: SweepPoint, evaluation: Evaluation) -> dict[str, Any]:
    tables = {name: getattr(evaluation, name).to_dict("records") for name in POINT_TABLES}
    return {
        "point": point.index,
        "label": point.label,
        "values": point.values,
        "key": point.key,
        "warmup": evaluation.scenario.warmup,
        "warmup_chosen_by": evaluation.warmup_chosen_by,
        **tables,
    }


def read_point(path: Path) -> dict[str, Any] | None:
    """An evaluated point's record, or None when it is missing or unreadable (then it runs again)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or any(name not in data for name in POINT_TABLES):
        return None
    return data


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if value is pd.NA:
        return None
    return str(value)


def collect(folder: Path, swept: SweepPlan) -> SweepResult:
    """Read the evaluated points (and the errors) of a sweep back into its tables."""
    store = _Store(folder)
    names = [f.path for f in swept.factors]
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in POINT_TABLES}
    errors = []
    for point in swept.points:
        ident = {"point": point.index, "label": point.label, **point.values}
        data = read_point(store.point_file(point))
        if data is not None:
            for name in POINT_TABLES:
                tables[name].extend({**ident, **row} for row in data[name])
            continue
        for failed in store.errors(point):
            try:
                error = json.loads(failed.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                error = {"error": f"unreadable error file {failed.name}"}
            errors.append({**ident, **{k: error.get(k) for k in ("topology", "replication", "error")}})
    tidy = pd.DataFrame(tables["summary"])
    confidence = swept.points[0].scenario.confidence if swept.points else 0.95
    p99 = swept.points[0].scenario.objectives.latency_p99 if swept.points else None
    return SweepResult(
        folder=folder,
        factors=list(swept.factors),
        points=[dict(p.values) for p in swept.points],
        tidy=tidy,
        components=pd.DataFrame(tables["components"]),
        summary=sweep_summary(tidy, names, confidence),
        differences=sweep_differences(tidy, names, confidence),
        errors=pd.DataFrame(errors, columns=["point", "label", *names, "topology", "replication", "error"]),
        saturation=saturation(
            tidy,
            names,
            p99_objective=p99,
        ),
        blast_radius=pd.DataFrame(tables["blast_radius"]),
        verdicts=pd.DataFrame(tables["verdicts"]),
        workflows=pd.DataFrame(tables["workflows"]),
    )


TABLE_FILES = {
    "sweep.csv": "tidy",
    "sweep_components.csv": "components",
    "sweep_summary.csv": "summary",
    "sweep_differences.csv": "differences",
    "sweep_blast_radius.csv": "blast_radius",
    "sweep_verdicts.csv": "verdicts",
    "sweep_workflows.csv": "workflows",
    "errors.csv": "errors",
    "saturation.csv": "saturation",
}


def _write_tables(result: SweepResult, plots: bool) -> None:
    folder = result.folder
    for name, attribute in TABLE_FILES.items():
        _atomic_write(folder / name, getattr(result, attribute).to_csv(index=False))
    _atomic_write(folder / "sweep.json", json.dumps(result.meta, indent=2, default=_json_default) + "\n")
    if plots and not result.summary.empty:
        from sim.analysis.plots.sweeps import save_sweep_plots

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

    frames = {attribute: table(name) for name, attribute in TABLE_FILES.items()}
    tidy = frames["tidy"]
    names = [f.path for f in factors]
    points: Iterable[dict[str, Any]] = (
        tidy[["point", *names]].drop_duplicates().sort_values("point")[names].to_dict("records")
        if not tidy.empty
        else []
    )
    return SweepResult(folder=folder, factors=factors, points=list(points), meta=meta, **frames)
