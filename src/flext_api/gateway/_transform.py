"""Request header and query rewrites, and the JSON response field allow/deny filter.

The request side edits the ASGI scope before the proxy sees it. The response side keeps
streaming untouched unless the route has a field list AND the upstream answered
``application/json``: such a body (up to ``max_json_bytes``) is held, filtered at the
top level of the object and sent with a corrected ``Content-Length``; a bigger body, a
non-object, or JSON that does not parse is sent as it came (the filter never breaks a
response it cannot read). The members kept are copied byte for byte, never decoded and
re-encoded, so numbers beyond 64 bits or a double's precision arrive as the upstream
wrote them. A route with a field list asks the upstream for an unencoded, whole body
(its ``Accept-Encoding``, ``Range`` and ``If-Range`` are dropped), so a client cannot
step around the filter by asking for gzip or for a slice of the body. A filtered body
is a new representation: its ``Content-Length`` is its own, ``Accept-Ranges`` is dropped
and a strong ``ETag`` becomes weak (conditional GETs still match; ``If-Match`` and
ranges do not), as nginx's body filters do; a HEAD answer of a filtered type drops
``Content-Length``, which only the filtered body could tell, and a 304 carries the weak
``ETag`` the filtered copy was given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.types import Message, Scope, Send

from ._edge_config import TransformConfig
from ._headers import rule_problem

__all__ = ["CompiledTransform"]

# Request headers a filtering route drops: the upstream must send the whole, plain body.
_WHOLE_BODY = frozenset({b"accept-encoding", b"range", b"if-range"})
# Response headers of the upstream's representation that a filtered one cannot keep.
_RESTATED = frozenset({b"content-length", b"accept-ranges", b"etag"})


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

    __slots__ = ("add", "allow", "config", "deny", "query_add", "query_remove", "remove")

    def __init__(self, config: TransformConfig) -> None:
        for name, value in config.request_headers_add.items():
            problem = rule_problem(name, value)
            if problem is not None:  # a config built in Python skips the loader's check
                raise ValueError(f"transform.request_headers_add: {problem}")
        self.config = config
        self.add = [(k.lower().encode(), v.encode()) for k, v in config.request_headers_add.items()]
        self.query_add = dict(config.query_add)
        self.query_remove = frozenset(config.query_remove) | set(config.query_add)
        self.allow = frozenset(config.response_allow) if config.response_allow is not None else None
        self.deny = frozenset(config.response_deny)
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
            pairs = [
                (k, v)
                for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
                if k not in self.query_remove
            ]
            pairs.extend(self.query_add.items())
            query = urlencode(pairs).encode("latin-1")
        return {**scope, "headers": headers, "query_string": query}

    @property
    def filters_response(self) -> bool:
        """True when the route has a field list."""
        return self.allow is not None or bool(self.deny)

    def _filter(self, body: bytes) -> bytes | None:
        try:
            document: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(document, dict):
            return None
        kept = [
            raw_key + b":" + raw
            for raw_key, key, raw in _members(body)
            if (self.allow is None or key in self.allow) and key not in self.deny
        ]
        return b"{" + b",".join(kept) + b"}"

    def response_send(self, send: Send, *, head: bool = False) -> FilteringSend:
        """A ``send`` that filters a JSON object body (see module docstring); ``head``:
        the answer to a HEAD request (no body to filter, only its headers)."""
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
                content_type = next((v for n, v in headers if n == b"content-type"), b"")
                is_json = content_type.split(b";")[0].strip().lower() == b"application/json"
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
                await flush(not more)
                return
            if more:
                return
            body = b"".join(held["chunks"])
            new = self._filter(body)
            start = held["start"]
            if new is not None:
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
