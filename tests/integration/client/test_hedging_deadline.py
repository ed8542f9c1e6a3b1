"""Hedging against a real slow server: no hedge is launched past the request's deadline."""

from __future__ import annotations

import pytest

from flext_api import ErrorCode, TimeoutConfig
from flext_api.client import FlextApiClient
from flext_api.client.plugins import HedgingPlugin
from flext_api.resilience import ResilienceEvent
from tests.servers.fault import FaultServer

pytestmark = pytest.mark.integration


async def test_an_attempt_cut_off_by_the_deadline_is_not_hedged(fault: FaultServer) -> None:
    """The first attempt ends with DEADLINE_EXCEEDED; hedging starts nothing after it
    (it started ``max_hedged`` attempts that could only fail "before sending", each a
    HedgeStarted event and a breaker/limiter call)."""
    events: list[ResilienceEvent] = []
    async with FlextApiClient(
        fault.url,
        timeout=TimeoutConfig(total=0.3),
        plugins=[HedgingPlugin(30.0, max_hedged=2, hooks=[events.append])],
        default_plugins=False,
    ) as client:
        result = await client.get("/delay/30")
    err = result.exception
    assert err is not None and err.code is ErrorCode.DEADLINE_EXCEEDED
    assert "before sending" not in err.message
    assert events == []
    assert fault.hits("/delay/30") == 1
