"""Redis Streams transport: cross-process delivery, crash redelivery, dead letters.

Real ``redis-server`` (tests/servers/redis_server.py) and real worker processes
(``tests/composition/_event_worker.py``); conditions are polled with generous bounds.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from flext_api.composition import Event, EventBus, RedisStreamTransport, current_delivery
from tests.composition._event_worker import GROUP, STREAM
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PaymentTaken:
    order_id: int
    amount: float


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.from_url(redis_server.url)
    await connection.flushdb()
    yield connection
    await connection.aclose()


@pytest.fixture
def workers(redis_server: RedisServer) -> Iterator[Callable[[str, str], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def spawn(consumer: str, mode: str = "normal") -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.composition._event_worker", redis_server.url,
             consumer, mode],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(process)
        assert process.stdout is not None
        readable, _, _ = select.select([process.stdout], [], [], 60.0)
        assert readable, f"worker {consumer} did not start within 60 s"
        assert process.stdout.readline().strip() == "ready"
        return process

    yield spawn
    for process in started:
        assert process.stdin is not None
        try:
            process.stdin.close()  # the worker's signal to stop
        except BrokenPipeError:
            pass  # it was killed
        if process.poll() is None:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)
        if process.stdout is not None:
            process.stdout.close()


async def until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` (sync or async) until it is true; fail naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


async def handled(client: aioredis.Redis) -> list[dict[str, object]]:
    return [json.loads(item) for item in await client.lrange("handled", 0, -1)]


def publisher(client: aioredis.Redis) -> EventBus:
    return EventBus(transport=RedisStreamTransport(client=client, stream=STREAM, group=GROUP))


async def test_event_published_here_is_handled_by_another_process(
    client: aioredis.Redis, workers: Callable[..., subprocess.Popen[str]]
) -> None:
    """An event published by this process is handled by a worker process."""
    workers("w1")
    event = Event("job", {"n": 1})
    assert (await publisher(client).publish(event)).is_success

    async def seen() -> bool:
        return any(h["id"] == event.id for h in await handled(client))

    await until(seen, "the worker to handle the event")
    assert await handled(client) == [{"id": event.id, "consumer": "w1", "attempt": 1}]


async def test_event_of_a_killed_handler_is_redelivered_to_a_survivor(
    client: aioredis.Redis, workers: Callable[..., subprocess.Popen[str]]
) -> None:
    """kill -9 mid-event: a survivor gets it again (attempt 2); nothing is lost."""
    victim = workers("victim", "hang")
    bus = publisher(client)
    stuck = Event("job", {"hang": True})
    await bus.publish(stuck)

    async def hanging() -> bool:
        return stuck.id.encode() in await client.lrange("hanging", 0, -1)

    await until(hanging, "the victim to start the event")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(15)
    workers("survivor")
    others = [Event("job", {"n": n}) for n in range(5)]
    for event in others:
        await bus.publish(event)
    expected = {e.id for e in [stuck, *others]}

    async def all_handled() -> bool:
        return expected <= {str(h["id"]) for h in await handled(client)}

    await until(all_handled, "every event to be handled")
    by_id = {h["id"]: h for h in await handled(client)}
    assert by_id[stuck.id] == {"id": stuck.id, "consumer": "survivor", "attempt": 2}
    assert all(by_id[e.id]["attempt"] == 1 for e in others)
    effects = [await client.get(f"effects:{event_id}") for event_id in expected]
    assert effects == [b"1"] * len(expected)


async def test_failing_handler_is_retried_then_dead_lettered(client: aioredis.Redis) -> None:
    """A handler that always raises sees max_attempts deliveries, then a dead letter."""
    transport = RedisStreamTransport(
        client=client, stream="t:fail", group="g", claim_idle=0.01, max_attempts=3, block=0.05
    )
    bus = EventBus(transport=transport)
    attempts: list[int] = []

    def broken(event: Event) -> None:
        attempts.append(event.attempt)
        raise RuntimeError("always")

    bus.subscribe("job", broken)
    async with bus:
        event = Event("job", {"x": 1})
        await bus.publish(event)

        async def dead() -> bool:
            return bool(await client.xlen("t:fail:dead"))

        await until(dead, "the dead letter")
    assert attempts == [1, 2, 3]
    entries: Any = await client.xrange("t:fail:dead")
    [(_, fields)] = entries
    assert fields[b"id"] == event.id.encode()
    assert (fields[b"attempts"], fields[b"group"]) == (b"3", b"g")
    assert await client.xpending("t:fail", "g") == {
        "pending": 0, "min": None, "max": None, "consumers": []
    }  # fmt: skip


async def test_typed_event_crosses_the_stream(client: aioredis.Redis) -> None:
    """A dataclass event comes back as that class, with the delivery's id in context."""
    transport = RedisStreamTransport(client=client, stream="t:typed", group="g", block=0.05)
    bus = EventBus(transport=transport)
    got: list[tuple[PaymentTaken, int]] = []

    def handle(event: PaymentTaken) -> None:
        delivery = current_delivery()
        assert delivery is not None
        got.append((event, delivery.attempt))

    bus.subscribe(PaymentTaken, handle)
    async with bus:
        await bus.publish(PaymentTaken(order_id=7, amount=9.5))
        await until(lambda: got, "the typed event")
    assert got == [(PaymentTaken(order_id=7, amount=9.5), 1)]


