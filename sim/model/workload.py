"""Arrival times of workflow instances.

Arrivals are drawn up front, per workflow, from that workflow's own stream, for the whole arrival
period ``[0, duration)``. Every topology replays exactly the same instants: the first half of
common random numbers (the second is the work each instance brings, see :mod:`sim.model.world`).

A piecewise-constant schedule is exact for Poisson arrivals: the process is memoryless, so each
period is an independent homogeneous Poisson process on its own interval.
"""

from __future__ import annotations

import numpy as np

from sim.scenario.models import Load


def arrival_times(load: Load, duration: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival instants in ``[0, duration)`` for one workflow's load."""
    periods = load.periods()
    ends = [start for start, _ in periods[1:]] + [duration]
    chunks: list[np.ndarray] = []
    for (start, rate), end in zip(periods, ends):
        end = min(end, duration)
        if start >= end or rate == 0:
            continue
        if load.arrival == "deterministic":
            times = start + np.arange(int(np.ceil((end - start) * rate - 1e-9))) / rate
            chunks.append(times[times < end])
            continue
        t = start
        while True:
            n = int((end - t) * rate * 1.05) + 32
            times = t + np.cumsum(rng.exponential(1 / rate, n))
            inside = times[times < end]
            chunks.append(inside)
            if inside.size < times.size:
                break
            t = float(times[-1])
    if not chunks:
        return np.empty(0)
    out = np.concatenate(chunks)
    return out[out < duration]
