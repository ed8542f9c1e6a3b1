"""``Idempotency``: run a handler's effect once per event, although events may come twice.

At-least-once delivery (:class:`~flext_api.composition.RedisStreamTransport`) means a
handler may see an event again: after its process died mid-event, or after another
handler of the same event failed. Wrap the handler::

    once = Idempotency(RedisIdempotencyStore(redis))
    bus.subscribe("order.created", once(send_receipt))

The key is the event's id (``Event.id``, or the transport's delivery id for typed
events); it is recorded *after* the handler succeeded, so a crash mid-handler lets the
redelivery run it again (never zero times). In one process, a delivery whose key is
already running (the same event published twice, both copies in one batch of the
transport) waits for it, then is skipped - or runs, when the first one failed. Two
deliveries running at the same moment in *different* processes can both run - only when
``claim_idle`` is shorter than the handler - so effects that must never double still
need their own guard (a unique constraint, an idempotency key sent downstream).
``duplicates`` counts the deliveries skipped.

Each wrapped handler has a **name**, part of every key it stores, so two handlers of
one event keep apart and one handler is recognised in every process that shares the
store. It must therefore be the same in each process and differ between handlers:

* a function, or a method of a class, is named ``module.qualname`` by default
  (``billing.handlers.send_receipt``, ``billing.Notifier.send``; a module run with
  ``python -m billing.worker`` is ``billing.worker``, not ``__main__``);
* ``once(handler, name="receipt-email")`` names it explicitly, which a lambda, a
  ``functools.partial`` or a callable object needs (none has a name that says which
  one it is - ``Idempotency`` refuses them with a ConfigError instead of guessing);
* two different handlers may not share a name in one ``Idempotency``: wrapping
  ``Notifier("email").send`` and then ``Notifier("sms").send`` (two objects, one
  method name) is a ConfigError asking for ``name=``, where keying both alike would
  have silently skipped the second one as a duplicate. Wrapping the same handler again
  (for another event) is fine.

Renaming a handler (or its module) starts a new key space: events already handled
under the old name run once more.

A stored key is the name with ``%`` written ``%25`` and ``:`` written ``%3A``, a ``:``,
then the event's key (``flext:done:billing.handlers.send_receipt:<id>`` in Redis). The
name thus never contains the ``:`` that ends it, so handler ``a:b`` with key ``c`` and
handler ``a`` with key ``b:c`` do not share the key ``a:b:c`` (one's done-mark made the
other skip its event). A ``namespace`` is escaped the same way and put first, between
two ``:`` (``:shop%3A:billing.handlers.send_receipt:<id>`` for ``namespace="shop:"``):
a key starting with ``:`` has a namespace (an escaped name never starts with one), and
neither the namespace nor the name holds the ``:`` that ends it, so no two
(namespace, name, key) share a stored key. The namespace used to be glued on as it
was, so namespace ``shop`` with handler ``x.y`` and namespace ``shopx`` with handler
``.y`` shared their keys, as did namespace ``a:`` (handler ``b``, key ``c``) and no
namespace (handler ``a``, key ``b:c``): one's done-mark skipped the other's event.

Upgrading: without a namespace the keys are unchanged. With one, the keys are new, so
an event a namespaced handler handled before the upgrade runs it once more if it is
redelivered (within at-least-once, which handlers must bear anyway). The old keys are
not read: they are the ambiguous ones (handler ``shop`` without a namespace, event key
``x:7``, wrote ``shop:x:7``, the old key of handler ``x`` in namespace ``shop:``), and
reading them could skip an event that was never handled, which is worse than running one
twice. A handler *named* with a ``:`` or ``%`` stores its keys escaped since an earlier
release: an event it handled before that may run it once more when redelivered.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from .._clock import Clock, get_clock
from .._errors import ConfigError
from .._numbers import is_real
from ._events import Event, current_delivery

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "Idempotency",
    "IdempotencyStore",
    "MemoryIdempotencyStore",
    "RedisIdempotencyStore",
    "event_key",
]


class IdempotencyStore(Protocol):
    """Remembers which keys are done."""

    async def done(self, key: str) -> bool:
        """True when ``key`` was marked done (and has not expired)."""
        ...

    async def mark(self, key: str, ttl: float) -> None:
        """Remember ``key`` as done for ``ttl`` seconds."""
        ...


# The keys the current call chain is handling: a handler that publishes its own event
# again would otherwise wait on itself.
_handling: ContextVar[frozenset[str]] = ContextVar("flext_api_idempotent_keys", default=frozenset())

_PURGE_FROM = 1024  # keys held before a MemoryIdempotencyStore first drops expired ones
_LONGEST_TTL = 100 * 365 * 24 * 3600  # seconds: what Redis is asked for an endless ttl


class MemoryIdempotencyStore:
    """Done keys in this process (for one process, or tests).

    Expired keys are dropped as the store grows (each time it doubled), so the keys of
    events that never come again do not pile up in a long-running process.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = get_clock(clock)
        self._until: dict[str, float] = {}
        self._purge_at = _PURGE_FROM

    async def done(self, key: str) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if until <= self._clock.monotonic():
            del self._until[key]
            return False
        return True

    async def mark(self, key: str, ttl: float) -> None:
        now = self._clock.monotonic()
        self._until[key] = now + ttl
        if len(self._until) >= self._purge_at:
            self._until = {k: until for k, until in self._until.items() if until > now}
            self._purge_at = max(_PURGE_FROM, 2 * len(self._until))


