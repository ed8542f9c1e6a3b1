"""A scripted upstream for plugin tests: a fake ``call_next`` with canned results."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from flext_api import ErrorCode, FlextApiError, FlextResult, HttpRequest, HttpResponse
from flext_api.testing import FakeClock

Step = FlextResult[HttpResponse] | int | ErrorCode | Callable[[HttpRequest], Awaitable[Any]]


def ok(status: int = 200, headers: dict[str, str] | None = None) -> FlextResult[HttpResponse]:
    """A response returned as a success (``fail_on_http_error=False`` for >= 400)."""
    return FlextResult.ok(HttpResponse(status, headers=headers))


def status_failure(status: int, headers: dict[str, str] | None = None) -> FlextResult[HttpResponse]:
    """An ``HTTP_STATUS`` failure carrying its response, as the client's endpoint makes."""
    error = HttpResponse(status, headers=headers).error_for_status()
    assert error is not None
    return FlextResult.fail(error)


def error(code: ErrorCode, message: str = "boom") -> FlextResult[HttpResponse]:
    """A failure with ``code`` and no response."""
    return FlextResult.fail(FlextApiError.from_code(code, message))


class TrackedResponse(HttpResponse):
    """A response that records whether it was closed."""

    def __init__(self, status: int, **kwargs: Any) -> None:
        self.closed = False

        async def close() -> None:
            self.closed = True

        super().__init__(status, close=close, **kwargs)


class Upstream:
    """``call_next`` that plays ``steps`` in order and records every request it saw.

    A step is a ready result, an int (status; >= 400 becomes an ``HTTP_STATUS``
    failure), an ``ErrorCode`` (a failure without response) or an async function of
    the request. The last step repeats when the script runs out. ``clock`` and
    ``latency`` make each call take fake time.
    """

    def __init__(
        self,
        steps: Iterable[Step] = (200,),
        *,
        clock: FakeClock | None = None,
        latency: float = 0.0,
    ) -> None:
        self.steps = list(steps)
        self.requests: list[HttpRequest] = []
        self.attempt_headers: list[dict[str, str]] = []
        self.clock = clock
        self.latency = latency
        self.responses: list[TrackedResponse] = []

    @property
    def calls(self) -> int:
        """How many attempts reached the upstream."""
        return len(self.requests)

    async def __call__(self, request: HttpRequest) -> FlextResult[HttpResponse]:
        index = min(len(self.requests), len(self.steps) - 1)
        self.requests.append(request)
        self.attempt_headers.append(dict(request.headers.items()))
        if self.clock is not None and self.latency:
            await self.clock.sleep(self.latency)
        step = self.steps[index]
        if isinstance(step, FlextResult):
            return step
        if isinstance(step, ErrorCode):
            return error(step)
        if isinstance(step, int):
            response = TrackedResponse(step, request=request)
            self.responses.append(response)
            if step >= 400:
                err = response.error_for_status()
                assert err is not None
                return FlextResult.fail(err)
            return FlextResult.ok(response)
        out: FlextResult[HttpResponse] = await step(request)
        return out


def get(url: str = "http://api.example.com/items", **kwargs: Any) -> HttpRequest:
    """A GET request to ``api.example.com``."""
    return HttpRequest("GET", url, **kwargs)


def post(url: str = "http://api.example.com/items", **kwargs: Any) -> HttpRequest:
    """A POST request to ``api.example.com`` with a small replayable body."""
    kwargs.setdefault("content", b"{}")
    return HttpRequest("POST", url, **kwargs)
