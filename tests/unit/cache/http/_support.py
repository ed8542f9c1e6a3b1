"""A fake downstream (``call_next``) and response builders for the HTTP cache tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from email.utils import formatdate

from flext_api import ErrorCode, FlextApiError, FlextResult, HttpRequest, HttpResponse
from flext_api.cache import CachePlugin
from flext_api.testing import FakeClock

URL = "https://api.test/items"
Responder = Callable[[HttpRequest], FlextResult[HttpResponse]]


def http_date(clock: FakeClock, offset: float = 0.0) -> str:
    return formatdate(clock.time() + offset, usegmt=True)


def answer(
    request: HttpRequest,
    status: int = 200,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"body",
) -> FlextResult[HttpResponse]:
    """What the client's endpoint returns: a success, or HTTP_STATUS with the response
    (for a status >= 400, unless the request's ``fail_on_http_error`` is off)."""
    response = HttpResponse(status, headers=list(headers), content=body, request=request)
    fail = request.extensions.get("fail_on_http_error", True)
    error = response.error_for_status() if fail else None
    return FlextResult.ok(response) if error is None else FlextResult.fail(error)


def failure(code: ErrorCode) -> FlextResult[HttpResponse]:
    return FlextResult.fail(FlextApiError.from_code(code, f"downstream failed: {code.value}"))


class Origin:
    """Records every request that reaches it and answers with ``responder``."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.requests: list[HttpRequest] = []

    async def __call__(self, request: HttpRequest) -> FlextResult[HttpResponse]:
        self.requests.append(request)
        return self.responder(request)

    @property
    def hits(self) -> int:
        return len(self.requests)


def fixed(
    clock: FakeClock,
    headers: Sequence[tuple[str, str]] = (),
    status: int = 200,
    body: bytes = b"body",
) -> Origin:
    """An origin that always answers ``status`` with ``headers`` plus a current Date."""
    return Origin(lambda req: answer(req, status, [("Date", http_date(clock)), *headers], body))


async def get(
    plugin: CachePlugin,
    origin: Origin,
    url: str = URL,
    headers: Sequence[tuple[str, str]] = (),
    method: str = "GET",
) -> FlextResult[HttpResponse]:
    return await plugin.handle(HttpRequest(method, url, headers=list(headers)), origin)


def new_plugin(clock: FakeClock, **kwargs: object) -> CachePlugin:
    return CachePlugin(clock=clock, **kwargs)  # type: ignore[arg-type]
