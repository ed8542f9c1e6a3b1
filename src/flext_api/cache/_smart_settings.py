"""``SmartCacheSettings``: the validated, normalized knobs of one ``AsyncSmartCache``.

A frozen value object built once from the constructor's arguments (durations in
seconds or ``timedelta``), so the cache's code reads plain floats and bad settings fail
at construction with a ``ValueError``/``TypeError`` naming the setting.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ._durations import Duration, to_seconds

__all__ = ["SmartCacheSettings"]


@dataclass(frozen=True, slots=True)
class SmartCacheSettings:
    """Durations in seconds; ``ttl`` None = no expiry; ``beta`` None = no early refresh."""

    retry_interval: float
    ttl: float | None
    stale_while_revalidate: float
    stale_if_error: float
    beta: float | None
    retry_backoff: float
    max_retry_interval: float
    retry_jitter: float
    cache_errors: tuple[type[Exception], ...]

    @classmethod
    def build(
        cls,
        *,
        retry_interval: Duration,
        ttl: Duration | None,
        stale_while_revalidate: Duration,
        stale_if_error: Duration,
        early_refresh_beta: float | None,
        retry_backoff: float,
        max_retry_interval: Duration | None,
        retry_jitter: float,
        cache_errors: tuple[type[Exception], ...],
    ) -> SmartCacheSettings:
        """Check and normalize the constructor arguments of ``AsyncSmartCache``."""
        if early_refresh_beta is not None and not 0 < early_refresh_beta < math.inf:
            # inf would make the XFetch margin inf (or nan): a refresh on every hit.
            raise ValueError(
                f"early_refresh_beta must be finite and > 0, or None, got {early_refresh_beta}"
            )
        if not retry_backoff >= 1.0:
            raise ValueError(f"retry_backoff must be >= 1.0, got {retry_backoff}")
        if not 0.0 <= retry_jitter <= 1.0:
            raise ValueError(f"retry_jitter must be within 0..1, got {retry_jitter}")
        cache_errors = _exception_types(cache_errors)
        return cls(
            retry_interval=to_seconds(retry_interval, "retry_interval"),
            ttl=None if ttl is None else to_seconds(ttl, "ttl", allow_zero=False),
            stale_while_revalidate=to_seconds(stale_while_revalidate, "stale_while_revalidate"),
            stale_if_error=to_seconds(stale_if_error, "stale_if_error"),
            beta=early_refresh_beta,
            retry_backoff=retry_backoff,
            max_retry_interval=(
                math.inf
                if max_retry_interval is None
                else to_seconds(max_retry_interval, "max_retry_interval")
            ),
            retry_jitter=retry_jitter,
            cache_errors=cache_errors,
        )

    def entry_ttl(self, ttl: Duration | None) -> float | None:
        """The lifetime for one value: ``ttl`` when given, else the default."""
        return self.ttl if ttl is None else to_seconds(ttl, "ttl", allow_zero=False)

    def caches(self, exc: Exception) -> bool:
        """Whether a failure with ``exc`` is kept for a retry interval."""
        return self.retry_interval > 0 and isinstance(exc, self.cache_errors)

    def retry_delay(self, failures: int, rng: random.Random) -> float:
        """The retry interval after ``failures`` consecutive failures (backoff, cap, jitter)."""
        try:
            grown = self.retry_interval * self.retry_backoff ** (failures - 1)
        except OverflowError:
            # 2.0 ** 1024 overflows: after that many failures (17 h at a 60 s cap) the
            # interval is simply the cap, not an error that ends the computation's task.
            grown = math.inf
        delay = min(grown, self.max_retry_interval)
        if self.retry_jitter:
            delay *= 1.0 + self.retry_jitter * (2.0 * rng.random() - 1.0)
        return delay


def _exception_types(value: object) -> tuple[type[Exception], ...]:
    """``cache_errors`` as a tuple of exception classes (one class is taken as a tuple of one).

    Checked here: ``isinstance`` would only reject a bad one at the first failure, inside
    the computation's task, and its waiters would see a CANCELLED error instead.
    """
    kinds = (value,) if isinstance(value, type) else value
    if not isinstance(kinds, tuple) or not all(
        isinstance(kind, type) and issubclass(kind, Exception) for kind in kinds
    ):
        raise TypeError(f"cache_errors must be a tuple of Exception subclasses, got {value!r:.80}")
    return kinds
