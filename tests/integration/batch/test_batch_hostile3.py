"""Third hostile pass over ``client.batch`` against the fault server: a consumer
cancelled mid-batch then resumed from its journal, concurrency counted on the server,
retries of sent POSTs, bad URLs among good ones."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flext_api import BreakerConfig, ClientConfig, ErrorCode, PoolConfig, RetryConfig
from flext_api.client import BatchRequest, FlextApiClient
from flext_api.testing import set_testing
from tests.servers.fault import FaultServer

pytestmark = pytest.mark.integration


def _client(fault: FaultServer, *, max_retries: int = 0) -> FlextApiClient:
    config = ClientConfig(
        retry=RetryConfig(max_retries=max_retries, budget_ratio=None),
        breaker=BreakerConfig(enabled=False),
        pool=PoolConfig(max_connections=100, max_keepalive=100),
    )
    return FlextApiClient(fault.url, config=config)


def _creates(n: int) -> list[BatchRequest]:
    return [BatchRequest(i, "/echo", method="POST", json={"n": i}) for i in range(n)]


def _sent(fault: FaultServer) -> Counter[int]:
    return Counter(json.loads(r.body)["n"] for r in fault.requests_to("/echo"))


def _journaled(path: Path) -> list[Any]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


async def test_a_cancelled_consumer_resumes_exactly_the_items_it_had_not_taken(
    fault: FaultServer, tmp_path: Path
) -> None:
    """Cancelled while handling its 30th result: nothing left in flight, 29 ids
    journaled, and the resumed run sends every other item and none of those 29."""
    path = tmp_path / "creates.journal"
    taken: list[Any] = []
    handling = asyncio.Event()

    async with _client(fault) as client:

        async def consume() -> None:
            batch = client.batch(_creates(200), concurrency=10, journal=path)
            async with contextlib.aclosing(batch):
                async for result in batch:
                    taken.append(result.request_id)
                    if len(taken) == 30:
                        handling.set()
                        await asyncio.Event().wait()  # cancelled here

        task = asyncio.create_task(consume())
        await handling.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stats = client.stats()
        assert stats["in_flight"] == 0 and stats["pool"]["in_use"] == 0
        first = _journaled(path)
        assert first == taken[:29]
        sent_before = _sent(fault)

        resumed = [r async for r in client.batch(_creates(200), concurrency=10, journal=path)]

    assert {r.request_id for r in resumed} == set(range(200)) - set(first)
    assert all(r.success for r in resumed)
    sent = _sent(fault)
    assert all(sent[i] == 1 for i in first)
    # Each resumed item is sent once by the resumed run. One whose first-run request was
    # in flight at the cancel may have reached the server too, before the snapshot or
    # after it (the server records a request when it has read it): never a third time.
    again = [r.request_id for r in resumed if isinstance(r.request_id, int)]
    assert len(again) == len(resumed)
    assert all(sent[i] - sent_before[i] >= 1 and sent[i] <= 2 for i in again)
    assert sorted(_journaled(path)) == list(range(200))


async def test_never_more_connections_than_the_concurrency(fault: FaultServer) -> None:
    """Counted on the server: a batch of 300 at concurrency 7 opens at most 7 connections."""
    items = [BatchRequest(i, "/delay/0.002") for i in range(300)]
    async with _client(fault) as client:
        results = [r async for r in client.batch(items, concurrency=7)]
    assert len(results) == 300 and all(r.success for r in results)
    assert 1 <= fault.connections_opened <= 7


async def test_a_sent_post_is_not_retried_but_a_keyed_one_is(fault: FaultServer) -> None:
    """A POST whose connection dropped is not sent again; with idempotency_key=True it is."""
    item = [BatchRequest("pay", "/drop", method="POST", json={"amount": 1})]
    with set_testing(True):
        async with _client(fault, max_retries=2) as client:
            [plain] = [r async for r in client.batch(item)]
            assert fault.hits("/drop") == 1
            assert (plain.success, plain.attempts) == (False, 1)
            fault.reset()
            options = {"idempotency_key": True}
            [keyed] = [r async for r in client.batch(item, request_options=options)]
    assert fault.hits("/drop") == 3
    assert (keyed.success, keyed.attempts) == (False, 3)
    keys = {r.headers.get("idempotency-key") for r in fault.requests_to("/drop")}
    assert len(keys) == 1 and None not in keys


async def test_bad_urls_fail_alone_and_the_good_ones_run(fault: FaultServer) -> None:
    """Malformed, unsupported and hostless URLs are each INVALID_REQUEST; nothing else fails."""
    bad = ["http://[::1", "ftp://127.0.0.1/x", "http://", "http://127.0.0.1:99999/x"]
    items = [BatchRequest(f"bad{i}", url) for i, url in enumerate(bad)]
    items += [BatchRequest(f"good{i}", "/status/200") for i in range(4)]
    async with _client(fault) as client:
        results = {r.request_id: r async for r in client.batch(items, concurrency=3)}
    assert all(results[f"good{i}"].success for i in range(4))
    assert {results[f"bad{i}"].error_code for i in range(4)} == {ErrorCode.INVALID_REQUEST}
    assert fault.hits("/status/200") == 4 and len(fault.requests) == 4
