"""The resilience fault matrix: one row per upstream fault, against the real fault server.

Every row uses a real :class:`FlextApiClient` with the default pipeline (deadline ->
retry -> per-host circuit breaker -> [rate limiter] -> transport), changing only
``ClientConfig`` figures. Rows that are not about real waiting run under
``set_testing(True)`` (backoff sleeps cost nothing); the Retry-After, breaker open
time, rate limiter and deadline rows run on real time, because time is what they test.
Every row ends with the leak check: no connection in use or waited for, and no task
left once the client is closed. Every row runs on each transport of ``TRANSPORTS``: the
default aiohttp one and the optional pyreqwest one (its extra is in ``dev``).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from flext_api import (
    BreakerConfig,
    ClientConfig,
    ErrorCode,
    FlextApiError,
    RateLimitConfig,
    RetryConfig,
    TimeoutConfig,
)
from flext_api.client import FlextApiClient
from flext_api.client.plugins import CircuitBreakerPlugin
from flext_api.resilience import BreakerState, CircuitBreaker
from flext_api.testing import is_testing, set_testing
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter

pytestmark = pytest.mark.integration

REFUSED_URL = "http://127.0.0.1:1"  # a privileged port nothing listens on
TRANSPORTS = ["aiohttp", "pyreqwest"]
_transport = "aiohttp"  # set per test by the ``transport`` fixture

#: pytest's ``record_property``: measured figures land in the junit XML report.
Record = Callable[[str, object], None]


@pytest.fixture(params=TRANSPORTS, autouse=True)
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every row runs once per transport: ``ClientConfig(transport=...)`` selects it."""
    name = str(request.param)
    monkeypatch.setattr(sys.modules[__name__], "_transport", name)
    return name


@pytest.fixture
def testing_mode() -> Iterator[None]:
    """Backoff and Retry-After sleeps return at once for the duration of one test."""
    with set_testing(True):
        yield


@pytest.fixture
def real_time() -> None:
    """Guard for the rows where real time is the point: testing mode must be off."""
    assert not is_testing()


def _key() -> str:
    return uuid.uuid4().hex[:12]


def _client(url: str, config: ClientConfig | None = None) -> FlextApiClient:
    config = (config or ClientConfig()).model_copy(update={"transport": _transport})
    client = FlextApiClient(url, config=config)
    assert getattr(client.transport, "name", None) == _transport
    return client


async def _close_without_leaks(client: FlextApiClient) -> None:
    """No connection in use or awaited before close; no task left after it."""
    pool = client.stats()["pool"]
    assert (pool["in_use"], pool["waiting"]) == (0, 0)
    await client.aclose()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


def _error(exception: FlextApiError | None) -> FlextApiError:
    assert exception is not None
    return exception


# ------------------------------------------------------------------------ retries
@pytest.mark.usefixtures("testing_mode")
async def test_get_503_twice_then_200_succeeds_on_the_third_attempt(fault: FaultServer) -> None:
    """A GET that meets 503, 503, 200 succeeds with attempts == 3; the server saw 3."""
    path = f"/flaky/{_key()}/2/503"
    client = _client(fault.url)
    result = await client.get(path)
    assert result.is_success
    assert result.value.status_code == 200
    assert result.value.attempts == 3
    assert fault.hits(path) == 3
    await _close_without_leaks(client)


@pytest.mark.usefixtures("testing_mode")
async def test_post_503_without_idempotency_key_is_not_retried(fault: FaultServer) -> None:
    """A POST answered 503 without an Idempotency-Key fails HTTP_STATUS after one attempt."""
    path = f"/flaky/{_key()}/2/503"
    client = _client(fault.url)
    result = await client.post(path, json={"n": 1})
    assert result.error_code is ErrorCode.HTTP_STATUS
    error = _error(result.exception)
    assert error.response is not None and error.response.status_code == 503
    assert error.response.attempts == 1
    assert fault.hits(path) == 1
    await _close_without_leaks(client)


@pytest.mark.usefixtures("testing_mode")
@pytest.mark.parametrize("given_key", ["order-42", None], ids=["header", "generated"])
async def test_post_with_idempotency_key_is_retried_with_the_same_key(
    fault: FaultServer, given_key: str | None
) -> None:
    """A POST with an Idempotency-Key (given, or generated once) is retried; same key each time."""
    path = f"/flaky/{_key()}/2/503"
    client = _client(fault.url)
    if given_key is None:
        result = await client.post(path, json={"n": 1}, idempotency_key=True)
    else:
        result = await client.post(path, json={"n": 1}, headers={"Idempotency-Key": given_key})
    assert result.is_success
    assert result.value.attempts == 3
    keys = [r.headers.get("idempotency-key") for r in fault.requests_to(path)]
    assert len(keys) == 3
    assert len(set(keys)) == 1 and keys[0]
    if given_key is not None:
        assert keys[0] == given_key
    await _close_without_leaks(client)


