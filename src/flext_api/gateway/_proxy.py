"""The proxy exchange: one HTTP request streamed to an upstream and its response streamed back.

Neither body is ever held whole: the request body is pulled from ASGI ``receive`` as the
upstream connection asks for it, the response body is sent on as each chunk arrives (an
SSE event reaches the client as soon as the upstream wrote it). Reads of a body are
bounded by the *idle* timeout (silence between chunks), never by a total.

Retries (see :class:`~flext_api.gateway.RouteRetry`) happen only before the response head
was sent to the client, and only when the request body can be sent again: a request
whose body was not yet read at all (a connect failure, or no body), and for any other
failure only idempotent methods or requests carrying an ``Idempotency-Key``. So a POST
whose bytes reached an upstream is never replayed.

A failure before the response head is a problem+json 502/503/504 with a typed
:class:`Reason`; a failure after it cuts the client's stream (the connection is closed
without the final chunk), so a truncated body is never passed off as a complete 200.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from .._config import IDEMPOTENT_METHODS, TimeoutConfig
from .._errors import NOT_SENT, ErrorCode, FlextApiError
from .._models import Headers, HttpRequest, HttpResponse
from ..transports._base import INVALID_MESSAGE, INVALID_STATUS
from ._cluster import Cluster
from ._config import GatewayTimeouts, RouteConfig, RouteRetry
from ._headers import TrustedProxies, apply_rules, forward_pairs, response_pairs, rule_problem
from ._reasons import Reason, reason_for_code

__all__ = ["Exchange", "ExchangeResult", "UpstreamCut", "compiled_route", "upstream_path"]

_NO_BODY_STATUS = frozenset({204, 304})
_DROP_ID = frozenset({b"x-request-id"})
_DROP_HOST_AND_ID = frozenset({b"host", b"x-request-id"})

# Transport failures that say the upstream's answer was not HTTP (see _base).
_NOT_HTTP = frozenset({INVALID_STATUS, INVALID_MESSAGE})


class UpstreamCut(Exception):
    """The upstream response broke after its head was sent: the client's stream is cut."""


class ClientGone(Exception):
    """The client disconnected while its request body was being read."""


class BodyTooLarge(Exception):
    """The client's request body passed the route's ``max_request_body``."""


@dataclass(slots=True)
class ExchangeResult:
    """What the access log and metrics need to know about one exchange."""

    status: int = 0
    reason: Reason | None = None
    instance: str | None = None
    attempts: int = 0
    ttfb: float | None = None
    upstream_time: float | None = None
    bytes_out: int = 0


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    """A route with its regexes compiled and header rules in ASGI byte form."""

    config: RouteConfig
    timeouts: GatewayTimeouts
    retry: RouteRetry
    rewrite: re.Pattern[str] | None
    request_add: tuple[tuple[bytes, bytes], ...]
    request_remove: frozenset[bytes]
    response_add: tuple[tuple[bytes, bytes], ...]
    response_remove: frozenset[bytes]
    #: Worked out once per route for every request: one attempt's transport timeouts,
    #: the client's headers never forwarded (``Host`` unless kept, ``X-Request-ID``),
    #: the ``Host`` sent instead, the response names a rule removes or replaces, and
    #: whether the path sent upstream differs from the client's (strip or rewrite).
    per_attempt: TimeoutConfig
    request_drop: frozenset[bytes]
    host_rewrite: bytes | None
    response_drop: frozenset[bytes]
    rewrites_path: bool
    #: Plain copies of what every request reads (a pydantic model's attribute costs a
    #: ``__getattr__``-hooked lookup each time): names, the head and total deadlines,
    #: the retried statuses, the gateway-level auth and rate-limit switches.
    name: str
    cluster: str
    per_try: float
    total: float
    retry_statuses: frozenset[int]
    auth_gate: bool
    rate_limited: bool
    max_body: int | None


