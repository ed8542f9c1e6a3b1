"""BatchRequest, BatchResult and BatchProgress: construction rules and serialization."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from flext_api import ErrorCode
from flext_api._errors import InvalidRequestError
from flext_api.client.batch._models import BatchProgress, BatchRequest, BatchResult, valid_id


def test_request_keyword_fields_and_defaults() -> None:
    """Only id and path are positional; method defaults to GET, the rest to None."""
    request = BatchRequest("a", "/items")
    assert (request.method, request.params, request.json, request.headers) == (
        "GET",
        None,
        None,
        None,
    )
    with pytest.raises(TypeError):
        BatchRequest("a", "GET", "/items")  # type: ignore[call-arg]


def test_request_is_frozen_and_slotted() -> None:
    """A BatchRequest cannot be changed and has no __dict__."""
    request = BatchRequest(1, "/x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.path = "/y"  # type: ignore[misc]
    assert not hasattr(request, "__dict__")


def test_request_method_is_upper_cased() -> None:
    """A lower-case method is normalized."""
    assert BatchRequest("a", "/x", method="post").method == "POST"


@pytest.mark.parametrize("bad_id", [None, 1.5, True, ["a"]])
def test_request_rejects_non_str_int_ids(bad_id: Any) -> None:
    """An id must be a str or an int (not a bool)."""
    with pytest.raises(TypeError, match="id must be str or int"):
        BatchRequest(bad_id, "/x")


@pytest.mark.parametrize("bad_path", ["", None, 3])
def test_request_rejects_empty_or_non_str_path(bad_path: Any) -> None:
    """A path must be a non-empty string."""
    with pytest.raises(TypeError, match="path must be a non-empty str"):
        BatchRequest("a", bad_path)


@pytest.mark.parametrize("bad_method", ["GE T", "", 5])
def test_request_rejects_invalid_methods(bad_method: Any) -> None:
    """A method must be letters only."""
    with pytest.raises(ValueError, match="invalid HTTP method"):
        BatchRequest("a", "/x", method=bad_method)


@pytest.mark.parametrize("field", ["params", "headers"])
def test_request_rejects_non_mapping_params_and_headers(field: str) -> None:
    """params and headers must be mappings."""
    options: dict[str, Any] = {field: ["a", "b"]}
    with pytest.raises(TypeError, match=f"{field} must be an object"):
        BatchRequest("a", "/x", **options)


def test_from_dict_builds_every_field() -> None:
    """from_dict maps the JSON-lines keys to the fields."""
    request = BatchRequest.from_dict(
        {
            "id": 7,
            "method": "put",
            "path": "/a",
            "params": {"q": 1},
            "json": [1],
            "headers": {"X": "y"},
        }
    )
    assert request == BatchRequest(
        7, "/a", method="PUT", params={"q": 1}, json=[1], headers={"X": "y"}
    )


def test_from_dict_null_method_means_get() -> None:
    """An explicit null method is GET."""
    assert BatchRequest.from_dict({"id": 1, "path": "/a", "method": None}).method == "GET"


def test_from_dict_unknown_field_is_invalid_request_with_the_id() -> None:
    """An unknown key is an INVALID_REQUEST naming it; the id is kept in details."""
    with pytest.raises(InvalidRequestError, match="unknown field") as info:
        BatchRequest.from_dict({"id": "a", "path": "/x", "jsn": {}})
    assert "'jsn'" in info.value.message
    assert info.value.details["request_id"] == "a"
    assert info.value.code is ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize("missing", ["id", "path"])
def test_from_dict_missing_required_field(missing: str) -> None:
    """id and path are required."""
    data = {"id": "a", "path": "/x"}
    del data[missing]
    with pytest.raises(InvalidRequestError, match=f"missing required field '{missing}'"):
        BatchRequest.from_dict(data)


def test_from_dict_bad_type_is_invalid_request_without_an_unusable_id() -> None:
    """A wrong type becomes INVALID_REQUEST; an unusable id is reported as None."""
    with pytest.raises(InvalidRequestError, match="must be str or int") as info:
        BatchRequest.from_dict({"id": 2.5, "path": "/x"})
    assert info.value.details["request_id"] is None
    with pytest.raises(InvalidRequestError, match="params must be an object"):
        BatchRequest.from_dict({"id": "a", "path": "/x", "params": [1]})


def test_valid_id() -> None:
    """str and int are ids; bool, float and None are not."""
    assert [valid_id(v) for v in ("a", 0, True, 1.0, None)] == [True, True, False, False, False]


def test_result_to_dict_is_json_ready() -> None:
    """to_dict uses "id", the code's string value and a rounded duration."""
    result = BatchResult("a", False, 503, {"e": 1}, "boom", ErrorCode.HTTP_STATUS, 12.34567, 2, 4)
    assert result.to_dict() == {
        "id": "a",
        "success": False,
        "status_code": 503,
        "data": {"e": 1},
        "error": "boom",
        "error_code": "HTTP_STATUS",
        "duration_ms": 12.346,
        "attempts": 2,
        "index": 4,
    }
    assert BatchResult(1, True).to_dict()["error_code"] is None


def test_progress_succeeded_is_done_minus_failed() -> None:
    """succeeded counts finished items that did not fail."""
    progress = BatchProgress(done=10, failed=3, in_flight=2, retries=1, elapsed=2.0, rate=5.0)
    assert progress.succeeded == 7
    assert (progress.skipped, progress.paused_hosts) == (0, 0)


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [({"X-N": 1}, "must map a str to a str"), ({"X-A": "v\r\nX-B: 1"}, "X-A")],
)
def test_from_dict_header_that_cannot_be_sent_is_invalid_request(
    headers: dict[str, object], fragment: str
) -> None:
    """A header value that is no str, or that holds CR/LF, is a malformed item (reported
    with its input line by the CLI), not a failure found only once it is sent."""
    with pytest.raises(InvalidRequestError, match=fragment) as caught:
        BatchRequest.from_dict({"id": "a", "path": "/x", "headers": headers})
    assert caught.value.details["request_id"] == "a"
