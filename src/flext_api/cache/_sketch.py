"""A count-min sketch of 4-bit counters: TinyLFU's memory of how often keys were seen.

W-TinyLFU (Einziger, Friedman, Manes, *TinyLFU: A Highly Efficient Cache Admission
Policy*, ACM ToS 2017) admits a new key into the main cache only when it has been seen
more often than the key it would push out. It needs frequencies of keys that are *not*
in the cache, in a few bits per slot: this sketch. Counters saturate at 15 and are all
halved after ``10 x capacity`` recorded accesses, so old popularity fades.

Written here rather than taken from theine or cachetools because neither exposes its
sketch, and ours must cooperate with the cache's lock-free hit path (hits are counted
on the entry and flushed here in batches, see :mod:`flext_api.cache._policy`).
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["FrequencySketch"]

_MASK64 = (1 << 64) - 1
# Odd 64-bit multipliers (from splitmix64 / xxhash constants): one independent index per row.
_SEEDS = (
    0x9E3779B97F4A7C15,
    0xBF58476D1CE4E5B9,
    0x94D049BB133111EB,
    0xC2B2AE3D27D4EB4F,
)
_MAX_COUNT = 15
# bytes.translate with this table halves every counter of a row in C, not in a Python loop.
_HALVE = bytes(i >> 1 for i in range(256))


class FrequencySketch:
    """Approximate access counts (0..15) for any number of keys, in ``4 x width`` bytes.

    ``width`` is the next power of two at or above ``capacity`` (at least 16). The
    estimate of a key is the minimum over its four counters, so it can overestimate
    (collisions) but never underestimate, until the periodic halving.
    """

    __slots__ = ("_bits", "_rows", "_sample_size", "_samples")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        width = 16
        while width < capacity:
            width <<= 1
        self._bits = width.bit_length() - 1
        self._rows = [bytearray(width) for _ in _SEEDS]
        self._sample_size = 10 * capacity
        self._samples = 0

    @property
    def width(self) -> int:
        """Counters per row."""
        return len(self._rows[0])

    @property
    def samples(self) -> int:
        """Accesses recorded since the last halving."""
        return self._samples

    def _indexes(self, key: Hashable) -> tuple[int, int, int, int]:
        # Python's hash of an int is the int itself: multiply-shift spreads it over the row.
        h = hash(key) & _MASK64
        shift = 64 - self._bits
        s0, s1, s2, s3 = _SEEDS
        return (
            ((h * s0) & _MASK64) >> shift,
            ((h * s1) & _MASK64) >> shift,
            ((h * s2) & _MASK64) >> shift,
            ((h * s3) & _MASK64) >> shift,
        )

    def frequency(self, key: Hashable) -> int:
        """The estimated access count of ``key`` (0..15)."""
        i0, i1, i2, i3 = self._indexes(key)
        r0, r1, r2, r3 = self._rows
        return min(r0[i0], r1[i1], r2[i2], r3[i3])

    def increment(self, key: Hashable, count: int = 1) -> None:
        """Record ``count`` accesses of ``key``; halves every counter when the sample is full."""
        if count <= 0:
            return
        for row, index in zip(self._rows, self._indexes(key), strict=True):
            row[index] = min(_MAX_COUNT, row[index] + count)
        self._samples += count
        if self._samples >= self._sample_size:
            self._age()

    def _age(self) -> None:
        self._rows = [bytearray(row.translate(_HALVE)) for row in self._rows]
        self._samples //= 2

    def clear(self) -> None:
        """Forget every count."""
        self._rows = [bytearray(len(row)) for row in self._rows]
        self._samples = 0

    def __repr__(self) -> str:
        return f"<FrequencySketch width={self.width} samples={self._samples}/{self._sample_size}>"