def compiled_route(route: RouteConfig, cluster: Cluster) -> CompiledRoute:
    """Compile ``route``; its overrides fall back on the cluster's settings.

    ValueError for a header rule the proxy cannot honour (:func:`rule_problem`): a config
    built in Python skips the loader's check of them.
    """
    rules = route.headers
    for name, value in (*rules.request_add.items(), *rules.response_add.items()):
        problem = rule_problem(name, value)
        if problem is not None:
            raise ValueError(f"route {route.name!r}: {problem}")
    timeouts = route.timeouts or cluster.config.timeouts
    response_add = tuple((k.lower().encode(), v.encode()) for k, v in rules.response_add.items())
    response_remove = frozenset(k.lower().encode() for k in rules.response_remove)
    keep_host = route.host_rewrite is None and route.preserve_host
    retry = route.retry or cluster.config.retry
    return CompiledRoute(
        config=route,
        timeouts=timeouts,
        retry=retry,
        rewrite=re.compile(route.rewrite.regex) if route.rewrite is not None else None,
        request_add=tuple((k.lower().encode(), v.encode()) for k, v in rules.request_add.items()),
        request_remove=frozenset(k.lower().encode() for k in rules.request_remove),
        response_add=response_add,
        response_remove=response_remove,
        per_attempt=_attempt_timeout(timeouts),
        request_drop=_DROP_ID if keep_host else _DROP_HOST_AND_ID,
        host_rewrite=route.host_rewrite.encode() if route.host_rewrite is not None else None,
        response_drop=response_remove | {name for name, _ in response_add},
        rewrites_path=route.rewrite is not None
        or (route.strip_prefix and route.match.path_prefix is not None),
        name=route.name,
        cluster=route.cluster,
        per_try=timeouts.per_try,
        total=timeouts.total,
        retry_statuses=frozenset(retry.statuses),
        auth_gate=route.auth is True,
        rate_limited=route.rate_limit is not None,
        max_body=route.max_request_body
        if route.max_request_body is not None
        else cluster.config.max_request_body,
    )


def upstream_path(route: CompiledRoute, raw_path: str) -> str:
    """The path sent upstream: prefix stripped and/or regex rewritten."""
    path = raw_path
    config = route.config
    if config.strip_prefix and config.match.path_prefix is not None:
        prefix = config.match.path_prefix.rstrip("/")
        end = len(prefix)
        if path.startswith(prefix) and path[end : end + 1] in ("/", ""):
            path = path[end:]  # the usual case: the prefix written as configured
        else:
            path = _strip_escaped(path, prefix)
        if not path.startswith("/"):
            path = "/" + path
    if route.rewrite is not None and config.rewrite is not None:
        path = route.rewrite.sub(config.rewrite.replacement, path)
        if not path.startswith("/"):
            # Appended to the instance's URL, "@host/x" or ":1/x" would name another
            # authority (one the client chose): the result is always a path.
            path = "/" + path
    return path


def _strip_escaped(raw: str, prefix: str) -> str:
    """``raw`` (a forwarded path, percent-escapes kept) without ``prefix`` when its
    decoded form starts with it, as the router matched it: ``/%70ub/x`` loses ``/pub``
    like ``/pub/x`` does, and an escaped slash at the boundary (``/pub%2Fx``) becomes
    the ``/`` the router took it for. A segment's ``;`` parameters, which the router
    matched without (``/pub;v=1/x`` is ``/pub/x`` to it), go with the prefix's segments.
    ``raw`` unchanged when it does not decode so."""
    want = prefix.encode()
    at = 0
    for byte in want:
        if byte == 0x2F:  # "/": the segment before it ended, parameters and all
            at = _past_params(raw, at)
        escape = raw[at + 1 : at + 3] if raw[at : at + 1] == "%" else ""
        if len(escape) == 2 and all(c in _HEX for c in escape):
            got, at = int(escape, 16), at + 3
        elif at < len(raw):
            got, at = ord(raw[at]), at + 1
        else:
            return raw
        if got != byte:
            return raw
    rest = raw[_past_params(raw, at) :]
    if rest[:3] in ("%2F", "%2f"):
        return "/" + rest[3:]
    return rest


def _past_params(raw: str, at: int) -> int:
    """Where the ``;`` parameters (``;`` or ``%3B``, as the router decoded it) starting
    at ``at`` in ``raw`` end: at the next ``/`` or ``%2F``, or the end; ``at`` if none."""
    if raw[at : at + 1] != ";" and raw[at : at + 3] not in ("%3B", "%3b"):
        return at
    ends = [end for end in (raw.find("/", at), raw.lower().find("%2f", at)) if end != -1]
    return min(ends, default=len(raw))


_HEX = frozenset("0123456789abcdefABCDEF")


