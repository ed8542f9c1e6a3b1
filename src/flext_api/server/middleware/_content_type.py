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
inspected and :class:`UnsupportedMediaTypeError` is raised when it is a JSON route. The
check runs in the request gate (:mod:`._gate`); :class:`JsonContentTypeMiddleware` is that
gate with only it on.
"""

from __future__ import annotations

from typing import Any

from fastapi import params
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

__all__ = ["UnsupportedMediaTypeError", "is_json_content_type"]


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
