"""415 for a body that is not JSON sent to a route that takes a JSON body.

A *JSON route* is a FastAPI ``APIRoute`` with a body parameter that is not ``Form``/
``File`` (``route.body_field`` set, its field info not a ``params.Form``). Routes that read
the raw body through ``Request`` declare no body parameter and are not checked, and
neither are form/upload routes. JSON means ``application/json`` or ``application/*+json``
(parameters such as ``charset`` allowed); a body with *no* ``Content-Type`` is refused too
(OWASP REST cheat sheet), where FastAPI would guess.

Pure ASGI cannot know the route before routing, and routing happens inside the app, so the
check runs lazily: requests without a body, or with a JSON content type, pass untouched;
for the others ``receive`` is wrapped, and on the first body read - which FastAPI does
before calling the endpoint, after routing has put the route in the scope - the route is
inspected and :class:`UnsupportedMediaTypeError` is raised when it is a JSON route.
"""

from __future__ import annotations

from typing import Any

from fastapi import params
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["JsonContentTypeMiddleware", "UnsupportedMediaTypeError", "is_json_content_type"]


class UnsupportedMediaTypeError(HTTPException):
    """Raised from ``receive`` when a JSON route gets a body of another type."""

    def __init__(self) -> None:
        super().__init__(415, "This endpoint accepts application/json bodies only.")


def is_json_content_type(value: bytes) -> bool:
    """True for ``application/json`` and ``application/<anything>+json`` (any params)."""
    media = value.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _is_json_route(route: Any) -> bool:
    if not isinstance(route, APIRoute) or route.body_field is None:
        return False
    return not isinstance(route.body_field.field_info, params.Form)


class JsonContentTypeMiddleware:
    """Answer 415 when a JSON route receives a non-JSON body (see module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._json_routes: dict[int, bool] = {}  # id(route) -> is JSON route; routes live forever

    def _route_wants_json(self, route: Any) -> bool:
        key = id(route)
        known = self._json_routes.get(key)
        if known is None:
            known = self._json_routes[key] = _is_json_route(route)
        return known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body = False
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                has_body = value != b"0"
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body or (content_type is not None and is_json_content_type(content_type)):
            await self.app(scope, receive, send)
            return
        checked = False

        async def checking_receive() -> Message:
            nonlocal checked
            if not checked:
                checked = True
                if self._route_wants_json(scope.get("route")):
                    raise UnsupportedMediaTypeError
            return await receive()

        await self.app(scope, checking_receive, send)
