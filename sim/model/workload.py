"""Arrival times of workflow instances.

Arrivals are drawn up front, per workflow, from that workflow's own stream, for the whole arrival
period ``[0, duration)``. Every topology replays exactly the same instants: the first half of
common random numbers (the second is the work each instance brings, see :mod:`sim.model.world`).

A piecewise-constant schedule is exact for Poisson arrivals: the process is memoryless, so each
period is an independent homogeneous Poisson process on its own interval. A diurnal profile is a
non-homogeneous Poisson process, drawn by thinning (Lewis and Shedler: candidates at the peak
rate, each kept with probability rate(t) / peak); evenly spaced arrivals follow the rate's
integral (the n-th arrival where it reaches n − 1/2). A trace is replayed as given; counts per
second are spread uniformly within their second.
"""

from __future__ import annotations

import numpy as np

from sim.scenario.models import Load


def arrival_times(load: Load, duration: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival instants in ``[0, duration)`` for one workflow's load (none for
    closed-loop clients: they arrive while the run goes on, see :mod:`sim.model.clients`)."""
    if load.closed:
        return np.empty(0)
    if load.arrival == "trace":
        return _trace(load, duration, rng)
    if load.profile is not None:
        return _diurnal(load, duration, rng)
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
        chunks.append(_poisson(rate, start, end, rng))
    if not chunks:
        return np.empty(0)
    out = np.concatenate(chunks)
    return out[out < duration]


def _poisson(rate: float, start: float, end: float, rng: np.random.Generator) -> np.ndarray:
    """A homogeneous Poisson process of ``rate`` on ``[start, end)``."""
    chunks, t = [], start
    while True:
        n = int((end - t) * rate * 1.05) + 32
        times = t + np.cumsum(rng.exponential(1 / rate, n))
        inside = times[times < end]
        chunks.append(inside)
        if inside.size < times.size:
            return np.concatenate(chunks)
        t = float(times[-1])


def _diurnal(load: Load, duration: float, rng: np.random.Generator) -> np.ndarray:
    assert load.peak is not None
    if load.arrival == "deterministic":
        total = float(load.diurnal_integral(np.asarray(duration)))
        if total < 0.5:
            return np.empty(0)
        # The integral is increasing: invert it on a grid fine against the cycle and the gaps.
        steps = int(min(max(64 * duration / load.period, 4 * total, 1024), 10_000_000))
        grid = np.linspace(0.0, duration, steps + 1)
        targets = np.arange(int(total + 0.5)) + 0.5
        times = np.interp(targets, load.diurnal_integral(grid), grid)
        return times[times < duration]
    candidates = _poisson(load.peak, 0.0, duration, rng)
    keep = rng.random(candidates.size) * load.peak < load.diurnal_rate(candidates)
    return candidates[keep]


def _trace(load: Load, duration: float, rng: np.random.Generator) -> np.ndarray:
    if load.times is not None:
        times = np.sort(np.asarray(load.times, dtype=float))
        return times[times < duration]
    assert load.counts is not None
    counts = np.asarray(load.counts, dtype=float)
    whole = np.floor(counts).astype(np.int64)
    # A fractional count is an expectation: its fraction adds one arrival with that probability.
    whole += rng.random(counts.size) < counts - whole
    seconds = np.repeat(np.arange(counts.size, dtype=float), whole)
    times = np.sort(seconds + rng.random(seconds.size))
    return times[times < duration]
