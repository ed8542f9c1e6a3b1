"""``ServerConfig``: settings of :func:`flext_api.create_fastapi_app`.

Kept in its own module so the server's settings can grow without touching the client's.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ServerConfig"]


class ServerConfig(BaseModel):
    """Settings of the FastAPI app factory (secure defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = "flext-api service"
    version: str = "0.1.0"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    docs_enabled: bool = True
