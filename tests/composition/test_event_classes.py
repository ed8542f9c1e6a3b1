"""Two event classes with one name: one bus holds one class per name."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

import pytest
import redis.asyncio as aioredis
from pydantic import BaseModel

from flext_api import ErrorCode
from flext_api._errors import ConfigError
from flext_api.composition import Event, EventBus, RedisStreamTransport
from tests.servers.redis_server import RedisServer


class billing:  # stands for a module of that name
    @dataclass
    class OrderPlaced:
        order_id: int


class shipping:  # stands for another module
    @dataclass
    class OrderPlaced:
        order_id: int

    class Parcel(BaseModel):
        event_name: ClassVar[str] = "OrderPlaced"
        order_id: int

    @dataclass
    class Renamed:
        event_name: ClassVar[str] = "shipping.order_placed"
        order_id: int


@dataclass
class Paid:
    event_name: ClassVar[str] = "paid"
    amount: int


@dataclass
class PaidByCard(Paid):
    card: str = "visa"


def test_second_class_of_a_subscribed_name_is_refused_naming_both() -> None:
    """Subscribing shipping.OrderPlaced after billing.OrderPlaced names both classes."""
    bus = EventBus()
    bus.subscribe(billing.OrderPlaced, print)
    with pytest.raises(ConfigError) as caught:
        bus.subscribe(shipping.OrderPlaced, print)
    assert caught.value.code is ErrorCode.CONFIG_ERROR
    assert caught.value.details == {
        "event_name": "OrderPlaced",
        "classes": [
            f"{__name__}.billing.OrderPlaced",
            f"{__name__}.shipping.OrderPlaced",
        ],
    }
    assert "event_name: ClassVar[str]" in caught.value.message
    assert bus.handlers_for(billing.OrderPlaced(1)) == (print,)
    assert bus.handlers_for(shipping.OrderPlaced(1)) == ()


def test_pydantic_model_with_a_subscribed_name_is_refused() -> None:
    """A pydantic model whose event_name is taken is refused like a dataclass."""
    bus = EventBus()
    bus.on(billing.OrderPlaced)(print)
    with pytest.raises(ConfigError, match=r"shipping\.Parcel"):
        bus.on(shipping.Parcel)(print)


def test_class_defined_twice_under_one_qualified_name_is_called_so() -> None:
    """Two classes with one module and qualname (a module loaded twice) are told apart."""

    def define() -> type:
        @dataclass
        class Twin:
            n: int

        return Twin

    bus = EventBus()
    bus.subscribe(define(), print)
    with pytest.raises(ConfigError, match="defined twice, or its module loaded twice"):
        bus.subscribe(define(), print)


def test_one_class_may_have_many_handlers_and_other_names() -> None:
    """The same class again, or a class with its own event_name, is fine."""
    bus = EventBus()
    bus.subscribe(billing.OrderPlaced, print)
    bus.subscribe(billing.OrderPlaced, repr)
    bus.subscribe(shipping.Renamed, print)
    assert bus.types == {
        "OrderPlaced": billing.OrderPlaced,
        "shipping.order_placed": shipping.Renamed,
    }


async def test_publishing_another_class_under_a_subscribed_name_fails() -> None:
    """Without a transport too: the result is a CONFIG_ERROR and no handler runs."""
    bus = EventBus()
    typed: list[object] = []
    named: list[object] = []
    bus.subscribe(billing.OrderPlaced, typed.append)
    bus.subscribe("OrderPlaced", named.append)
    result = await bus.publish(shipping.OrderPlaced(7))
    assert result.is_failure
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert typed == named == []


async def test_subclass_instance_is_published_under_its_parents_name() -> None:
    """An instance of a subclass inheriting the name is one of the subscribed class."""
    bus = EventBus()
    seen: list[object] = []
    bus.subscribe(Paid, seen.append)
    event = PaidByCard(5)
    assert (await bus.publish(event)).is_success
    assert seen == [event]


async def test_plain_event_with_a_subscribed_class_name_is_published() -> None:
    """An Event of that name is not a class instance: it goes out as before."""
    bus = EventBus()
    named: list[object] = []
    bus.subscribe(billing.OrderPlaced, print)
    bus.subscribe("OrderPlaced", named.append)
    assert (await bus.publish(Event("OrderPlaced", {"order_id": 1}))).is_success
    assert len(named) == 1


@pytest.mark.integration
async def test_other_class_of_a_subscribed_name_never_reaches_the_stream(
    redis_server: RedisServer,
) -> None:
    """Through Redis, the refused event is not sent, so no handler gets it as the
    subscribed class (it used to arrive as billing.OrderPlaced)."""
    client = aioredis.from_url(redis_server.url)
    stream = "t:classes:refused"
    try:
        await client.delete(stream)
        bus = EventBus(
            transport=RedisStreamTransport(client=client, stream=stream, group="g", block=0.05)
        )
        received: asyncio.Queue[object] = asyncio.Queue()
        bus.subscribe(billing.OrderPlaced, received.put_nowait)
        async with bus:
            refused = await bus.publish(shipping.OrderPlaced(1))
            sent = await bus.publish(billing.OrderPlaced(2))
            got = await asyncio.wait_for(received.get(), timeout=60)
        assert refused.error_code is ErrorCode.CONFIG_ERROR
        assert sent.is_success
        assert got == billing.OrderPlaced(2)
        assert await client.xlen(stream) == 1
    finally:
        await client.delete(stream)
        await client.aclose()