def on_order(seen: list[str], group: str, event: Event) -> None:
    seen.append(group)


async def test_each_group_sees_every_event(client: aioredis.Redis) -> None:
    """Two groups on one stream both receive the same event (fan-out between services)."""
    seen: list[str] = []
    buses = []
    for group in ("billing", "shipping"):
        bus = EventBus(
            transport=RedisStreamTransport(client=client, stream="t:fan", group=group, block=0.05)
        )
        bus.subscribe("order.created", functools.partial(on_order, seen, group))
        buses.append(bus)
    async with buses[0], buses[1]:
        await buses[0].publish(Event("order.created"))
        await until(lambda: len(seen) == 2, "both groups")
    assert sorted(seen) == ["billing", "shipping"]


async def test_unserializable_event_is_a_failed_publish(client: aioredis.Redis) -> None:
    """Publishing an object that is neither Event, dataclass nor model returns a failure."""
    bus = EventBus(transport=RedisStreamTransport(client=client, stream="t:bad"))
    result = await bus.publish(object())
    assert result.is_failure and "cannot serialize" in (result.error or "")
    # NaN would cross the stream as null: refused, nothing is added to the stream.
    nan = await bus.publish(Event("reading", {"value": float("nan")}))
    assert nan.is_failure and "NaN" in (nan.error or "")
    assert await client.xlen("t:bad") == 0


def test_transport_needs_exactly_one_connection() -> None:
    """Giving both or neither of url= and client= is a ValueError."""
    with pytest.raises(ValueError, match="exactly one"):
        RedisStreamTransport()


async def test_undecodable_event_goes_to_the_dead_letter_stream(client: aioredis.Redis) -> None:
    """An entry whose data is not JSON is dead-lettered at once, not retried."""
    transport = RedisStreamTransport(client=client, stream="t:junk", group="g", block=0.05)
    bus = EventBus(transport=transport)
    bus.subscribe("*", lambda e: pytest.fail("no handler may run"))
    async with bus:
        await client.xadd("t:junk", {"name": "job", "data": b"{not json", "id": "x1", "ts": ""})

        async def dead() -> bool:
            return bool(await client.xlen("t:junk:dead"))

        await until(dead, "the dead letter")
    assert transport.dead_lettered == 1
    assert repr(transport).startswith("<RedisStreamTransport 't:junk' group='g'")


