"""Chaos: inject faults at a configurable rate with a seeded RNG (Polly's Simmy).

Resilience settings are only trustworthy once they have been seen to work against
failures: a staging run with 5 % injected connect errors, latency and throttling shows
whether retries, breakers and deadlines behave as intended. Polly ships this as Simmy
(fault, outcome and latency strategies with an ``InjectionRate``) and Envoy as its
fault filter; no Python HTTP client has it (research notes §4.7).

:class:`ChaosPolicy` only *decides* (sans-IO): ``pick()`` returns the :class:`Fault`
to inject into this call or None. The plugin performs it.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from .._errors import ErrorCode

__all__ = ["ChaosPolicy", "Fault", "FaultKind"]


class FaultKind(StrEnum):
    """What a :class:`Fault` does to a call."""

    #: Fail the call with ``code`` without calling the server.
    ERROR = "error"
    #: Wait ``latency`` seconds, then make the call.
    LATENCY = "latency"
    #: Answer with a synthetic response ``status`` (``Retry-After`` when set).
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Fault:
    """One kind of injected fault; ``weight`` is its share among the policy's faults."""

    kind: FaultKind
    code: ErrorCode | None = None
    latency: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not (0 < self.weight < math.inf):
            raise ValueError(f"fault weight must be a finite number > 0, got {self.weight!r}")
        if self.kind is FaultKind.ERROR and self.code is None:
            raise ValueError("an error fault needs an ErrorCode")
        if self.kind is FaultKind.LATENCY and not (0 <= self.latency < math.inf):
            raise ValueError(f"latency must be finite seconds >= 0, got {self.latency!r}")
        if self.kind is FaultKind.STATUS and (self.status is None or not 100 <= self.status <= 599):
            raise ValueError(f"a status fault needs an HTTP status 100-599, got {self.status!r}")
        if self.retry_after is not None and not (0 <= self.retry_after < math.inf):
            # It becomes a Retry-After header: NaN and infinity cannot be written as one
            # (every injected call would fail as PLUGIN_ERROR), a negative one is invalid.
            raise ValueError(f"retry_after must be finite seconds >= 0, got {self.retry_after!r}")

    @classmethod
    def error(cls, code: ErrorCode, *, weight: float = 1.0) -> Fault:
        """Fail with ``code`` (e.g. ``CONNECT_ERROR``, ``READ_TIMEOUT``)."""
        return cls(FaultKind.ERROR, code=code, weight=weight)

    @classmethod
    def delay(cls, seconds: float, *, weight: float = 1.0) -> Fault:
        """Add ``seconds`` of latency before the real call."""
        return cls(FaultKind.LATENCY, latency=seconds, weight=weight)

    @classmethod
    def response(
        cls, status: int, *, retry_after: float | None = None, weight: float = 1.0
    ) -> Fault:
        """Answer ``status`` (e.g. 503, or 429 with ``retry_after``) without a real call."""
        return cls(FaultKind.STATUS, status=status, retry_after=retry_after, weight=weight)

    def describe(self) -> str:
        """``error CONNECT_ERROR``, ``latency 1.5s`` or ``status 429 retry-after 2s``."""
        if self.kind is FaultKind.ERROR:
            return f"error {self.code}"
        if self.kind is FaultKind.LATENCY:
            return f"latency {self.latency:g}s"
        hint = f" retry-after {self.retry_after:g}s" if self.retry_after is not None else ""
        return f"status {self.status}{hint}"


#: A mix that exercises every resilience stage: connect and read failures, latency,
#: an overloaded server and throttling with a ``Retry-After``.
DEFAULT_FAULTS: tuple[Fault, ...] = (
    Fault.error(ErrorCode.CONNECT_ERROR),
    Fault.error(ErrorCode.READ_TIMEOUT),
    Fault.delay(1.0),
    Fault.response(503, retry_after=1.0),
    Fault.response(429, retry_after=1.0),
)


class ChaosPolicy:
    """Pick a fault for a fraction ``rate`` of calls, reproducibly with ``seed``.

    >>> policy = ChaosPolicy(1.0, [Fault.response(503)], seed=7)
    >>> policy.pick().describe()
    'status 503'
    """

    __slots__ = ("_cumulative", "enabled", "faults", "rate", "rng")

    def __init__(
        self,
        rate: float,
        faults: Sequence[Fault] = DEFAULT_FAULTS,
        *,
        seed: int | None = None,
        rng: random.Random | None = None,
        enabled: bool = True,
    ) -> None:
        if not 0.0 <= rate <= 1.0:  # NaN fails this too
            raise ValueError(f"injection rate must be within [0, 1], got {rate!r}")
        if not faults:
            raise ValueError("a chaos policy needs at least one fault")
        self.rate = rate
        self.faults = tuple(faults)
        self.enabled = enabled
        self.rng = rng if rng is not None else random.Random(seed)
        # Scaled by the largest weight first: finite weights may still sum past the
        # float range (2 x 1e308), and inf/inf edges would send pick() out of range.
        largest = max(fault.weight for fault in self.faults)
        total = 0.0
        cumulative = []
        for fault in self.faults:
            total += fault.weight / largest
            cumulative.append(total)
        self._cumulative = [c / total for c in cumulative]

    def pick(self) -> Fault | None:
        """The fault to inject into this call, or None (most calls)."""
        if not self.enabled or self.rate <= 0.0:
            return None
        rng = self.rng
        if rng.random() >= self.rate:
            return None
        # The last edge is total/total == 1.0 exactly and random() < 1.0: always in range.
        return self.faults[bisect.bisect_right(self._cumulative, rng.random())]

    def __repr__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"<ChaosPolicy rate={self.rate:g} faults={len(self.faults)} {state}>"
