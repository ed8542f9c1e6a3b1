"""HTTP-aware retry decisions: a pure function from (state, outcome, time) to a verdict.

Hand-written because no Python library combines what safe HTTP retries need
(research notes §4.1, §4.2): urllib3 gates by method but has no deadline and sleeps a
whole ``Retry-After: 3600`` (urllib3#1338); tenacity and stamina know nothing of HTTP;
none refuses to replay a one-shot body. The rules, in the order they are applied:

1. **What is retryable.** A response whose status is in ``statuses`` (429, 500, 502,
   503, 504), or a transport error. ``CONNECT_ERROR``, ``CONNECT_TIMEOUT``,
   ``DNS_ERROR`` and ``POOL_TIMEOUT`` mean nothing reached the server, so they are
   retried for **any** method; ``READ_TIMEOUT``, ``WRITE_TIMEOUT`` and
   ``PROTOCOL_ERROR`` (and retryable statuses) only for idempotent methods or when the
   request carries an ``Idempotency-Key`` (urllib3's allow-list; gocardless#12 for the
   key). Everything else passes through untouched: ``CIRCUIT_OPEN``,
   ``INVALID_REQUEST``, ``PLUGIN_ERROR``, ``DECODE_ERROR``, ``AUTH_ERROR``,
   ``CANCELLED``, ``TLS_ERROR`` (a bad certificate does not heal), ``DEADLINE_EXCEEDED``,
   ``RESPONSE_TOO_LARGE`` (the next answer would be as large).
2. **A one-shot streamed body is never replayed**: give up with a message that says so.
3. **Attempts**: at most ``max_retries + 1``, or the ``set_testing(attempts=N)`` cap.
   With retries off (``max_retries=0``) the outcome passes through untouched.
4. **Server hints win**: ``Retry-After`` / ``RateLimit-Reset`` replace the backoff. A
   hint above ``retry_after_max`` or past the deadline fails fast with ``RATE_LIMITED``
   and ``retry_after`` set, instead of sleeping for an hour (urllib3#1338). A negative
   hint means "now", a NaN one is no hint. Once the deadline has passed nothing is
   retried, whatever the hint: ``DEADLINE_EXCEEDED``.
5. **Backoff**: ``min(backoff_max, backoff_initial * multiplier**n)`` with full jitter
   (uniform in ``[0, that]``, AWS "full jitter"; Envoy does the same) from a seedable
   RNG; a delay that would pass the deadline gives up with ``DEADLINE_EXCEEDED``.

The policy is immutable; each failed attempt yields a new :class:`RetryState` with the
attempt appended to its history (urllib3's ``Retry.increment`` model). The async
driver is :class:`flext_api.client.plugins.RetryPlugin`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from .._clock import testing_attempts
from .._config import RetryConfig
from .._errors import (
    ErrorCode,
    FlextApiError,
    RateLimitedError,
    RetriesExhaustedError,
    TimeoutError,
)
from ._deadline import remaining
from ._hints import server_delay_hint

if TYPE_CHECKING:
    from .._models import HttpResponse
    from .._result import FlextResult

__all__ = [
    "AttemptRecord",
    "GiveUp",
    "GiveUpReason",
    "Outcome",
    "Retry",
    "RetryPolicy",
    "RetryState",
]

#: Nothing reached the server: safe to retry whatever the method.
NOTHING_SENT_CODES: Final = frozenset(
    {
        ErrorCode.CONNECT_ERROR,
        ErrorCode.CONNECT_TIMEOUT,
        ErrorCode.DNS_ERROR,
        ErrorCode.POOL_TIMEOUT,
    }
)
#: The request may have been processed: retry only idempotent requests.
MAYBE_SENT_CODES: Final = frozenset(
    {ErrorCode.READ_TIMEOUT, ErrorCode.WRITE_TIMEOUT, ErrorCode.PROTOCOL_ERROR}
)


class GiveUpReason(StrEnum):
    """Why a :class:`GiveUp` verdict was reached."""

    NOT_RETRYABLE = "not_retryable"
    UNSAFE_METHOD = "unsafe_method"
    BODY_NOT_REPLAYABLE = "body_not_replayable"
    EXHAUSTED = "exhausted"
    RETRY_AFTER_TOO_LONG = "retry_after_too_long"
    RETRY_AFTER_PAST_DEADLINE = "retry_after_past_deadline"
    DEADLINE = "deadline"
    BUDGET = "budget"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt produced, reduced to what a retry decision needs.

    ``status`` is the HTTP status when a response arrived (also for an ``HTTP_STATUS``
    failure), ``error`` the failure (None for a response returned as a success) and
    ``retry_after`` the server's hint in seconds, already parsed.
    """

    status: int | None = None
    error: FlextApiError | None = None
    retry_after: float | None = None

    @property
    def error_code(self) -> ErrorCode | None:
        """The failure's code, or None."""
        return None if self.error is None else self.error.code

    def describe(self) -> str:
        """``HTTP 503`` or the error's ``[CODE] message``, for messages and logs."""
        if self.error is not None:
            return str(self.error)
        return f"HTTP {self.status}"

    @classmethod
    def from_result(cls, result: FlextResult[HttpResponse], wall_now: float) -> Outcome:
        """Reduce a pipeline result; ``wall_now`` (epoch seconds) dates ``Retry-After``."""
        error = result.exception
        response = result.value if error is None else error.response
        hint = None if error is None else error.retry_after
        status = None
        if response is not None:
            status = response.status_code
            if hint is None and status >= 400:
                hint = server_delay_hint(status, response.headers, wall_now)
        return cls(status, error, hint)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One finished attempt: its number, result and the delay chosen after it."""

    attempt: int
    status: int | None
    error_code: ErrorCode | None
    delay: float
    retry_after: float | None


@dataclass(frozen=True, slots=True)
class RetryState:
    """Per-logical-request progress: attempts made so far and their history."""

    attempt: int = 1
    history: tuple[AttemptRecord, ...] = ()

    @property
    def retries(self) -> int:
        """Retries made so far (attempts after the first)."""
        return self.attempt - 1

    def advance(self, outcome: Outcome, delay: float) -> RetryState:
        """The state for the next attempt, with this one recorded."""
        record = AttemptRecord(
            self.attempt, outcome.status, outcome.error_code, delay, outcome.retry_after
        )
        return RetryState(self.attempt + 1, (*self.history, record))


@dataclass(frozen=True, slots=True)
class Retry:
    """Verdict: sleep ``delay`` seconds, then make attempt ``state.attempt``."""

    delay: float
    state: RetryState


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Verdict: stop. ``error`` is what to report, or None to pass the outcome through."""

    reason: GiveUpReason
    error: FlextApiError | None
    state: RetryState


