"""``TaskSupervisor``: background work tied to an app's lifespan.

``supervisor.spawn(coro)`` from a route, a plugin or start-up code runs ``coro`` in the
background - also from a sync (``def``) route, which FastAPI runs in a worker thread: the
task is handed to the app's event loop. Work spawned before the app has started waits
until it has; at shutdown every task still running is cancelled and awaited (so no task
outlives the event loop and nothing is "destroyed but pending"), for at most
``shutdown_timeout`` seconds: a task that ignores its cancellation is logged and left
behind rather than holding the shutdown for ever. A task that fails is logged with its
name and the request ID that scheduled it - the request has long been answered by then,
so the log is the only place the failure can go. That includes a task ending in a
``CancelledError`` it was never asked for (it awaited something another task
cancelled): only the shutdown cancels a supervised task.

Unlike FastAPI's ``BackgroundTasks`` (run after one response, inside that request), a
supervised task is not bound to a request and is cancelled only at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any

from .._context import get_request_id
from .._numbers import is_real

__all__ = ["TaskSupervisor"]

_logger = logging.getLogger("flext_api.composition.tasks")


class TaskSupervisor:
    """A small supervised task group (see the module docstring).

    ``shutdown_timeout`` bounds how long :meth:`aclose` waits for the cancelled tasks
    (seconds > 0, or None to wait for ever).
    """

    def __init__(
        self, *, logger: logging.Logger | None = None, shutdown_timeout: float | None = 10.0
    ) -> None:
        if shutdown_timeout is not None:
            if not is_real(shutdown_timeout):
                raise TypeError(
                    "shutdown_timeout must be a number of seconds or None, got "
                    f"{type(shutdown_timeout).__name__} {shutdown_timeout!r}"
                )
            if not shutdown_timeout > 0:  # also refuses NaN
                raise ValueError(f"shutdown_timeout must be > 0 seconds, got {shutdown_timeout}")
        self.logger = logger if logger is not None else _logger
        self.shutdown_timeout = shutdown_timeout
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiting: list[tuple[Coroutine[Any, Any, Any], str, str | None]] = []
        # spawn() may run in a worker thread (a sync route): the phase and the waiting
        # list change under this lock, tasks are created on the loop's own thread.
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
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

        Safe to call from another thread (a sync route): the task starts on the loop
        the supervisor was started on.

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
        label = name or str(getattr(coro, "__qualname__", "task"))
        request_id = get_request_id()
        with self._lock:
            if self.closed:
                coro.close()
                raise RuntimeError("the task supervisor is closed: the app is shutting down")
            if not self.started:
                self._waiting.append((coro, label, request_id))
                return
            loop = self._loop
        assert loop is not None  # set with started
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # a worker thread: no loop of its own
            running = None
        if running is loop:
            self._start(coro, label, request_id)
            return
        try:
            loop.call_soon_threadsafe(self._start_soon, coro, label, request_id)
        except RuntimeError as exc:  # the loop has been closed
            coro.close()
            raise RuntimeError(
                "the task supervisor's event loop is closed: the app has shut down"
            ) from exc

    def _start_soon(
        self, coro: Coroutine[Any, Any, Any], name: str, request_id: str | None
    ) -> None:
        # Handed over from another thread; the shutdown may have begun meanwhile.
        if self.closed:
            coro.close()
            self.logger.warning(
                "background task %s not started: the app shut down first (request_id=%s)",
                name,
                request_id,
                extra={"task": name, "request_id": request_id},
            )
            return
        self._start(coro, name, request_id)

    def _start(self, coro: Coroutine[Any, Any, Any], name: str, request_id: str | None) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(t, request_id))

    def _done(self, task: asyncio.Task[Any], request_id: str | None) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            if task.cancelling() > 0:  # cancel() was called on it: the shutdown
                return
            # Nobody cancelled the task: it raised the CancelledError of something it
            # awaited, and stopped short of its work like any failing task.
            self.failures += 1
            self.logger.error(
                "background task %s failed (request_id=%s): it ended in a CancelledError "
                "although it was not cancelled",
                task.get_name(),
                request_id,
                extra={"task": task.get_name(), "request_id": request_id},
            )
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
        loop = asyncio.get_running_loop()
        with self._lock:
            self._loop = loop
            self.started = True
            waiting, self._waiting = self._waiting, []
        for coro, name, request_id in waiting:
            self._start(coro, name, request_id)

    async def aclose(self) -> None:
        """Cancel every task still running and wait for them to end (``shutdown_timeout``).

        A task still running when the timeout is up ignored its cancellation: it is
        logged and left behind, so one stubborn task cannot hold the app's shutdown.
        """
        with self._lock:
            self.closed = True
            waiting, self._waiting = self._waiting, []
        for coro, _, _ in waiting:
            coro.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, stuck = await asyncio.wait(tasks, timeout=self.shutdown_timeout)
        for task in stuck:
            self.logger.error(
                "background task %s still running %s s after its cancellation: left behind",
                task.get_name(),
                self.shutdown_timeout,
                extra={"task": task.get_name()},
            )

    async def __aenter__(self) -> TaskSupervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
