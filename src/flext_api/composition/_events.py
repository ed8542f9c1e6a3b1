"""``EventBus`` and ``Event``: publish/subscribe inside a service, optionally across processes.

The seed's shape: ``bus.subscribe("user.created", handler)``, ``bus.add_middleware(mw)``
(a middleware returns the event - changed or not - or None to drop it) and
``await bus.publish(Event("user.created", {"user": user}))``. On top of it:

* handlers may be sync or async; the handlers of one event run concurrently and a
  failing one is logged without touching the others (the seed's ``_call_handler``) -
  also one that raises ``asyncio.CancelledError`` without its task being cancelled
  (it awaited something another task cancelled). Only the cancellation of the task
  that publishes (or of a transport's consumer) propagates;
* wildcard subscriptions with shell patterns: ``"user.*"``, ``"*"``. A subscription
  name holding ``*``, ``?`` or ``[`` is a pattern, and it also matches an event of
  exactly that name: ``"items[0].changed"`` reaches its subscribers (as well as
  ``items0.changed``, which the pattern matches). To match a literal ``*``, ``?`` or
  ``[`` and nothing else there, bracket it: ``"price[*]"`` matches ``price*``, not
  ``price.eur``;
* typed events: ``bus.subscribe(OrderPlaced, handler)`` for a dataclass or pydantic
  class; publishing an instance reaches the handlers of its class (and of its name,
  ``OrderPlaced`` or the class's ``event_name``). The name is what travels: a
  transport's receiver rebuilds the class subscribed under it. One bus therefore
  holds one class per name: subscribing a second class of the same name (two
  ``OrderPlaced`` in two modules) is a ``ConfigError`` (``CONFIG_ERROR``) naming both,
  and so is publishing an instance of another class under a subscribed class's name
  (an instance of a subclass is fine) - through a transport its payload would have
  reached the subscribed class's handlers, rebuilt as that class, and without one it
  would not. Give one class an ``event_name`` (``event_name: ClassVar[str] =
  "shipping.order_placed"``) to tell them apart. Across processes only the name is
  compared: a consumer may rebuild an event as a class of its own with the same name;
* a transport (:class:`~flext_api.composition.RedisStreamTransport`) makes ``publish``
  go through Redis Streams so every consumer group sees each event at least once.

Without a transport ``publish`` returns once every handler has finished (as the seed).
Unsubscribing a class's last handler also forgets the class: events received from a
transport under its name are then plain :class:`Event` s again, and another class may
take the name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import itertools
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any, Protocol

from .._errors import ConfigError, FlextApiError
from .._result import FlextResult

__all__ = ["Delivery", "Event", "EventBus", "EventTransport", "current_delivery", "event_name"]

_logger = logging.getLogger("flext_api.composition.events")

Handler = Callable[[Any], object]
Middleware = Callable[[Any], object]

# Event names whose handler lists are kept (the lookup is cached per name): names may
# carry ids (``order.7.paid`` for ``order.*.paid``) or come from other processes, so an
# unbounded cache grew with every distinct name for the life of the process.
_RESOLVED_MAX = 1024


class _IdSource:
    """Unique ids without a system call each: a random per-process prefix and a counter.

    The prefix is drawn again in a forked child, so two processes never share one.
    """

    __slots__ = ("counter", "prefix")

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.prefix = uuid.uuid4().hex[:16]
        self.counter = itertools.count(1)


_ids = _IdSource()
os.register_at_fork(after_in_child=_ids.reseed)


def new_event_id() -> str:
    """A new event id: 16 random hex digits of this process, then a counter."""
    return f"{_ids.prefix}{next(_ids.counter):016x}"


class Event:
    """A named event with a payload, a UTC timestamp and a unique ``id``.

    ``attempt`` is 1 for a first delivery and grows when a transport redelivers it, so a
    handler can tell a retry from a first try (see :func:`idempotent`).
    """

    __slots__ = ("attempt", "data", "id", "name", "timestamp")

    def __init__(
        self,
        name: str,
        data: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        timestamp: datetime | None = None,
        attempt: int = 1,
    ) -> None:
        if type(name) is not str:
            _check_name(name, "an Event's name")
        self.name = name
        if type(data) is dict:
            self.data: dict[str, Any] = data
        else:
            try:
                self.data = dict(data or {})
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"an Event's data must be a mapping (or None), got {type(data).__name__}"
                ) from exc
        self.timestamp = timestamp if timestamp is not None else datetime.now(UTC)
        self.id = id if id is not None else new_event_id()
        self.attempt = attempt

    def __repr__(self) -> str:
        return f"Event({self.name!r}, id={self.id!r}, attempt={self.attempt})"


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the event being handled came from: its id, attempt and stream entry."""

    event_id: str
    attempt: int
    message_id: str
    consumer: str