class RetryPolicy:
    """Immutable retry policy built from a :class:`~flext_api.RetryConfig`.

    ``rng`` (or ``config.seed``) makes the jitter reproducible in tests.

    >>> from flext_api.testing import set_testing
    >>> policy = RetryPolicy(RetryConfig(seed=1))
    >>> verdict = policy.decide(RetryState(), Outcome(status=503), method="GET", now=0.0)
    >>> type(verdict).__name__, 0.0 <= verdict.delay <= 0.5
    ('Retry', True)
    """

    __slots__ = ("config", "rng")

    config: RetryConfig
    rng: random.Random

    def __init__(
        self, config: RetryConfig | None = None, *, rng: random.Random | None = None
    ) -> None:
        config = config if config is not None else RetryConfig()
        if not isinstance(config, RetryConfig):
            raise TypeError(f"config must be a RetryConfig, got {type(config).__name__}")
        object.__setattr__(self, "config", config)
        object.__setattr__(self, "rng", rng if rng is not None else random.Random(config.seed))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use replace()")

    def replace(self, **changes: Any) -> RetryPolicy:
        """A policy with some config fields changed (sharing this policy's RNG)."""
        return RetryPolicy(self.config.model_copy(update=changes), rng=self.rng)

    # -- building blocks -------------------------------------------------------------------
    @property
    def max_attempts(self) -> int:
        """Attempts allowed in all, the testing cap included."""
        attempts = self.config.max_retries + 1
        cap = testing_attempts()
        return attempts if cap is None else max(1, min(attempts, cap))

    def backoff(self, retries: int) -> float:
        """The delay before retry number ``retries + 1``, jitter included."""
        cfg = self.config
        try:
            ceiling = cfg.backoff_initial * cfg.backoff_multiplier**retries
        except OverflowError:
            # multiplier**retries is past the float range: "huge" times the initial delay
            # (and zero times it is still zero, not the cap).
            ceiling = math.inf if cfg.backoff_initial > 0 else 0.0
        ceiling = min(cfg.backoff_max, ceiling)
        if not cfg.jitter:
            return ceiling
        return self.rng.uniform(0.0, ceiling)

    def is_retryable(self, outcome: Outcome) -> bool:
        """True when ``outcome`` is worth another attempt for some method."""
        if outcome.status is not None and outcome.status in self.config.statuses:
            return True
        code = outcome.error_code
        return code in NOTHING_SENT_CODES or code in MAYBE_SENT_CODES

    def is_safe(self, method: str, has_idempotency_key: bool) -> bool:
        """True when replaying ``method`` cannot duplicate a side effect."""
        return has_idempotency_key or method.upper() in self.config.methods

    # -- the decision -----------------------------------------------------------------------
    def decide(
        self,
        state: RetryState,
        outcome: Outcome,
        *,
        method: str,
        has_idempotency_key: bool = False,
        replayable: bool = True,
        now: float,
        deadline: float | None = None,
    ) -> Retry | GiveUp:
        """Retry (with the delay) or give up (with the error to report), per the rules."""
        if not self.is_retryable(outcome):
            return GiveUp(GiveUpReason.NOT_RETRYABLE, None, state)
        nothing_sent = outcome.status is None and outcome.error_code in NOTHING_SENT_CODES
        if not nothing_sent and not self.is_safe(method, has_idempotency_key):
            return GiveUp(GiveUpReason.UNSAFE_METHOD, None, state)
        if not replayable:
            return self.give_up(
                state,
                outcome,
                GiveUpReason.BODY_NOT_REPLAYABLE,
                f"attempt {state.attempt} failed ({outcome.describe()}) and the request body "
                "is a one-shot stream that cannot be replayed; pass the body as bytes to "
                "allow retries",
            )
        if state.attempt >= self.max_attempts:
            if state.attempt == 1:
                # Retries are off (max_retries=0, or a testing cap of 1): nothing was
                # exhausted, so the caller gets the outcome as it is.
                return GiveUp(GiveUpReason.EXHAUSTED, None, state)
            return self.give_up(
                state,
                outcome,
                GiveUpReason.EXHAUSTED,
                f"gave up after {state.attempt} attempts; last: {outcome.describe()}",
            )
        left = remaining(deadline, now)
        if left <= 0.0:
            # Nothing may start after the deadline, not even on a "retry now" hint
            # (Retry-After: 0, or a date in the past): the deadline is why we stop.
            return self.give_up(
                state,
                outcome,
                GiveUpReason.DEADLINE,
                f"the deadline passed before attempt {state.attempt + 1}; "
                f"last: {outcome.describe()}",
                code=ErrorCode.DEADLINE_EXCEEDED,
            )
        hint = outcome.retry_after if self.config.respect_retry_after else None
        if hint is not None and not hint >= 0.0:
            # A hint from outside the header parser (an error's retry_after): NaN says
            # nothing, so the backoff decides; a negative one is a time already passed.
            hint = None if math.isnan(hint) else 0.0
        if hint is not None:
            if hint > self.config.retry_after_max:
                return self._fail_fast(
                    state,
                    outcome,
                    GiveUpReason.RETRY_AFTER_TOO_LONG,
                    f"server asked to retry after {hint:g}s, more than "
                    f"retry_after_max={self.config.retry_after_max:g}s; failing fast",
                )
            if hint >= left:
                return self._fail_fast(
                    state,
                    outcome,
                    GiveUpReason.RETRY_AFTER_PAST_DEADLINE,
                    f"server asked to retry after {hint:g}s but the deadline leaves "
                    f"{left:.3g}s; failing fast",
                )
            delay = hint
        else:
            delay = self.backoff(state.retries)
            if delay >= left:
                return self.give_up(
                    state,
                    outcome,
                    GiveUpReason.DEADLINE,
                    f"a {delay:.3g}s backoff before attempt {state.attempt + 1} would pass "
                    f"the deadline ({left:.3g}s left); last: {outcome.describe()}",
                    code=ErrorCode.DEADLINE_EXCEEDED,
                )
        return Retry(delay, state.advance(outcome, delay))

    def give_up(
        self,
        state: RetryState,
        outcome: Outcome,
        reason: GiveUpReason,
        message: str,
        *,
        code: ErrorCode = ErrorCode.RETRIES_EXHAUSTED,
    ) -> GiveUp:
        """A :class:`GiveUp` whose error chains the last attempt's error as ``__cause__``.

        ``details`` holds ``attempts``, ``last_error`` and ``reason``; ``retry_after``
        and ``response`` are carried over from the last attempt.
        """
        last = outcome.error
        klass = TimeoutError if code is ErrorCode.DEADLINE_EXCEEDED else RetriesExhaustedError
        error = klass(
            message,
            code=code,
            request=None if last is None else last.request,
            response=None if last is None else last.response,
            retry_after=outcome.retry_after,
            details={"attempts": state.attempt, "last_error": last, "reason": reason.value},
        )
        error.__cause__ = last
        return GiveUp(reason, error, state)

    def _fail_fast(
        self, state: RetryState, outcome: Outcome, reason: GiveUpReason, message: str
    ) -> GiveUp:
        last = outcome.error
        error = RateLimitedError(
            message,
            request=None if last is None else last.request,
            response=None if last is None else last.response,
            retry_after=outcome.retry_after,
            details={"attempts": state.attempt, "last_error": last, "reason": reason.value},
        )
        error.__cause__ = last
        return GiveUp(reason, error, state)

    def __repr__(self) -> str:
        cfg = self.config
        return (
            f"<RetryPolicy max_retries={cfg.max_retries} statuses={sorted(cfg.statuses)} "
            f"backoff={cfg.backoff_initial:g}s*{cfg.backoff_multiplier:g}^n<={cfg.backoff_max:g}s>"
        )
