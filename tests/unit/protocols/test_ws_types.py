"""WebSocket value types and the handshake error mapping."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from flext_api import ErrorCode, FlextApiError, HttpRequest
from flext_api.protocols import CloseCode, WebSocketClosed, WebSocketMessage, WebSocketSettings
from flext_api.transports._websocket import translate_ws_error

KEY = ConnectionKey("h", 1, False, True, None, None, None, None)


def test_close_code_of_none_is_abnormal() -> None:
    """No close code means an abnormal closure (1006)."""
    assert CloseCode.of(None) is CloseCode.ABNORMAL


def test_application_close_code_stays_int() -> None:
    """A 4000-4999 code is kept as a plain int."""
    assert CloseCode.of(4001) == 4001 and not isinstance(CloseCode.of(4001), CloseCode)


def test_closed_is_normal_only_for_1000() -> None:
    """is_normal is True for 1000 only."""
    assert WebSocketClosed(CloseCode.NORMAL).is_normal
    assert not WebSocketClosed(CloseCode.GOING_AWAY).is_normal


def test_bytes_message_text_decodes() -> None:
    """A binary message's text is its UTF-8 decoding."""
    assert WebSocketMessage("bytes", "é".encode()).text == "é"


def test_non_json_message_is_decode_error() -> None:
    """json() of a message that is not JSON raises DECODE_ERROR."""
    with pytest.raises(FlextApiError) as info:
        WebSocketMessage("text", "nope").json()
    assert info.value.code is ErrorCode.DECODE_ERROR


def test_message_equality_hash_repr() -> None:
    """Messages compare by value and show their fields."""
    message = WebSocketMessage("text", "a")
    assert message == WebSocketMessage("text", "a") and message != "a"
    assert hash(message) == hash(WebSocketMessage("text", "a"))
    assert repr(message) == "WebSocketMessage(kind='text', data='a')"


@pytest.mark.parametrize("field", ["send_queue", "receive_queue"])
def test_queue_bound_below_one_is_config_error(field: str) -> None:
    """A queue bound below 1 is CONFIG_ERROR."""
    with pytest.raises(FlextApiError) as info:
        WebSocketSettings(**{field: 0})  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.CONFIG_ERROR


@pytest.mark.parametrize("field", ["ping_interval", "pong_timeout"])
def test_nonpositive_heartbeat_is_config_error(field: str) -> None:
    """A heartbeat setting <= 0 is CONFIG_ERROR naming it."""
    with pytest.raises(FlextApiError) as info:
        WebSocketSettings(**{field: 0})  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.CONFIG_ERROR and field in info.value.message


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "unknown name")), ErrorCode.DNS_ERROR),
        (aiohttp.ClientSSLError(KEY, OSError("bad cert")), ErrorCode.TLS_ERROR),
        (TimeoutError(), ErrorCode.CONNECT_TIMEOUT),
        (aiohttp.InvalidURL("nope"), ErrorCode.INVALID_REQUEST),
        (aiohttp.ClientPayloadError("cut"), ErrorCode.CONNECT_ERROR),
        (RuntimeError("odd"), ErrorCode.UNEXPECTED_ERROR),
    ],
)
def test_handshake_errors_map_to_codes(exc: Exception, code: ErrorCode) -> None:
    """Each handshake failure maps to its most specific code, chained to the cause."""
    err = translate_ws_error(exc, HttpRequest("GET", "ws://127.0.0.1:1/ws"))
    assert err.code is code and err.__cause__ is exc


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ping_interval", float("nan")),
        ("pong_timeout", float("nan")),
        ("ping_interval", float("inf")),
        ("ping_interval", "20"),
        ("send_queue", float("nan")),
        ("receive_queue", "3"),
        ("max_message_size", -1),
        ("max_reconnects", -1),
        ("max_reconnects", 1.5),
    ],
)
def test_unusable_setting_is_config_error(field: str, value: object) -> None:
    """NaN, infinite, negative and wrongly typed settings are CONFIG_ERROR naming the field."""
    with pytest.raises(FlextApiError) as info:
        WebSocketSettings(**{field: value})  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.CONFIG_ERROR and field in info.value.message


def test_non_utf8_bytes_message_text_is_decode_error() -> None:
    """`.text` of bytes that are not UTF-8 raises DECODE_ERROR, as `.json()` does."""
    with pytest.raises(FlextApiError) as info:
        _ = WebSocketMessage("bytes", b"\xff\xfe").text
    assert info.value.code is ErrorCode.DECODE_ERROR
