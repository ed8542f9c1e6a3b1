"""More edge behaviour through a real gateway: cache corners, admin pages, auth corners."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Callable, MutableMapping
from typing import Any

import orjson
import pytest
from yarl import URL

from flext_api.gateway import GatewayConfig
from tests.integration.gateway.conftest import LiveGateway
from tests.integration.gateway.edge_origin import EdgeOrigin
from tests.integration.gateway.edge_support import edge_config, fetch, origin

pytestmark = pytest.mark.integration

__all__ = ["origin"]

Run = Callable[[dict[str, Any]], LiveGateway]


def admin_call(
    gw: LiveGateway, method: str, path: str, query: bytes = b"", token: bool = True
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Call the admin app in process: (status, headers, body)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    headers = [(b"authorization", b"Bearer t0ken")] if token else []
    scope = {"type": "http", "method": method, "path": path, "query_string": query,
             "headers": headers}  # fmt: skip
    gw.call(gw.admin(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], dict(sent[0]["headers"]), body


async def test_head_is_answered_from_a_stored_get(origin: EdgeOrigin, run_gateway: Run) -> None:
    """A HEAD after a GET is answered from the entry, with no body."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    await fetch(gw.url + "/c/h")
    status, headers, body = await fetch(gw.url + "/c/h", method="HEAD")
    assert (status, body, origin.hits["h"]) == (200, b"", 1)
    assert "age" in headers


async def test_range_requests_bypass_the_cache(origin: EdgeOrigin, run_gateway: Run) -> None:
    """A request with Range goes upstream and is not answered from the store."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    await fetch(gw.url + "/c/r")
    await fetch(gw.url + "/c/r", headers={"Range": "bytes=0-1"})
    assert origin.hits["r"] == 2


async def test_only_if_cached_miss_is_504(origin: EdgeOrigin, run_gateway: Run) -> None:
    """only-if-cached with nothing stored: 504 without reaching the origin."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    status, _, _ = await fetch(gw.url + "/c/o", headers={"Cache-Control": "only-if-cached"})
    assert (status, origin.hits["o"]) == (504, 0)


