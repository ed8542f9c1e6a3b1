"""``AsyncSmartCache``: get-or-compute with per-key single-flight and typed error caching.

The seed is fapilog's ``AsyncSmartCache`` (chris-haste/fastapi-logger,
``src/fapilog/enrichers/cache.py``: ``retry_interval``, ``get_or_compute``,
``get_cache_stats``). Its flaws are fixed here:

* one global lock held during computations serialized *every* key; here each key has
  its own in-flight computation (a task), and other keys run in parallel;
* a cached failure became a bare ``RuntimeError`` that lost the original; here it is a
  :class:`CachedError` chaining it. As in fapilog, the caller whose computation failed
  gets the original exception, and callers served the failure (coalesced onto that
  computation, or later within ``retry_interval``) get the ``CachedError``;
* ``lambda: coro_fn()`` cached a coroutine object; here an awaitable returned by a sync
  callable is awaited;
* values never expired, nothing was ever evicted, ``cache_hit_rate`` was not a hit rate.

Hit path: a dict lookup, one clock read and one comparison (``Entry.fresh_until``);
no lock, no task, no policy work beyond ``refs += 1`` (see :mod:`._policy`). Everything
else (errors, stale values, early refresh, computing) lives on the slow path.

Cancellation: the computation runs in its own task; callers wait on a shielded future,
so cancelling any caller - including the one that started it - neither cancels the
computation nor leaves the others waiting. Only :meth:`AsyncSmartCache.aclose` cancels
computations; their waiters then get :class:`flext_api.CancelledError` (code CANCELLED).
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import inspect
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

import structlog

from .._clock import Clock, SystemClock, get_clock
from .._errors import CancelledError
from ._cached_error import CachedError
from ._durations import Duration, to_count, to_names
from ._policy import PolicyName, make_policy
from ._smart_compat import EntriesView
from ._smart_index import EntryIndex
from ._smart_parts import MISSING, Entry, Flight, Outcome, WarmReport
from ._smart_settings import SmartCacheSettings
from ._smart_shared import SharedTier

if TYPE_CHECKING:
    from ._facade import FlextApiCache

__all__ = ["AsyncSmartCache"]

T = TypeVar("T")

_log = structlog.get_logger("flext_api.cache")

# With early refresh on, hits skip the XFetch dice until expiry - delta*beta*_XFETCH_SPAN:
# the chance XFetch would fire earlier is e**-10 (about 5e-5), so the fast path stays exact
# in all but name.
_XFETCH_SPAN = 10.0


#: The flights whose computation the current task runs, directly or as a task it started
#: (a child task inherits its parent's context). A call that would wait for one of them
#: waits for itself: ``fn`` asking for its own key, or A's ``fn`` asking for B whose ``fn``
#: asks for A. Read only when a call is about to join a flight, never on the hit path.
_running: ContextVar[tuple[Flight, ...]] = ContextVar("flext_api_smart_cache_running", default=())


def _check_key(key: object) -> None:
    # Checked on the slow path only: a key that is not a str never gets stored, so the
    # hit path never meets one. Otherwise an int key would work locally, break
    # invalidate_pattern, and with a backend turn the backend's TypeError into a
    # cached "failure" of a computation that never ran.
    if not isinstance(key, str):
        raise TypeError(f"AsyncSmartCache keys must be str, got {type(key).__name__} {key!r:.80}")


class AsyncSmartCache:
    """An in-process async cache of computed values, with single-flight and error caching.

    >>> cache = AsyncSmartCache(retry_interval=timedelta(minutes=5), ttl=60, max_entries=10_000)
    >>> user = await cache.get_or_compute("user:1", lambda: fetch_user(1))  # doctest: +SKIP

    Args:
        retry_interval: how long a failed computation stays cached (every caller gets
            :class:`CachedError` meanwhile); 0 turns error caching off.
        ttl: default lifetime of a value (None: until evicted or invalidated).
        max_entries: size bound (None: unbounded); ``policy`` picks the victims.
        policy: ``"tinylfu"`` (W-TinyLFU, default) or ``"lru"`` (CLOCK).
        stale_while_revalidate: after a value expires, serve it this much longer while
            one background computation refreshes it.
        stale_if_error: while the key's computation is failing, keep serving the last good
            value up to this long after it expired (``math.inf``: always).
        early_refresh_beta: turn on XFetch probabilistic early refresh with this beta
            (1.0 is the paper's default); needs a ``ttl``.
        retry_backoff: multiply the retry interval by this after each consecutive failure
            (1.0: fixed interval, the seed's behaviour), capped by ``max_retry_interval``.
        retry_jitter: spread retry intervals by up to this fraction (0..1) either way.
        cache_errors: exception types that are cached; others are shared with the
            coalesced waiters but not kept.
        backend: a :class:`FlextApiCache` (e.g. Redis) to share values between processes.
        namespace: key prefix used in ``backend``.
        clock: injectable clock (:class:`flext_api.testing.FakeClock` in tests).
        rng: random source for jitter and XFetch (seed it in tests).
    """

    def __init__(
        self,
        retry_interval: Duration = timedelta(minutes=5),
        *,
        ttl: Duration | None = None,
        max_entries: int | None = None,
        policy: PolicyName = "tinylfu",
        stale_while_revalidate: Duration = 0.0,
        stale_if_error: Duration = 0.0,
        early_refresh_beta: float | None = None,
        retry_backoff: float = 1.0,
        max_retry_interval: Duration | None = None,
        retry_jitter: float = 0.0,
        cache_errors: tuple[type[Exception], ...] = (Exception,),
        backend: FlextApiCache | None = None,
        namespace: str = "smart:",
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = SmartCacheSettings.build(
            retry_interval=retry_interval,
            ttl=ttl,
            stale_while_revalidate=stale_while_revalidate,
            stale_if_error=stale_if_error,
            early_refresh_beta=early_refresh_beta,
            retry_backoff=retry_backoff,
            max_retry_interval=max_retry_interval,
            retry_jitter=retry_jitter,
            cache_errors=cache_errors,
        )
        # Read on every slow-path call: plain attributes.
        self._swr = self._settings.stale_while_revalidate
        self._sie = self._settings.stale_if_error
        self._beta = self._settings.beta
        bound = None if max_entries is None else to_count(max_entries, "max_entries")
        if policy not in ("tinylfu", "lru"):
            raise ValueError(f"unknown eviction policy {policy!r}; expected 'lru' or 'tinylfu'")
        self._index = EntryIndex(make_policy(policy, bound) if bound is not None else None)
        # The hit path reads this dict directly: one attribute lookup, no method call.
        self._entries = self._index.entries
        self._policy_name = policy
        self._shared = SharedTier(backend, namespace) if backend is not None else None
        self._clock = get_clock(clock)
        # The hit path calls this once: skip a Python-level method call for the real clock.
        self._now: Callable[[], float] = (
            time.monotonic if isinstance(self._clock, SystemClock) else self._clock.monotonic
        )
        self._rng = rng if rng is not None else random.Random()

        self._flights: dict[str, Flight] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        # counters (see get_cache_stats)
        self._hits = 0
        self._misses = 0
        self._coalesced = 0
        self._loads = 0
        self._load_failures = 0
        self._errors_served = 0
        self._stale_served = 0
        self._refreshes = 0
        self._early_refreshes = 0

    # -- the main call -------------------------------------------------------------------
    @overload
    async def get_or_compute(
        self,
        key: str,
        fn: Callable[[], Awaitable[T]],
        *,
        ttl: Duration | None = None,
        tags: Iterable[str] = (),
    ) -> T: ...

    @overload
    async def get_or_compute(
        self,
        key: str,
        fn: Callable[[], T],
        *,
        ttl: Duration | None = None,
        tags: Iterable[str] = (),
    ) -> T: ...

    async def get_or_compute(
        self,
        key: str,
        fn: Callable[[], Any],
        *,
        ttl: Duration | None = None,
        tags: Iterable[str] = (),
    ) -> Any:
        """The value of ``key``: cached, or computed once by ``fn`` for every concurrent caller.

        ``fn`` may be sync or async; an awaitable it returns is awaited. A failure raises
        the exception ``fn`` raised for the caller that started the computation, and
        :class:`CachedError` (``__cause__`` = that exception) for the callers coalesced
        onto it and those arriving within ``retry_interval``, while the failure is cached.
        ``ttl`` overrides the default lifetime for this value; ``tags`` (an iterable of
        str; one str is a ``TypeError``) label it for :meth:`invalidate_tag`.
        """
        try:
            entry = self._entries.get(key)
        except TypeError:  # unhashable: say what a key must be, not "unhashable type"
            _check_key(key)
            raise
        if entry is not None and self._now() < entry.fresh_until:
            entry.refs += 1
            self._hits += 1
            return entry.value
        return await self._get_slow(key, fn, ttl, tags)

    async def _get_slow(
        self, key: str, fn: Callable[[], Any], ttl: Duration | None, tags: Iterable[str]
    ) -> Any:
        _check_key(key)
        # Checked before anything is counted: a call refused for its arguments is no miss.
        ttl_s = self._settings.entry_ttl(ttl)
        tag_set = to_names(tags, "tags")
        entry = self._entries.get(key)
        if entry is not None:
            served = self._serve_existing(entry, fn, ttl_s, tag_set)
            if served is not MISSING:
                return served
        if self._closed:
            # Only misses are refused: what is stored (fresh, stale or an error) still answers.
            raise RuntimeError("AsyncSmartCache is closed")
        flight = self._flights.get(key)
        owner = flight is None
        if flight is None:
            self._misses += 1
            flight = self._launch(key, fn, ttl_s, tag_set)
        else:
            if flight in _running.get():
                # Joining it would wait for ever: the flight waits for this very call.
                raise RuntimeError(
                    f"AsyncSmartCache: the computation for {key!r} asked for {key!r} again "
                    "(directly or through other keys); it would wait for its own result"
                )
            # Served without running the computation: a hit, as async-lru counts it.
            self._coalesced += 1
            self._hits += 1
        return await self._wait(key, flight, owner=owner)

    def _serve_existing(
        self, entry: Entry, fn: Callable[[], Any], ttl: float | None, tags: frozenset[str]
    ) -> Any:
        """Answer from ``entry`` if the rules allow (raising a cached error); else MISSING."""
        now = self._now()
        key: str = entry.key  # type: ignore[assignment]  # our nodes are keyed by str
        if entry.error is not None:
            if now < entry.error_until:
                if entry.has_value and now < entry.expires_at + self._sie:
                    return self._serve_value(entry, stale=now >= entry.expires_at)
                self._errors_served += 1
                raise CachedError(key, entry.error, retry_in=entry.error_until - now)
            return MISSING  # the retry interval is over: recompute
        # An entry without an error holds a value (expires_at is -inf only for errors).
        if now < entry.expires_at:
            # Only reached inside the XFetch margin: roll the dice for an early refresh.
            if not self._closed and key not in self._flights and self._xfetch_due(entry, now):
                self._early_refreshes += 1
                self._launch(key, fn, ttl, tags, background=True)
            return self._serve_value(entry, stale=False)
        if now < entry.expires_at + self._swr:
            if not self._closed and key not in self._flights:
                self._refreshes += 1
                self._launch(key, fn, ttl, tags, background=True)
            return self._serve_value(entry, stale=True)
        return MISSING

    def _serve_value(self, entry: Entry, *, stale: bool) -> Any:
        entry.refs += 1
        self._hits += 1
        if stale:
            self._stale_served += 1
        return entry.value

    def _xfetch_due(self, entry: Entry, now: float) -> bool:
        assert self._beta is not None  # fresh_until < expires_at only with early refresh on
        # XFetch (Vattani et al., PVLDB 2015): recompute when now - delta*beta*ln(U) >= expiry.
        draw = 1.0 - self._rng.random()  # in (0, 1]: log() is defined
        return now - entry.delta * self._beta * math.log(draw) >= entry.expires_at

    # -- computations --------------------------------------------------------------------
    def _launch(
        self,
        key: str,
        fn: Callable[[], Any],
        ttl: float | None,
        tags: frozenset[str],
        *,
        background: bool = False,
    ) -> Flight:
        loop = asyncio.get_running_loop()
        flight = Flight(loop.create_future(), tags, background=background)
        task = loop.create_task(self._run(key, fn, ttl, flight), name=f"AsyncSmartCache[{key}]")
        flight.task = task
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._settled, flight))
        self._flights[key] = flight
        self._loads += 1
        return flight

    def _settled(self, flight: Flight, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # a BaseException from fn went to the waiters (see _run)
        if not flight.future.done():
            # Cancelled (by aclose) before or while running: release the waiters.
            flight.future.cancel()

    async def _run(
        self, key: str, fn: Callable[[], Any], ttl: float | None, flight: Flight
    ) -> None:
        start = self._now()
        shared = False
        # This task's own context (a copy of its creator's): children of fn inherit it.
        _running.set((*_running.get(), flight))
        try:
            found = await self._shared.load(key) if self._shared is not None else None
            if found is not None:
                value, ttl = found
                shared = True
                if not flight.background:
                    # The caller who started this flight did not run the computation
                    # either: the shared backend served it, so it is a hit after all.
                    self._misses -= 1
                    self._hits += 1
            else:
                value = fn()
                if inspect.isawaitable(value):
                    value = await value
        except asyncio.CancelledError:
            self._forget(key, flight)
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every waiter as CachedError
            self._forget(key, flight)
            self._load_failures += 1
            retry_in = self._record_failure(key, exc, flight) if flight.valid else 0.0
            flight.future.set_result(Outcome(MISSING, exc, retry_in))
            if flight.background:
                _log.warning("smart_cache.refresh_failed", key=key, error=repr(exc))
            return
        except BaseException as exc:
            # KeyboardInterrupt, SystemExit, GeneratorExit or a framework's own
            # BaseException (pytest.fail, trio.Cancelled...): not a failure to cache, but
            # the flight must end here. Left in _flights with a cancelled future, it
            # would answer every later call of this key with CANCELLED, for ever.
            self._forget(key, flight)
            self._load_failures += 1
            flight.future.set_exception(exc)
            flight.future.exception()  # retrieved: a background flight may have no waiter
            raise
        self._forget(key, flight)
        if flight.valid:
            self._record_success(key, value, ttl, flight.tags, delta=self._now() - start)
        flight.future.set_result(Outcome(value, None))
        if self._shared is not None and not shared and flight.valid:
            await self._shared.save(key, value, ttl)

    def _forget(self, key: str, flight: Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]

    async def _wait(self, key: str, flight: Flight, *, owner: bool = False) -> Any:
        try:
            outcome = await asyncio.shield(flight.future)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if flight.future.cancelled() and task is not None and not task.cancelling():
                raise CancelledError(f"the computation for {key!r} was cancelled") from None
            raise
        if outcome.error is None:
            return outcome.value
        entry = self._entries.get(key)
        if entry is not None and entry.has_value and self._now() < entry.expires_at + self._sie:
            self._stale_served += 1
            return entry.value
        if owner:
            # The caller that ran the computation gets what it raised (fapilog's "fresh
            # error": ``except ConnectionError`` works); the others get CachedError.
            raise outcome.error
        raise CachedError(key, outcome.error, retry_in=outcome.retry_in)

    # -- storing -------------------------------------------------------------------------
    def _entry_for(self, key: str) -> tuple[Entry, bool]:
        if self._index.sweep_due:
            self.purge_expired()
        return self._index.entry_for(key)

    def _record_success(
        self, key: str, value: Any, ttl: float | None, tags: frozenset[str], *, delta: float
    ) -> None:
        entry, new = self._entry_for(key)
        self._index.set_error(entry, None)
        entry.value = value
        entry.failures = 0
        entry.delta = delta
        entry.expires_at = self._now() + ttl if ttl is not None else math.inf
        margin = delta * self._beta * _XFETCH_SPAN if self._beta is not None else 0.0
        entry.fresh_until = entry.expires_at - margin
        self._index.tag(entry, tags)
        if new:
            self._index.admit(entry)

    def _record_failure(self, key: str, exc: Exception, flight: Flight) -> float:
        """Cache ``exc`` for the retry interval (if it is cacheable); return that interval."""
        if not self._settings.caches(exc):
            return 0.0
        entry, new = self._entry_for(key)
        entry.failures += 1
        interval = self._settings.retry_delay(entry.failures, self._rng)
        self._index.set_error(entry, exc)
        entry.error_until = self._now() + interval
        entry.fresh_until = -math.inf
        self._index.tag(entry, flight.tags)
        if new:
            self._index.admit(entry)
        return interval

    def _remove(self, key: str) -> bool:
        flight = self._flights.pop(key, None)
        if flight is not None:
            flight.valid = False
        return self._index.remove(key)

    async def _delete_shared(self, keys: Iterable[str]) -> None:
        if self._shared is not None:
            await self._shared.delete(keys)

    # -- direct access -------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The fresh value of ``key`` or ``default``; never computes (counts a hit or a miss)."""
        entry = self._entries.get(key)
        if entry is not None and self._unexpired(entry):
            return self._serve_value(entry, stale=False)
        self._misses += 1
        return default

    async def set(
        self, key: str, value: Any, *, ttl: Duration | None = None, tags: Iterable[str] = ()
    ) -> None:
        """Store ``value`` for ``key`` (replaces a cached error; drops a computation in flight)."""
        _check_key(key)
        ttl_s = self._settings.entry_ttl(ttl)
        tag_set = to_names(tags, "tags")
        flight = self._flights.pop(key, None)
        if flight is not None:
            flight.valid = False
        self._record_success(key, value, ttl_s, tag_set, delta=0.0)
        if self._shared is not None:
            await self._shared.save(key, value, ttl_s)

    async def warm(
        self,
        loaders: Mapping[str, Callable[[], Any]],
        *,
        concurrency: int = 8,
        ttl: Duration | None = None,
        tags: Iterable[str] = (),
    ) -> WarmReport:
        """Compute (or confirm cached) every key of ``loaders``, ``concurrency`` at a time.

        Failures do not stop the others; they are cached like any failure and reported.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        gate = asyncio.Semaphore(concurrency)
        tag_set = to_names(tags, "tags")
        loaded: list[str] = []
        failed: dict[str, BaseException] = {}

        async def load(key: str, fn: Callable[[], Any]) -> None:
            async with gate:
                try:
                    await self.get_or_compute(key, fn, ttl=ttl, tags=tag_set)
                except CachedError as exc:
                    failed[key] = exc.error
                except Exception as exc:  # noqa: BLE001 - a fresh failure, reported
                    failed[key] = exc
                else:
                    loaded.append(key)

        await asyncio.gather(*(load(key, fn) for key, fn in loaders.items()))
        return WarmReport(tuple(sorted(loaded)), failed)

    # -- invalidation --------------------------------------------------------------------
    def discard(self, key: str) -> bool:
        """Drop ``key`` now, without awaiting (a backend copy is deleted by a task)."""
        found = self._remove(key)
        if self._shared is not None:
            task = asyncio.get_running_loop().create_task(self._delete_shared((key,)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return found

    @property
    def _cache(self) -> EntriesView:
        # fapilog's internals, used by its guide's invalidation recipe (see _smart_compat).
        return EntriesView(self)

    @property
    def _lock(self) -> asyncio.Lock:
        lock = self.__dict__.get("_compat_lock")
        if lock is None:
            lock = self.__dict__["_compat_lock"] = asyncio.Lock()
        return lock

    async def invalidate(self, key: str) -> bool:
        """Drop ``key`` (here and in the backend); a computation in flight is not kept."""
        found = self._remove(key)
        await self._delete_shared((key,))
        return found

    async def invalidate_pattern(self, pattern: str) -> int:
        """Drop every key matching the glob ``pattern`` (``*``, ``?``, ``[...]``); return how many.

        Scans the local keys (O(n)); backend copies of the matched keys are deleted too.
        """
        return await self.invalidate_where(re.compile(fnmatch.translate(pattern)).match)

    async def invalidate_where(self, predicate: Callable[[str], object]) -> int:
        """Drop every key for which ``predicate(key)`` is true; return how many.

        For matches a glob cannot say literally, such as keys holding ``[``, ``*`` or
        ``?`` (``key.startswith(prefix)``). Scans the local keys (O(n)); backend copies
        are deleted too.
        """
        keys = {k for k in (*self._entries, *self._flights) if predicate(k)}
        removed = sum(self._remove(k) for k in keys)
        await self._delete_shared(keys)
        return removed

    async def invalidate_tag(self, tag: str) -> int:
        """Drop every key stored with ``tag``; return how many."""
        keys = set(self._index.tags.get(tag, ()))
        keys.update(k for k, f in self._flights.items() if tag in f.tags)
        removed = sum(self._remove(k) for k in keys)
        await self._delete_shared(keys)
        return removed

    async def clear(self) -> None:
        """Drop every local entry and forget computations in flight (the backend is untouched)."""
        for flight in self._flights.values():
            flight.valid = False
        self._flights.clear()
        self._index.clear()

    def purge_expired(self) -> int:
        """Drop entries that can no longer be served; return how many (also runs by itself)."""
        now = self._now()
        grace = max(self._swr, self._sie)

        def dead(entry: Entry) -> bool:
            return (
                (not entry.has_value or now >= entry.expires_at + grace)
                and (entry.error is None or now >= entry.error_until)
                and entry.key not in self._flights
            )

        return self._index.purge(dead)

    # -- stats, lifecycle ----------------------------------------------------------------
    async def get_cache_stats(self) -> dict[str, int | float]:
        """Counters and sizes.

        Keeps fapilog's keys (``total_entries``, ``success_entries``, ``error_entries``,
        ``cache_hit_rate``), but ``cache_hit_rate`` is a real hit rate here:
        ``hits / (hits + misses)``. A call counts as one of: a hit (served without running
        the computation: from the cache, fresh or stale, from the shared backend, or
        ``coalesced`` onto a computation another caller started, as async-lru counts
        it), a miss (started the computation) or an ``errors_served`` (a cached error
        was raised).
        ``loads`` counts computations started, ``stale_served`` answers with a stale value.
        """
        total = len(self._entries)
        errors = self._index.error_count
        lookups = self._hits + self._misses
        return {
            "total_entries": total,
            "success_entries": total - errors,
            "error_entries": errors,
            "cache_hit_rate": self._hits / lookups if lookups else 0.0,
            "hits": self._hits,
            "misses": self._misses,
            "coalesced": self._coalesced,
            "in_flight": len(self._flights),
            "loads": self._loads,
            "load_failures": self._load_failures,
            "errors_served": self._errors_served,
            "stale_served": self._stale_served,
            "refreshes": self._refreshes,
            "early_refreshes": self._early_refreshes,
            "evictions": self._index.evictions,
            "backend_hits": self._shared.hits if self._shared is not None else 0,
            "tags": len(self._index.tags),
        }

    async def aclose(self) -> None:
        """Cancel computations and background refreshes in flight; the cache refuses new misses."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._flights.clear()

    async def __aenter__(self) -> AsyncSmartCache:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        entry = self._entries.get(key) if isinstance(key, str) else None
        return entry is not None and self._unexpired(entry)

    def _unexpired(self, entry: Entry) -> bool:
        # fresh_until is earlier than expires_at inside the XFetch margin, and -inf while
        # an error is cached: a value that has not expired is fresh in both cases.
        return entry.has_value and self._now() < entry.expires_at

    def __repr__(self) -> str:
        lookups = self._hits + self._misses
        rate = self._hits / lookups if lookups else 0.0
        policy = self._index.policy
        bound = policy.capacity if policy is not None else "unbounded"
        return (
            f"<AsyncSmartCache entries={len(self._entries)} in_flight={len(self._flights)} "
            f"hit_rate={rate:.2f} policy={self._policy_name} max_entries={bound}>"
        )
