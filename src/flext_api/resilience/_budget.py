"""Per-host retry budget: retries stay a fraction of recent traffic (Envoy, Finagle).

Per-request retry limits do not stop a retry storm: with 3 retries each, a dead host
receives four times the traffic from every client at the worst moment. Envoy's
``retry_budget`` (20 % of active requests, at least 3) and Finagle's ``RetryBudget``
(a ratio of recent requests, a floor per second) cap the *sum* of retries instead. No
Python library has one (research notes §4.3), so it is written here.

Model: over the last ``window`` seconds, per key, a retry is allowed while
``retries < max(min_retries, ratio * requests)``, where ``requests`` counts first
attempts only. Against a dead host the budget therefore lets through roughly
``ratio`` extra traffic instead of ``max_retries`` times the traffic.
"""

from __future__ import annotations

import math

from .._config import RetryConfig
from ._keyed import IdleMap
from ._window import SlidingWindow

__all__ = ["RetryBudget"]

_REQUESTS = 0
_RETRIES = 1


class RetryBudget:
    """Retry allowance per key (host) over a sliding time window.

    >>> budget = RetryBudget(ratio=0.2, min_retries=1, window=10.0)
    >>> budget.record_request("h", 0.0)
    >>> budget.try_retry("h", 0.0), budget.try_retry("h", 0.0)
    (True, False)
    """

    __slots__ = ("_windows", "min_retries", "ratio", "window")

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_retries: int = 3,
        window: float = 10.0,
        idle_eviction: float = 600.0,
    ) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be within [0, 1], got {ratio!r}")
        # Checked here, not when a host's first window is built: a bad window would fail
        # every request later, and a NaN minimum would lift the budget altogether.
        if not min_retries >= 0:
            raise ValueError(f"min_retries must be >= 0, got {min_retries!r}")
        if not window > 0:
            raise ValueError(f"window must be > 0 seconds, got {window!r}")
        self.ratio = ratio
        self.min_retries = min_retries
        self.window = window
        self._windows: IdleMap[SlidingWindow] = IdleMap(
            lambda _key: SlidingWindow(window, fields=2), idle=max(idle_eviction, window)
        )

    @classmethod
    def from_config(cls, config: RetryConfig) -> RetryBudget | None:
        """The budget ``config`` describes, or None when ``budget_ratio`` is None (off)."""
        if config.budget_ratio is None:
            return None
        return cls(
            ratio=config.budget_ratio,
            min_retries=math.ceil(config.budget_min_per_second * config.budget_window),
            window=config.budget_window,
        )

    def record_request(self, key: str, now: float) -> None:
        """Count one logical request (its first attempt) to ``key``."""
        self._windows.get(key, now).add(now, _REQUESTS)

    def allowance(self, key: str, now: float) -> int:
        """Retries ``key`` may still make in the current window."""
        window = self._windows.get(key, now)
        requests, retries = window.totals(now)
        return max(0, self._limit(requests) - retries)

    def try_retry(self, key: str, now: float) -> bool:
        """Spend one retry of ``key``'s budget; False (nothing spent) when none is left."""
        window = self._windows.get(key, now)
        requests, retries = window.totals(now)
        if retries >= self._limit(requests):
            return False
        window.add(now, _RETRIES)
        return True

    def _limit(self, requests: int) -> int:
        return max(self.min_retries, int(self.ratio * requests))

    def __repr__(self) -> str:
        return (
            f"<RetryBudget ratio={self.ratio:g} min_retries={self.min_retries} "
            f"window={self.window:g}s hosts={len(self._windows)}>"
        )