class _Body:
    """The client's request body, pulled from ``receive`` as the upstream takes it, and
    cut with :class:`BodyTooLarge` past ``limit`` bytes."""

    __slots__ = ("consumed", "limit", "receive", "started")

    def __init__(self, receive: Receive, limit: int | None) -> None:
        self.receive = receive
        self.limit = limit
        self.started = False
        self.consumed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        limit = self.limit
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone("client disconnected while sending the body")
            chunk = message.get("body", b"")
            if chunk:
                if limit is not None:
                    size += len(chunk)
                    if size > limit:
                        raise BodyTooLarge(f"request body over {limit} bytes")
                yield chunk
            if not message.get("more_body", False):
                self.consumed = True
                return


_LONG_BODY = 1 << 20


def _long(response: HttpResponse) -> bool:
    """A body worth watching the client for: unknown length (streams, SSE) or over 1 MiB."""
    length = response.headers.get("content-length")
    return length is None or not length.isdigit() or int(length) > _LONG_BODY


async def _until_disconnect(pump: Any, receive: Receive) -> bool:
    """Run ``pump``; False when the client disconnected first (the pump is cancelled)."""
    pumping = asyncio.ensure_future(pump)

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    gone = False
    try:
        done, _ = await asyncio.wait((pumping, watcher), return_when=asyncio.FIRST_COMPLETED)
        gone = pumping not in done
    finally:
        for task in (pumping, watcher):
            task.cancel()
        await asyncio.gather(pumping, watcher, return_exceptions=True)
    if gone:
        return False
    pumping.result()  # re-raises UpstreamCut
    return True


@functools.lru_cache(maxsize=64)
def _attempt_timeout(timeouts: GatewayTimeouts) -> TimeoutConfig:
    """One attempt's transport timeouts (a model built once per route's settings)."""
    return TimeoutConfig(
        connect=timeouts.connect, read=timeouts.idle, write=timeouts.idle, pool=None
    )


_HOPS: dict[tuple[str, bytes], bytes] = {}


def _hop(http_version: str, via: bytes) -> bytes:
    """Our ``Via`` element for a request of ``http_version`` (``b"1.1 gateway"``)."""
    hop = _HOPS.get((http_version, via))
    if hop is None:
        if len(_HOPS) >= 64:  # versions and configured names: a handful in practice
            _HOPS.clear()
        hop = _HOPS[(http_version, via)] = http_version.encode() + b" " + via
    return hop


def _declared(headers: list[tuple[bytes, bytes]], limit: int) -> bool:
    """True when the request's ``Content-Length`` announces more than ``limit`` bytes."""
    for name, value in headers:
        if name == b"content-length":
            value = value.strip()
            return value.isdigit() and (len(value) > 18 or int(value) > limit)
    return False


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


