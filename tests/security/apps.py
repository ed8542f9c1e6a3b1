"""The service under attack: a factory app with the routes the security suite targets.

Also imported by uvicorn worker processes (``redis_limited_app``) for the multi-worker
rate-limit test.
"""

from __future__ import annotations

import io
import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict

from flext_api import ServerConfig
from flext_api._server_config import ServerRateLimitConfig
from flext_api.server import (
    Principal,
    create_fastapi_app,
    make_json_logger,
    rate_limit,
    require_auth,
    require_roles,
)

SECRET = "postgres://admin:hunter2@10.0.0.5/db"


class Order(BaseModel):
    """A JSON body that refuses unknown fields (mass assignment)."""

    model_config = ConfigDict(extra="forbid")

    item: str
    quantity: int


def secure_app(stream: io.StringIO, config: ServerConfig | None = None, **kwargs: Any) -> FastAPI:
    """The app with every target route; ``app.state.calls`` records handler runs."""
    app = create_fastapi_app(config, logger=make_json_logger(stream), **kwargs)
    calls: list[str] = []
    app.state.calls = calls

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        calls.append("hello")
        return {"hello": "world"}

    @app.post("/orders")
    async def create_order(order: Order) -> Order:
        calls.append("orders")
        return order

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        size = len(await request.body())
        calls.append("upload")  # only once the whole body was read
        return {"size": size}

    @app.get("/boom")
    async def boom() -> None:
        connection = SECRET  # a local a debug page would print
        raise RuntimeError(f"cannot reach {connection}")

    @app.post("/login", dependencies=[Depends(rate_limit("login", "5/minute"))])
    async def login() -> dict[str, str]:
        calls.append("login")
        return {"token": "t"}

    @app.get("/me")
    async def me(user: Annotated[Principal, Depends(require_auth())]) -> dict[str, str]:
        return {"sub": user.subject}

    @app.get("/orders", dependencies=[Depends(require_auth(scopes=["orders:read"]))])
    async def list_orders() -> list[str]:
        return []

    @app.get("/admin", dependencies=[Depends(require_roles("admin"))])
    async def admin() -> dict[str, str]:
        return {}

    return app


def redis_limited_app() -> FastAPI:
    """One worker of a service whose default limit (5/minute) lives in Redis."""
    config = ServerConfig(
        rate_limit=ServerRateLimitConfig(
            default_limit="5/minute", storage_uri=os.environ["FLEXT_TEST_REDIS_URL"]
        )
    )
    app = create_fastapi_app(config, logger=make_json_logger(io.StringIO()))

    @app.get("/pid")
    async def pid() -> dict[str, int]:
        return {"pid": os.getpid()}

    return app
