"""SplitPlugin stages: run fused in shared frames, they behave as nested handle() frames."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flext_api import ErrorCode, FlextResult, HttpRequest, HttpResponse
from flext_api.client import FlextApiClient
from flext_api.client._plugin import CallNext, SplitPlugin, build_pipeline
from flext_api.transports import MockTransport


class Trail(SplitPlugin):
    """Records its steps in a shared trail; can answer, raise or take a slow path."""

    def __init__(
        self,
        name: str,
        trail: list[str],
        *,
        answer: bool = False,
        raise_in: str = "",
        again: bool = False,
        take: bool = False,
    ) -> None:
        self.take = take
        self.name = name
        self.trail = trail
        self.answer = answer
        self.raise_in = raise_in
        self.again = again

    def enter(self, request: HttpRequest) -> Any:
        self.trail.append(f"{self.name}>")
        if self.raise_in == "enter":
            raise KeyError(self.name)
        if self.answer:
            return FlextResult.ok(HttpResponse(299))
        if self.take:
            return self
        return self.name

    async def take_over(self, request: HttpRequest, call_next: CallNext) -> Any:
        self.trail.append(f"{self.name}:take")
        return await call_next(request)

    def leave(
        self,
        request: HttpRequest,
        token: Any,
        result: FlextResult[HttpResponse],
        call_next: CallNext,
    ) -> Any:
        assert token == self.name
        self.trail.append(f"<{self.name}")
        if self.raise_in == "leave":
            raise KeyError(self.name)
        if self.again:
            return self._again(request, call_next)
        return result

    async def _again(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        self.trail.append(f"{self.name}:again")
        return await call_next(request)

    def abandon(self, token: Any) -> None:
        self.trail.append(f"{self.name}:abandon")


def _client(*plugins: Any, handler: Any = None) -> FlextApiClient:
    return FlextApiClient(
        "http://svc",
        plugins=list(plugins),
        transport=MockTransport(handler or (lambda r: HttpResponse(200))),
        default_plugins=False,
    )


@pytest.mark.parametrize("count", [1, 2, 3, 5])
async def test_enters_in_order_and_leaves_in_reverse(count: int) -> None:
    """Any number of split stages run as nested frames would, first listed outermost."""
    trail: list[str] = []
    names = [f"s{i}" for i in range(count)]
    async with _client(*(Trail(n, trail) for n in names)) as client:
        assert (await client.get("/")).value.status_code == 200
    assert trail == [f"{n}>" for n in names] + [f"<{n}" for n in reversed(names)]


async def test_an_answer_from_enter_skips_the_rest_and_is_left_by_the_outer_stages() -> None:
    """A result from enter() is the inner call's result: outer stages leave, inner never run."""
    trail: list[str] = []
    transport = MockTransport(lambda r: HttpResponse(200))
    client = FlextApiClient(
        "http://svc",
        plugins=[Trail("a", trail), Trail("b", trail, answer=True), Trail("c", trail)],
        transport=transport,
        default_plugins=False,
    )
    assert (await client.get("/")).value.status_code == 299
    assert trail == ["a>", "b>", "<a"]
    assert transport.requests == []
    await client.aclose()


async def test_a_slow_path_calls_the_chain_below_its_stage() -> None:
    """An awaitable from leave() is awaited in place and may call the stages below again."""
    trail: list[str] = []
    async with _client(Trail("a", trail, again=True), Trail("b", trail)) as client:
        assert (await client.get("/")).is_success
    assert trail == ["a>", "b>", "<b", "<a", "a:again", "b>", "<b"]


@pytest.mark.parametrize(
    ("raiser", "where", "expected"),
    [
        ("b", "enter", ["a>", "b>", "a:abandon"]),
        ("b", "leave", ["a>", "b>", "c>", "<c", "<b", "a:abandon"]),
        ("c", "enter", ["a>", "b>", "c>", "b:abandon", "a:abandon"]),
        ("a", "leave", ["a>", "b>", "c>", "<c", "<b", "<a"]),
    ],
)
async def test_an_exception_abandons_the_stages_entered_and_not_left(
    raiser: str, where: str, expected: list[str]
) -> None:
    """A stage raising: the stages around it abandon, and the call is PLUGIN_ERROR naming it."""
    trail: list[str] = []
    stages = [Trail(n, trail, raise_in=where if n == raiser else "") for n in ("a", "b", "c")]
    async with _client(*stages) as client:
        result = await client.get("/")
    assert result.error_code is ErrorCode.PLUGIN_ERROR
    assert result.exception is not None and result.exception.details["plugin"] == raiser
    assert trail == expected


