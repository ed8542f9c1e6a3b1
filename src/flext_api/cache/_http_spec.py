"""RFC 9111 (HTTP caching) and RFC 5861 (stale-* extensions) as pure decision functions.

Sans-IO in hishel's style: nothing here sends, stores or sleeps. The plugin
(:mod:`._http_plugin`) asks :func:`on_request` what to do with a request and the stored
variants, performs it, and asks the other functions how to store, freshen (304) or
invalidate. Each decision is a frozen value object, so each state has focused tests
(``tests/unit/cache/http/test_state_*.py``).

Written here rather than taken from hishel because hishel 2.0 is not a dependency and
its state machine is built around its own request/response types; the rules fit in
one module over ours.

Times are epoch seconds from the plugin's clock (``Date`` and ``Expires`` are wall-clock
dates, so the age calculation has to be too).
"""

from __future__ import annotations

import hashlib
import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.utils import formatdate
from typing import TypeAlias
from urllib.parse import urljoin, urlsplit, urlunsplit

from .._errors import ErrorCode, FlextApiError
from .._models import Headers, HttpRequest, HttpResponse, canonical_host
from .._numbers import is_real
from ._durations import to_count
from ._http_directives import (
    CacheControl,
    delta_seconds,
    normalize_field,
    parse_cache_control,
    parse_http_date,
    parse_vary,
)
from ._http_store import StoredResponse

__all__ = [
    "CACHEABLE_STATUSES",
    "Forward",
    "GatewayTimeout",
    "HttpCachePolicy",
    "Lookup",
    "Revalidate",
    "ServeStaleAndRevalidate",
    "UseStored",
    "cache_key",
    "contradicted_by_head",
    "current_age",
    "freshen",
    "freshness_lifetime",
    "identified_by_304",
    "invalidation_targets",
    "make_stored",
    "not_storable_reason",
    "on_request",
    "request_cache_control",
    "response_cache_control",
    "stale_on_error_allowed",
    "storage_ttl",
    "triggers_stale_if_error",
]

CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Heuristically cacheable statuses (RFC 9110 §15.1); the only ones this cache stores.
CACHEABLE_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
#: The final statuses RFC 9110 defines: the ones whose caching rules this cache knows,
#: which ``must-understand`` (RFC 9111 §5.2.2.3) lets it store.
UNDERSTOOD_STATUSES = frozenset(
    {*range(200, 207), *range(300, 306), 307, 308, *range(400, 418), 421, 422, 426,
     *range(500, 506)}
)  # fmt: skip
#: Server errors after which a stale response may stand in (RFC 5861 §4).
STALE_IF_ERROR_STATUSES = frozenset({500, 502, 503, 504})
_STALE_IF_ERROR_CODES = frozenset({ErrorCode.CIRCUIT_OPEN, ErrorCode.RETRIES_EXHAUSTED})
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: Fields a 304 never replaces: they describe the stored representation's bytes (or the
#: validator the 304 was checked against), which a 304 does not change.
_NOT_FRESHENED = _HOP_BY_HOP | {
    "content-length",
    "content-encoding",
    "content-md5",
    "content-range",
    "etag",
}


