"""Idempotency keys: one stored key per (namespace, handler name, event key), old keys kept."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from flext_api.composition import (
    Event,
    Idempotency,
    MemoryIdempotencyStore,
    RedisIdempotencyStore,
)
from tests.composition._redis import client_under
from tests.servers.redis_server import RedisServer


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


async def run_in(
    store: MemoryIdempotencyStore | RedisIdempotencyStore,
    first: tuple[str, str, str],
    second: tuple[str, str, str],
) -> list[str]:
    """Run a handler per (namespace, name, event key), both on one store; what ran."""
    effects: list[str] = []
    for label, (namespace, name, key) in (("first", first), ("second", second)):
        once = Idempotency(store, key=keyed, namespace=namespace)

        def effect(event: object, label: str = label) -> None:
            effects.append(label)

        await once(effect, name=name)(Event("job", {"k": key}))
    return effects


async def test_namespace_glued_to_a_name_does_not_meet_a_longer_namespace() -> None:
    """Namespace shop + handler x.y and namespace shopx + handler .y both run."""
    effects = await run_in(MemoryIdempotencyStore(), ("shop", "x.y", "7"), ("shopx", ".y", "7"))
    assert effects == ["first", "second"]


async def test_namespace_ending_in_a_colon_does_not_meet_no_namespace() -> None:
    """Namespace a: (handler b, key c) and no namespace (handler a, key b:c) both run."""
    effects = await run_in(MemoryIdempotencyStore(), ("a:", "b", "c"), ("", "a", "b:c"))
    assert effects == ["first", "second"]


async def test_namespace_holding_the_separator_does_not_meet_a_name_holding_it() -> None:
    """Namespace a:b with handler c and namespace a with handler b:c both run."""
    effects = await run_in(MemoryIdempotencyStore(), ("a:b", "c", "k"), ("a", "b:c", "k"))
    assert effects == ["first", "second"]


async def test_no_two_triples_share_a_stored_key() -> None:
    """Across awkward namespaces, names and keys, every stored key is distinct."""
    store = RecordingStore()
    parts = ["", ":", "%", "a", "a:", ":a", "a:b", "%3A", "%25", "a%3Ab", "::"]
    triples = [
        (namespace, name, key)
        for namespace, name, key in itertools.product(parts, parts, parts)
        if name  # a handler's name cannot be empty
    ]
    for namespace, name, key in triples:
        once = Idempotency(store, key=keyed, namespace=namespace)
        await once(lambda e: None, name=name)(Event("job", {"k": key}))
    assert len(set(store.marked)) == len(store.marked) == len(triples)


async def test_keys_without_a_namespace_keep_their_layout() -> None:
    """No namespace: the name (escaped), ':', the key - as stored before."""
    store = RecordingStore()
    await run_in(store, ("", "billing.send_receipt", "7"), ("", "a:b%", "7"))
    assert store.marked == ["billing.send_receipt:7", "a%3Ab%25:7"]


async def test_namespaced_keys_start_with_the_escaped_namespace_between_colons() -> None:
    """Namespace shop: is stored as :shop%3A: before the handler's name."""
    store = RecordingStore()
    await run_in(store, ("shop:", "billing.send_receipt", "7"), ("ns/", "a:b", "x:y"))
    assert store.marked == [":shop%3A:billing.send_receipt:7", ":ns/:a%3Ab:x:y"]


async def test_previous_layout_is_not_read() -> None:
    """Only the current layout's key counts: an old key of that shape may have been
    written by a handler without a namespace."""
    store = RecordingStore()
    await store.mark("shop:billing.send_receipt:7", 60)
    once = Idempotency(store, key=keyed, namespace="shop:")
    effects: list[object] = []
    await once(effects.append, name="billing.send_receipt")(Event("job", {"k": "7"}))
    assert len(effects) == 1
    assert store.marked[-1] == ":shop%3A:billing.send_receipt:7"


def test_namespace_that_is_not_text_is_refused() -> None:
    """A namespace must be a str (None used to be stored as the text 'None')."""
    with pytest.raises(TypeError, match="namespace must be a str, got NoneType"):
        Idempotency(namespace=None)  # type: ignore[arg-type]


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    async with client_under(redis_server.url, "t:keys:done:") as client:
        yield client


@pytest.mark.integration
async def test_redis_keys_of_two_namespaces_do_not_collide(redis_client: aioredis.Redis) -> None:
    """With a Redis store, namespaces shop/shopx and names x.y/.y keep two keys."""
    store = RedisIdempotencyStore(redis_client, prefix="t:keys:done:")
    assert await run_in(store, ("shop", "x.y", "7"), ("shopx", ".y", "7")) == ["first", "second"]
    keys = sorted([key async for key in redis_client.scan_iter(match="t:keys:done:*")])
    assert keys == [b"t:keys:done::shop:x.y:7", b"t:keys:done::shopx:.y:7"]
