"""The active prober over MockTransport: pass, fail, timeout, and rounds until cancelled."""

from __future__ import annotations

import asyncio

from flext_api._errors import ErrorCode, FlextApiError
from flext_api._models import HttpRequest, HttpResponse
from flext_api.discovery import HealthCheckConfig, ServiceInstance, ServiceRegistry
from flext_api.discovery._prober import probe_once, run_probes
from flext_api.transports import MockTransport

CONFIG = HealthCheckConfig(interval=0.01, timeout=0.05, healthy_threshold=1, unhealthy_threshold=1)


async def _handler(request: HttpRequest) -> HttpResponse:
    port = request.url.split(":")[2].split("/")[0]
    if port == "9001":
        return HttpResponse(503)
    if port == "9002":
        raise FlextApiError.from_code(ErrorCode.CONNECT_ERROR, "refused")
    if port == "9003":
        await asyncio.sleep(1.0)
    return HttpResponse(200)


async def _registry() -> ServiceRegistry:
    registry = ServiceRegistry(health_check=CONFIG)
    for port in (9000, 9001, 9002, 9003):
        inst = ServiceInstance(id=f"p{port}", name="svc", url=f"http://127.0.0.1:{port}")
        await registry.register("svc", inst)
    return registry


async def test_probe_round_marks_each_outcome() -> None:
    """200 stays up; 503, a refused connection and a timeout go down (threshold 1)."""
    registry = await _registry()
    sent = await probe_once(registry, CONFIG, MockTransport(_handler))
    assert sent == 4
    states = {r["id"]: r["state"] for r in registry.stats()["services"]["svc"]["instances"]}
    assert states == {"p9000": "up", "p9001": "down", "p9002": "down", "p9003": "down"}
    probes = registry.probe_counts()
    assert probes[("svc", "p9000", True)] == 1 and probes[("svc", "p9003", False)] == 1


async def test_probe_rounds_run_until_cancelled_and_keep_a_given_transport() -> None:
    """run_probes loops until cancelled and leaves a transport it was given open."""
    registry = await _registry()
    transport = MockTransport(_handler)
    task = asyncio.create_task(run_probes(registry, CONFIG, transport))
    from tests._poll import eventually

    assert await eventually(lambda: len(transport.requests) >= 8)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not transport.closed


class _BrokenTransport:
    """A transport of the user's that raises something that is no FlextApiError."""

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, request: HttpRequest, *, stream: bool = False) -> HttpResponse:
        self.calls += 1
        raise RuntimeError("the custom transport broke")

    async def aclose(self) -> None:
        """Nothing to close."""


async def test_probe_raising_an_unexpected_error_is_a_failed_probe_and_rounds_go_on() -> None:
    """An exception other than FlextApiError is that probe's failure (logged); it neither
    escapes probe_once nor ends the probing rounds."""
    registry = await _registry()
    transport = _BrokenTransport()
    sent = await probe_once(registry, CONFIG, transport)  # type: ignore[arg-type]
    assert sent == 4
    states = {r["id"]: r["state"] for r in registry.stats()["services"]["svc"]["instances"]}
    assert set(states.values()) == {"down"}
    task = asyncio.create_task(run_probes(registry, CONFIG, transport))  # type: ignore[arg-type]
    from tests._poll import eventually

    assert await eventually(lambda: transport.calls >= 12)  # two more rounds at least
    assert not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
