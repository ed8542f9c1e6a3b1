"""``encode_event``: events in text/event-stream form, read back by our parser."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flext_api import ErrorCode, FlextApiError
from flext_api.protocols import ServerSentEvent, SSEParser
from flext_api.server import EventStreamResponse, encode_event


def _round_trip(event: object) -> list[ServerSentEvent]:
    return SSEParser().feed(encode_event(event))


def test_string_is_data() -> None:
    """A plain string is the data of a message event."""
    assert encode_event("hi") == b"data: hi\n\n"


def test_multi_line_data_round_trips() -> None:
    """Data with CR, LF and CRLF comes back joined with LF."""
    assert _round_trip("a\nb\r\nc\rd") == [ServerSentEvent("a\nb\nc\nd")]


def test_dict_data_is_json() -> None:
    """Non-string data is sent as JSON; id, event and retry are kept."""
    event = {"id": 7, "event": "tick", "retry": 1500, "data": {"n": 1}}
    assert _round_trip(event) == [ServerSentEvent('{"n":1}', "tick", "7", 1500)]


def test_event_object_round_trips() -> None:
    """A ServerSentEvent is sent with its fields."""
    assert _round_trip(ServerSentEvent("x", "e", "3")) == [ServerSentEvent("x", "e", "3")]


@pytest.mark.parametrize("field", ["id", "event"])
def test_newline_in_field_is_invalid(field: str) -> None:
    """A newline in id or event is refused with INVALID_REQUEST."""
    with pytest.raises(FlextApiError) as info:
        encode_event({field: "a\nb", "data": "x"})
    assert info.value.code is ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize("data", [{"v": float("nan")}, [float("inf")], {"bad": object()}])
def test_data_json_cannot_hold_is_invalid(data: object) -> None:
    """Data that JSON cannot hold (NaN would have been sent as null) is INVALID_REQUEST."""
    with pytest.raises(FlextApiError) as info:
        encode_event({"data": data})
    assert info.value.code is ErrorCode.INVALID_REQUEST
    assert "SSE data is not JSON-serializable" in str(info.value)


@pytest.mark.parametrize("retry", [-5, 1.5, float("nan"), float("inf"), "12", True])
def test_retry_that_is_not_whole_milliseconds_is_invalid(retry: object) -> None:
    """retry is ASCII digits on the wire: anything but an int >= 0 is INVALID_REQUEST
    (a negative one went out as "-5", NaN and text raised a bare ValueError)."""
    with pytest.raises(FlextApiError) as info:
        encode_event({"data": "x", "retry": retry})
    assert info.value.code is ErrorCode.INVALID_REQUEST
    assert encode_event({"data": "x", "retry": 0}) == b"retry: 0\ndata: x\n\n"


async def _no_events() -> AsyncIterator[str]:
    return
    yield  # an async generator that yields nothing


@pytest.mark.parametrize("heartbeat", [0, -1, float("nan"), float("inf"), "5", True])
def test_heartbeat_that_is_not_positive_seconds_is_config_error(heartbeat: object) -> None:
    """A heartbeat of 0 or less (a busy loop of pings), NaN, infinity or a non-number is
    refused when the response is made."""
    with pytest.raises(FlextApiError) as info:
        EventStreamResponse(_no_events(), heartbeat=heartbeat)  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.CONFIG_ERROR and "heartbeat" in info.value.message


@pytest.mark.parametrize("heartbeat", [None, 0.5, 15])
def test_heartbeat_of_positive_seconds_or_none_is_kept(heartbeat: float | None) -> None:
    """None (no pings) and positive seconds are accepted."""
    assert EventStreamResponse(_no_events(), heartbeat=heartbeat).heartbeat == heartbeat
