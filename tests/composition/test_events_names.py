"""Event names and keys taken literally: bracketed names, forgotten classes, idempotency keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import redis.asyncio as aioredis

from flext_api._errors import ConfigError
from flext_api.composition import (
    Event,
    EventBus,
    Idempotency,
    MemoryIdempotencyStore,
    RedisIdempotencyStore,
    RedisStreamTransport,
)
from flext_api.composition._events import _RESOLVED_MAX, from_payload
from tests.composition._redis import client_under
from tests.servers.redis_server import RedisServer


@dataclass
class Refunded:
    order_id: int


@dataclass
class RefundV1:
    event_name: ClassVar[str] = "refund"
    order_id: int


@dataclass
class RefundV2:
    event_name: ClassVar[str] = "refund"
    order_id: int


@dataclass
class SlotChanged:
    event_name: ClassVar[str] = "slots[3].changed"
    free: bool


async def names_seen(subscription: str, published: list[str]) -> list[str]:
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe(subscription, lambda e: seen.append(e.name))
    for name in published:
        await bus.publish(Event(name))
    return seen


# -- 1. a subscription name always matches itself ----------------------------------------


async def test_name_with_brackets_reaches_its_subscriber() -> None:
    """subscribe("items[0].changed") receives the event named items[0].changed."""
    assert await names_seen("items[0].changed", ["items[0].changed"]) == ["items[0].changed"]


async def test_typed_event_named_with_brackets_reaches_the_name_subscriber() -> None:
    """A class whose event_name holds brackets reaches the handlers of that name."""
    bus = EventBus()
    seen: list[object] = []
    bus.subscribe("slots[3].changed", seen.append)
    await bus.publish(SlotChanged(free=True))
    assert seen == [SlotChanged(free=True)]


@pytest.mark.parametrize(
    ("subscription", "published", "expected"),
    [
        ("user.*", ["user.created", "order.created"], ["user.created"]),
        ("*", ["a", "items[0].changed"], ["a", "items[0].changed"]),
        ("job.?", ["job.1", "job.12"], ["job.1"]),
        ("order.[0-9].paid", ["order.7.paid", "order.x.paid"], ["order.7.paid"]),
        ("order.[!0-9].paid", ["order.7.paid", "order.x.paid"], ["order.x.paid"]),
        ("items[[]0].*", ["items[0].changed", "items0.changed"], ["items[0].changed"]),
    ],
)
async def test_shell_patterns_keep_matching(
    subscription: str, published: list[str], expected: list[str]
) -> None:
    """*, ?, [seq] and [!seq] keep their shell meaning; [[] is a literal bracket."""
    assert await names_seen(subscription, published) == expected


async def test_bracketed_star_matches_a_literal_star_only() -> None:
    """price[*] matches the event named price*, not price.eur."""
    assert await names_seen("price[*]", ["price*", "price.eur"]) == ["price*"]


async def test_unsubscribed_bracketed_name_receives_nothing() -> None:
    """unsubscribe removes a subscription to a bracketed name."""
    bus = EventBus()
    seen: list[object] = []
    bus.subscribe("items[0].changed", seen.append)
    assert bus.unsubscribe("items[0].changed", seen.append) is True
    await bus.publish(Event("items[0].changed"))
    assert seen == []


async def test_lookup_cache_stays_bounded_with_bracketed_names() -> None:
    """Many distinct names never grow the per-name handler cache past its bound."""
    bus = EventBus()
    seen: list[object] = []
    bus.subscribe("items[0].changed", seen.append)
    for n in range(_RESOLVED_MAX * 2 + 1):
        await bus.publish(Event(f"items[{n}].changed"))
    assert len(bus._resolved) <= _RESOLVED_MAX
    assert len(seen) == 1


# -- 2. unsubscribing a class's last handler forgets the class ---------------------------


def test_unsubscribing_a_class_last_handler_forgets_its_type() -> None:
    """After its last handler is gone, a received event is no longer rebuilt as the class."""
    bus = EventBus()
    handler: list[object] = []
    bus.subscribe(Refunded, handler.append)
    assert bus.unsubscribe(Refunded, handler.append) is True
    assert "Refunded" not in bus.types
    rebuilt = from_payload(bus, "Refunded", {"order_id": 1})
    assert type(rebuilt) is Event


def test_class_with_a_handler_left_keeps_its_type() -> None:
    """Removing one of two handlers of a class keeps rebuilding events as that class."""
    bus = EventBus()
    first: list[object] = []
    second: list[object] = []
    bus.subscribe(Refunded, first.append)
    bus.subscribe(Refunded, second.append)
    bus.unsubscribe(Refunded, first.append)
    assert from_payload(bus, "Refunded", {"order_id": 1}) == Refunded(order_id=1)


def test_unsubscribing_an_unknown_handler_keeps_the_type() -> None:
    """unsubscribe of a handler the class never had returns False and changes nothing."""
    bus = EventBus()
    handler: list[object] = []
    bus.subscribe(Refunded, handler.append)
    assert bus.unsubscribe(Refunded, print) is False
    assert bus.types == {"Refunded": Refunded}


def test_other_class_of_the_same_name_is_refused_while_one_is_subscribed() -> None:
    """A second class under a subscribed class's name is refused; the first keeps it."""
    bus = EventBus()
    v1: list[object] = []
    v2: list[object] = []
    bus.subscribe(RefundV1, v1.append)
    with pytest.raises(ConfigError, match="event name 'refund' belongs to"):
        bus.subscribe(RefundV2, v2.append)
    assert bus.types == {"refund": RefundV1}


def test_name_freed_by_an_unsubscribed_class_can_be_taken() -> None:
    """Once a class lost its last handler, another class may use its name."""
    bus = EventBus()
    v1: list[object] = []
    v2: list[object] = []
    bus.subscribe(RefundV1, v1.append)
    bus.unsubscribe(RefundV1, v1.append)
    bus.subscribe(RefundV2, v2.append)
    assert bus.types == {"refund": RefundV2}


@pytest.mark.integration
async def test_event_of_an_unsubscribed_class_arrives_as_an_event(
    redis_server: RedisServer,
) -> None:
    """Through Redis Streams, a class with no handler left is not rebuilt any more."""
    client = aioredis.from_url(redis_server.url)
    stream = "t:names:unsubscribed"
    try:
        await client.delete(stream)
        bus = EventBus(
            transport=RedisStreamTransport(client=client, stream=stream, group="g", block=0.05)
        )
        received: asyncio.Queue[object] = asyncio.Queue()
        typed: list[object] = []
        bus.subscribe(Refunded, typed.append)
        bus.subscribe("Refunded", received.put_nowait)
        bus.unsubscribe(Refunded, typed.append)
        async with bus:
            result = await bus.publish(Event("Refunded", {"order_id": 3}))
            assert result.is_success
            got = await asyncio.wait_for(received.get(), timeout=60)
        assert type(got) is Event
        assert (got.name, got.data) == ("Refunded", {"order_id": 3})
        assert typed == []
    finally:
        await client.delete(stream)
        await client.aclose()


# -- 3. idempotency keys cannot collide across handler names -----------------------------


class RecordingStore(MemoryIdempotencyStore):
    """A memory store that also lists the keys it marked, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.marked: list[str] = []

    async def mark(self, key: str, ttl: float) -> None:
        self.marked.append(key)
        await super().mark(key, ttl)


def keyed(event: Any) -> str:
    return str(event.data["k"])


async def run_both(once: Idempotency, first: tuple[str, str], second: tuple[str, str]) -> list[str]:
    """Wrap two handlers named first[0] and second[0]; feed each an event keyed [1]."""
    effects: list[str] = []
    a = once(lambda e: effects.append("first"), name=first[0])
    b = once(lambda e: effects.append("second"), name=second[0])
    await a(Event("job", {"k": first[1]}))
    await b(Event("job", {"k": second[1]}))
    return effects


async def test_name_with_a_colon_does_not_collide_with_a_longer_key() -> None:
    """Handler a:b with key c and handler a with key b:c both run."""
    once = Idempotency(key=keyed)
    assert await run_both(once, ("a:b", "c"), ("a", "b:c")) == ["first", "second"]
    assert once.duplicates == 0


async def test_escaped_looking_name_does_not_collide_with_a_colon_name() -> None:
    """Handler a%3Ab and handler a:b, one key: both run (the escape is reversible)."""
    once = Idempotency(key=keyed)
    assert await run_both(once, ("a%3Ab", "x"), ("a:b", "x")) == ["first", "second"]


async def test_name_without_colon_or_percent_keeps_its_key_format() -> None:
    """A plain name is stored as :namespace: + name + ':' + key."""
    store = RecordingStore()
    once = Idempotency(store, key=keyed, namespace="ns/")
    await run_both(once, ("billing.send_receipt", "7"), ("a:b%", "7"))
    assert store.marked == [":ns/:billing.send_receipt:7", ":ns/:a%3Ab%25:7"]


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    async with client_under(redis_server.url, "t:names:done:") as client:
        yield client


@pytest.mark.integration
async def test_redis_keys_of_colon_names_do_not_collide(redis_client: aioredis.Redis) -> None:
    """With a Redis store, handler a:b/key c and handler a/key b:c keep two keys."""
    once = Idempotency(RedisIdempotencyStore(redis_client, prefix="t:names:done:"), key=keyed)
    assert await run_both(once, ("a:b", "c"), ("a", "b:c")) == ["first", "second"]
    keys = sorted([key async for key in redis_client.scan_iter(match="t:names:done:*")])
    assert keys == [b"t:names:done:a%3Ab:c", b"t:names:done:a:b:c"]
