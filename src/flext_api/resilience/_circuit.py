"""``CircuitConfig``: the seed's three breaker settings.

The seed's breaker is configured with three numbers - ``failure_threshold`` failures in
a row open it, it stays open ``recovery_timeout`` seconds, then ``half_open_calls``
successful trial calls close it - and wraps any call: ``await breaker.call(func, *args)``
returns what ``func`` returns, re-raises what it raises, and raises
:class:`~flext_api._errors.CircuitOpenError` (a ``FlextApiError`` with code
``CIRCUIT_OPEN``) while open. :class:`CircuitConfig` maps those numbers onto the
sans-IO breaker's :class:`~flext_api.BreakerConfig` (no rate window, no growth, no
jitter: exactly the seed's rules), so one state machine serves both shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._config import BreakerConfig
from .._numbers import is_int, is_real

__all__ = ["CircuitConfig"]


@dataclass(frozen=True, slots=True)
class CircuitConfig:
    """The seed's breaker settings (see the module docstring)."""

    failure_threshold: int = 5
    recovery_timeout: float = 60.0
    half_open_calls: int = 3

    def __post_init__(self) -> None:
        # NaN, an infinity or a fraction passes the range checks and would fail later, in
        # to_breaker_config, under BreakerConfig's field names.
        for what in ("failure_threshold", "half_open_calls"):
            if not is_int(getattr(self, what)):
                raise TypeError(f"{what} must be an int, got {type(getattr(self, what)).__name__}")
        if not is_real(self.recovery_timeout):
            raise TypeError(
                f"recovery_timeout must be a number, got {type(self.recovery_timeout).__name__}"
            )
        if self.failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {self.failure_threshold}")
        if not 0 < self.recovery_timeout < math.inf:
            raise ValueError(
                f"recovery_timeout must be a finite number > 0, got {self.recovery_timeout}"
            )
        if self.half_open_calls < 1:
            raise ValueError(f"half_open_calls must be >= 1, got {self.half_open_calls}")

    def to_breaker_config(self) -> BreakerConfig:
        """The equivalent :class:`~flext_api.BreakerConfig`.

        ``failure_ratio=1`` over ``minimum_calls=failure_threshold`` can only trip when the
        last ``failure_threshold`` calls all failed, which the consecutive rule already
        covers: the rate rule adds nothing, as in the seed.
        """
        return BreakerConfig(
            consecutive_failures=self.failure_threshold,
            failure_ratio=1.0,
            minimum_calls=self.failure_threshold,
            open_duration=self.recovery_timeout,
            open_duration_max=self.recovery_timeout,
            open_duration_multiplier=1.0,
            open_jitter=0.0,
            half_open_calls=self.half_open_calls,
        )
