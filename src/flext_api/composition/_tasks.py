"""``TaskSupervisor``: background work tied to an app's lifespan.

``supervisor.spawn(coro)`` from a route, a plugin or start-up code runs ``coro`` in the
background. Work spawned before the app has started waits until it has; at shutdown
every task still running is cancelled and awaited (so no task outlives the event loop
and nothing is "destroyed but pending"). A task that fails is logged with its name and
the request ID that scheduled it - the request has long been answered by then, so the
log is the only place the failure can go.

Unlike FastAPI's ``BackgroundTasks`` (run after one response, inside that request), a
supervised task is not bound to a request and is cancelled only at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from .._context import get_request_id

__all__ = ["TaskSupervisor"]

_logger = logging.getLogger("flext_api.composition.tasks")


class TaskSupervisor:
    """A small supervised task group (see the module docstring)."""

    def __init__(self, *, logger: logging.Logger | None = None) -> None:
        self.logger = logger if logger is not None else _logger
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiting: list[tuple[Coroutine[Any, Any, Any], str, str | None]] = []
        self.started = False
        self.closed = False
        self.failures = 0

    def __repr__(self) -> str:
        phase = "closed" if self.closed else "running" if self.started else "waiting"
        running, waiting = len(self._tasks), len(self._waiting)
        return f"<TaskSupervisor [{phase} | {running} running | {waiting} waiting]>"

    def __len__(self) -> int:
        return len(self._tasks) + len(self._waiting)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> None:
        """Run ``coro`` in the background (once the app has started).

        Raises:
            TypeError: ``coro`` is not a coroutine (``spawn(work())``, not ``spawn(work)``).
            RuntimeError: the supervisor is closed (``coro`` is closed, never run).
        """
        given: object = coro
        if not asyncio.iscoroutine(given):
            hint = " (call it: spawn(work()), not spawn(work))" if callable(given) else ""
            raise TypeError(
                f"spawn() takes a coroutine, got {type(given).__name__} {given!r}{hint}"
            )
        if self.closed:
            coro.close()
            raise RuntimeError("the task supervisor is closed: the app is shutting down")
        label = name or str(getattr(coro, "__qualname__", "task"))
        request_id = get_request_id()
        if self.started:
            self._start(coro, label, request_id)
        else:
            self._waiting.append((coro, label, request_id))

    def _start(self, coro: Coroutine[Any, Any, Any], name: str, request_id: str | None) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(t, request_id))

    def _done(self, task: asyncio.Task[Any], request_id: str | None) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.failures += 1
            self.logger.error(
                "background task %s failed (request_id=%s)",
                task.get_name(),
                request_id,
                exc_info=exc,
                extra={"task": task.get_name(), "request_id": request_id},
            )

    async def start(self) -> None:
        """Start the waiting work (the app has started)."""
        self.started = True
        waiting, self._waiting = self._waiting, []
        for coro, name, request_id in waiting:
            self._start(coro, name, request_id)

    async def aclose(self) -> None:
        """Cancel every task still running and wait for all of them to end."""
        self.closed = True
        for coro, _, _ in self._waiting:
            coro.close()
        self._waiting.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> TaskSupervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
