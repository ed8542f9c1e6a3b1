"""BulkheadPlugin: per-host concurrency cap around the rest of the pipeline."""

from __future__ import annotations

import asyncio

from flext_api import BulkheadConfig, ErrorCode, FlextResult, HttpRequest, HttpResponse
from flext_api.client.plugins import BulkheadPlugin
from flext_api.resilience import Bulkhead
from flext_api.testing import FakeClock

from ._fakes import Upstream, get, ok


async def test_permit_is_returned_after_the_call() -> None:
    """The permit is held during the call and given back after, even on failure."""
    bulkhead = BulkheadPlugin(BulkheadConfig(enabled=True, max_concurrent=1), clock=FakeClock())
    await bulkhead.handle(get(), Upstream([200]))
    await bulkhead.handle(get(), Upstream([ErrorCode.CONNECT_ERROR]))
    assert bulkhead.bulkhead.stats("api.example.com") == (0, 0)


async def test_full_bulkhead_rejects_with_the_request() -> None:
    """Cap 1 and no queue: a second concurrent call is BULKHEAD_FULL, unsent."""
    config = BulkheadConfig(enabled=True, max_concurrent=1, max_queue=0)
    bulkhead = BulkheadPlugin(config, clock=FakeClock())
    gate = asyncio.Event()

    async def slow(request: HttpRequest) -> FlextResult[HttpResponse]:
        await gate.wait()
        return ok(200)

    first = asyncio.create_task(bulkhead.handle(get(), slow))
    await asyncio.sleep(0)
    request = get()
    upstream = Upstream([200])
    result = await bulkhead.handle(request, upstream)
    assert result.error_code is ErrorCode.BULKHEAD_FULL
    assert result.exception is not None and result.exception.request is request
    assert upstream.calls == 0
    gate.set()
    assert (await first).is_success


async def test_hosts_have_separate_compartments() -> None:
    """A busy host does not block calls to another host."""
    config = BulkheadConfig(enabled=True, max_concurrent=1, max_queue=0)
    bulkhead = BulkheadPlugin(config, clock=FakeClock())
    gate = asyncio.Event()

    async def slow(request: HttpRequest) -> FlextResult[HttpResponse]:
        await gate.wait()
        return ok(200)

    first = asyncio.create_task(bulkhead.handle(get("http://a.example/"), slow))
    await asyncio.sleep(0)
    assert (await bulkhead.handle(get("http://b.example/"), Upstream([200]))).is_success
    gate.set()
    await first


async def test_disabled_config_passes_through_and_default_is_on() -> None:
    """An explicit disabled config is a pass-through; no config means on."""
    off = BulkheadPlugin(BulkheadConfig(enabled=False, max_concurrent=1))
    assert (await off.handle(get(), Upstream([200]))).is_success
    assert off.bulkhead.stats("api.example.com") == (0, 0)
    on = BulkheadPlugin()
    assert on.config.enabled and on.bulkhead.max_concurrent == 50


def test_a_shared_bulkhead_is_used() -> None:
    """bulkhead= shares one compartment set between plugins."""
    shared = Bulkhead(3, 3)
    plugin = BulkheadPlugin(bulkhead=shared)
    assert plugin.bulkhead is shared
    assert repr(plugin) == f"<BulkheadPlugin {shared!r}>"
