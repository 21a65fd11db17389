"""Run folders: everything one run produced, written atomically and readable back.

A run folder holds the resolved scenario (``scenario.yaml``, which re-runs the same experiment),
``summary.csv``, ``summary.json``, ``workflows.csv`` (the summary's figures per workflow),
``components.csv``, ``requests.parquet``, ``timeseries.csv``, ``meta.json`` and the plots
(``plots/*.png``). With faults it also holds the baseline twin run
(``baseline_*``), ``blast_radius.csv`` and ``faults.csv``. It is written in a temporary folder
beside its destination and swapped into place, so an interrupted run leaves no half-written
folder; where it may be written, and what may be replaced, follows :mod:`sim.api.folders`.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd
import yaml

from sim.analysis.evaluation import Evaluation
from sim.analysis.heap import older_objects_frozen
from sim.analysis.traces import chrome_trace, observability, otlp_trace
from sim.api.folders import check_output, files_of, install, safe_component, temporary_folder, write_marker
from sim.api.results import RunResult, summary_json
from sim.scenario.loader import scenario_from_dict
from sim.scenario.models import Scenario


def default_folder(result: RunResult, root: str | Path = "results") -> Path:
    """``results/<scenario>/<timestamp>-seed<seed>``, made unique with a suffix if needed."""
    name = safe_component(result.scenario.name)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / name / f"{stamp}-seed{result.seed}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def resolved_scenario(result: RunResult) -> dict:
    return result.scenario.model_dump(mode="json", by_alias=True, exclude_none=True)


def write_run(
    result: RunResult,
    folder: str | Path,
    plots: bool = True,
    formats: tuple[str, ...] = ("png",),
    overwrite: bool = False,
) -> Path:
    """Write ``result`` to ``folder``, with plots in every format of ``formats`` (png, svg).

    ``folder`` must not exist, or be empty, or (with ``overwrite``) hold an earlier run folder
    with nothing but the simulator's files in it; otherwise :class:`ScenarioError` is raised
    (source ``--out``) and nothing is written."""
    folder = Path(folder)
    check_output(folder, "run", overwrite=overwrite)
    tmp = temporary_folder(folder)
    try:
        with open(tmp / "scenario.yaml", "w", encoding="utf-8") as fh:
            yaml.safe_dump(resolved_scenario(result), fh, sort_keys=False)
        (tmp / "summary.json").write_text(summary_json(result) + "\n", encoding="utf-8")
        _write_frames(result, tmp, "")
        (tmp / "meta.json").write_text(json.dumps(result.meta, indent=2) + "\n", encoding="utf-8")
        if not result.spans.empty:
            _write_traces(result, tmp)
        if not result.shards.empty:
            result.shards.to_csv(tmp / "shards.csv", index=False)
        if not result.partitions.empty:
            result.partitions.to_csv(tmp / "partitions.csv", index=False)
        if not result.lag.empty:
            result.lag.to_csv(tmp / "lag.csv", index=False)
        if not result.replicas.empty:
            result.replicas.to_csv(tmp / "replicas.csv", index=False)
        if result.baseline is not None:
            _write_frames(result.baseline, tmp, "baseline_")
            result.blast_radius.to_csv(tmp / "blast_radius.csv", index=False)
            result.faults.to_csv(tmp / "faults.csv", index=False)
        if plots:
            with older_objects_frozen():
                from sim.analysis.plots import save_run_plots  # (matplotlib: only when plots are asked for)

                save_run_plots(result, tmp / "plots", formats=formats)
        write_marker(tmp, "run", files_of(tmp))
        install(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _write_frames(result: Evaluation, folder: Path, prefix: str) -> None:
    result.summary.to_csv(folder / f"{prefix}summary.csv", index=False)
    result.workflows.to_csv(folder / f"{prefix}workflows.csv", index=False)
    result.components.to_csv(folder / f"{prefix}components.csv", index=False)
    result.timeseries.to_csv(folder / f"{prefix}timeseries.csv", index=False)
    write_parquet(result.requests, folder / f"{prefix}requests.parquet")


ROW_GROUP = 1 << 16
"""Rows of a Parquet file converted and written at a time."""


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` as Parquet, :data:`ROW_GROUP` rows at a time: converting a
    whole frame of millions of requests to Arrow first would double its memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(frame) <= ROW_GROUP:
        frame.to_parquet(path, index=False)
        return
    first = pa.Table.from_pandas(frame.iloc[:ROW_GROUP], preserve_index=False)
    with pq.ParquetWriter(path, first.schema) as writer:
        writer.write_table(first)
        del first
        for start in range(ROW_GROUP, len(frame), ROW_GROUP):
            writer.write_table(
                pa.Table.from_pandas(frame.iloc[start : start + ROW_GROUP], preserve_index=False)
            )


def _write_traces(result: Evaluation, folder: Path) -> None:
    result.spans.to_parquet(folder / "spans.parquet", index=False)
    (folder / "traces").mkdir()
    (folder / "traces" / "chrome.json").write_text(json.dumps(chrome_trace(result.spans)), encoding="utf-8")
    (folder / "traces" / "otlp.json").write_text(json.dumps(otlp_trace(result.spans)), encoding="utf-8")
    observability(result.spans).to_csv(folder / "observability.csv", index=False)


def _read_frames(folder: Path, prefix: str, scenario: Scenario, meta: dict) -> RunResult:
    components = pd.read_csv(folder / f"{prefix}components.csv")
    components["servers"] = components["servers"].astype("Int64")
    workflows = folder / f"{prefix}workflows.csv"  # absent from run folders of earlier versions
    summary = pd.read_csv(folder / f"{prefix}summary.csv")
    if "bottleneck" in summary:  # (no bottleneck: None, as the run gives it, not NaN)
        neck = summary["bottleneck"]
        summary["bottleneck"] = neck.astype(object).where(neck.notna(), None)
    return RunResult(
        scenario=scenario,
        seed=int(meta["seed"]),
        summary=summary,
        components=components,
        requests=pd.read_parquet(folder / f"{prefix}requests.parquet"),
        timeseries=pd.read_csv(folder / f"{prefix}timeseries.csv"),
        workflows=pd.read_csv(workflows, dtype={"workflow": str}) if workflows.exists() else pd.DataFrame(),
        meta=meta,
    )


def read_run(folder: str | Path) -> RunResult:
    """Read a run folder written by :func:`write_run` back into a :class:`RunResult`."""
    folder = Path(folder)
    with open(folder / "scenario.yaml", encoding="utf-8") as fh:
        scenario = scenario_from_dict(yaml.safe_load(fh), source=str(folder / "scenario.yaml"))
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    result = _read_frames(folder, "", scenario, meta)
    if (folder / "blast_radius.csv").exists():
        result.baseline = _read_frames(folder, "baseline_", scenario.model_copy(update={"faults": []}), meta)
        text = ("affected_components", "fault_targets")
        radius = pd.read_csv(folder / "blast_radius.csv", dtype=dict.fromkeys(text, object))
        for column in text:
            if column in radius:
                radius[column] = radius[column].fillna("").astype(str)
        result.blast_radius = radius
        result.faults = pd.read_csv(folder / "faults.csv")
    if meta.get("verdicts"):
        result.verdicts = pd.DataFrame(meta["verdicts"])
    if (folder / "spans.parquet").exists():
        result.spans = pd.read_parquet(folder / "spans.parquet")
    if (folder / "shards.csv").exists():
        result.shards = pd.read_csv(folder / "shards.csv")
    if (folder / "partitions.csv").exists():
        result.partitions = pd.read_csv(folder / "partitions.csv")
    if (folder / "lag.csv").exists():
        result.lag = pd.read_csv(folder / "lag.csv")
    if (folder / "replicas.csv").exists():
        result.replicas = pd.read_csv(folder / "replicas.csv")
    result.warmup_chosen_by = str(meta.get("warmup_chosen_by", "scenario"))
    return result