def check_async_redis(client: object, owner: str, instead: str) -> None:
    """TypeError unless ``client`` can be a ``redis.asyncio`` client: a URL (say
    ``instead``) and a blocking ``redis.Redis`` (its replies cannot be awaited) are not."""
    if isinstance(client, str | bytes):
        raise TypeError(f"{owner} takes a redis.asyncio client: {instead}")
    try:
        import redis
    except ImportError:  # pragma: no cover - no redis, no blocking client either
        return
    if isinstance(client, redis.Redis):
        raise TypeError(
            f"{owner} takes a redis.asyncio client, got a blocking redis.Redis "
            "(its replies cannot be awaited)"
        )


class RedisIdempotencyStore:
    """Done keys in Redis, shared by every process (``SET key 1 EX ttl``).

    A ttl longer than a century (``float("inf")`` included) is stored as one: Redis
    refuses an expiry it cannot represent, which would fail every delivery after its
    handler had run.
    """

    def __init__(self, client: Redis, *, prefix: str = "flext:done:") -> None:
        check_async_redis(
            client,
            "RedisIdempotencyStore",
            "not a URL: RedisIdempotencyStore(redis.asyncio.from_url(url))",
        )
        self.redis = client
        self.prefix = prefix

    async def done(self, key: str) -> bool:
        return bool(await self.redis.exists(self.prefix + key))

    async def mark(self, key: str, ttl: float) -> None:
        await self.redis.set(self.prefix + key, b"1", ex=max(1, int(min(ttl, _LONGEST_TTL))))


def event_key(event: object) -> str | None:
    """The id that identifies ``event`` across deliveries, or None when it has none."""
    if isinstance(event, Event):
        return event.id
    delivery = current_delivery()
    return delivery.event_id if delivery is not None else None


def _text_key(key: object, handler: object) -> str | None:
    if key is None or type(key) is str:
        return key
    if isinstance(key, str):
        return str(key)
    if isinstance(key, bytes):
        try:
            return key.decode()
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"the idempotency key for {getattr(handler, '__qualname__', handler)!r} is "
                f"not UTF-8: {key!r}"
            ) from exc
    raise TypeError(
        f"the idempotency key for {getattr(handler, '__qualname__', handler)!r} must be a "
        f"str, bytes or None, got {type(key).__name__} {key!r}"
    )


def _escape(text: str) -> str:
    """``text`` without ``:`` (written ``%3A``; ``%`` as ``%25``, so it reads back)."""
    if ":" in text or "%" in text:
        return text.replace("%", "%25").replace(":", "%3A")
    return text


def _key_scope(namespace: str, name: str) -> str:
    """Where a handler's keys start (see the module docstring: no two scopes overlap)."""
    if not namespace:
        return f"{_escape(name)}:"
    return f":{_escape(namespace)}:{_escape(name)}:"


def _default_name(handler: object) -> str:
    """``module.qualname`` of a function or method; ConfigError for a nameless handler."""
    qualname = getattr(handler, "__qualname__", None)
    if not isinstance(qualname, str) or "<lambda>" in qualname:
        if isinstance(qualname, str):
            kind = "a lambda"
        elif isinstance(handler, functools.partial):
            kind = "a functools.partial"
        else:
            kind = f"a callable {type(handler).__name__} object"
        raise ConfigError(
            f"Idempotency cannot name the handler {handler!r} ({kind}): its keys must "
            "name the same handler in every process and no other, so pass a name: "
            "once(handler, name='send-receipt')"
        )
    module = getattr(handler, "__module__", None)
    if module == "__main__":  # run with python -m pkg.mod: other processes import pkg.mod
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = getattr(spec, "name", None) or module
    return f"{module}.{qualname}" if isinstance(module, str) and module else qualname


