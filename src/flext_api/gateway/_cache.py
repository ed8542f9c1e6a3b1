"""The shared HTTP cache of ``cache: true`` routes: RFC 9111 for a shared cache, streamed.

The decisions are the cache package's sans-IO RFC 9111 functions with
``HttpCachePolicy(shared=True)`` (``s-maxage``, ``private``, ``Authorization``,
``proxy-revalidate``, ``Vary``, ``Age``, heuristic freshness, RFC 5861
``stale-while-revalidate`` / ``stale-if-error``, invalidation by unsafe methods). This
module is the driver at the ASGI level, wrapped around the proxy exchange:

* a miss is proxied as usual and the response streams to the client chunk by chunk;
  when its head says it may be stored, the chunks are also copied into a buffer and
  stored at the end - unless the body passes ``max_body_bytes`` (the copy is dropped,
  the stream goes on) or it is an event stream (never copied);
* N concurrent identical misses make ONE upstream request: the first goes, the others
  wait for it and are answered from what it stored (a response found not storable
  releases them at once to go upstream themselves);
* a stale entry with a validator is revalidated with a conditional request; a 304
  freshens the entry and the client is answered from it - when its validators are the
  entry's (RFC 9111 §4.3.4); a 304 about another representation drops the entry and
  the request is sent once more without validators, as a miss;
* a stored entry answers the client's own ``If-None-Match`` / ``If-Modified-Since``
  with a 304.

The store is a :class:`~flext_api.cache.FlextApiCache` (memory or Redis); a store that
fails is logged and treated as a miss, never as an error of the request.

Entries are keyed by route and URL: two routes can send one URL to different clusters
(or paths, or behind different auth), and one route's stored response must never
answer another's request. Invalidation by an unsafe method and the admin purge drop a
URL's entries on every cached route.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import structlog
from starlette.types import Message, Receive, Scope, Send

from .._clock import Clock
from .._errors import FlextApiError
from .._models import Headers, HttpRequest, HttpResponse
from ..cache._codec import CorruptEntryError
from ..cache._facade import FlextApiCache
from ..cache._http_spec import (
    STALE_IF_ERROR_STATUSES,
    Forward,
    GatewayTimeout,
    HttpCachePolicy,
    Revalidate,
    ServeStaleAndRevalidate,
    UseStored,
    cache_key,
    current_age,
    freshen,
    identified_by_304,
    invalidation_targets,
    make_stored,
    not_storable_reason,
    on_request,
    request_cache_control,
    stale_on_error_allowed,
    storage_ttl,
)
from ..cache._http_store import StoredResponse, decode_variants, encode_variants
from ._cache_hot import HotMemo, Prepared, plain_request
from ._edge_config import SharedCacheConfig

__all__ = ["ASGIHandler", "CacheStats", "SharedCache"]

_log = structlog.get_logger("flext_api.gateway")

ASGIHandler = Callable[[Scope, Receive, Send], Awaitable[object]]

_CONDITIONAL = (b"if-none-match", b"if-modified-since", b"if-match", b"if-unmodified-since")
_KEYS_MAX = 4096
# The Redis keys of an entry: this, the cache's namespace, the route, the request's key.
_REDIS_PREFIX = "flext:cache:"
_NOT_IN_304 = frozenset({"content-length", "content-type", "content-encoding", "content-range"})


class CacheStats:
    """Counters per outcome: ``hit``, ``stale``, ``revalidated``, ``miss``, ``bypass``."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, outcome: str) -> None:
        """Count one request answered with ``outcome``."""
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    @property
    def hit_ratio(self) -> float:
        """Requests answered from the store over the requests the cache looked up."""
        counts = self.counts
        served = counts.get("hit", 0) + counts.get("stale", 0) + counts.get("revalidated", 0)
        total = served + counts.get("miss", 0)
        return served / total if total else 0.0


def _text_headers(pairs: list[tuple[bytes, bytes]]) -> Headers:
    return Headers.from_pairs([(n.decode("latin-1"), v.decode("latin-1")) for n, v in pairs])


def _etag_matches(header: str, etag: str | None) -> bool:
    if etag is None:
        return False
    if header.strip() == "*":
        return True
    weak = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == weak for tag in header.split(","))


