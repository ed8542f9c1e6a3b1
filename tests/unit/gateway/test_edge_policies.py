"""Edge policy pieces without sockets: config checks, series, transforms, the hot memo."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import MutableMapping
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from flext_api.cache._http_spec import HttpCachePolicy
from flext_api.cache._http_store import StoredResponse
from flext_api.gateway import GatewayConfig, TransformConfig, hash_password
from flext_api.gateway._cache import CacheStats
from flext_api.gateway._cache_hot import HotMemo, plain_request
from flext_api.gateway._series import RouteSeries, Series
from flext_api.gateway._transform import CompiledTransform, Unfilterable


def config(**extra: Any) -> dict[str, Any]:
    """A minimal config whose route takes ``route`` keys; ``edge`` at the top level."""
    route = extra.pop("route", {})
    return {
        "clusters": [{"name": "svc", "instances": [{"url": "http://127.0.0.1:9"}]}],
        "routes": [{"name": "r", "match": {"path_prefix": "/"}, "cluster": "svc", **route}],
        **extra,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (config(route={"auth": {"methods": ["basic"]}}), "no such credential source"),
        (config(route={"rate_limits": [{"limit": "1/second", "store": "redis"}]}), "redis_url"),
        (config(edge={"defaults": {"rate_limits": [{"limit": "1/second", "store": "redis"}]}}),
         "redis"),
        (config(edge={"cache": {"store": "redis"}}), "redis_url"),
        (config(route={"aggregate": {"backends": [{"key": "a", "cluster": "nope",
                                                   "path": "/x"}]}}), "not defined"),
        (config(route={"rate_limits": [{"limit": "often"}]}), "invalid rate limit"),
        (config(route={"rate_limits": [{"limit": "1/second", "key": "header"}]}), "header"),
        (config(edge={"auth": {"basic": {"ops": "plain-text"}}}), "never plain text"),
        (config(edge={"auth": {"basic": {"o:ps": hash_password("x", iterations=1000)}}}), "':'"),
        (config(edge={"auth": {"identity_headers": {"subject": "X-Sub"}}}), "lower case"),
        (config(route={"aggregate": {"backends": [{"key": "a", "cluster": "svc",
                                                   "path": "x"}]}}), "must start with"),
    ],
    ids=["auth-source", "route-redis", "default-redis", "cache-redis", "aggregate-cluster",
         "bad-limit", "header-key", "plain-password", "colon-user", "upper-identity",
         "relative-backend"],
)  # fmt: skip
def test_invalid_edge_config_is_refused(data: dict[str, Any], message: str) -> None:
    """Each edge misconfiguration is a validation error that says what is wrong."""
    with pytest.raises(ValidationError, match=message):
        GatewayConfig.model_validate(data)


def test_series_points_and_totals() -> None:
    """Per-second buckets give req/s, error ratio and p99; old buckets are dropped."""
    series = Series(horizon=10)
    series.record(100.2, 200, 0.010)
    series.record(100.7, 503, 0.030)
    series.record(101.1, 200, 0.020)
    series.record(120.0, 200, 0.001)  # pushes 100 and 101 out of the horizon
    points = series.points(121.0, 3)
    assert [p["rps"] for p in points] == [0, 1, 0]
    assert series.totals(121.0, 5) == {"rps": 0.2, "error_ratio": 0.0, "p99": 0.001}
    fresh = RouteSeries()
    fresh.record("r", 5.0, 500, 0.5)
    assert fresh.routes["r"].totals(5.0, 1)["error_ratio"] == 1.0


def test_empty_series_has_no_p99() -> None:
    """No requests: zero rate, zero error ratio, no p99."""
    assert Series().totals(50.0, 60) == {"rps": 0.0, "error_ratio": 0.0, "p99": None}


def test_cache_stats_hit_ratio() -> None:
    """Hits, stale and revalidated answers over everything looked up."""
    stats = CacheStats()
    assert stats.hit_ratio == 0.0
    for outcome in ("hit", "hit", "stale", "miss", "bypass"):
        stats.add(outcome)
    assert stats.hit_ratio == 0.75


async def _run_filter(
    transform: CompiledTransform,
    content_type: bytes,
    chunks: list[bytes],
    *,
    extra: tuple[tuple[bytes, bytes], ...] = (),
    head: bool = False,
    status: int = 200,
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    filtered = transform.response_send(send, head=head)
    headers = [(b"content-type", content_type), *extra]
    await filtered({"type": "http.response.start", "status": status, "headers": headers})
    for i, chunk in enumerate(chunks):
        more = i < len(chunks) - 1
        await filtered({"type": "http.response.body", "body": chunk, "more_body": more})
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return list(sent[0]["headers"]), body


async def test_json_filter_across_chunks() -> None:
    """A JSON object split over chunks is reassembled, filtered and re-measured."""
    transform = CompiledTransform(TransformConfig(response_deny=("b",)))
    headers, body = await _run_filter(transform, b"application/json", [b'{"a": 1,', b' "b": 2}'])
    assert orjson.loads(body) == {"a": 1}
    assert (b"content-length", b"7") in headers  # {"a":1}


_UPSTREAM_VALIDATORS = (
    (b"content-length", b"8"),
    (b"etag", b'"v1"'),
    (b"accept-ranges", b"bytes"),
)


async def test_a_filtered_body_is_a_new_representation() -> None:
    """Its own length, no Accept-Ranges, and the upstream's strong ETag made weak: a
    range or If-Match against the unfiltered body must not apply to it."""
    transform = CompiledTransform(TransformConfig(response_deny=("b",)))
    headers, body = await _run_filter(
        transform, b"application/json", [b'{"b": 2}'], extra=_UPSTREAM_VALIDATORS
    )
    assert body == b"{}"
    assert (b"content-length", b"2") in headers
    assert (b"etag", b'W/"v1"') in headers
    assert not [n for n, _ in headers if n == b"accept-ranges"]
    assert [n for n, _ in headers].count(b"content-length") == 1


async def test_head_of_a_filtered_route_does_not_state_the_unfiltered_length() -> None:
    """HEAD has no body to filter: the upstream's Content-Length is the unfiltered
    body's, so it is dropped (it was passed on, and a GET then sent fewer bytes)."""
    transform = CompiledTransform(TransformConfig(response_deny=("b",)))
    headers, body = await _run_filter(
        transform, b"application/json", [b""], extra=_UPSTREAM_VALIDATORS, head=True
    )
    assert body == b""
    names = [n for n, _ in headers]
    assert b"content-length" not in names and b"accept-ranges" not in names
    assert (b"etag", b'W/"v1"') in headers


