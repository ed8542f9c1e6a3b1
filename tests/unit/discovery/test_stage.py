"""The client's discovery stage, driven directly with a fake next stage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from flext_api._errors import ErrorCode, FlextApiError
from flext_api._models import HttpRequest, HttpResponse
from flext_api._result import FlextResult
from flext_api.client import FlextApiClient
from flext_api.client._discovery import DiscoveryPlugin
from flext_api.discovery import (
    LeastRequest,
    OutlierConfig,
    PeakEwma,
    ServiceInstance,
    ServiceRegistry,
)
from flext_api.discovery._stage import DiscoveryStage, hash_on, split_service_url
from flext_api.testing import FakeClock
from flext_api.transports import MockTransport

Next = Callable[[HttpRequest], Awaitable[FlextResult[HttpResponse]]]


async def _registry(n: int = 3, **kwargs: object) -> ServiceRegistry:
    registry = ServiceRegistry(**kwargs)  # type: ignore[arg-type]
    for k in range(n):
        inst = ServiceInstance(id=f"o{k}", name="orders", url=f"http://127.0.0.1:{9000 + k}")
        await registry.register("orders", inst)
    return registry


def _answer(status: int = 200) -> Next:
    async def call_next(request: HttpRequest) -> FlextResult[HttpResponse]:
        return FlextResult(HttpResponse(status, content=request.url.encode()))

    return call_next


def test_split_service_url() -> None:
    """Name and the rest (path, query) are split at the first '/', '?' or '#'."""
    assert split_service_url("service://orders/a/b?x=1") == ("orders", "/a/b?x=1")
    assert split_service_url("service://orders?x=1") == ("orders", "?x=1")
    assert split_service_url("service://orders") == ("orders", "")
    with pytest.raises(ValueError, match="not a service:// URL"):
        split_service_url("http://orders/a")


async def test_plain_urls_pass_through() -> None:
    """A request that is not service:// reaches the next stage unchanged."""
    stage = DiscoveryStage(await _registry())
    result = await stage(HttpRequest("GET", "http://example.test/x"), _answer())
    assert result.value.content == b"http://example.test/x"


async def test_service_url_is_rewritten_to_an_instance() -> None:
    """service://orders/x goes to an instance's URL with the same path."""
    stage = DiscoveryStage(await _registry(1))
    request = HttpRequest("GET", "service://orders/x?y=1")
    result = await stage(request, _answer())
    assert result.value.content == b"http://127.0.0.1:9000/x?y=1"
    assert request.extensions["service_instance"] == "o0"


async def test_header_hash_key_pins_an_instance() -> None:
    """With ring hashing on a header, one user always reaches one instance."""
    stage = DiscoveryStage(
        await _registry(5, balancer="ring_hash"), hash_key=hash_on("header:X-User")
    )
    urls = set()
    for _ in range(8):
        request = HttpRequest("GET", "service://orders/x", headers={"X-User": "u-7"})
        urls.add((await stage(request, _answer())).value.content)
    assert len(urls) == 1


async def test_cookie_hash_key_reads_the_cookie() -> None:
    """hash_on("cookie:sid") reads the cookie; a missing or broken cookie gives no key."""
    key = hash_on("cookie:sid")
    assert key(HttpRequest("GET", "http://h/", headers={"Cookie": "a=1; sid=abc"})) == "abc"
    assert key(HttpRequest("GET", "http://h/", headers={"Cookie": "a=1"})) is None
    assert key(HttpRequest("GET", "http://h/")) is None
    assert key(HttpRequest("GET", "http://h/", headers={"Cookie": 'sid="x'})) is None


def test_bad_hash_spec_is_a_config_error() -> None:
    """Only header:NAME and cookie:NAME are understood."""
    with pytest.raises(FlextApiError) as info:
        hash_on("query:x")
    assert info.value.code is ErrorCode.CONFIG_ERROR


async def test_open_breaker_moves_to_another_instance() -> None:
    """CIRCUIT_OPEN from one instance: the stage tries another at once."""
    stage = DiscoveryStage(await _registry(2))

    async def call_next(request: HttpRequest) -> FlextResult[HttpResponse]:
        if request.url.startswith("http://127.0.0.1:9000"):
            return FlextResult.fail("open", code=ErrorCode.CIRCUIT_OPEN)
        return FlextResult(HttpResponse(200))

    results = [await stage(HttpRequest("GET", "service://orders/"), call_next) for _ in range(4)]
    assert all(r.is_success for r in results)


