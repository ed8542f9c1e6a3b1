"""Which failures are worth another connection, and the reconnect pacing."""

from __future__ import annotations

import pytest

from flext_api import ErrorCode, FlextApiError, RetryConfig
from flext_api.protocols import Reconnect
from flext_api.protocols._reconnect import is_permanent


@pytest.mark.parametrize(
    ("code", "status", "permanent"),
    [
        (ErrorCode.INVALID_REQUEST, None, True),
        (ErrorCode.AUTH_ERROR, None, True),
        (ErrorCode.HTTP_STATUS, 404, True),
        (ErrorCode.HTTP_STATUS, 401, True),
        (ErrorCode.HTTP_STATUS, 408, False),
        (ErrorCode.HTTP_STATUS, 429, False),
        (ErrorCode.HTTP_STATUS, 503, False),
        (ErrorCode.HTTP_STATUS, None, False),
        (ErrorCode.CONNECT_ERROR, None, False),
        (ErrorCode.READ_TIMEOUT, None, False),
    ],
)
def test_permanent_failures(code: ErrorCode, status: int | None, permanent: bool) -> None:
    """Bad input, refused credentials and 4xx other than 408/429 are not retried."""
    details = {} if status is None else {"status": status}
    assert is_permanent(FlextApiError.from_code(code, "x", details=details)) is permanent


def test_delay_grows_and_success_resets() -> None:
    """Consecutive failures back off; a success starts again from the first delay."""
    pacing = Reconnect.from_config(RetryConfig(jitter=False, backoff_initial=1.0), 3)
    delays = [pacing.delay(), pacing.delay()]
    pacing.succeeded()
    assert delays == [1.0, 2.0] and pacing.delay() == 1.0


def test_server_hint_is_a_floor() -> None:
    """A server's retry hint longer than the backoff is used instead."""
    pacing = Reconnect.from_config(RetryConfig(jitter=False, backoff_initial=0.5))
    assert pacing.delay(floor=3.0) == 3.0


def test_exhausted_after_max_attempts() -> None:
    """max_attempts consecutive failures exhaust the pacing; None never does."""
    bounded = Reconnect.from_config(RetryConfig(), 1)
    bounded.delay()
    unbounded = Reconnect.from_config(RetryConfig())
    unbounded.delay()
    assert bounded.exhausted and not unbounded.exhausted
