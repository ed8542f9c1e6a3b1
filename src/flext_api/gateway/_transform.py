"""Request header and query rewrites, and the JSON response field allow/deny filter.

The request side edits the ASGI scope before the proxy sees it. The response side keeps
streaming untouched unless the route has a field list AND the upstream answered a JSON
type (``application/json`` or any ``+json`` type, RFC 6839): such a body (up to
``max_json_bytes``) is held, filtered at the top level of the object and sent with a
corrected ``Content-Length``. The filter fails closed: a body it cannot read (bigger
than ``max_json_bytes``, a content coding other than gzip or deflate, JSON that does not
parse, or, for an allow list, JSON that is not an object) is not sent; the client gets
the gateway's 502 ``unfilterable_response`` (:class:`Unfilterable`), since the body may
hold the very fields the list keeps from it. ``on_unreadable: pass`` sends such a body as
it came instead. A deny list passes a non-object (it has no top-level member to drop)
and an empty body. The members kept are copied byte for byte, never decoded and
re-encoded, so numbers beyond 64 bits or a double's precision arrive as the upstream
wrote them. A route with a field list asks the upstream for an unencoded, whole body
(its ``Accept-Encoding``, ``Range`` and ``If-Range`` are dropped), so a client cannot
step around the filter by asking for gzip or for a slice of the body; a gzip or deflate
body the upstream sends anyway is decoded (within ``max_json_bytes``) and filtered, and
goes out unencoded. A filtered body is a new representation: its ``Content-Length`` is
its own, ``Accept-Ranges`` is dropped and a strong ``ETag`` becomes weak (conditional
GETs still match; ``If-Match`` and ranges do not), as nginx's body filters do; a HEAD
answer of a filtered type drops ``Content-Length``, which only the filtered body could
tell, and a 304 carries the weak ``ETag`` the filtered copy was given.

A query rule matches parameter names decoded and leaves every other parameter as the
client wrote it, byte for byte. (``request_headers_remove`` cannot name ``Host``,
``Content-Length`` or ``Transfer-Encoding``: the config refuses it, the proxy frames the
request by them.)
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes, urlencode

import orjson
from starlette.types import Message, Scope, Send

from ._edge_config import TransformConfig
from ._headers import rule_problem

__all__ = ["CompiledTransform", "FilteringSend", "Unfilterable"]

# Request headers a filtering route drops: the upstream must send the whole, plain body.
_WHOLE_BODY = frozenset({b"accept-encoding", b"range", b"if-range"})
# Response headers of the upstream's representation that a filtered one cannot keep.
_RESTATED = frozenset({b"content-length", b"accept-ranges", b"etag", b"content-encoding"})
# The content codings the filter decodes, by their zlib window bits (RFC 9110 §8.4.1:
# gzip; deflate is the zlib format, though some servers send it raw: tried next).
_CODINGS = {b"gzip": zlib.MAX_WBITS | 16, b"x-gzip": zlib.MAX_WBITS | 16, b"deflate": 0}


class Unfilterable(Exception):
    """A JSON response the route's field filter cannot read; nothing of it was sent."""


def _is_json(content_type: bytes) -> bool:
    """``application/json`` or a ``+json`` type (RFC 6839), parameters aside; in a
    value that lists several types, any of them (the filter fails closed)."""
    for listed in content_type.split(b","):
        essence = listed.split(b";")[0].strip().lower()
        if essence == b"application/json" or essence.endswith(b"+json"):
            return True
    return False


def _query_key(part: bytes) -> bytes:
    """The decoded name of one ``name=value`` part of a query (``+`` is a space)."""
    return unquote_to_bytes(part.split(b"=", 1)[0].replace(b"+", b" "))


