"""A JWKS (JSON Web Key Set) cache: keys by ``kid``, refreshed on expiry or an unknown kid.

PyJWT's ``PyJWKClient`` is synchronous (urllib) and refetches on every unknown ``kid``,
so a stream of tokens with random ``kid`` values would turn into a stream of requests to
the identity provider. This cache is async and rate-limits refreshes: at most one fetch
per ``min_refresh_interval`` (concurrent misses share it), keys kept for ``ttl``, and the
last good key set is kept when a refresh fails. The fetcher is injectable (tests, a
FlextApiClient); the default uses aiohttp with a timeout and no redirects, and reads at
most :data:`MAX_JWKS_BYTES`. Whatever the fetcher does, a refresh ends within
``timeout`` seconds, and a document that is not a JSON object of keys counts as a failed
refresh, as is a fetcher's :class:`~flext_api.FlextApiError`: the requests waiting on it
get a 401, never a 500, a 502 or a hang.

A key is kept for each configured algorithm it can verify: its own ``alg``, or, when it
names none (as many identity providers publish RSA keys), every configured algorithm of
its key type (RSA: RS* and PS*; an EC or OKP key's curve names its one algorithm) -
PyJWT would otherwise bind an ``alg``-less RSA key to RS256 only, and a service pinned
to PS256 or RS512 would refuse every token. A key whose ``alg`` or ``kid`` is not a
string is skipped, not taken as a reason to refuse the whole set.

A token's candidate keys (:meth:`JwksCache.get_keys`) are those that verify its (pinned)
``alg`` and, when it names a ``kid``, carry that ``kid``; a token without ``kid`` has
every key of its ``alg`` as candidate, those without a ``kid`` first (the set may hold
several: nothing else tells them apart), then the others, each in document order. The
verifier tries at most :data:`MAX_KEY_CANDIDATES` of them. PyJWT's ``PyJWKClient``
drops keys without ``kid`` from the set and matches a token by ``kid`` alone, so a token
without one is refused; ``jose`` (panva) and Nimbus JOSE+JWT try every matching key, as
this cache lets the verifier do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp
from jwt import PyJWK
from jwt.exceptions import PyJWKError, PyJWKSetError, PyJWTError

from flext_api._clock import Clock, get_clock
from flext_api._errors import FlextApiError

__all__ = ["MAX_JWKS_BYTES", "MAX_KEY_CANDIDATES", "JwksCache", "JwksFetch", "fetch_jwks"]

MAX_JWKS_BYTES = 1024 * 1024
"""The largest JWKS document :func:`fetch_jwks` reads; key sets are a few KiB."""

MAX_KEY_CANDIDATES = 8
"""The most keys one token is tried against: a signature check each, so a token without
``kid`` costs a bounded amount of work whatever the size of the key set."""

JwksFetch = Callable[[str, float], Awaitable[Any]]
"""``await fetch(url, timeout)`` -> the decoded JWKS JSON document."""


async def fetch_jwks(url: str, timeout: float) -> Any:
    """GET ``url`` with aiohttp and decode the JSON body.

    Raises on a non-2xx status, and ``ValueError`` for a body that is not JSON, is nested
    too deeply to decode, or is larger than :data:`MAX_JWKS_BYTES`.
    """
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with (
        aiohttp.ClientSession(timeout=client_timeout) as session,
        session.get(url, allow_redirects=False, headers={"Accept": "application/json"}) as resp,
    ):
        resp.raise_for_status()
        body = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > MAX_JWKS_BYTES:
                raise ValueError(f"JWKS document larger than {MAX_JWKS_BYTES} bytes")
    try:
        return json.loads(body)
    except RecursionError as exc:
        raise ValueError("JWKS document nested too deeply") from exc


class JwksCache:
    """Signing keys of one JWKS URL, fetched lazily (see module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        algorithms: Iterable[str],
        fetch: JwksFetch | None = None,
        ttl: float = 300.0,
        min_refresh_interval: float = 30.0,
        timeout: float = 5.0,
        clock: Clock | None = None,
        logger: Any = None,
    ) -> None:
        self.url = url
        self._algorithms = frozenset(algorithms)
        self._fetch = fetch if fetch is not None else fetch_jwks
        self._ttl = ttl
        self._min_interval = min_refresh_interval
        self._timeout = timeout
        self._clock = get_clock(clock)
        self._logger = logger
        self._keys = _KeySet()
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        # Bumped whenever a fetched key set replaces the current one: whoever remembers
        # verification results (the gateway's token memo) drops them on a change.
        self.generation = 0

    def __repr__(self) -> str:
        return f"<JwksCache {self.url!r} [{self._keys.count} keys, {self.fetches} fetches]>"

    def _may_fetch(self) -> bool:
        return (
            self._attempted_at is None
            or self._clock.monotonic() - self._attempted_at >= self._min_interval
        )

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock.monotonic() - self._fetched_at >= self._ttl

    async def get_keys(self, kid: str | None, alg: str) -> tuple[PyJWK, ...]:
        """The candidate keys for a token's ``kid`` (None: it names none) and ``alg`` (see
        module docstring), refreshing (rate-limited) when stale or when there are none."""
        if self._stale() and self._may_fetch():
            await self._refresh()
        keys = self._keys.candidates(kid, alg)
        if not keys and self._may_fetch():
            await self._refresh()
            keys = self._keys.candidates(kid, alg)
        return keys

    async def get_key(self, kid: str | None, alg: str | None = None) -> PyJWK | None:
        """The one key for ``kid`` (that verifies ``alg``, when given), refreshing
        (rate-limited) when stale or unknown; None without ``kid`` unless the set holds a
        single key. :meth:`get_keys` gives every candidate (the verifier's choice)."""
        if self._stale() and self._may_fetch():
            await self._refresh()
        key = self._keys.single(kid, alg)
        if key is None and self._may_fetch():
            await self._refresh()
            key = self._keys.single(kid, alg)
        return key

    async def refresh_after_miss(self) -> bool:
        """Refetch the set (rate-limited, as for an unknown ``kid``) because no candidate
        verified a token without ``kid``: a key the set gained since is found then.
        True when a new key set was loaded."""
        if not self._may_fetch():
            return False
        generation = self.generation
        await self._refresh()
        return self.generation != generation

    async def _refresh(self) -> None:
        # A refresh in flight when we asked began after our miss: its result is ours too,
        # even with min_refresh_interval=0 (concurrent misses share one fetch).
        shared = self._lock.locked()
        async with self._lock:
            if shared or not self._may_fetch():
                return
            self._attempted_at = self._clock.monotonic()
            self.fetches += 1
            try:
                async with asyncio.timeout(self._timeout):
                    document = await self._fetch(self.url, self._timeout)
                if not isinstance(document, dict):
                    raise TypeError(f"JWKS document is a {type(document).__name__}, not an object")
                keys = self._usable_keys(document)
            # FlextApiError: what a fetcher on a FlextApiClient fails with.
            except (OSError, aiohttp.ClientError, TimeoutError, ValueError, PyJWKError,
                    PyJWKSetError, TypeError, KeyError, FlextApiError) as exc:  # fmt: skip
                # Keep serving the last good keys; an IdP hiccup is not an outage here.
                if self._logger is not None:
                    self._logger.warning("jwks refresh failed", url=self.url, error=repr(exc))
                return
            self._keys = keys
            self.generation += 1
            self._fetched_at = self._clock.monotonic()

    def _usable_keys(self, document: dict[str, Any]) -> _KeySet:
        entries = document.get("keys")
        if not isinstance(entries, list) or not entries:
            raise PyJWKSetError("The JWK Set has no list of keys")
        usable = _KeySet()
        parsed = 0
        for data in entries:
            by_alg = self._bind(data) if isinstance(data, dict) else None
            if by_alg is None:
                continue  # not a key PyJWT can load: skipped, as PyJWKSet does
            parsed += 1
            kid = data.get("kid")
            signing = data.get("use") in (None, "sig")
            if by_alg and signing and (kid is None or isinstance(kid, str)):
                usable.add(kid or None, by_alg)  # an empty kid names nothing
        if not parsed:
            raise PyJWKSetError("The JWK Set did not contain any usable keys")
        return usable

    def _bind(self, data: dict[str, Any]) -> dict[str, PyJWK] | None:
        """``data`` as a key for each configured algorithm it verifies ({}: none of
        them); None when it is no key at all."""
        alg = data.get("alg")
        if alg is not None and not isinstance(alg, str):
            return None
        candidates: list[str | None] = [alg]
        # Only RSA is ambiguous: an EC or OKP key's curve names its one algorithm.
        if alg is None and data.get("kty") == "RSA":
            rsa_algs = sorted(a for a in self._algorithms if a[:2] in ("RS", "PS"))
            candidates = list(rsa_algs) or [None]
        bound: dict[str, PyJWK] = {}
        for candidate in candidates:
            try:
                key = PyJWK(data, candidate)
            except PyJWTError:
                return None
            if key.algorithm_name in self._algorithms:
                bound[key.algorithm_name] = key
        return bound


