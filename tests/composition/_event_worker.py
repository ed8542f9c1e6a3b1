"""A worker process of the Redis Streams tests: consumes ``job`` events and records them.

Usage: ``python -m tests.composition._event_worker REDIS_URL CONSUMER MODE``. Every
handling is appended to the Redis list ``handled`` as JSON (event id, consumer,
attempt); the effect, wrapped in :class:`Idempotency`, increments ``effects:<id>``. In
``hang`` mode an event with ``data["hang"]`` is announced on ``hanging`` and then never
finishes, so the test can ``kill -9`` the process mid-event. Prints ``ready`` once
consuming.
"""

from __future__ import annotations

import asyncio
import json
import sys

import redis.asyncio as aioredis

from flext_api.composition import (
    Event,
    EventBus,
    Idempotency,
    RedisIdempotencyStore,
    RedisStreamTransport,
)

STREAM = "test:jobs"
GROUP = "workers"
CLAIM_IDLE = 0.5


async def main(url: str, consumer: str, mode: str) -> None:
    client = aioredis.from_url(url)
    transport = RedisStreamTransport(
        client=client, stream=STREAM, group=GROUP, consumer=consumer, claim_idle=CLAIM_IDLE,
        block=0.2,
    )  # fmt: skip
    bus = EventBus(transport=transport)
    once = Idempotency(RedisIdempotencyStore(client))

    async def effect(event: Event) -> None:
        await client.incr(f"effects:{event.id}")

    guarded = once(effect)

    async def record(event: Event) -> None:
        entry = {"id": event.id, "consumer": consumer, "attempt": event.attempt}
        if mode == "hang" and event.data.get("hang"):
            await client.rpush("hanging", event.id)
            await asyncio.Event().wait()  # stuck until killed
        await guarded(event)
        await client.rpush("handled", json.dumps(entry))

    bus.subscribe("job", record)
    async with bus:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
