"""EventBus: the seed's publish/subscribe, middleware, isolation, wildcards, typed events."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC
from typing import ClassVar

import pytest
from pydantic import BaseModel

from flext_api import Event, EventBus
from flext_api.composition import event_name


@dataclass
class OrderPlaced:
    order_id: int


class UserRenamed(BaseModel):
    event_name: ClassVar[str] = "user.renamed"
    user_id: int


async def test_seed_snippet_runs_both_handlers(capsys: pytest.CaptureFixture[str]) -> None:
    """The seed's logging middleware and two user.created handlers all see the event."""
    event_bus = EventBus()
    seen: list[str] = []

    async def logging_middleware(event: Event) -> Event:
        print(f"Event: {event.name} at {event.timestamp}")
        return event

    event_bus.add_middleware(logging_middleware)

    async def user_created_handler(event: Event) -> None:
        user = event.data["user"]
        seen.append(f"welcome {user['name']}")

    async def user_created_stats_handler(event: Event) -> None:
        seen.append("stats")

    event_bus.subscribe("user.created", user_created_handler)
    event_bus.subscribe("user.created", user_created_stats_handler)
    user = {"id": 1, "name": "Ada"}
    await event_bus.publish(Event("user.created", {"user": user}))
    assert sorted(seen) == ["stats", "welcome Ada"]
    assert capsys.readouterr().out.startswith("Event: user.created at ")


def test_event_has_utc_timestamp_and_unique_id() -> None:
    """An Event is stamped with an aware UTC time and a fresh id."""
    first, second = Event("a"), Event("a")
    assert first.timestamp.tzinfo is UTC
    assert first.id != second.id


async def test_handlers_run_concurrently() -> None:
    """Two handlers of one event run at the same time (each waits for the other)."""
    bus = EventBus()
    first_started, second_started = asyncio.Event(), asyncio.Event()

    async def first(event: Event) -> None:
        first_started.set()
        await second_started.wait()

    async def second(event: Event) -> None:
        second_started.set()
        await first_started.wait()

    bus.subscribe("x", first)
    bus.subscribe("x", second)
    await asyncio.wait_for(bus.publish(Event("x")), 10)
    assert first_started.is_set() and second_started.is_set()


