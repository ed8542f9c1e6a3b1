"""Liveness and readiness (draft-inadarei-api-health-check, ``application/health+json``).

``/health`` (liveness) answers ``{"status": "pass"}`` while the process can serve at all;
it runs no dependency check, so a slow database never gets the pod restarted.
``/ready`` (readiness) runs every registered check concurrently, each bounded by
``check_timeout``: 200 when all pass, 503 when one fails, raises or hangs - and 503 before
start-up completes and from the moment the drain begins, so the load balancer stops
sending traffic while in-flight requests finish. ``flext-api serve`` begins the drain on
SIGTERM/SIGINT, before uvicorn stops. Under plain uvicorn the lifespan's shutdown begins
it, but only after uvicorn closed its listener and waited for open connections: to be
seen 503 first, call ``app.state.flext.begin_drain()`` from a pre-stop hook or signal
handler, then let the server stop.

A check is ``async def check() -> object``: returning ``False`` or raising fails it,
anything else passes; ending cancelled (it awaited something another task cancelled, as
a closing pool's ping does) fails it too. A plain function works as well - called on the
event loop, so the timeout cannot interrupt it; if it returns an awaitable (``lambda:
client.ping()``), that is awaited within the timeout. Whatever a check does, the probe
answers 200 or 503, never 500. Why a check failed is logged, not published.

``/ready`` is public and exempt from rate limits, so probes arriving while a run is under
way share that run rather than each pinging every dependency again; and a check still
running from an earlier probe (it ignored the cancellation at its timeout) is not started
a second time: it fails as "timed out" until it ends, so one stuck check holds one task,
not one per probe.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["HEALTH_JSON", "ReadinessCheck", "ReadinessChecks", "liveness", "readiness"]

HEALTH_JSON = "application/health+json"
ReadinessCheck = Callable[[], Awaitable[object]] | Callable[[], object]
_PASS_BODY = orjson.dumps({"status": "pass"})
# (all passed, the ``checks`` member of the health document)
_Outcome = tuple[bool, dict[str, list[dict[str, str]]]]


class ReadinessChecks:
    """Named async dependency checks, run together with a timeout."""

    def __init__(self, *, timeout: float, logger: Any) -> None:
        self.timeout = timeout
        self._logger = logger
        self._checks: dict[str, ReadinessCheck] = {}
        self._stragglers: set[asyncio.Future[object]] = set()
        self._straggling: dict[str, asyncio.Future[object]] = {}  # name -> its straggler
        self._running: asyncio.Task[_Outcome] | None = None

    def add(self, name: str, check: ReadinessCheck) -> None:
        """Register ``check`` under ``name`` (ValueError if the name is taken)."""
        if not isinstance(name, str):
            raise TypeError(f"a readiness check name must be a str, not {type(name).__name__}")
        if not callable(check):
            raise TypeError(
                f"readiness check {name!r} must be a callable (async, or a function "
                "returning a result or an awaitable)"
            )
        if inspect.isasyncgenfunction(check) or inspect.isgeneratorfunction(check):
            # Calling one makes a generator, which would pass without running a line.
            raise TypeError(
                f"readiness check {name!r} is a generator function: use a function that "
                "returns (or an async one that awaits) its result"
            )
        if name in self._checks:
            raise ValueError(f"a readiness check named {name!r} is already registered")
        self._checks[name] = check

    @property
    def names(self) -> list[str]:
        """The registered check names, in registration order."""
        return list(self._checks)

    async def run(self) -> _Outcome:
        """Run all checks; (all passed, the ``checks`` member of the health document).

        A call made while an earlier one is still running waits for, and returns, that
        run's outcome (see module docstring).
        """
        if not self._checks:
            return True, {}
        loop = asyncio.get_running_loop()
        running = self._running
        if running is None or running.done() or running.get_loop() is not loop:
            running = self._running = loop.create_task(self._run_once())
            running.add_done_callback(self._finished)
        # Shielded: a probe whose client goes away must not cancel the run the other
        # probes wait for; the run itself ends within the check timeout.
        return await asyncio.shield(running)

    def _finished(self, run: asyncio.Task[_Outcome]) -> None:
        if self._running is run:
            self._running = None
        if not run.cancelled():
            run.exception()  # retrieved (every waiter may have gone); raised to those left

    async def _run_once(self) -> _Outcome:
        loop = asyncio.get_running_loop()
        # Each check is called inside its own task, so one that raises before making a
        # coroutine (``lambda: client.ping()`` with no client yet) fails alone.
        tasks: dict[str, asyncio.Future[object]] = {}
        for name, check in self._checks.items():
            straggler = self._straggling.get(name)
            if straggler is None or straggler.get_loop() is not loop:
                tasks[name] = loop.create_task(_call(check))
        try:
            pending: set[asyncio.Future[object]] = set()
            if tasks:
                _done, pending = await asyncio.wait(tasks.values(), timeout=self.timeout)
        except BaseException:  # the run itself was cancelled: leave no check running
            self._abandon(tasks)
            raise
        self._abandon({name: tasks[name] for name in tasks if tasks[name] in pending})
        results: dict[str, list[dict[str, str]]] = {}
        healthy = True
        for name in self._checks:
            task = tasks.get(name)
            if task is None:
                outcome = {"status": "fail", "output": "timed out"}
                self._logger.warning(
                    "readiness check still running from an earlier probe", check=name
                )
            elif task in pending:
                outcome = {"status": "fail", "output": "timed out"}
                self._logger.warning("readiness check timed out", check=name)
            elif task.cancelled():
                outcome = {"status": "fail", "output": "error"}
                self._logger.warning("readiness check failed", check=name, error="cancelled")
            elif (exc := task.exception()) is not None:
                outcome = {"status": "fail", "output": "error"}
                self._logger.warning("readiness check failed", check=name, error=repr(exc))
            elif task.result() is False:
                outcome = {"status": "fail", "output": "unhealthy"}
            else:
                outcome = {"status": "pass"}
            healthy = healthy and outcome["status"] == "pass"
            results[name] = [outcome]
        return healthy, results

    def _abandon(self, tasks: Mapping[str, asyncio.Future[object]]) -> None:
        for name, task in tasks.items():
            if task.done():
                if not task.cancelled():
                    task.exception()  # retrieved, so asyncio does not log "never retrieved"
                continue
            # Not awaited: a check that ignores cancellation must not hold the probe.
            task.cancel()
            self._stragglers.add(task)
            self._straggling[name] = task
            task.add_done_callback(functools.partial(self._forget, name))

    def _forget(self, name: str, task: asyncio.Future[object]) -> None:
        self._stragglers.discard(task)
        if self._straggling.get(name) is task:
            del self._straggling[name]
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log "never retrieved"


async def _call(check: ReadinessCheck) -> object:
    outcome = check()
    if inspect.isawaitable(outcome):
        return await outcome
    return outcome


def _health(status: int, document: dict[str, Any]) -> Response:
    return Response(orjson.dumps(document), status_code=status, media_type=HEALTH_JSON)


async def liveness(request: Request) -> Response:
    """``200 {"status": "pass"}``: the process is up and its event loop answers."""
    return Response(_PASS_BODY, media_type=HEALTH_JSON)


async def readiness(request: Request) -> Response:
    """200 when started, not draining and every check passes; 503 otherwise."""
    state = request.app.state.flext
    if state.draining:
        return _health(503, {"status": "fail", "output": "draining"})
    if not state.started:
        return _health(503, {"status": "fail", "output": "starting"})
    healthy, checks = await state.readiness.run()
    document: dict[str, Any] = {"status": "pass" if healthy else "fail"}
    if checks:
        document["checks"] = checks
    return _health(200 if healthy else 503, document)
