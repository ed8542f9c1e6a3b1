"""``FlextApiClient``: the async HTTP client whose every call returns a ``FlextResult``.

A call builds a validated :class:`HttpRequest`, runs it through the plugin pipeline
(built once, in :meth:`FlextApiClient.__init__`) and ends at the transport. Expected
failures (bad input, network, timeouts, HTTP errors, open circuits) come back as
failed results; only cancellation propagates, as asyncio requires.

Pipeline, outermost first: the ``plugins`` you pass, in order, then the default stages
that ``ClientConfig`` turns on (deadline, cache, retry, circuit breaker, rate limiter,
bulkhead), then ``auth``, then redirects and the transport (which applies the
per-attempt timeouts). A default stage is skipped when ``plugins`` already holds a
plugin of the same class.
"""

from __future__ import annotations

import ssl
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict, Unpack

import structlog
from pydantic import ValidationError

from .._clock import Clock, get_clock
from .._config import ClientConfig, TimeoutConfig
from .._context import propagation_headers, request_id_var
from .._errors import ConfigError, ErrorCode, FlextApiError
from .._models import (
    Headers,
    HeaderTypes,
    HttpRequest,
    HttpResponse,
    host_of,
    validate_header,
)
from .._result import FlextResult
from ..transports._base import Transport
from ._manager import PluginManager
from ._plugin import CallNext, FlextApiPlugin, Plugin, build_pipeline, plugin_name
from ._redirects import follow_redirects
from ._request import (
    USE_CLIENT_DEFAULT,
    FileTypes,
    ParamTypes,
    UseClientDefault,
    build_url,
    check_framing,
    encode_body,
    merge_headers,
    normalize_base_url,
)
from ._stages import default_stages

if TYPE_CHECKING:
    from ..discovery import ServiceRegistry
    from ..protocols import EventSource, SSEOptions, WebSocketConnection, WebSocketOptions
    from .batch._batch import BatchInput, BatchOptions
    from .batch._models import BatchResult
    from .pagination._paginate import PaginateOptions, Paginator

__all__ = ["FlextApiClient", "RequestOptions"]

_log = structlog.get_logger("flext_api.client")

_Call: TypeAlias = "Coroutine[Any, Any, FlextResult[HttpResponse]]"


async def _ready(result: FlextResult[HttpResponse]) -> FlextResult[HttpResponse]:
    return result


def _bad_arguments(exc: Exception) -> FlextApiError:
    error = FlextApiError.from_code(
        ErrorCode.INVALID_REQUEST, f"invalid request arguments: {type(exc).__name__}: {exc}"
    )
    error.__cause__ = exc
    return error


_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


class RequestOptions(TypedDict, total=False):
    """Keyword arguments every request method accepts."""

    params: ParamTypes
    headers: HeaderTypes
    json: Any
    data: Any
    content: Any
    files: dict[str, FileTypes]
    timeout: TimeoutConfig | float | UseClientDefault | None
    retry: Any
    fail_on_http_error: bool | UseClientDefault
    follow_redirects: bool | UseClientDefault
    idempotency_key: str | bool | None
    extensions: dict[str, Any]


_OPTION_KEYS = frozenset(RequestOptions.__annotations__)


