"""CORS with an explicit origin allow-list, on every response including errors.

Hand-written rather than Starlette's ``CORSMiddleware`` for three reasons: a refused
preflight gets a problem+json 403 like every other error here; a disallowed origin never
gets ``Access-Control-Allow-Credentials`` (Kludex/starlette#2560); and ``*`` with
credentials is refused when the config is built (:class:`~flext_api.ServerConfig`) instead
of silently reflecting any origin. Because the error middleware sends its 500 through this
layer's ``send``, an allowed origin can read error bodies too, and an unknown one never can.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._asgi import mutable_headers, register_send
from .._problem import send_problem

__all__ = ["CorsMiddleware"]

# Request headers a browser may send without listing them (Fetch standard, CORS-safelisted).
_SAFELISTED = frozenset({"accept", "accept-language", "content-language", "content-type"})
_VARY = (b"vary", b"Origin")


class CorsMiddleware:
    """Answer preflights and add CORS headers for allowed origins only."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allow_origins: Iterable[str],
        allow_credentials: bool = False,
        allow_methods: Iterable[str] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"),
        allow_headers: Iterable[str] = (),
        expose_headers: Iterable[str] = (),
        max_age: int = 600,
    ) -> None:
        self.app = app
        origins = tuple(allow_origins)
        self._any = "*" in origins
        self._origins = frozenset(o.encode("latin-1") for o in origins if o != "*")
        self._credentials = allow_credentials
        methods = tuple(m.upper() for m in allow_methods)
        self._methods = frozenset(m.encode("latin-1") for m in methods)
        headers = tuple(allow_headers)
        self._allowed_headers = frozenset(h.lower() for h in headers) | _SAFELISTED
        self._preflight_headers = [
            (b"access-control-allow-methods", ", ".join(methods).encode("latin-1")),
            (b"access-control-max-age", str(max_age).encode()),
        ]
        if headers:
            self._preflight_headers.append(
                (b"access-control-allow-headers", ", ".join(headers).encode("latin-1"))
            )
        expose = ", ".join(expose_headers).encode("latin-1")
        self._simple_headers = [(b"access-control-expose-headers", expose)] if expose else []
        if allow_credentials:
            self._simple_headers.append((b"access-control-allow-credentials", b"true"))
            self._preflight_headers.append((b"access-control-allow-credentials", b"true"))

    def _allow_origin(self, origin: bytes) -> bytes:
        # "*" only when no credentials are involved; otherwise echo the listed origin.
        return b"*" if self._any and not self._credentials else origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = request_method = request_headers = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                request_method = value
            elif name == b"access-control-request-headers":
                request_headers = value
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = self._any or origin in self._origins
        if scope["method"] == "OPTIONS" and request_method is not None:
            await self._preflight(scope, send, origin, allowed, request_method, request_headers)
            return
        added = [(b"access-control-allow-origin", self._allow_origin(origin))]
        added += self._simple_headers
        added.append(_VARY)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                mutable_headers(message).extend(added if allowed else (_VARY,))
            await send(message)

        await self.app(scope, receive, register_send(scope, send_with_cors))

    async def _preflight(
        self,
        scope: Scope,
        send: Send,
        origin: bytes,
        allowed: bool,
        method: bytes,
        requested: bytes | None,
    ) -> None:
        refusal = None
        if not allowed:
            refusal = "The origin is not allowed."
        elif method.upper() not in self._methods:
            refusal = "The method is not allowed for cross-origin requests."
        elif requested is not None:
            names = {h.strip().lower() for h in requested.decode("latin-1").split(",")}
            if not names - {""} <= self._allowed_headers:
                refusal = "A requested header is not allowed for cross-origin requests."
        if refusal is not None:
            await send_problem(scope, send, 403, detail=refusal, headers=[_VARY])
            return
        headers = [
            (b"access-control-allow-origin", self._allow_origin(origin)),
            *self._preflight_headers,
            _VARY,
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
