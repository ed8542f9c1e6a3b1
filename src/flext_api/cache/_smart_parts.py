"""The small objects behind :class:`~flext_api.cache.AsyncSmartCache`: entries, flights, reports.

Kept apart from the cache itself so ``_smart.py`` reads as the algorithm only.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any, Final

from ._policy import PolicyNode

__all__ = ["MISSING", "Entry", "Flight", "Outcome", "WarmReport"]

#: Marks "no good value" in an entry and "no value" in an outcome.
MISSING: Final[Any] = object()


class Entry(PolicyNode):
    """One cached key: the last good value, a cached error, and their deadlines.

    All times are on the cache's monotonic clock. ``fresh_until`` is the one number the
    hit path compares with: it is ``expires_at`` (minus the XFetch margin when early
    refresh is on) while a good value is held, and ``-inf`` while an error is cached or
    there is no value, so the hit path needs a single comparison.
    """

    __slots__ = (
        "delta",
        "error",
        "error_until",
        "expires_at",
        "failures",
        "fresh_until",
        "tags",
        "value",
    )

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.value: Any = MISSING
        self.expires_at = -math.inf
        self.fresh_until = -math.inf
        self.error: Exception | None = None
        self.error_until = -math.inf
        self.failures = 0
        self.delta = 0.0  # how long the last computation took (XFetch's delta)
        self.tags: frozenset[str] = frozenset()

    @property
    def has_value(self) -> bool:
        """True when a good value is held (fresh or not)."""
        return self.value is not MISSING

    def __repr__(self) -> str:
        state = "error" if self.error is not None else ("value" if self.has_value else "empty")
        return f"<Entry {self.key!r} {state}>"


@dataclass(slots=True)
class Outcome:
    """What one computation produced: a value, or the exception it raised."""

    value: Any
    error: Exception | None
    retry_in: float = 0.0


@dataclass(slots=True, eq=False)
class Flight:
    """A computation in progress for one key, shared by every caller of that key.

    ``future`` gets the :class:`Outcome` as soon as the computation ends (before any
    write to a shared backend). ``valid`` turns False when the key is invalidated or the
    cache cleared meanwhile: the waiters still get the outcome, the cache does not keep it.
    """

    future: asyncio.Future[Outcome]
    tags: frozenset[str]
    background: bool = False
    valid: bool = True
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True, slots=True)
class WarmReport:
    """What :meth:`AsyncSmartCache.warm` did: the keys now cached and the keys that failed."""

    loaded: tuple[str, ...] = ()
    failed: dict[str, BaseException] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every key was loaded."""
        return not self.failed
