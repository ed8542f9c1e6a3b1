"""``get_logger`` and ``register_enricher``: the logging helpers the FLEXT guides import.

The guides write ``from flext_core import get_logger`` and log with keyword fields
(``logger.info("Request allowed", requests_in_window=3)``); fapilog's guide registers
*async* enrichers, ``async def enricher(logger, method_name, event_dict)``, that add
fields to every event (often from an :class:`~flext_api.AsyncSmartCache`).
:func:`get_logger` gives a structlog logger that runs those enrichers:

* ``await log.ainfo(...)`` awaits them on the caller's loop, then emits;
* ``log.info(...)`` outside an event loop runs them to completion, then emits;
* ``log.info(...)`` inside a running loop cannot wait for a coroutine without blocking
  that loop, so the event is emitted by a task once its enrichers are done (as fapilog's
  queue worker does); :func:`flush_enrichers` waits for those tasks.

An enricher that raises does not stop the event: the event carries
``enricher_error="<name>: <exception>"`` instead of that enricher's fields. With no
enricher registered, a call is a plain structlog call.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

import structlog

__all__ = [
    "Enricher",
    "FlextLogger",
    "flush_enrichers",
    "get_logger",
    "register_enricher",
    "remove_enricher",
]

EventDict: TypeAlias = MutableMapping[str, Any]
Enricher: TypeAlias = Callable[[Any, str, EventDict], Awaitable[EventDict | None]]

_enrichers: list[Enricher] = []
_pending: set[asyncio.Task[None]] = set()


def register_enricher(enricher: Enricher) -> None:
    """Run ``enricher(logger, method_name, event_dict)`` for every event of :func:`get_logger`.

    Registering the same function twice keeps one registration.
    """
    if not callable(enricher):
        raise TypeError(f"an enricher must be callable, got {type(enricher).__name__}")
    if enricher not in _enrichers:
        _enrichers.append(enricher)


def remove_enricher(enricher: Enricher) -> bool:
    """Stop running ``enricher``; False when it was not registered."""
    if enricher in _enrichers:
        _enrichers.remove(enricher)
        return True
    return False


async def flush_enrichers() -> None:
    """Wait until every event logged inside this loop has been enriched and emitted."""
    while _pending:
        await asyncio.gather(*list(_pending))


async def _enrich(logger: Any, method: str, event_dict: EventDict) -> EventDict:
    for enricher in _enrichers:
        try:
            out = await enricher(logger, method, event_dict)
        except Exception as exc:  # noqa: BLE001 - recorded on the event, never lost
            name = getattr(enricher, "__name__", type(enricher).__name__)
            event_dict["enricher_error"] = f"{name}: {type(exc).__name__}: {exc}"
            continue
        if out is not None:
            event_dict = out
    return event_dict


class FlextLogger:
    """A structlog logger taking keyword fields, with the registered enrichers applied.

    ``extra={...}`` (the stdlib habit in the guides) is merged into the fields.
    """

    __slots__ = ("_log", "name")

    def __init__(self, name: str, log: Any = None) -> None:
        self.name = name
        self._log: Any = log if log is not None else structlog.get_logger(name)

    def bind(self, **fields: Any) -> FlextLogger:
        """A logger that adds ``fields`` to every event."""
        return FlextLogger(self.name, self._log.bind(**fields))

    def _emit(self, method: str, event_dict: EventDict) -> None:
        event = event_dict.pop("event", "")
        getattr(self._log, method)(event, **event_dict)

    def _fields(self, event: str, fields: dict[str, Any]) -> EventDict:
        extra = fields.pop("extra", None)
        if isinstance(extra, dict):
            fields = {**extra, **fields}
        return {"event": event, **fields}

    def _log_sync(self, method: str, event: str, fields: dict[str, Any]) -> None:
        event_dict = self._fields(event, fields)
        if not _enrichers:
            self._emit(method, event_dict)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._emit(method, asyncio.run(_enrich(self, method, event_dict)))
            return
        task = loop.create_task(self._alog(method, event_dict))
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    async def _alog(self, method: str, event_dict: EventDict) -> None:
        if _enrichers:
            event_dict = await _enrich(self, method, event_dict)
        self._emit(method, event_dict)

    def debug(self, event: str, **fields: Any) -> None:
        """Log at DEBUG."""
        self._log_sync("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log at INFO."""
        self._log_sync("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log at WARNING."""
        self._log_sync("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log at ERROR."""
        self._log_sync("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """Log at ERROR with the exception being handled."""
        # The exception itself, not True: an event emitted later by a task (see the
        # module doc) must still carry the exception being handled now.
        fields.setdefault("exc_info", sys.exc_info()[1] or True)
        self._log_sync("error", event, fields)

    async def ainfo(self, event: str, **fields: Any) -> None:
        """Log at INFO after awaiting the enrichers on this loop."""
        await self._alog("info", self._fields(event, fields))

    async def awarning(self, event: str, **fields: Any) -> None:
        """Log at WARNING after awaiting the enrichers on this loop."""
        await self._alog("warning", self._fields(event, fields))

    async def aerror(self, event: str, **fields: Any) -> None:
        """Log at ERROR after awaiting the enrichers on this loop."""
        await self._alog("error", self._fields(event, fields))

    def __repr__(self) -> str:
        return f"<FlextLogger {self.name!r}>"


def get_logger(name: str = "flext_api") -> FlextLogger:
    """A logger for ``name`` that takes keyword fields (``log.info("done", items=3)``)."""
    return FlextLogger(name)
