"""Hostile cases of the background tasks and of idempotent handlers."""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import threading

import pytest
import redis.asyncio as aioredis
from fastapi import Request

from flext_api.composition import (
    AppPluginManager,
    Event,
    EventBus,
    Idempotency,
    RedisIdempotencyStore,
    RedisStreamTransport,
    TaskSupervisor,
)
from tests.composition.test_redis_events import until
from tests.server.helpers import build_app, serve
from tests.servers.redis_server import RedisServer

TASKS_LOGGER = "flext_api.composition.tasks"


def _task_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == TASKS_LOGGER]


# -- TaskSupervisor -----------------------------------------------------------------------
async def test_sync_route_spawns_a_task_that_runs_on_the_apps_loop() -> None:
    """A sync route (run in a worker thread) spawns a task: 200, and the task runs."""
    app = build_app(stream=io.StringIO())
    ran = asyncio.Event()
    loops: list[asyncio.AbstractEventLoop] = []

    async def work() -> None:
        loops.append(asyncio.get_running_loop())
        ran.set()

    @app.post("/sync")
    def sync_route(request: Request) -> str:
        request.app.state.tasks.spawn(work(), name="from-thread")
        return "accepted"

    async with serve(app) as client:
        reply = await client.post("/sync")
        await asyncio.wait_for(ran.wait(), 10)
    assert reply.status_code == 200 and reply.json() == "accepted"
    assert loops == [asyncio.get_running_loop()]


async def test_work_handed_over_by_a_thread_as_shutdown_begins_is_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A thread's spawn that reaches the loop after aclose() began is closed and logged."""

    async def work() -> None:
        pass

    supervisor = TaskSupervisor()
    await supervisor.start()
    coro = work()
    errors: list[BaseException] = []

    def from_thread() -> None:
        try:
            supervisor.spawn(coro, name="late")
        except BaseException as exc:  # handed to the assertion below
            errors.append(exc)

    thread = threading.Thread(target=from_thread)
    thread.start()
    thread.join()  # the hand-over is queued on the loop, not yet run
    await supervisor.aclose()
    await asyncio.sleep(0)  # let the loop run the queued hand-over
    assert errors == []
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
    assert any("late not started" in m for m in _task_logs(caplog))


async def test_task_ending_in_a_cancelled_error_nobody_asked_for_is_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A task that awaited a future another party cancelled is logged and counted."""
    other: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    started, ended = asyncio.Event(), asyncio.Event()

    async def victim() -> None:
        started.set()
        try:
            await other
        finally:
            ended.set()

    async with TaskSupervisor() as supervisor:
        supervisor.spawn(victim(), name="victim")
        await started.wait()
        other.cancel()
        await ended.wait()
    # aclose() (after the ended task's done-callback) found nothing to cancel
    assert supervisor.failures == 1
    assert [m for m in _task_logs(caplog) if "victim" in m] == [
        "background task victim failed (request_id=None): it ended in a CancelledError "
        "although it was not cancelled"
    ]


async def test_shutdown_cancellation_is_not_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    """A task cancelled by aclose() is not counted or logged as failed."""
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    async with TaskSupervisor() as supervisor:
        supervisor.spawn(forever(), name="forever")
        await started.wait()
    assert supervisor.failures == 0 and _task_logs(caplog) == []


async def test_shutdown_leaves_a_task_that_ignores_cancellation_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aclose() returns after shutdown_timeout although a task swallowed its cancel."""
    started, release, ended = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        started.set()
        try:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                await release.wait()  # ignores the shutdown
        finally:
            ended.set()

    supervisor = TaskSupervisor(shutdown_timeout=0.05)
    await supervisor.start()
    supervisor.spawn(stubborn(), name="stubborn")
    await started.wait()
    await asyncio.wait_for(supervisor.aclose(), 10)
    assert not ended.is_set()
    assert repr(supervisor) == "<TaskSupervisor [closed | 1 running | 0 waiting]>"
    assert _task_logs(caplog) == [
        "background task stubborn still running 0.05 s after its cancellation: left behind"
    ]
    release.set()
    await ended.wait()


@pytest.mark.parametrize(
    ("timeout", "error", "match"),
    [
        ("10", TypeError, "shutdown_timeout must be a number of seconds or None, got str"),
        (True, TypeError, "got bool True"),
        (0, ValueError, "shutdown_timeout must be > 0 seconds, got 0"),
        (float("nan"), ValueError, "got nan"),
    ],
)
def test_bad_shutdown_timeout_is_refused(
    timeout: object, error: type[Exception], match: str
) -> None:
    """shutdown_timeout takes seconds > 0 or None; anything else is refused at once."""
    with pytest.raises(error, match=match):
        TaskSupervisor(shutdown_timeout=timeout)  # type: ignore[arg-type]


