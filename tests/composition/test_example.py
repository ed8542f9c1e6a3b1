"""examples/composition_service.py: the parts work together in one app."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from tests.server.helpers import serve


@pytest.fixture
def example() -> ModuleType:
    """A fresh import of the example (its app and container run one lifespan per import)."""
    return importlib.reload(importlib.import_module("examples.composition_service"))


async def test_order_is_created_published_and_audited(example: ModuleType) -> None:
    """POST /orders resolves OrderService, publishes order.created, the plugin sees it."""
    async with serve(example.app) as client:
        reply = await client.post("/orders", json={})
        ready = await client.get("/ready")
        products = [await client.get("/products") for _ in range(2)]
        assert example.app.state.audit == ["order.created"]
    assert reply.status_code == 201
    assert reply.json() == {"id": 1, "product": "keyboard"}
    assert ready.json()["checks"]["Catalog"] == [{"status": "pass"}]
    assert [p.headers["x-cache"] for p in products] == ["MISS", "HIT"]
