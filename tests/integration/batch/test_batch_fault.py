"""client.batch against the fault server: scale, retries, the retry budget, breaker pauses."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from flext_api import BreakerConfig, ClientConfig, ErrorCode, PoolConfig, RetryConfig
from flext_api.client import FlextApiClient
from flext_api.client.batch._models import BatchRequest, BatchResult
from flext_api.testing import FakeClock, set_testing
from tests.servers.fault import FaultServer

pytestmark = pytest.mark.integration


def _config(*, breaker: bool = True, **retry: Any) -> ClientConfig:
    pool = PoolConfig(max_connections=100, max_keepalive=100)
    return ClientConfig(
        pool=pool, retry=RetryConfig(**retry), breaker=BreakerConfig(enabled=breaker)
    )


async def test_twenty_thousand_requests_with_ten_percent_faults(fault: FaultServer) -> None:
    """20,000 requests, every 10th a 500 (no retries), concurrency 50: each id exactly once."""

    def requests() -> Iterator[BatchRequest]:
        for i in range(20_000):
            yield BatchRequest(f"r{i}", "/status/500" if i % 10 == 0 else "/status/200")

    started = time.perf_counter()
    ids: Counter[Any] = Counter()
    codes: Counter[Any] = Counter()
    async with FlextApiClient(fault.url, config=_config(max_retries=0)) as client:
        async for result in client.batch(requests(), concurrency=50):
            ids[result.request_id] += 1
            codes[result.error_code] += 1
    elapsed = time.perf_counter() - started
    assert len(ids) == 20_000 and set(ids.values()) == {1}
    assert codes == {None: 18_000, ErrorCode.HTTP_STATUS: 2_000}
    print(f"\n20,000 requests in {elapsed:.1f} s ({20_000 / elapsed:.0f} req/s)")


async def test_retried_items_report_their_attempts(fault: FaultServer) -> None:
    """Items failing once then succeeding are retried by the client (attempts == 2).

    The breaker is off: ten concurrent first attempts failing would open it.
    """
    items = [BatchRequest(i, f"/flaky/once-{i}/1/503") for i in range(40)]
    with set_testing(True):
        async with FlextApiClient(
            fault.url, config=_config(breaker=False, max_retries=2, budget_ratio=None)
        ) as client:
            results = [r async for r in client.batch(items, concurrency=10)]
    assert all(r.success and r.attempts == 2 for r in results)


async def test_batch_shares_the_clients_retry_budget(fault: FaultServer) -> None:
    """Many failing items do not each get their retries: the per-host budget caps them."""
    items = [BatchRequest(i, f"/flaky/budget-{i}/1/503") for i in range(100)]
    with set_testing(True):
        async with FlextApiClient(
            fault.url,
            config=_config(breaker=False, max_retries=2, budget_ratio=0.2),
        ) as client:
            results = [r async for r in client.batch(items, concurrency=10)]
    retried = sum(1 for r in results if r.attempts > 1)
    assert 0 < retried < 60
    assert Counter(r.error_code for r in results)[ErrorCode.RETRIES_EXHAUSTED] == 100 - retried


async def test_open_breaker_pauses_the_host_instead_of_failing_the_rest(
    fault: FaultServer,
) -> None:
    """The breaker opens after 5 failures; the batch waits it out and the rest succeed."""
    clock = FakeClock()
    config = ClientConfig(
        retry=RetryConfig(max_retries=0),
        breaker=BreakerConfig(consecutive_failures=5, open_duration=30, open_jitter=0),
    )
    items = [BatchRequest(i, "/flaky/breaker/5/503") for i in range(20)]
    async with FlextApiClient(fault.url, config=config, clock=clock) as client:
        results: list[BatchResult] = [
            r async for r in client.batch(items, concurrency=1, ordered=True, clock=clock)
        ]
    assert [r.error_code for r in results[:5]] == [ErrorCode.HTTP_STATUS] * 5
    assert all(r.success for r in results[5:])
    assert 30.0 in clock.sleeps
    assert fault.hits("/flaky/breaker/5/503") == 20
