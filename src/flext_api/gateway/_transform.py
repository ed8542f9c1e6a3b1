"""Request header and query rewrites, and the JSON response field allow/deny filter.

The request side edits the ASGI scope before the proxy sees it. The response side keeps
streaming untouched unless the route has a field list AND the upstream answered
``application/json``: such a body (up to ``max_json_bytes``) is held, filtered at the
top level of the object and sent with a corrected ``Content-Length``; a bigger body, a
non-object, or JSON that does not parse is sent as it came (the filter never breaks a
response it cannot read).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.types import Message, Scope, Send

from ._edge_config import TransformConfig

__all__ = ["CompiledTransform"]


class CompiledTransform:
    """One route's :class:`TransformConfig` in ASGI byte form."""

    __slots__ = ("add", "allow", "config", "deny", "query_add", "query_remove", "remove")

    def __init__(self, config: TransformConfig) -> None:
        self.config = config
        self.add = [(k.lower().encode(), v.encode()) for k, v in config.request_headers_add.items()]
        self.remove = frozenset(k.lower().encode() for k in config.request_headers_remove) | {
            name for name, _ in self.add
        }
        self.query_add = dict(config.query_add)
        self.query_remove = frozenset(config.query_remove) | set(config.query_add)
        self.allow = frozenset(config.response_allow) if config.response_allow is not None else None
        self.deny = frozenset(config.response_deny)

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
        kept = {
            k: v
            for k, v in document.items()
            if (self.allow is None or k in self.allow) and k not in self.deny
        }
        return orjson.dumps(kept)

    def response_send(self, send: Send) -> Send:
        """A ``send`` that filters a JSON object body (see module docstring)."""
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
                content_type = next(
                    (v for n, v in message.get("headers", []) if n == b"content-type"), b""
                )
                if content_type.split(b";")[0].strip().lower() == b"application/json":
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
                headers = [(n, v) for n, v in start.get("headers", []) if n != b"content-length"]
                headers.append((b"content-length", str(len(new)).encode()))
                start = {**start, "headers": headers}
                body = new
            held["start"] = None
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        return filtered
