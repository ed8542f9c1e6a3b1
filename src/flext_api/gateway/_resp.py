"""A lean Redis connection for the edge's rate-limit script: one socket, pipelined replies.

The rate-limit check runs one Lua script per request. Through redis-py's asyncio client
each call takes a pooled connection, packs the command through its encoder, and reads
the reply line by line through a ``StreamReader`` - far more CPU than the script itself.
This connection does only what the limiter needs:

* one persistent connection (TCP, TLS or a Unix socket, as the ``redis://``,
  ``rediss://`` or ``unix://`` URL says; user, password and database from the URL as
  redis-py reads them), opened on first use and again after a failure;
* every command written in one event-loop turn goes out in ONE write, and the replies
  come back in order on the same socket, so N concurrent checks cost one send and
  (usually) one read - Redis still runs each script atomically on its own keys;
* ``EVALSHA`` with the script loaded when the connection opens; a ``NOSCRIPT`` reply
  (the server's script cache was flushed) re-sends that call as ``EVAL``;
* a reply later than ``reply_timeout`` (or a connect slower than ``connect_timeout``)
  aborts the connection and fails every call waiting on it with ``ConnectionError``,
  so a hung Redis costs milliseconds, never a request's whole budget.

URLs carrying options beyond these (TLS settings, socket options) are left to redis-py
(:func:`lean_url_options` says which).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from collections import deque
from typing import Any, cast

__all__ = ["RedisReplyError", "RespConnection", "lean_url_options", "parse_reply"]

# A whole array of integers, as the limiter's script returns: read in one match.
_INT_ARRAY = re.compile(rb"\*([1-9])\r\n((?::-?[0-9]{1,19}\r\n){1,9})")
_INT = re.compile(rb":(-?[0-9]+)\r\n")
_LEAN_KEYS = frozenset({"host", "port", "db", "username", "password", "path", "connection_class"})
_INCOMPLETE: Any = object()


class RedisReplyError(Exception):
    """Redis answered a command with an error reply (``-ERR ...``)."""


def lean_url_options(url: str) -> dict[str, Any] | None:
    """What :class:`RespConnection` needs from ``url``; None when only redis-py can serve it."""
    from redis.asyncio.connection import (  # the redis extra: its URL rules, not ours
        SSLConnection,
        UnixDomainSocketConnection,
        parse_url,
    )

    options: dict[str, Any] = dict(parse_url(url))
    if not set(options) <= _LEAN_KEYS:
        return None
    kind = options.pop("connection_class", None)
    if kind is not None and kind not in (SSLConnection, UnixDomainSocketConnection):
        return None  # pragma: no cover - parse_url knows no other connection class
    options["tls"] = kind is SSLConnection
    return options


def parse_reply(buf: bytes, pos: int) -> tuple[Any, int]:
    """One RESP2 reply of ``buf`` from ``pos``: (value, end); value is ``_INCOMPLETE`` if cut.

    Integers, simple and bulk strings (bytes), nil (None), arrays (lists) and errors
    (:class:`RedisReplyError` instances, returned, not raised).
    """
    whole = _INT_ARRAY.match(buf, pos)
    if whole is not None:  # the limiter's reply: one match instead of a step per item
        ints = [int(value) for value in _INT.findall(whole.group(2))]
        if len(ints) == int(whole.group(1)):
            return ints, whole.end()
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return _INCOMPLETE, pos
    kind = buf[pos]
    line = buf[pos + 1 : end]
    after = end + 2
    if kind == 0x3A:  # ':'
        return int(line), after
    if kind == 0x2A:  # '*'
        count = int(line)
        if count < 0:
            return None, after
        items: list[Any] = []
        for _ in range(count):
            item, after = parse_reply(buf, after)
            if item is _INCOMPLETE:
                return _INCOMPLETE, pos
            items.append(item)
        return items, after
    if kind == 0x24:  # '$'
        size = int(line)
        if size < 0:
            return None, after
        stop = after + size
        if len(buf) < stop + 2:
            return _INCOMPLETE, pos
        return buf[after:stop], stop + 2
    if kind == 0x2B:  # '+'
        return line, after
    if kind == 0x2D:  # '-'
        return RedisReplyError(line.decode("utf-8", "replace")), after
    raise ValueError(f"not a RESP2 reply: {buf[pos : pos + 16]!r}")


def _command(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    out.extend(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)
    return b"".join(out)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class _Protocol(asyncio.Protocol):
    """Replies matched in order to the futures of the commands sent."""

    def __init__(self, owner: RespConnection) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.outgoing: list[bytes] = []
        self.received = 0
        self.sent = 0
        self.buf = b""
        self.closed = False
        # Held: get_running_loop() makes a getpid() system call on Python 3.11.
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio.Transport; they do behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos = 0
        waiting = self.waiting
        try:
            while pos < len(buf):
                value, pos = parse_reply(buf, pos)
                if value is _INCOMPLETE:
                    break
                future = waiting.popleft()
                self.received += 1
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(value, RedisReplyError):
                    future.set_exception(value)
                else:
                    future.set_result(value)
        except (ValueError, IndexError) as exc:  # a reply we cannot read: start over
            self.abort(ConnectionError(f"unreadable reply from Redis: {exc}"))
            return
        self.buf = buf[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.abort(ConnectionError("the connection to Redis was lost"))

    def abort(self, error: Exception) -> None:
        """Fail every waiting call with ``error`` and drop the connection."""
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
            self.owner.lost(self)
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)

    def send(self, command: bytes, future: asyncio.Future[Any]) -> None:
        """Queue ``command``; everything queued in this loop turn is written at once."""
        if self.closed:
            future.set_exception(ConnectionError("the connection to Redis was lost"))
            return
        self.waiting.append(future)
        self.outgoing.append(command)
        if len(self.outgoing) == 1:
            future.get_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write the queued commands (one write) and watch for their replies."""
        if self.closed or not self.outgoing or self.transport is None:
            self.outgoing.clear()
            return
        data = b"".join(self.outgoing)
        self.sent += len(self.outgoing)
        self.outgoing.clear()
        self.transport.write(data)
        self.owner.watch(self)