def _decode(body: bytes, coding: bytes, limit: int) -> bytes:
    """``body`` decoded from ``coding`` (a name of :data:`_CODINGS`), at most ``limit``
    bytes of it; raises :class:`Unfilterable` when it is corrupt, cut or bigger."""
    attempts = [_CODINGS[coding]] if _CODINGS[coding] else [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    for wbits in attempts:
        decoder = zlib.decompressobj(wbits)
        try:
            out = decoder.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit:
            raise Unfilterable(f"the decoded body is larger than max_json_bytes ({limit})")
        if not decoder.eof or decoder.unused_data:
            raise Unfilterable(f"the {coding.decode()} body is cut or has data past its end")
        return out
    raise Unfilterable(f"the body is not valid {coding.decode()}")


def _restated(
    headers: Iterable[tuple[bytes, bytes]], length: int | None
) -> list[tuple[bytes, bytes]]:
    """``headers`` for a filtered body of ``length`` bytes (None: unknown, a HEAD)."""
    out = []
    etags = []  # after the kept headers, weakened
    for name, value in headers:
        if name == b"etag":
            etags.append((name, value if value.startswith(b"W/") else b"W/" + value))
        elif name not in _RESTATED:
            out.append((name, value))
    out += etags
    if length is not None:
        out.append((b"content-length", str(length).encode()))
    return out


# A JSON string, or one structural character: what a member's value is delimited by.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.S)
_SPACE = re.compile(rb"[ \t\n\r]*")


def _members(body: bytes) -> Iterator[tuple[bytes, str, bytes]]:
    """``(raw key, key, raw value)`` of each member of a JSON object already validated."""
    at = _SPACE.match(body, 0).end() + 1  # type: ignore[union-attr]  # past "{"
    while True:
        at = _SPACE.match(body, at).end()  # type: ignore[union-attr]
        if body[at : at + 1] == b"}":
            return
        key = _TOKEN.match(body, at)
        assert key is not None
        at = _SPACE.match(body, key.end()).end() + 1  # type: ignore[union-attr]  # past ":"
        start = _SPACE.match(body, at).end()  # type: ignore[union-attr]
        depth, end = 0, start
        for token in _TOKEN.finditer(body, start):
            char = token.group()
            if char in (b"[", b"{"):
                depth += 1
            elif char in (b"]", b"}"):
                if depth == 0:
                    end = token.start()
                    break
                depth -= 1
            elif char == b"," and depth == 0:
                end = token.start()
                break
            if depth == 0 and char not in (b",", b"[", b"{"):
                end = token.end()  # a string or a closed container ends the value
                break
        raw = body[start:end].rstrip(b" \t\n\r")
        name: str = orjson.loads(key.group())
        yield key.group(), name, raw
        at = _SPACE.match(body, end).end()  # type: ignore[union-attr]
        if body[at : at + 1] == b",":
            at += 1


class CompiledTransform:
    """One route's :class:`TransformConfig` in ASGI byte form."""

    __slots__ = (
        "add", "allow", "config", "deny", "query_add", "query_remove", "reject", "remove"
    )  # fmt: skip

    def __init__(self, config: TransformConfig) -> None:
        for name, value in config.request_headers_add.items():
            problem = rule_problem(name, value)
            if problem is not None:  # a config built in Python skips the loader's check
                raise ValueError(f"transform.request_headers_add: {problem}")
        self.config = config
        self.add = [(k.lower().encode(), v.encode()) for k, v in config.request_headers_add.items()]
        self.query_add = urlencode(list(config.query_add.items())).encode("ascii")
        self.query_remove = frozenset(
            key.encode() for key in (*config.query_remove, *config.query_add)
        )
        self.allow = frozenset(config.response_allow) if config.response_allow is not None else None
        self.deny = frozenset(config.response_deny)
        self.reject = config.on_unreadable == "reject"
        # The request headers dropped: the route's, those it sets, and (a filtering
        # route) those that would get it less than the whole, plain body.
        self.remove = (
            frozenset(k.lower().encode() for k in config.request_headers_remove)
            | {name for name, _ in self.add}
            | (_WHOLE_BODY if self.filters_response else frozenset())
        )

    def request(self, scope: Scope) -> Scope:
        """``scope`` with the header and query rules applied (a new dict)."""
        headers = [(n, v) for n, v in scope["headers"] if n not in self.remove] + self.add
        query: bytes = scope.get("query_string", b"")
        if self.query_add or self.query_remove:
            # The parts kept go upstream byte for byte: decoding and re-encoding them
            # changed what the client sent (%FF became %EF%BF%BD, ";" became %3B, a
            # bare "flag" became "flag="). Only the names are decoded, to match rules.
            kept = [part for part in query.split(b"&") if _query_key(part) not in self.query_remove]
            if self.query_add:
                kept.append(self.query_add)
            query = b"&".join(part for part in kept if part)
        return {**scope, "headers": headers, "query_string": query}

    @property
    def filters_response(self) -> bool:
        """True when the route has a field list."""
        return self.allow is not None or bool(self.deny)

    def _filter(self, body: bytes) -> bytes:
        """``body`` (a whole JSON document) with the field list applied; raises
        :class:`Unfilterable` for what the list cannot be applied to."""
        try:
            document: Any = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if not body.strip(b" \t\n\r"):
                return body  # empty: no member to keep from anyone
            raise Unfilterable(f"the body is not valid JSON ({exc})") from exc
        if not isinstance(document, dict):
            if self.allow is not None:
                raise Unfilterable("the body is not a JSON object, so no allow list applies")
            return body  # no top-level member for a deny list to drop
        kept = [
            raw_key + b":" + raw
            for raw_key, key, raw in _members(body)
            if (self.allow is None or key in self.allow) and key not in self.deny
        ]
        return b"{" + b",".join(kept) + b"}"

    def _readable(self, start: Message, body: bytes) -> tuple[bytes, bool]:
        """The body to filter, decoded; and whether it came encoded. Raises
        :class:`Unfilterable` for a coding it cannot decode."""
        codings = [
            value.strip().lower()
            for name, value in start.get("headers", [])
            if name == b"content-encoding"
            for value in value.split(b",")
            if value.strip() and value.strip().lower() != b"identity"
        ]
        if not codings:
            return body, False
        if len(codings) > 1 or codings[0] not in _CODINGS:
            named = b", ".join(codings).decode("latin-1")
            raise Unfilterable(f"the body's content coding ({named}) is not gzip or deflate")
        return _decode(body, codings[0], self.config.max_json_bytes), True

    def response_send(self, send: Send, *, head: bool = False) -> FilteringSend:
        """A ``send`` that filters a JSON object body (see module docstring); ``head``:
        the answer to a HEAD request (no body to filter, only its headers). It raises
        :class:`Unfilterable` (nothing sent) for a body the filter cannot read, unless
        the route's ``on_unreadable`` is ``pass``."""
        held: dict[str, Any] = {"start": None, "chunks": [], "size": 0}
        limit = self.config.max_json_bytes

        async def flush(final: bool) -> None:
            start = held["start"]
            held["start"] = None
            await send(start)
            body = b"".join(held["chunks"])
            held["chunks"] = []
            await send({"type": "http.response.body", "body": body, "more_body": not final})

        async def filtered(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                headers = message.get("headers", [])
                # Every Content-Type the upstream sent counts: with two, a client may
                # read the body by either, so one JSON type makes it filtered.
                is_json = any(_is_json(v) for n, v in headers if n == b"content-type")
                if message["status"] == 304 or (is_json and head):
                    # A 304 refreshes a filtered copy: the validators that copy was given;
                    # a HEAD has no body to filter, and no length but the filtered one's.
                    await send({**message, "headers": _restated(headers, None)})
                    return
                if is_json:
                    held["start"] = message
                    return
                await send(message)
                return
            if held["start"] is None:
                await send(message)
                return
            held["chunks"].append(message.get("body", b""))
            held["size"] += len(message.get("body", b""))
            more = message.get("more_body", False)
            if held["size"] > limit:
                if self.reject:
                    held["chunks"] = []
                    raise Unfilterable(f"the body is larger than max_json_bytes ({limit})")
                await flush(not more)
                return
            if more:
                return
            body = b"".join(held["chunks"])
            start = held["start"]
            try:
                readable, decoded = self._readable(start, body)
                new = self._filter(readable)
            except Unfilterable:
                if self.reject:
                    raise
                new = None
            if new is not None and (decoded or new is not readable):
                start = {**start, "headers": _restated(start.get("headers", []), len(new))}
                body = new
            held["start"] = None
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        return FilteringSend(filtered, held)


class FilteringSend:
    """The ``send`` of a filtered route; :attr:`holding` says whether the response's
    start is still held back (nothing has reached the client yet)."""

    __slots__ = ("_held", "_send")

    def __init__(self, send: Send, held: dict[str, Any]) -> None:
        self._send = send
        self._held = held

    async def __call__(self, message: Message) -> None:
        await self._send(message)

    @property
    def holding(self) -> bool:
        """True while the start of a JSON response waits for the whole body."""
        return self._held["start"] is not None