async def _call(handler: Callable[[Any], object], event: object) -> object:
    outcome = handler(event)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    return outcome


def _holder(handler: Callable[..., object]) -> Callable[[], object]:
    """A weak reference to ``handler`` (a name is free again once its handler is gone)."""
    try:
        if inspect.ismethod(handler):
            return weakref.WeakMethod(handler)
        return weakref.ref(handler)
    except TypeError:  # not weakly referenceable: held for the wrapper's life anyway
        return lambda: handler


class Idempotency:
    """Wrap handlers so each runs its effect once per event key (module docstring).

    ``namespace`` keeps these handlers' keys apart from other ``Idempotency`` objects
    sharing the store (see the module docstring).
    """

    def __init__(
        self,
        store: IdempotencyStore | None = None,
        *,
        ttl: float = 24 * 3600.0,
        key: Callable[[object], str | None] = event_key,
        namespace: str = "",
    ) -> None:
        if store is not None and not (
            callable(getattr(store, "done", None)) and callable(getattr(store, "mark", None))
        ):
            raise TypeError(
                f"an idempotency store needs done(key) and mark(key, ttl), got {store!r}"
            )
        if not is_real(ttl):
            raise TypeError(f"ttl must be a number of seconds, got {type(ttl).__name__}")
        if not ttl > 0:  # also refuses NaN
            raise ValueError(f"ttl must be > 0 seconds, got {ttl}")
        if not callable(key):
            raise TypeError(f"key must be a callable event -> str | None, got {key!r}")
        if not isinstance(namespace, str):
            raise TypeError(f"namespace must be a str, got {type(namespace).__name__}")
        self.store: IdempotencyStore = store if store is not None else MemoryIdempotencyStore()
        self.ttl = ttl
        self.key = key
        self.namespace = namespace
        self.duplicates = 0
        self._names: dict[str, Callable[[], object]] = {}
        # keys being handled in this process: a second delivery waits for the first
        self._running: dict[str, asyncio.Event] = {}

    def __repr__(self) -> str:
        return (
            f"<Idempotency {type(self.store).__name__} [{len(self._names)} handlers | "
            f"{self.duplicates} duplicates]>"
        )

    def __call__(
        self, handler: Callable[[Any], object], *, name: str | None = None
    ) -> Callable[[Any], Any]:
        """``handler`` run at most once per key (per handler: its name is in the key).

        ``name`` identifies the handler in the store (default ``module.qualname``; see
        the module docstring). The key function returns a str, UTF-8 bytes or None (no
        key: always run); any other key is refused with a TypeError before the handler
        runs.

        Raises:
            ConfigError: ``handler`` is a lambda, partial or callable object and no
                ``name`` was given, or another live handler already has this name.
        """
        if not callable(handler):
            raise TypeError(f"Idempotency wraps a callable handler, got {handler!r}")
        if name is None:
            name = _default_name(handler)
        elif not isinstance(name, str):
            raise TypeError(f"an idempotent handler's name must be a str, got {name!r}")
        elif not name:
            raise ValueError("an idempotent handler's name cannot be empty")
        holder = self._names.get(name)
        if holder is not None:
            other = holder()
            if other is not None and other != handler:
                raise ConfigError(
                    f"the idempotency name {name!r} is already used by {other!r}: two "
                    f"handlers sharing it would skip each other's events; give {handler!r} "
                    "its own name: once(handler, name='...')"
                )
        self._names[name] = _holder(handler)
        scope = _key_scope(self.namespace, name)

        @functools.wraps(handler)
        async def once(event: Any) -> object:
            key = _text_key(self.key(event), handler)
            if key is None:
                return await _call(handler, event)
            stored = scope + key
            inside = _handling.get()
            if stored in inside:  # the handler published its own event again: already running
                self.duplicates += 1
                return None
            # One delivery of a key at a time in this process: two copies of one event
            # handled together would both find it not done, and both run.
            while (running := self._running.get(stored)) is not None:
                await running.wait()
            finished = self._running[stored] = asyncio.Event()
            entered = _handling.set(inside | {stored})
            try:
                if await self.store.done(stored):
                    self.duplicates += 1
                    return None
                outcome = await _call(handler, event)
                await self.store.mark(stored, self.ttl)
                return outcome
            finally:
                _handling.reset(entered)
                del self._running[stored]
                finished.set()

        return once
