"""State "stale-if-error": a stale stored response stands in for a failed downstream call."""

from __future__ import annotations

import pytest

from flext_api import ErrorCode, FlextResult, HttpResponse
from flext_api.testing import FakeClock

from ._support import Origin, answer, failure, fixed, get, new_plugin


async def stored_then(
    clock: FakeClock, cache_control: str, then: Origin, *, wait: float = 20, **plugin_kwargs: object
) -> FlextResult[HttpResponse]:
    plugin = new_plugin(clock, **plugin_kwargs)
    await get(
        plugin, fixed(clock, [("Cache-Control", cache_control), ("ETag", '"e"')], body=b"good")
    )
    clock.advance(wait)
    return await get(plugin, then)


@pytest.mark.parametrize(
    "code",
    [
        ErrorCode.CIRCUIT_OPEN,
        ErrorCode.RETRIES_EXHAUSTED,
        ErrorCode.CONNECT_ERROR,
        ErrorCode.READ_TIMEOUT,
    ],
)
async def test_resilience_and_transport_failures_serve_stale(code: ErrorCode) -> None:
    """CIRCUIT_OPEN, RETRIES_EXHAUSTED and transport errors are answered with the stale body."""
    clock = FakeClock()
    result = await stored_then(
        clock, "max-age=10, stale-if-error=60", Origin(lambda r: failure(code))
    )
    assert result.value.cache_status == "stale"
    assert result.value.content == b"good"
    assert result.value.from_cache


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_serve_stale(status: int) -> None:
    """A 5xx answer to the revalidation is replaced by the stale response."""
    clock = FakeClock()
    result = await stored_then(
        clock, "max-age=10, stale-if-error=60", Origin(lambda r: answer(r, status))
    )
    assert result.value.cache_status == "stale"


async def test_5xx_as_success_also_serves_stale() -> None:
    """With fail_on_http_error off, a 503 arrives as a success and still triggers stale-if-error."""
    clock = FakeClock()
    origin = Origin(lambda r: FlextResult.ok(HttpResponse(503, request=r)))
    result = await stored_then(clock, "max-age=10, stale-if-error=60", origin)
    assert result.value.cache_status == "stale"


async def test_client_errors_do_not_serve_stale() -> None:
    """A 404 is an answer, not an outage: it is returned as is."""
    clock = FakeClock()
    result = await stored_then(
        clock, "max-age=10, stale-if-error=60", Origin(lambda r: answer(r, 404))
    )
    assert result.error_code is ErrorCode.HTTP_STATUS
    assert result.exception is not None and result.exception.response is not None
    assert result.exception.response.status_code == 404


async def test_outside_the_window_the_failure_is_returned() -> None:
    """Past stale-if-error seconds of staleness the failure comes through."""
    clock = FakeClock()
    down = Origin(lambda r: failure(ErrorCode.CIRCUIT_OPEN))
    result = await stored_then(clock, "max-age=10, stale-if-error=5", down, wait=20)
    assert result.error_code is ErrorCode.CIRCUIT_OPEN


async def test_must_revalidate_forbids_stale_on_error() -> None:
    """must-revalidate wins over stale-if-error."""
    clock = FakeClock()
    down = Origin(lambda r: failure(ErrorCode.CONNECT_ERROR))
    result = await stored_then(clock, "max-age=10, must-revalidate, stale-if-error=60", down)
    assert result.error_code is ErrorCode.CONNECT_ERROR


async def test_plugin_default_window_applies() -> None:
    """stale_if_error= on the plugin works when the response says nothing."""
    clock = FakeClock()
    down = Origin(lambda r: failure(ErrorCode.RETRIES_EXHAUSTED))
    result = await stored_then(clock, "max-age=10", down, stale_if_error=3600)
    assert result.value.cache_status == "stale"


async def test_without_any_window_the_failure_is_returned() -> None:
    """By default (no directive, no plugin window) failures are not masked."""
    clock = FakeClock()
    down = Origin(lambda r: failure(ErrorCode.CIRCUIT_OPEN))
    result = await stored_then(clock, "max-age=10", down)
    assert result.error_code is ErrorCode.CIRCUIT_OPEN


async def test_stale_without_validator_serves_on_failure() -> None:
    """A stale response with no validator (a plain miss) also stands in for a failure."""
    clock = FakeClock()
    plugin = new_plugin(clock, stale_if_error=60)
    await get(plugin, fixed(clock, [("Cache-Control", "max-age=10")], body=b"good"))
    clock.advance(20)
    result = await get(plugin, Origin(lambda r: failure(ErrorCode.CONNECT_ERROR)))
    assert result.value.content == b"good"
    assert result.value.cache_status == "stale"


async def test_request_stale_if_error_directive() -> None:
    """The request's own stale-if-error=N allows stale answers too."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    await get(
        plugin, fixed(clock, [("Cache-Control", "max-age=10"), ("ETag", '"e"')], body=b"good")
    )
    clock.advance(20)
    down = Origin(lambda r: failure(ErrorCode.CONNECT_ERROR))
    result = await get(plugin, down, headers=[("Cache-Control", "stale-if-error=60")])
    assert result.value.cache_status == "stale"
