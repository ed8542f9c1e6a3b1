"""Large bodies stream through a gateway process in bounded memory (its RSS is measured).

1 GiB each way, as the gateway's acceptance asks (the bound is 64 MiB of growth).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import psutil
import pytest

from tests.integration.gateway.conftest import GatewayProcess
from tests.integration.gateway.upstream import Upstream

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIZE = 1024 * 1024 * 1024
GROWTH_LIMIT = 64 * 1024 * 1024


class PeakRss:
    """Samples a process's RSS in a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.baseline: int = self.proc.memory_info().rss
        self.peak: int = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, int(self.proc.memory_info().rss))
            self._stop.wait(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak - self.baseline


@pytest.fixture
def gateway_process(
    upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> Iterator[GatewayProcess]:
    a, _ = upstreams
    config = {
        "clusters": [{"name": "svc", "instances": [{"url": a.url}]}],
        "routes": [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "svc"}],
        "watch": False,
    }
    gw = GatewayProcess(config, tmp_path)
    try:
        gw.wait_ready()
        yield gw
    finally:
        gw.stop()


async def _warm_up(url: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(url + "/echo/warm") as r:
        assert r.status == 200


async def test_large_upload_streams(
    upstreams: tuple[Upstream, Upstream], gateway_process: GatewayProcess
) -> None:
    """A 1 GiB upload reaches the upstream whole while the gateway grows < 64 MiB."""
    await _warm_up(gateway_process.url)
    rss = PeakRss(gateway_process.process.pid)

    async def body() -> AsyncIterator[bytes]:
        chunk = b"u" * (1024 * 1024)
        for _ in range(SIZE // len(chunk)):
            yield chunk

    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway_process.url + "/upload", data=body()) as response,
    ):
        received = (await response.json())["received"]
    growth = rss.stop()
    assert received == SIZE
    assert growth < GROWTH_LIMIT, f"gateway RSS grew by {growth / 2**20:.1f} MiB"


async def test_large_download_streams(
    upstreams: tuple[Upstream, Upstream], gateway_process: GatewayProcess
) -> None:
    """A 1 GiB download reaches the client whole while the gateway grows < 64 MiB."""
    await _warm_up(gateway_process.url)
    rss = PeakRss(gateway_process.process.pid)
    total = 0
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway_process.url + f"/download?n={SIZE}") as response,
    ):
        async for chunk in response.content.iter_any():
            total += len(chunk)
    growth = rss.stop()
    assert total == SIZE
    assert growth < GROWTH_LIMIT, f"gateway RSS grew by {growth / 2**20:.1f} MiB"