class _KeySet:
    """One fetched key set, indexed for :meth:`JwksCache.get_keys`."""

    __slots__ = ("_by_kid", "_kidless", "_with_kid", "count")

    def __init__(self) -> None:
        # kid -> alg -> keys (several when the set repeats a kid), in document order
        self._by_kid: dict[str, dict[str, list[PyJWK]]] = {}
        # alg -> keys, for tokens without kid: keys without kid, then the others
        self._kidless: dict[str, list[PyJWK]] = {}
        self._with_kid: dict[str, list[PyJWK]] = {}
        self.count = 0

    def add(self, kid: str | None, by_alg: dict[str, PyJWK]) -> None:
        self.count += 1
        for alg, key in by_alg.items():
            if kid is None:
                self._kidless.setdefault(alg, []).append(key)
            else:
                self._by_kid.setdefault(kid, {}).setdefault(alg, []).append(key)
                self._with_kid.setdefault(alg, []).append(key)

    def candidates(self, kid: str | None, alg: str) -> tuple[PyJWK, ...]:
        if kid:
            keys = self._by_kid.get(kid, {}).get(alg, [])
        else:
            keys = self._kidless.get(alg, []) + self._with_kid.get(alg, [])
        return tuple(keys[:MAX_KEY_CANDIDATES])

    def single(self, kid: str | None, alg: str | None) -> PyJWK | None:
        if kid:
            lists = list(self._by_kid.get(kid, {}).values())
        elif self.count == 1:  # without kid, only one key is unambiguous
            lists = [*self._kidless.values(), *self._with_kid.values()]
        else:
            return None
        keys = [key for found in lists for key in found]
        if alg is not None:
            keys = [key for key in keys if key.algorithm_name == alg]
        return keys[0] if keys else None