async def test_redis_idempotency_store_remembers_keys(client: aioredis.Redis) -> None:
    """RedisIdempotencyStore marks a key done, shared by every client of the server."""
    from flext_api.composition import RedisIdempotencyStore

    store = RedisIdempotencyStore(client, prefix="t:done:")
    assert await store.done("e1") is False
    await store.mark("e1", 60)
    assert await store.done("e1") is True
    assert 0 < await client.ttl("t:done:e1") <= 60


async def test_start_twice_keeps_one_consumer(client: aioredis.Redis) -> None:
    """Starting a started transport is a no-op; stop() without start() is harmless."""
    transport = RedisStreamTransport(client=client, stream="t:twice", group="g", block=0.05)
    bus = EventBus(transport=transport)
    await bus.start()
    await bus.start()
    await bus.stop()
    await bus.stop()
    assert repr(transport).endswith("[stopped | handled=0]>")


async def test_transport_with_url_owns_and_closes_its_client(redis_server: RedisServer) -> None:
    """A transport built from a URL closes its own client at stop()."""
    transport = RedisStreamTransport(redis_server.url, stream="t:own", group="g", block=0.05)
    bus = EventBus(transport=transport)
    seen: list[str] = []
    bus.subscribe("job", lambda e: seen.append(e.name))
    async with bus:
        await bus.publish(Event("job"))
        await until(lambda: seen, "the event")
    assert seen == ["job"]


