"""``create_fastapi_app``: a production FastAPI service in one call, secure by default.

The whole middleware stack is assembled here, in one list, outermost first::

    ObservedRequestMiddleware  one pass for what touches every exchange:
                               X-Request-ID (validate/generate, contextvars, echo),
                               in-flight count for the shutdown drain, one JSON access
                               record, X-Response-Time, the duration histogram, the
                               OWASP security headers, slow requests, and any escaped
                               exception -> generic 500 problem+json
    CorsMiddleware             only when origins are configured
    TrustedHostMiddleware      only when allowed_hosts is not "*"
    RequestGateMiddleware      one pass for the cheap checks, in this order:
                               /health, /ready, /metrics (exact paths, no routing);
                               the default rate limit (only when one is configured);
                               413 on Content-Length, then on streamed bytes;
                               415 for non-JSON bodies to JSON routes

Cheap refusals (host, rate, size, type) sit inside the observed pass so they are logged,
measured and carry every header; everything that decorates responses is that pass or
sits outside them, so their problem responses are decorated too. Middleware the user
adds (``app.add_middleware(...)``, ``@app.middleware("http")``) goes *inside* this stack,
between the request gate and FastAPI's exception handlers (Starlette would put it
outside, where its refusals and crashes miss the request ID, the headers and the log):
:class:`_FlextFastAPI` orders the list when Starlette builds the stack. The concerns of the two
passes were twelve middlewares; fused, a request costs two frames and one ``send``
wrapper for all of them (``bench/server.py`` measures the stack against bare FastAPI).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flext_api._clock import Clock
from flext_api._config import FlextApiConfig
from flext_api._errors import ConfigError, FlextApiError
from flext_api._redact import (
    DEFAULT_SENSITIVE_HEADERS,
    DEFAULT_SENSITIVE_QUERY_PARAMS,
    sensitive_names,
)
from flext_api._server_config import ServerConfig
from flext_api.composition import AppPluginManager, EventBus, FlextContainer

from ._auth import API_KEY_HEADER, Authenticator
from ._composition import wire_composition
from ._handlers import flext_error_handler, http_exception_handler, validation_exception_handler
from ._health import ReadinessCheck, liveness, readiness
from ._jwks import JwksFetch
from ._lifespan import UserLifespan, make_lifespan
from ._logging import make_json_logger
from ._metrics import ServerMetrics, metrics_endpoint
from ._ratelimit import RateLimitService
from ._results import FlextRoute
from ._state import FlextServerState
from .middleware import (
    CorsMiddleware,
    ObservedRequestMiddleware,
    RequestGateMiddleware,
    TrustedHostMiddleware,
)
from .middleware._access_log import AccessLogger
from .middleware._security_headers import SecurityHeaderSet
from .middleware._slow import SlowRequestReporter

__all__ = ["build_middleware", "create_fastapi_app"]


def create_fastapi_app(
    config: ServerConfig | FlextApiConfig | None = None,
    *,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    resources: Iterable[object] = (),
    lifespan: UserLifespan | None = None,
    logger: Any = None,
    jwks_fetch: JwksFetch | None = None,
    clock: Clock | None = None,
    graphql: Any = None,
    container: FlextContainer | None = None,
    plugins: AppPluginManager | None = None,
    event_bus: EventBus | None = None,
    slow_request_threshold: float | None = 1.0,
) -> FastAPI:
    """Build a FastAPI app with the full production stack (see docs/server.md).

    Args:
        config: the settings; ``ServerConfig()`` (secure defaults) when omitted. A
            :class:`~flext_api.FlextApiConfig` gives its ``server_config()`` (its
            ``server`` with the FLEXT flat settings ``title``, ``cors_origins``... applied).
        readiness_checks: ``{name: async () -> object}`` run by ``/ready``; more can be
            added with ``app.state.flext.add_readiness_check``.
        resources: opened at start-up, closed in reverse at shutdown (clients, Redis...).
        lifespan: your own lifespan, run inside the factory's.
        logger: a structlog-style logger; default JSON lines on standard output.
        jwks_fetch: how to fetch the JWKS document (default: aiohttp).
        clock: the clock of the JWKS cache and slow-request timing (tests: a FakeClock).
        graphql: a strawberry ``Schema`` (or a :class:`~flext_api.server.GraphQLMount`)
            served at ``/graphql`` behind this app's auth and limits (``graphql`` extra).
        container: a :class:`~flext_api.FlextContainer` closed at shutdown, its pings in
            ``/ready``, ``Depends(inject(T))`` in routes (see docs/composition.md).
        plugins: an :class:`~flext_api.composition.AppPluginManager` run by the lifespan.
        event_bus: an :class:`~flext_api.EventBus` started and stopped with the app.
        slow_request_threshold: seconds after which a request is logged as slow (None: off).

    Raises:
        ConfigError: an unusable setting (bad rate limit, unreadable public key...).
    """
    if isinstance(config, FlextApiConfig):
        config = config.server_config()
    config = config if config is not None else ServerConfig()
    logger = logger if logger is not None else make_json_logger()
    state = FlextServerState(
        config,
        logger=logger,
        authenticator=Authenticator(config.auth, jwks_fetch=jwks_fetch, clock=clock, logger=logger),
        metrics=_metrics(config),
        rate_limiter=_rate_limiter(config, logger),
    )
    if state.metrics is not None:
        state.metrics.track_in_progress(lambda: state.in_flight)
    if state.rate_limiter is not None:
        state.add_resource(state.rate_limiter)
    for resource in resources:
        state.add_resource(resource)
    for name, check in (readiness_checks or {}).items():
        state.add_readiness_check(name, check)

    docs = config.docs_enabled
    own_middleware = build_middleware(
        config, state, slow_requests=_slow_requests(state, slow_request_threshold, clock)
    )
    app = _FlextFastAPI(
        title=config.title,
        version=config.version,
        description=config.description,
        debug=False,
        docs_url=config.docs_url if docs else None,
        redoc_url=config.redoc_url if docs else None,
        openapi_url=config.openapi_url if docs else None,
        lifespan=make_lifespan(state, lifespan),
        middleware=own_middleware,
        exception_handlers={
            HTTPException: http_exception_handler,
            RequestValidationError: validation_exception_handler,
            FlextApiError: flext_error_handler,
        },
    )
    app.flext_middleware = tuple(own_middleware)
    app.flext_owned_headers = frozenset(
        name.lower().encode("latin-1")
        for name in (config.request_id_header, config.response_time_header)
        if name
    )
    app.router.route_class = FlextRoute
    app.state.flext = state
    if graphql is not None:
        from ._graphql import mount_graphql

        mount_graphql(app, graphql)
    wire_composition(
        app,
        state,
        container=container,
        plugins=plugins,
        event_bus=event_bus,
    )
    return app


class _FlextFastAPI(FastAPI):
    """A FastAPI app whose factory stack stays outermost (see module docstring).

    ``add_middleware`` inserts at the front of ``user_middleware``, outside everything
    listed so far; when the stack is built, the factory's entries still in the list are
    moved back in front, in their order, and the user's follow in theirs, behind a thin
    layer dropping the request-ID and timing headers they set (the observed pass adds
    its own: one ID per request, the one in the log). Without user middleware the stack
    is exactly the factory's: nothing is added to a request.
    """

    flext_middleware: tuple[Middleware, ...] = ()
    flext_owned_headers: frozenset[bytes] = frozenset()

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack with the factory's middleware around the user's."""
        listed = self.user_middleware
        own = {id(entry) for entry in self.flext_middleware}
        users = [entry for entry in listed if id(entry) not in own]
        ours = [entry for entry in listed if id(entry) in own]
        if users and self.flext_owned_headers:
            ours.append(Middleware(_DropOwnedHeaders, names=self.flext_owned_headers))
        self.user_middleware = ours + users
        try:
            return super().build_middleware_stack()
        finally:
            self.user_middleware = listed


