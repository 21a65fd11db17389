"""Named random streams: the basis of reproducibility and of common random numbers.

Each stochastic input draws from its own stream, derived from the root seed and a stable *name*
(``SeedSequence(root, spawn_key=(crc32(name),))``). Adding a service or a topology therefore never
shifts the numbers another input sees, and two runs of the same scenario and seed are identical.

Draws come in numpy batches converted to Python floats, so that the simulation clock only ever
sees plain floats and the per-draw cost stays at one iterator step.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterator

import numpy as np

from sim.scenario.distributions import Constant, Spec

BATCH = 4096


def generator(root_seed: int, name: str, replication: int = 0) -> np.random.Generator:
    """The random generator of the stream called ``name`` under ``root_seed``.

    Replication ``r`` > 0 of an experiment gets independent streams with the same names; every
    topology of replication ``r`` shares them, which is what makes paired comparisons valid.
    """
    key = (
        (zlib.crc32(name.encode("utf-8")),)
        if replication == 0
        else (zlib.crc32(name.encode("utf-8")), replication)
    )
    seq = np.random.SeedSequence(root_seed, spawn_key=key)
    return np.random.Generator(np.random.PCG64(seq))


def _batches(dist: Spec, rng: np.random.Generator, batch: int) -> Iterator[list[float]]:
    while True:
        yield dist.sample(rng, batch).tolist()


def draws(
    dist: Spec, root_seed: int, name: str, replication: int = 0, batch: int = BATCH
) -> Callable[[], float]:
    """A function returning the next draw of ``dist`` from stream ``name``, drawn ``batch`` at a
    time (the many small streams of closed-loop clients take a small batch, to stay light).

    A constant needs no stream: its function returns the value without touching a generator.
    """
    if isinstance(dist, Constant):
        return itertools.repeat(float(dist.value)).__next__
    rng = generator(root_seed, name, replication)
    return itertools.chain.from_iterable(_batches(dist, rng, batch)).__next__


def uniforms(root_seed: int, name: str, replication: int = 0) -> Callable[[], float]:
    """A function returning the next U(0, 1) draw of stream ``name``."""
    rng = generator(root_seed, name, replication)

    def batches() -> Iterator[list[float]]:
        while True:
            yield rng.random(BATCH).tolist()

    return itertools.chain.from_iterable(batches()).__next__