delivery_var: ContextVar[Delivery | None] = ContextVar("flext_api_event_delivery", default=None)


def current_delivery() -> Delivery | None:
    """The delivery being handled (inside a handler run by a transport), else None."""
    return delivery_var.get()


def event_name(event: object) -> str:
    """The name an event is published under: ``Event.name``, else the class's name."""
    if isinstance(event, Event):
        return event.name
    return str(getattr(type(event), "event_name", type(event).__name__))


class EventTransport(Protocol):
    """Carries published events to the consuming processes (Redis Streams, ...)."""

    async def send(self, event: object) -> None:
        """Hand ``event`` to the transport (returns once it is stored)."""
        ...

    async def start(self, bus: EventBus) -> None:
        """Begin delivering received events to ``bus.dispatch``."""
        ...

    async def stop(self) -> None:
        """Stop receiving; events being handled are finished or left for redelivery."""
        ...


def _type_name(klass: type) -> str:
    """The name instances of ``klass`` are published under (see :func:`event_name`)."""
    return str(getattr(klass, "event_name", klass.__name__))


def _qualified(klass: type) -> str:
    return f"{klass.__module__}.{klass.__qualname__}"


def _name_taken(name: str, holder: type, other: type, doing: str) -> ConfigError:
    """The error for ``other`` used under ``name``, which the subscribed ``holder`` has."""
    if _qualified(holder) == _qualified(other):
        which = f"another class {_qualified(other)} (defined twice, or its module loaded twice)"
    else:
        which = _qualified(other)
    return ConfigError(
        f"event name {name!r} belongs to {_qualified(holder)} on this bus: {doing} "
        f"{which} under it too would hand one class's events to the other's handlers "
        "(a transport rebuilds a received event as the class subscribed under its name); "
        "give one of them its own name: event_name: ClassVar[str] = '...'",
        details={"event_name": name, "classes": [_qualified(holder), _qualified(other)]},
    )


