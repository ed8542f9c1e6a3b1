"""CORS with an explicit origin allow-list, on every response including errors.

Hand-written rather than Starlette's ``CORSMiddleware`` for three reasons: a refused
preflight gets a problem+json 403 like every other error here; a disallowed origin never
gets ``Access-Control-Allow-Credentials`` (Kludex/starlette#2560); and ``*`` with
credentials is refused when the config is built (:class:`~flext_api.ServerConfig`) instead
of silently reflecting any origin (this class refuses it too, for stacks built by hand).
Because the error middleware sends its 500 through this layer's ``send``, an allowed
origin can read error bodies too, and an unknown one never can.

Every response gets ``Vary: Origin``, a request without ``Origin`` too (unless the app
already varies on it): whether and what ``Access-Control-Allow-Origin`` says depends on
that header, so a shared cache must not hand the answer to a same-origin request (no
CORS headers) to a cross-origin one, or one origin's answer to another (Fetch standard,
"CORS protocol and HTTP caches"). A preflight's ``Access-Control-Allow-Headers`` lists
the CORS-safelisted names along with the configured ones: a browser asks for
``content-type`` whenever its value is not a form type (``application/json``), and drops
the preflight if the answer does not name it. Repeated ``Access-Control-Request-Headers``
lines are read as one list (RFC 9110 §5.3), so a second line cannot hide a header.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flext_api._errors import ConfigError

from .._asgi import mutable_headers, register_send
from .._problem import send_problem

__all__ = ["CorsMiddleware"]

# Request headers a browser may send without listing them (Fetch standard, CORS-safelisted).
_SAFELISTED_NAMES = ("Accept", "Accept-Language", "Content-Language", "Content-Type")
_SAFELISTED = frozenset(name.lower() for name in _SAFELISTED_NAMES)
_VARY = (b"vary", b"Origin")


def _varies_on_origin(headers: list[tuple[bytes, bytes]]) -> bool:
    """True when ``headers`` hold a ``Vary`` naming ``Origin`` (or ``*``) already."""
    for name, value in headers:
        if name.lower() == b"vary":
            listed = {item.strip().lower() for item in value.split(b",")}
            if b"origin" in listed or b"*" in listed:
                return True
    return False


def _add_vary(message: Message) -> None:
    headers = mutable_headers(message)
    if not _varies_on_origin(headers):
        headers.append(_VARY)


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
        if allow_credentials and "*" in origins:
            # Every origin would be echoed with credentials allowed: any site could read
            # the responses meant for a logged-in user.
            raise ConfigError(
                "allow_origins '*' cannot be combined with allow_credentials=True; "
                "list the trusted origins instead"
            )
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
        configured = {h.lower() for h in headers}
        listed = (*headers, *(h for h in _SAFELISTED_NAMES if h.lower() not in configured))
        self._preflight_headers.append(
            (b"access-control-allow-headers", ", ".join(listed).encode("latin-1"))
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
                # Repeated lines are one list; a later one must not replace an earlier.
                request_headers = (
                    value if request_headers is None else request_headers + b"," + value
                )
        if origin is None:

            async def send_with_vary(message: Message) -> None:
                if message["type"] == "http.response.start":
                    _add_vary(message)
                await send(message)

            await self.app(scope, receive, register_send(scope, send_with_vary))
            return
        allowed = self._any or origin in self._origins
        if scope["method"] == "OPTIONS" and request_method is not None:
            await self._preflight(scope, send, origin, allowed, request_method, request_headers)
            return
        added = [(b"access-control-allow-origin", self._allow_origin(origin))]
        added += self._simple_headers

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                if allowed:
                    mutable_headers(message).extend(added)
                _add_vary(message)
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
