"""Stable hashes that place things: a workflow instance on an engine shard, a key on a partition.

Real systems hash ids (Temporal and Zeebe hash workflow ids to shards, Kafka's default
partitioner hashes record keys with murmur2); what matters to the model is that the hash is
well mixed, so that shards and partitions see independent random thinnings of the arrivals, and
that it is the same on every run. SplitMix64's finaliser gives both.
"""

from __future__ import annotations

import zlib

_MASK = (1 << 64) - 1


def mix64(x: int) -> int:
    """SplitMix64's finaliser: a bijection of 64-bit integers that mixes every input bit."""
    x &= _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def bucket_of(name: str, index: int, buckets: int) -> int:
    """The bucket (shard, partition) of item ``index`` of ``name`` among ``buckets``."""
    return mix64((zlib.crc32(name.encode()) << 32) ^ index) % buckets
