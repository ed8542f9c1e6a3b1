"""The admin port and hot reload under hostile input and an operator under stress: files
PyYAML cannot turn into values, secrets in refused configs, a gateway still starting, a
purge sent before any request, bearer tokens spelled the ways RFC 9110 allows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from multidict import CIMultiDict

from flext_api.gateway import GatewayConfig
from tests._poll import eventually
from tests.integration.gateway.conftest import LiveGateway, basic_config
from tests.integration.gateway.edge_origin import EdgeOrigin
from tests.integration.gateway.edge_support import edge_config, fetch, origin
from tests.integration.gateway.upstream import Upstream
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

__all__ = ["origin"]

Run = Callable[[dict[str, Any]], LiveGateway]
AUTH = {"Authorization": "Bearer t0ken"}


def _refused(gw: LiveGateway) -> float:
    return gw.gateway.metrics.reloads.labels("refused")._value.get()  # type: ignore[no-any-return]


async def _call(
    method: str, url: str, headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDict[str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers) as r,
    ):
        return r.status, r.headers.copy(), await r.read()


async def _upstream_seen(gw: LiveGateway, name: str) -> bool:
    """True once a request through ``gw`` is answered by upstream ``name``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + 60  # a hang guard
    while loop.time() < end:
        _, headers, _ = await _call("GET", gw.url + "/echo/w")
        if headers.get("X-Upstream") == name:
            return True
        await asyncio.sleep(0.05)
    return False


