"""``RedisStreamTransport``: an :class:`EventBus` across processes on Redis Streams.

Delivery is **at least once**, the guarantee Redis consumer groups give:

* ``publish`` is an ``XADD`` to one stream (optionally capped with ``maxlen``).
* Each *group* sees every event; inside a group each event goes to one consumer. Give
  every process of a service the same ``group`` to share its work (and survive the loss
  of a process), and different services different groups to all see every event. A
  process that must see every event itself uses a group of its own.
* An event is acknowledged (``XACK``) only once every local handler has returned
  without raising. An event whose handler raised, or whose process died mid-event
  (``kill -9``), stays pending; after ``claim_idle`` seconds any consumer of the group
  takes it over with ``XAUTOCLAIM`` and runs it again, with ``Event.attempt`` grown.
  Each round claims at most ``batch`` entries and resumes the scan of the pending list
  where the previous round left it (XAUTOCLAIM's cursor), so every stale entry is
  reached however long the list, and no round does unbounded work.
* An entry deleted from the stream while pending (trimmed by ``maxlen``, or ``XDEL``)
  can never be delivered again: it is acknowledged, counted in ``lost`` and logged.
* After ``max_attempts`` deliveries the event is moved to the dead-letter stream
  (``<stream>:dead`` by default, with its original id, group and attempt count) and
  acknowledged, so one poison event cannot loop forever.
* Redis going away is logged and retried each round. When it comes back without the
  group (a restart without persistence) the consumer creates the group again from the
  stream's start, so the events published after the restart are delivered.

Duplicates are therefore possible by design; :class:`Idempotency` lets a handler run
its effect once per event id (see :mod:`._idempotency`).

Why not a library: the Redis Streams consumers on PyPI (``walrus``, ``redis-streams``,
``aiostream`` helpers) are either sync-only, unmaintained, or lack ``XAUTOCLAIM``-based
recovery with a dead-letter stream; the commands themselves are a few lines each.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._errors import ErrorCode, FlextApiError
from .._numbers import finite_json, is_int
from ._events import (
    Delivery,
    Event,
    EventBus,
    cancelling,
    delivery_var,
    from_payload,
    to_payload,
)
from ._idempotency import check_async_redis

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisStreamTransport"]

_logger = logging.getLogger("flext_api.composition.redis_events")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_count(name: str, value: object) -> None:
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not 0 <= value < math.inf:  # NaN fails too
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value}")
    return float(value)


def _publish_error(exc: BaseException, name: str, stream: str) -> FlextApiError:
    """The flext-api error for a failed XADD (the one place redis errors are translated)."""
    if isinstance(exc, RedisTimeoutError):
        code, what = ErrorCode.READ_TIMEOUT, "timed out"
    elif isinstance(exc, RedisConnectionError | OSError):
        code, what = ErrorCode.CONNECT_ERROR, "could not reach Redis"
    else:
        code, what = ErrorCode.UNEXPECTED_ERROR, "failed"
    return FlextApiError.from_code(
        code,
        f"publishing event {name!r} to stream {stream!r} {what}: {type(exc).__name__}: {exc}",
        details={"event": name, "stream": stream},
    )


# How much longer than ``block`` a client this transport makes waits for a reply: a
# blocking XREADGROUP answers after ``block``; the margin covers a busy server.
_READ_MARGIN = 5.0


class RedisStreamTransport:
    """Carry an :class:`EventBus`'s events over a Redis stream (see module docstring).

    >>> bus = EventBus(transport=RedisStreamTransport("redis://127.0.0.1:6379/0",
    ...                                               group="billing"))  # doctest: +SKIP
    >>> async with bus: await bus.publish(Event("order.created", {"id": 7}))  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | None = None,
        stream: str = "flext:events",
        group: str = "default",
        consumer: str | None = None,
        claim_idle: float = 30.0,
        max_attempts: int = 5,
        dead_letter: str | None = None,
        batch: int = 16,
        block: float = 1.0,
        maxlen: int | None = None,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("give exactly one of url= or client=")
        given_url: object = url
        given_client: object = client
        if given_url is not None and not isinstance(given_url, str):
            raise TypeError(f"url must be a Redis URL (str), got {type(given_url).__name__}")
        if given_client is not None:
            check_async_redis(given_client, "client=", "pass a URL as url=")
        _check_count("max_attempts", max_attempts)
        _check_count("batch", batch)
        block = _check_seconds("block", block)
        claim_idle = _check_seconds("claim_idle", claim_idle)
        self._owns_client = client is None
        self.redis: Redis = (
            client
            if client is not None
            else aioredis.from_url(url or "", socket_timeout=block + _READ_MARGIN)
        )
        # redis-py bounds every read by socket_timeout (5 s by default), blocking reads
        # included: a block as long fails every round with a timeout, never an event.
        read_timeout = self.redis.connection_pool.connection_kwargs.get("socket_timeout")
        if read_timeout is not None and block >= read_timeout:
            raise ValueError(
                f"block={block:g} s is not shorter than the Redis client's socket_timeout "
                f"({read_timeout:g} s): every blocking read would time out; lower block or "
                "raise socket_timeout"
            )
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.claim_idle = claim_idle
        self.max_attempts = max_attempts
        self.dead_letter = dead_letter if dead_letter is not None else f"{stream}:dead"
        self.batch = batch
        self.block = block
        self.maxlen = maxlen
        self._bus: EventBus | None = None
        self._task: asyncio.Task[None] | None = None
        self.handled = 0
        self.dead_lettered = 0
        self.lost = 0
        # Where the next XAUTOCLAIM resumes its scan of the group's pending list;
        # "0-0" means from the start (Redis hands "0-0" back when a scan is complete).
        self._claim_cursor: Any = "0-0"

    def __repr__(self) -> str:
        task = self._task
        state = "stopped" if task is None else "running" if not task.done() else "dead"
        return (
            f"<RedisStreamTransport {self.stream!r} group={self.group!r} "
            f"consumer={self.consumer!r} [{state} | handled={self.handled}]>"
        )

    # -- publishing -------------------------------------------------------------------------
    async def send(self, event: object) -> None:
        """``XADD`` the event (name, JSON data, id, timestamp) to the stream.

        Raises TypeError for data JSON cannot hold, ValueError for NaN or an infinity,
        and a ``TransportError`` (``flext_api._errors``) when Redis cannot be reached
        (``CONNECT_ERROR``) or does not answer in time (``READ_TIMEOUT``) - the event
        was then not stored, or (the connection lost after the XADD) maybe stored once:
        a publish may be retried, as delivery is at least once anyway. Any other Redis
        failure is ``UNEXPECTED_ERROR``; the Redis exception is the ``__cause__``.
        """
        name, data = to_payload(event)
        if isinstance(event, Event):
            event_id, stamp = event.id, event.timestamp.isoformat()
        else:
            event_id, stamp = uuid.uuid4().hex, ""
        fields: dict[Any, Any] = {
            "name": name,
            "data": finite_json(data),
            "id": event_id,
            "ts": stamp,
        }
        try:
            await self.redis.xadd(
                self.stream, fields, maxlen=self.maxlen, approximate=self.maxlen is not None
            )
        except (RedisError, OSError) as exc:
            raise _publish_error(exc, name, self.stream) from exc

    # -- consuming --------------------------------------------------------------------------
    async def start(self, bus: EventBus) -> None:
        """Create the group if needed (new events only) and start consuming for ``bus``."""
        if self._task is not None:
            return
        await self._create_group("$")
        self._bus = bus
        self._task = asyncio.get_running_loop().create_task(
            self._consume(), name=f"events:{self.group}:{self.consumer}"
        )

    async def _create_group(self, first: str) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id=first, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def stop(self) -> None:
        """Stop consuming; an event cut short stays pending and is redelivered elsewhere."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            _, pending = await asyncio.wait({task}, timeout=10.0)
            if pending:  # a handler ignoring cancellation must not hold the shutdown
                _logger.error("event consumer %s did not stop within 10 s", self.consumer)
        if self._owns_client:
            await self.redis.aclose()

    async def _consume(self) -> None:
        # Only stop() (or the loop's shutdown) cancelling this task ends the loop; a
        # CancelledError from something a round awaited is logged like any failure.
        while True:
            try:
                await self.poll()
            except (RedisError, OSError):
                _logger.exception("reading the event stream failed; retrying")
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and cancelling():
                    raise
                _logger.error("event consumer round failed; retrying", exc_info=exc)
            else:
                continue
            await asyncio.sleep(min(self.block, 1.0))

    async def poll(self) -> int:
        """One round: take over stale pending events, then read new ones; return how many.

        When Redis no longer has the group (it restarted without its data, or the
        stream was deleted), the group is created again from the stream's start, so the
        events published since are not skipped (a group destroyed on purpose thus sees
        the stream's older entries again: at least once).
        """
        try:
            claimed = await self._claim()
        except ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                raise
            _logger.warning(
                "consumer group %r of %r is gone: creating it again", self.group, self.stream
            )
            await self._create_group("0")
            self._claim_cursor = "0-0"
            claimed = []
        # With claimed work in hand, only take what is already there: blocking for new
        # events would hold the claimed ones back, and slow the catch-up of a backlog.
        reply: Any = await self.redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=self.batch,
            block=None if claimed else max(1, int(self.block * 1000)),
        )
        fresh = [(mid, fields, 1) for _, messages in reply or () for mid, fields in messages]
        work = claimed + fresh
        if work:
            # Every event of the round is seen through before it ends (its first error is
            # raised after): a plain gather would return at the first failure and leave
            # the other handlers running with no one to await or stop them.
            outcomes = await asyncio.gather(
                *(self._handle(*item) for item in work), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        return len(work)

    async def _claim(self) -> list[tuple[Any, Mapping[Any, Any], int]]:
        """Take over up to ``batch`` stale entries, one page of the pending list per round.

        Redis examines at most ten times COUNT pending entries per XAUTOCLAIM, and returns
        the id to go on from: a scan restarted at "0-0" each round would never get past
        a head of entries not yet idle enough, so the cursor is kept across rounds.
        """
        reply = await self.redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=max(1, int(self.claim_idle * 1000)),
            start_id=self._claim_cursor,
            count=self.batch,
        )
        self._claim_cursor = reply[0]
        messages = [(mid, fields) for mid, fields in reply[1] if fields]
        # Redis 7 adds the ids of pending entries no longer in the stream (Redis 6.2 gives
        # them as nil entries, without their ids, filtered out above).
        gone = list(reply[2]) if len(reply) > 2 else []
        if gone:
            await self._forget(gone)
        claimed = []
        for mid, fields in messages:
            pending = await self.redis.xpending_range(self.stream, self.group, mid, mid, 1)
            attempt = int(pending[0]["times_delivered"]) if pending else 2
            claimed.append((mid, fields, attempt))
        return claimed

    async def _forget(self, message_ids: list[Any]) -> None:
        """Acknowledge pending entries deleted from the stream: they cannot be delivered."""
        # Redis 7's XAUTOCLAIM has already dropped them from the pending list; the XACK
        # (a no-op then) makes sure no server keeps them pending for ever.
        await self.redis.xack(self.stream, self.group, *message_ids)
        self.lost += len(message_ids)
        _logger.warning(
            "%d pending event(s) of group %r were deleted from %r before being handled "
            "(trimmed by maxlen or XDEL): acknowledged, lost for this group: %s",
            len(message_ids),
            self.group,
            self.stream,
            ", ".join(_text(mid) for mid in message_ids),
        )

    async def _handle(self, message_id: Any, fields: Mapping[Any, Any], attempt: int) -> None:
        assert self._bus is not None
        values = {_text(k): v for k, v in fields.items()}
        if attempt > self.max_attempts:
            await self._dead_letter(message_id, values, attempt)
            return
        name = _text(values.get("name", b""))
        event_id = _text(values.get("id", b""))
        try:
            event = from_payload(self._bus, name, orjson.loads(values.get("data", b"{}")))
            if isinstance(event, Event):
                event.id, event.attempt = event_id, attempt
                if values.get("ts"):
                    event.timestamp = datetime.fromisoformat(_text(values["ts"]))
        except (ValueError, TypeError) as exc:
            _logger.error("undecodable event %s (%s): dead-lettered", message_id, exc)
            await self._dead_letter(message_id, values, attempt)
            return
        token = delivery_var.set(Delivery(event_id, attempt, _text(message_id), self.consumer))
        try:
            errors = await self._bus.dispatch(event)
        finally:
            delivery_var.reset(token)
        if errors:
            _logger.warning(
                "event %s (%s) left pending for redelivery after %d handler error(s)",
                event_id,
                name,
                len(errors),
            )
            return
        await self.redis.xack(self.stream, self.group, message_id)
        self.handled += 1

    async def _dead_letter(self, message_id: Any, values: Mapping[str, Any], attempt: int) -> None:
        record: dict[Any, Any] = {
            **values,
            "original_id": _text(message_id),
            "group": self.group,
            "attempts": attempt - 1,
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_letter, record)
            pipe.xack(self.stream, self.group, message_id)
            await pipe.execute()
        self.dead_lettered += 1
        _logger.error(
            "event %s dead-lettered to %s after %d attempt(s)",
            _text(values.get("id", b"")),
            self.dead_letter,
            attempt - 1,
        )