@dataclass(frozen=True, slots=True)
class HttpCachePolicy:
    """How the cache behaves where the RFC leaves a choice.

    Attributes:
        shared: a shared (gateway) cache: honours ``s-maxage``, never stores ``private``,
            stores responses to requests with ``Authorization`` only when allowed.
        heuristic_fraction: heuristic freshness is this fraction of the time since
            ``Last-Modified`` (RFC 9111 §4.2.2 suggests 10 %).
        heuristic_max: ... capped at this many seconds (one day).
        stale_if_error: seconds past expiry a stored response may answer a failed
            downstream call when the response did not say (RFC 5861); 0 = only when it did.
        stale_while_revalidate: the same default for serving stale during a background
            revalidation.
        keep: seconds a stale response with a validator is kept for conditional requests.
        max_variants: stored variants per URL (``Vary``); the oldest go first.
        targeted: lower-case names of targeted cache-control fields (RFC 9213) that a
            shared cache obeys instead of ``Cache-Control`` when present, in order.
        surrogate_device: this cache's device token in ``Surrogate-Control`` (Edge
            Architecture 1.0): a directive targeted ``;<token>`` applies to it, one
            targeted at another device does not (None: only untargeted ones apply).
    """

    shared: bool = False
    heuristic_fraction: float = 0.1
    heuristic_max: float = 86_400.0
    stale_if_error: float = 0.0
    stale_while_revalidate: float = 0.0
    keep: float = 86_400.0
    max_variants: int = 8
    targeted: tuple[str, ...] = ()
    surrogate_device: str | None = None

    def __post_init__(self) -> None:
        for name in (
            "heuristic_fraction",
            "heuristic_max",
            "stale_if_error",
            "stale_while_revalidate",
            "keep",
        ):
            value = getattr(self, name)
            if not (is_real(value) and value >= 0):  # NaN fails the comparison
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        to_count(self.max_variants, "max_variants")


# -- decisions ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UseStored:
    """Answer with ``stored`` (``stale``: beyond its freshness, as the request allowed)."""

    stored: StoredResponse
    age: float
    stale: bool = False


@dataclass(frozen=True, slots=True)
class ServeStaleAndRevalidate:
    """Answer with stale ``stored`` now and revalidate it in the background (RFC 5861 §3)."""

    stored: StoredResponse
    age: float
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Revalidate:
    """Send the request with these conditional ``headers``; a 304 freshens ``stored``."""

    stored: StoredResponse
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Forward:
    """A miss: send the request as is. ``stale`` may still answer if the call fails."""

    stale: StoredResponse | None = None


@dataclass(frozen=True, slots=True)
class GatewayTimeout:
    """``only-if-cached`` and nothing usable is stored: answer 504 without sending."""


Lookup: TypeAlias = UseStored | ServeStaleAndRevalidate | Revalidate | Forward | GatewayTimeout


# -- keys ---------------------------------------------------------------------------------
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")


