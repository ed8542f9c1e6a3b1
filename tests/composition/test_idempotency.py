"""Idempotency: a handler's effect runs once per event id, whatever the deliveries."""

from __future__ import annotations

import io

import pytest

from flext_api.composition import (
    Event,
    EventBus,
    Idempotency,
    MemoryIdempotencyStore,
    RedisIdempotencyStore,
    current_delivery,
    event_key,
)
from flext_api.testing import FakeClock
from tests.server.helpers import build_app, serve


async def test_second_delivery_of_an_event_is_skipped_and_counted() -> None:
    """The same event id twice runs the handler once and counts one duplicate."""
    once = Idempotency()
    effects: list[str] = []
    handler = once(lambda e: effects.append(e.id))
    event = Event("job")
    await handler(event)
    await handler(Event("job", id=event.id, attempt=2))
    assert effects == [event.id]
    assert once.duplicates == 1


async def test_failed_handler_is_not_marked_done() -> None:
    """A handler that raised runs again on the next delivery."""
    once = Idempotency()
    calls: list[int] = []

    async def flaky(event: Event) -> None:
        calls.append(event.attempt)
        if event.attempt == 1:
            raise RuntimeError("first try fails")

    handler = once(flaky)
    event = Event("job")
    try:
        await handler(event)
    except RuntimeError:
        pass
    await handler(Event("job", id=event.id, attempt=2))
    assert calls == [1, 2]


async def test_done_keys_expire_after_ttl() -> None:
    """After ttl the same key runs again (the store forgets it)."""
    clock = FakeClock()
    once = Idempotency(MemoryIdempotencyStore(clock=clock), ttl=10)
    effects: list[int] = []
    handler = once(lambda e: effects.append(1))
    event = Event("job")
    await handler(event)
    clock.advance(11)
    await handler(event)
    assert effects == [1, 1]


async def test_each_handler_has_its_own_keys() -> None:
    """Two handlers wrapped by one Idempotency both run for the same event."""
    once = Idempotency()
    effects: list[str] = []

    def first(event: Event) -> None:
        effects.append("first")

    def second(event: Event) -> None:
        effects.append("second")

    event = Event("job")
    await once(first)(event)
    await once(second)(event)
    assert effects == ["first", "second"]


def test_typed_event_without_delivery_has_no_key() -> None:
    """A typed event handled locally has no delivery id, so it is never skipped."""
    assert current_delivery() is None
    assert event_key(object()) is None


async def test_factory_starts_and_stops_the_event_bus() -> None:
    """create_fastapi_app(event_bus=) exposes the bus as app.state.events."""
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe("ping", lambda e: seen.append(e.name))
    app = build_app(stream=io.StringIO(), event_bus=bus)

    @app.post("/ping")
    async def ping() -> str:
        await app.state.events.publish(Event("ping"))
        return "ok"

    async with serve(app) as client:
        await client.post("/ping", json={})
    assert seen == ["ping"]


# -- bad inputs -------------------------------------------------------------------------
async def test_key_that_is_not_text_is_refused_before_the_handler_runs() -> None:
    """A key function returning an int raises TypeError and the effect does not run."""
    seen: list[str] = []
    once = Idempotency(key=lambda event: 42)  # type: ignore[arg-type, return-value]
    handler = once(lambda event: seen.append("ran"))
    with pytest.raises(TypeError, match="must be a str, bytes or None, got int 42"):
        await handler(Event("x"))
    assert seen == []


async def test_bytes_key_is_used_as_its_utf8_text() -> None:
    """A bytes key works like the same key as str: the second delivery is skipped."""
    seen: list[str] = []
    keys = iter([b"order-7", "order-7"])
    once = Idempotency(key=lambda event: next(keys))  # type: ignore[arg-type, return-value]
    handler = once(lambda event: seen.append("ran"))
    await handler(Event("x"))
    await handler(Event("x"))
    assert seen == ["ran"] and once.duplicates == 1


def test_bad_ttl_store_or_handler_is_refused() -> None:
    """ttl <= 0 or not a number, a store without done/mark, a non-callable handler."""
    with pytest.raises(ValueError, match="ttl must be > 0 seconds, got 0"):
        Idempotency(ttl=0)
    with pytest.raises(ValueError, match="ttl must be > 0"):
        Idempotency(ttl=float("nan"))
    with pytest.raises(TypeError, match="ttl must be a number of seconds, got str"):
        Idempotency(ttl="60")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"needs done\(key\) and mark\(key, ttl\)"):
        Idempotency(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="wraps a callable handler, got 5"):
        Idempotency()(5)  # type: ignore[arg-type]


def test_redis_store_refuses_a_url_or_a_blocking_client() -> None:
    """RedisIdempotencyStore wants a redis.asyncio client: a URL or redis.Redis is a TypeError."""
    import redis

    with pytest.raises(TypeError, match="not a URL"):
        RedisIdempotencyStore("redis://127.0.0.1:6379/0")  # type: ignore[arg-type]
    blocking = redis.Redis()
    try:
        with pytest.raises(TypeError, match=r"got a blocking redis\.Redis"):
            RedisIdempotencyStore(blocking)  # type: ignore[arg-type]
    finally:
        blocking.close()
