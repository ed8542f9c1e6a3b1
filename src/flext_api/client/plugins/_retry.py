"""RetryPlugin: the async driver of :class:`~flext_api.resilience.RetryPolicy`.

The policy decides; this plugin runs the attempts, sleeps the chosen delay on the
injected clock, releases every response it will not return, spends the per-host retry
budget, and turns the verdict into the result the caller sees:

* success, or an outcome that is not retryable: returned as it is, with
  ``response.attempts`` stamped;
* retries exhausted (or the budget spent, or a body that cannot be replayed): a
  ``RETRIES_EXHAUSTED`` failure whose ``__cause__`` and ``details["last_error"]`` are
  the last attempt's error, with ``details["attempts"]`` and ``details["reason"]``;
* a server hint too long for ``retry_after_max`` or the deadline: ``RATE_LIMITED`` at
  once, with ``retry_after`` set (the fail-fast rule); a backoff past the deadline:
  ``DEADLINE_EXCEEDED``;
* when the last attempt returned a *response* (``fail_on_http_error=False``), that
  response is returned as it is: the caller asked for responses, not errors;
* a failure passed through after a retry carries ``details["attempts"]``, the attempts
  sent. A retry refused below before anything was sent (``CIRCUIT_OPEN``,
  ``RATE_LIMITED``, ``BULKHEAD_FULL``, ``INVALID_REQUEST``, a ``DEADLINE_EXCEEDED`` with
  reason ``not_sent``) is not counted, and the refusal also carries the last attempt
  sent, as a give-up does: ``__cause__`` and ``details["last_error"]`` are its error and
  ``response`` its response.

Per-request control through ``request.extensions``:

* ``"retry"``: a :class:`~flext_api.RetryConfig` (replaces the plugin's), an ``int``
  (``max_retries``), ``True`` (the plugin's config) or ``None``/``False`` (no retries);
* ``"idempotency_key"``: ``True`` generates one ``Idempotency-Key`` header before the
  first attempt (a ``str`` is used as the key); every attempt sends the same key, so
  the server can deduplicate, and POST/PATCH become retryable (gocardless#12).

* ``"idempotent"``: ``True`` marks a request safe to replay whatever its method (a
  GraphQL query sent with POST), as an ``Idempotency-Key`` would.

Retry attempts carry ``request.extensions["attempt"]`` (2, 3, ...) for observability.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Sequence
from typing import Any

from ..._clock import Clock
from ..._config import RetryConfig
from ..._errors import NOT_SENT, ErrorCode, FlextApiError, InvalidRequestError
from ..._models import HttpRequest, HttpResponse, validate_header
from ..._result import FlextResult
from ...resilience import (
    EventHook,
    GiveUp,
    GiveUpReason,
    Outcome,
    RetryBudget,
    RetryGaveUp,
    RetryPolicy,
    RetryScheduled,
    RetryState,
)
from ...resilience._events import Emitter
from .._plugin import CallNext, SplitPlugin
from ._common import (
    IDEMPOTENCY_HEADER,
    KeyFunc,
    close_response,
    has_idempotency_key,
    host_key,
    response_of,
)

__all__ = ["RetryPlugin"]

_MAX_CACHED_POLICIES = 64
_DEFAULT_BUDGET: Any = object()
#: Refusals of a stage below: the attempt never reached the server.
_REFUSED_CODES = frozenset(
    {
        ErrorCode.CIRCUIT_OPEN,
        ErrorCode.RATE_LIMITED,
        ErrorCode.BULKHEAD_FULL,
        ErrorCode.INVALID_REQUEST,
    }
)


def _was_refused(error: FlextApiError) -> bool:
    """True when ``error`` is a stage's refusal to send the attempt, not its outcome."""
    if error.response is not None:
        return False
    return error.code in _REFUSED_CODES or error.details.get("reason") == NOT_SENT