class _DropOwnedHeaders:
    """Drop the headers the observed pass owns from what the user's middleware sends."""

    def __init__(self, app: ASGIApp, *, names: frozenset[bytes]) -> None:
        self.app = app
        self._names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        names = self._names

        async def dropping_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers") or ()
                if any(name.lower() in names for name, _ in headers):
                    message["headers"] = [h for h in headers if h[0].lower() not in names]
            await send(message)

        await self.app(scope, receive, dropping_send)


def _slow_requests(
    state: FlextServerState, threshold: float | None, clock: Clock | None
) -> SlowRequestReporter | None:
    if threshold is None:
        return None
    registry = state.metrics.registry if state.metrics is not None else None
    return SlowRequestReporter(threshold, logger=state.logger, registry=registry, clock=clock)


def _operational_routes(config: ServerConfig, state: FlextServerState) -> list[Route]:
    health = config.health
    routes = [
        Route(health.liveness_path, liveness, methods=["GET"]),
        Route(health.readiness_path, readiness, methods=["GET"]),
    ]
    if state.metrics is not None:
        token = config.metrics.token
        endpoint = metrics_endpoint(state.metrics, token.get_secret_value() if token else None)
        routes.append(Route(config.metrics.path, endpoint, methods=["GET"]))
    return routes


