"""Which partition an event goes to: a hash of its key, as Kafka's default partitioner does.

By default the key is the workflow id, so a workflow's events all land on one partition (in
every topic, since every topic has the same partition count) and the partitions see random
thinnings of the load. A ``key`` law instead draws one key per workflow instance from a Zipf law
over ``keys`` keys (a tenant, a product): key i has weight 1/i^skew, so the first keys are hot,
and so is the partition each hashes to, whatever the partition count.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from sim.scenario.broker import Key


def zipf_weights(keys: int, skew: float) -> np.ndarray:
    """Normalised weights of keys 1..keys under a Zipf law of exponent ``skew``."""
    w = np.arange(1, keys + 1, dtype=float) ** -skew
    return w / w.sum()


def key_partitions(keys: int, partitions: int) -> np.ndarray:
    """The partition of every key (key i, counted from 0): :func:`sim.model.hashing.bucket_of`
    of ("key", i), computed for all keys at once."""
    x = np.uint64(zlib.crc32(b"key") << 32) ^ np.arange(keys, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x % np.uint64(partitions)).astype(np.int64)


def partition_shares(law: Key, partitions: int) -> np.ndarray:
    """Each partition's share of the events under ``law``: the weights of the keys it holds."""
    shares = np.zeros(partitions)
    np.add.at(shares, key_partitions(law.keys, partitions), zipf_weights(law.keys, law.skew))
    return shares


class KeyLaw:
    """Draws each workflow instance's partition from a Zipf law of keys, one uniform per draw."""

    def __init__(self, law: Key, partitions: int, uniforms: Callable[[], float]) -> None:
        self.cdf = np.cumsum(zipf_weights(law.keys, law.skew))
        self.cdf[-1] = 1.0
        self.partition_of_key = key_partitions(law.keys, partitions).tolist()
        self.uniforms = uniforms

    def __call__(self) -> int:
        key = int(np.searchsorted(self.cdf, self.uniforms(), side="right"))
        return self.partition_of_key[min(key, len(self.partition_of_key) - 1)]