class RetryPlugin(SplitPlugin):
    """Retry failed attempts safely; see the module docstring for the rules.

    ``budget`` defaults to a per-host :class:`~flext_api.resilience.RetryBudget` built
    from ``config`` (pass None, or set ``budget_ratio=None``, for no budget). ``key``
    maps a request to its budget key (the host by default).
    """

    name = "retry"

    def __init__(
        self,
        config: RetryConfig | None = None,
        *,
        clock: Clock | None = None,
        budget: RetryBudget | None = _DEFAULT_BUDGET,
        key: KeyFunc = host_key,
        hooks: Sequence[EventHook] = (),
    ) -> None:
        self.config = config if config is not None else RetryConfig()
        self.policy = RetryPolicy(self.config)
        self.budget = RetryBudget.from_config(self.config) if budget is _DEFAULT_BUDGET else budget
        self._init_clock(clock)
        self._key = key
        self._emitter = Emitter(hooks)
        self._policies: dict[RetryConfig | int, RetryPolicy | None] = {}

    # -- per-request overrides --------------------------------------------------------------
    def _policy_for(self, request: HttpRequest) -> RetryPolicy | None:
        if "retry" not in request.extensions:
            return self.policy if self.config.enabled else None
        override = request.extensions["retry"]
        if override is None or override is False:
            return None
        if override is True:
            return self.policy if self.config.enabled else None
        if isinstance(override, RetryConfig):
            if override not in self._policies:
                policy = RetryPolicy(override, rng=self.policy.rng) if override.enabled else None
                self._remember(override, policy)
            return self._policies[override]
        if isinstance(override, int) and not isinstance(override, bool):
            if override < 0:
                raise InvalidRequestError(
                    f"request.extensions['retry'] must be >= 0 retries, got {override}"
                )
            if override not in self._policies:
                self._remember(override, self.policy.replace(max_retries=override))
            return self._policies[override]
        raise InvalidRequestError(
            "request.extensions['retry'] must be a RetryConfig, an int, True, False or "
            f"None; got {type(override).__name__}"
        )

    def _remember(self, override: RetryConfig | int, policy: RetryPolicy | None) -> None:
        if len(self._policies) >= _MAX_CACHED_POLICIES:
            self._policies.clear()  # a bounded cache; overrides are usually a handful
        self._policies[override] = policy

    @staticmethod
    def _ensure_idempotency_key(request: HttpRequest) -> None:
        wanted = request.extensions.get("idempotency_key")
        if wanted is None or wanted is False or IDEMPOTENCY_HEADER in request.headers:
            return
        if wanted is True:
            request.headers.set(IDEMPOTENCY_HEADER, str(uuid.uuid4()))
        elif isinstance(wanted, str) and wanted.strip():
            validate_header(IDEMPOTENCY_HEADER, wanted)  # no CR/LF smuggled into headers
            request.headers.set(IDEMPOTENCY_HEADER, wanted)
        else:
            raise InvalidRequestError(
                "request.extensions['idempotency_key'] must be True or a non-empty str, "
                f"got {wanted!r}"
            )

    # -- the driver -------------------------------------------------------------------------
    # A SplitPlugin: the first attempt runs between enter() and leave() (in the frame
    # the pipeline shares with the stages around it); the retry loop is leave()'s slow
    # path, entered only when that attempt failed retryably.
    def enter(self, request: HttpRequest) -> Any:
        """Choose the policy, set the idempotency key, count the request in the budget.

        Returns ``(policy, budget key)``, None when this request is not retried, or a
        failed result for a bad per-request setting.
        """
        if request.extensions:
            try:
                policy = self._policy_for(request)
                self._ensure_idempotency_key(request)
            except InvalidRequestError as exc:
                exc.request = request
                return FlextResult.fail(exc)
        else:
            policy = self.policy if self.config.enabled else None
        if policy is None:
            return None
        key = ""
        budget = self.budget
        if budget is not None:
            key = request.host if self._key is host_key else self._key(request)
            budget.record_request(key, self._clock.monotonic())
        return policy, key

    def leave(
        self,
        request: HttpRequest,
        token: Any,
        result: FlextResult[HttpResponse],
        call_next: CallNext,
    ) -> FlextResult[HttpResponse] | Awaitable[FlextResult[HttpResponse]]:
        """The first attempt's result, or the retry loop (awaitable) when it failed retryably."""
        if token is None:
            return result
        policy, key = token
        if result._error is None and result._value.status_code not in policy.config.statuses:
            return result  # the fast path: one attempt, nothing to decide
        return self._retry(request, call_next, policy, result, key)

    async def _retry(
        self,
        request: HttpRequest,
        call_next: CallNext,
        policy: RetryPolicy,
        result: FlextResult[HttpResponse],
        key: str,
    ) -> FlextResult[HttpResponse]:
        clock = self._clock
        budget = self.budget
        state = RetryState()
        # "idempotent": the caller vouches that replaying is safe (a GraphQL query).
        has_key = has_idempotency_key(request) or bool(request.extensions.get("idempotent"))
        previous: FlextResult[HttpResponse] | None = None  # the attempt before ``result``
        while True:
            now = clock.monotonic()
            outcome = Outcome.from_result(result, clock.time())
            verdict = policy.decide(
                state,
                outcome,
                method=request.method,
                has_idempotency_key=has_key,
                replayable=request.is_replayable,
                now=now,
                deadline=request.deadline,
            )
            if isinstance(verdict, GiveUp):
                return self._finish(request, result, verdict, previous)
            if budget is not None and not budget.try_retry(key, now):
                return self._finish(
                    request,
                    result,
                    policy.give_up(
                        state,
                        outcome,
                        GiveUpReason.BUDGET,
                        f"retry budget for {key!r} is spent ({budget.ratio:.0%} of the "
                        f"requests of the last {budget.window:g}s); last: {outcome.describe()}",
                    ),
                    previous,
                )
            await close_response(result)
            if self._emitter.active:
                self._emitter.emit(
                    RetryScheduled(
                        key or self._key(request),
                        request.method,
                        state.attempt,
                        verdict.delay,
                        outcome.status,
                        outcome.error_code,
                        outcome.retry_after,
                    )
                )
            await clock.sleep(verdict.delay)
            state = verdict.state
            request.extensions["attempt"] = state.attempt
            previous = result
            result = await call_next(request)
            if result.is_success and result.value.status_code not in policy.config.statuses:
                result.value.attempts = state.attempt
                return result

    def _finish(
        self,
        request: HttpRequest,
        result: FlextResult[HttpResponse],
        verdict: GiveUp,
        previous: FlextResult[HttpResponse] | None = None,
    ) -> FlextResult[HttpResponse]:
        attempts = verdict.state.attempt
        passed = result.exception if verdict.error is None else None
        if passed is not None and previous is not None:
            # A failure passed through after a retry: without details["attempts"] the
            # caller (a batch's result) could only guess how many attempts were sent.
            if _was_refused(passed):
                attempts -= 1  # this attempt was never sent; the one before was the last
                _carry_last_attempt(passed, previous)
            passed.details["attempts"] = attempts
        response = response_of(result)
        if response is not None:
            response.attempts = attempts
        if verdict.reason is not GiveUpReason.NOT_RETRYABLE and self._emitter.active:
            self._emitter.emit(
                RetryGaveUp(
                    self._key(request),
                    request.method,
                    attempts,
                    verdict.reason.value,
                    result.error_code,
                )
            )
        error = verdict.error
        if error is None or result.is_success:
            return result
        if error.request is None:
            error.request = request
        return FlextResult.fail(error)

    def __repr__(self) -> str:
        budget = "off" if self.budget is None else f"{self.budget.ratio:.0%}"
        return f"<RetryPlugin max_retries={self.config.max_retries} budget={budget}>"


def _carry_last_attempt(refusal: FlextApiError, last: FlextResult[HttpResponse]) -> None:
    """Give a refused retry the last sent attempt's outcome, as a give-up carries it:
    ``__cause__`` and ``details["last_error"]`` its error (None for a response returned
    as a success), ``response`` its response. The refusal's own ``retry_after`` stays."""
    last_error = last.exception
    refusal.details["last_error"] = last_error
    if refusal.__cause__ is None and last_error is not None:
        refusal.__cause__ = last_error
    if refusal.response is None:
        refusal.response = response_of(last)