class FlextApiClient:
    """Resilient async HTTP client; every call returns ``FlextResult[HttpResponse]``.

    >>> async with FlextApiClient("https://api.example") as client:   # doctest: +SKIP
    ...     result = await client.get("/items", params={"page": 1})
    ...     items = result.map(lambda r: r.json()).unwrap_or([])

    Args:
        base_url: prefix of relative URLs (default: ``config.base_url``).
        config: every setting, with production defaults (:class:`ClientConfig`).
        plugins: middlewares or :class:`FlextApiPlugin` s; the first is outermost.
        transport: how bytes are sent (default: aiohttp, or httpx2 when
            ``config.http2`` or ``config.transport == "httpx"``, or pyreqwest when
            ``config.transport == "pyreqwest"``).
        headers: sent with every request (validated once, here).
        auth: an auth plugin (``BearerAuth``...), placed just above the transport so
            every retry is authenticated afresh.
        timeout: per-phase timeouts (a number sets every phase; None turns them off).
        fail_on_http_error: status >= 400 is a failure (default ``config``'s, True).
        default_plugins: False leaves out every default stage.
        clock: the client's one clock, for deadlines and every stage (default: the clock
            its plugins were given, else real time); plugins built without a clock
            run on it.
        ssl_context: an ``ssl.SSLContext`` for the default transport.
        registry: a :class:`~flext_api.discovery.ServiceRegistry`; URLs (and a
            ``base_url``) of the form ``service://NAME/path`` then go to an instance of
            NAME picked per attempt (see docs/discovery.md).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        config: ClientConfig | None = None,
        plugins: Sequence[Plugin] | None = None,
        transport: Transport | None = None,
        headers: HeaderTypes = None,
        auth: Plugin | None = None,
        timeout: TimeoutConfig | float | UseClientDefault | None = USE_CLIENT_DEFAULT,
        fail_on_http_error: bool | None = None,
        default_plugins: bool = True,
        clock: Clock | None = None,
        ssl_context: ssl.SSLContext | None = None,
        registry: ServiceRegistry | None = None,
    ) -> None:
        _check_arguments(base_url, config, plugins, auth, clock, ssl_context)
        cfg = config or ClientConfig()
        self.config = cfg
        user = list(plugins or [])
        for plugin in user:
            if not (isinstance(plugin, FlextApiPlugin) or callable(plugin)):
                raise ConfigError(
                    f"plugins= holds {plugin!r}: a plugin is a FlextApiPlugin or a "
                    "middleware callable"
                )
        self._clock = _one_clock(clock, [*user, auth] if auth is not None else user)
        try:
            self._base_url = normalize_base_url(base_url if base_url is not None else cfg.base_url)
            # A URL under the base (the usual call) has the base's host: per-host stages
            # then need not parse it again.
            self._base_prefix = self._base_host = ""
            if self._base_url is not None:
                self._base_host = host_of(self._base_url)
                scheme, _, rest = self._base_url.partition("://")
                self._base_prefix = f"{scheme}://{rest.split('/', 1)[0]}/"
            self._timeout = (
                cfg.timeout if isinstance(timeout, UseClientDefault) else TimeoutConfig.of(timeout)
            )
            self._headers = self._initial_headers(cfg, headers)
        except FlextApiError as exc:
            raise ConfigError(exc.message) from exc
        except ValidationError as exc:  # timeout=-1, nan or "5": pydantic names the field
            raise ConfigError(f"a client setting is not usable: {exc}") from exc
        self._fail_on_http_error = (
            cfg.fail_on_http_error if fail_on_http_error is None else fail_on_http_error
        )
        if transport is not None and not (
            callable(getattr(transport, "send", None))
            and callable(getattr(transport, "aclose", None))
        ):
            # A name ("httpx") failed only at the first request, as an UNEXPECTED_ERROR.
            raise ConfigError(
                f"transport= takes a Transport (AiohttpTransport(), H1Transport(), ...), "
                f"got {transport!r}; to choose a built-in one by name use "
                "ClientConfig(transport='httpx')"
            )
        self._transport: Transport = transport or _default_transport(
            cfg, self._timeout, self._clock, ssl_context
        )
        chain: list[Plugin] = list(user)
        if default_plugins:
            chain.extend(default_stages(cfg, clock=self._clock, present=user))
        self.auth = auth
        self._registry = registry
        if registry is not None:
            _add_discovery_stage(chain, registry, len(user), self._clock)
        elif self._base_url is not None and self._base_url.startswith("service://"):
            raise ConfigError("a service:// base_url needs FlextApiClient(registry=...)")
        if auth is not None:
            chain.append(auth)
        for plugin in chain:
            if isinstance(plugin, FlextApiPlugin):
                plugin.use_clock(self._clock)
                plugin.use_fail_on_http_error(self._fail_on_http_error)
        self.plugins = PluginManager(chain)
        # Plugins that also watch single attempts (logging, tracing) contribute a stage
        # placed innermost, below retry and auth, so it sees every attempt.
        attempt_stages = [
            stage
            for plugin in chain
            if (stage := getattr(plugin, "attempt_stage", lambda: None)()) is not None
        ]
        self._stage_names = [plugin_name(p) for p in chain] + [
            f"{plugin_name(s)}[attempt]" for s in attempt_stages
        ]
        self._pipeline: CallNext = build_pipeline([*chain, *attempt_stages], self._endpoint)
        self._requests = 0
        self._attempts = 0
        self._failed_attempts = 0
        self._in_flight = 0
        self._opened = False
        self._closed = False

    @staticmethod
    def _initial_headers(cfg: ClientConfig, headers: HeaderTypes) -> list[tuple[str, str]]:
        base = Headers({"User-Agent": cfg.user_agent, **cfg.headers})
        merged = merge_headers(base.multi_items(), headers) if headers else base
        for name, value in merged.raw():
            validate_header(name, value)
            if name.lower() in ("content-length", "transfer-encoding"):
                # Each request's body decides its framing; a default would contradict most.
                raise ConfigError(
                    f"{name} cannot be a default header of a client: the transport sets "
                    "it from each request's body"
                )
        return merged.multi_items()

    # -- properties ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str | None:
        """The base URL relative paths are joined to."""
        return self._base_url

    @property
    def registry(self) -> ServiceRegistry | None:
        """The registry ``service://`` URLs are resolved through (None: not resolved)."""
        return self._registry

    @property
    def transport(self) -> Transport:
        """The transport in use."""
        return self._transport

    @property
    def clock(self) -> Clock:
        """The clock deadlines and policies use."""
        return self._clock

    @property
    def is_closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._closed

    # -- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> FlextApiClient:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> FlextResult[None]:
        """Run the plugins' ``initialize`` hooks (``async with`` does this for you)."""
        if self._opened:
            return FlextResult.ok(None)
        self._opened = True
        return await self.plugins.initialize()

    async def aclose(self) -> FlextResult[None]:
        """Run plugin cleanup (reverse order) and close the pool; idempotent."""
        if self._closed:
            return FlextResult.ok(None)
        self._closed = True
        result = await self.plugins.cleanup() if self._opened else FlextResult.ok(None)
        await self._transport.aclose()
        return result

    # -- the pipeline's innermost stage ----------------------------------------------------------
    async def _endpoint(self, request: HttpRequest) -> FlextResult[HttpResponse]:
        # One attempt: transport, redirects, status check. The counters live here,
        # innermost, so they need no coroutine frame of their own around the pipeline.
        self._attempts += 1
        self._in_flight += 1
        ext = request.extensions
        streaming = bool(ext.get("stream"))
        transport = self._transport
        try:
            response = await transport.send(request, stream=streaming)
            if response.status_code in (301, 302, 303, 307, 308):
                follow = ext.get("follow_redirects", self.config.follow_redirects)
                if follow and response.is_redirect:

                    async def send(req: HttpRequest) -> HttpResponse:
                        return await transport.send(req, stream=streaming)

                    response = await follow_redirects(
                        send,
                        request,
                        response,
                        max_redirects=self.config.max_redirects,
                        streaming=streaming,
                    )
            if response.status_code >= 400 and ext.get(
                "fail_on_http_error", self._fail_on_http_error
            ):
                if streaming:
                    # The error must carry the body; read it and give the connection back.
                    await response.aread()
                status_error = response.error_for_status()
                assert status_error is not None
                raise status_error
        except FlextApiError as exc:
            self._failed_attempts += 1
            if self._closed:
                # The pool was closed under the attempt: not the server's doing, and
                # nothing to retry.
                closed = FlextApiError.from_code(
                    ErrorCode.CANCELLED,
                    f"the client was closed while {request.method} {request.host} was in "
                    f"flight ({exc.code.value}: {exc.message})",
                )
                closed.__cause__ = exc
                exc = closed
            if exc.request is None:
                exc.request = request
            return FlextResult(error=exc)
        except Exception as exc:  # noqa: BLE001 - a transport bug is reported, not blamed on a plugin
            self._failed_attempts += 1
            err = FlextApiError.wrap(exc)
            err.message = f"transport {getattr(transport, 'name', '?')!r} raised {err.message}"
            err.request = request
            return FlextResult(error=err)
        finally:
            self._in_flight -= 1
        return FlextResult(response)

    # -- requests -----------------------------------------------------------------------------
    def build_request(
        self, method: str, url: str, **options: Unpack[RequestOptions]
    ) -> HttpRequest:
        """Build the validated request a call would send; raises ``InvalidRequestError``."""
        if method not in _KNOWN_METHODS:
            if not isinstance(method, str):
                raise FlextApiError.from_code(
                    ErrorCode.INVALID_REQUEST,
                    f"the HTTP method must be a str, got {type(method).__name__}",
                )
            method = method.upper()
            if not method.isalpha():
                raise FlextApiError.from_code(
                    ErrorCode.INVALID_REQUEST, f"invalid HTTP method {method!r}"
                )
        full_url = build_url(self._base_url, url, options.get("params"))
        if self._registry is None and full_url.startswith("service://"):
            raise FlextApiError.from_code(
                ErrorCode.INVALID_REQUEST,
                "service:// URLs need a client made with FlextApiClient(registry=...)",
            )
        if options and not _OPTION_KEYS.issuperset(options):
            # A misspelt option (param=, header=) or one this client has not (cookies=)
            # would otherwise be dropped without a word.
            unknown = ", ".join(sorted(set(options) - _OPTION_KEYS))
            raise FlextApiError.from_code(
                ErrorCode.INVALID_REQUEST,
                f"unknown request option(s): {unknown} "
                f"(accepted: {', '.join(sorted(_OPTION_KEYS))})",
            )
        extra = options.get("headers") if options else None
        # No per-request headers (the usual call): a copy of the client's, no merge call.
        headers = (
            merge_headers(self._headers, extra)
            if extra
            else Headers.from_pairs(self._headers.copy())
        )
        request_id = request_id_var.get()
        if request_id is not None:
            # Inside a flext-api server request: outgoing calls carry its ID (and trace).
            _propagate(headers)
        timeout = self._timeout
        ext: dict[str, Any] = {}
        content = stream = None
        if options:
            # The common call passes no options (or only params/headers): skip the rest.
            content, stream, ctype = encode_body(
                json=options.get("json"),
                data=options.get("data"),
                content=options.get("content"),
                files=options.get("files"),
            )
            if ctype is not None and "content-type" not in headers:
                headers.add("Content-Type", ctype)
            if extra and ("content-length" in headers or "transfer-encoding" in headers):
                stream = check_framing(headers, content, stream)
            extensions = options.get("extensions")
            if extensions:
                ext.update(extensions)
            timeout_opt = options.get("timeout", USE_CLIENT_DEFAULT)
            if not isinstance(timeout_opt, UseClientDefault):
                try:
                    timeout = TimeoutConfig.of(timeout_opt)
                except ValueError as exc:  # pydantic's ValidationError is one
                    raise FlextApiError.from_code(
                        ErrorCode.INVALID_REQUEST,
                        f"timeout= must be seconds > 0, None or a TimeoutConfig, "
                        f"got {timeout_opt!r}",
                    ) from exc
            for key in ("retry", "fail_on_http_error", "follow_redirects"):
                value = options.get(key, USE_CLIENT_DEFAULT)
                if not isinstance(value, UseClientDefault):
                    ext[key] = value
            key_opt = options.get("idempotency_key")
            if isinstance(key_opt, str):
                if not key_opt.strip():
                    # A blank key would make the request replayable with nothing for the
                    # server to deduplicate on.
                    raise FlextApiError.from_code(
                        ErrorCode.INVALID_REQUEST, "idempotency_key= must not be blank"
                    )
                validate_header("Idempotency-Key", key_opt)
                headers.set("Idempotency-Key", key_opt)
            elif key_opt is True:
                ext["idempotency_key"] = True
            elif key_opt is not None and key_opt is not False:
                raise FlextApiError.from_code(
                    ErrorCode.INVALID_REQUEST,
                    f"idempotency_key= must be a str, True, False or None, "
                    f"got {type(key_opt).__name__}",
                )
        total = timeout.total
        request = HttpRequest(
            method,
            full_url,
            headers=headers,
            content=content,
            stream=stream,
            timeout=timeout,
            deadline=None if total is None else self._clock.monotonic() + total,
            extensions=ext,
        )
        if self._base_prefix and full_url.startswith(self._base_prefix):
            request.host_hint(self._base_host)
        return request

    def request(
        self, method: str, url: str, **options: Unpack[RequestOptions]
    ) -> Coroutine[Any, Any, FlextResult[HttpResponse]]:
        """Send a request through the pipeline; await the result (never raises for
        expected failures).

        A plain function returning the awaitable, not a coroutine function: every
        coroutine frame in the chain is paid again on each resume after network I/O.
        """
        if self._closed:
            return _ready(FlextResult.fail("client is closed", code=ErrorCode.INVALID_REQUEST))
        try:
            request = self.build_request(method, url, **options)
        except FlextApiError as exc:
            return _ready(FlextResult(error=exc))
        except (TypeError, ValueError) as exc:
            # An argument of a shape no check above foresaw: still a result, not a raise.
            return _ready(FlextResult(error=_bad_arguments(exc)))
        # send() inlined: one call less per request.
        self._requests += 1
        return self._pipeline(request)  # type: ignore[return-value]

    def send(self, request: HttpRequest) -> _Call:
        """Send an already built request through the pipeline; await the result."""
        self._requests += 1
        # Every stage is a coroutine function (or returns one), so this is a coroutine
        # (no typing.cast: a function call per request).
        return self._pipeline(request)  # type: ignore[return-value]

    def get(self, url: str, **options: Unpack[RequestOptions]) -> _Call:
        """GET ``url``."""
        return self.request("GET", url, **options)

    def head(self, url: str, **options: Unpack[RequestOptions]) -> _Call:
        """HEAD ``url``."""
        return self.request("HEAD", url, **options)

    def options(self, url: str, **options: Unpack[RequestOptions]) -> _Call:
        """OPTIONS ``url``."""
        return self.request("OPTIONS", url, **options)

    def delete(self, url: str, **options: Unpack[RequestOptions]) -> _Call:
        """DELETE ``url``."""
        return self.request("DELETE", url, **options)

    def post(self, url: str, **options: Unpack[RequestOptions]) -> _Call:
        """POST to ``url``."""
        return self.request("POST", url, **options)

    def put(self, url: str, **options: Unpack[RequestOptions]) -> _Call:
        """PUT to ``url``."""
        return self.request("PUT", url, **options)

    def patch(self, url: str, **options: Unpack[RequestOptions]) -> _Call:
        """PATCH ``url``."""
        return self.request("PATCH", url, **options)

    @asynccontextmanager
    async def stream(
        self, method: str, url: str, **options: Unpack[RequestOptions]
    ) -> AsyncIterator[HttpResponse]:
        """Send a request and yield the response with its body unread.

        Read it with ``aiter_bytes()``/``aiter_lines()``/``aread()``; the connection goes
        back to the pool when the block exits, also on error or cancellation. A failed
        request raises its :class:`FlextApiError` on entry (a context manager has no
        result to return).
        """
        ext = dict(options.get("extensions") or {})
        ext["stream"] = True
        options["extensions"] = ext
        result = await self.request(method, url, **options)
        response = result.value
        try:
            yield response
        finally:
            await response.aclose()

    # -- many requests ------------------------------------------------------------------------
    def batch(
        self, requests: BatchInput, **options: Unpack[BatchOptions]
    ) -> AsyncGenerator[BatchResult, None]:
        """Run many requests with bounded concurrency; see :func:`flext_api.client.run_batch`.

        >>> async for result in client.batch(items, concurrency=50):   # doctest: +SKIP
        ...     print(result.request_id, result.success)
        """
        from .batch._batch import run_batch

        return run_batch(self, requests, **options)

    def paginate(self, path: str, **options: Unpack[PaginateOptions]) -> Paginator:
        """Iterate over pages of a collection; see :class:`flext_api.client.Paginator`."""
        from .pagination._paginate import Paginator

        return Paginator(self, path, **options)

    # -- streaming protocols (flext_api.protocols) ----------------------------------------
    def websocket(self, url: str, **options: Unpack[WebSocketOptions]) -> WebSocketConnection:
        """A WebSocket that reconnects and resubscribes; see
        :class:`flext_api.protocols.WebSocketConnection` (``async with`` connects).
        """
        from ..protocols import WebSocketConnection

        return WebSocketConnection(self, url, **options)

    def sse(self, method: str, url: str, **options: Unpack[SSEOptions]) -> EventSource:
        """A resumable Server-Sent Events stream; see :class:`flext_api.protocols.EventSource`.

        >>> async for event in client.sse("GET", "/events"):   # doctest: +SKIP
        ...     print(event.id, event.data)
        """
        from ..protocols import EventSource

        return EventSource(self, method, url, **options)

    # -- introspection ------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters and the transport's pool figures.

        ``requests``: logical requests sent; ``attempts``: attempts that reached the
        transport (retries included), ``failed_attempts`` of them failed; ``in_flight``:
        attempts on the wire now (not requests waiting between retries).
        """
        return {
            "requests": self._requests,
            "attempts": self._attempts,
            "failed_attempts": self._failed_attempts,
            "in_flight": self._in_flight,
            "pool": self._transport.stats(),
        }

    def describe(self) -> list[str]:
        """The pipeline's stages, outermost first, ending at the transport."""
        transport = f"transport:{getattr(self._transport, 'name', '?')}"
        return [*self._stage_names, "redirects", transport]

    def __repr__(self) -> str:
        pool = self._transport.stats()
        state = "closed" if self._closed else "open"
        return (
            f"<FlextApiClient base_url={self._base_url!r} {state} "
            f"[Requests: {self._requests} sent, {self._in_flight} attempts in flight | "
            f"Pool: {pool.get('in_use', 0)} in use, {pool.get('idle', 0)} idle]>"
        )


