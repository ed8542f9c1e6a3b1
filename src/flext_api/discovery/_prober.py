"""The active health prober: ``GET path`` on every instance, every ``interval``.

The decisions (thresholds, re-admission) are :class:`HealthTracker`'s; this module only
sends probes through flext-api's own transport (the discovery layer sits below the
client, so it uses the transport directly: no retries, no breaker - a probe is one
observation). Each round probes the instances registered at that moment, so a removed
instance is no longer probed. Rounds are spread by ``jitter`` so many processes do not
probe in step.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

import structlog

from .._config import PoolConfig, TimeoutConfig
from .._errors import ErrorCode, FlextApiError
from .._models import HttpRequest
from ..transports._base import Transport
from ._health import HealthCheckConfig
from ._instance import ServiceInstance

if TYPE_CHECKING:
    from ._registry import ServiceRegistry

__all__ = ["probe_once", "run_probes"]

_log = structlog.get_logger("flext_api.discovery")


async def _probe(
    transport: Transport, instance: ServiceInstance, config: HealthCheckConfig
) -> tuple[bool, int | None, str | None]:
    request = HttpRequest(
        "GET",
        instance.url + config.path,
        headers={"User-Agent": "flext-api-health-check"},
        timeout=TimeoutConfig.of(config.timeout),
    )
    try:
        async with asyncio.timeout(config.timeout):
            # Streamed, and closed unread: the status is the verdict. A buffered read took
            # a 200 with a huge (or endless) body whole into memory, or failed a healthy
            # host with RESPONSE_TOO_LARGE or a timeout.
            response = await transport.send(request, stream=True)
            await response.aclose()
    except FlextApiError as exc:
        return False, None, exc.code.value
    except TimeoutError:
        return False, None, "READ_TIMEOUT"
    except Exception as exc:  # noqa: BLE001 - a transport of the user's: logged, a failure
        # Anything else is this probe's failure too: raised through gather() it ended
        # the probing rounds for good, with nothing said.
        _log.warning("discovery.probe_error", instance=instance.id, error=repr(exc), exc_info=exc)
        return False, None, ErrorCode.UNEXPECTED_ERROR.value
    return 200 <= response.status_code < 400, response.status_code, None


async def probe_once(
    registry: ServiceRegistry, config: HealthCheckConfig, transport: Transport
) -> int:
    """Probe every instance known now, concurrently; the number of probes sent."""
    targets = [
        (name, inst)
        for name in registry.services()
        if (cluster := registry.cluster(name)) is not None
        for inst in list(cluster.instances.values())
    ]
    results = await asyncio.gather(*(_probe(transport, inst, config) for _, inst in targets))
    for (name, inst), (passed, status, error) in zip(targets, results, strict=True):
        registry.record_probe(name, inst.id, passed=passed, status=status, error=error)
    return len(targets)


async def run_probes(
    registry: ServiceRegistry, config: HealthCheckConfig, transport: Transport | None = None
) -> None:
    """Probe rounds until the registry closes or this is cancelled; closes the transport it
    made itself."""
    own = transport is None
    if transport is None:
        from ..transports._aiohttp import AiohttpTransport

        transport = AiohttpTransport(
            PoolConfig(max_connections=64, max_keepalive=16), TimeoutConfig.of(config.timeout)
        )
    try:
        # Until the registry closes: a loop started with ``registry.health_check()`` (the
        # seed's way) is no task of the registry's for aclose() to cancel.
        while not registry.closed:
            await probe_once(registry, config, transport)
            spread = config.interval * config.jitter
            # Background timer: real time even while the testing switch is on.
            await registry._sleep_unless_closed(config.interval + random.uniform(-spread, spread))
    finally:
        if own:
            await transport.aclose()