async def test_cancellation_abandons_every_stage_and_propagates() -> None:
    """A cancelled transport call: every entered stage abandons, the cancellation goes on."""
    trail: list[str] = []
    started = asyncio.Event()

    async def hang(request: HttpRequest) -> HttpResponse:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    transport = MockTransport(hang)
    stages = [Trail(n, trail) for n in ("a", "b", "c")]
    client = FlextApiClient(
        "http://svc", plugins=stages, transport=transport, default_plugins=False
    )
    task = asyncio.ensure_future(client.get("/"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert trail == ["a>", "b>", "c>", "c:abandon", "b:abandon", "a:abandon"]
    await client.aclose()


async def test_split_stages_between_other_plugins_share_the_outer_guard() -> None:
    """Split stages below a middleware raise to the pipeline's one guard, which names them."""
    trail: list[str] = []

    async def outer(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        trail.append("mw")
        return await call_next(request)

    stages = [outer, Trail("a", trail), Trail("b", trail, raise_in="leave")]
    async with _client(*stages) as client:
        result = await client.get("/")
    assert result.error_code is ErrorCode.PLUGIN_ERROR
    assert result.exception is not None and result.exception.details["plugin"] == "b"
    assert trail == ["mw", "a>", "b>", "<b", "a:abandon"]


async def test_a_subclass_overriding_handle_runs_its_own_handle() -> None:
    """A SplitPlugin subclass with its own handle() is composed as any plugin."""
    trail: list[str] = []

    class Own(Trail):
        async def handle(
            self, request: HttpRequest, call_next: CallNext
        ) -> FlextResult[HttpResponse]:
            trail.append("own")
            return await call_next(request)

    async with _client(Own("x", trail), Trail("y", trail)) as client:
        assert (await client.get("/")).is_success
    assert trail == ["own", "y>", "<y"]


async def test_handle_runs_one_split_stage_alone() -> None:
    """SplitPlugin.handle: enter, the call, leave, as the fused frames do."""
    trail: list[str] = []
    stage = Trail("a", trail, again=True)

    async def endpoint(request: HttpRequest) -> FlextResult[HttpResponse]:
        trail.append("call")
        return FlextResult.ok(HttpResponse(200))

    result = await stage.handle(HttpRequest("GET", "http://svc/"), endpoint)
    assert result.is_success
    assert trail == ["a>", "call", "<a", "a:again", "call"]
    answered = Trail("b", trail, answer=True)
    assert (await answered.handle(HttpRequest("GET", "http://svc/"), endpoint)).is_success


async def test_handle_abandons_when_the_call_raises() -> None:
    """SplitPlugin.handle abandons its token when the rest of the chain raises."""
    trail: list[str] = []

    async def endpoint(request: HttpRequest) -> FlextResult[HttpResponse]:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await Trail("a", trail).handle(HttpRequest("GET", "http://svc/"), endpoint)
    assert trail == ["a>", "a:abandon"]


async def test_the_base_split_plugin_passes_the_call_through() -> None:
    """SplitPlugin's default steps do nothing: the endpoint's result comes back."""
    ok: FlextResult[HttpResponse] = FlextResult.ok(HttpResponse(204))

    async def endpoint(request: HttpRequest) -> FlextResult[HttpResponse]:
        return ok

    pipeline = build_pipeline([SplitPlugin()], endpoint)
    assert await pipeline(HttpRequest("GET", "http://svc/")) is ok


async def test_split_stages_above_a_middleware_run_around_it() -> None:
    """Split stages listed before a middleware enter before it and leave after it."""
    trail: list[str] = []

    async def inner(request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        trail.append("mw")
        return await call_next(request)

    async with _client(Trail("a", trail), Trail("b", trail), inner) as client:
        assert (await client.get("/")).is_success
    assert trail == ["a>", "b>", "mw", "<b", "<a"]


@pytest.mark.parametrize(("count", "taker"), [(1, 0), (2, 0), (2, 1), (3, 0), (3, 2)])
async def test_a_stage_that_takes_over_runs_the_rest_itself(count: int, taker: int) -> None:
    """enter() returning the stage: its take_over() runs the stages below, it never leaves."""
    trail: list[str] = []
    names = [f"s{i}" for i in range(count)]
    stages = [Trail(n, trail, take=i == taker) for i, n in enumerate(names)]
    async with _client(*stages) as client:
        assert (await client.get("/")).value.status_code == 200
    expected = [f"{n}>" for n in names[: taker + 1]] + [f"{names[taker]}:take"]
    expected += [f"{n}>" for n in names[taker + 1 :]]
    expected += [f"<{n}" for n in reversed(names) if n != names[taker]]
    assert trail == expected


async def test_a_single_stage_raising_in_leave_is_named() -> None:
    """One split stage alone: an exception in leave() is PLUGIN_ERROR, nothing abandoned."""
    trail: list[str] = []
    async with _client(Trail("a", trail, raise_in="leave")) as client:
        result = await client.get("/")
    assert result.error_code is ErrorCode.PLUGIN_ERROR
    assert trail == ["a>", "<a"]


@pytest.mark.parametrize(
    ("names", "answering", "expected"),
    [
        (["a"], "a", ["a>"]),
        (["a", "b"], "b", ["a>", "b>", "<a"]),
        (["a", "b"], "a", ["a>"]),
    ],
)
async def test_an_answer_in_any_frame_position_is_returned(
    names: list[str], answering: str, expected: list[str]
) -> None:
    """An answer from enter(), alone or first or second in a frame, is the call's result."""
    trail: list[str] = []
    async with _client(*(Trail(n, trail, answer=n == answering) for n in names)) as client:
        assert (await client.get("/")).value.status_code == 299
    assert trail == expected


async def test_two_stages_raising_are_named_by_their_frame() -> None:
    """Two split stages, the second raising in enter(): the first abandons, PLUGIN_ERROR."""
    trail: list[str] = []
    async with _client(Trail("a", trail), Trail("b", trail, raise_in="enter")) as client:
        result = await client.get("/")
    assert result.exception is not None and result.exception.details["plugin"] == "b"
    assert trail == ["a>", "b>", "a:abandon"]


async def test_handle_hands_the_call_to_take_over() -> None:
    """SplitPlugin.handle: enter() returning the plugin runs take_over(); the base one calls on."""
    trail: list[str] = []
    ok: FlextResult[HttpResponse] = FlextResult.ok(HttpResponse(204))

    async def endpoint(request: HttpRequest) -> FlextResult[HttpResponse]:
        trail.append("call")
        return ok

    taker = Trail("t", trail, take=True)
    assert await taker.handle(HttpRequest("GET", "http://svc/"), endpoint) is ok
    assert trail == ["t>", "t:take", "call"]
    assert await SplitPlugin().take_over(HttpRequest("GET", "http://svc/"), endpoint) is ok
