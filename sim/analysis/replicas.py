"""Replica counts over time: what the autoscalers of a run recorded.

An autoscaled component records two step functions (see :mod:`sim.model.autoscaler`): the
replicas running (``replicas/<component>``, paid for) and those serving (``ready/<component>``).
A component without an autoscaler has none; its replicas are the scenario's, all run long.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.model.records import TopologyRun


def steps(run: TopologyRun, series: str, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The instants and values of a recorded replica count (``series``: replicas or ready) of
    component ``name``, the last value at an instant kept; None if it was not autoscaled."""
    values = run.tallies.get(f"{series}/{name}")
    if values is None or not values.size:
        return None
    times, counts = values[:, 0], values[:, 1]
    last = np.append(times[1:] != times[:-1], True)  # several changes at one instant: the last holds
    return times[last], counts[last]


def level(run: TopologyRun, series: str, name: str, lo: float, hi: float) -> tuple[float, float] | None:
    """Time-average and largest value of a replica count over [lo, hi) (None if not autoscaled)."""
    found = steps(run, series, name)
    if found is None or hi <= lo:
        return None
    times, counts = found
    edges = np.clip(np.append(times, hi), lo, hi)
    widths = np.diff(edges)
    inside = widths > 0
    if not inside.any():
        value = float(counts[np.searchsorted(times, lo, side="right") - 1])
        return value, value
    return float(np.sum(counts * widths) / (hi - lo)), float(counts[inside].max())


def replica_hours(run: TopologyRun, name: str, fixed: int) -> float:
    """Replica-hours of component ``name`` over the whole run: its recorded replicas, or
    ``fixed`` replicas all along."""
    found = level(run, "replicas", name, 0.0, run.end_time)
    mean = fixed if found is None else found[0]
    return mean * run.end_time / 3600.0


def autoscaled_hours(run: TopologyRun) -> float:
    """Replica-hours of every autoscaled component of ``run`` together (NaN if none was)."""
    names = [key.split("/", 1)[1] for key in run.tallies if key.startswith("replicas/")]
    return sum(replica_hours(run, name, 0) for name in names) if names else math.nan


def replicas_table(runs: Sequence[TopologyRun]) -> pd.DataFrame:
    """One row per change of an autoscaled component's replicas: topology, replication,
    component, time, replicas (running) and ready (serving)."""
    rows = []
    for run in runs:
        names = sorted({key.split("/", 1)[1] for key in run.tallies if key.startswith("replicas/")})
        for name in names:
            found, ready = steps(run, "replicas", name), steps(run, "ready", name)
            assert found is not None and ready is not None
            times = np.union1d(found[0], ready[0])
            running = found[1][np.searchsorted(found[0], times, side="right") - 1]
            serving = ready[1][np.searchsorted(ready[0], times, side="right") - 1]
            for t, n, k in zip(times.tolist(), running.tolist(), serving.tolist(), strict=True):
                rows.append(
                    {
                        "topology": run.topology,
                        "replication": run.replication,
                        "component": name,
                        "time": t,
                        "replicas": int(n),
                        "ready": int(k),
                    }
                )
    columns = ["topology", "replication", "component", "time", "replicas", "ready"]
    return pd.DataFrame(rows, columns=columns)