@pytest.mark.usefixtures("real_time")
async def test_429_with_retry_after_1_waits_a_second_then_succeeds(
    fault: FaultServer, record_property: Record
) -> None:
    """A 429 with Retry-After: 1 is retried after >= 1 s (wall and server clocks), then succeeds."""
    path = f"/retry-after/{_key()}/1"
    client = _client(fault.url)
    start = time.monotonic()
    result = await client.get(path, params={"after": "1"})
    elapsed = time.monotonic() - start
    assert result.is_success
    assert result.value.attempts == 2
    seen = fault.requests_to(path)
    assert len(seen) == 2
    gap = seen[1].time - seen[0].time
    record_property("server_gap_s", round(gap, 4))
    record_property("wall_s", round(elapsed, 4))
    assert gap >= 1.0
    assert 1.0 <= elapsed < 30.0  # one Retry-After wait, not more (a generous bound)
    await _close_without_leaks(client)


@pytest.mark.usefixtures("real_time")
async def test_retry_after_3600_fails_fast_as_rate_limited(
    fault: FaultServer, record_property: Record
) -> None:
    """Retry-After: 3600 is not slept: RATE_LIMITED at once, with retry_after == 3600."""
    path = f"/retry-after/{_key()}/1"
    client = _client(fault.url)
    start = time.monotonic()
    result = await client.get(path, params={"after": "3600"})
    elapsed = time.monotonic() - start
    assert result.error_code is ErrorCode.RATE_LIMITED
    assert _error(result.exception).retry_after == 3600
    record_property("wall_s", round(elapsed, 4))
    assert elapsed < 60.0  # the hour was not slept (a generous bound)
    assert fault.hits(path) == 1
    await _close_without_leaks(client)


@pytest.mark.usefixtures("testing_mode")
async def test_refused_connection_exhausts_retries_chaining_the_connect_error() -> None:
    """A refused port fails RETRIES_EXHAUSTED after 4 attempts; the cause is CONNECT_ERROR."""
    client = _client(REFUSED_URL)
    result = await client.get("/anything")
    assert result.error_code is ErrorCode.RETRIES_EXHAUSTED
    error = _error(result.exception)
    cause = error.__cause__
    assert isinstance(cause, FlextApiError)
    assert cause.code is ErrorCode.CONNECT_ERROR
    assert error.details["last_error"] is cause
    assert error.details["attempts"] == RetryConfig().max_retries + 1 == 4
    await _close_without_leaks(client)


@pytest.mark.usefixtures("testing_mode")
async def test_read_timeout_on_get_is_retried(fault: FaultServer) -> None:
    """A GET whose answer is slower than the read timeout is retried (the server sees 4)."""
    client = _client(fault.url, ClientConfig(timeout=TimeoutConfig(read=0.2)))
    result = await client.get("/delay/2")
    assert result.error_code is ErrorCode.RETRIES_EXHAUSTED
    cause = _error(result.exception).__cause__
    assert isinstance(cause, FlextApiError) and cause.code is ErrorCode.READ_TIMEOUT
    assert fault.hits("/delay/2") == 4
    await _close_without_leaks(client)


@pytest.mark.usefixtures("testing_mode")
async def test_read_timeout_on_post_is_not_retried(fault: FaultServer) -> None:
    """A POST that times out reading may have been processed: not retried (the server sees 1)."""
    client = _client(fault.url, ClientConfig(timeout=TimeoutConfig(read=0.2)))
    result = await client.post("/delay/2", json={"n": 1})
    assert result.error_code is ErrorCode.READ_TIMEOUT
    assert fault.hits("/delay/2") == 1
    await _close_without_leaks(client)


# ---------------------------------------------------------------- circuit breaker
class _SwitchableHost:
    """A fault route that drops every connection until ``healthy`` is set, then answers 200."""

    def __init__(self) -> None:
        self.healthy = False

    async def __call__(self, req: Request, w: ResponseWriter) -> None:
        if self.healthy:
            await w.send_json({"ok": True})
        else:
            w.abort()


def _breaker_of(client: FlextApiClient, fault: FaultServer) -> CircuitBreaker:
    plugin = client.plugins.get(CircuitBreakerPlugin.name)
    assert isinstance(plugin, CircuitBreakerPlugin)
    breaker = plugin.registry.peek(f"127.0.0.1:{fault.port}")
    assert breaker is not None
    return breaker


