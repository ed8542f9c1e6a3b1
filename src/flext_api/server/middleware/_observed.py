"""One pass over every HTTP exchange: request ID, in-flight count, access log, timing,
metrics, security headers, slow requests and escaped errors.

These concerns touch every request and every response. As stacked middlewares they cost
a ``__call__`` frame each per request and a nested ``send`` wrapper each per message
(about 50 µs per request on a 2-core machine, a third of a hello-world FastAPI request).
Fused, the request enters one frame, every message goes through one ``send`` wrapper,
the response-start headers are appended in one place, and one timing serves the
header, the log, the histogram and the slow-request check.

Each concern is optional (``None`` turns it off), so the single-purpose middlewares
(:class:`RequestIdMiddleware`, :class:`TimingMiddleware`, ...) are this class with one
concern on, and the factory uses it with all of them: one implementation, one set of
semantics. What each concern does:

- **request ID**: an inbound ``X-Request-ID`` matching ``[A-Za-z0-9._:-]{1,128}`` and
  appearing once is kept, anything else is replaced by a fresh UUID4 (the ID is echoed
  and logged, so it is never trusted verbatim). An ``X-Request-ID`` (or
  ``X-Response-Time``) the app sets itself is replaced by the pass's own. While the
  request runs it is in :data:`flext_api._context.request_id_var`, structlog's
  contextvars and the scope; a well-formed W3C ``traceparent`` is exposed the same way.
- **in-flight**: start and end reported to a tracker (the graceful drain waits on it).
- **access log**: exactly one record per request (see :mod:`._access_log`).
- **timing**: ``X-Response-Time``, milliseconds to the response start.
- **metrics**: duration, status and route template into :class:`ServerMetrics`; the
  template of a route in a mounted app carries the mount's (``/sub/items/{id}``).
- **security headers**: pre-encoded headers appended unless the handler set them.
- **slow requests**: a warning and a counter past a threshold (see :mod:`._slow`).
- **errors** (``error_logger``): an exception escaping the app (or a ``BaseException``
  that is not cancellation or an exit) becomes a problem response, as
  :class:`~._errors.ErrorMiddleware` does; it is answered after the
  request's log record, metrics and in-flight count are done, as when that layer sat
  outside this one.

Headers are appended in the order the stacked middlewares gave them: security headers,
then ``X-Response-Time``, then the request ID.
"""

from __future__ import annotations

from contextvars import ContextVar
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flext_api._context import request_id_var, traceparent_var

from .._asgi import REQUEST_ID_KEY, SEND_KEY, UNMATCHED_ROUTE, OwnedHeaders, escaped_status
from .._metrics import STANDARD_METHODS, ServerMetrics
from ._access_log import AccessLogger
from ._errors import answer_escaped, passes_through
from ._request_id import read_request_id
from ._security_headers import SecurityHeaderSet

if TYPE_CHECKING:
    from ._slow import SlowRequestReporter

__all__ = ["InFlightTracker", "ObservedRequestMiddleware"]

_bind = structlog.contextvars.bind_contextvars
# structlog keeps one ContextVar per bound key for the life of the process; the one of
# ``request_id`` is taken from the first bind's token and then set directly (what
# bind_contextvars does, without building a dict of tokens per request).
_LOG_VAR: list[ContextVar[Any]] = []

#: How many (mount path, route) labels a middleware keeps (mount paths without
#: parameters only: a bounded set); past it they are worked out per request.
MOUNT_CACHE_SIZE = 1024
_MOUNT_TAIL = "/{path}"  # what a Mount's own template ends with


def mounted_template(
    scope: Scope, app_root: str, route: Any, template: str, cache: dict[Any, str | None]
) -> str | None:
    """``template`` behind the templates of the mounts the request went through.

    ``scope["root_path"]`` past ``app_root`` is the concrete path the mounts took
    (``/tenants/acme``); the mounts of the outermost router (``scope["router"]``) that
    take it give their templates (``/tenants/{tenant}``), so no raw path reaches a label.
    A route that is itself a mount (static files, a plain ASGI app, a 404 inside the
    mounted app) has its own path in its template already. None when the mounts are not
    found (the caller keeps the template as it was). ``cache`` keeps the answers for
    mount paths without parameters.
    """
    taken = scope.get("root_path", "")[len(app_root) :]
    key = (taken, id(route))
    if key in cache:
        return cache[key]
    routes = getattr(scope.get("router"), "routes", ())
    prefix, literal = _mount_prefix(routes, taken, route)
    label = None if prefix is None else prefix + template
    if literal and len(cache) < MOUNT_CACHE_SIZE:
        cache[key] = label
    return label


def _mount_prefix(routes: Any, taken: str, route: Any) -> tuple[str | None, bool]:
    """The templates of the mounts, in ``routes`` and down, that took the path ``taken``
    (first match wins, as in the router; stops at ``route`` if it is one of them), and
    whether none of those mounts has a path parameter."""
    prefix = ""
    literal = True
    while taken:
        for mount in routes:
            if isinstance(mount, Mount):
                match = mount.path_regex.match(taken + "/")
                if match is not None:
                    break
        else:
            return None, literal
        literal = literal and len(mount.param_convertors) == 1  # only its own {path}
        if mount is route:
            break
        prefix += mount.path_format[: -len(_MOUNT_TAIL)]  # "{id:int}" is "{id}" there
        taken = ("/" + match["path"]).rstrip("/")
        routes = mount.routes
    return prefix, literal


class InFlightTracker(Protocol):
    """What the in-flight count reports to (the server state implements it)."""

    def request_started(self) -> None:
        """A request entered the stack."""

    def request_finished(self) -> None:
        """A request left the stack (finished, failed or cancelled)."""


