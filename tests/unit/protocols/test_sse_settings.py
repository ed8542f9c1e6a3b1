"""``client.sse(...)`` settings an event stream cannot use fail its first iteration."""

from __future__ import annotations

from typing import Any

import pytest

from flext_api import ErrorCode, FlextApiClient, FlextApiError, HttpResponse
from flext_api.transports._mock import MockTransport


@pytest.mark.parametrize(
    "options",
    [
        {"idle_timeout": -1},
        {"idle_timeout": float("nan")},
        {"idle_timeout": "5"},
        {"max_reconnects": -1},
        {"max_reconnects": 2.5},
    ],
)
async def test_bad_stream_setting_is_invalid_request(options: dict[str, Any]) -> None:
    """A bad idle_timeout or max_reconnects is INVALID_REQUEST on the first iteration
    (kept in `.error`) instead of a pydantic error or a silent default; nothing is sent."""
    transport = MockTransport(lambda req: HttpResponse(200, content=b""))
    async with FlextApiClient("http://api.test", transport=transport) as client:
        events = client.sse("GET", "/events", **options)
        with pytest.raises(FlextApiError) as info:
            async for _event in events:
                pass
    assert info.value.code is ErrorCode.INVALID_REQUEST and events.error is info.value
    assert transport.requests == []