class RespConnection:
    """One pipelined connection to the Redis of ``url`` (see module docstring)."""

    def __init__(
        self,
        options: dict[str, Any],
        script: str,
        *,
        connect_timeout: float = 0.25,
        reply_timeout: float = 0.25,
    ) -> None:
        self.options = options
        self.script = script.encode()
        self.sha = hashlib.sha1(self.script, usedforsecurity=False).hexdigest().encode()
        # A call is "*<count>", this head, then the encoded arguments (see arguments()).
        self._evalsha_head = b"$7\r\nEVALSHA\r\n$40\r\n%s\r\n" % self.sha
        self._eval_head = b"$4\r\nEVAL\r\n$%d\r\n%s\r\n" % (len(self.script), self.script)
        self.connect_timeout = connect_timeout
        self.reply_timeout = reply_timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._watched = 0

    def __repr__(self) -> str:
        where = self.options.get("path") or f"{self.options.get('host')}:{self.options.get('port')}"
        state = "open" if self._protocol is not None else "closed"
        return f"<RespConnection {where} [{state}]>"

    async def evalsha(self, keys: list[bytes], args: list[bytes]) -> Any:
        """Run the script on ``keys`` with ``args``; its reply, or raises.

        Raises ``ConnectionError``/``OSError`` when Redis cannot be reached in time and
        :class:`RedisReplyError` for an error reply of the script.
        """
        return await self.evalsha_encoded(self.arguments(keys, args))

    @staticmethod
    def arguments(keys: list[bytes], args: list[bytes]) -> tuple[bytes, bytes]:
        """``keys`` and ``args`` encoded once, for :meth:`evalsha_encoded` (callers memoize)."""
        parts = [b"%d" % len(keys), *keys, *args]
        body = b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)
        return b"*%d\r\n" % (len(parts) + 2), body

    async def evalsha_encoded(self, arguments: tuple[bytes, bytes]) -> Any:
        """:meth:`evalsha` with the arguments :meth:`arguments` encoded."""
        protocol = self._protocol
        if protocol is None:
            protocol = await self._connect()
        loop = protocol.loop
        future = loop.create_future()
        count, body = arguments
        protocol.send(count + self._evalsha_head + body, future)
        try:
            return await future
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        retry = loop.create_future()
        protocol.send(count + self._eval_head + body, retry)
        return await retry

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
            # Retrieved even when every caller was cancelled meanwhile.
            self._connecting.add_done_callback(_retrieve)
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        protocol = _Protocol(self)
        try:
            await self._handshake(loop, protocol)
        except BaseException:
            protocol.abort(ConnectionError("the connection to Redis could not be set up"))
            raise
        if protocol.closed:  # lost right after the set-up answered
            raise ConnectionError("the connection to Redis was lost")
        self._protocol = protocol
        return protocol

    async def _handshake(self, loop: asyncio.AbstractEventLoop, protocol: _Protocol) -> None:
        options = self.options
        async with asyncio.timeout(self.connect_timeout):
            if options.get("path"):
                await loop.create_unix_connection(lambda: protocol, options["path"])
            else:
                context = ssl.create_default_context() if options["tls"] else None
                await loop.create_connection(
                    lambda: protocol, options.get("host", "localhost"), options.get("port", 6379),
                    ssl=context,
                )  # fmt: skip
            setup: list[asyncio.Future[Any]] = []
            password = options.get("password")
            if password is not None:
                user = options.get("username") or "default"
                setup.append(self._setup(protocol, b"AUTH", user.encode(), password.encode()))
            if options.get("db"):
                setup.append(self._setup(protocol, b"SELECT", b"%d" % int(options["db"])))
            setup.append(self._setup(protocol, b"SCRIPT", b"LOAD", self.script))
            try:
                await asyncio.gather(*setup)
            except RedisReplyError as exc:
                raise ConnectionError(f"Redis refused the connection set-up: {exc}") from exc

    @staticmethod
    def _setup(protocol: _Protocol, *parts: bytes) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        protocol.send(_command(*parts), future)
        return future

    def watch(self, protocol: _Protocol) -> None:
        """Arm the reply timer for what ``protocol`` has sent, unless it is armed."""
        if self._timer is None:
            self._watched = protocol.sent
            self._timer = protocol.loop.call_later(self.reply_timeout, self._check, protocol)

    def _check(self, protocol: _Protocol) -> None:
        self._timer = None
        if protocol.closed:
            return
        if protocol.received < self._watched:  # a reply is later than reply_timeout
            protocol.abort(ConnectionError("Redis did not answer in time"))
        elif protocol.received < protocol.sent:
            self.watch(protocol)

    def lost(self, protocol: _Protocol) -> None:
        """``protocol``'s connection ended: the next call opens a new one."""
        if self._protocol is protocol:
            self._protocol = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def aclose(self) -> None:
        """Close the connection (calls still waiting fail with ``ConnectionError``)."""
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        protocol = self._protocol
        if protocol is not None:
            protocol.abort(ConnectionError("the connection to Redis was closed"))
