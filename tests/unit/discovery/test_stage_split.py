"""The discovery stage's split steps (enter/leave/abandon/take_over), as the client runs them."""

from __future__ import annotations

import asyncio

import pytest

from flext_api._errors import ErrorCode, FlextApiError
from flext_api._models import HttpRequest, HttpResponse
from flext_api._result import FlextResult
from flext_api.client._discovery import DiscoveryPlugin
from flext_api.discovery import LeastRequest, ServiceInstance, ServiceRegistry
from flext_api.discovery._stage import hash_on


async def _plugin(n: int = 3, **kwargs: object) -> DiscoveryPlugin:
    registry = ServiceRegistry(**kwargs)  # type: ignore[arg-type]
    for k in range(n):
        inst = ServiceInstance(id=f"o{k}", name="orders", url=f"http://127.0.0.1:{9000 + k}")
        await registry.register("orders", inst)
    return DiscoveryPlugin(registry)


async def test_enter_points_the_request_at_an_instance() -> None:
    """enter() picks at once for a known service: the URL is the instance's, the host hinted."""
    plugin = await _plugin(1)
    request = HttpRequest("GET", "service://orders/a?b=1")
    token = plugin.enter(request)
    assert token is not None and token is not plugin
    assert request.url == "http://127.0.0.1:9000/a?b=1" and request.host == "127.0.0.1:9000"
    assert request.extensions["service_instance"] == "o0"


async def test_a_plain_url_passes_through() -> None:
    """A URL that is not service:// (and never was) is left alone by every step."""
    plugin = await _plugin()
    seen: list[str] = []

    async def call_next(request: HttpRequest) -> FlextResult[HttpResponse]:
        seen.append(request.url)
        return FlextResult(HttpResponse(200))

    assert (await plugin.handle(HttpRequest("GET", "http://x/"), call_next)).is_success
    assert seen == ["http://x/"]


async def test_an_unknown_service_is_taken_over_and_fails_with_the_request() -> None:
    """No cluster yet: enter() hands the call to the waiting path, which fails it."""
    plugin = DiscoveryPlugin(ServiceRegistry())
    request = HttpRequest("GET", "service://ghost/")
    assert plugin.enter(request) is plugin

    async def call_next(request: HttpRequest) -> FlextResult[HttpResponse]:
        raise AssertionError("not called")

    result = await plugin.handle(request, call_next)
    assert result.error_code is ErrorCode.CONNECT_ERROR
    assert result.exception is not None and result.exception.request is request


async def test_every_instance_down_is_taken_over() -> None:
    """A known service with no instance to pick goes the waiting way too."""
    plugin = await _plugin(1)
    (await plugin.registry.unregister("orders", "o0")).unwrap()
    assert plugin.registry.cluster("orders") is not None
    assert plugin.enter(HttpRequest("GET", "service://orders/")) is plugin


async def test_an_open_breaker_moves_on_and_all_open_return_the_last_refusal() -> None:
    """leave() on CIRCUIT_OPEN tries the other instances; all refusing: the refusal."""
    plugin = await _plugin(3)
    calls: list[str] = []

    async def refuse(request: HttpRequest) -> FlextResult[HttpResponse]:
        calls.append(request.url)
        return FlextResult.fail("open", code=ErrorCode.CIRCUIT_OPEN)

    result = await plugin.handle(HttpRequest("GET", "service://orders/"), refuse)
    assert result.error_code is ErrorCode.CIRCUIT_OPEN and len(set(calls)) == 3 == len(calls)


async def test_a_retry_avoids_the_instance_already_tried() -> None:
    """A second attempt of the same request (a retry) goes to another instance."""
    plugin = await _plugin(2)
    request = HttpRequest("GET", "service://orders/")
    first = plugin.enter(request)
    plugin.leave(request, first, FlextResult(HttpResponse(200)), lambda r: None)  # type: ignore[arg-type,return-value]
    tried = request.extensions["service_instance"]
    plugin.enter(request)
    assert request.extensions["service_instance"] != tried
    assert request.extensions["service_tried"] == {"o0", "o1"}


async def test_a_service_url_called_again_is_picked_as_the_first_call() -> None:
    """A repeat of a service URL (its split remembered): same path, same hashing key,
    the extension's key still first, and its retry still avoids the instance tried."""
    registry = ServiceRegistry(balancer="ring_hash")
    for k in range(5):
        inst = ServiceInstance(id=f"o{k}", name="orders", url=f"http://127.0.0.1:{9000 + k}")
        await registry.register("orders", inst)
    plugin = DiscoveryPlugin(registry, hash_key=hash_on("header:X-User"))

    def point(user: str, **extensions: str) -> HttpRequest:
        request = HttpRequest(
            "GET", "service://orders/p?q=1", headers={"X-User": user}, extensions=extensions
        )
        assert plugin.enter(request) not in (None, plugin)
        return request

    users = [f"u-{n}" for n in range(40)]
    first = {user: point(user).url for user in users}
    assert len(set(first.values())) > 1  # the header's key spreads the users
    for user in users:
        again = point(user)
        assert again.url == first[user] and again.url.endswith("/p?q=1")
        assert again.extensions["service_url"] == "service://orders/p?q=1"
        assert point("someone", hash_key=user).url == first[user]
    retried = point(users[0])
    plugin.enter(retried)
    assert retried.url != first[users[0]]


async def test_cancellation_releases_the_in_flight_count() -> None:
    """abandon(): a cancelled attempt still decrements least-request's in-flight count."""
    plugin = await _plugin(1, balancer="least_request")
    cluster = plugin.registry.cluster("orders")
    assert cluster is not None and isinstance(cluster.balancer, LeastRequest)
    in_flight = asyncio.Event()

    async def hang(request: HttpRequest) -> FlextResult[HttpResponse]:
        in_flight.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    task = asyncio.create_task(plugin.handle(HttpRequest("GET", "service://orders/"), hang))
    await asyncio.wait_for(in_flight.wait(), 30)
    assert cluster.balancer.in_flight("o0") == 1  # the call is counted while it runs
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cluster.balancer.in_flight("o0") == 0


@pytest.mark.parametrize("with_response", [True, False])
async def test_failures_feed_outlier_detection(with_response: bool) -> None:
    """5xx carried by failed results, and transport errors, eject the failing instance."""
    plugin = await _plugin(3)

    async def fail(request: HttpRequest) -> FlextResult[HttpResponse]:
        if with_response:
            error = FlextApiError.from_code(
                ErrorCode.HTTP_STATUS, "503", response=HttpResponse(503)
            )
        else:
            error = FlextApiError.from_code(ErrorCode.CONNECT_ERROR, "refused")
        return FlextResult(error=error)

    for _ in range(15):
        await plugin.handle(HttpRequest("GET", "service://orders/"), fail)
    services = plugin.registry.stats()["services"]["orders"]["instances"]
    assert [r["state"] for r in services].count("ejected") == 1