async def test_a_block_past_redis_pys_default_read_timeout_waits_for_events(
    redis_server: RedisServer,
) -> None:
    """redis-py bounds every read by its socket_timeout (5 s by default), blocking reads
    included: with block=5.5 each empty round failed with a timeout. A transport's own
    client waits longer than block, so an empty round just returns no event."""
    transport = RedisStreamTransport(redis_server.url, stream="t:long", group="g", block=5.5)
    transport._bus = EventBus()  # poll() by hand: no consumer task
    try:
        await transport._create_group("$")
        assert await asyncio.wait_for(transport.poll(), timeout=60) == 0
    finally:
        await transport.redis.aclose()


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"client_timeout": 5.0, "block": 5.0}, ValueError, r"not shorter than .* \(5 s\)"),
        ({"url": "redis://127.0.0.1:1/0?socket_timeout=2", "block": 3.0}, ValueError,
         r"block=3 s is not shorter"),
        ({"url": "redis://127.0.0.1:1/0", "block": float("nan")}, ValueError, "finite"),
        ({"url": "redis://127.0.0.1:1/0", "block": float("inf")}, ValueError, "finite"),
        ({"url": "redis://127.0.0.1:1/0", "claim_idle": -1}, ValueError, "claim_idle"),
        ({"url": "redis://127.0.0.1:1/0", "claim_idle": "30"}, TypeError, "claim_idle"),
    ],
    ids=["client-timeout", "url-timeout", "nan", "inf", "negative-idle", "str-idle"],
)  # fmt: skip
def test_block_and_claim_idle_are_checked(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A block no shorter than the client's read timeout, or a non-finite or negative
    time, is refused when the transport is made: they failed every round."""
    timeout = arguments.pop("client_timeout", None)
    if timeout is not None:
        arguments["client"] = aioredis.Redis(socket_timeout=timeout)
    with pytest.raises(error, match=message):
        RedisStreamTransport(**arguments)


def test_max_attempts_must_be_positive() -> None:
    """max_attempts below 1 is a ValueError."""
    with pytest.raises(ValueError, match="max_attempts"):
        RedisStreamTransport("redis://127.0.0.1:1/0", max_attempts=0)


class StockChanged(BaseModel):
    """A pydantic event class."""

    sku: str
    delta: int


async def test_pydantic_event_and_raw_entries_cross_the_stream(client: aioredis.Redis) -> None:
    """A pydantic event comes back validated; a raw entry without ts becomes an Event."""
    transport = RedisStreamTransport(client=client, stream="t:models", group="g", block=0.05)
    bus = EventBus(transport=transport)
    got: list[object] = []
    bus.subscribe(StockChanged, got.append)
    bus.subscribe("raw", got.append)
    async with bus:
        await bus.publish(StockChanged(sku="kb-1", delta=-2))
        await client.xadd("t:models", {"name": "raw", "data": b"{}", "id": "raw-1", "ts": ""})
        await until(lambda: len(got) == 2, "both events")
    raw, model = sorted(got, key=lambda e: type(e).__name__)
    assert isinstance(raw, Event) and (raw.id, raw.attempt) == ("raw-1", 1)
    assert model == StockChanged(sku="kb-1", delta=-2)


async def test_group_creation_error_other_than_busygroup_is_raised(
    client: aioredis.Redis,
) -> None:
    """Starting on a key that is not a stream raises Redis's error instead of hiding it."""
    await client.set("t:notastream", "x")
    bus = EventBus(transport=RedisStreamTransport(client=client, stream="t:notastream"))
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await bus.start()


async def test_consumer_keeps_running_after_a_redis_error(
    client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing read is logged and retried; the consumer task does not die."""
    transport = RedisStreamTransport(client=client, stream="t:broken", group="g", block=0.05)
    bus = EventBus(transport=transport)
    async with bus:
        await client.delete("t:broken")
        await client.set("t:broken", "x")  # every read now fails with WRONGTYPE
        await until(lambda: "reading the event stream failed" in caplog.text, "the logged error")
        assert transport._task is not None and not transport._task.done()


# -- bad inputs -------------------------------------------------------------------------
def test_transport_refuses_a_url_or_client_of_the_wrong_kind() -> None:
    """A non-str url, a URL given as client=, or a blocking client is a TypeError."""
    import redis

    with pytest.raises(TypeError, match="url must be a Redis URL"):
        RedisStreamTransport(6379)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pass a URL as url="):
        RedisStreamTransport(client="redis://127.0.0.1:6379/0")  # type: ignore[arg-type]
    blocking = redis.Redis()
    try:
        with pytest.raises(TypeError, match=r"got a blocking redis\.Redis"):
            RedisStreamTransport(client=blocking)  # type: ignore[arg-type]
    finally:
        blocking.close()


def test_transport_refuses_a_batch_below_one() -> None:
    """batch=0 is refused at construction instead of failing every poll."""
    with pytest.raises(ValueError, match="batch must be >= 1, got 0"):
        RedisStreamTransport("redis://127.0.0.1:6379/0", batch=0)
    with pytest.raises(TypeError, match="max_attempts must be an int, got str"):
        RedisStreamTransport("redis://127.0.0.1:6379/0", max_attempts="3")  # type: ignore[arg-type]


async def test_handler_raising_cancelled_error_keeps_the_consumer_running(
    client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler's stray CancelledError leaves its event pending; later events are handled."""
    transport = RedisStreamTransport(
        client=client, stream="t:cancel", group="g", claim_idle=0.05, max_attempts=2, block=0.05
    )
    bus = EventBus(transport=transport)
    handled_here: list[int] = []

    async def handler(event: Event) -> None:
        if event.data.get("poison"):
            future = asyncio.get_running_loop().create_future()
            future.cancel()
            await future  # a future some other task cancelled
        handled_here.append(event.data["n"])

    bus.subscribe("job", handler)
    async with bus:
        await bus.publish(Event("job", {"n": 1, "poison": True}))
        for n in (2, 3):
            await bus.publish(Event("job", {"n": n}))

        async def dead() -> bool:
            return bool(await client.xlen("t:cancel:dead"))

        await until(lambda: sorted(handled_here) == [2, 3], "the later events")
        await until(dead, "the poison event's dead letter after its attempts")
        assert transport._task is not None and not transport._task.done()
        assert repr(transport).endswith("[running | handled=2]>")
    assert "event handler failed" in caplog.text


async def test_consumer_cancelled_from_outside_shows_dead_in_its_repr(
    client: aioredis.Redis,
) -> None:
    """A consumer task cancelled by someone else than stop() ends, and the repr says so."""
    transport = RedisStreamTransport(client=client, stream="t:killed", group="g", block=0.05)
    bus = EventBus(transport=transport)
    async with bus:
        task = transport._task
        assert task is not None
        task.cancel()
        await asyncio.wait({task}, timeout=10)
        assert repr(transport).endswith("[dead | handled=0]>")
    assert repr(transport).endswith("[stopped | handled=0]>")


# -- Redis going away ----------------------------------------------------------------------
async def test_consumer_recreates_its_group_after_redis_restarts_empty() -> None:
    """Redis restarted without its data: the group is made again and new events arrive."""
    with RedisServer() as own:
        transport = RedisStreamTransport(own.url, stream="t:restart", group="g", block=0.05)
        bus = EventBus(transport=transport)
        seen: list[int] = []
        bus.subscribe("job", lambda e: seen.append(e.data["n"]))
        async with bus:
            await bus.publish(Event("job", {"n": 1}))
            await until(lambda: seen == [1], "the event before the restart")
            own.pause()
            own.restart()

            async def published() -> bool:  # the client reconnects on a later call
                return (await bus.publish(Event("job", {"n": 2}))).is_success

            await until(published, "a publish after the restart")
            await until(lambda: seen == [1, 2], "the event published after the restart")


class AckFailsOnce(aioredis.Redis):
    """A client whose first XACK is lost with the connection."""

    ack_failed = False

    async def xack(self, name: Any, groupname: Any, *ids: Any) -> Any:
        if not self.ack_failed:
            self.ack_failed = True
            raise RedisConnectionError("connection lost during XACK")
        return await super().xack(name, groupname, *ids)


async def test_poll_ends_only_after_every_event_it_took_is_handled(
    redis_server: RedisServer,
) -> None:
    """One event's failed XACK does not leave the round's other handlers running unowned."""
    flaky = AckFailsOnce.from_url(redis_server.url)
    await flaky.flushdb()
    transport = RedisStreamTransport(client=flaky, stream="t:ackfail", group="g")
    bus = EventBus(transport=transport)
    finished: list[int] = []

    async def handler(event: Event) -> None:
        if event.data["n"] == 2:
            for _ in range(20):  # still running when the first event's XACK fails
                await asyncio.sleep(0)
        finished.append(event.data["n"])

    bus.subscribe("job", handler)
    try:
        await flaky.xgroup_create("t:ackfail", "g", id="$", mkstream=True)
        await bus.publish(Event("job", {"n": 1}))
        await bus.publish(Event("job", {"n": 2}))
        transport._bus = bus  # poll() by hand: no consumer task
        with pytest.raises(RedisConnectionError, match="during XACK"):
            await transport.poll()
        assert finished == [1, 2]
        assert transport.handled == 1  # the other one stays pending for redelivery
    finally:
        await flaky.aclose()


# -- taking over pending entries --------------------------------------------------------
HOUR_MS = 3_600_000


async def pend(
    client: aioredis.Redis, stream: str, consumer: str, numbers: range, idle_ms: int = 0
) -> list[Any]:
    """Add a ``job`` event per number and leave each pending at ``consumer``.

    ``idle_ms`` backdates the delivery (XCLAIM ... IDLE, JUSTID keeps the count at 1), as
    if the consumer had died that long ago, so no test waits for entries to go stale.
    """
    ids: list[Any] = []
    for n in numbers:
        fields: dict[Any, Any] = {"name": "job", "data": json.dumps({"n": n}), "id": f"e{n}"}
        ids.append(await client.xadd(stream, {**fields, "ts": ""}))
    await client.xreadgroup("g", consumer, {stream: ">"}, count=len(ids))
    if idle_ms:
        await client.xclaim(stream, "g", consumer, 0, ids, idle=idle_ms, justid=True)
    return ids


async def test_stale_entries_behind_a_page_of_fresh_ones_are_all_redelivered(
    client: aioredis.Redis,
) -> None:
    """More stale entries than a page, behind more fresh ones than a scan: all come back."""
    # batch=2: one XAUTOCLAIM claims 2 entries and Redis examines at most 20 pending ones,
    # so the 25 entries a live consumer just read hide the 7 stale ones from a scan that
    # starts at "0-0" every round; paging on with the returned cursor reaches them.
    await client.xgroup_create("t:page", "g", id="$", mkstream=True)
    fresh = await pend(client, "t:page", "alive", range(25))
    await pend(client, "t:page", "crashed", range(25, 32), idle_ms=HOUR_MS)
    transport = RedisStreamTransport(
        client=client, stream="t:page", group="g", claim_idle=600, batch=2, block=0.05
    )
    bus = EventBus(transport=transport)
    attempts: dict[int, int] = {}

    def handle(event: Event) -> None:
        attempts[event.data["n"]] = event.attempt

    bus.subscribe("job", handle)
    async with bus:
        await until(lambda: len(attempts) == 7, "every stale entry to be redelivered")
    assert attempts == dict.fromkeys(range(25, 32), 2)
    pending = await client.xpending_range("t:page", "g", "-", "+", 100)
    assert [(p["message_id"], p["consumer"]) for p in pending] == [
        (mid, b"alive") for mid in fresh
    ]  # the live consumer's entries, not idle long enough, are left to it


async def test_pending_entry_deleted_from_the_stream_is_acknowledged_and_counted(
    client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """A pending entry XDELed from the stream leaves the pending list, logged as lost."""
    await client.xgroup_create("t:gone", "g", id="$", mkstream=True)
    ids = await pend(client, "t:gone", "crashed", range(3), idle_ms=HOUR_MS)
    await client.xdel("t:gone", ids[1])
    transport = RedisStreamTransport(
        client=client, stream="t:gone", group="g", claim_idle=600, block=0.05
    )
    bus = EventBus(transport=transport)
    got: list[tuple[int, int]] = []
    bus.subscribe("job", lambda e: got.append((e.data["n"], e.attempt)))

    async def nothing_pending() -> bool:
        summary: Any = await client.xpending("t:gone", "g")
        return bool(summary["pending"] == 0)

    async with bus:
        await until(nothing_pending, "an empty pending list")
        await until(lambda: transport.lost == 1, "the deleted entry to be counted")
    assert sorted(got) == [(0, 2), (2, 2)]
    assert "deleted from 't:gone' before being handled" in caplog.text
    assert ids[1].decode() in caplog.text


async def test_round_with_claimed_entries_does_not_wait_for_new_events(
    client: aioredis.Redis, redis_server: RedisServer
) -> None:
    """A round that took over stale entries handles them without blocking for new ones."""
    await client.xgroup_create("t:noblock", "g", id="$", mkstream=True)
    await pend(client, "t:noblock", "crashed", range(3), idle_ms=HOUR_MS)
    patient = aioredis.from_url(redis_server.url, socket_timeout=7200)
    transport = RedisStreamTransport(
        client=patient, stream="t:noblock", group="g", claim_idle=600, block=3600
    )
    bus = EventBus(transport=transport)
    got: list[int] = []
    bus.subscribe("job", lambda e: got.append(e.data["n"]))
    transport._bus = bus  # poll() by hand: no consumer task
    # Blocking an hour for new events would outlast the bound: the round must return
    # at once.
    try:
        assert await asyncio.wait_for(transport.poll(), timeout=30) == 3
    finally:
        await patient.aclose()
    assert sorted(got) == [0, 1, 2]
