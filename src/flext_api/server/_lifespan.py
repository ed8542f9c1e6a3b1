"""Resources opened at start-up and closed, in reverse order, at shutdown.

A resource is anything with an async context manager protocol (a ``FlextApiClient``, an
aiohttp session, a Redis client), an async ``aclose()``, or a ``close()`` (sync or
async). Registered before start-up, context managers are entered when the app starts;
registered later, a resource is only closed at shutdown. A failing close is logged and
the others are still closed.

A resource that fails to open has its name and position noted on the exception (the
error of a Redis client rarely says which of three it was); those opened before it close.

Handlers added with ``@app.on_event("startup")`` run after the resources open, and
``"shutdown"`` handlers before they close. A failing start-up handler stops the start-up;
a failing shutdown handler does not stop the others (each failure is logged, the first
is raised once all have run), so one bad handler leaks nothing the others release.

Shutdown order: readiness flips to 503 and in-flight requests get up to
``drain_timeout`` to finish, then the user's lifespan exits, then resources close. (Under
uvicorn the lifespan shuts down after the server stopped listening and waited for its
connections; see :mod:`._health` for telling a load balancer earlier.) Once
shut down, the app reports not-ready ("starting") again: an app started a second time (a
second ``TestClient`` block) is not stuck "draining". Resources closed by the first
shutdown are not reopened - build the app again, or open per-run resources in your
``lifespan``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ._state import FlextServerState

__all__ = ["ResourceStack", "make_lifespan"]

T = TypeVar("T")
Closer = Callable[[], Awaitable[object]]
UserLifespan = Callable[["FastAPI"], AbstractAsyncContextManager[Any]]


def _closer(resource: Any) -> Closer:
    if callable(getattr(resource, "aclose", None)):
        return resource.aclose  # type: ignore[no-any-return]
    close = getattr(resource, "close", None)
    if callable(close):

        async def close_maybe_async() -> None:
            outcome = close()
            if inspect.isawaitable(outcome):
                await outcome

        return close_maybe_async
    return lambda: resource.__aexit__(None, None, None)


def _exit(resource: Any) -> Closer:
    async def exit_() -> None:
        await resource.__aexit__(None, None, None)

    return exit_


def _check(resource: object) -> None:
    if not any(hasattr(resource, name) for name in ("__aenter__", "aclose", "close")):
        raise TypeError(
            f"{type(resource).__name__} is not a resource: it needs an async context "
            "manager protocol, aclose() or close()"
        )


class ResourceStack:
    """Open resources in order, close them in reverse (see module docstring)."""

    def __init__(self, *, logger: Any) -> None:
        self._logger = logger
        self._pending: list[Any] = []
        self._closers: list[tuple[str, Closer]] = []
        self.opened = False

    def add(self, resource: T) -> T:
        """Register ``resource``; returns it, so ``client = state.add_resource(Client())``."""
        _check(resource)
        if self.opened:
            self._closers.append((type(resource).__name__, _closer(resource)))
        else:
            self._pending.append(resource)
        return resource

    async def open(self) -> None:
        """Enter the registered resources; on failure close those already open, re-raise."""
        pending, self._pending = self._pending, []
        for position, resource in enumerate(pending, 1):
            name = type(resource).__name__
            if not hasattr(resource, "__aenter__"):
                self._closers.append((name, _closer(resource)))
                continue
            try:
                await resource.__aenter__()
            except BaseException as exc:
                exc.add_note(f"while opening resource {name} ({position} of {len(pending)})")
                await self.close()
                raise
            self._closers.append((name, _exit(resource)))
        self.opened = True

    async def close(self) -> None:
        """Close every open resource, last opened first; log (not raise) failures."""
        while self._closers:
            name, closer = self._closers.pop()
            try:
                await closer()
            except Exception as exc:
                self._logger.error("resource close failed", resource=name, exc_info=exc)
        self.opened = False


def make_lifespan(
    state: FlextServerState, user_lifespan: UserLifespan | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[Any]]:
    """The app's lifespan: resources, the user's lifespan, readiness and the drain."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        try:
            await state.resources.open()
            try:
                # A lifespan replaces Starlette's default one, which is what ran the
                # handlers of @app.on_event("startup"/"shutdown"): run them here instead.
                await _run_handlers(app.router.on_startup)
                try:
                    if user_lifespan is None:
                        async with _serving(state):
                            yield None
                    else:
                        async with user_lifespan(app) as user_state, _serving(state):
                            yield user_state
                finally:
                    await _run_shutdown_handlers(app.router.on_shutdown, state.logger)
            finally:
                await state.resources.close()
        finally:
            # Not serving any more; a later start-up begins from "starting" again.
            state.started = False
            state.draining = False

    return lifespan


async def _run_handlers(handlers: list[Callable[[], Any]]) -> None:
    for handler in list(handlers):
        outcome = handler()
        if inspect.isawaitable(outcome):
            await outcome


async def _run_shutdown_handlers(handlers: list[Callable[[], Any]], logger: Any) -> None:
    """Run every handler; log each failure, raise the first once all have run."""
    first: Exception | None = None
    for handler in list(handlers):
        try:
            outcome = handler()
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            name = getattr(handler, "__qualname__", type(handler).__name__)
            logger.error("shutdown handler failed", handler=name, exc_info=exc)
            if first is None:
                first = exc
    if first is not None:
        raise first


@asynccontextmanager
async def _serving(state: FlextServerState) -> AsyncIterator[None]:
    state.started = True
    try:
        yield
    finally:
        await state.drain()
