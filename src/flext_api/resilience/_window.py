"""A sliding time window of counters, in fixed time buckets with running totals.

The retry budget counts requests and retries over the last ``window`` seconds; the
breaker counts calls, failures and slow calls. Both need "how many in the last N
seconds" on every call, so the window keeps running totals and only touches the
buckets that expired since the last call: O(1) amortised per operation, memory fixed at
``buckets`` x ``fields`` integers, whatever the traffic. The price is granularity: an
event leaves the window between ``window - window/buckets`` and ``window`` seconds
after it happened (Polly and resilience4j make the same trade).
"""

from __future__ import annotations

__all__ = ["SlidingWindow"]


class SlidingWindow:
    """Counters over the last ``window`` seconds, split into ``buckets`` time slices.

    >>> w = SlidingWindow(10.0, fields=2)
    >>> w.add(0.0, 0); w.add(0.5, 1); w.totals(1.0)
    [1, 1]
    >>> w.totals(20.0)
    [0, 0]
    """

    __slots__ = (
        "_bucket",
        "_buckets",
        "_fields",
        "_head",
        "_safe_until",
        "_slots",
        "_totals",
        "_width",
        "window",
    )

    def __init__(self, window: float, *, buckets: int = 10, fields: int = 1) -> None:
        if not window > 0:  # NaN too: it passes ``<= 0`` and breaks the first add()
            raise ValueError(f"window must be > 0 seconds, got {window!r}")
        if buckets < 1 or fields < 1:
            raise ValueError(f"buckets and fields must be >= 1, got {buckets!r}, {fields!r}")
        self.window = window
        self._buckets = buckets
        self._fields = fields
        self._width = window / buckets
        self._slots = [[0] * fields for _ in range(buckets)]
        self._totals = [0] * fields
        self._head: int | None = None  # absolute index of the newest bucket
        # The newest bucket, and a time before which a reading surely falls in it (or
        # before it: a clock gone back is counted there too). Readings from there to the
        # bucket's end go the exact way, so float rounding never moves an event.
        self._bucket = self._slots[0]
        self._safe_until = float("-inf")

    def _advance(self, now: float) -> list[int]:
        """Expire buckets older than the window and return the bucket for ``now``."""
        index = int(now // self._width)
        head = self._head
        if head is None:
            self._head = index
        elif index > head:
            steps = min(index - head, self._buckets)
            totals = self._totals
            for offset in range(1, steps + 1):
                bucket = self._slots[(head + offset) % self._buckets]
                for field in range(self._fields):
                    totals[field] -= bucket[field]
                    bucket[field] = 0
            self._head = index
        else:
            # A clock that went back (or two reads in one bucket) stays in the newest bucket.
            index = head
        bucket = self._bucket = self._slots[index % self._buckets]
        end = (index + 1) * self._width
        self._safe_until = end - max(self._width, abs(end)) * 1e-9
        return bucket

    def add(self, now: float, field: int = 0, amount: int = 1) -> None:
        """Count ``amount`` events of ``field`` at time ``now``."""
        if now < self._safe_until:  # the usual case: still in the newest bucket
            self._bucket[field] += amount
        else:
            self._advance(now)[field] += amount
        self._totals[field] += amount

    def totals(self, now: float) -> list[int]:
        """Every field's count over the window ending at ``now`` (a copy)."""
        self._advance(now)
        return list(self._totals)

    def total(self, now: float, field: int = 0) -> int:
        """One field's count over the window ending at ``now``."""
        self._advance(now)
        return self._totals[field]

    def snapshot(self) -> list[int]:
        """The totals as of the last update, without expiring anything (a copy)."""
        return list(self._totals)

    def clear(self) -> None:
        """Forget every event."""
        for bucket in self._slots:
            for field in range(self._fields):
                bucket[field] = 0
        self._totals = [0] * self._fields

    def __repr__(self) -> str:
        return f"<SlidingWindow {self.window:g}s totals={self._totals}>"