async def test_every_breaker_open_returns_the_last_refusal() -> None:
    """All instances refuse: the result is the CIRCUIT_OPEN failure, once per instance."""
    stage = DiscoveryStage(await _registry(3))
    calls: list[str] = []

    async def call_next(request: HttpRequest) -> FlextResult[HttpResponse]:
        calls.append(request.url)
        return FlextResult.fail("open", code=ErrorCode.CIRCUIT_OPEN)

    result = await stage(HttpRequest("GET", "service://orders/"), call_next)
    assert result.error_code is ErrorCode.CIRCUIT_OPEN and len(set(calls)) == 3


async def test_unknown_service_fails_with_the_request_attached() -> None:
    """No instance: CONNECT_ERROR carrying the request."""
    stage = DiscoveryStage(ServiceRegistry())
    request = HttpRequest("GET", "service://ghost/")
    result = await stage(request, _answer())
    assert result.error_code is ErrorCode.CONNECT_ERROR
    assert result.exception is not None and result.exception.request is request


async def test_cancelled_call_releases_the_in_flight_count() -> None:
    """A cancelled attempt still decrements least-request's in-flight count."""
    registry = await _registry(1, balancer="least_request")
    stage = DiscoveryStage(registry)
    cluster = registry.cluster("orders")
    assert cluster is not None and isinstance(cluster.balancer, LeastRequest)
    in_flight = asyncio.Event()

    async def hang(request: HttpRequest) -> FlextResult[HttpResponse]:
        in_flight.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    task = asyncio.create_task(stage(HttpRequest("GET", "service://orders/"), hang))
    await asyncio.wait_for(in_flight.wait(), 30)
    assert cluster.balancer.in_flight("o0") == 1  # the call is counted while it runs
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cluster.balancer.in_flight("o0") == 0


async def test_status_failures_feed_outlier_detection() -> None:
    """5xx responses carried by failed results count for the instance."""
    registry = await _registry(3)
    stage = DiscoveryStage(registry)

    async def fail(request: HttpRequest) -> FlextResult[HttpResponse]:
        response = HttpResponse(503)
        return FlextResult(
            error=FlextApiError.from_code(ErrorCode.HTTP_STATUS, "503", response=response)
        )

    for _ in range(15):
        await stage(HttpRequest("GET", "service://orders/"), fail)
    states = [r["state"] for r in registry.stats()["services"]["orders"]["instances"]]
    assert states.count("ejected") == 1


async def test_settings_and_repr_name_the_registry() -> None:
    """settings() carries the registry's description; repr names it."""
    stage = DiscoveryStage(await _registry(1))
    assert stage.settings()["registry"]["backend"] == "memory"
    assert "ServiceRegistry" in repr(stage)


async def test_retry_of_the_same_request_goes_to_another_instance() -> None:
    """A second attempt of one request (as retry sends it) avoids the instance tried."""
    stage = DiscoveryStage(await _registry(3))
    request = HttpRequest("GET", "service://orders/x")
    first = (await stage(request, _answer())).value.content
    second = (await stage(request, _answer())).value.content
    third = (await stage(request, _answer())).value.content
    assert len({first, second, third}) == 3
    assert request.extensions["service_tried"] == {"o0", "o1", "o2"}


async def test_first_attempt_allocates_no_tried_set() -> None:
    """A single attempt records its instance only; the tried set comes with a retry."""
    stage = DiscoveryStage(await _registry(2))
    request = HttpRequest("GET", "service://orders/x")
    await stage(request, _answer())
    assert "service_tried" not in request.extensions
    assert request.extensions["service_instance"] in {"o0", "o1"}


async def test_new_instance_takes_traffic_at_once_through_the_stage() -> None:
    """An instance registered between two calls is in the very next round of picks."""
    registry = await _registry(1)
    stage = DiscoveryStage(registry)
    await stage(HttpRequest("GET", "service://orders/"), _answer())
    late = ServiceInstance(id="late", name="orders", url="http://127.0.0.1:9100")
    (await registry.register("orders", late)).unwrap()
    seen = {
        (await stage(HttpRequest("GET", "service://orders/"), _answer())).value.content
        for _ in range(2)
    }
    assert b"http://127.0.0.1:9100/" in seen


async def test_unregistered_instance_gets_no_call_through_the_stage() -> None:
    """After unregister no attempt goes to the removed instance."""
    registry = await _registry(3)
    stage = DiscoveryStage(registry)
    for _ in range(3):
        await stage(HttpRequest("GET", "service://orders/"), _answer())
    (await registry.unregister("orders", "o1")).unwrap()
    seen = {
        (await stage(HttpRequest("GET", "service://orders/"), _answer())).value.content
        for _ in range(12)
    }
    assert b"http://127.0.0.1:9001/" not in seen and len(seen) == 2