def _metrics(config: ServerConfig) -> ServerMetrics | None:
    if not config.metrics.enabled:
        return None
    return ServerMetrics(
        buckets=config.metrics.buckets, group_status_codes=config.metrics.group_status_codes
    )


def _rate_limiter(config: ServerConfig, logger: Any) -> RateLimitService | None:
    if not config.rate_limit.enabled:
        return None
    try:
        return RateLimitService(config.rate_limit, logger=logger)
    except ValueError as exc:
        raise ConfigError(f"rate_limit.default_limit: {exc}") from exc


def build_middleware(
    config: ServerConfig,
    state: FlextServerState,
    *,
    slow_requests: SlowRequestReporter | None = None,
) -> list[Middleware]:
    """The middleware stack for ``config``, outermost first (see module docstring)."""
    health = config.health
    operational = frozenset({health.liveness_path, health.readiness_path, config.metrics.path})
    log = config.access_log
    access_log = (
        AccessLogger(
            state.logger,
            sensitive_headers=sensitive_names(DEFAULT_SENSITIVE_HEADERS, log.redact_headers),
            # A key sent as ?X-API-Key=... is ignored by auth, and must not be logged.
            sensitive_query_params=sensitive_names(
                DEFAULT_SENSITIVE_QUERY_PARAMS, (API_KEY_HEADER, *log.redact_query_params)
            ),
            log_headers=log.log_headers,
            skip_paths=frozenset(log.skip_paths),
        )
        if log.enabled
        else None
    )
    stack = [
        Middleware(
            ObservedRequestMiddleware,
            request_id_header=config.request_id_header,
            tracker=state,
            access_log=access_log,
            timing_header=config.response_time_header,
            metrics=state.metrics,
            metrics_exclude_paths=frozenset({config.metrics.path, *config.metrics.exclude_paths}),
            security_headers=_security_headers(config),
            slow_requests=slow_requests,
            error_logger=state.logger,
        ),
    ]
    stack += _cors_and_host_layers(config, operational)
    limiter = state.rate_limiter
    default_limit = limiter.default_limit if limiter is not None else None
    stack.append(
        Middleware(
            RequestGateMiddleware,
            routes=_operational_routes(config, state),
            rate_limiter=limiter,
            default_limit=default_limit,
            rate_limit_exempt_paths=operational,
            rate_limit_headers=config.rate_limit.headers,
            max_body_size=config.max_body_size,
            enforce_json=config.enforce_json_content_type,
        )
    )
    return stack


def _cors_and_host_layers(config: ServerConfig, operational: frozenset[str]) -> list[Middleware]:
    layers = []
    cors = config.cors
    if cors.allow_origins:
        layers.append(
            Middleware(
                CorsMiddleware,
                allow_origins=cors.allow_origins,
                allow_credentials=cors.allow_credentials,
                allow_methods=cors.allow_methods,
                allow_headers=cors.allow_headers,
                expose_headers=cors.expose_headers,
                max_age=cors.max_age,
            )
        )
    if "*" not in config.allowed_hosts:
        layers.append(
            Middleware(
                TrustedHostMiddleware,
                allowed_hosts=config.allowed_hosts,
                exempt_paths=operational - {config.metrics.path},
            )
        )
    return layers


def _security_headers(config: ServerConfig) -> SecurityHeaderSet | None:
    sec = config.security_headers
    if not sec.enabled:
        return None
    docs_paths = (
        {config.docs_url, f"{config.docs_url}/oauth2-redirect", config.redoc_url}
        if config.docs_enabled
        else set()
    )
    return SecurityHeaderSet(
        sec.headers(), docs_paths=docs_paths, docs_csp=sec.docs_content_security_policy
    )
