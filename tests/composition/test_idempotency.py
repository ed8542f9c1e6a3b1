"""Idempotency: a handler's effect runs once per event id, whatever the deliveries."""

from __future__ import annotations

import functools
import gc
import importlib.machinery
import io
import sys
import types
from typing import Any

import pytest
import redis.asyncio as aioredis

from flext_api._errors import ConfigError
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
from tests.servers.redis_server import RedisServer


async def test_second_delivery_of_an_event_is_skipped_and_counted() -> None:
    """The same event id twice runs the handler once and counts one duplicate."""
    once = Idempotency()
    effects: list[str] = []
    handler = once(lambda e: effects.append(e.id), name="record")
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
    handler = once(lambda e: effects.append(1), name="count")
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
    handler = once(lambda event: seen.append("ran"), name="ran")
    with pytest.raises(TypeError, match="must be a str, bytes or None, got int 42"):
        await handler(Event("x"))
    assert seen == []


async def test_bytes_key_is_used_as_its_utf8_text() -> None:
    """A bytes key works like the same key as str: the second delivery is skipped."""
    seen: list[str] = []
    keys = iter([b"order-7", "order-7"])
    once = Idempotency(key=lambda event: next(keys))  # type: ignore[arg-type, return-value]
    handler = once(lambda event: seen.append("ran"), name="ran")
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


# -- handler names: one key space per handler -------------------------------------------
class Notifier:
    """One object per channel; its send method is the handler."""

    def __init__(self, channel: str, effects: list[str]) -> None:
        self.channel, self.effects = channel, effects

    def send(self, event: Event) -> None:
        self.effects.append(f"{self.channel}:{event.data['id']}")


def notify(effects: list[str], event: Event, *, channel: str) -> None:
    effects.append(f"{channel}:{event.data['id']}")


def send_receipt(event: Event) -> None:
    """A plain module-level handler."""


class RecordingStore(MemoryIdempotencyStore):
    """Remembers the keys it was asked to mark."""

    def __init__(self) -> None:
        super().__init__()
        self.marked: list[str] = []

    async def mark(self, key: str, ttl: float) -> None:
        self.marked.append(key)
        await super().mark(key, ttl)


async def test_named_handlers_of_one_event_each_run_once() -> None:
    """Bound methods, partials and lambdas with their own names all run, once per event."""
    once = Idempotency()
    effects: list[str] = []
    bus = EventBus()
    handlers = [
        once(Notifier("email", effects).send, name="email"),
        once(Notifier("sms", effects).send, name="sms"),
        once(functools.partial(notify, effects, channel="slack"), name="slack"),
        once(functools.partial(notify, effects, channel="pager"), name="pager"),
        once(lambda e: effects.append(f"audit:{e.data['id']}"), name="audit"),
    ]
    for handler in handlers:
        bus.subscribe("order.created", handler)
    event = Event("order.created", {"id": 7})
    await bus.publish(event)
    await bus.publish(Event("order.created", {"id": 7}, id=event.id, attempt=2))
    assert sorted(effects) == ["audit:7", "email:7", "pager:7", "slack:7", "sms:7"]
    assert once.duplicates == 5


def test_two_objects_methods_may_not_share_the_default_name() -> None:
    """Notifier('email').send then Notifier('sms').send is a ConfigError asking for name=."""
    once = Idempotency()
    email, sms = Notifier("email", []), Notifier("sms", [])
    once(email.send)
    with pytest.raises(ConfigError, match=r"name 'tests\.composition\.test_idempotency\.Notifier"):
        once(sms.send)
    once(email.send)  # the same handler again (another event) keeps its name
    with pytest.raises(ConfigError, match="already used by"):
        once(sms.send, name=f"{__name__}.Notifier.send")


@pytest.mark.parametrize(
    "handler",
    [lambda event: None, functools.partial(notify, [], channel="x")],
    ids=["lambda", "partial"],
)
def test_handler_without_a_stable_name_needs_one(handler: Any) -> None:
    """A lambda or a partial is refused without name= (ConfigError) and taken with one."""
    once = Idempotency()
    with pytest.raises(ConfigError, match=r"pass a name: once\(handler, name="):
        once(handler)
    once(handler, name="explicit")


