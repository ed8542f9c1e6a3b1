"""``Idempotency``: run a handler's effect once per event, although events may come twice.

At-least-once delivery (:class:`~flext_api.composition.RedisStreamTransport`) means a
handler may see an event again: after its process died mid-event, or after another
handler of the same event failed. Wrap the handler::

    once = Idempotency(RedisIdempotencyStore(redis))
    bus.subscribe("order.created", once(send_receipt))

The key is the event's id (``Event.id``, or the transport's delivery id for typed
events); it is recorded *after* the handler succeeded, so a crash mid-handler lets the
redelivery run it again (never zero times). Two deliveries running at the same moment
can both run - only when ``claim_idle`` is shorter than the handler - so effects that
must never double still need their own guard (a unique constraint, an idempotency key
sent downstream). ``duplicates`` counts the deliveries skipped.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .._clock import Clock, get_clock
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


class MemoryIdempotencyStore:
    """Done keys in this process (for one process, or tests)."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = get_clock(clock)
        self._until: dict[str, float] = {}

    async def done(self, key: str) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if until <= self._clock.monotonic():
            del self._until[key]
            return False
        return True

    async def mark(self, key: str, ttl: float) -> None:
        self._until[key] = self._clock.monotonic() + ttl


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
    """Done keys in Redis, shared by every process (``SET key 1 EX ttl``)."""

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
        await self.redis.set(self.prefix + key, b"1", ex=max(1, int(ttl)))


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


class Idempotency:
    """Wrap handlers so each runs its effect once per event key (module docstring)."""

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
        self.store: IdempotencyStore = store if store is not None else MemoryIdempotencyStore()
        self.ttl = ttl
        self.key = key
        self.namespace = namespace
        self.duplicates = 0

    def __call__(self, handler: Callable[[Any], object]) -> Callable[[Any], Any]:
        """``handler`` run at most once per key (per handler: its name is in the key).

        The key function returns a str, UTF-8 bytes or None (no key: always run); any
        other key is refused with a TypeError before the handler runs.
        """
        if not callable(handler):
            raise TypeError(f"Idempotency wraps a callable handler, got {handler!r}")
        scope = f"{self.namespace}{getattr(handler, '__qualname__', 'handler')}:"

        @functools.wraps(handler)
        async def once(event: Any) -> object:
            key = _text_key(self.key(event), handler)
            if key is not None and await self.store.done(scope + key):
                self.duplicates += 1
                return None
            outcome = handler(event)
            if inspect.isawaitable(outcome):
                outcome = await outcome
            if key is not None:
                await self.store.mark(scope + key, self.ttl)
            return outcome

        return once
