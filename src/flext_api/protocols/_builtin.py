"""The built-in protocols: ``http``, ``graphql``, ``websocket`` and ``sse``.

Each wraps a client of this package behind :class:`BaseProtocol`. ``create_client``
takes a plain mapping: the :class:`~flext_api.FlextApiClient` keywords (``base_url``,
``config``, ``headers``, ``auth``, ...) plus the protocol's own keys (``endpoint`` for
GraphQL, ``url`` and ``settings`` for WebSocket, ``url`` and ``method`` for SSE).
A protocol that creates its own HTTP client for :meth:`execute_request` closes it in
:meth:`aclose`.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, cast

from .._errors import ConfigError, ErrorCode, FlextApiError
from .._models import HttpRequest, HttpResponse
from .._numbers import is_real
from .._result import FlextResult
from ..client._client import FlextApiClient
from ._base import BaseProtocol
from ._graphql import GraphQLClient
from ._sse import EventSource
from ._sse_parser import ServerSentEvent
from ._websocket import WebSocketConnection
from ._ws_types import WebSocketMessage, WebSocketSettings

__all__ = [
    "FlextWebProtocol",
    "GraphQLProtocol",
    "GraphQLRequest",
    "SSEProtocol",
    "SSERequest",
    "WebSocketProtocol",
    "WebSocketRequest",
]

_CLIENT_KEYS = frozenset(inspect.signature(FlextApiClient).parameters)


def _http_client(config: dict[str, Any]) -> FlextApiClient:
    """A FlextApiClient from the client keys of ``config`` (the others are the protocol's)."""
    return FlextApiClient(**{k: v for k, v in config.items() if k in _CLIENT_KEYS})


def _unknown(config: dict[str, Any], allowed: frozenset[str], protocol: str) -> None:
    extra = sorted(set(config) - _CLIENT_KEYS - allowed)
    if extra:
        raise ConfigError(f"{protocol} client config: unknown key(s) {', '.join(extra)}")


class _OwnsClient(BaseProtocol):
    """Holds the HTTP client that ``execute_request`` uses (given, or made on demand)."""

    def __init__(self, client: FlextApiClient | None = None, **config: Any) -> None:
        self._client = client
        self._owned: FlextApiClient | None = None
        self._config = config

    def _default_client(self) -> FlextApiClient:
        if self._client is not None:
            return self._client
        if self._owned is None:
            self._owned = _http_client(self._config)
        return self._owned

    async def aclose(self) -> None:
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.aclose()


class FlextWebProtocol(_OwnsClient):
    """HTTP/REST: clients are :class:`FlextApiClient`, requests are :class:`HttpRequest`."""

    name: ClassVar[str] = "http"

    def create_client(self, config: dict[str, Any]) -> FlextApiClient:
        """``FlextApiClient(**config)``; raises ``ConfigError`` on an unknown key."""
        _unknown(config, frozenset(), self.name)
        return _http_client(config)

    async def execute_request(self, request: HttpRequest) -> FlextResult[HttpResponse]:
        """Send ``request`` through the protocol's client."""
        if not isinstance(cast(object, request), HttpRequest):
            return FlextResult.fail(
                f"http protocol needs an HttpRequest, got {type(request).__name__}",
                code=ErrorCode.INVALID_REQUEST,
            )
        return await self._default_client().send(request)


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    """One GraphQL operation for :meth:`GraphQLProtocol.execute_request`."""

    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    kind: Literal["query", "mutation"] = "query"
    endpoint: str = "/graphql"


class GraphQLProtocol(_OwnsClient):
    """GraphQL: clients are :class:`GraphQLClient` (``endpoint``, ``persisted_queries``)."""

    name: ClassVar[str] = "graphql"
    _KEYS = frozenset({"endpoint", "persisted_queries"})

    def create_client(self, config: dict[str, Any]) -> GraphQLClient:
        """A GraphQL client on a new HTTP client made from ``config``."""
        _unknown(config, self._KEYS, self.name)
        return GraphQLClient(
            _http_client(config),
            config.get("endpoint", "/graphql"),
            persisted_queries=bool(config.get("persisted_queries", False)),
        )

    async def execute_request(self, request: GraphQLRequest) -> FlextResult[dict[str, Any]]:
        """Run one query or mutation; the result holds ``data``."""
        if not isinstance(cast(object, request), GraphQLRequest):
            return FlextResult.fail(
                f"graphql protocol needs a GraphQLRequest, got {type(request).__name__}",
                code=ErrorCode.INVALID_REQUEST,
            )
        gql = GraphQLClient(self._default_client(), request.endpoint)
        run = gql.query if request.kind == "query" else gql.mutate
        return await run(request.query, request.variables, operation_name=request.operation_name)


@dataclass(frozen=True, slots=True)
class WebSocketRequest:
    """Send ``message`` (str, bytes or JSON value) on a new connection, await one reply."""

    url: str
    message: Any
    timeout: float | None = 30.0
    settings: WebSocketSettings = field(default_factory=lambda: WebSocketSettings(reconnect=False))


class WebSocketProtocol(_OwnsClient):
    """WebSocket: clients are :class:`WebSocketConnection` (``url``, ``settings``)."""

    name: ClassVar[str] = "websocket"
    _KEYS = frozenset({"url", "settings", "on_reconnect"})

    def create_client(self, config: dict[str, Any]) -> WebSocketConnection:
        """An unopened connection to ``config["url"]`` (``async with`` opens it)."""
        _unknown(config, self._KEYS, self.name)
        if "url" not in config:
            raise ConfigError("websocket client config needs a 'url'")
        return _http_client(config).websocket(
            config["url"],
            settings=config.get("settings"),
            on_reconnect=config.get("on_reconnect"),
        )

    async def execute_request(self, request: WebSocketRequest) -> FlextResult[WebSocketMessage]:
        """One request/reply exchange on a short-lived connection."""
        if not isinstance(cast(object, request), WebSocketRequest):
            return FlextResult.fail(
                f"websocket protocol needs a WebSocketRequest, got {type(request).__name__}",
                code=ErrorCode.INVALID_REQUEST,
            )
        ws = self._default_client().websocket(request.url, settings=request.settings)
        opened = await ws.connect()
        if opened.is_failure:
            return FlextResult(error=opened.exception)
        try:
            message = request.message
            if isinstance(message, str):
                sent = await ws.send_text(message)
            elif isinstance(message, bytes):
                sent = await ws.send_bytes(message)
            else:
                sent = await ws.send_json(message)
            if sent.is_failure:
                return FlextResult(error=sent.exception)
            return await ws.receive(request.timeout)
        finally:
            await ws.close()


@dataclass(frozen=True, slots=True)
class SSERequest:
    """Read ``max_events`` events from ``url`` (fewer when the stream ends first) within
    ``timeout`` seconds (None: no bound; a stream that reconnects for ever then waits for
    ever). Past it the result is ``READ_TIMEOUT``, the events read so far in its
    ``details["events"]``."""

    url: str
    max_events: int = 1
    method: str = "GET"
    timeout: float | None = 30.0


class SSEProtocol(_OwnsClient):
    """Server-Sent Events: clients are :class:`EventSource` (``url``, ``method``)."""

    name: ClassVar[str] = "sse"
    _KEYS = frozenset({"url", "method", "idle_timeout", "max_reconnects", "last_event_id"})

    def create_client(self, config: dict[str, Any]) -> EventSource:
        """An event stream of ``config["url"]`` (iterate it to connect)."""
        _unknown(config, self._KEYS, self.name)
        if "url" not in config:
            raise ConfigError("sse client config needs a 'url'")
        options = {
            k: config[k] for k in ("idle_timeout", "max_reconnects", "last_event_id") if k in config
        }
        return _http_client(config).sse(config.get("method", "GET"), config["url"], **options)

    async def execute_request(self, request: SSERequest) -> FlextResult[list[ServerSentEvent]]:
        """Collect up to ``max_events`` events."""
        timeout: object = getattr(request, "timeout", None)
        if (
            not isinstance(cast(object, request), SSERequest)
            or not isinstance(cast(object, request.max_events), int)
            or request.max_events < 1
            or (
                timeout is not None and not (is_real(timeout) and timeout > 0)  # NaN too
            )
        ):
            return FlextResult.fail(
                "sse protocol needs an SSERequest with max_events >= 1 and a timeout "
                "> 0 seconds or None",
                code=ErrorCode.INVALID_REQUEST,
            )
        events: list[ServerSentEvent] = []
        async with self._default_client().sse(request.method, request.url) as stream:
            try:
                async with asyncio.timeout(request.timeout):
                    async for event in stream:
                        events.append(event)
                        if len(events) >= request.max_events:
                            break
            except FlextApiError as exc:
                return FlextResult(error=exc)
            except TimeoutError:
                return FlextResult.fail(
                    FlextApiError.from_code(
                        ErrorCode.READ_TIMEOUT,
                        f"{len(events)} of {request.max_events} events within {request.timeout} s",
                        details={"events": events},
                    )
                )
        return FlextResult.ok(events)