def _unescape_unreserved(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _normal_escapes(text: str) -> str:
    """``text`` with escapes in normal form (RFC 3986 §6.2.2.1-2, RFC 9110 §4.2.3).

    An escaped unreserved character is the character (``%7e`` -> ``~``), every other
    escape has upper-case hex (``%2f`` -> ``%2F``, still not ``/``): one spelling per
    equivalent URL, so they share one stored response.
    """
    return _ESCAPE.sub(_unescape_unreserved, text) if "%" in text else text


def _authority(url: str) -> tuple[str, str, str]:
    """``(scheme, host[:port], userinfo)``: scheme and host lower-cased, one spelling of the
    host (:func:`~flext_api._models.canonical_host`: no default port, no trailing dot).

    The userinfo keeps its case: ``u:P@`` and ``u:p@`` are different credentials.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    userinfo, _, hostport = parts.netloc.rpartition("@")
    return scheme, canonical_host(scheme, hostport.lower()), userinfo


def _origin(url: str) -> tuple[str, str]:
    """``(scheme, host[:port])`` of ``url``: what "same origin" compares (RFC 9110 §4.3.1)."""
    scheme, host, _ = _authority(url)
    return scheme, host


def cache_key(method: str, url: str) -> str:
    """``"GET https://host/path?q"``: one key per equivalent URL (RFC 9110 §4.2.3).

    Scheme and host lower-cased, the default port and the fragment dropped, escapes in
    normal form. Credentials in the URL are a digest in the key (never the secret),
    case kept: the requests of two users never share a key.
    """
    parts = urlsplit(url)
    scheme, host, userinfo = _authority(url)
    path = _normal_escapes(parts.path) or "/"
    normal = urlunsplit((scheme, host, path, _normal_escapes(parts.query), ""))
    key = f"{method.upper()} {normal}"
    if userinfo:
        digest = hashlib.sha256(_normal_escapes(userinfo).encode("utf-8", "surrogatepass"))
        key += f" userinfo:{digest.hexdigest()[:32]}"
    return key


# -- freshness (RFC 9111 §4.2) -----------------------------------------------------------
def response_cache_control(headers: Headers, policy: HttpCachePolicy) -> CacheControl:
    """The response directives this cache obeys.

    A shared cache with ``targeted`` fields (RFC 9213: ``CDN-Cache-Control``, or the older
    ``Surrogate-Control``) obeys the first of them present instead of ``Cache-Control``.
    """
    for name in policy.targeted:
        values = headers.get_list(name)
        if name == "surrogate-control" and values:
            values = _for_device(values, policy.surrogate_device)
        if values:
            return parse_cache_control(values)
    return parse_cache_control(headers.get_list("cache-control"))


def _for_device(values: Sequence[str], device: str | None) -> list[str]:
    """The ``Surrogate-Control`` directives that apply to ``device``: those targeted at it
    (``max-age=60;flext``, first, so they win over the others) and the untargeted ones;
    a directive targeted at another device is left out."""
    mine: list[str] = []
    everyone: list[str] = []
    for value in values:
        for directive in value.split(","):
            body, sep, target = directive.rpartition(";")
            if not sep:
                everyone.append(directive)
            elif device is not None and target.strip().lower() == device:
                mine.append(body)
    kept = mine + everyone
    return [", ".join(kept)] if any(d.strip() for d in kept) else []


def _response_cc(stored: StoredResponse, policy: HttpCachePolicy) -> CacheControl:
    return response_cache_control(stored.header_map(), policy)


def request_cache_control(headers: Headers) -> CacheControl:
    """The request's directives; a lone ``Pragma: no-cache`` counts as ``no-cache`` (§5.4)."""
    cc = parse_cache_control(headers.get_list("cache-control"))
    if "cache-control" not in headers and "no-cache" in headers.get("pragma", "").lower():
        cc = replace(cc, no_cache=True)
    return cc


def freshness_lifetime(stored: StoredResponse, policy: HttpCachePolicy) -> float:
    """Seconds the response is fresh: s-maxage (shared), max-age, Expires - Date, or heuristic."""
    headers = stored.header_map()
    cc = response_cache_control(headers, policy)
    if policy.shared and cc.s_maxage is not None:
        return float(cc.s_maxage)
    if cc.max_age is not None:
        return float(cc.max_age)
    date = parse_http_date(headers.get("date"))
    if date is None:
        date = stored.response_time
    if "expires" in headers:
        expires = parse_http_date(headers["expires"])
        # An invalid Expires (e.g. "0") means "already expired" (§5.3).
        return max(0.0, expires - date) if expires is not None else 0.0
    last_modified = parse_http_date(headers.get("last-modified"))
    if last_modified is not None:
        return min(
            policy.heuristic_max, max(0.0, (date - last_modified) * policy.heuristic_fraction)
        )
    return 0.0


def current_age(stored: StoredResponse, now: float) -> float:
    """The response's age now, per the §4.2.3 calculation."""
    headers = stored.header_map()
    date = parse_http_date(headers.get("date"))
    apparent_age = max(0.0, stored.response_time - date) if date is not None else 0.0
    ages = headers.get_list("age")
    age_value = delta_seconds(ages[0].strip()) if len(ages) == 1 else None
    if not ages:
        age_value = 0
    elif age_value is None:
        # A list, a sign, a fraction, a parameter: the age is unknown, so the response
        # is treated as stale rather than as brand new (http-cache-tests age-parse-*).
        return math.inf
    response_delay = max(0.0, stored.response_time - stored.request_time)
    corrected_initial_age = max(apparent_age, age_value + response_delay)
    return corrected_initial_age + max(0.0, now - stored.response_time)


def _conditional_headers(stored: StoredResponse) -> tuple[tuple[str, str], ...]:
    headers = stored.header_map()
    out: list[tuple[str, str]] = []
    if "etag" in headers:
        out.append(("If-None-Match", headers["etag"]))
    if "last-modified" in headers:
        out.append(("If-Modified-Since", headers["last-modified"]))
    return tuple(out)


def _vary_matches(stored: StoredResponse, headers: Headers) -> bool:
    return all(
        name != "*" and normalize_field(headers.get_list(name)) == value
        for name, value in stored.vary
    )


# -- the lookup decision -------------------------------------------------------------------
def on_request(
    headers: Headers, variants: Sequence[StoredResponse], *, now: float, policy: HttpCachePolicy
) -> Lookup:
    """What to do with a GET/HEAD request given the stored variants of its URL."""
    req_cc = request_cache_control(headers)
    matching = [v for v in variants if _vary_matches(v, headers)]
    if not matching:
        return GatewayTimeout() if req_cc.only_if_cached else Forward()
    stored = max(matching, key=lambda v: v.response_time)
    res_cc = _response_cc(stored, policy)
    age = current_age(stored, now)
    lifetime = freshness_lifetime(stored, policy)
    staleness = age - lifetime  # fresh while < 0
    must_validate = req_cc.no_cache or res_cc.no_cache
    if (
        staleness < 0
        and not must_validate
        and (req_cc.max_age is None or age <= req_cc.max_age)
        and (req_cc.min_fresh is None or -staleness >= req_cc.min_fresh)
    ):
        return UseStored(stored, age)
    conditional = _conditional_headers(stored)
    revalidation_required = res_cc.must_revalidate or (
        policy.shared and (res_cc.proxy_revalidate or res_cc.s_maxage is not None)
    )
    if staleness >= 0 and not must_validate and not revalidation_required:
        if req_cc.max_stale is not None and staleness <= req_cc.max_stale:
            return UseStored(stored, age, stale=True)
        window = max(res_cc.stale_while_revalidate or 0, policy.stale_while_revalidate)
        if staleness < window:
            return ServeStaleAndRevalidate(stored, age, conditional)
    if req_cc.only_if_cached:
        return GatewayTimeout()
    if conditional:
        return Revalidate(stored, conditional)
    return Forward(stored)


# -- failures (RFC 5861 §4) ------------------------------------------------------------------
def triggers_stale_if_error(code: ErrorCode | None, status: int | None) -> bool:
    """True for the failures a stale response may stand in for.

    A transport error, an open circuit, exhausted retries, or a 500/502/503/504.
    """
    if code is None:
        return status in STALE_IF_ERROR_STATUSES
    if code is ErrorCode.HTTP_STATUS:
        return status in STALE_IF_ERROR_STATUSES
    return code in _STALE_IF_ERROR_CODES or code.is_transport


def stale_on_error_allowed(
    stored: StoredResponse, headers: Headers, *, now: float, policy: HttpCachePolicy
) -> bool:
    """May ``stored`` answer a request whose downstream call failed?"""
    res_cc = _response_cc(stored, policy)
    # s-maxage carries proxy-revalidate's meaning for a shared cache (§5.2.2.10).
    shared_revalidate = policy.shared and (res_cc.proxy_revalidate or res_cc.s_maxage is not None)
    if res_cc.no_cache or res_cc.must_revalidate or shared_revalidate:
        return False
    req_cc = request_cache_control(headers)
    window = max(res_cc.stale_if_error or 0, req_cc.stale_if_error or 0, policy.stale_if_error)
    staleness = current_age(stored, now) - freshness_lifetime(stored, policy)
    return window > 0 and staleness <= window


# -- storing (RFC 9111 §3) -------------------------------------------------------------------
def not_storable_reason(
    request: HttpRequest, response: HttpResponse, *, policy: HttpCachePolicy
) -> str | None:
    """Why ``response`` must not be stored, or None when it may be."""
    if request.method.upper() not in CACHEABLE_METHODS:
        return f"method {request.method}"
    if not _body_in_memory(response):
        return "streamed response"
    req_cc = request_cache_control(request.headers)
    res_cc = response_cache_control(response.headers, policy)
    if response.status_code not in CACHEABLE_STATUSES and not _explicitly_fresh(
        response, res_cc, policy
    ):
        return f"status {response.status_code}"
    if res_cc.must_understand:
        # Stored only by a cache that knows the status's rules; one that does may then
        # set the response's no-store aside (§5.2.2.3), not the request's.
        if response.status_code not in UNDERSTOOD_STATUSES:
            return "must-understand"
        if req_cc.no_store:
            return "no-store"
    elif req_cc.no_store or res_cc.no_store:
        return "no-store"
    if policy.shared and res_cc.private:
        return "private"
    if (
        policy.shared
        and "authorization" in request.headers
        and not (res_cc.public or res_cc.must_revalidate or res_cc.s_maxage is not None)
    ):
        return "authorization"
    if "*" in parse_vary(response.headers.get_list("vary")):
        return "vary *"
    return None


def _explicitly_fresh(response: HttpResponse, cc: CacheControl, policy: HttpCachePolicy) -> bool:
    """A final status other than 206/304 with explicit freshness may be stored (§3)."""
    if response.status_code < 200 or response.status_code in (206, 304):
        return False
    return (
        cc.max_age is not None
        or (policy.shared and cc.s_maxage is not None)
        or "expires" in response.headers
        or (cc.public and response.status_code in CACHEABLE_STATUSES)
    )


def _body_in_memory(response: HttpResponse) -> bool:
    """True when the whole body was read (a streamed or closed-unread body never is)."""
    if not response.is_stream_consumed:
        return False
    try:
        response.content  # noqa: B018 - raises for a stream closed before it was read
    except FlextApiError:
        return False
    return True


def _storable_headers(headers: Headers) -> list[tuple[str, str]]:
    named = {
        name.strip().lower()
        for value in headers.get_list("connection")
        for name in value.split(",")
    }
    drop = _HOP_BY_HOP | named
    return [(k, v) for k, v in headers.multi_items() if k.lower() not in drop]


def make_stored(
    request: HttpRequest,
    response: HttpResponse,
    *,
    request_time: float,
    response_time: float,
) -> StoredResponse:
    """The record to keep for ``response`` (hop-by-hop fields dropped, Vary values taken)."""
    vary = tuple(
        (name, normalize_field(request.headers.get_list(name)))
        for name in parse_vary(response.headers.get_list("vary"))
    )
    return StoredResponse(
        status=response.status_code,
        headers=tuple(_storable_headers(response.headers)),
        body=response.content,
        url=response.url or request.url,
        request_time=request_time,
        response_time=response_time,
        vary=vary,
        reason=response.reason,
        http_version=response.http_version,
    )


def storage_ttl(stored: StoredResponse, *, now: float, policy: HttpCachePolicy) -> float:
    """Seconds to keep ``stored``: freshness left plus stale windows (or ``keep`` if validatable).

    0 means there is no point storing it (stale, no validator, no stale window).
    """
    res_cc = _response_cc(stored, policy)
    remaining = max(0.0, freshness_lifetime(stored, policy) - current_age(stored, now))
    stale_windows = max(
        res_cc.stale_while_revalidate or 0,
        res_cc.stale_if_error or 0,
        policy.stale_while_revalidate,
        policy.stale_if_error,
    )
    keep = policy.keep if _conditional_headers(stored) else 0.0
    return remaining + max(stale_windows, keep)


def identified_by_304(stored: StoredResponse, not_modified: Headers) -> bool:
    """Does this 304 confirm ``stored``, the response whose validators were sent (§4.3.4)?

    The 304's ``ETag`` decides when it has one: a strong tag must equal ``stored``'s
    strong tag (strong comparison), a weak one its tag under weak comparison (RFC 9110
    §8.8.3.2). Without an ``ETag``, its ``Last-Modified`` must equal ``stored``'s. A
    304 with neither confirms ``stored``: the request carried only ``stored``'s
    validators, so there is no other response it can be about (hishel reads the rule
    the same way). A 304 this returns False for must not freshen ``stored``: its fields
    describe some other representation.
    """
    headers = stored.header_map()
    etag = not_modified.get("etag", "").strip()
    if etag:
        my_etag = headers.get("etag", "").strip()
        if not etag.startswith("W/"):
            return etag == my_etag
        return bool(my_etag) and etag.removeprefix("W/") == my_etag.removeprefix("W/")
    modified = not_modified.get("last-modified", "").strip()
    if modified:
        my_modified = headers.get("last-modified", "").strip()
        if not my_modified:
            return False
        when, my_when = parse_http_date(modified), parse_http_date(my_modified)
        if when is not None and my_when is not None:
            return when == my_when
        return modified == my_modified
    return True


def contradicted_by_head(stored: StoredResponse, request_headers: Headers, head: Headers) -> bool:
    """Does a 200 to HEAD describe another representation than stored GET ``stored``?

    RFC 9111 §4.3.5: a HEAD answer updates or invalidates the stored GET responses the
    request could have selected. A different ``ETag`` (or none where one was stored), a
    different ``Last-Modified`` (compared as a date) or ``Content-Length`` says the
    stored body is no longer the one the origin sends: it must not be served again.
    """
    if not _vary_matches(stored, request_headers):
        return False
    mine = stored.header_map()
    etag = head.get("etag", "").strip()
    if etag and etag != mine.get("etag", "").strip():
        return True
    modified = head.get("last-modified", "").strip()
    if modified:
        my_modified = mine.get("last-modified", "").strip()
        when, my_when = parse_http_date(modified), parse_http_date(my_modified)
        dated = when is not None and my_when is not None
        if not (when == my_when if dated else modified == my_modified):
            return True
    length = head.get("content-length", "").strip()
    my_length = mine.get("content-length", "").strip()
    return bool(length and my_length) and length != my_length


def freshen(
    stored: StoredResponse, not_modified: Headers, *, request_time: float, response_time: float
) -> StoredResponse:
    """``stored`` updated by a 304 (§4.3.4): its fields replace the stored ones, times renewed.

    A 304 without ``Date`` is dated when it was received (RFC 9110 §6.6.1); keeping the
    stored ``Date`` would age the response by the time since the original answer, so it
    would be stale again at once and revalidated on every use.
    """
    updates = [
        (k, v) for k, v in _storable_headers(not_modified) if k.lower() not in _NOT_FRESHENED
    ]
    if "date" not in not_modified:
        updates.append(("Date", formatdate(response_time, usegmt=True)))
    replaced = {k.lower() for k, _ in updates}
    merged = [(k, v) for k, v in stored.headers if k.lower() not in replaced] + updates
    return replace(
        stored, headers=tuple(merged), request_time=request_time, response_time=response_time
    )


# -- invalidation (RFC 9111 §4.4) ------------------------------------------------------------
def invalidation_targets(method: str, url: str, status: int, headers: Headers) -> list[str]:
    """URLs whose stored responses an unsafe request's non-error answer makes invalid.

    The target URL, plus ``Location`` and ``Content-Location`` when on the same origin.
    """
    if method.upper() in SAFE_METHODS or not 200 <= status < 400:
        return []
    targets = [url]
    for name in ("location", "content-location"):
        value = headers.get(name)
        if value:
            absolute = urljoin(url, value.strip())
            if _origin(absolute) == _origin(url) and absolute not in targets:
                targets.append(absolute)
    return targets
