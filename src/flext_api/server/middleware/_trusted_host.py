"""Trusted hosts: answer 400 (problem+json) when ``Host`` is not an allowed name.

Hand-written rather than Starlette's ``TrustedHostMiddleware`` so the refusal is a
problem document like every other error here. Patterns: an exact name, ``*.example.com``
(any subdomain, not the apex) or ``*`` (anything; the factory then skips this layer).
A ``Host`` that is not ``host[:port]`` is refused before any pattern is tried: a port
that is not a number (``api.example.com:x``, ``[::1]junk``), or a name holding anything
but letters, digits, ``-``, ``_`` and dots (``evil.com/.example.com``, ``a b.example.com``).
``exempt_paths`` (the health endpoints, by default) are answered whatever the ``Host``:
orchestrator probes address the pod by IP.

The host checked is the one the request names (RFC 9112 §3.2): two ``Host`` lines are
refused whatever they say (a proxy in front may have read the other one), and an
absolute-form target (``GET http://a.example/x``) names its host by its authority, which
replaces ``Host`` for the check and for the app (``request.url``), its path becoming the
request's path. An absolute form with a userinfo, no authority or a scheme other than
``http(s)`` is refused. uvicorn's h11 parser and ``flext-api serve`` pass the whole
target on (``raw_path``); plain uvicorn on httptools keeps only its path, so there the
check can only read ``Host``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from ..._syntax import split_target, with_host
from .._problem import send_problem

__all__ = ["TrustedHostMiddleware", "host_allowed"]


# RFC 9110 §7.2 Host = uri-host [":" port]: a DNS-style name (letters, digits, "-", and
# "_" for internal service names; non-empty labels, an optional trailing dot) or a
# bracketed IPv6 literal, then an optional numeric port. Anything else - "/", "#", "?",
# "\\", "@", spaces, an empty label - is not a host name: refused before any pattern
# matches, or ``evil.com/.example.com`` would pass for a subdomain of ``example.com``.
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?)(?::[0-9]*)?")


def _hostname(host: str) -> str | None:
    """The name part of a lower-cased ``Host`` value, trailing dot removed; None when
    the value is not ``host[:port]``."""
    match = _HOST.fullmatch(host)
    return match.group(1).rstrip(".") if match is not None else None


def host_allowed(host: str, exact: frozenset[str], suffixes: tuple[str, ...]) -> bool:
    """True when ``host`` (a ``Host`` header value) matches the allow-list."""
    name = _hostname(host.lower())
    if name is None:
        return False
    return name in exact or (bool(suffixes) and name.endswith(suffixes))


class TrustedHostMiddleware:
    """Refuse requests whose ``Host`` header names a host this service does not serve."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: Iterable[str],
        exempt_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self._exempt = exempt_paths
        hosts = [h.lower() for h in allowed_hosts]
        self._exact = frozenset(h for h in hosts if not h.startswith("*"))
        self._suffixes = tuple(h[1:] for h in hosts if h.startswith("*."))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self._exempt:
            await self.app(scope, receive, send)
            return
        host: bytes | None = None
        lines = 0
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
                lines += 1
        detail = "The Host header is not allowed."
        raw = scope.get("raw_path")
        if raw and raw[:1] != b"/" and raw != b"*":  # an absolute form (h11, serve)
            split = split_target(raw)
            if split is None:
                await self._refuse(scope, send, "The request target names no usable host.")
                return
            host, path = split
            lines = 1  # the authority is the host; Host lines are not read (§3.2.2)
            scope["headers"] = with_host(scope["headers"], host)
            # As uvicorn builds them for an origin-form target: behind the root path.
            root = scope.get("root_path", "")
            scope["raw_path"] = root.encode("latin-1") + path
            scope["path"] = root + unquote(path.decode("latin-1"))
            detail = "The host the request target names is not allowed."
        if lines > 1:
            detail = "The request has more than one Host header."
        elif host_allowed((host or b"").decode("latin-1"), self._exact, self._suffixes):
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, send, detail)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, detail: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send_problem(scope, send, 400, detail=detail)
