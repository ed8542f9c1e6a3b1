"""Problem documents and the FlextApiError -> HTTP status mapping."""

from __future__ import annotations

import orjson
import pytest

from flext_api import ErrorCode, FlextApiError, HttpResponse
from flext_api.server import status_for_error
from flext_api.server._problem import error_headers, problem_body, public_detail


def _error(code: ErrorCode, **kwargs: object) -> FlextApiError:
    return FlextApiError.from_code(code, f"internal detail for {code}", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCode.INVALID_REQUEST, 400),
        (ErrorCode.AUTH_ERROR, 401),
        (ErrorCode.RATE_LIMITED, 429),
        (ErrorCode.CIRCUIT_OPEN, 503),
        (ErrorCode.BULKHEAD_FULL, 503),
        (ErrorCode.CONNECT_TIMEOUT, 504),
        (ErrorCode.READ_TIMEOUT, 504),
        (ErrorCode.DEADLINE_EXCEEDED, 504),
        (ErrorCode.CONNECT_ERROR, 502),
        (ErrorCode.DNS_ERROR, 502),
        (ErrorCode.TLS_ERROR, 502),
        (ErrorCode.PROTOCOL_ERROR, 502),
        (ErrorCode.DECODE_ERROR, 502),
        (ErrorCode.CONFIG_ERROR, 500),
        (ErrorCode.UNEXPECTED_ERROR, 500),
        (ErrorCode.RETRIES_EXHAUSTED, 502),
        (ErrorCode.HTTP_STATUS, 502),
        (ErrorCode.NOT_FOUND, 404),
        (ErrorCode.PRECONDITION_FAILED, 412),
        (ErrorCode.STORAGE_ERROR, 500),
    ],
)
def test_status_for_code(code: ErrorCode, status: int) -> None:
    """Each error code maps to the status a caller of this service should see."""
    assert status_for_error(_error(code)) == status


@pytest.mark.parametrize(("upstream", "status"), [(404, 404), (409, 409), (500, 502), (503, 502)])
def test_http_status_passes_upstream_4xx_only(upstream: int, status: int) -> None:
    """An upstream 4xx passes through; an upstream 5xx is a 502 here."""
    error = _error(ErrorCode.HTTP_STATUS, response=HttpResponse(upstream))
    assert status_for_error(error) == status


def test_retries_exhausted_maps_its_last_error() -> None:
    """RETRIES_EXHAUSTED takes the status of its last attempt's error."""
    last = _error(ErrorCode.READ_TIMEOUT)
    via_details = _error(ErrorCode.RETRIES_EXHAUSTED, details={"last_error": last})
    via_cause = _error(ErrorCode.RETRIES_EXHAUSTED)
    via_cause.__cause__ = _error(ErrorCode.CIRCUIT_OPEN)
    assert (status_for_error(via_details), status_for_error(via_cause)) == (504, 503)


def test_public_detail_hides_5xx_messages() -> None:
    """4xx keep their message; 5xx and upstream statuses get a generic sentence."""
    assert public_detail(_error(ErrorCode.INVALID_REQUEST), 400).startswith("internal detail")
    assert "internal" not in public_detail(_error(ErrorCode.READ_TIMEOUT), 504)
    assert "internal" not in public_detail(_error(ErrorCode.CONFIG_ERROR), 500)
    assert public_detail(_error(ErrorCode.HTTP_STATUS), 404) == "An upstream service answered 404."
    assert "internal" not in public_detail(_error(ErrorCode.HTTP_STATUS), 502)


def test_retry_after_header_rounds_up_for_429_and_503_only() -> None:
    """Retry-After is whole seconds, rounded up, and only on 429/503."""
    error = _error(ErrorCode.RATE_LIMITED, retry_after=2.1)
    assert error_headers(error, 429) == {"Retry-After": "3"}
    assert error_headers(error, 502) == {}
    assert error_headers(_error(ErrorCode.RATE_LIMITED), 429) == {}


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), 1e400])
def test_retry_after_that_is_not_finite_is_left_out(seconds: float) -> None:
    """A non-finite ``retry_after`` gives no Retry-After (it used to crash the handler: 500)."""
    assert error_headers(_error(ErrorCode.RATE_LIMITED, retry_after=seconds), 429) == {}
    assert error_headers(_error(ErrorCode.CIRCUIT_OPEN, retry_after=seconds), 503) == {}


def test_problem_body_members_cannot_be_overridden() -> None:
    """Extension members never replace the standard ones."""
    body = orjson.loads(
        problem_body(400, detail="bad", extensions={"status": 200, "code": "X"}, request_id="r")
    )
    assert body == {
        "status": 400,
        "code": "X",
        "type": "about:blank",
        "title": "Bad Request",
        "detail": "bad",
        "instance": None,
        "request_id": "r",
    }


def test_problem_body_unknown_status_title() -> None:
    """A status without an HTTP phrase still gets a title."""
    assert orjson.loads(problem_body(599))["title"] == "Error"


def test_problem_body_escapes_a_lone_surrogate() -> None:
    """A client's lone surrogate in a detail or extension is written as the text \\ud800."""
    body = orjson.loads(
        problem_body(404, detail="unknown sku ab\ud800", extensions={"errors": ["x\udfff"]})
    )
    assert (body["detail"], body["errors"]) == ("unknown sku ab\\ud800", ["x\\udfff"])
