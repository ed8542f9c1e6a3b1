"""The plugin pipeline: order, hooks, short-circuits and PLUGIN_ERROR."""

from __future__ import annotations

from typing import Any

import pytest

from flext_api import ErrorCode, FlextApiError, FlextResult, HttpRequest, HttpResponse
from flext_api.client import FlextApiClient, FlextApiPlugin
from flext_api.client._plugin import CallNext, build_pipeline, plugin_name
from flext_api.transports import MockTransport


def _ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, content=b"ok", headers={"X-Seen": request.headers.get("X-Tag", "")})


def _client(*plugins: Any, handler: Any = _ok) -> FlextApiClient:
    return FlextApiClient(
        "http://svc", plugins=list(plugins), transport=MockTransport(handler), default_plugins=False
    )


async def test_first_plugin_listed_is_outermost() -> None:
    """Middlewares run in list order on the way in and reverse order on the way out."""
    trail: list[str] = []

    def make(name: str) -> Any:
        async def mw(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
            trail.append(f"{name}>")
            result = await call_next(request)
            trail.append(f"<{name}")
            return result

        mw.__name__ = name
        return mw

    async with _client(make("a"), make("b"), make("c")) as client:
        assert (await client.get("/")).is_success
        assert client.describe() == ["a", "b", "c", "redirects", "transport:mock"]
    assert trail == ["a>", "b>", "c>", "<c", "<b", "<a"]


async def test_chain_is_built_once() -> None:
    """The composed pipeline object is the same for every request."""
    client = _client()
    first = client._pipeline
    await client.get("/")
    await client.get("/")
    assert client._pipeline is first
    await client.aclose()


class Tagger(FlextApiPlugin):
    """Adds a header before and a marker after."""

    def before_request(self, request: HttpRequest) -> None:
        request.headers.set("X-Tag", "tagged")

    async def after_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response.extensions["tagged"] = True
        return response


async def test_hooks_see_and_change_request_and_response() -> None:
    """Sync before_request and async after_response hooks both run."""
    async with _client(Tagger()) as client:
        response = (await client.get("/")).value
    assert response.headers["X-Seen"] == "tagged"
    assert response.extensions["tagged"] is True


class Refuser(FlextApiPlugin):
    """Refuses every request with a failed result."""

    async def before_request(self, request: HttpRequest) -> FlextResult[HttpRequest]:
        return FlextResult.fail("not allowed", code=ErrorCode.AUTH_ERROR)


async def test_failed_hook_short_circuits() -> None:
    """A failed result from a hook stops the call before the transport."""
    transport = MockTransport(_ok)
    client = FlextApiClient(
        "http://svc", plugins=[Refuser()], transport=transport, default_plugins=False
    )
    result = await client.get("/")
    assert result.error_code is ErrorCode.AUTH_ERROR
    assert transport.requests == []
    await client.aclose()


class Replacer(FlextApiPlugin):
    """Returns a replacement request wrapped in a success."""

    def before_request(self, request: HttpRequest) -> FlextResult[HttpRequest]:
        new = request.copy()
        new.headers.set("X-Tag", "replaced")
        return FlextResult.ok(new)


async def test_hook_may_return_a_successful_result_with_a_new_request() -> None:
    """An ok(request) from before_request replaces the request."""
    async with _client(Replacer()) as client:
        assert (await client.get("/")).value.headers["X-Seen"] == "replaced"


class Boom(FlextApiPlugin):
    """Raises from its hook."""

    name = "boom-plugin"

    def before_request(self, request: HttpRequest) -> None:
        raise KeyError("missing")


async def test_exception_in_plugin_is_plugin_error_naming_it() -> None:
    """An exception escaping a plugin becomes PLUGIN_ERROR with the plugin's name and cause."""
    async with _client(Boom()) as client:
        result = await client.get("/")
    err = result.exception
    assert result.error_code is ErrorCode.PLUGIN_ERROR
    assert err is not None and err.details["plugin"] == "boom-plugin"
    assert "boom-plugin" in err.message and isinstance(err.__cause__, KeyError)


async def test_flext_error_raised_in_plugin_keeps_its_code() -> None:
    """A plugin raising a FlextApiError reports that error, not PLUGIN_ERROR."""

    async def strict(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        raise FlextApiError.from_code(ErrorCode.RATE_LIMITED, "slow down")

    async with _client(strict) as client:
        assert (await client.get("/")).error_code is ErrorCode.RATE_LIMITED


class Recover(FlextApiPlugin):
    """Turns any error into a fallback response."""

    def on_error(self, request: HttpRequest, error: FlextApiError) -> HttpResponse:
        return HttpResponse(299, content=error.code.value.encode())


class ErrorToResult(FlextApiPlugin):
    """Turns errors into a different failure."""

    async def on_error(
        self, request: HttpRequest, error: FlextApiError
    ) -> FlextResult[HttpResponse]:
        return FlextResult.fail("mapped", code=ErrorCode.CANCELLED)


async def test_on_error_can_recover_or_replace_the_failure() -> None:
    """on_error may return a response (recovery) or a result (replacement)."""

    def refuse(request: HttpRequest) -> HttpResponse:
        raise ConnectionRefusedError("nope")

    async with _client(Recover(), handler=refuse) as client:
        assert (await client.get("/")).value.content == b"CONNECT_ERROR"
    async with _client(ErrorToResult(), handler=refuse) as client:
        assert (await client.get("/")).error_code is ErrorCode.CANCELLED
    async with _client(Tagger(), handler=refuse) as client:
        assert (await client.get("/")).error_code is ErrorCode.CONNECT_ERROR


class ResultAfter(FlextApiPlugin):
    """after_response returns a result."""

    def after_response(
        self, request: HttpRequest, response: HttpResponse
    ) -> FlextResult[HttpResponse]:
        return FlextResult.fail("rejected body", code=ErrorCode.DECODE_ERROR)


async def test_after_response_may_fail_the_call() -> None:
    """A failed result from after_response becomes the call's result."""
    async with _client(ResultAfter()) as client:
        assert (await client.get("/")).error_code is ErrorCode.DECODE_ERROR


def test_plugin_names() -> None:
    """Names come from `name`, the class, or the function."""

    async def fn(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        return await call_next(request)

    class Unnamed(FlextApiPlugin):
        pass

    assert plugin_name(Tagger()) == "Tagger"
    assert plugin_name(Boom()) == "boom-plugin"
    assert plugin_name(fn) == "fn"
    assert plugin_name(Unnamed()) == "Unnamed"
    assert repr(Unnamed()) == "<Unnamed>"


async def test_build_pipeline_with_no_plugins_is_the_endpoint() -> None:
    """An empty plugin list leaves the endpoint itself."""

    async def endpoint(request: HttpRequest) -> FlextResult[HttpResponse]:
        return FlextResult.ok(HttpResponse(204))

    assert build_pipeline([], endpoint) is endpoint


async def test_cancellation_propagates_through_plugins() -> None:
    """CancelledError is not turned into PLUGIN_ERROR."""
    import asyncio

    async def cancel(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        raise asyncio.CancelledError

    async with _client(cancel) as client:
        with pytest.raises(asyncio.CancelledError):
            await client.get("/")


class AttemptWatcher(FlextApiPlugin):
    """Sees the logical request once, and every attempt through its attempt stage."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        self.log.append("logical")
        return await call_next(request)

    def attempt_stage(self) -> Any:
        async def stage(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
            self.log.append("attempt")
            return await call_next(request)

        return stage


async def test_attempt_stage_sits_below_inner_plugins() -> None:
    """An attempt stage runs once per call_next of the plugins inside the watcher."""
    log: list[str] = []

    async def twice(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        await call_next(request)
        return await call_next(request)

    async with _client(AttemptWatcher(log), twice) as client:
        assert (await client.get("/")).is_success
        assert client.describe() == [
            "AttemptWatcher",
            "twice",
            "stage[attempt]",
            "redirects",
            "transport:mock",
        ]
    assert log == ["logical", "attempt", "attempt"]


async def test_repr_and_stats() -> None:
    """repr shows base URL, state and pool figures; stats counts requests and failures."""
    transport = MockTransport(lambda r: HttpResponse(500))
    client = FlextApiClient("http://svc", transport=transport, default_plugins=False)
    await client.get("/")
    assert client.stats() == {
        "requests": 1,
        "attempts": 1,
        "failed_attempts": 1,
        "in_flight": 0,
        "pool": {"transport": "mock", "max_connections": 0, "in_use": 0, "waiting": 0, "idle": 0},
    }
    assert repr(client) == (
        "<FlextApiClient base_url='http://svc' open [Requests: 1 sent, 0 attempts in flight | "
        "Pool: 0 in use, 0 idle]>"
    )
    await client.aclose()
    assert " closed " in repr(client)


class TrustedBoom(FlextApiPlugin):
    """An unguarded plugin (like the built-ins) that raises."""

    name = "trusted-boom"
    guarded = False

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        raise ZeroDivisionError("bug")


class TrustedPass(FlextApiPlugin):
    """An unguarded pass-through."""

    name = "trusted-pass"
    guarded = False

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        return await call_next(request)


async def test_unguarded_plugin_errors_are_still_named() -> None:
    """A plugin without its own guard is named by the shared guard, even under others."""

    async def outer_user(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        return await call_next(request)

    async with _client(outer_user, TrustedPass(), TrustedBoom()) as client:
        result = await client.get("/")
    assert result.error_code is ErrorCode.PLUGIN_ERROR
    assert result.exception is not None
    assert result.exception.details["plugin"] == "trusted-boom"
    assert isinstance(result.exception.__cause__, ZeroDivisionError)


async def test_guarded_middleware_function_is_named_from_its_code() -> None:
    """A function middleware that raises beneath an unguarded plugin is named by its code."""

    async def broken(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        raise LookupError("nope")

    async with _client(TrustedPass(), broken) as client:
        result = await client.get("/")
    assert result.exception is not None
    assert result.exception.details["plugin"] == "broken"


async def test_a_transport_bug_is_not_blamed_on_a_plugin() -> None:
    """An unexpected exception from a transport is UNEXPECTED_ERROR naming the transport."""

    def handler(request: HttpRequest) -> HttpResponse:
        raise RuntimeError("transport bug")

    async with _client(TrustedPass(), handler=handler) as client:
        result = await client.get("/")
    assert result.error_code is ErrorCode.UNEXPECTED_ERROR
    assert "transport 'mock' raised RuntimeError: transport bug" in (result.error or "")
