"""TaskSupervisor: background work started with the app, cancelled at shutdown."""

from __future__ import annotations

import asyncio
import inspect
import io

import pytest
from fastapi import Request

from flext_api.composition import TaskSupervisor
from tests.server.helpers import build_app, serve


async def test_work_spawned_before_start_waits_for_it() -> None:
    """A task spawned before start() runs only once the supervisor has started."""
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()

    supervisor = TaskSupervisor()
    supervisor.spawn(work())
    await asyncio.sleep(0)
    assert not ran.is_set() and len(supervisor) == 1
    async with supervisor:
        await asyncio.wait_for(ran.wait(), 10)


async def test_shutdown_cancels_and_awaits_running_tasks() -> None:
    """aclose() cancels a task still running and returns after it has ended."""
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async with TaskSupervisor() as supervisor:
        supervisor.spawn(forever())
        await asyncio.wait_for(started.wait(), 10)
    assert cancelled.is_set() and len(supervisor) == 0


async def test_spawn_after_close_is_refused() -> None:
    """Spawning on a closed supervisor raises and closes the coroutine."""

    async def work() -> None:
        pass

    supervisor = TaskSupervisor()
    await supervisor.aclose()
    coro = work()
    with pytest.raises(RuntimeError, match="closed"):
        supervisor.spawn(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


async def test_waiting_work_is_closed_at_shutdown() -> None:
    """Work that never started is closed at shutdown, not left pending."""

    async def work() -> None:
        pass

    supervisor = TaskSupervisor()
    coro = work()
    supervisor.spawn(coro)
    await supervisor.aclose()
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


async def test_failed_task_is_logged_with_the_scheduling_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A task raising after its request ended is logged with that request's ID."""
    app = build_app(stream=io.StringIO())
    failed = asyncio.Event()

    async def doomed() -> None:
        try:
            raise RuntimeError("background boom")
        finally:
            failed.set()

    @app.post("/jobs")
    async def jobs(request: Request) -> str:
        request.app.state.tasks.spawn(doomed(), name="doomed")
        return "accepted"

    async with serve(app) as client:
        reply = await client.post("/jobs", headers={"X-Request-ID": "req-123"})
        await asyncio.wait_for(failed.wait(), 10)
        for _ in range(100):  # the done-callback runs on a later loop iteration
            if app.state.tasks.failures:
                break
            await asyncio.sleep(0)
    assert reply.json() == "accepted"
    logged = [
        (r.task, r.request_id)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "flext_api.composition.tasks"
    ]
    assert logged == [("doomed", "req-123")]


def test_repr_shows_phase_and_counts() -> None:
    """The repr tells the phase and the running and waiting counts."""
    assert repr(TaskSupervisor()) == "<TaskSupervisor [waiting | 0 running | 0 waiting]>"


# -- bad inputs -------------------------------------------------------------------------
async def test_spawn_refuses_what_is_not_a_coroutine_and_loses_no_waiting_work() -> None:
    """spawn(5) before start is a TypeError at once; the work already waiting still runs."""
    supervisor = TaskSupervisor()
    ran: list[str] = []

    async def work() -> None:
        ran.append("work")

    supervisor.spawn(work(), name="work")
    with pytest.raises(TypeError, match="spawn\\(\\) takes a coroutine, got int 5"):
        supervisor.spawn(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"call it: spawn\(work\(\)\), not spawn\(work\)"):
        supervisor.spawn(work)  # type: ignore[arg-type]
    async with supervisor:
        await asyncio.sleep(0)
    assert ran == ["work"]