# -- Idempotency ------------------------------------------------------------------------
async def test_one_event_published_twice_at_once_runs_its_handler_once() -> None:
    """Two concurrent deliveries of one event in a process: the second waits, then skips."""
    bus, once = EventBus(), Idempotency()
    runs: list[str] = []
    entered, gate = asyncio.Event(), asyncio.Event()

    async def charge(event: Event) -> None:
        runs.append(event.id)
        entered.set()
        await gate.wait()

    bus.subscribe("order.paid", once(charge))
    event = Event("order.paid")
    first = asyncio.create_task(bus.publish(event))
    second = asyncio.create_task(bus.publish(event))
    await entered.wait()
    gate.set()
    assert (await first).is_success and (await second).is_success
    assert runs == [event.id]
    assert once.duplicates == 1


async def test_waiting_delivery_runs_when_the_first_one_failed() -> None:
    """The second copy of an event runs the handler when the first copy raised."""
    once = Idempotency()
    calls: list[int] = []
    entered, gate = asyncio.Event(), asyncio.Event()

    async def flaky(event: Event) -> None:
        calls.append(event.attempt)
        entered.set()
        await gate.wait()
        if event.attempt == 1:
            raise RuntimeError("first copy fails")

    handler = once(flaky)
    event = Event("job")
    first = asyncio.create_task(handler(event))
    second = asyncio.create_task(handler(Event("job", id=event.id, attempt=2)))
    await entered.wait()
    gate.set()
    with pytest.raises(RuntimeError, match="first copy fails"):
        await first
    await second
    assert calls == [1, 2] and once.duplicates == 0


async def test_handler_publishing_its_own_event_again_does_not_wait_on_itself() -> None:
    """A handler that republishes the event it handles sees it as a duplicate."""
    bus, once = EventBus(), Idempotency()
    runs: list[int] = []

    async def echo(event: Event) -> None:
        runs.append(event.attempt)
        if len(runs) == 1:
            await bus.publish(Event("echo", id=event.id, attempt=event.attempt + 1))

    bus.subscribe("echo", once(echo))
    result = await asyncio.wait_for(bus.publish(Event("echo")), 10)
    assert result.is_success and runs == [1] and once.duplicates == 1


@pytest.mark.integration
async def test_one_event_twice_in_a_stream_batch_runs_its_handler_once(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An event XADDed twice (a publisher's retry) reaches one batch: one effect."""
    caplog.set_level(logging.ERROR)
    client = aioredis.from_url(redis_server.url)
    try:
        await client.flushdb()
        stream = "t:twice-published"
        # the group exists before the copies are published, so one round reads both
        await client.xgroup_create(stream, "g", id="0", mkstream=True)
        publisher = EventBus(transport=RedisStreamTransport(client=client, stream=stream))
        event = Event("order.paid", {"id": 3})
        assert (await publisher.publish(event)).is_success
        assert (await publisher.publish(event)).is_success

        # idle connections at hand: each copy's EXISTS goes out at once, before any reply
        await asyncio.gather(*(client.ping() for _ in range(4)))
        once = Idempotency(RedisIdempotencyStore(client))
        effects: list[object] = []

        def charge(event: Event) -> None:
            effects.append(event.data["id"])

        consumer = EventBus(
            transport=RedisStreamTransport(client=client, stream=stream, group="g", block=0.05)
        )
        consumer.subscribe("order.paid", once(charge))
        async with consumer:
            await until(lambda: len(effects) + once.duplicates >= 2, "both copies")
        assert effects == [3] and once.duplicates == 1
    finally:
        await client.aclose()


# -- AppPluginManager ---------------------------------------------------------------------
def test_plugin_whose_cleanup_is_not_callable_is_refused_at_register() -> None:
    """cleanup = None is a TypeError when registered, not a failure at shutdown."""

    class Half:
        cleanup = None

        def initialize(self, app: object) -> None:
            pass

    manager = AppPluginManager()
    with pytest.raises(TypeError, match="'half' needs initialize\\(app\\) and cleanup\\(\\)"):
        manager.register("half", Half())  # type: ignore[arg-type]
    assert manager.names == []