def test_callable_object_without_a_name_needs_one() -> None:
    """An instance with __call__ has no qualname: it needs name=."""

    class Handler:
        def __call__(self, event: Event) -> None:
            pass

    with pytest.raises(ConfigError, match="a callable Handler object"):
        Idempotency()(Handler())


async def test_default_name_is_module_and_qualname() -> None:
    """A function's keys are :namespace: + module.qualname + ':' + the event id."""
    store = RecordingStore()
    event = Event("order.created")
    await Idempotency(store, namespace="shop:")(send_receipt)(event)
    await Idempotency(store)(send_receipt, name="receipt")(event)
    assert store.marked == [
        f":shop%3A:tests.composition.test_idempotency.send_receipt:{event.id}",
        f"receipt:{event.id}",
    ]


async def test_handler_of_a_module_run_with_dash_m_is_named_after_that_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """python -m app.worker runs as __main__: the name uses app.worker, as imported elsewhere."""
    main = types.ModuleType("__main__")
    main.__spec__ = importlib.machinery.ModuleSpec("app.worker", None)
    monkeypatch.setitem(sys.modules, "__main__", main)

    def handle(event: Event) -> None:
        pass

    handle.__module__ = "__main__"
    store = RecordingStore()
    event = Event("job")
    await Idempotency(store)(handle)(event)
    expected = "app.worker.test_handler_of_a_module_run_with_dash_m_is_named_after_that_module"
    assert store.marked == [f"{expected}.<locals>.handle:{event.id}"]


def test_name_of_a_collected_handler_is_free_again() -> None:
    """Once a handler and its wrapper are gone, another handler may take its name."""
    once = Idempotency()
    wrapper = once(Notifier("email", []).send)
    del wrapper
    gc.collect()
    once(Notifier("sms", []).send)
    assert repr(once) == "<Idempotency MemoryIdempotencyStore [1 handlers | 0 duplicates]>"


def test_bad_name_is_refused() -> None:
    """name= must be a non-empty str."""
    with pytest.raises(TypeError, match="name must be a str, got 5"):
        Idempotency()(send_receipt, name=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name cannot be empty"):
        Idempotency()(send_receipt, name="")


@pytest.mark.integration
async def test_redis_store_dedupes_one_handler_across_processes(
    redis_server: RedisServer,
) -> None:
    """Two processes' wrappers of their own Notifier.send share keys: the second skips."""
    client = aioredis.from_url(redis_server.url)
    try:
        await client.flushdb()
        effects: list[str] = []
        process_a = Idempotency(RedisIdempotencyStore(client))(Notifier("email", effects).send)
        process_b = Idempotency(RedisIdempotencyStore(client))(Notifier("email", effects).send)
        event = Event("order.created", {"id": 9})
        await process_a(event)
        await process_b(Event("order.created", {"id": 9}, id=event.id, attempt=2))
        assert effects == ["email:9"]
        keys = await client.keys("flext:done:*")
        assert keys == [f"flext:done:{__name__}.Notifier.send:{event.id}".encode()]
    finally:
        await client.aclose()


@pytest.mark.integration
@pytest.mark.parametrize("ttl", [float("inf"), 1e30])
async def test_redis_store_takes_a_ttl_beyond_what_redis_can_expire(
    redis_server: RedisServer, ttl: float
) -> None:
    """An endless (or huge) ttl still records the key: the effect never runs twice."""
    client = aioredis.from_url(redis_server.url)
    try:
        await client.flushdb()
        once = Idempotency(RedisIdempotencyStore(client), ttl=ttl)
        effects: list[str] = []
        handler = once(lambda e: effects.append(e.id), name="forever")
        event = Event("job")
        await handler(event)
        await handler(Event("job", id=event.id, attempt=2))
        assert effects == [event.id]
        assert await client.ttl(f"flext:done:forever:{event.id}") > 0
    finally:
        await client.aclose()


async def test_memory_store_drops_expired_keys_as_it_grows() -> None:
    """Keys of events that never come again do not pile up once they expired."""
    clock = FakeClock()
    store = MemoryIdempotencyStore(clock=clock)
    for n in range(5000):
        await store.mark(f"old-{n}", 10)
    clock.advance(11)
    for n in range(5000):
        await store.mark(f"new-{n}", 10)
    assert len(store._until) <= 5000
    assert await store.done("new-0") and not await store.done("old-0")