def _add_discovery_stage(
    chain: list[Plugin], registry: ServiceRegistry, user_count: int, clock: Clock | None
) -> None:
    """Put the discovery stage just inside retry (or after the caller's plugins), so each
    attempt picks an instance and the per-host stages below it key on that instance."""
    from ..discovery import ServiceRegistry
    from ._discovery import DiscoveryPlugin
    from .plugins import RetryPlugin

    if not isinstance(registry, ServiceRegistry):
        raise ConfigError(f"registry= takes a ServiceRegistry, got {type(registry).__name__}")

    at = next(
        (i + 1 for i in range(len(chain) - 1, -1, -1) if isinstance(chain[i], RetryPlugin)),
        user_count,
    )
    chain.insert(at, DiscoveryPlugin(registry, clock=clock))


def _propagate(headers: Headers) -> None:
    """Copy the current server request's X-Request-ID and traceparent (asgi-correlation-id#46)."""
    for name, value in propagation_headers().items():
        if name not in headers:
            try:
                validate_header(name, value)
            except FlextApiError:
                # Set outside the server middleware (request_context("...")) and unsafe:
                # dropped, never sent, and never shown (it may be hostile).
                _log.warning("request_id.invalid_value_dropped", header=name)
                continue
            headers.add(name, value)


def _check_arguments(
    base_url: object,
    config: object,
    plugins: object,
    auth: object,
    clock: object,
    ssl_context: object,
) -> None:
    """Raise :class:`ConfigError` naming the argument of a wrong type (they failed later
    as an ``AttributeError``, or on the first request as an ``UNEXPECTED_ERROR``)."""
    if isinstance(base_url, ClientConfig):
        raise ConfigError(
            "FlextApiClient(ClientConfig(...)): the first argument is base_url; pass the "
            "settings as config=ClientConfig(...)"
        )
    if base_url is not None and not isinstance(base_url, str):
        raise ConfigError(f"base_url must be a str URL, got {type(base_url).__name__}")
    if config is not None and not isinstance(config, ClientConfig):
        raise ConfigError(
            f"config= takes a ClientConfig, got {type(config).__name__}; build one with "
            "ClientConfig(**settings) or ClientConfig.model_validate(settings)"
        )
    if plugins is not None and (
        isinstance(plugins, (str, bytes, Mapping)) or not isinstance(plugins, Iterable)
    ):
        raise ConfigError(f"plugins= takes a list of plugins, got {type(plugins).__name__}")
    if auth is not None and not (isinstance(auth, FlextApiPlugin) or callable(auth)):
        raise ConfigError(
            f"auth= takes an auth plugin (BearerAuth(token), BasicAuth(user, password), "
            f"...), got {type(auth).__name__}"
        )
    if clock is not None and not all(
        callable(getattr(clock, name, None)) for name in ("monotonic", "time", "sleep")
    ):
        raise ConfigError(
            f"clock= takes a Clock (monotonic(), time() and async sleep()), got {clock!r}"
        )
    if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
        raise ConfigError(f"ssl_context= takes an ssl.SSLContext, got {type(ssl_context).__name__}")


