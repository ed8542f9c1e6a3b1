"""A Redis client for a test whose keys live under one prefix, cleared before and after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis


async def _delete_under(client: aioredis.Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)


@asynccontextmanager
async def client_under(url: str, prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A client on ``url``; the keys under ``prefix`` are deleted before and after."""
    client = aioredis.from_url(url)
    await _delete_under(client, prefix)
    try:
        yield client
    finally:
        await _delete_under(client, prefix)
        await client.aclose()
