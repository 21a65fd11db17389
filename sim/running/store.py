"""Raw records on disk: a finished simulation kept until everything that needs it has run.

A sweep evaluates a point once all its simulations have finished (the warm-up and the verdicts
look at every replication, the blast radius at every baseline twin), while executors finish
simulations one by one, in any order, possibly in other processes. Each finished simulation is
therefore written at once, by the worker that ran it, to ``<folder>/<key>.npz``: numpy arrays and a
JSON header, written to a temporary name and renamed into place, loaded without pickle. A file
that cannot be read back (a run killed while writing, a file from another version) counts as not
done, and the simulation runs again.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npformat

from sim.model.records import (
    EFFECT_COLUMNS,
    GROUP_COLUMNS,
    VISIT_COLUMNS,
    ComponentRecord,
    EffectRecord,
    GroupRecord,
    OutcomeRecord,
    Spill,
    TopologyRun,
    WorkflowRecord,
)
from sim.model.tracing import Span
from sim.running.simulate import Task, simulate

FORMAT = 8
"""Version of the file layout; files of another version are not read."""

_OUTCOMES = list(OutcomeRecord.__dataclass_fields__)
_COMPONENT_ARRAYS = [
    "arrived",
    "started",
    "ended",
    "rejected",
    "errors",
    "aborted",
    "left",
    "held",
    "held_at",
]
_GROUP_ARRAYS = ["entered", "left", "began", "lane", "how"]
_GROUP_FIELDS = [
    "service",
    "kind",
    "partitions",
    "consumers",
    "concurrency",
    "max_in_flight",
    "topics",
    "shared",
]
_EFFECT_ARRAYS = ["time", "gid", "step", "kind"]


def _header(run: TopologyRun) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "topology": run.topology,
        "kind": run.kind,
        "seed": run.seed,
        "replication": run.replication,
        "workflows": [asdict(w) for w in run.workflows],
        "components": [
            {"name": c.name, "kind": c.kind, "servers": c.servers, "group": c.group} for c in run.components
        ],
        "end_time": run.end_time,
        "wall_seconds": run.wall_seconds,
        "counters": run.counters,
        "faults": run.faults,
        "spans": [asdict(s) for s in run.spans],
        "faulted": run.faulted,
        "tallies": list(run.tallies),
        "groups": [{name: getattr(g, name) for name in _GROUP_FIELDS} for g in run.groups],
    }


def save_records(run: TopologyRun, path: Path) -> None:
    """Write ``run`` to ``path`` atomically, records written out of memory during the run a
    chunk at a time (never all in memory at once), with their chunks' sizes."""
    arrays: dict[str, np.ndarray] = {f"outcome_{name}": getattr(run.outcomes, name) for name in _OUTCOMES}
    columns: dict[str, tuple[np.dtype, int, Callable[[], Iterator[np.ndarray]]]] = {}
    for i, comp in enumerate(run.components):
        for name in _COMPONENT_ARRAYS:
            arrays[f"component{i}_{name}"] = getattr(comp, name)
        if comp.spilled is not None:  # its chunks, read back the same (so are its figures)
            arrays[f"component{i}_chunks"] = np.array(comp.spilled.counts, dtype=np.int64)
            for j, name in enumerate(_VISITS):
                columns[f"component{i}_{name}"] = _column(
                    comp.chunks, 1 + j, comp.visits, comp.spilled, j, getattr(comp, name)
                )
    for i, values in enumerate(run.tallies.values()):
        arrays[f"tally{i}"] = values
    for i, g in enumerate(run.groups):
        for name in _GROUP_ARRAYS:
            arrays[f"group{i}_{name}"] = getattr(g, name)
        if g.spilled is not None:
            arrays[f"group{i}_chunks"] = np.array(g.spilled.counts, dtype=np.int64)
            for j, name in enumerate(_GROUP_ARRAYS):
                columns[f"group{i}_{name}"] = _column(
                    g.chunks, 1 + j, g.messages, g.spilled, j, getattr(g, name)
                )
    if run.effects is not None:
        effects = run.effects
        for name in _EFFECT_ARRAYS:
            arrays[f"effects_{name}"] = getattr(effects, name)
        if effects.spilled is not None:
            arrays["effects_chunks"] = np.array(effects.spilled.counts, dtype=np.int64)
            for j, name in enumerate(_EFFECT_ARRAYS):
                columns[f"effects_{name}"] = _column(
                    effects.chunks, j, effects.entries, effects.spilled, j, getattr(effects, name)
                )
    header = json.dumps(_header(run)).encode("utf-8")
    arrays["header"] = np.frombuffer(header, dtype=np.uint8)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # The layout numpy.savez writes (an uncompressed zip of .npy files), a column at a time.
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as archive:
            for key, values in arrays.items():
                with archive.open(f"{key}.npy", "w", force_zip64=True) as f:
                    if key in columns:
                        dtype, size, pieces = columns[key]
                        header_of = {"descr": npformat.dtype_to_descr(dtype), "fortran_order": False}
                        npformat.write_array_header_2_0(f, {**header_of, "shape": (size,)})
                        for piece in pieces():
                            f.write(np.ascontiguousarray(piece, dtype=dtype).tobytes())
                    else:
                        npformat.write_array(f, np.asanyarray(values), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _column(
    chunks: Callable[[], Iterator[tuple[Any, ...]]],
    item: int,
    size: int,
    spill: Spill,
    column: int,
    rest: np.ndarray,
) -> tuple[np.dtype, int, Callable[[], Iterator[np.ndarray]]]:
    """Item ``item`` of a record's chunks as one column: its type (that of the spill's
    ``column`` and of the ``rest`` in memory together, as a concatenation has it), its length
    and a function that reads it a chunk at a time."""
    dtype = np.result_type(spill.dtypes[column], rest.dtype)
    return dtype, size, lambda: (chunk[item] for chunk in chunks())


def load_records(path: Path) -> TopologyRun | None:
    """The records written to ``path``, or None when the file is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode("utf-8"))
            if header.get("format") != FORMAT:
                return None
            outcomes = OutcomeRecord(**{name: data[f"outcome_{name}"] for name in _OUTCOMES})
            components = [
                ComponentRecord(
                    name=c["name"],
                    kind=c["kind"],
                    servers=c["servers"],
                    group=c["group"],
                    **_chunked(data, f"component{i}", _COMPONENT_ARRAYS, _VISITS, VISIT_COLUMNS),
                )
                for i, c in enumerate(header["components"])
            ]
            tallies = {name: data[f"tally{i}"] for i, name in enumerate(header["tallies"])}
            groups = [
                GroupRecord(**g, **_chunked(data, f"group{i}", _GROUP_ARRAYS, _GROUP_ARRAYS, GROUP_COLUMNS))
                for i, g in enumerate(header["groups"])
            ]
            effects = (
                EffectRecord(**_chunked(data, "effects", _EFFECT_ARRAYS, _EFFECT_ARRAYS, EFFECT_COLUMNS))
                if "effects_kind" in data
                else None
            )
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        return None
    return TopologyRun(
        topology=header["topology"],
        kind=header["kind"],
        seed=header["seed"],
        replication=header["replication"],
        workflows=[WorkflowRecord(**w) for w in header["workflows"]],
        outcomes=outcomes,
        components=components,
        end_time=header["end_time"],
        wall_seconds=header["wall_seconds"],
        counters=header["counters"],
        faults=header["faults"],
        spans=[Span(**s) for s in header["spans"]],
        faulted=header["faulted"],
        tallies=tallies,
        groups=groups,
        effects=effects,
    )


def _chunked(
    data: Any, prefix: str, names: list[str], written: list[str], dtypes: tuple[type, ...]
) -> dict[str, Any]:
    """A record's arrays; those that were written out of memory in chunks (``written``) written
    out again in the same chunks, the rest of their rows kept in memory."""
    arrays = {name: data[f"{prefix}_{name}"] for name in names}
    if f"{prefix}_chunks" not in data:
        return arrays
    counts = data[f"{prefix}_chunks"].tolist()
    spill, rest = Spill.of([arrays[name] for name in written], counts, dtypes)
    return {**arrays, **dict(zip(written, rest, strict=True)), "spilled": spill}


_VISITS = ["arrived", "started", "ended"]


def simulate_into(job: tuple[Task, Path]) -> Path:
    """Run a task and write its records to the path given (what sweep workers run, so that large
    records never travel back to the parent process); return the path."""
    task, path = job
    save_records(simulate(task), path)
    return path