async def test_a_304_on_a_filtered_route_carries_the_weak_etag() -> None:
    transform = CompiledTransform(TransformConfig(response_deny=("b",)))
    headers, _ = await _run_filter(
        transform, b"application/json", [b""], extra=((b"etag", b'"v1"'),), status=304
    )
    assert (b"etag", b'W/"v1"') in headers


def test_a_filtering_route_asks_for_the_whole_plain_body() -> None:
    """Range and If-Range are dropped with Accept-Encoding: a slice of the unfiltered
    body is not JSON the filter can read, so it passed through with the denied fields."""
    transform = CompiledTransform(TransformConfig(response_deny=("secret",)))
    scope = {
        "headers": [
            (b"range", b"bytes=0-40"),
            (b"if-range", b'"v1"'),
            (b"accept-encoding", b"gzip"),
            (b"accept", b"application/json"),
        ],
        "query_string": b"",
    }
    assert transform.request(scope)["headers"] == [(b"accept", b"application/json")]
    plain = CompiledTransform(TransformConfig(request_headers_remove=("x-debug",)))
    assert (b"range", b"bytes=0-40") in plain.request(scope)["headers"]


@pytest.mark.parametrize(
    ("content_type", "chunks", "rules"),
    [
        (b"text/plain", [b'{"b": 2}'], {}),
        (b"application/json", [b"[1, 2]"], {}),
        (b"application/json", [b" \r\n"], {}),
        (b"application/json", [b""], {"response_allow": ("a",)}),
    ],
    ids=["not-json", "array-under-deny", "blank", "empty-under-allow"],
)
async def test_json_filter_passes_what_has_no_member_to_drop(
    content_type: bytes, chunks: list[bytes], rules: dict[str, Any]
) -> None:
    """Other types, a non-object under a deny list and an empty body pass unchanged."""
    transform = CompiledTransform(TransformConfig(response_deny=("b",), **rules))
    _, body = await _run_filter(transform, content_type, chunks)
    assert body == b"".join(chunks)


_UNREADABLE = [
    (b"application/json", [b"{not json"], (), {}),
    (b"application/json", [b'{"b": "', b"x" * 64, b'"}'], (), {}),
    (b"application/json", [b'[{"b": 2}]'], (), {"response_allow": ("a",)}),
    (b"application/json", [b'{"b": 2}'], ((b"content-encoding", b"br"),), {}),
    (b"application/json", [b'{"b": 2}'], ((b"content-encoding", b"gzip"),), {}),
    (b"application/json", [gzip.compress(b'{"b": 2}')[:-4]], ((b"content-encoding", b"gzip"),),
     {}),
    (b"application/json", [gzip.compress(b'{"b": "' + b"x" * 64 + b'"}')],
     ((b"content-encoding", b"gzip"),), {}),
    (b"application/json", [b'{"b": 2}'], ((b"content-encoding", b"gzip, deflate"),), {}),
    (b"application/problem+json", [b'{"b": 2'], (), {}),
]  # fmt: skip
_UNREADABLE_IDS = [
    "invalid", "too-big", "array-under-allow", "brotli", "not-gzip", "cut-gzip",
    "gzip-bomb", "two-codings", "invalid-plus-json",
]  # fmt: skip


@pytest.mark.parametrize(("content_type", "chunks", "extra", "rules"), _UNREADABLE,
                         ids=_UNREADABLE_IDS)  # fmt: skip
