"""``CachePlugin``: the thin async driver of the RFC 9111 decisions in :mod:`._http_spec`.

It loads the stored variants of a URL from a :class:`FlextApiCache`, asks
:func:`~._http_spec.on_request` what to do, and does it: answer from the cache, send a
conditional request and freshen on 304, forward a miss and store the answer, or serve
stale content when the downstream call fails (RFC 5861 ``stale-if-error``; also for
``CIRCUIT_OPEN``, ``RETRIES_EXHAUSTED`` and transport errors). A 304 whose validators
do not identify the stored response (RFC 9111 §4.3.4) freshens nothing: the entry is
dropped and the request is sent once more, unconditionally. Unsafe methods
(POST/PUT/PATCH/DELETE) that succeed invalidate the URL they targeted (and a same-origin
``Location``/``Content-Location``) for every principal, not only the one that sent them.

Every response of a GET or HEAD the cache looked up carries ``response.cache_status``:
``"hit"``, ``"revalidated"`` (a 304 confirmed the stored response) or ``"stale"`` for
answers from the cache (``response.from_cache = True``, with an ``Age`` header), and
``"miss"`` for an answer of the downstream call - a miss, a revalidation answered with
a full response, or the ``only-if-cached`` 504 (made here, so ``from_cache`` is True).
Requests the cache does not look up (other methods, and the ones below that go straight
through) keep ``cache_status = None``. A stored 4xx/5xx
answers as the transport would answer the *current* request: an ``HTTP_STATUS`` failure
with the response attached when its ``fail_on_http_error`` (or the client's) is on, a
success otherwise - whatever the request that stored it asked for.

Only GET and HEAD are cached. These go straight through, neither served nor stored:
streamed calls (``client.stream(...)``, ``extensions["stream"]``), requests with
``extensions={"cache": False}``, and requests carrying their own validators or a
``Range`` (``If-None-Match``, ``If-Modified-Since``, ``If-Match``,
``If-Unmodified-Since``, ``If-Range``, ``Range``): the caller does its own caching.
In the default private mode, requests with different ``Authorization`` values have
entries of their own (one client may speak for several principals); these are sealed by
a guard record per method and URL (see :mod:`._http_store`), so a lookup is one backend
read (``get_many`` of record and guard) and an invalidation one delete for them all.
A cache backend that fails (Redis down) is logged and treated as a miss; it never fails
the request. One that is lost (a timeout, a refused or failed connection) is then left
alone for ``backend_cooldown`` seconds (5 by default): a hung Redis cost every cacheable
request up to three backend timeouts (load, re-load, store); requests go to the origin
at once meanwhile, and the backend is tried again after it.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import structlog

from .._clock import Clock
from .._config import CacheConfig, ClientConfig
from .._errors import ConfigError, ErrorCode, FlextApiError
from .._models import Headers, HttpRequest, HttpResponse
from .._numbers import is_real
from .._result import FlextResult
from ..client._plugin import FlextApiPlugin
from ._codec import CorruptEntryError
from ._facade import FlextApiCache
from ._http_directives import MAX_DELTA_SECONDS
from ._http_spec import (
    CACHEABLE_METHODS,
    Forward,
    GatewayTimeout,
    HttpCachePolicy,
    Revalidate,
    ServeStaleAndRevalidate,
    UseStored,
    cache_key,
    contradicted_by_head,
    current_age,
    freshen,
    identified_by_304,
    invalidation_targets,
    make_stored,
    not_storable_reason,
    on_request,
    stale_on_error_allowed,
    storage_ttl,
    triggers_stale_if_error,
)
from ._http_store import (
    GUARD_TTL,
    Slot,
    StoredResponse,
    decode_variants,
    encode_variants,
    new_token,
    read_token,
    seal,
    unseal,
)

if TYPE_CHECKING:
    from ..client._plugin import CallNext

__all__ = ["CachePlugin", "cache_stage"]

_log = structlog.get_logger("flext_api.cache")

#: Bytes of stored responses the default memory store holds (oldest pushed out first).
MEMORY_MAX_BYTES = 64 << 20

_BYPASS_HEADERS = (
    "range",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
)


class CachePlugin(FlextApiPlugin):
    """RFC 9111 HTTP cache for the client pipeline (private; ``shared=True`` for gateways).

    ::

        async with FlextApiClient(base_url=url, plugins=[CachePlugin()]) as client:
            r = await client.get("/items")       # r.value.from_cache on the second call

    Args:
        cache: where responses are stored (default: a memory :class:`FlextApiCache` of
            ``CacheConfig().max_entries`` URLs and :data:`MEMORY_MAX_BYTES`, 64 MiB).
            Pass a Redis or filesystem one to share or persist; the plugin never closes
            a cache it was given.
        shared: shared-cache rules (``s-maxage``, no ``private``, Authorization rules).
        stale_if_error / stale_while_revalidate: default windows in seconds when the
            response does not set its own (0: only when it does).
        heuristic_fraction / heuristic_max / keep / max_variants: see :class:`HttpCachePolicy`.
        clock: wall-clock source for ages (``FakeClock`` in tests).
        namespace: key prefix inside ``cache``.
        backend_cooldown: seconds the backend is left alone after it was lost (a
            timeout or a connection failure; 0: try it on every request).
    """

    name = "cache"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def __init__(
        self,
        cache: FlextApiCache | None = None,
        *,
        shared: bool = False,
        stale_if_error: float = 0.0,
        stale_while_revalidate: float = 0.0,
        heuristic_fraction: float = 0.1,
        heuristic_max: float = 86_400.0,
        keep: float = 86_400.0,
        max_variants: int = 8,
        clock: Clock | None = None,
        namespace: str = "http:",
        backend_cooldown: float = 5.0,
    ) -> None:
        if not is_real(backend_cooldown):
            raise TypeError(
                f"backend_cooldown must be a number of seconds, got {backend_cooldown!r}"
            )
        if not 0 <= backend_cooldown < math.inf:  # also refuses NaN
            raise ValueError(f"backend_cooldown must be >= 0 and finite, got {backend_cooldown}")
        self.backend_cooldown = float(backend_cooldown)
        self._backend_down_until = -math.inf  # on the clock's monotonic time
        self.policy = HttpCachePolicy(
            shared=shared,
            heuristic_fraction=heuristic_fraction,
            heuristic_max=heuristic_max,
            stale_if_error=stale_if_error,
            stale_while_revalidate=stale_while_revalidate,
            keep=keep,
            max_variants=max_variants,
        )
        self._owns_cache = cache is None
        self.cache = (
            cache
            if cache is not None
            else FlextApiCache(
                "memory",
                {"max_entries": CacheConfig().max_entries, "max_bytes": MEMORY_MAX_BYTES},
                clock=clock,
            )
        )
        self._init_clock(clock)
        # The client's fail_on_http_error (use_fail_on_http_error); True, the library's
        # default, for a plugin driven without a client.
        self._fail_on_http_error = True
        self._namespace = namespace
        self._background: set[asyncio.Task[None]] = set()
        self._revalidating: set[str] = set()

    @classmethod
    def from_config(cls, config: CacheConfig, *, clock: Clock | None = None) -> CachePlugin:
        """Build from :class:`~flext_api.CacheConfig`: backend, shared, max_entries, ``options``.

        ``options`` may hold backend config (``url``, ``path``, ``max_bytes``...) and the
        plugin's own keyword arguments (``stale_if_error``, ``keep``...).
        """
        plugin_keys = {
            "stale_if_error",
            "stale_while_revalidate",
            "heuristic_fraction",
            "heuristic_max",
            "keep",
            "max_variants",
            "namespace",
            "backend_cooldown",
        }
        options = dict(config.options)
        plugin_kwargs: dict[str, Any] = {
            k: options.pop(k) for k in list(options) if k in plugin_keys
        }
        if config.backend == "memory":
            options.setdefault("max_entries", config.max_entries)
            options.setdefault("max_bytes", MEMORY_MAX_BYTES)
        namespace = plugin_kwargs.get("namespace", "")
        if not isinstance(namespace, str):
            raise ConfigError(f"cache option namespace must be a str, got {namespace!r}")
        cache = FlextApiCache(config.backend, options, clock=clock)
        try:
            plugin = cls(cache, shared=config.shared, clock=clock, **plugin_kwargs)
        except (TypeError, ValueError) as exc:  # the policy's own checks
            raise ConfigError(f"cache options: {exc}") from exc
        plugin._owns_cache = True
        return plugin

    def use_fail_on_http_error(self, fail: bool) -> None:
        """Judge stored 4xx/5xx answers by the client's ``fail_on_http_error`` (default True)."""
        self._fail_on_http_error = fail

    def _fails(self, request: HttpRequest) -> bool:
        """Whether a status >= 400 is a failure for ``request``, as the transport decides it."""
        return bool(request.extensions.get("fail_on_http_error", self._fail_on_http_error))

    # -- the pipeline stage ---------------------------------------------------------------
    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        method = request.method.upper()
        if method not in CACHEABLE_METHODS:
            result = await call_next(request)
            await self._invalidate_after(request, result)
            return result
        if self._bypass(request):
            return await call_next(request)
        variants, slot = await self._load(self._slot(method, request.url, request))
        now = self._clock.time()
        decision = on_request(request.headers, variants, now=now, policy=self.policy)
        if isinstance(decision, UseStored):
            return self._answer(request, decision.stored, now, "stale" if decision.stale else "hit")
        if isinstance(decision, ServeStaleAndRevalidate):
            self._revalidate_in_background(slot, request, decision, call_next)
            return self._answer(request, decision.stored, now, "stale")
        if isinstance(decision, GatewayTimeout):
            return self._gateway_timeout(request)
        if isinstance(decision, Revalidate):
            return await self._revalidate(
                slot, request, decision.stored, decision.headers, call_next
            )
        assert isinstance(decision, Forward)
        return await self._forward(slot, request, decision.stale, call_next)

    def _slot(self, method: str, url: str, request: HttpRequest) -> Slot:
        """Where ``method url`` is stored for ``request``'s credentials.

        A private cache is one client's, but one client may speak for several principals
        (a token per tenant, given per request): each ``Authorization`` value gets entries
        of its own (a digest of it is in the key, never the value), so one principal's
        answer is never another's; they are sealed by the URL's guard, so that an unsafe
        request voids every principal's at once. A shared cache stores an authorised
        answer only when the response allows it for everyone (``public``,
        ``s-maxage``...), so its key has no such part.
        """
        key = self._namespace + cache_key(method, url)
        if self.policy.shared:
            return Slot(key)
        credential = request.headers.get("authorization")
        if credential is None:
            return Slot(key)
        digest = hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()
        return Slot(f"{key} auth:{digest[:32]}", guard=_guard_of(key))

    @staticmethod
    def _bypass(request: HttpRequest) -> bool:
        """Requests the cache must not touch: streamed, opted out, or self-validating."""
        ext = request.extensions
        return (
            request.stream is not None
            or bool(ext.get("stream"))
            or ext.get("cache") is False
            or any(name in request.headers for name in _BYPASS_HEADERS)
        )

    async def _forward(
        self, slot: Slot, request: HttpRequest, stale: StoredResponse | None, call_next: CallNext
    ) -> FlextResult[HttpResponse]:
        slot = await self._claim(slot)
        request_time = self._clock.time()
        result = await call_next(request)
        response_time = self._clock.time()
        if stale is not None and self._failed_over(request, result, stale, response_time):
            return self._answer(request, stale, response_time, "stale")
        await self._store(slot, request, result, request_time, response_time)
        return _missed(result)

    async def _revalidate(
        self,
        slot: Slot,
        request: HttpRequest,
        stored: StoredResponse,
        conditional: tuple[tuple[str, str], ...],
        call_next: CallNext,
    ) -> FlextResult[HttpResponse]:
        validation = request.copy()
        for name, value in conditional:
            validation.headers.set(name, value)
        request_time = self._clock.time()
        result = await call_next(validation)
        response_time = self._clock.time()
        response = _response_of(result)
        if response is not None and response.status_code == 304:
            if not identified_by_304(stored, response.headers):
                # The 304 is about another representation (its validators are not
                # ours): it neither freshens the entry nor answers the caller, who
                # asked for a full response. Drop the entry, ask once more without
                # validators; a broken origin that says 304 again gets no third call.
                _log.info(
                    "http_cache.304_not_for_stored",
                    key=slot.key,
                    etag=response.headers.get("etag"),
                )
                await self._drop_variant(slot, stored)
                return await self._forward(slot, request, None, call_next)
            fresh = freshen(
                stored, response.headers, request_time=request_time, response_time=response_time
            )
            await self._save_variant(slot, fresh, response_time)
            return self._answer(request, fresh, response_time, "revalidated")
        if self._failed_over(request, result, stored, response_time):
            return self._answer(request, stored, response_time, "stale")
        await self._store(slot, request, result, request_time, response_time)
        # The validator did not match: the origin sent a new representation.
        return _missed(result)

    def _failed_over(
        self,
        request: HttpRequest,
        result: FlextResult[HttpResponse],
        stale: StoredResponse,
        now: float,
    ) -> bool:
        """True when ``result`` is a failure that ``stale`` may stand in for."""
        response = _response_of(result)
        status = response.status_code if response is not None else None
        # A success has no error code: only its status (a 5xx let through) can trigger.
        if not triggers_stale_if_error(result.error_code, status):
            return False
        return stale_on_error_allowed(stale, request.headers, now=now, policy=self.policy)

    # -- background revalidation (stale-while-revalidate) -----------------------------------
    def _revalidate_in_background(
        self,
        slot: Slot,
        request: HttpRequest,
        decision: ServeStaleAndRevalidate,
        call_next: CallNext,
    ) -> None:
        key = slot.key
        if key in self._revalidating:
            return  # one refresh per URL at a time
        background = request.copy()
        background.deadline = None  # the caller's deadline covers its own call, not this one
        self._revalidating.add(key)
        task = asyncio.get_running_loop().create_task(
            self._background_refresh(slot, background, decision, call_next),
            name=f"CachePlugin.revalidate[{key}]",
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _background_refresh(
        self,
        slot: Slot,
        request: HttpRequest,
        decision: ServeStaleAndRevalidate,
        call_next: CallNext,
    ) -> None:
        try:
            if decision.headers:
                result = await self._revalidate(
                    slot, request, decision.stored, decision.headers, call_next
                )
            else:
                result = await self._forward(slot, request, None, call_next)
            if result.is_failure:
                _log.warning(
                    "http_cache.background_revalidation_failed", key=slot.key, error=result.error
                )
        finally:
            self._revalidating.discard(slot.key)

    async def drain(self) -> None:
        """Wait for background revalidations in flight (tests and graceful shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def cleanup(self) -> None:
        """Cancel background revalidations; close the cache if the plugin created it."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_cache:
            await self.cache.close()

    # -- storage ------------------------------------------------------------------------------
    def _backend_up(self) -> bool:
        """False while a lost backend is left alone (see the module docstring)."""
        return self._clock.monotonic() >= self._backend_down_until

    def _backend_failed(self, exc: FlextApiError) -> None:
        """Start the cool-down when ``exc`` says the backend is lost (not a refused value)."""
        code = exc.code
        # The exchange with it did not complete (a timeout, a failed connection): lost.
        if self.backend_cooldown > 0 and code.is_transport:
            self._backend_down_until = self._clock.monotonic() + self.backend_cooldown
            _log.error(
                "http_cache.backend_down",
                error=str(exc),
                error_code=code.value,
                retry_in=self.backend_cooldown,
            )

    async def _load(self, slot: Slot) -> tuple[list[StoredResponse], Slot]:
        """The variants stored at ``slot``, and ``slot`` with the guard token read with them.

        One backend read: ``get`` of the record, or ``get_many`` of record and guard for
        a sealed slot, whose record counts only when sealed with the guard's token.
        """
        if not self._backend_up():
            return [], slot
        try:
            if slot.guard is None:
                data = await self.cache.get(slot.key)
            else:
                found = await self.cache.get_many([slot.key, slot.guard])
                slot = replace(slot, token=self._token_of(slot.guard, found.get(slot.guard)))
                data = found.get(slot.key)
                if isinstance(data, bytes):
                    data = unseal(slot.token, data)  # None: voided by an invalidation
        except FlextApiError as exc:
            _log.warning("http_cache.load_failed", key=slot.key, error=str(exc))
            self._backend_failed(exc)
            return [], slot
        if not isinstance(data, bytes):
            return [], slot
        try:
            return decode_variants(data), slot
        except CorruptEntryError as exc:
            _log.warning("http_cache.corrupt_record", key=slot.key, reason=str(exc))
            return [], slot

    @staticmethod
    def _token_of(guard: str, value: object) -> str | None:
        token = read_token(value)
        if token is None and value is not None:
            # Voids every record it guarded (a miss, never a stale hit); the next miss
            # writes a fresh one over it.
            _log.warning("http_cache.corrupt_guard", key=guard)
        return token

    async def _claim(self, slot: Slot) -> Slot:
        """``slot`` with a guard token, written now when there is none.

        Written before the origin request it guards: an invalidation after this point
        deletes it, and the answer, sealed with this token, is void (or not stored).
        """
        if slot.guard is None or slot.token is not None or not self._backend_up():
            return slot
        token = new_token()
        try:
            await self.cache.set(slot.guard, token.encode("ascii"), ttl=GUARD_TTL)
        except FlextApiError as exc:
            _log.warning("http_cache.store_failed", key=slot.guard, error=str(exc))
            self._backend_failed(exc)
            return slot
        return replace(slot, token=token)

    async def _store(
        self,
        slot: Slot,
        request: HttpRequest,
        result: FlextResult[HttpResponse],
        request_time: float,
        response_time: float,
    ) -> None:
        response = _response_of(result)
        if response is None:
            return
        if response.status_code == 200 and request.method.upper() == "HEAD":
            await self._check_get_against_head(request, response)
        reason = not_storable_reason(request, response, policy=self.policy)
        if reason is not None:
            _log.debug("http_cache.not_stored", key=slot.key, reason=reason)
            return
        stored = make_stored(
            request, response, request_time=request_time, response_time=response_time
        )
        await self._save_variant(slot, stored, response_time)

    async def _check_get_against_head(self, request: HttpRequest, head: HttpResponse) -> None:
        """Drop the stored GET responses a HEAD answer contradicts (RFC 9111 §4.3.5).

        Kept under keys of their own, the GET of a URL whose HEAD has just shown a new
        ``ETag`` would otherwise still be served, old body and all, until it expired.
        """
        variants, slot = await self._load(self._slot("GET", request.url, request))
        for stored in variants:
            if contradicted_by_head(stored, request.headers, head.headers):
                _log.info("http_cache.head_invalidated_get", key=slot.key)
                await self._drop_variant(slot, stored)

    async def _write(self, slot: Slot, variants: list[StoredResponse], now: float) -> None:
        """Store ``variants`` at ``slot``, sealed with its token (none worth keeping: delete)."""
        ttl = max((storage_ttl(v, now=now, policy=self.policy) for v in variants), default=0.0)
        if ttl <= 0:
            await self.cache.delete(slot.key)
            return
        record = encode_variants(variants)
        if slot.token is not None:
            record = seal(slot.token, record)
        await self.cache.set(slot.key, record, ttl=ttl)

    def _voided(self, slot: Slot, current: Slot) -> bool:
        """Whether ``slot``'s guard changed (or never was) since its token was taken."""
        if slot.guard is None:
            return False
        if slot.token is None or current.token != slot.token:
            reason = "no guard" if slot.token is None else "invalidated meanwhile"
            _log.debug("http_cache.not_stored", key=slot.key, reason=reason)
            return True
        return False

    async def _save_variant(self, slot: Slot, stored: StoredResponse, now: float) -> None:
        # Re-read so a variant stored meanwhile (another request, another process) survives.
        variants, current = await self._load(slot)
        if self._voided(slot, current) or not self._backend_up():
            return
        others = [v for v in variants if v.vary != stored.vary]
        variants = [*others, stored]
        variants.sort(key=lambda v: v.response_time)
        variants = variants[-self.policy.max_variants :]
        if max(storage_ttl(v, now=now, policy=self.policy) for v in variants) <= 0:
            return
        try:
            await self._write(slot, variants, now)
        except FlextApiError as exc:
            _log.warning("http_cache.store_failed", key=slot.key, error=str(exc))
            self._backend_failed(exc)

    async def _drop_variant(self, slot: Slot, stored: StoredResponse) -> None:
        """Remove ``stored`` from ``slot``'s variants (the others, and a newer copy of the
        same variant stored meanwhile, stay)."""
        variants, current = await self._load(slot)
        kept = [v for v in variants if v != stored]
        if len(kept) == len(variants) or self._voided(slot, current) or not self._backend_up():
            return
        try:
            await self._write(slot, kept, self._clock.time())
        except FlextApiError as exc:
            _log.warning("http_cache.store_failed", key=slot.key, error=str(exc))
            self._backend_failed(exc)

    async def _invalidate_after(
        self, request: HttpRequest, result: FlextResult[HttpResponse]
    ) -> None:
        """Void every stored response of the URLs a successful unsafe request changed.

        RFC 9111 §4.4: all of them, whoever stored them: the anonymous record, the
        guard (which voids every principal's record) and this principal's record (to
        free its room now; the others expire).
        """
        response = result.value if result.is_success else None
        if response is None:
            return
        for url in invalidation_targets(
            request.method, request.url, response.status_code, response.headers
        ):
            for method in CACHEABLE_METHODS:
                anonymous = self._namespace + cache_key(method, url)
                keys = [anonymous]
                if not self.policy.shared:  # whoever sent this request, anonymous or not
                    keys += [_guard_of(anonymous), self._slot(method, url, request).key]
                for key in dict.fromkeys(keys):
                    if not self._backend_up():
                        return
                    try:
                        await self.cache.delete(key)
                    except FlextApiError as exc:
                        _log.warning("http_cache.invalidate_failed", key=key, error=str(exc))
                        self._backend_failed(exc)

    # -- answers ------------------------------------------------------------------------------
    def _answer(
        self, request: HttpRequest, stored: StoredResponse, now: float, status: str
    ) -> FlextResult[HttpResponse]:
        headers = stored.header_map()
        # An unknown age is infinite; the header says 2**31, as RFC 9111 §1.2.2 asks.
        headers.set("Age", str(int(min(current_age(stored, now), MAX_DELTA_SECONDS))))
        response = HttpResponse(
            stored.status,
            headers=headers,
            content=b"" if request.method.upper() == "HEAD" else stored.body,
            url=stored.url,
            http_version=stored.http_version,
            reason=stored.reason,
            request=request,
        )
        response.from_cache = True
        response.cache_status = status
        # The stored response is the same for every request; whether its status is a
        # failure is the current caller's choice, not that of the request that stored it.
        if stored.status >= 400 and self._fails(request):
            error = response.error_for_status()
            if error is not None:
                return FlextResult.fail(error)
        return FlextResult.ok(response)

    def _gateway_timeout(self, request: HttpRequest) -> FlextResult[HttpResponse]:
        response = HttpResponse(
            504,
            headers=Headers([("Content-Length", "0")]),
            reason="Gateway Timeout",
            request=request,
        )
        response.from_cache = True
        response.cache_status = "miss"  # nothing usable was stored (the gateway counts it so)
        if not self._fails(request):
            return FlextResult.ok(response)
        error = response.error_for_status()
        assert error is not None
        error.details["reason"] = "only-if-cached and no stored response"
        return FlextResult.fail(error)

    def __repr__(self) -> str:
        mode = "shared" if self.policy.shared else "private"
        return f"<CachePlugin {mode} cache={self.cache!r} background={len(self._background)}>"


def _guard_of(key: str) -> str:
    """The key of the guard record of the anonymous record ``key`` (same method and URL)."""
    return f"{key} guard"


def _missed(result: FlextResult[HttpResponse]) -> FlextResult[HttpResponse]:
    """``result`` with its response (if any) marked ``cache_status = "miss"``.

    Lets metrics and logs count misses, not only hits. A status set already (by a cache
    further down the pipeline) is left as it is.
    """
    response = _response_of(result)
    if response is not None and response.cache_status is None:
        response.cache_status = "miss"
    return result


def _response_of(result: FlextResult[HttpResponse]) -> HttpResponse | None:
    """The response behind ``result``: its value, or the one attached to an HTTP_STATUS failure."""
    if result.is_success:
        return result.value
    error = result.exception
    if error is not None and error.code is ErrorCode.HTTP_STATUS:
        return error.response
    return None


def cache_stage(config: ClientConfig, clock: Clock) -> CachePlugin:
    """The client's default HTTP cache stage, built from ``config.cache`` on its clock.

    Registered as ``cache`` in the ``flext_api.stages`` entry points: the client (a layer
    below the cache) finds it there instead of importing this package.
    """
    return CachePlugin.from_config(config.cache, clock=clock)
