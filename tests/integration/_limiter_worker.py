"""One client process of ``test_shared_limiter_processes``: a subprocess entry point.

Run as ``python -m tests.integration._limiter_worker BASE_URL REDIS_URL NAME SECONDS
CONCURRENCY``. The worker builds a :class:`FlextApiClient` whose rate limiter is shared
through Redis (``RateLimitConfig(redis_url=...)``), prints ``ready``, waits for a line
on stdin (so that every worker starts sending at the same moment), then runs
``CONCURRENCY`` loops of ``GET /status/200`` (tagged ``X-Worker: NAME``) for ``SECONDS``
seconds. It ends by printing one JSON line: requests sent, their outcomes, and whether
the limiter fell back to its local (unshared) mode, which would void the measurement.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter

from flext_api import ClientConfig, RateLimitConfig
from flext_api.client import FlextApiClient
from flext_api.client.plugins import RateLimitPlugin
from flext_api.resilience import RedisRateLimiter

#: The shared limit under test, in requests per second for all workers together.
SHARED_RATE = 10.0


async def _loop(client: FlextApiClient, name: str, end: float, outcomes: Counter[str]) -> None:
    while time.monotonic() < end:
        result = await client.get("/status/200", headers={"X-Worker": name})
        outcomes["ok" if result.is_success else str(result.error_code)] += 1


async def _run(
    base_url: str, redis_url: str, name: str, seconds: float, loops: int
) -> dict[str, object]:
    limit = RateLimitConfig(enabled=True, rate=SHARED_RATE, burst=1, redis_url=redis_url)
    outcomes: Counter[str] = Counter()
    async with FlextApiClient(base_url, config=ClientConfig(rate_limit=limit)) as client:
        plugin = client.plugins.get(RateLimitPlugin.name)
        assert isinstance(plugin, RateLimitPlugin)
        limiter = plugin.limiter
        assert isinstance(limiter, RedisRateLimiter)
        end = time.monotonic() + seconds
        await asyncio.gather(*(_loop(client, name, end, outcomes) for _ in range(loops)))
        fell_back = limiter.using_fallback
    return {"name": name, "outcomes": dict(outcomes), "fell_back": fell_back}


def main(argv: list[str]) -> int:
    """Wait for the start signal on stdin, send for the given time, report as JSON."""
    base_url, redis_url, name, seconds, loops = argv
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        return 2
    report = asyncio.run(_run(base_url, redis_url, name, float(seconds), int(loops)))
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