class SharedCache:
    """The shared cache of one gateway; kept across reloads while its config is unchanged."""

    def __init__(self, config: SharedCacheConfig, *, redis_url: str | None, clock: Clock) -> None:
        self.config = config
        self.redis_url = redis_url
        self.clock = clock
        self.policy = HttpCachePolicy(
            shared=True,
            heuristic_fraction=config.heuristic_fraction,
            stale_if_error=config.stale_if_error,
            stale_while_revalidate=config.stale_while_revalidate,
            targeted=config.targeted,
            surrogate_device=config.surrogate_device,
        )
        device = config.surrogate_device
        # Announced to the upstream on every request the cache forwards (a list header:
        # a surrogate in front may have announced its own already).
        self._capability: tuple[bytes, bytes] | None = (
            (b"surrogate-capability", b'%s="Surrogate/1.0"' % device.encode())
            if device is not None
            else None
        )
        self.unreachable_policy = replace(
            self.policy, stale_if_error=max(config.stale_if_error, config.stale_if_unreachable)
        )
        if config.store == "redis":
            # The namespace is the store's prefix: a purge of everything (SCAN + UNLINK
            # under the prefix) drops this gateway's entries, not those of another
            # namespace nor an app's own flext:cache: keys in the same Redis.
            prefix = _REDIS_PREFIX + config.namespace
            self.store = FlextApiCache("redis", {"url": redis_url, "prefix": prefix}, clock=clock)
        else:
            self.store = FlextApiCache("memory", {"max_entries": config.max_entries}, clock=clock)
        self.stats = CacheStats()
        self.hot = HotMemo(config.max_entries) if config.store == "memory" else None
        self._leaders: dict[str, asyncio.Future[None]] = {}
        self._keys: dict[tuple[str, str], str] = {}
        #: The names of the ``cache: true`` routes (set per config): what a purge or an
        #: invalidation of a URL covers.
        self.routes: tuple[str, ...] = ()
        self._background: set[asyncio.Task[None]] = set()

    # -- keys and storage -------------------------------------------------------------------
    def url_of(self, scope: Scope) -> str:
        """The absolute URL of the request (what RFC 9111 keys on)."""
        host = next((v for n, v in scope["headers"] if n == b"host"), b"").decode("latin-1")
        raw = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = f"{scope.get('scheme', 'http')}://{host or 'gateway'}{raw.decode('latin-1')}"
        return url + ("?" + query.decode("latin-1") if query else "")

    def key_of(self, url: str, route: str) -> str:
        """The store key of ``url`` on ``route`` (GET and HEAD share it); memoized, bounded."""
        found = self._keys.get((route, url))
        if found is None:
            found = f"{route}:{cache_key('GET', url)}"
            if len(self._keys) >= _KEYS_MAX:
                self._keys.clear()
            self._keys[(route, url)] = found
        return found

    async def _load(self, key: str) -> list[StoredResponse]:
        try:
            data = await self.store.get(key)
        except FlextApiError as exc:
            _log.warning("gateway_cache.load_failed", key=key, error=str(exc))
            return []
        if not isinstance(data, bytes):
            return []
        try:
            variants = decode_variants(data)
        except CorruptEntryError as exc:
            _log.warning("gateway_cache.corrupt_record", key=key, reason=str(exc))
            return []
        if self.hot is not None:
            self.hot.put(key, variants, self.policy)
        return variants

    async def _save(self, key: str, stored: StoredResponse) -> None:
        if self.hot is not None:
            self.hot.drop(key)
        now = self.clock.time()
        others = [v for v in await self._load(key) if v.vary != stored.vary]
        variants = sorted([*others, stored], key=lambda v: v.response_time)[-8:]
        ttl = max(storage_ttl(v, now=now, policy=self.policy) for v in variants)
        if ttl <= 0:
            return
        try:
            await self.store.set(key, encode_variants(variants), ttl=ttl)
        except FlextApiError as exc:
            _log.warning("gateway_cache.store_failed", key=key, error=str(exc))
        if self.hot is not None:
            self.hot.drop(key)

    async def _drop(self, key: str, stored: StoredResponse) -> None:
        """Remove ``stored`` from ``key``'s variants; the others (and a newer copy of the
        same variant stored meanwhile) stay."""
        if self.hot is not None:
            self.hot.drop(key)
        variants = await self._load(key)
        kept = [v for v in variants if v != stored]
        if len(kept) == len(variants):
            return
        now = self.clock.time()
        ttl = max((storage_ttl(v, now=now, policy=self.policy) for v in kept), default=0.0)
        try:
            if ttl > 0:
                await self.store.set(key, encode_variants(kept), ttl=ttl)
            else:
                await self.store.delete(key)
        except FlextApiError as exc:
            _log.warning("gateway_cache.store_failed", key=key, error=str(exc))
        if self.hot is not None:
            self.hot.drop(key)

    async def purge(self, url: str | None = None) -> int:
        """Drop the entries of ``url`` on every cached route (every entry when None); how
        many were dropped (-1 for everything)."""
        if url is None:
            if self.hot is not None:
                self.hot.drop(None)
            await self.store.clear()
            return -1
        dropped = 0
        for route in self.routes:
            key = self.key_of(url, route)
            if self.hot is not None:
                self.hot.drop(key)
            dropped += int(await self.store.delete(key))
        return dropped

    async def _invalidate(self, method: str, url: str, status: int, headers: Headers) -> None:
        for target in invalidation_targets(method, url, status, headers):
            for route in self.routes:
                key = self.key_of(target, route)
                if self.hot is not None:
                    self.hot.drop(key)
                try:
                    await self.store.delete(key)
                except FlextApiError as exc:
                    _log.warning("gateway_cache.invalidate_failed", url=target, error=str(exc))

    # -- the filter --------------------------------------------------------------------------
    async def handle(
        self, scope: Scope, receive: Receive, send: Send, upstream: ASGIHandler, route: str
    ) -> str:
        """Answer ``scope`` (a request of ``route``) from the cache or through
        ``upstream``; returns the outcome."""
        method = scope["method"]
        url = self.url_of(scope)
        if method not in ("GET", "HEAD"):
            status_headers: list[Any] = []

            async def watch(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status_headers[:] = [message["status"], message.get("headers", [])]
                await send(message)

            await upstream(scope, receive, watch)
            if status_headers:
                status, raw = status_headers
                await self._invalidate(method, url, status, _text_headers(list(raw)))
            self.stats.add("bypass")
            return "bypass"
        key = self.key_of(url, route)
        fresh = self._fresh(scope, key)
        if fresh is not None:
            await self._send_prepared(scope, send, *fresh)
            self.stats.add("hit")
            return "hit"
        headers = _text_headers(list(scope["headers"]))
        if "range" in headers:
            await upstream(scope, receive, send)
            self.stats.add("bypass")
            return "bypass"
        outcome = await self._lookup_and_answer(scope, receive, send, upstream, key, url, headers)
        self.stats.add(outcome)
        return outcome

    def _fresh(self, scope: Scope, key: str) -> tuple[Prepared, float] | None:
        """The memoized entry of ``key`` and its age, when it answers ``scope`` as it is
        (see :mod:`._cache_hot`); None when the request takes the full RFC 9111 path."""
        hot = self.hot.get(key) if self.hot is not None else None
        if hot is None or not plain_request(scope):
            return None
        age = hot.age(self.clock.time())
        return (hot, age) if age < hot.lifetime and not hot.no_cache else None

    def fresh_hit(self, scope: Scope, route: str) -> tuple[str, Prepared, float] | None:
        """:meth:`_fresh` for a ``GET`` of ``route`` (no await: the memo is in process),
        with the entry's store key."""
        if self.hot is None:
            return None
        key = self.key_of(self.url_of(scope), route)
        fresh = self._fresh(scope, key)
        return None if fresh is None else (key, *fresh)

    def still_fresh(self, key: str, hot: Prepared) -> float | None:
        """The age of ``hot`` when the memo still holds it for ``key`` and it is still
        fresh (a hit of :meth:`fresh_hit` met again after an await); None otherwise."""
        if self.hot is None or self.hot.get(key) is not hot:
            return None
        age = hot.age(self.clock.time())
        return age if age < hot.lifetime else None

    @staticmethod
    def hit_headers(
        hot: Prepared, age: float, request_id: bytes | None
    ) -> list[tuple[bytes, bytes]]:
        """The header lines of an answer from ``hot`` at ``age``."""
        pairs = [*hot.headers, (b"age", b"%d" % int(age))]
        if request_id is not None:
            pairs.append((b"x-request-id", request_id))
        return pairs

    async def _lookup_and_answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        upstream: ASGIHandler,
        key: str,
        url: str,
        headers: Headers,
        *,
        collapse: bool = True,
    ) -> str:
        now = self.clock.time()
        decision = on_request(headers, await self._load(key), now=now, policy=self.policy)
        if isinstance(decision, UseStored):
            await self._answer(scope, send, decision.stored, now)
            return "stale" if decision.stale else "hit"
        if isinstance(decision, ServeStaleAndRevalidate):
            await self._answer(scope, send, decision.stored, now)
            self._revalidate_later(scope, upstream, key, url, decision)
            return "stale"
        if isinstance(decision, GatewayTimeout):
            await _send_simple(send, 504, b"only-if-cached: nothing usable is stored\n")
            return "miss"
        if isinstance(decision, Revalidate):
            return await self._fetch(
                scope, receive, send, upstream, key, url, decision.stored, decision.headers
            )
        assert isinstance(decision, Forward)
        no_cache = request_cache_control(headers).no_cache
        leader = self._leaders.get(key)
        if leader is not None and collapse and not no_cache:
            await asyncio.shield(leader)
            return await self._lookup_and_answer(
                scope, receive, send, upstream, key, url, headers, collapse=False
            )
        if not collapse or no_cache:
            return await self._fetch(scope, receive, send, upstream, key, url, decision.stale, ())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._leaders[key] = future
        try:
            return await self._fetch(
                scope, receive, send, upstream, key, url, decision.stale, (), future
            )
        finally:
            if self._leaders.get(key) is future:
                del self._leaders[key]
            if not future.done():
                future.set_result(None)

    async def _fetch(
        self,
        scope: Scope,
        receive: Receive,
        send: Send | None,
        upstream: ASGIHandler,
        key: str,
        url: str,
        stored: StoredResponse | None,
        conditional: tuple[tuple[str, str], ...],
        release: asyncio.Future[None] | None = None,
    ) -> str:
        """Send the request upstream, teeing a storable response into the store."""
        request_headers = list(scope["headers"])
        if conditional:
            request_headers = [(n, v) for n, v in request_headers if n not in _CONDITIONAL]
            request_headers += [(n.lower().encode(), v.encode("latin-1")) for n, v in conditional]
        if self._capability is not None:
            request_headers.append(self._capability)
        upstream_scope = {**scope, "headers": request_headers}
        text_headers = _text_headers(list(scope["headers"]))
        request = HttpRequest("GET", url, headers=text_headers)
        request_time = self.clock.time()
        state: dict[str, Any] = {"mode": "pass", "chunks": [], "size": 0}
        max_bytes = self.config.max_body_bytes

        def release_waiters() -> None:
            if release is not None and not release.done():
                release.set_result(None)

        async def tee(message: Message) -> None:
            if message["type"] == "http.response.start":
                status: int = message["status"]
                pairs = list(message.get("headers", []))
                response_headers = _text_headers(pairs)
                if stored is not None and conditional and status == 304:
                    state["mode"] = "304"
                    state["headers"] = response_headers
                    return
                if (
                    stored is not None
                    and status in STALE_IF_ERROR_STATUSES
                    and stale_on_error_allowed(
                        stored,
                        text_headers,
                        now=self.clock.time(),
                        # No upstream answered at all: the "disconnected" case.
                        policy=self.unreachable_policy
                        if "x-gateway-reason" in response_headers
                        else self.policy,
                    )
                ):
                    state["mode"] = "stale"
                    return
                head = HttpResponse(status, headers=response_headers, content=b"", request=request)
                reason = not_storable_reason(request, head, policy=self.policy)
                event_stream = response_headers.get("content-type", "").startswith(
                    "text/event-stream"
                )
                if reason is None and not event_stream and scope["method"] == "GET":
                    state.update(mode="tee", status=status, headers=response_headers)
                else:
                    release_waiters()
                if send is not None:
                    if "surrogate-control" in response_headers:
                        pairs = [(n, v) for n, v in pairs if n != b"surrogate-control"]
                        message = {**message, "headers": pairs}
                    await send(message)
                return
            mode = state["mode"]
            if mode in ("304", "stale"):
                return
            if mode == "tee":
                chunk = message.get("body", b"")
                state["size"] += len(chunk)
                if state["size"] > max_bytes:
                    state.update(mode="pass", chunks=[])
                    release_waiters()
                else:
                    state["chunks"].append(chunk)
            if mode == "tee" and state["mode"] == "tee" and not message.get("more_body", False):
                # Stored before the last bytes leave: once a client has the whole
                # response, every gateway sharing the store answers from it.
                await self._store_teed(key, request, state, request_time)
            if send is not None:
                await send(message)

        try:
            await upstream(upstream_scope, receive, tee)
        finally:
            release_waiters()
        mode = state["mode"]
        if mode == "304" and stored is not None:
            if not identified_by_304(stored, state["headers"]):
                return await self._refetch(scope, receive, send, upstream, key, url, stored)
            now = self.clock.time()
            fresh = freshen(stored, state["headers"], request_time=request_time, response_time=now)
            await self._save(key, fresh)
            if send is not None:
                await self._answer(scope, send, fresh, now)
            return "revalidated"
        if mode == "stale" and stored is not None:
            if send is not None:
                await self._answer(scope, send, stored, self.clock.time())
            return "stale"
        return "miss"

    async def _refetch(
        self,
        scope: Scope,
        receive: Receive,
        send: Send | None,
        upstream: ASGIHandler,
        key: str,
        url: str,
        stored: StoredResponse,
    ) -> str:
        """After a 304 about another representation than ``stored`` (its validators are
        not the entry's): drop the entry and send the request once more, as a miss.

        The 304 must not freshen the entry (RFC 9111 §4.3.4), and the client, who sent
        no validators of ours, needs a full response. A request body went with the first
        request; a GET's body has no meaning (RFC 9110 §9.3.1), so the second goes without
        one rather than wait on ``receive`` for bytes already read.
        """
        _log.info("gateway_cache.304_not_for_stored", key=key)
        await self._drop(key, stored)
        headers = [
            (n, v)
            for n, v in scope["headers"]
            if n not in (b"content-length", b"transfer-encoding")
        ]
        again = {**scope, "headers": headers}
        return await self._fetch(again, receive, send, upstream, key, url, None, ())

    async def _store_teed(
        self, key: str, request: HttpRequest, state: dict[str, Any], request_time: float
    ) -> None:
        response = HttpResponse(
            state["status"],
            headers=state["headers"],
            content=b"".join(state["chunks"]),
            request=request,
        )
        stored = make_stored(
            request, response, request_time=request_time, response_time=self.clock.time()
        )
        await self._save(key, stored)

    def _revalidate_later(
        self,
        scope: Scope,
        upstream: ASGIHandler,
        key: str,
        url: str,
        decision: ServeStaleAndRevalidate,
    ) -> None:
        if key in self._leaders:
            return  # a fetch of this URL is already under way
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._leaders[key] = future

        async def run() -> None:
            try:
                await self._fetch(
                    {**scope, "method": "GET"},
                    _no_client(),
                    None,
                    upstream,
                    key,
                    url,
                    decision.stored,
                    decision.headers,
                    future,
                )
            finally:
                if self._leaders.get(key) is future:
                    del self._leaders[key]

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- answers -------------------------------------------------------------------------------
    async def _answer(self, scope: Scope, send: Send, stored: StoredResponse, now: float) -> None:
        headers = stored.header_map()
        request = _text_headers(list(scope["headers"]))
        request_id = scope.get("flext.request_id")
        age = str(int(current_age(stored, now)))
        pairs = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in headers.multi_items()
            if k.lower() not in ("age", "content-length", "x-request-id", "surrogate-control")
        ]
        pairs.append((b"age", age.encode()))
        if isinstance(request_id, str):
            pairs.append((b"x-request-id", request_id.encode()))
        if stored.status == 200 and _not_modified(request, headers):
            pairs = [(n, v) for n, v in pairs if n.decode() not in _NOT_IN_304]
            await send({"type": "http.response.start", "status": 304, "headers": pairs})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b"" if scope["method"] == "HEAD" else stored.body
        pairs.append((b"content-length", str(len(stored.body)).encode()))
        await send({"type": "http.response.start", "status": stored.status, "headers": pairs})
        await send({"type": "http.response.body", "body": body})

    async def _send_prepared(self, scope: Scope, send: Send, hot: Prepared, age: float) -> None:
        request_id = scope.get("flext.request_id")
        pairs = self.hit_headers(
            hot, age, request_id.encode() if isinstance(request_id, str) else None
        )
        body = b"" if scope["method"] == "HEAD" else hot.stored.body
        await send({"type": "http.response.start", "status": hot.stored.status, "headers": pairs})
        await send({"type": "http.response.body", "body": body})

    async def aclose(self) -> None:
        """Cancel background revalidations and close the store."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.store.close()


def _not_modified(request: Headers, stored: Headers) -> bool:
    """The client's own validators match the stored response (RFC 9110 §13.2.2)."""
    if "if-none-match" in request:
        return _etag_matches(request["if-none-match"], stored.get("etag"))
    from ..cache._http_directives import parse_http_date

    since = parse_http_date(request.get("if-modified-since"))
    modified = parse_http_date(stored.get("last-modified"))
    return since is not None and modified is not None and modified <= since


def _no_client() -> Receive:
    """The ``receive`` of a background revalidation: an empty body, then nothing.

    No client waits on it, so none can disconnect: after the body it waits until the
    exchange cancels it (the proxy watches ``receive`` for a disconnect while it streams
    a long body). Answering the body again at once made that watch spin without
    yielding, and the gateway's event loop hung on a chunked or large refreshed body.
    """
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.get_running_loop().create_future()  # until cancelled
        raise AssertionError("unreachable")  # pragma: no cover

    return receive


async def _send_simple(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
