"""Protocols beside HTTP/REST: GraphQL, WebSocket and Server-Sent Events, behind one
registry (:class:`ProtocolRegistry`) that third-party protocols join the same way.

Every client here sits on :class:`~flext_api.FlextApiClient`, so auth, retries, the
per-host circuit breaker and metrics apply, and every fallible call returns a
:class:`~flext_api.FlextResult`.
"""

from __future__ import annotations

from ._base import BaseProtocol as BaseProtocol
from ._builtin import FlextWebProtocol as FlextWebProtocol
from ._builtin import GraphQLProtocol as GraphQLProtocol
from ._builtin import GraphQLRequest as GraphQLRequest
from ._builtin import SSEProtocol as SSEProtocol
from ._builtin import SSERequest as SSERequest
from ._builtin import WebSocketProtocol as WebSocketProtocol
from ._builtin import WebSocketRequest as WebSocketRequest
from ._graphql import GraphQLClient as GraphQLClient
from ._graphql import GraphQLError as GraphQLError
from ._reconnect import Reconnect as Reconnect
from ._registry import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from ._registry import ProtocolRegistry as ProtocolRegistry
from ._sse import EventSource as EventSource
from ._sse import SSEOptions as SSEOptions
from ._sse_parser import EventTooLargeError as EventTooLargeError
from ._sse_parser import ServerSentEvent as ServerSentEvent
from ._sse_parser import SSEParser as SSEParser
from ._websocket import WebSocketConnection as WebSocketConnection
from ._websocket import WebSocketOptions as WebSocketOptions
from ._ws_types import CloseCode as CloseCode
from ._ws_types import WebSocketClosed as WebSocketClosed
from ._ws_types import WebSocketMessage as WebSocketMessage
from ._ws_types import WebSocketSettings as WebSocketSettings

__all__ = [
    "BaseProtocol",
    "CloseCode",
    "ENTRY_POINT_GROUP",
    "EventSource",
    "EventTooLargeError",
    "FlextWebProtocol",
    "GraphQLClient",
    "GraphQLError",
    "GraphQLProtocol",
    "GraphQLRequest",
    "ProtocolRegistry",
    "Reconnect",
    "SSEOptions",
    "SSEParser",
    "SSEProtocol",
    "SSERequest",
    "ServerSentEvent",
    "WebSocketClosed",
    "WebSocketConnection",
    "WebSocketMessage",
    "WebSocketOptions",
    "WebSocketProtocol",
    "WebSocketRequest",
    "WebSocketSettings",
]
