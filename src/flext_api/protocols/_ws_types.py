"""Value types of the WebSocket client: messages, close codes, settings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

import orjson

from .._errors import ErrorCode, FlextApiError
from .._exactjson import loads as exact_json
from .._numbers import is_int, is_real

__all__ = [
    "CloseCode",
    "WebSocketClosed",
    "WebSocketMessage",
    "WebSocketSettings",
    "is_sendable_close_code",
]

# Codes an endpoint may put in its close frame: 1004-1006 and 1015 are reserved.
_SENDABLE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


def is_sendable_close_code(code: int) -> bool:
    """Whether ``code`` may be sent in a close frame (RFC 6455 §7.4): 1000-1003,
    1007-1014, or an application's 3000-4999."""
    return code in _SENDABLE_CODES or 3000 <= code <= 4999


class CloseCode(IntEnum):
    """RFC 6455 §7.4.1 close codes (an application's 4000-4999 codes stay plain ints)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005
    ABNORMAL = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014

    @classmethod
    def of(cls, code: int | None) -> CloseCode | int:
        """The enum member for ``code`` when there is one (None means 1006)."""
        if code is None:
            return cls.ABNORMAL
        try:
            return cls(code)
        except ValueError:
            return code


# Closes after which the server may well accept us again: a drop, a restart, overload.
RECONNECT_CODES = frozenset(
    {
        CloseCode.GOING_AWAY,
        CloseCode.NO_STATUS,
        CloseCode.ABNORMAL,
        CloseCode.INTERNAL_ERROR,
        CloseCode.SERVICE_RESTART,
        CloseCode.TRY_AGAIN_LATER,
        CloseCode.BAD_GATEWAY,
    }
)


class WebSocketMessage:
    """One received data message: ``kind`` is ``"text"`` or ``"bytes"``.

    A plain slotted class: one is made per message, and a frozen dataclass's
    ``__init__`` pays a guarded ``object.__setattr__`` per field.
    """

    __slots__ = ("data", "kind")

    def __init__(self, kind: Literal["text", "bytes"], data: str | bytes) -> None:
        self.kind = kind
        self.data = data

    @property
    def text(self) -> str:
        """The message as text (bytes are decoded as UTF-8; ``DECODE_ERROR`` when they
        are not UTF-8)."""
        if isinstance(self.data, str):
            return self.data
        try:
            return self.data.decode()
        except UnicodeDecodeError as exc:
            raise FlextApiError.from_code(
                ErrorCode.DECODE_ERROR, f"WebSocket message is not UTF-8 text: {exc}"
            ) from exc

    def json(self) -> Any:
        """The message decoded as JSON; raises ``DECODE_ERROR`` when it is not JSON."""
        try:
            return exact_json(self.data)
        except orjson.JSONDecodeError as exc:
            raise FlextApiError.from_code(
                ErrorCode.DECODE_ERROR, f"WebSocket message is not JSON: {exc}"
            ) from exc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WebSocketMessage):
            return NotImplemented
        return self.kind == other.kind and self.data == other.data

    def __hash__(self) -> int:
        return hash((self.kind, self.data))

    def __repr__(self) -> str:
        return f"WebSocketMessage(kind={self.kind!r}, data={self.data!r})"


@dataclass(frozen=True, slots=True)
class WebSocketClosed:
    """How a connection ended: the close ``code`` (typed when standard) and ``reason``."""

    code: CloseCode | int
    reason: str = ""

    @property
    def is_normal(self) -> bool:
        """True for a 1000 close."""
        return self.code == CloseCode.NORMAL


@dataclass(frozen=True, slots=True)
class WebSocketSettings:
    """Behaviour of :class:`~flext_api.protocols.WebSocketConnection`.

    Attributes:
        ping_interval: seconds between pings (None: no heartbeat).
        pong_timeout: seconds to wait for the pong before the connection counts as dead.
        send_queue: bound of the send queue; ``send_*`` waits when it is full.
        receive_queue: bound of the received-message queue; reading from the socket
            pauses when it is full (TCP backpressure reaches the server).
        reconnect: reconnect after a drop (close codes 1001, 1005, 1006, 1011-1014).
        max_reconnects: consecutive failed attempts allowed (None: forever); a
            reconnect counts as failed until its socket delivers a message or stays
            open 30 s.
        protocols: subprotocols offered in ``Sec-WebSocket-Protocol``.
        max_message_size: the largest message accepted, in bytes.
        type_field: the JSON key :meth:`on` routes by.
    """

    ping_interval: float | None = 20.0
    pong_timeout: float | None = 10.0
    send_queue: int = 256
    receive_queue: int = 256
    reconnect: bool = True
    max_reconnects: int | None = None
    protocols: tuple[str, ...] = field(default_factory=tuple)
    max_message_size: int = 4 * 2**20
    type_field: str = "type"

    def __post_init__(self) -> None:
        for name, least in (("send_queue", 1), ("receive_queue", 1), ("max_message_size", 1)):
            value = getattr(self, name)
            if not is_int(value) or value < least:
                raise _config_error(f"{name} must be an int >= {least}, got {value!r}")
        if self.max_reconnects is not None and (
            not is_int(self.max_reconnects) or self.max_reconnects < 0
        ):
            raise _config_error(
                f"max_reconnects must be an int >= 0 or None, got {self.max_reconnects!r}"
            )
        for name in ("ping_interval", "pong_timeout"):
            value = getattr(self, name)
            # ``not value > 0`` also refuses NaN; infinity would never fire.
            if value is not None and not (is_real(value) and 0 < value < math.inf):
                raise _config_error(f"{name} must be seconds > 0 or None, got {value!r}")


def _config_error(message: str) -> FlextApiError:
    return FlextApiError.from_code(ErrorCode.CONFIG_ERROR, f"WebSocketSettings: {message}")
