"""Against the fault server, through the default stages: when the breaker opens between
attempts and refuses the retry, the caller and a batch still see the attempts sent and
the last status the server gave.

The client runs on a FakeClock (backoff waits advance it, nothing else does), so the
breaker's open time cannot run out during the test, whatever the machine's speed.
"""

from __future__ import annotations

import pytest

from flext_api import BreakerConfig, ClientConfig, ErrorCode, RetryConfig
from flext_api.client import FlextApiClient
from flext_api.testing import FakeClock
from tests.servers.fault import FaultServer

pytestmark = pytest.mark.integration

# Two 503s in a row open the breaker, so the third of the four attempts is refused.
CONFIG = ClientConfig(
    retry=RetryConfig(max_retries=3, budget_ratio=None, seed=1),
    breaker=BreakerConfig(consecutive_failures=2),
)


async def test_a_refused_retry_reports_the_attempts_sent_and_the_503(fault: FaultServer) -> None:
    """Two 503s reach the server; CIRCUIT_OPEN says attempts == 2 and carries the 503."""
    async with FlextApiClient(fault.url, config=CONFIG, clock=FakeClock()) as client:
        result = await client.get("/status/503")
    error = result.exception
    assert error is not None and error.code is ErrorCode.CIRCUIT_OPEN
    assert fault.hits("/status/503") == 2
    assert error.details["attempts"] == 2
    assert error.response is not None and error.response.status_code == 503
    assert error.details["last_error"].code is ErrorCode.HTTP_STATUS


async def test_a_batch_reports_the_attempts_and_status_of_a_refused_retry(
    fault: FaultServer,
) -> None:
    """client.batch without pauses: attempts == 2 and status_code == 503."""
    async with FlextApiClient(fault.url, config=CONFIG, clock=FakeClock()) as client:
        [result] = [r async for r in client.batch([{"id": 1, "path": "/status/503"}], max_pause=0)]
    assert fault.hits("/status/503") == 2
    assert result.error_code is ErrorCode.CIRCUIT_OPEN
    assert (result.attempts, result.status_code, result.data) == (2, 503, {"status": 503})