async def test_client_validator_gets_304_from_the_entry(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """A client's matching If-None-Match is answered 304 from a fresh entry."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    await fetch(gw.url + "/c/v?etag=e1")
    status, _, body = await fetch(gw.url + "/c/v?etag=e1", headers={"If-None-Match": '"e1"'})
    since = {"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}
    other = await fetch(gw.url + "/c/v?etag=e1", headers=since)
    assert (status, body, other[0], origin.hits["v"]) == (304, b"", 200, 1)


async def test_stale_while_revalidate_refreshes_in_background(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """A stale entry within stale-while-revalidate answers at once; one refresh follows."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    url = gw.url + "/c/swr?cc=max-age=0,stale-while-revalidate=60&etag=s"
    first = await fetch(url)
    second = await fetch(url)
    for _ in range(500):
        if origin.hits["swr"] >= 2:
            break
        await asyncio.sleep(0.01)
    assert (second[2], origin.hits["swr"]) == (first[2], 2)


async def test_stale_if_error_covers_an_origin_503(origin: EdgeOrigin, run_gateway: Run) -> None:
    """An origin 503 is replaced by the stale entry when stale-if-error allows it."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    url = gw.url + "/c/e?cc=max-age=0,stale-if-error=60"
    first = await fetch(url)
    origin.fail_status = 503
    second = await fetch(url)
    uncovered = await fetch(gw.url + "/c/e2")
    assert (second[0], second[2]) == (200, first[2])
    assert origin.hits["e"] > 1  # the origin was asked, and failed
    assert uncovered[0] == 503


async def test_dashboard_endpoints(origin: EdgeOrigin, run_gateway: Run) -> None:
    """The page and assets are public; data needs the token; unknown paths are 404."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    await fetch(gw.url + "/c/d")
    page = admin_call(gw, "GET", "/dashboard", token=False)
    script = admin_call(gw, "GET", "/dashboard/app.js", token=False)
    refused = admin_call(gw, "GET", "/dashboard/data", token=False)
    data = admin_call(gw, "GET", "/dashboard/data")
    missing = admin_call(gw, "GET", "/dashboard/nothing")
    snapshot = orjson.loads(data[2])
    assert (page[0], script[0], refused[0], data[0], missing[0]) == (200, 200, 401, 200, 404)
    assert page[1][b"content-type"].startswith(b"text/html")
    assert snapshot["routes"][0]["name"] == "all" and snapshot["cache"]["counts"]["miss"] == 1


async def test_dashboard_events_stream_until_disconnect(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """/dashboard/events sends a snapshot, then ends when the client is gone."""
    gw = run_gateway(edge_config(origin.url))
    status, headers, body = admin_call(gw, "GET", "/dashboard/events", b"interval=0.2")
    assert (status, headers[b"content-type"]) == (200, b"text/event-stream")
    assert orjson.loads(body.split(b"\n\n")[0].removeprefix(b"data: "))["status"] == "serving"


async def test_purge_everything_and_purge_without_cache(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """Purge without url drops all entries; a gateway without cached routes answers 404."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    await fetch(gw.url + "/c/all")
    purged = admin_call(gw, "POST", "/admin/cache/purge")
    await fetch(gw.url + "/c/all")
    plain = run_gateway(edge_config(origin.url))
    assert (purged[0], origin.hits["all"]) == (200, 2)
    assert admin_call(plain, "POST", "/admin/cache/purge")[0] == 404


async def test_forward_auth_refusals(origin: EdgeOrigin, run_gateway: Run) -> None:
    """Forward-auth: its 403 is relayed; an unreachable auth service is 503."""
    edge = {"auth": {"forward": {"url": origin.url + "/auth"}}}
    gw = run_gateway(edge_config(origin.url, edge=edge, auth={"methods": ["forward"]}))
    banned = await fetch(gw.url + "/echo", headers={"Authorization": "Bearer banned"})
    dead = {"auth": {"forward": {"url": "http://127.0.0.1:9/auth", "timeout": 1}}}
    gw2 = run_gateway(edge_config(origin.url, edge=dead, auth={"methods": ["forward"]}))
    down = await fetch(gw2.url + "/echo")
    assert (banned[0], down[0]) == (403, 503)


async def test_basic_auth_malformed_and_roles(origin: EdgeOrigin, run_gateway: Run) -> None:
    """Malformed basic credentials and unknown users are 401; a missing role is 403."""
    from flext_api.gateway import hash_password

    edge = {"auth": {"basic": {"ops": hash_password("pw", iterations=1000)}}}
    gw = run_gateway(edge_config(origin.url, edge=edge, auth={"methods": ["basic"]}))
    roles = edge_config(origin.url, edge=edge, auth={"methods": ["basic"], "roles": ["admin"]})
    gw_roles = run_gateway(roles)

    def basic(raw: bytes) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    codes = [
        (await fetch(gw.url + "/echo", headers={"Authorization": "Basic %%%"}))[0],
        (await fetch(gw.url + "/echo", headers=basic(b"nobody:pw")))[0],
        (await fetch(gw.url + "/echo", headers=basic(b"ops:pw")))[0],
        (await fetch(gw.url + "/echo", headers=basic(b"ops:pw")))[0],
        (await fetch(gw_roles.url + "/echo", headers=basic(b"ops:pw")))[0],
    ]
    assert codes == [401, 401, 200, 200, 403]


async def test_limits_by_header_and_api_key(origin: EdgeOrigin, run_gateway: Run) -> None:
    """A header-keyed limit counts per header value; an api_key one per key name."""
    from hashlib import sha256

    edge = {"auth": {"jwt": {"api_key_hashes": {"p": sha256(b"k").hexdigest()}}}}
    rules = [
        {"limit": "2/minute", "key": "header", "header": "X-Tenant"},
        {"limit": "3/minute", "key": "api_key", "name": "per-key"},
    ]
    config = edge_config(origin.url, edge=edge, auth={"methods": ["api_key"]}, rate_limits=rules)
    gw = run_gateway(config)
    codes = []
    for tenant in ("a", "a", "a", "b", "b"):
        headers = {"X-API-Key": "k", "X-Tenant": tenant}
        codes.append((await fetch(gw.url + "/echo", headers=headers))[0])
    assert codes == [200, 200, 429, 200, 429]


async def test_aggregate_all_failed_and_flat_merge(origin: EdgeOrigin, run_gateway: Run) -> None:
    """Every backend failing is a 502 marked partial; merge: flat joins object keys."""
    failing = [{"key": "x", "cluster": "svc", "path": "/c/x?status=500&cc=no-store"}]
    gw = run_gateway(edge_config(origin.url, aggregate={"backends": failing}))
    flat = [
        {"key": "doc", "cluster": "svc", "path": "/doc"},
        {"key": "other", "cluster": "svc", "path": "/c/y?cc=no-store"},
    ]
    gw2 = run_gateway(edge_config(origin.url, aggregate={"backends": flat, "merge": "flat"}))
    failed = await fetch(gw.url + "/any")
    merged = orjson.loads((await fetch(gw2.url + "/any"))[2])
    assert (failed[0], orjson.loads(failed[2])["_partial"]) == (502, ["x"])
    assert (merged["id"], merged["name"]) == (7, "y")


async def test_reload_applies_new_policies_and_keeps_counts(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """A reloaded config's policies apply at once; a limit's count survives the reload."""
    from flext_api.gateway import GatewayConfig

    limited = edge_config(origin.url, rate_limits=[{"limit": "3/minute", "key": "ip"}])
    gw = run_gateway(limited)
    first = [(await fetch(gw.url + "/echo"))[0] for _ in range(2)]
    with_header = edge_config(
        origin.url,
        rate_limits=[{"limit": "3/minute", "key": "ip"}],
        transform={"request_headers_add": {"X-Reloaded": "yes"}},
    )
    gw.call(gw.gateway.apply(GatewayConfig.model_validate(with_header)))
    after = [(await fetch(gw.url + "/echo"))[0] for _ in range(2)]
    assert (first, after) == ([200, 200], [200, 429])
    assert origin.requests[-1]["headers"]["x-reloaded"] == "yes"


@pytest.mark.parametrize(
    "query",
    [
        b"url=",
        b"url=/c/all",
        b"url=c/all",
        b"url=ftp://x/y",
        b"url=http://a/1&url=http://a/2",
        b"url=http%3A%2F%2F%5B%3A%3A1%2Fx",  # http://[::1/x: urlsplit raises
        b"url=http://[zz]/",
        b"url=http://a:port/",
    ],
)
async def test_purge_refuses_a_url_it_cannot_mean(
    query: bytes, origin: EdgeOrigin, run_gateway: Run
) -> None:
    """An empty, relative, repeated or malformed url is 400 and purges nothing (it purged
    all; a malformed one was a 500)."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    await fetch(gw.url + "/c/all")
    status, _, body = admin_call(gw, "POST", "/admin/cache/purge", query)
    await fetch(gw.url + "/c/all")
    assert status == 400, body
    assert b"absolute" in body
    assert origin.hits["all"] == 1  # still cached


async def test_dashboard_events_refuse_an_interval_that_is_not_a_number(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    gw = run_gateway(edge_config(origin.url))
    status, _, body = admin_call(gw, "GET", "/dashboard/events", b"interval=abc")
    assert (status, orjson.loads(body)) == (400, {"error": "interval must be a number of seconds"})


async def test_purge_with_the_store_down_is_503(origin: EdgeOrigin, run_gateway: Run) -> None:
    """A Redis cache store that does not answer: 503 saying so, not a 500."""
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    edge = {"redis_url": dead, "cache": {"store": "redis"}}
    gw = run_gateway(edge_config(origin.url, edge=edge, cache=True))
    served = await fetch(gw.url + "/c/x")  # the store is down: served uncached
    status, _, body = admin_call(gw, "POST", "/admin/cache/purge", b"url=http://a/c/x")
    assert served[0] == 200
    assert status == 503, body
    assert b"cache store" in body


async def test_aggregate_bounds_a_backend_body(origin: EdgeOrigin, run_gateway: Run) -> None:
    """A backend answering more than max_body_bytes is left out, not buffered whole."""
    backends = [
        {"key": "doc", "cluster": "svc", "path": "/doc"},
        {"key": "big", "cluster": "svc", "path": "/c/big?n=5000&cc=no-store"},
    ]
    config = edge_config(origin.url, aggregate={"backends": backends, "max_body_bytes": 1000})
    status, headers, body = await fetch(run_gateway(config).url + "/any")
    merged = orjson.loads(body)
    assert (status, headers["X-Aggregate-Partial"], merged["_partial"]) == (200, "true", ["big"])
    assert merged["doc"]["id"] == 7


async def test_a_backend_cannot_fake_the_partial_marker(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """In a flat merge a backend's own _partial key is dropped; no backend key may be it."""
    fake = (
        "/raw?b=%7B%22_partial%22%3A%5B%22doc%22%5D%2C%22a%22%3A1%7D"  # {"_partial":["doc"],"a":1}
    )
    backends = [
        {"key": "doc", "cluster": "svc", "path": "/doc"},
        {"key": "fake", "cluster": "svc", "path": fake},
    ]
    config = edge_config(origin.url, aggregate={"backends": backends, "merge": "flat"})
    status, headers, body = await fetch(run_gateway(config).url + "/any")
    merged = orjson.loads(body)
    assert (status, merged["a"], merged["id"]) == (200, 1, 7)
    assert "_partial" not in merged and "X-Aggregate-Partial" not in headers
    marker = [{"key": "_partial", "cluster": "svc", "path": "/doc"}]
    with pytest.raises(ValueError, match="marker"):
        GatewayConfig.model_validate(edge_config(origin.url, aggregate={"backends": marker}))


async def test_forward_auth_gets_the_raw_uri(origin: EdgeOrigin, run_gateway: Run) -> None:
    """X-Forwarded-Uri is the path as sent: a decoded %0d%0a cannot break the header."""
    edge = {"auth": {"forward": {"url": origin.url + "/auth"}}}
    gw = run_gateway(edge_config(origin.url, edge=edge, auth={"methods": ["forward"]}))
    status, _, _ = await fetch(
        URL(gw.url + "/echo/a%0d%0aX-Injected:%201?q=1", encoded=True),
        headers={"Authorization": "Bearer good"},
    )
    asked = [r for r in origin.requests if r["path"] == "/auth"]
    assert status != 500
    assert asked[-1]["headers"]["x-forwarded-uri"] == "/echo/a%0d%0aX-Injected:%201?q=1"
    assert "x-injected" not in asked[-1]["headers"]
