"""Handlers that return a :class:`~flext_api.FlextResult`.

Two ways, pick one per route:

- annotate the handler ``-> FlextResult[Item]``: :class:`FlextRoute` (the factory's
  default route class) documents ``Item`` as the response model and unwraps the result,
  so a success is serialized as usual and a failure becomes the problem response of its
  :class:`~flext_api.FlextApiError`; a handler with no return annotation (or ``-> Any``)
  is unwrapped too, with no response model;
- or return ``result_response(result)`` from any route (``request=`` is optional: the
  problem response takes the path and request ID of the request it answers, and a 5xx
  cause is logged, either way).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, get_args, get_origin

from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flext_api._result import FlextResult

from ._handlers import error_response

__all__ = ["FlextRoute", "result_response"]

_DEFAULT = DefaultPlaceholder(None)


def result_response(
    result: FlextResult[Any], *, request: Request | None = None, status_code: int = 200
) -> Response:
    """The success value as JSON (a ``Response`` value is returned as is), or the problem.

    The problem's ``instance`` and ``request_id`` are the request's, and a 5xx cause is
    logged, with or without ``request`` (without it, they are filled in when the
    response is sent).
    """
    error = result.exception
    if error is not None:
        return error_response(error, request.scope if request is not None else None)
    value = result.value
    if isinstance(value, Response):
        return value
    return JSONResponse(jsonable_encoder(value), status_code=status_code)


def _unwrap(value: Any) -> Any:
    # .value raises the FlextApiError of a failure; its exception handler answers.
    return value.value if isinstance(value, FlextResult) else value


def _unwrapping(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(endpoint):

        @functools.wraps(endpoint)
        async def async_endpoint(*args: Any, **kwargs: Any) -> Any:
            return _unwrap(await endpoint(*args, **kwargs))

        return async_endpoint

    @functools.wraps(endpoint)
    def sync_endpoint(*args: Any, **kwargs: Any) -> Any:
        return _unwrap(endpoint(*args, **kwargs))

    return sync_endpoint


class FlextRoute(APIRoute):
    """An ``APIRoute`` whose handler may be annotated ``-> FlextResult[T]``.

    The response model becomes ``T`` (unless one is given) and the result is unwrapped.
    Use it for your own routers too: ``APIRouter(route_class=FlextRoute)``.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        annotation = get_typed_return_annotation(endpoint)
        if annotation is FlextResult or get_origin(annotation) is FlextResult:
            if isinstance(kwargs.get("response_model", _DEFAULT), DefaultPlaceholder):
                args = get_args(annotation)
                kwargs["response_model"] = args[0] if args else None
            endpoint = _unwrapping(endpoint)
        elif (annotation is None and _unannotated(endpoint)) or annotation is Any:
            # It may return a FlextResult all the same (it was a 500: FastAPI cannot
            # encode one); only such handlers pay the unwrapping frame.
            endpoint = _unwrapping(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _unannotated(endpoint: Callable[..., Any]) -> bool:
    """No return annotation at all (``get_typed_return_annotation`` gives None for that
    and for ``-> None`` alike). It read the signature already: this cannot fail."""
    return inspect.signature(endpoint).return_annotation is inspect.Signature.empty
