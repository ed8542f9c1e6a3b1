"""A service put together with flext-api's composition parts (see docs/composition.md).

- a :class:`~flext_api.FlextContainer` wires ``Settings -> Catalog -> OrderService``;
  the catalog's cleanup runs at shutdown and its ping is part of ``/ready``;
- an :class:`~flext_api.EventBus` publishes ``order.created``; with ``$REDIS_URL`` set the
  events go through Redis Streams (group ``$SERVICE_NAME``), so every process of the
  service shares them and a crashed one's events are redelivered;
- an app plugin, a ``@cached`` route and a background task.

Run it with ``flext-api serve examples.composition_service:app`` (``SERVICE_NAME`` names
it; the deploy/ files run two of them behind the gateway).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request, Response

from flext_api import Event, EventBus, FlextContainer, ServerConfig
from flext_api.composition import AppPlugin, AppPluginManager, EventTransport, inject
from flext_api.server import cached, create_fastapi_app

SERVICE_NAME = os.environ.get("SERVICE_NAME", "orders")
REDIS_URL = os.environ.get("REDIS_URL")
logger = logging.getLogger(SERVICE_NAME)


@dataclass
class Settings:
    service: str = SERVICE_NAME


@dataclass
class Catalog:
    settings: Settings
    products: dict[int, str] = field(default_factory=lambda: {1: "keyboard", 2: "mouse"})


class OrderService:
    def __init__(self, catalog: Catalog, events: EventBus) -> None:
        self.catalog, self.events = catalog, events
        self.created = 0

    async def create(self, product_id: int) -> dict[str, Any]:
        self.created += 1
        order = {"id": self.created, "product": self.catalog.products.get(product_id)}
        await self.events.publish(Event("order.created", {"order": order}))
        return order


async def open_catalog(settings: Settings) -> AsyncIterator[Catalog]:
    catalog = Catalog(settings)  # e.g. a connection pool
    yield catalog
    logger.info("catalog closed")


class AuditPlugin(AppPlugin):
    """Counts order events in ``app.state.audit``."""

    def initialize(self, app: Any) -> None:
        app.state.audit = []
        app.state.events.subscribe("order.*", lambda e: app.state.audit.append(e.name))

    def cleanup(self) -> None:
        logger.info("audit plugin stopped")


def _transport() -> EventTransport | None:
    if REDIS_URL is None:
        return None
    from flext_api.composition import RedisStreamTransport

    return RedisStreamTransport(REDIS_URL, stream="shop:events", group=SERVICE_NAME)


events = EventBus(transport=_transport())
container = FlextContainer()
container.register(Settings, Settings())
container.register(EventBus, events)
container.register_factory(Catalog, open_catalog, ping=lambda catalog: bool(catalog.products))
container.register_factory(OrderService)
plugins = AppPluginManager()
plugins.register("audit", AuditPlugin())

app = create_fastapi_app(
    ServerConfig(title=f"{SERVICE_NAME} service"),
    container=container,
    plugins=plugins,
    event_bus=events,
)


@app.get("/products")
@cached("products", expire=300)
async def list_products(
    catalog: Annotated[Catalog, Depends(inject(Catalog))], response: Response
) -> dict[int, str]:
    """The catalog, cached for 5 minutes (one computation at a time).

    ``Cache-Control`` replaces the factory's default ``no-store`` so that shared caches
    (the gateway's ``cache: true`` route in deploy/gateway.yaml) may keep it too.
    """
    response.headers["Cache-Control"] = "public, max-age=300"
    return catalog.products


@app.post("/orders", status_code=201)
async def create_order(
    request: Request, orders: Annotated[OrderService, Depends(inject(OrderService))]
) -> dict[str, Any]:
    """Create an order, publish ``order.created`` and send a receipt in the background."""
    order = await orders.create(product_id=1)
    request.app.state.tasks.spawn(send_receipt(order), name="receipt")
    return order


async def send_receipt(order: dict[str, Any]) -> None:
    logger.info("receipt sent for order %s", order["id"])