async def test_failing_handler_is_isolated_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A handler raising is logged; the other handler still runs and publish succeeds."""
    bus = EventBus()
    seen: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe("x", broken)
    bus.subscribe("x", lambda e: seen.append(e.name))
    result = await bus.publish(Event("x"))
    assert result.is_success
    assert seen == ["x"]
    assert "event handler failed" in caplog.text


async def test_middleware_can_drop_an_event() -> None:
    """A middleware returning None drops the event before any handler."""
    bus = EventBus()
    seen: list[str] = []
    bus.add_middleware(lambda e: None if e.data.get("spam") else e)
    bus.subscribe("x", lambda e: seen.append("handled"))
    result = await bus.publish(Event("x", {"spam": True}))
    assert result.is_success and result.value is None
    assert seen == []


async def test_middleware_can_transform_an_event() -> None:
    """A middleware may return a different event, which the handlers then receive."""
    bus = EventBus()
    seen: list[object] = []
    bus.add_middleware(lambda e: Event(e.name, {**e.data, "enriched": True}))
    bus.subscribe("x", lambda e: seen.append(e.data))
    await bus.publish(Event("x", {"a": 1}))
    assert seen == [{"a": 1, "enriched": True}]


async def test_failing_middleware_stops_delivery_with_a_failure() -> None:
    """A middleware raising is logged and publish returns a failure; no handler runs."""
    bus = EventBus()
    seen: list[str] = []

    def broken(event: Event) -> Event:
        raise ValueError("bad")

    bus.add_middleware(broken)
    bus.subscribe("x", lambda e: seen.append("handled"))
    result = await bus.publish(Event("x"))
    assert result.is_failure
    assert "event middleware failed" in (result.error or "")
    assert seen == []


async def test_wildcard_subscription_matches_names() -> None:
    """'user.*' receives user.created and user.deleted but not order.created."""
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe("user.*", lambda e: seen.append(e.name))
    for name in ("user.created", "order.created", "user.deleted"):
        await bus.publish(Event(name))
    assert seen == ["user.created", "user.deleted"]


async def test_typed_dataclass_event_reaches_class_subscribers() -> None:
    """Publishing a dataclass instance reaches handlers subscribed to its class."""
    bus = EventBus()
    seen: list[int] = []

    @bus.on(OrderPlaced)
    def handle(event: OrderPlaced) -> None:
        seen.append(event.order_id)

    await bus.publish(OrderPlaced(order_id=42))
    assert seen == [42]


async def test_pydantic_event_name_reaches_name_subscribers() -> None:
    """A pydantic event with event_name is delivered to name and wildcard subscribers."""
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe("user.renamed", lambda e: seen.append("name"))
    bus.subscribe("user.*", lambda e: seen.append("wildcard"))
    await bus.publish(UserRenamed(user_id=1))
    assert sorted(seen) == ["name", "wildcard"]
    assert event_name(UserRenamed(user_id=1)) == "user.renamed"


def test_unsubscribe_removes_one_handler() -> None:
    """unsubscribe() removes the subscription and says whether it existed."""
    bus = EventBus()

    def handler(event: Event) -> None:
        pass

    bus.subscribe("a.*", handler)
    bus.subscribe("b", handler)
    bus.subscribe(OrderPlaced, handler)
    assert bus.unsubscribe("a.*", handler)
    assert bus.unsubscribe("b", handler)
    assert bus.unsubscribe(OrderPlaced, handler)
    assert not bus.unsubscribe("b", handler)
    assert bus.handlers_for(Event("a.x")) == ()


def test_non_callable_handler_is_refused() -> None:
    """subscribe() with something that is not callable raises a TypeError."""
    with pytest.raises(TypeError, match="not callable"):
        EventBus().subscribe("x", "nope")  # type: ignore[arg-type]


def test_repr_counts_handlers() -> None:
    """The repr tells the handler and middleware counts and the transport."""
    bus = EventBus()
    bus.subscribe("x", print)
    assert repr(bus) == "<EventBus [1 handlers | 0 middleware | local]>"


async def test_failing_async_handler_is_returned_by_dispatch() -> None:
    """dispatch() returns the error of an async handler; the sync one still ran."""
    bus = EventBus()
    seen: list[str] = []

    async def broken(event: Event) -> None:
        raise LookupError("gone")

    bus.subscribe("x", broken)
    bus.subscribe("x", lambda e: seen.append("sync"))
    errors = await bus.dispatch(Event("x"))
    assert [type(e) for e in errors] == [LookupError]
    assert seen == ["sync"]


# -- bad inputs -------------------------------------------------------------------------
def _noop(event: object) -> None:
    return None


@pytest.mark.parametrize("key", [5, None, b"user.created", ["user.created"]])
def test_subscribe_refuses_what_is_neither_a_name_nor_a_class(key: object) -> None:
    """subscribe(5, h) raises a TypeError that says a str name or a class is expected."""
    bus = EventBus()
    with pytest.raises(TypeError, match=r"an event name \(a str.*or an event class"):
        bus.subscribe(key, _noop)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="or an event class"):
        bus.unsubscribe(key, _noop)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="or an event class"):
        bus.on(key)  # type: ignore[arg-type]
    assert bus.handlers_for(Event("user.created")) == ()


def test_empty_event_name_is_refused() -> None:
    """subscribe(""), unsubscribe("") and on("") raise ValueError: no event has that name."""
    bus = EventBus()
    for call in (
        lambda: bus.subscribe("", _noop),
        lambda: bus.unsubscribe("", _noop),
        lambda: bus.on(""),
    ):
        with pytest.raises(ValueError, match="an event name cannot be empty"):
            call()
    assert repr(bus).startswith("<EventBus [0 handlers")


def test_non_callable_middleware_is_refused_when_added() -> None:
    """add_middleware(5) raises TypeError at once instead of failing every publish."""
    bus = EventBus()
    with pytest.raises(TypeError, match="event middleware 5 is not callable"):
        bus.add_middleware(5)  # type: ignore[arg-type]


async def test_failing_middleware_result_keeps_the_exception() -> None:
    """The failure publish returns holds the middleware's exception as its cause."""
    bus = EventBus()
    boom = KeyError("missing")

    def broken(event: Event) -> Event:
        raise boom

    bus.add_middleware(broken)
    result = await bus.publish(Event("x"))
    assert result.exception is not None and result.exception.__cause__ is boom