async def test_success_after_a_failure_streak_resets_it() -> None:
    """A success between 5xx streaks resets the count: two streaks of 4 eject nobody."""
    registry = await _registry(1)
    stage = DiscoveryStage(registry)
    for status in [503] * 4 + [200] + [503] * 4:
        await stage(HttpRequest("GET", "service://orders/"), _answer(status))
    record = registry.tracker.get("o0", service="orders")
    assert record.ejected_until is None and record.consecutive_5xx == 4


async def test_successes_fill_the_failure_ratio_window() -> None:
    """With a failure ratio configured every success is counted in the host's window."""
    registry = await _registry(2, outlier=OutlierConfig(failure_ratio=0.5, min_requests=4))
    stage = DiscoveryStage(registry)
    for _ in range(6):
        await stage(HttpRequest("GET", "service://orders/"), _answer(200))
    assert [len(registry.tracker.get(f"o{k}", service="orders").window) for k in range(2)] == [3, 3]


async def test_client_runs_the_stage_unguarded_and_names_it_when_it_raises() -> None:
    """In a client the stage is a built-in (no guard frame); a raise is PLUGIN_ERROR 'discovery'."""

    def broken_key(request: HttpRequest) -> str | None:
        raise RuntimeError("boom")

    async def echo(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, content=request.url.encode())

    registry = await _registry(1)
    async with FlextApiClient(
        "service://orders", registry=registry, transport=MockTransport(echo)
    ) as client:
        plugin = client.plugins.get("discovery")
        assert isinstance(plugin, DiscoveryPlugin) and plugin.guarded is False
        assert (await client.get("/ok")).value.content == b"http://127.0.0.1:9000/ok"
        plugin._hash_key = broken_key
        result = await client.get("/x")
    assert result.error_code is ErrorCode.PLUGIN_ERROR
    assert result.exception is not None and result.exception.details["plugin"] == "discovery"


async def test_latency_reaches_the_balancer_on_a_separate_client_clock() -> None:
    """Stage and registry on different clocks: latency is read on the stage's own clock."""
    stage_clock, registry_clock = FakeClock(), FakeClock()
    registry = await _registry(1, balancer=lambda: PeakEwma(clock=registry_clock))
    registry_clock.advance(100.0)
    stage = DiscoveryStage(registry, clock=stage_clock)

    async def slow(request: HttpRequest) -> FlextResult[HttpResponse]:
        stage_clock.advance(0.25)
        return FlextResult(HttpResponse(200))

    await stage(HttpRequest("GET", "service://orders/"), slow)
    cluster = registry.cluster("orders")
    assert cluster is not None and isinstance(cluster.balancer, PeakEwma)
    assert cluster.balancer.latency("o0") == 0.25


def test_a_new_client_clock_updates_the_one_reading_shortcut() -> None:
    """When the client hands the plugin another clock, the stage stops sharing readings."""
    plugin = DiscoveryPlugin(ServiceRegistry())
    plugin.use_clock(FakeClock())
    assert plugin._one_clock is False


async def test_client_takes_a_service_url_in_any_case_of_scheme_and_refuses_a_port() -> None:
    """``SERVICE://`` is ``service://``; ``service://orders:80`` names no service and is
    refused before any attempt (it used to be retried as an unknown service)."""
    registry = await _registry(1)
    transport = MockTransport(lambda request: HttpResponse(200))
    async with FlextApiClient(registry=registry, transport=transport) as client:
        assert (await client.get("SERVICE://orders/x")).is_success
        assert [r.url for r in transport.requests] == ["http://127.0.0.1:9000/x"]
        refused = await client.get("service://orders:80/x")
    assert refused.error_code is ErrorCode.INVALID_REQUEST
    assert "does not name a service" in (refused.error or "")
    assert len(transport.requests) == 1
    await registry.aclose()


async def test_a_request_never_sent_is_no_outcome_of_its_instance() -> None:
    """A request whose deadline passed before the transport sent it says nothing of the
    instance: it does not count in its failure window (nor toward an ejection)."""
    from flext_api._errors import NOT_SENT

    registry = await _registry(1, outlier=OutlierConfig(failure_ratio=0.5, min_requests=4))
    stage = DiscoveryStage(registry)

    async def never_sent(request: HttpRequest) -> FlextResult[HttpResponse]:
        error = FlextApiError.from_code(ErrorCode.DEADLINE_EXCEEDED, "deadline passed")
        error.details["reason"] = NOT_SENT
        return FlextResult(error=error)

    for _ in range(6):
        result = await stage(HttpRequest("GET", "service://orders/"), never_sent)
        assert result.error_code is ErrorCode.DEADLINE_EXCEEDED
    record = registry.tracker.get("o0", service="orders")
    assert (len(record.window), record.consecutive_gateway) == (0, 0)