async def test_json_filter_refuses_what_it_cannot_read(
    content_type: bytes,
    chunks: list[bytes],
    extra: tuple[tuple[bytes, bytes], ...],
    rules: dict[str, Any],
) -> None:
    """The filter fails closed: it raises (the gateway answers 502) and sends nothing;
    such bodies went out unfiltered, the denied member in them."""
    transform = CompiledTransform(TransformConfig(response_deny=("b",), max_json_bytes=32, **rules))
    sent: list[Any] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    filtered = transform.response_send(send)
    headers = [(b"content-type", content_type), *extra]

    async def respond() -> None:
        await filtered({"type": "http.response.start", "status": 200, "headers": headers})
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await filtered({"type": "http.response.body", "body": chunk, "more_body": more})

    with pytest.raises(Unfilterable):
        await respond()
    assert sent == []


@pytest.mark.parametrize(("content_type", "chunks", "extra", "rules"), _UNREADABLE,
                         ids=_UNREADABLE_IDS)  # fmt: skip
async def test_on_unreadable_pass_sends_it_as_it_came(
    content_type: bytes,
    chunks: list[bytes],
    extra: tuple[tuple[bytes, bytes], ...],
    rules: dict[str, Any],
) -> None:
    """The opt-out: what the filter cannot read is sent unchanged, headers and all."""
    config = TransformConfig(response_deny=("b",), max_json_bytes=32, on_unreadable="pass", **rules)
    headers, body = await _run_filter(CompiledTransform(config), content_type, chunks,
                                      extra=extra)  # fmt: skip
    assert body == b"".join(chunks)
    assert headers == [(b"content-type", content_type), *extra]


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [
        (b"gzip", gzip.compress(b'{"a": 1, "b": 2}')),
        (b"x-gzip", gzip.compress(b'{"a": 1, "b": 2}')),
        (b"deflate", zlib.compress(b'{"a": 1, "b": 2}')),
        (b"Deflate", zlib.compress(b'{"a": 1, "b": 2}')[2:-4]),  # raw deflate, as IIS sends
    ],
    ids=["gzip", "x-gzip", "deflate", "raw-deflate"],
)
async def test_json_filter_decodes_gzip_and_deflate(coding: bytes, encoded: bytes) -> None:
    """An encoded body is decoded, filtered and sent plain, with its own length."""
    transform = CompiledTransform(TransformConfig(response_deny=("b",)))
    extra = ((b"content-encoding", coding), (b"vary", b"accept-encoding"))
    headers, body = await _run_filter(transform, b"application/json", [encoded], extra=extra)
    assert body == b'{"a":1}'
    assert (b"content-length", b"7") in headers and (b"vary", b"accept-encoding") in headers
    assert b"content-encoding" not in [n for n, _ in headers]


async def test_json_filter_acts_on_plus_json_types() -> None:
    """``application/problem+json`` and other ``+json`` types are JSON (RFC 6839)."""
    transform = CompiledTransform(TransformConfig(response_deny=("b",)))
    content_type = b"application/vnd.api+json; charset=utf-8"
    _, body = await _run_filter(transform, content_type, [b'{"a": 1, "b": 2}'])
    assert body == b'{"a":1}'


def _stored(
    *headers: tuple[str, str], vary: tuple[tuple[str, str | None], ...] = ()
) -> StoredResponse:
    return StoredResponse(200, headers, b"body", "http://x/", 1000.0, 1000.0, vary=vary)


def test_hot_memo_prepares_single_variants_only() -> None:
    """One variant without Vary is memoized with its lifetime; Vary or several are not."""
    memo = HotMemo(size=2)
    policy = HttpCachePolicy(shared=True)
    memo.put("a", [_stored(("Cache-Control", "s-maxage=30, max-age=5"))], policy)
    memo.put("v", [_stored(vary=(("accept", "x"),))], policy)
    prepared = memo.get("a")
    assert prepared is not None and prepared.lifetime == 30.0
    assert prepared.age(1010.0) == 10.0
    assert (b"content-length", b"4") in prepared.headers
    assert memo.get("v") is None


def test_hot_memo_is_bounded_and_droppable() -> None:
    """The oldest entry goes past the size; drop(key) and drop() forget."""
    memo = HotMemo(size=2)
    policy = HttpCachePolicy(shared=True)
    for key in ("a", "b", "c"):
        memo.put(key, [_stored()], policy)
    assert memo.get("a") is None and memo.get("b") is not None
    memo.drop("b")
    assert memo.get("b") is None and memo.get("c") is not None
    memo.drop()
    assert memo.get("c") is None


def test_plain_request() -> None:
    """Directives, validators or a range make a request take the full RFC path."""
    assert plain_request({"headers": [(b"host", b"x")]})
    assert not plain_request({"headers": [(b"cache-control", b"no-cache")]})
    assert not plain_request({"headers": [(b"if-none-match", b'"x"')]})