def test_event_refuses_a_name_that_is_not_a_str() -> None:
    """Event(5) raises TypeError: a non-str name would never match a subscription."""
    with pytest.raises(TypeError, match="an Event's name must be a str, got int 5"):
        Event(5)  # type: ignore[arg-type]


def test_event_refuses_data_that_is_not_a_mapping() -> None:
    """Event("x", [1, 2]) raises a TypeError naming what data must be."""
    for data in ([1, 2], 5, "ab"):
        with pytest.raises(TypeError, match="an Event's data must be a mapping"):
            Event("x", data)  # type: ignore[arg-type]
    assert Event("x", [("id", 7)]).data == {"id": 7}  # type: ignore[arg-type]


# -- cancellation: only the publisher's own cancellation propagates ----------------------
async def _awaits_a_cancelled_future(event: object) -> None:
    """A handler awaiting a future that another task cancelled: CancelledError, a failure."""
    future = asyncio.get_running_loop().create_future()
    future.cancel()
    await future


async def test_handler_raising_cancelled_error_is_isolated_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stray CancelledError is the handler's failure: logged, publish succeeds, others run."""
    bus = EventBus()
    seen: list[str] = []

    async def slow(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append("slow")

    bus.subscribe("x", slow)
    bus.subscribe("x", _awaits_a_cancelled_future)
    result = await bus.publish(Event("x"))
    assert result.is_success
    assert seen == ["slow"]  # finished before publish returned, not after
    assert "event handler failed" in caplog.text


async def test_single_or_sync_handler_raising_cancelled_error_is_returned_by_dispatch() -> None:
    """One async handler (awaited in place) or a sync one raising CancelledError: returned."""

    def sync_cancel(event: Event) -> None:
        raise asyncio.CancelledError

    for handler in (_awaits_a_cancelled_future, sync_cancel):
        bus = EventBus()
        bus.subscribe("x", handler)
        errors = await bus.dispatch(Event("x"))
        assert [type(e) for e in errors] == [asyncio.CancelledError]


async def test_cancelling_the_publisher_still_cancels_publish_and_its_handlers() -> None:
    """publish in a task that is cancelled raises CancelledError; its handlers are cancelled."""
    bus = EventBus()
    started = asyncio.Event()
    outcomes: list[str] = []

    async def waits(event: Event) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcomes.append("cancelled")
            raise

    for handlers in ([waits], [waits, waits]):  # awaited in place, and under gather
        bus = EventBus()
        for handler in handlers:
            bus.subscribe("x", handler)
        started.clear()
        task = asyncio.create_task(bus.publish(Event("x")))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert outcomes == ["cancelled"] * 3


async def test_middleware_raising_a_stray_cancelled_error_is_a_failed_publish() -> None:
    """A middleware's CancelledError (its task not cancelled) is a failure, not a raise."""
    bus = EventBus()
    bus.add_middleware(_awaits_a_cancelled_future)
    result = await bus.publish(Event("x"))
    assert result.is_failure and "event middleware failed" in (result.error or "")


@dataclass
class Batch:
    """A typed event that is falsy when empty."""

    items: list[int]

    def __len__(self) -> int:
        return len(self.items)


async def test_falsy_event_passes_a_pass_through_middleware() -> None:
    """Only None drops an event: an empty (falsy) typed event still reaches its handlers."""
    bus = EventBus()
    seen: list[Batch] = []
    bus.add_middleware(lambda e: e)
    bus.subscribe(Batch, seen.append)
    result = await bus.publish(Batch([]))
    assert result.value == Batch([])
    assert seen == [Batch([])]


async def test_an_event_subclass_reaches_the_handlers_of_its_class() -> None:
    """An Event subclass subscribed by class got nothing: the class lookup was skipped
    for every Event instance. It now reaches its class's handlers and its name's."""

    class UserCreated(Event):
        pass

    bus = EventBus()
    got: list[str] = []
    bus.subscribe(UserCreated, lambda e: got.append(f"class:{e.name}"))
    bus.subscribe("user.created", lambda e: got.append(f"name:{e.name}"))
    await bus.publish(UserCreated("user.created", {"id": 1}))
    await bus.publish(Event("user.created", {"id": 2}))
    assert sorted(got) == ["class:user.created", "name:user.created", "name:user.created"]