class ObservedRequestMiddleware:
    """Request ID, in-flight, access log, timing, metrics and security headers in one pass."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        request_id_header: str | None = None,
        tracker: InFlightTracker | None = None,
        access_log: AccessLogger | None = None,
        timing_header: str | None = None,
        metrics: ServerMetrics | None = None,
        metrics_exclude_paths: frozenset[str] = frozenset(),
        security_headers: SecurityHeaderSet | None = None,
        slow_requests: SlowRequestReporter | None = None,
        error_logger: Any = None,
    ) -> None:
        self.app = app
        self._id_header = (
            request_id_header.lower().encode("latin-1") if request_id_header is not None else None
        )
        self._tracker = tracker
        self._log = access_log
        self._timing = timing_header.lower().encode("latin-1") if timing_header else None
        self._metrics = metrics
        self._exclude = metrics_exclude_paths
        self._security = security_headers
        self._slow = slow_requests
        self._errors = error_logger
        # Whether the response start needs touching at all (the status is always read).
        self._decorates = bool(self._id_header or self._timing or security_headers)
        # The headers this pass sets: a value the app set for one is dropped, so the
        # response carries one request ID, the one in the log and the problem documents.
        self._owned = frozenset(name for name in (self._id_header, self._timing) if name)
        # Route labels of requests that went through a mount (see mounted_template).
        self._mounted: dict[Any, str | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        id_header = self._id_header
        id_pair: tuple[bytes, bytes] | None = None
        trace: str | None = None
        request_id = ""
        if id_header is not None:
            request_id, encoded, trace = read_request_id(scope, id_header)
            scope[REQUEST_ID_KEY] = request_id
            id_pair = (id_header, encoded)
        security = self._security
        if security is not None:
            extra = security.for_path(scope["path"])
            add_security = security.apply
        else:
            extra, add_security = (), None
        timing = self._timing
        decorates = self._decorates
        owned = self._owned
        status: int | None = None

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if decorates:
                    headers = message.get("headers")
                    if type(headers) is not OwnedHeaders:
                        headers = message["headers"] = OwnedHeaders(headers or ())
                    if owned:
                        for name, _ in headers:
                            if name.lower() in owned:
                                headers[:] = [h for h in headers if h[0].lower() not in owned]
                                break
                    if add_security is not None:
                        add_security(headers, extra)
                    if timing is not None:
                        # Whole microseconds as "ms.µµµ": integer formatting, no float one.
                        micros = round((perf_counter() - start) * 1e6)
                        headers.append((timing, b"%d.%03dms" % divmod(micros, 1000)))
                    if id_pair is not None:
                        headers.append(id_pair)
            await send(message)

        scope[SEND_KEY] = observed_send  # register_send, inlined
        tracker = self._tracker
        if tracker is not None:
            tracker.request_started()
        if id_pair is not None:
            id_token = request_id_var.set(request_id)
            # Each request runs in its own task, whose context starts without a traceparent.
            trace_token = traceparent_var.set(trace) if trace is not None else None
            if _LOG_VAR:
                log_token = _LOG_VAR[0].set(request_id)
            else:
                log_token = _bind(request_id=request_id)["request_id"]
                _LOG_VAR.append(log_token.var)
        slow = self._slow
        slow_clock = slow.now if slow is not None else None
        slow_start = slow_clock() if slow_clock is not None else 0.0
        escaped: BaseException | None = None
        started = False
        try:
            await self.app(scope, receive, observed_send)
        except Exception as exc:
            started = status is not None
            if not started:
                status = escaped_status(exc)
            if self._errors is None:
                raise
            escaped = exc
        except BaseException as exc:
            # Not cancellation or an exit (those end the request, status left unknown):
            # a handler's own BaseException is a 500 like any other failure.
            if passes_through(exc):
                raise
            started = status is not None
            if not started:
                status = 500
            if self._errors is None:
                raise
            escaped = exc
        finally:
            seconds = perf_counter() - start
            route: Any = scope.get("route")
            template = getattr(route, "path_format", None)
            if type(template) is not str:
                template = None
            else:
                # Set by a Starlette mount only (its root path before the first mount).
                app_root = scope.get("app_root_path")
                if app_root is not None:
                    template = (
                        mounted_template(scope, app_root, route, template, self._mounted)
                        or template
                    )
            if self._log is not None:
                self._log.log(scope, status, seconds, template)
            if self._metrics is not None and scope["path"] not in self._exclude:
                method = scope["method"]
                self._metrics.observe(
                    method if method in STANDARD_METHODS else "_OTHER",
                    template or UNMATCHED_ROUTE,
                    status,
                    seconds,
                )
            if slow is not None:
                if slow_clock is not None:
                    seconds = slow_clock() - slow_start
                # The reporter's per-route cache, read here: most requests are not slow.
                threshold: Any = slow.thresholds.get(id(route), slow)
                if threshold is slow or (threshold is not None and seconds >= threshold):
                    slow.check(scope, route, template or UNMATCHED_ROUTE, seconds)
            if id_pair is not None:
                log_token.var.reset(log_token)
                if trace_token is not None:
                    traceparent_var.reset(trace_token)
                request_id_var.reset(id_token)
            if tracker is not None:
                tracker.request_finished()
        if escaped is not None:
            try:
                await answer_escaped(
                    scope, observed_send, escaped, started=started, logger=self._errors
                )
            finally:
                # The registered send leads back to the server's protocol object, which
                # holds this scope: a reference cycle, left to the cyclic GC unless cut.
                scope.pop(SEND_KEY, None)
        elif self._errors is not None:
            scope.pop(SEND_KEY, None)
