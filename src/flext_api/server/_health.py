"""Liveness and readiness (draft-inadarei-api-health-check, ``application/health+json``).

``/health`` (liveness) answers ``{"status": "pass"}`` while the process can serve at all;
it runs no dependency check, so a slow database never gets the pod restarted.
``/ready`` (readiness) runs every registered check concurrently, each bounded by
``check_timeout``: 200 when all pass, 503 when one fails, raises or hangs - and 503 before
start-up completes and from the moment shutdown begins (the drain), so the load balancer
stops sending traffic while in-flight requests finish.

A check is ``async def check() -> object``: returning ``False`` or raising fails it,
anything else passes; ending cancelled (it awaited something another task cancelled, as
a closing pool's ping does) fails it too. A plain function works as well - called on the
event loop, so the timeout cannot interrupt it; if it returns an awaitable (``lambda:
client.ping()``), that is awaited within the timeout. Whatever a check does, the probe
answers 200 or 503, never 500. Why a check failed is logged, not published.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["HEALTH_JSON", "ReadinessCheck", "ReadinessChecks", "liveness", "readiness"]

HEALTH_JSON = "application/health+json"
ReadinessCheck = Callable[[], Awaitable[object]] | Callable[[], object]
_PASS_BODY = orjson.dumps({"status": "pass"})


class ReadinessChecks:
    """Named async dependency checks, run together with a timeout."""

    def __init__(self, *, timeout: float, logger: Any) -> None:
        self.timeout = timeout
        self._logger = logger
        self._checks: dict[str, ReadinessCheck] = {}
        self._stragglers: set[asyncio.Future[object]] = set()

    def add(self, name: str, check: ReadinessCheck) -> None:
        """Register ``check`` under ``name`` (ValueError if the name is taken)."""
        if not callable(check):
            raise TypeError(
                f"readiness check {name!r} must be a callable (async, or a function "
                "returning a result or an awaitable)"
            )
        if name in self._checks:
            raise ValueError(f"a readiness check named {name!r} is already registered")
        self._checks[name] = check

    @property
    def names(self) -> list[str]:
        """The registered check names, in registration order."""
        return list(self._checks)

    async def run(self) -> tuple[bool, dict[str, list[dict[str, str]]]]:
        """Run all checks; (all passed, the ``checks`` member of the health document)."""
        if not self._checks:
            return True, {}
        # Each check is called inside its own task, so one that raises before making a
        # coroutine (``lambda: client.ping()`` with no client yet) fails alone.
        tasks = {name: asyncio.ensure_future(_call(check)) for name, check in self._checks.items()}
        try:
            _done, pending = await asyncio.wait(tasks.values(), timeout=self.timeout)
        except BaseException:  # the probe itself was cancelled: leave no check running
            self._abandon(tasks.values())
            raise
        self._abandon(pending)
        results: dict[str, list[dict[str, str]]] = {}
        healthy = True
        for name, task in tasks.items():
            if task in pending:
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

    def _abandon(self, tasks: Iterable[asyncio.Future[object]]) -> None:
        for task in tasks:
            if task.done():
                if not task.cancelled():
                    task.exception()  # retrieved, so asyncio does not log "never retrieved"
                continue
            # Not awaited: a check that ignores cancellation must not hold the probe.
            task.cancel()
            self._stragglers.add(task)
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Future[object]) -> None:
        self._stragglers.discard(task)
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
