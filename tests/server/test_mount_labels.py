"""Route labels of requests to mounted apps carry the mount's path template."""

from __future__ import annotations

import io

from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from tests.server.conftest import Build
from tests.server.helpers import records, serve

DURATION = "http_server_request_duration_seconds"


def _routes(text: str) -> dict[tuple[str, str], float]:
    """``{(route, status): count}`` of the duration histogram."""
    counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{DURATION}_count":
                counts[(sample.labels["route"], sample.labels["status"])] = sample.value
    return counts


def _items_app() -> FastAPI:
    sub = FastAPI()

    @sub.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return sub


async def _plain(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app without routes (what StaticFiles is to the router)."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"plain"})


async def test_mounted_route_label_has_the_mount_path(build: Build) -> None:
    """``/sub/items/1`` is labelled ``/sub/items/{item_id}``, apart from the parent's route."""
    app = build()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    app.mount("/sub", _items_app())
    async with serve(app) as client:
        assert (await client.get("/items/1")).status_code == 200
        assert (await client.get("/sub/items/1")).status_code == 200
        assert (await client.get("/sub/items/2")).status_code == 200
        text = (await client.get("/metrics")).text
    counts = _routes(text)
    assert counts[("/items/{item_id}", "2xx")] == 1
    assert counts[("/sub/items/{item_id}", "2xx")] == 2


async def test_access_log_route_has_the_mount_path(build: Build, log_stream: io.StringIO) -> None:
    """The access record's ``route`` is the same mounted template."""
    app = build()
    app.mount("/sub", _items_app())
    async with serve(app) as client:
        await client.get("/sub/items/7")
    [record] = records(log_stream)
    assert (record["path"], record["route"]) == ("/sub/items/7", "/sub/items/{item_id}")


async def test_nested_and_parametrised_mounts_give_templates(build: Build) -> None:
    """Mounts in mounts add up, and a mount path parameter stays a template (bounded)."""
    app = build()
    outer = FastAPI()
    outer.mount("/v1", _items_app())
    app.mount("/tenants/{tenant}", outer)
    async with serve(app) as client:
        for tenant in ("acme", "globex", "initech"):
            assert (await client.get(f"/tenants/{tenant}/v1/items/3")).status_code == 200
        text = (await client.get("/metrics")).text
    counts = _routes(text)
    assert counts[("/tenants/{tenant}/v1/items/{item_id}", "2xx")] == 3
    assert not any("acme" in route for route, _ in counts)


async def test_a_mount_answering_itself_keeps_its_template(build: Build) -> None:
    """A plain app mounted in a Starlette app is labelled by that mount's template behind
    the outer mount's (its own path not doubled); what no route answers stays unmatched."""
    app = build()
    app.mount("/sub", Starlette(routes=[Mount("/assets", _plain)]))
    app.mount("/static", _plain)
    async with serve(app) as client:
        assert (await client.get("/sub/assets/app.css")).status_code == 200
        assert (await client.get("/static/app.css")).status_code == 200
        assert (await client.get("/sub/nothing")).status_code == 404
        text = (await client.get("/metrics")).text
    counts = _routes(text)
    assert counts[("/sub/assets/{path}", "2xx")] == 1
    assert counts[("<unmatched>", "2xx")] == 1
    assert counts[("<unmatched>", "4xx")] == 1