def _one_clock(clock: Clock | None, plugins: Sequence[Plugin]) -> Clock:
    """The client's one clock: ``clock``, else the one its plugins were given, else real time.

    The deadline the client sets is an instant on this clock, and every stage compares
    it with its own reading of time, so two clocks in one client would compare
    instants of different clocks. Plugins built without a clock are handed this one;
    two different clocks given to one client are a configuration error.
    """
    chosen, source = clock, "the client"
    for plugin in plugins:
        own = plugin.own_clock if isinstance(plugin, FlextApiPlugin) else None
        if own is None or own is chosen:
            continue
        if chosen is not None:
            raise ConfigError(
                f"{plugin_name(plugin)} runs on {own!r} but {source} on {chosen!r}: a client "
                "runs on one clock (its deadline is an instant on it); pass the same clock "
                "to both, or give it to the client only"
            )
        chosen, source = own, plugin_name(plugin)
    return get_clock(chosen)


def _default_transport(
    cfg: ClientConfig, timeout: TimeoutConfig, clock: Clock, ssl_context: ssl.SSLContext | None
) -> Transport:
    # What every built-in transport takes from the config, the same way.
    common: dict[str, Any] = {
        "ssl_context": ssl_context,
        "verify": cfg.verify_ssl,
        "clock": clock,
        "max_response_size": cfg.max_response_size,
    }
    if cfg.http2 or cfg.transport == "httpx":
        from ..transports._httpx import HttpxTransport

        return HttpxTransport(cfg.pool, timeout, http2=cfg.http2, **common)
    if cfg.transport == "pyreqwest":
        from ..transports import PyreqwestTransport  # the extra's ImportError names it

        return PyreqwestTransport(cfg.pool, timeout, **common)
    from ..transports._aiohttp import AiohttpTransport

    return AiohttpTransport(cfg.pool, timeout, **common)