_VALID_CLUSTER = "clusters: [{name: svc, instances: [{url: 'http://127.0.0.1:9'}]}]\n"
_VALID_ROUTE = "routes: [{name: all, cluster: svc, match: {path_prefix: /}}]\n"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("x: " + "[" * 5000 + "]" * 5000 + "\n", id="nested-too-deep"),
        pytest.param(_VALID_CLUSTER + _VALID_ROUTE + "via: 2024-13-45\n", id="no-such-date"),
        pytest.param(_VALID_CLUSTER + _VALID_ROUTE + "drain_timeout: !!int abc\n", id="bad-int"),
        pytest.param(_VALID_CLUSTER + _VALID_ROUTE + "watch: !!bool maybe\n", id="bad-bool"),
        pytest.param(
            _VALID_CLUSTER + _VALID_ROUTE + "auth: {jwt_secret: too-short}\n", id="auth-check"
        ),
    ],
)
async def test_a_file_pyyaml_or_the_auth_checks_choke_on_is_a_409(
    text: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """POST /admin/reload of such a file is refused like any invalid one: 409 with the
    reason, counted, the old config serving on (the loader raised: a 500, nothing
    counted)."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    assert gw.reloader is not None
    gw.reloader.path.write_text(text, encoding="utf-8")
    status, _, body = await _call("POST", gw.admin_url + "/admin/reload", AUTH)
    assert status == 409, body
    assert orjson.loads(body)["reloaded"] is False
    assert _refused(gw) == 1
    assert await _upstream_seen(gw, "a")


async def test_the_file_watch_outlives_a_file_pyyaml_chokes_on(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """A saved file with a date that is none (``2024-13-45``) is refused and the watch
    carries on: the next valid save applies (the exception ended the watch task, and no
    later edit was ever applied)."""
    a, b = upstreams
    gw = run_gateway({**basic_config(a.url), "watch": True})
    assert gw.reloader is not None
    path = gw.reloader.path
    broken = yaml.safe_dump({**basic_config(b.url), "watch": True}) + "via: 2024-13-45\n"

    def saved_and_refused() -> bool:
        # Saved again until the watch (which starts with the server) reports a refusal.
        path.write_text(broken, encoding="utf-8")
        return _refused(gw) > 0

    assert await eventually(saved_and_refused, timeout=60)
    path.write_text(yaml.safe_dump({**basic_config(b.url), "watch": True}), encoding="utf-8")
    assert await _upstream_seen(gw, "b")


async def test_a_refused_reload_shows_no_password(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """The errors of a refused config (the 409's body, the log line) show a quoted URL's
    userinfo as ********** (a registry URL with a bad port was echoed with its password)."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    assert gw.reloader is not None
    data = basic_config(a.url)
    data["clusters"][0] = {
        "name": "svc",
        "registry": {"backend": "redis", "url": "redis://:hunter2@10.0.0.9:port/0"},
    }
    data["rate_limit"] = {"storage_uri": "mongodb://ops:hunter3@10.0.0.9/x"}
    gw.reloader.path.write_text(yaml.safe_dump(data), encoding="utf-8")
    status, _, body = await _call("POST", gw.admin_url + "/admin/reload", AUTH)
    error = orjson.loads(body)["error"]
    assert status == 409
    assert "redis://**********@10.0.0.9:port/0" in error
    assert "mongodb://**********@10.0.0.9/x" in error
    assert not any(secret in error for secret in ("hunter2", "hunter3"))


async def test_auth_check_errors_show_no_password(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """An ``auth`` section the server module's checks refuse (a JWKS URL over plain http)
    is a 409 naming the key, its URL's userinfo hidden (it was a 500)."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    assert gw.reloader is not None
    data = {**basic_config(a.url), "auth": {"jwks_url": "http://ci:hunter4@idp.example/jwks"}}
    gw.reloader.path.write_text(yaml.safe_dump(data), encoding="utf-8")
    status, _, body = await _call("POST", gw.admin_url + "/admin/reload", AUTH)
    error = orjson.loads(body)["error"]
    assert status == 409
    assert "auth.jwks_url" in error and "http://**********@idp.example/jwks" in error
    assert "hunter4" not in error


async def test_the_admin_port_while_the_gateway_starts(
    upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    """The admin port answers before the gateway's first snapshot is built (its lifespan
    may wait on a registry): /ready is 503 until then, /health says "starting", and what
    needs the snapshot is a 503 with Retry-After (it was a 500 each, and /ready said 200
    while the proxy port did not serve yet)."""
    a, _ = upstreams
    data = basic_config(a.url)
    data["routes"][0]["cache"] = True
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    gw = LiveGateway(GatewayConfig.model_validate(data), path)
    hold = asyncio.Event()  # set on the gateway's loop: the registry answers
    start = gw.gateway.start

    async def slow_start() -> Any:
        await hold.wait()
        return await start()

    gw.gateway.start = slow_start  # type: ignore[method-assign]
    gw._thread.start()
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + 60  # a hang guard
        while True:
            try:
                ready = await _call("GET", gw.admin_url + "/ready")
                break
            except aiohttp.ClientConnectionError:
                assert loop.time() < end, "the admin port did not answer"
                await asyncio.sleep(0.02)
        health = await _call("GET", gw.admin_url + "/health")
        answers = [
            await _call(method, gw.admin_url + path, AUTH)
            for method, path in (
                ("GET", "/admin/routes"),
                ("GET", "/admin/config"),
                ("POST", "/admin/reload"),
                ("GET", "/dashboard/data"),
                ("POST", "/admin/cache/purge"),
            )
        ]
        wrong = await _call("GET", gw.admin_url + "/admin/routes", {"Authorization": "Bearer x"})
        assert (ready[0], orjson.loads(ready[2])) == (503, {"ready": False})
        assert (health[0], orjson.loads(health[2])) == (200, {"status": "starting", "services": {}})
        assert [(s, h.get("Retry-After")) for s, h, _ in answers] == [(503, "1")] * 5
        assert wrong[0] == 401  # the token is checked all the same
        assert gw.loop is not None
        gw.loop.call_soon_threadsafe(hold.set)
        assert await eventually(lambda: gw.server.started, timeout=60)
        assert (await _call("GET", gw.admin_url + "/ready"))[0] == 200
        assert (await _call("GET", gw.admin_url + "/admin/routes", AUTH))[0] == 200
    finally:
        if gw.loop is not None:
            gw.loop.call_soon_threadsafe(hold.set)
        await asyncio.to_thread(gw.stop)


async def test_a_purge_before_any_request_reaches_the_shared_store(
    origin: EdgeOrigin, redis_server: RedisServer, run_gateway: Run
) -> None:
    """A gateway that has proxied nothing yet purges the shared Redis store all the same
    (it answered 404 "no route has cache: true" and purged nothing: another gateway kept
    serving the entry)."""
    edge = {"redis_url": redis_server.url, "cache": {"store": "redis", "namespace": "t-purge:"}}
    serving = run_gateway(edge_config(origin.url, cache=True, edge=edge))
    await fetch(serving.url + "/c/p", headers={"Host": "api.test"})
    fresh = run_gateway(edge_config(origin.url, cache=True, edge=edge))
    status, _, body = await _call(
        "POST", fresh.admin_url + "/admin/cache/purge?url=http://api.test/c/p", AUTH
    )
    await fetch(serving.url + "/c/p", headers={"Host": "api.test"})
    assert (status, orjson.loads(body)) == (200, {"purged": "http://api.test/c/p", "dropped": 1})
    assert origin.hits["p"] == 2  # the entry was gone


async def test_a_purge_on_a_fresh_gateway_without_cache_is_still_a_404(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """No route with cache: true: 404, before and after requests."""
    gw = run_gateway(edge_config(origin.url))
    assert (await _call("POST", gw.admin_url + "/admin/cache/purge", AUTH))[0] == 404


@pytest.mark.parametrize("value", ["Bearer  t0ken", "bearer   t0ken", "BEARER t0ken"])
async def test_the_bearer_scheme_takes_any_case_and_several_spaces(
    value: str, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """RFC 9110 §11.4: ``auth-scheme 1*SP token68``, the scheme case-insensitive (two
    spaces were a 401)."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    status, _, _ = await _call("GET", gw.admin_url + "/admin/routes", {"Authorization": value})
    assert status == 200


@pytest.mark.parametrize(
    "value",
    [b"Bearer", b"Bearer ", b"Bearer\tt0ken", b"Bearert0ken", b"Basic t0ken", b"t0ken", b""],
)
async def test_what_is_not_a_bearer_token_is_a_401(
    value: bytes, upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """Other schemes, a tab for the space, no space, no token: 401."""
    a, _ = upstreams
    gw = run_gateway(basic_config(a.url))
    assert _asgi_status(gw, [(b"authorization", value)]) == 401


def _asgi_status(gw: LiveGateway, headers: list[tuple[bytes, bytes]]) -> int:
    """The status of ``GET /admin/routes`` with exactly ``headers``, through the admin app
    in process (a client library would tidy the header's spaces)."""
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/admin/routes", "headers": headers}
    gw.call(gw.admin(scope, receive, send))
    status: int = sent[0]["status"]
    return status


async def test_the_last_reload_and_its_reason_stay_readable(
    upstreams: tuple[Upstream, Upstream], run_gateway: Run
) -> None:
    """``GET /admin/reload/status`` tells what the last reload did and why it was refused:
    a refusal by the file watch was only in the log and a counter, with no endpoint to
    read the reason from afterwards."""
    a, b = upstreams
    gw = run_gateway(basic_config(a.url))
    assert gw.reloader is not None
    url = gw.admin_url + "/admin/reload/status"
    status, _, body = await _call("GET", url, AUTH)
    assert status == 200, body
    assert orjson.loads(body) == {
        "from_file": True,
        "path": str(gw.reloader.path),
        "last": None,
    }
    assert (await _call("GET", url))[0] == 401
    assert (await _call("POST", url, AUTH))[0] == 405

    gw.reloader.path.write_text(_VALID_CLUSTER + "routes: 7\n", encoding="utf-8")
    assert (await _call("POST", gw.admin_url + "/admin/reload", AUTH))[0] == 409
    status, _, body = await _call("GET", url, AUTH)
    last = orjson.loads(body)["last"]
    assert status == 200
    assert last["result"] == "refused"
    assert "routes" in last["error"]
    assert last["at"].endswith("Z")

    gw.reloader.path.write_text(yaml.safe_dump(basic_config(b.url)), encoding="utf-8")
    assert (await _call("POST", gw.admin_url + "/admin/reload", AUTH))[0] == 200
    last = orjson.loads((await _call("GET", url, AUTH))[2])["last"]
    assert last["result"] == "applied"
    assert last["error"] is None
    assert await _upstream_seen(gw, "b")
