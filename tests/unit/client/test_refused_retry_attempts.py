"""Through the client's default stages: a retry the breaker refuses still reports the
attempts sent and the last status, to the caller and in a batch's results."""

from __future__ import annotations

from flext_api import BreakerConfig, ClientConfig, ErrorCode, HttpRequest, HttpResponse, RetryConfig
from flext_api.client import FlextApiClient
from flext_api.testing import FakeClock
from flext_api.transports import MockTransport

# Two 503s in a row open the breaker, so the third of the four attempts is refused.
CONFIG = ClientConfig(
    retry=RetryConfig(max_retries=3, budget_ratio=None, seed=1),
    breaker=BreakerConfig(consecutive_failures=2),
)


class _Always503:
    """A MockTransport handler that answers 503 and counts the requests it saw."""

    def __init__(self) -> None:
        self.sent = 0

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.sent += 1
        return HttpResponse(503)


def _client(handler: _Always503, fail_on_http_error: bool | None = None) -> FlextApiClient:
    return FlextApiClient(
        "http://svc",
        transport=MockTransport(handler),
        config=CONFIG,
        clock=FakeClock(),
        fail_on_http_error=fail_on_http_error,
    )


async def test_the_refused_retry_reports_two_attempts_and_the_503() -> None:
    """client.get: CIRCUIT_OPEN with attempts == 2 (both sent) and the last 503."""
    handler = _Always503()
    async with _client(handler) as client:
        result = await client.get("/x")
    error = result.exception
    assert error is not None and error.code is ErrorCode.CIRCUIT_OPEN
    assert handler.sent == 2 and error.details["attempts"] == 2
    assert error.response is not None and error.response.status_code == 503


async def test_a_batch_result_counts_the_attempts_and_keeps_the_status() -> None:
    """client.batch (no pause allowed): attempts == 2 and status_code == 503, not 0/None."""
    handler = _Always503()
    async with _client(handler) as client:
        results = [r async for r in client.batch([{"id": 1, "path": "/x"}], max_pause=0)]
    [result] = results
    assert result.error_code is ErrorCode.CIRCUIT_OPEN
    assert handler.sent == 2
    assert (result.attempts, result.status_code) == (2, 503)


async def test_responses_mode_keeps_the_503_on_the_refusal() -> None:
    """fail_on_http_error=False: the refusal still carries the last 503 response."""
    handler = _Always503()
    async with _client(handler, fail_on_http_error=False) as client:
        result = await client.get("/x")
    error = result.exception
    assert error is not None and error.code is ErrorCode.CIRCUIT_OPEN
    assert error.details["attempts"] == 2 and error.details["last_error"] is None
    assert error.response is not None and error.response.status_code == 503