def _state(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state, read afresh (a plain attribute read narrows for mypy)."""
    return breaker.state


@pytest.mark.usefixtures("real_time")
async def test_breaker_opens_on_a_dead_host_fails_fast_then_recovers(
    fault: FaultServer, record_property: Record
) -> None:
    """200 GETs to a dead host open the breaker; later calls fail without any I/O;
    after the open time 3 trial calls go through and the breaker closes on a healthy host."""
    # Long enough that a stalled machine does not reach the half-open state during the
    # 100 fast-fail calls below (0.8 s did on a loaded 2-core machine).
    open_duration = 3.0
    config = ClientConfig(
        breaker=BreakerConfig(open_duration=open_duration, open_jitter=0.0),
        # Short backoffs: every retry of the hammer lands while the breaker is open.
        retry=RetryConfig(backoff_initial=0.01, backoff_max=0.05),
    )
    host = _SwitchableHost()
    path = f"/switch/{_key()}"
    route = fault.add_route(path, host)
    client = _client(fault.url, config)
    try:
        hammer = await asyncio.gather(*(client.get(path) for _ in range(200)))
        assert all(r.is_failure for r in hammer)
        assert any(r.error_code is ErrorCode.CIRCUIT_OPEN for r in hammer)
        breaker = _breaker_of(client, fault)
        assert _state(breaker) is BreakerState.OPEN
        hits, connections = fault.hits(path), fault.connections_opened
        record_property("hammer_hits", hits)
        assert 200 <= hits < 260  # every first attempt, plus the few retries before opening

        durations: list[float] = []
        retry_after = 0.0
        gc.disable()  # a collection pause is not the client's latency
        try:
            for _ in range(100):
                start = time.perf_counter()
                result = await client.get(path)
                durations.append(time.perf_counter() - start)
                assert result.error_code is ErrorCode.CIRCUIT_OPEN
                retry_after = _error(result.exception).retry_after or 0.0
                # A busy machine can land a hammer retry in the half-open window and
                # open it again, for longer: bounded by the growth cap, not the first time.
                assert 0.0 < retry_after <= config.breaker.open_duration_max
        finally:
            gc.enable()
        record_property("fast_fail_max_us", round(max(durations) * 1e6, 1))
        record_property("fast_fail_median_us", round(statistics.median(durations) * 1e6, 1))
        assert (fault.hits(path), fault.connections_opened) == (hits, connections)

        host.healthy = True
        await asyncio.sleep(retry_after + 0.05)
        trials = await asyncio.gather(*(client.get(path) for _ in range(5)))
        assert [r.is_success for r in trials].count(True) == 3
        rejected = [r for r in trials if r.is_failure]
        assert [r.error_code for r in rejected] == [ErrorCode.CIRCUIT_OPEN] * 2
        assert fault.hits(path) == hits + 3
        assert _state(breaker) is BreakerState.CLOSED
        assert (await client.get(path)).is_success
        await _close_without_leaks(client)
    finally:
        await client.aclose()
        fault.remove_route(route)


# --------------------------------------------------------------- retry budget
@pytest.mark.usefixtures("testing_mode")
async def test_retry_budget_caps_retries_when_everything_fails(
    fault: FaultServer, record_property: Record
) -> None:
    """100 concurrent GETs to a 503 with 3 retries each: the budget holds retries to its
    allowance (<= 130 hits, not 400). The breaker is off so the budget alone is measured."""
    retry = RetryConfig(max_retries=3)
    config = ClientConfig(retry=retry, breaker=BreakerConfig(enabled=False))
    allowance = max(
        int(retry.budget_min_per_second * retry.budget_window),
        int((retry.budget_ratio or 0.0) * 100),
    )
    client = _client(fault.url, config)
    results = await asyncio.gather(*(client.get("/status/503") for _ in range(100)))
    assert all(r.error_code is ErrorCode.RETRIES_EXHAUSTED for r in results)
    reasons = [_error(r.exception).details["reason"] for r in results]
    assert "budget" in reasons
    hits = fault.hits("/status/503")
    record_property("server_hits", hits)
    assert 100 < hits <= 100 + allowance
    assert hits < 400 // 2
    await _close_without_leaks(client)


# --------------------------------------------------------------- rate limiter
@pytest.mark.usefixtures("real_time")
async def test_rate_limiter_holds_20_per_second_at_the_server(
    fault: FaultServer, record_property: Record
) -> None:
    """With a 20 req/s limit (burst 1), 61 concurrent GETs reach the server at 20/s +-10 %."""
    config = ClientConfig(rate_limit=RateLimitConfig(enabled=True, rate=20.0, burst=1))
    client = _client(fault.url, config)
    results = await asyncio.gather(*(client.get("/status/200") for _ in range(61)))
    assert all(r.is_success for r in results)
    times = sorted(r.time for r in fault.requests_to("/status/200"))
    assert len(times) == 61
    span = times[-1] - times[0]
    rate = (len(times) - 1) / span
    record_property("rate_per_s", round(rate, 3))
    assert 18.0 <= rate <= 22.0, f"measured {rate:.2f} req/s over {span:.2f}s"
    await _close_without_leaks(client)


# ------------------------------------------------------------------- deadline
@pytest.mark.usefixtures("real_time")
async def test_deadline_cuts_a_slow_upstream_at_two_seconds(
    fault: FaultServer, record_property: Record
) -> None:
    """A 2 s deadline (read timeout 10 s) against a 5 s upstream fails DEADLINE_EXCEEDED at ~2 s."""
    config = ClientConfig(timeout=TimeoutConfig(read=10.0, total=2.0))
    client = _client(fault.url, config)
    start = time.monotonic()
    result = await client.get("/delay/5")
    elapsed = time.monotonic() - start
    assert result.error_code is ErrorCode.DEADLINE_EXCEEDED
    record_property("elapsed_s", round(elapsed, 4))
    assert elapsed >= 1.9  # held to the deadline; DEADLINE_EXCEEDED shows it was cut
    assert fault.hits("/delay/5") == 1
    await _close_without_leaks(client)