class Exchange:
    """Runs the exchange of one request on one route (a fresh object per request)."""

    __slots__ = ("cluster", "extra_headers", "request_id", "result", "route", "trusted", "via")

    def __init__(
        self,
        route: CompiledRoute,
        cluster: Cluster,
        trusted: TrustedProxies,
        via: bytes,
        request_id: bytes,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.extra_headers = extra_headers or []
        self.route = route
        self.cluster = cluster
        self.trusted = trusted
        self.via = via
        self.request_id = request_id
        self.result = ExchangeResult()

    def _request_headers(self, scope: Scope, hop: bytes) -> list[tuple[bytes, bytes]]:
        raw: list[tuple[bytes, bytes]] = scope["headers"]
        host = next((v for n, v in raw if n == b"host"), None)
        client = scope.get("client")
        route = self.route
        pairs = forward_pairs(
            raw,
            client=client[0] if client else None,
            scheme=scope.get("scheme", "http"),
            host=host,
            trusted=self.trusted,
            hop=hop,
            drop=route.request_drop,
        )
        if route.host_rewrite is not None:
            pairs.append((b"host", route.host_rewrite))
        pairs.append((b"x-request-id", self.request_id))
        return apply_rules(pairs, route.request_add, route.request_remove)

    async def run(self, scope: Scope, receive: Receive, send: Send) -> ExchangeResult:
        """Proxy the request; answer with a problem document if no upstream answered."""
        method: str = scope["method"]
        hop = _hop(scope.get("http_version", "1.1"), self.via)
        headers = self._request_headers(scope, hop)
        has_body = _has_body(scope["headers"])
        route = self.route
        if has_body and route.max_body is not None and _declared(scope["headers"], route.max_body):
            await self._fail(scope, send, Reason.BODY_TOO_LARGE)
            return self.result
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if raw_path[:1] != b"/":
            # The asterisk form (OPTIONS *, RFC 9112 section 3.2.4): no URL of an instance
            # can carry it, and a request that cannot be sent must not count against one.
            await self._fail(scope, send, Reason.AMBIGUOUS_PATH)
            return self.result
        body = _Body(receive, route.max_body)
        path = raw_path.decode("latin-1")
        if route.rewrites_path:
            path = upstream_path(route, path)
        query = scope.get("query_string", b"").decode("latin-1")
        target = path + ("?" + query if query else "")
        # A blank Idempotency-Key is none: nothing for the upstream to deduplicate on.
        idempotent = method in IDEMPOTENT_METHODS or any(
            n == b"idempotency-key" and v.strip() for n, v in headers
        )
        retry = route.retry
        cluster = self.cluster
        clock = cluster.clock
        start = clock.monotonic()
        deadline = start + route.total
        per_attempt = route.per_attempt
        # A transport that takes the pairs as they are (H1Transport) skips the round
        # trip through str; others get them decoded.
        raw_ok = getattr(cluster.transport, "raw_headers", False)
        str_headers = Headers.from_pairs(
            [] if raw_ok else [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
        )
        tried: set[str] = set()
        result = self.result
        reason: Reason = Reason.NO_HEALTHY_INSTANCE
        cluster.budget.record_request(cluster.name, start)
        while True:
            picked = cluster.pick(tried)
            if isinstance(picked, Reason):
                reason = picked
                break
            ident = picked.instance.id
            tried.add(ident)
            result.attempts += 1
            result.instance = ident
            attempt_start = clock.monotonic()
            # The attempt's time to a response head (per_try, within the total) is the
            # request's deadline: the transport's one shared timer enforces it, where an
            # asyncio.timeout would arm and cancel a loop timer per request.
            request = HttpRequest(
                method,
                picked.url + target,
                headers=str_headers,
                stream=body.chunks() if has_body else None,
                timeout=per_attempt,
                deadline=min(deadline, attempt_start + route.per_try),
                extensions={"raw_headers": headers} if raw_ok else None,
            )
            in_flight = cluster.in_flight
            in_flight[ident] = in_flight.get(ident, 0) + 1
            response: HttpResponse | None = None
            code: ErrorCode | None = None
            try:
                response = await cluster.transport.send(request, stream=True)
            except asyncio.CancelledError:
                # The client left (see Gateway._http) or the gateway stops: the attempt
                # says nothing of the instance, and its breaker permit (a half-open
                # breaker's only probe) and its balancer count are given back.
                in_flight[ident] -= 1
                cluster.release(picked)
                raise
            except FlextApiError as exc:
                # The body's own error, chained by every transport (a client gone or
                # over the route's bound): the client's doing, not the instance's.
                client_side = exc.__cause__ if body.started else None
                if isinstance(client_side, BodyTooLarge):
                    # The client's fault, not the instance's: its connection is dropped.
                    in_flight[ident] -= 1
                    cluster.release(picked)
                    await self._fail(scope, send, Reason.BODY_TOO_LARGE)
                    return result
                if isinstance(client_side, ClientGone):
                    in_flight[ident] -= 1
                    cluster.release(picked)
                    result.reason = Reason.CLIENT_DISCONNECT
                    result.status = Reason.CLIENT_DISCONNECT.status
                    return result
                reason, code = reason_for_code(exc.code), exc.code
                if exc.details.get("reason") == NOT_SENT:
                    # The route's deadline passed before this attempt sent anything:
                    # nothing to say of the instance (its breaker permit given back).
                    in_flight[ident] -= 1
                    cluster.release(picked)
                    break
                if exc.details.get("reason") in _NOT_HTTP:
                    # RFC 9110 section 15: the transports refuse a status outside 100-599,
                    # and an answer their parser cannot read; never relayed, they count as
                    # the instance's failure (not as a connection it closed).
                    reason = Reason.INVALID_RESPONSE
            else:
                if response.status_code < 200:
                    # The transports pass on no interim answer but a 101, and this request
                    # asked for no upgrade (Upgrade is hop-by-hop, never forwarded): the
                    # upstream switched protocols unasked, so nothing it sends is HTTP.
                    await response.aclose()
                    response, reason = None, Reason.INVALID_RESPONSE
                    code = ErrorCode.PROTOCOL_ERROR
            if response is None:
                in_flight[ident] -= 1
                if reason is Reason.OVERFLOW:
                    cluster.release(picked)
                else:
                    duration = clock.monotonic() - attempt_start
                    cluster.report(picked, status=None, error=code, duration=duration)
                if self._may_retry(reason, body, idempotent, retry, tried_count=result.attempts):
                    continue
                break
            elapsed = clock.monotonic() - attempt_start
            cluster.report(picked, status=response.status_code, error=None, duration=elapsed)
            if (
                response.status_code in route.retry_statuses
                and idempotent
                and not body.started
                and self._may_retry(None, body, idempotent, retry, tried_count=result.attempts)
            ):
                in_flight[ident] -= 1
                await response.aclose()
                continue
            try:
                result.ttfb = elapsed
                watch = receive if not has_body or body.consumed else None
                await self._relay(response, hop, send, method, watch)
            finally:
                in_flight[ident] -= 1
                result.upstream_time = clock.monotonic() - attempt_start
            return result
        await self._fail(scope, send, reason)
        return result

    def _may_retry(
        self,
        reason: Reason | None,
        body: _Body,
        idempotent: bool,
        retry: RouteRetry,
        *,
        tried_count: int,
    ) -> bool:
        if tried_count > retry.retries:
            return False
        if reason in (Reason.BREAKER_OPEN, Reason.NO_HEALTHY_INSTANCE, Reason.OVERFLOW):
            return False
        # A connect failure sent nothing: safe for any method whose body was not read.
        safe = not body.started and (reason is Reason.CONNECT_FAILURE or idempotent)
        if not safe:
            return False
        cluster = self.cluster
        return cluster.budget.try_retry(cluster.name, cluster.clock.monotonic())

    async def _relay(
        self,
        response: HttpResponse,
        hop: bytes,
        send: Send,
        method: str,
        receive: Receive | None,
    ) -> None:
        """Send the response on; ``receive`` (request body done) watches for a gone client."""
        result = self.result
        result.status = response.status_code
        raw = response.extensions.get("raw_headers")
        pairs = response_pairs(
            raw
            if raw is not None
            else [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.raw()],
            hop=hop,
            request_id=self.request_id,
        )
        route = self.route
        if route.response_drop:
            pairs = [p for p in pairs if p[0] not in route.response_drop]
            pairs.extend(route.response_add)
        if self.extra_headers:
            pairs.extend(self.extra_headers)
        if response.status_code in _NO_BODY_STATUS:
            # A 204 has no Content-Length (RFC 9110 §8.6) and a 304's is the length of a
            # body it does not carry; the listener (httptools) would wait for that body.
            pairs = [p for p in pairs if p[0] != b"content-length"]
            no_body = True
        else:
            no_body = method == "HEAD"  # the listener sends no body, whatever the length
        try:
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": pairs}
            )
            if not no_body and response.is_stream_consumed:
                # The whole body came with the head: one message, no stream to watch.
                body = response.content
                result.bytes_out += len(body)
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            if not no_body:
                pump = self._pump(response, send)
                if receive is not None and _long(response):
                    # A stream (SSE, a large download) to a client that went away must stop
                    # reading the upstream: the server signals it only through receive().
                    if not await _until_disconnect(pump, receive):
                        result.reason = Reason.CLIENT_DISCONNECT
                        return
                else:
                    await pump
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            result.reason = Reason.CLIENT_DISCONNECT
        finally:
            await response.aclose()

    async def _pump(self, response: HttpResponse, send: Send) -> None:
        result = self.result
        try:
            async for chunk in response.aiter_bytes():
                result.bytes_out += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except FlextApiError as exc:
            result.reason = Reason.UPSTREAM_CUT
            raise UpstreamCut(exc.message) from exc

    async def _fail(self, scope: Scope, send: Send, reason: Reason) -> None:
        self.result.reason = reason
        self.result.status = reason.status
        await send_gateway_problem(scope, send, reason, self.request_id)


async def send_gateway_problem(
    scope: Scope,
    send: Send,
    reason: Reason,
    request_id: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    detail: str | None = None,
) -> None:
    """Answer with the problem document of ``reason`` (status, header and body);
    ``detail`` replaces the reason's summary in the body's ``detail``."""
    from ..server._problem import send_problem

    scope_with_id: dict[str, Any] = dict(scope)
    scope_with_id["flext.request_id"] = request_id.decode("latin-1")
    await send_problem(
        scope_with_id,
        send,
        reason.status,
        title=reason.summary,
        detail=detail if detail is not None else reason.summary + ".",
        headers=[
            (b"x-gateway-reason", reason.value.encode()),
            (b"x-request-id", request_id),
            *([(b"connection", b"close")] if reason.status in (400, 431) else []),
            *(headers or []),
        ],
        extensions={"reason": reason.value},
    )
