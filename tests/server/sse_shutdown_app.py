"""An app with one endless event stream, for tests/server/test_sse_shutdown.py (served by
a real uvicorn process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from flext_api.server import EventStreamResponse, create_fastapi_app

app = create_fastapi_app()


@app.get("/events")
async def events() -> EventStreamResponse:
    async def source() -> AsyncIterator[dict[str, str]]:
        yield {"data": "first"}
        await asyncio.Event().wait()  # nothing more, ever: only heartbeats follow
        yield {"data": "never"}

    return EventStreamResponse(source(), heartbeat=0.2)
