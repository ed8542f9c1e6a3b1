"""Secure response headers on every response, errors included (OWASP REST cheat sheet).

The header lines are encoded once at start-up; per response the middleware only checks
which of them the handler already set (the handler's choice wins, e.g. a cacheable
route's ``Cache-Control``) and appends the rest. The API's strict CSP
(``default-src 'none'``) would break the Swagger/ReDoc pages, so those paths get the
relaxed ``docs_csp`` instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._asgi import mutable_headers, register_send

__all__ = ["SecurityHeadersMiddleware"]


def _encode(headers: Mapping[str, str | None]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers.items()
        if value is not None
    )


class SecurityHeadersMiddleware:
    """Append pre-encoded security headers the response does not already have."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        headers: Mapping[str, str | None],
        docs_paths: Iterable[str] = (),
        docs_csp: str | None = None,
    ) -> None:
        self.app = app
        base = {name.lower(): value for name, value in headers.items()}
        self._headers = _encode(base)
        self._names = frozenset(name for name, _ in self._headers)
        self._docs_paths = frozenset(docs_paths)
        docs = {**base, "content-security-policy": docs_csp} if docs_csp else base
        self._docs_headers = _encode(docs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._docs_headers if scope["path"] in self._docs_paths else self._headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = mutable_headers(message)
                names = self._names
                for name, _ in headers:
                    if name.lower() in names:  # the handler set one: keep its value
                        present = {n.lower() for n, _ in headers}
                        headers.extend(item for item in extra if item[0] not in present)
                        break
                else:
                    headers.extend(extra)
            await send(message)

        await self.app(scope, receive, register_send(scope, send_with_headers))