def _check_name(name: object, what: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, got {type(name).__name__} {name!r}")


def _check_key(event: object) -> None:
    """Refuse what can never match a published event: subscriptions take a name or a class."""
    if isinstance(event, type):
        return
    if not isinstance(event, str):
        raise TypeError(
            "an event subscription takes an event name (a str, shell patterns allowed) "
            f"or an event class, got {type(event).__name__} {event!r}"
        )
    if not event:
        raise ValueError("an event name cannot be empty: no published event has that name")


def cancelling() -> bool:
    """True when the running task itself is being cancelled (``Task.cancel()``).

    A ``CancelledError`` raised while this is False came from something the code
    awaited (a future another task cancelled): a failure of that code, not a request
    to stop this task.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _maybe_await(value: object) -> object:
    if inspect.isawaitable(value):
        return await value
    return value


class EventBus:
    """In-process publish/subscribe (see the module docstring).

    >>> bus = EventBus()
    >>> seen = []
    >>> bus.subscribe("user.*", lambda e: seen.append(e.name))
    >>> import asyncio; asyncio.run(bus.publish(Event("user.created", {"id": 1})))
    >>> seen
    ['user.created']
    """

    def __init__(self, *, transport: EventTransport | None = None) -> None:
        self._by_name: dict[str, list[Handler]] = {}
        self._by_type: dict[type, list[Handler]] = {}
        self._patterns: list[tuple[str, Handler]] = []
        self._middleware: list[Middleware] = []
        # handlers per event name (or class and name), rebuilt after any (un)subscribe
        self._resolved: dict[Any, tuple[Handler, ...]] = {}
        self.transport = transport
        self.logger = _logger
        self.types: dict[str, type] = {}

    def __repr__(self) -> str:
        count = (
            sum(map(len, self._by_name.values()))
            + sum(map(len, self._by_type.values()))
            + len(self._patterns)
        )
        via = type(self.transport).__name__ if self.transport is not None else "local"
        return f"<EventBus [{count} handlers | {len(self._middleware)} middleware | {via}]>"

    # -- subscriptions ------------------------------------------------------------------
    def subscribe(self, event: str | type, handler: Handler) -> None:
        """Call ``handler(event)`` for events named ``event`` (a glob) or of class ``event``.

        A name with ``*``, ``?`` or ``[`` is a shell pattern; it matches an event of
        exactly that name too (``"items[0].changed"``). ``[*]`` matches a literal ``*``.

        Raises:
            TypeError: ``event`` is neither a str nor a class, or ``handler`` is not
                callable.
            ValueError: ``event`` is an empty name.
            ConfigError: ``event`` is a class and another subscribed class has its
                name (``details["classes"]`` names both).
        """
        _check_key(event)
        if not callable(handler):
            raise TypeError(f"event handler for {event!r} is not callable")
        if isinstance(event, type):
            name = _type_name(event)
            holder = self.types.get(name, event)
            if holder is not event:
                raise _name_taken(name, holder, event, "subscribing")
            self._resolved.clear()
            self._by_type.setdefault(event, []).append(handler)
            self.types[name] = event
            return
        self._resolved.clear()
        if any(ch in event for ch in "*?["):
            self._patterns.append((event, handler))
        else:
            self._by_name.setdefault(event, []).append(handler)

    def unsubscribe(self, event: str | type, handler: Handler) -> bool:
        """Remove one subscription; True when it existed (errors as :meth:`subscribe`)."""
        _check_key(event)
        self._resolved.clear()
        if not isinstance(event, type) and (event, handler) in self._patterns:
            self._patterns.remove((event, handler))
            return True
        table: dict[Any, list[Handler]] = (
            self._by_type if isinstance(event, type) else self._by_name
        )
        handlers = table.get(event)
        if handlers is None or handler not in handlers:
            return False
        handlers.remove(handler)
        if not handlers:
            del table[event]
            if isinstance(event, type):
                self._forget_type(event)
        return True

    def _forget_type(self, klass: type) -> None:
        """``klass`` has no handler left: stop rebuilding received events as it (the
        name is free for another class)."""
        name = _type_name(klass)
        if self.types.get(name) is klass:
            del self.types[name]

    def _check_published(self, event: object) -> None:
        """ConfigError when ``event``'s name belongs to a subscribed class it is not of."""
        if isinstance(event, Event):
            return
        name = event_name(event)
        holder = self.types.get(name)
        if holder is not None and not isinstance(event, holder):
            raise _name_taken(name, holder, type(event), "publishing")

    def on(self, event: str | type) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`subscribe` (``event`` is checked at once)."""
        _check_key(event)

        def decorate(handler: Handler) -> Handler:
            self.subscribe(event, handler)
            return handler

        return decorate

    def add_middleware(self, middleware: Middleware) -> None:
        """Run ``middleware(event)`` before delivery; it returns the event to go on with
        (possibly a new one) or None to drop it (only None: an event may be falsy)."""
        if not callable(middleware):
            raise TypeError(f"event middleware {middleware!r} is not callable")
        self._middleware.append(middleware)

    def handlers_for(self, event: object) -> tuple[Handler, ...]:
        """The handlers ``event`` would reach: by name, by class, then by pattern."""
        if type(event) is Event:
            key: Any = event.name  # the hot path: one dict lookup
        else:
            key = (type(event), event_name(event))
        found = self._resolved.get(key)
        if found is None:
            if len(self._resolved) >= _RESOLVED_MAX:
                self._resolved.clear()  # the names in use are looked up again
            found = self._resolved[key] = self._collect(event)
        return found

    def _collect(self, event: object) -> tuple[Handler, ...]:
        name = event_name(event)
        found = list(self._by_name.get(name, ()))
        for klass in type(event).__mro__:
            if klass is Event:
                break  # an Event reaches its handlers by name; its subclasses by class too
            found.extend(self._by_type.get(klass, ()))
        # A name always matches itself: ``items[0].changed`` is a pattern for fnmatch
        # (``[0]`` a character class) that would not match the event of that name.
        found.extend(
            h for pattern, h in self._patterns if name == pattern or fnmatchcase(name, pattern)
        )
        return tuple(found)

    # -- publishing ---------------------------------------------------------------------
    async def publish(self, event: object) -> FlextResult[object]:
        """Run the middleware, then deliver ``event`` (through the transport when set).

        Returns a success holding the event as delivered, a success holding None when a
        middleware dropped it, or a failure when a middleware or the transport failed
        (the seed logs and returns; a failure result says the same and can be checked),
        or when the event is of a class whose name another subscribed class has
        (``CONFIG_ERROR``; see the module docstring).
        """
        current: object = event
        for middleware in self._middleware:
            try:
                current = await _maybe_await(middleware(current))
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and cancelling():
                    raise
                self.logger.error(
                    "event middleware failed", exc_info=exc, extra={"event": repr(event)}
                )
                return FlextResult.fail(f"event middleware failed: {exc!r}", exception=exc)
            if current is None:
                return FlextResult.ok(None)
        try:
            self._check_published(current)
        except ConfigError as exc:
            self.logger.error("event refused: %s", exc.message, extra={"event": repr(current)})
            return FlextResult.fail(exc)
        if self.transport is not None:
            try:
                await self.transport.send(current)
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and cancelling():
                    raise
                self.logger.error(
                    "event transport failed", exc_info=exc, extra={"event": repr(current)}
                )
                if isinstance(exc, FlextApiError):  # typed by the transport: keep its code
                    return FlextResult.fail(exc)
                return FlextResult.fail(f"event transport failed: {exc!r}", exception=exc)
            return FlextResult.ok(current)
        await self.dispatch(current)
        return FlextResult.ok(current)

    async def dispatch(self, event: object) -> list[BaseException]:
        """Run the handlers of ``event``; return the errors they raised.

        Sync handlers run one after the other as they are reached; the coroutines of
        async handlers then run concurrently. Each error is logged and the other
        handlers are not disturbed - a ``CancelledError`` included, unless the task
        running ``dispatch`` is itself being cancelled, which propagates. Transports call
        this for the events they receive and acknowledge an event only when it returns
        no error.
        """
        errors: list[BaseException] = []
        pending: list[tuple[Handler, Any]] = []
        for handler in self.handlers_for(event):
            try:
                outcome = handler(event)
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and cancelling():
                    raise
                errors.append(self._failed(handler, event, exc))
                continue
            if outcome is not None and inspect.isawaitable(outcome):
                pending.append((handler, outcome))
        if len(pending) == 1:
            handler, awaitable = pending[0]
            await self._settle(handler, event, awaitable, errors)
        elif pending:
            await asyncio.gather(*(self._settle(h, event, a, errors) for h, a in pending))
        return errors

    async def _settle(
        self, handler: Handler, event: object, awaitable: Any, errors: list[BaseException]
    ) -> None:
        try:
            await awaitable
        except (Exception, asyncio.CancelledError) as exc:
            # Under gather each handler has a task of its own, cancelled only when the
            # publisher's task is: a CancelledError that did not come from there is the
            # handler's failure.
            if isinstance(exc, asyncio.CancelledError) and cancelling():
                raise
            errors.append(self._failed(handler, event, exc))

    def _failed(self, handler: Handler, event: object, exc: BaseException) -> BaseException:
        self.logger.error(
            "event handler failed",
            exc_info=exc,
            extra={"event": event_name(event), "handler": getattr(handler, "__name__", "?")},
        )
        return exc

    # -- lifecycle (transport) ------------------------------------------------------------
    async def start(self) -> None:
        """Start receiving from the transport (no-op without one)."""
        if self.transport is not None:
            await self.transport.start(self)

    async def stop(self) -> None:
        """Stop receiving from the transport (no-op without one)."""
        if self.transport is not None:
            await self.transport.stop()

    async def __aenter__(self) -> EventBus:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def to_payload(event: object) -> tuple[str, dict[str, Any]]:
    """``(name, data)`` of an event, for transports that serialize."""
    if isinstance(event, Event):
        return event.name, event.data
    if dataclasses.is_dataclass(event) and not isinstance(event, type):
        return event_name(event), dataclasses.asdict(event)
    dump: Callable[..., dict[str, Any]] | None = getattr(event, "model_dump", None)
    if dump is not None:
        return event_name(event), dump(mode="json")
    raise TypeError(
        f"cannot serialize {type(event).__name__}: publish an Event, a dataclass or a "
        "pydantic model"
    )


def from_payload(bus: EventBus, name: str, data: dict[str, Any]) -> object:
    """Rebuild a typed event when ``bus`` subscribed its class, else an :class:`Event`."""
    klass = bus.types.get(name)
    if klass is None:
        return Event(name, data)
    validate: Callable[[Any], object] | None = getattr(klass, "model_validate", None)
    return validate(data) if validate is not None else klass(**data)
