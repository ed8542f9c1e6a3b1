"""Hostile readiness, drain and metrics-exposure cases: probe storms, stuck checks,
malformed checks, concurrent drains, an empty metrics token."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from flext_api import ServerConfig
from flext_api._errors import ConfigError
from flext_api._server_config import MetricsConfig
from flext_api.server import make_json_logger
from flext_api.server._health import ReadinessChecks
from flext_api.server._metrics import ServerMetrics, metrics_endpoint
from tests.server.conftest import Build
from tests.server.helpers import records, serve


def _checks(timeout: float = 30.0) -> ReadinessChecks:
    return ReadinessChecks(timeout=timeout, logger=make_json_logger(io.StringIO()))


class Gate:
    """A check that counts its calls and passes once released."""

    def __init__(self) -> None:
        self.calls = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> bool:
        self.calls += 1
        self.entered.set()
        await self.release.wait()
        return True


async def test_concurrent_probes_share_one_run() -> None:
    """Probes arriving while a run is under way wait for it: the dependency is pinged
    once, not once per probe (/ready is public and not rate limited)."""
    gate = Gate()
    checks = _checks()
    checks.add("db", gate)
    first = asyncio.create_task(checks.run())
    await gate.entered.wait()
    # Created before the release, so each reaches run() while the first run is pending.
    others = [asyncio.create_task(checks.run()) for _ in range(20)]
    gate.release.set()
    outcomes = await asyncio.gather(first, *others)
    assert gate.calls == 1
    assert all(outcome == (True, {"db": [{"status": "pass"}]}) for outcome in outcomes)


async def test_sequential_probes_each_run_the_checks() -> None:
    """Sharing is only among concurrent probes: a later probe runs the checks again."""
    calls = 0

    async def db() -> bool:
        nonlocal calls
        calls += 1
        return calls == 1

    checks = _checks()
    checks.add("db", db)
    assert (await checks.run())[0] is True
    assert (await checks.run())[0] is False
    assert calls == 2


async def test_probe_going_away_does_not_cancel_the_shared_run() -> None:
    """A probe cancelled (its client hung up) leaves the run the others wait for."""
    gate = Gate()
    checks = _checks()
    checks.add("db", gate)
    leaving = asyncio.create_task(checks.run())
    await gate.entered.wait()
    staying = asyncio.create_task(checks.run())
    leaving.cancel()
    gate.release.set()
    assert await staying == (True, {"db": [{"status": "pass"}]})
    assert leaving.cancelled()


async def test_stuck_check_is_not_started_again_while_it_straggles() -> None:
    """A check that ignores its timeout's cancellation runs once: later probes report it
    timed out without starting another copy, until it ends."""
    calls = 0
    release = asyncio.Event()

    async def stubborn() -> bool:
        nonlocal calls
        calls += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()  # e.g. a driver finishing its round trip first
        return True

    log = io.StringIO()
    checks = ReadinessChecks(timeout=0.05, logger=make_json_logger(log))
    checks.add("db", stubborn)
    outcomes = [await checks.run() for _ in range(3)]
    assert calls == 1
    assert len(checks._stragglers) == 1
    assert all(o == (False, {"db": [{"status": "fail", "output": "timed out"}]}) for o in outcomes)
    assert len(records(log, "readiness check still running from an earlier probe")) == 2
    release.set()
    await asyncio.wait(set(checks._stragglers))
    assert checks._stragglers == set()
    await checks.run()  # it ended: the next probe starts it afresh
    assert calls == 2


async def _agen() -> AsyncIterator[bool]:
    yield False


def test_generator_check_or_non_str_name_is_refused() -> None:
    """An async generator function would "pass" without running, and a non-str name
    would make /ready a 500: both are a TypeError at registration."""
    checks = _checks()
    with pytest.raises(TypeError, match="generator function"):
        checks.add("db", _agen)
    with pytest.raises(TypeError, match="name must be a str"):
        checks.add(1, lambda: True)  # type: ignore[arg-type]
    assert checks.names == []


async def test_generator_check_given_to_factory_is_refused(build: Build) -> None:
    """The factory's readiness_checks= goes through the same registration."""
    with pytest.raises(TypeError, match="generator function"):
        build(readiness_checks={"db": _agen})


async def test_concurrent_drains_all_see_the_end(build: Build) -> None:
    """Two drains at once (a pre-stop hook and the lifespan) both return True when the
    last request ends; the first was left waiting for a replaced event."""
    state = build().state.flext
    state.request_started()
    first = asyncio.create_task(state.drain(10.0))
    second = asyncio.create_task(state.drain(10.0))
    # Queued after both drains' first steps, so both are waiting when it runs.
    asyncio.get_running_loop().call_soon(state.request_finished)
    assert list(await asyncio.gather(first, second)) == [True, True]
    assert state._idle is None


async def test_drain_begun_as_a_request_replaces_the_last_waits_for_it(build: Build) -> None:
    """A drain that starts just as the last request ends and a new one arrives waits
    for the new one (it neither returns at once nor misses its end)."""
    state = build().state.flext
    loop = asyncio.get_running_loop()
    state.request_started()
    first = asyncio.create_task(state.drain(10.0))
    later: list[asyncio.Task[bool]] = []

    def churn() -> None:
        state.request_finished()
        state.request_started()
        later.append(asyncio.create_task(state.drain(10.0)))

    loop.call_soon(churn)
    assert await first is True
    (second,) = later
    assert not second.done()
    state.request_finished()
    assert await second is True


@pytest.mark.parametrize("token", ["", "   ", "s3cret\n", " s3cret"])
def test_unusable_metrics_token_is_a_config_error(token: str) -> None:
    """An empty token (an unset secret) left /metrics open; one with surrounding
    whitespace could never match a header. Both are refused, without quoting it."""
    with pytest.raises(ConfigError, match=r"metrics\.token") as err:
        ServerConfig(metrics=MetricsConfig(token=SecretStr(token)))
    if token.strip():
        assert token.strip() not in str(err.value)


def test_metrics_endpoint_refuses_an_empty_token() -> None:
    """metrics_endpoint(token="") is a ValueError, not an unprotected endpoint."""
    metrics = ServerMetrics(buckets=(0.1,))
    with pytest.raises(ValueError, match="token is empty"):
        metrics_endpoint(metrics, "")


async def test_token_still_guards_metrics_after_validation(build: Build) -> None:
    """A valid token keeps /metrics closed to a request with an empty bearer value."""
    app = build(ServerConfig(metrics=MetricsConfig(token=SecretStr("t0ken"))))
    async with serve(app) as client:
        empty = await client.get("/metrics", headers={"Authorization": "Bearer "})
        right = await client.get("/metrics", headers={"Authorization": "Bearer t0ken"})
    assert (empty.status_code, right.status_code) == (401, 200)


async def test_non_ascii_token_sent_as_utf8_is_accepted(build: Build) -> None:
    """A token with non-ASCII characters matches when the client sends it as UTF-8 (as
    Prometheus and curl do); it was compared with the header's latin-1 reading."""
    token = "pässwörd-€"
    app = build(ServerConfig(metrics=MetricsConfig(token=SecretStr(token))))
    async with serve(app) as client:
        utf8 = await client.get("/metrics", headers={b"authorization": b"Bearer " + token.encode()})
        wrong = await client.get(
            "/metrics", headers={b"authorization": b"Bearer " + token[:-1].encode()}
        )
    assert (utf8.status_code, wrong.status_code) == (200, 401)
