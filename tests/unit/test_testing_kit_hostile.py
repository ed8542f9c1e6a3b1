"""flext_api.testing against odd input: FakeClock values, set_testing misuse, secrets."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from flext_api import ClientConfig, HttpRequest, HttpResponse
from flext_api._clock import _TESTING
from flext_api.client import FlextApiClient, FlextApiPlugin
from flext_api.client.auth import ApiKeyAuth, BasicAuth, BearerAuth, OAuth2ClientCredentials
from flext_api.testing import FakeClock, describe, is_testing, set_testing, testing_attempts
from flext_api.transports import MockTransport


def _ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, request=request)


@pytest.fixture(autouse=True)
def _testing_switch_restored() -> Iterator[None]:
    """Each test leaves the process-wide switch as it found it, whatever it did."""
    previous = (_TESTING.enabled, _TESTING.attempts)
    yield
    _TESTING.enabled, _TESTING.attempts = previous


# -- FakeClock ------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.0, -1.0, math.nan])
async def test_a_manual_clock_sleep_that_is_due_already_only_yields(seconds: float) -> None:
    """With auto_advance off, a sleep of 0, less or NaN returns after one turn of the loop
    (as asyncio.sleep(0)) instead of waiting for an advance() that may never come."""
    clock = FakeClock(auto_advance=False)
    sleeper = asyncio.create_task(clock.sleep(seconds))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert sleeper.done()
    sleeper.cancel()
    assert clock.sleeps == [0.0] and clock.monotonic() == 1_000.0


async def test_an_infinite_auto_advance_sleep_waits_and_keeps_time_finite() -> None:
    """sleep(inf) with auto_advance waits until cancelled, as asyncio.sleep(inf) does;
    the clock never jumps to infinity, so later readings and sleeps still work."""
    clock = FakeClock()
    forever = asyncio.create_task(clock.sleep(math.inf))
    await asyncio.sleep(0)
    assert not forever.done() and clock.monotonic() == 1_000.0
    await clock.sleep(2)
    assert clock.monotonic() == 1_002.0 and not forever.done()
    forever.cancel()
    with pytest.raises(asyncio.CancelledError):
        await forever
    assert clock.sleeps == [math.inf, 2.0]


async def test_a_sleep_past_the_float_range_waits_instead_of_breaking_time() -> None:
    """An auto-advance sleep whose wake time is past the float range waits forever."""
    clock = FakeClock(start=1e308)
    huge = asyncio.create_task(clock.sleep(1e308))
    await asyncio.sleep(0)
    assert not huge.done() and math.isfinite(clock.monotonic())
    huge.cancel()


@pytest.mark.parametrize("seconds", [math.nan, math.inf])
def test_advance_refuses_values_that_would_break_time(seconds: float) -> None:
    """advance() refuses NaN and infinity (time would stay NaN or inf for good) as it
    refuses going back; the clock is unchanged."""
    clock = FakeClock()
    with pytest.raises(ValueError, match="cannot go back or leave finite time"):
        clock.advance(seconds)
    assert clock.monotonic() == 1_000.0


async def test_advance_refused_leaves_sleepers_asleep() -> None:
    """A refused advance(nan) wakes nobody; a later good advance wakes the sleeper."""
    clock = FakeClock(auto_advance=False)
    sleeper = asyncio.create_task(clock.sleep(1))
    await asyncio.sleep(0)
    with pytest.raises(ValueError):
        clock.advance(math.nan)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(1)
    await sleeper


async def test_sleepers_wake_by_time_then_in_the_order_they_slept() -> None:
    """One advance past several wake times wakes them by time, ties in arrival order."""
    clock = FakeClock(auto_advance=False)
    woke: list[str] = []

    async def sleeper(name: str, delay: float) -> None:
        await clock.sleep(delay)
        woke.append(name)

    tasks = [
        asyncio.create_task(sleeper(name, delay))
        for name, delay in [("c", 3), ("a1", 1), ("b", 2), ("a2", 1)]
    ]
    await asyncio.sleep(0)
    clock.advance(5)
    await asyncio.gather(*tasks)
    assert woke == ["a1", "a2", "b", "c"]


async def test_a_cancelled_sleeper_is_forgotten() -> None:
    """A cancelled sleep leaves the queue (an endless one would stay there for good),
    and the others still wake."""
    clock = FakeClock(auto_advance=False)
    kept = asyncio.create_task(clock.sleep(1))
    gone = [asyncio.create_task(clock.sleep(s)) for s in (math.inf, 2)]
    await asyncio.sleep(0)
    for task in gone:
        task.cancel()
    await asyncio.gather(*gone, return_exceptions=True)
    assert len(clock._waiters) == 1
    clock.advance(1)
    await kept


# -- set_testing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "error"),
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)],
)
def test_set_testing_refuses_attempts_that_are_no_count(
    attempts: Any, error: type[Exception]
) -> None:
    """attempts is an int >= 1: "2" would make every retry a TypeError later, 0 or 1.5
    an attempt count no retry stage can make; the state is left as it was."""
    with pytest.raises(error, match="attempts"):
        set_testing(True, attempts=attempts)
    assert not is_testing() and testing_attempts() is None


@pytest.mark.parametrize("flag", ["false", 1, None])
def test_set_testing_refuses_a_flag_that_is_no_bool(flag: Any) -> None:
    """The switch takes a bool: "false" read from the environment would turn it on."""
    with pytest.raises(TypeError, match="testing must be a bool"):
        set_testing(flag)
    assert not is_testing()


def test_set_testing_nests_and_restores_through_an_exception() -> None:
    """Nested blocks restore the state outside them, also when the inner one raises."""
    seen: list[tuple[bool, int | None]] = []

    def failing_block() -> None:
        with set_testing(False):
            seen.append((is_testing(), testing_attempts()))
            raise RuntimeError("inside")

    with set_testing(True, attempts=3):
        with pytest.raises(RuntimeError):
            failing_block()
        seen.append((is_testing(), testing_attempts()))
    assert seen == [(False, None), (True, 3)]
    assert not is_testing() and testing_attempts() is None


def test_set_testing_from_a_thread_is_process_wide() -> None:
    """The switch is process-wide: a thread's block is seen here and restored after."""
    seen: list[tuple[bool, int | None]] = []
    inside = threading.Event()
    leave = threading.Event()

    def worker() -> None:
        with set_testing(True, attempts=2):
            inside.set()
            leave.wait()

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait()
    seen.append((is_testing(), testing_attempts()))
    leave.set()
    thread.join()
    seen.append((is_testing(), testing_attempts()))
    assert seen == [(True, 2), (False, None)]


# -- describe -------------------------------------------------------------------------------

_SECRETS = (
    "HDR-AUTH",
    "HDR-COOKIE",
    "HDR-KEY",
    "PAIR-COOKIE",
    "LIST-URL-PW",
    "URLS-PW",
    "DSN-PW",
    "QUERY-TOKEN",
    "API-TOKEN",
    "TUPLE-PW",
    "SECRETSTR",
    "SECRET-KEY",
    "PRIVATE-KEY",
    "AUTH-PAIR",
    "TOKEN-ONE",
    "TOKEN-TWO",
    "CLIENT-HDR",
    "CLIENT-BASE",
    "BEARER-TOK",
    "BASIC-PW",
    "APIKEY-VALUE",
    "OAUTH-SECRET",
    "DEFAULT-HDR",
)


class _Settings(BaseModel):
    headers: dict[str, str] = {
        "Authorization": "Bearer HDR-AUTH",
        "Cookie": "sid=HDR-COOKIE",
        "X-API-Key": "HDR-KEY",
        "Accept": "application/json",
    }
    header_pairs: list[tuple[str, str]] = [("Cookie", "sid=PAIR-COOKIE"), ("Accept", "*/*")]
    nodes: list[str] = ["redis://app:LIST-URL-PW@10.0.0.1:6379/0"]
    redis_urls: list[str] = ["redis://app:URLS-PW@10.0.0.2:6379/0"]
    dsn: str = "postgresql://app:DSN-PW@db/orders"
    endpoint: str = "https://api.example/v1?token=QUERY-TOKEN&page=2"
    api_token: str = "API-TOKEN"
    passwords: tuple[str, ...] = ("TUPLE-PW",)
    client_secret: SecretStr = SecretStr("SECRETSTR")
    secret_key: str = "SECRET-KEY"
    private_key: str = "PRIVATE-KEY"
    auth: tuple[str, str] = ("svc", "AUTH-PAIR")
    tokens: tuple[str, str] = ("TOKEN-ONE", "TOKEN-TWO")
    region: str = "eu-west-1"


class _Configured(FlextApiPlugin):
    name = "configured"
    config = _Settings()


class _KeepsClientConfig(FlextApiPlugin):
    name = "keeps_client_config"
    config = ClientConfig(
        base_url="https://svc:CLIENT-BASE@api.example",
        headers={"Authorization": "Bearer CLIENT-HDR"},
    )


async def _everything() -> FlextApiClient:
    return FlextApiClient(
        "https://api.example",
        transport=MockTransport(_ok),
        config=ClientConfig(headers={"Authorization": "Bearer DEFAULT-HDR"}),
        plugins=[
            _Configured(),
            _KeepsClientConfig(),
            OAuth2ClientCredentials("https://idp.example/token", "svc", "OAUTH-SECRET"),
            ApiKeyAuth("APIKEY-VALUE", query="api_key"),
            BearerAuth("BEARER-TOK"),
        ],
        auth=BasicAuth("bob", "BASIC-PW"),
    )


async def test_describe_never_shows_a_secret_of_any_plugin() -> None:
    """No credential of an auth plugin, a header setting (Authorization, Cookie,
    X-API-Key), a URL in a list, a DSN, a query token or a secret-named setting
    appears in describe(), open or closed, nor in its JSON."""
    client = await _everything()
    opened = describe(client)
    await client.aclose()
    closed = describe(client)
    assert [s["name"] for s in closed] == [s["name"] for s in opened]
    for stages in (opened, closed):
        text = json.dumps(stages)
        assert [secret for secret in _SECRETS if secret in text] == []


async def test_describe_keeps_what_is_not_secret() -> None:
    """Redaction is by name and URL part: hosts, plain headers and settings stay."""
    client = await _everything()
    settings = next(s for s in describe(client) if s["name"] == "configured")["settings"]
    await client.aclose()
    assert settings["headers"] == {
        "Authorization": "[REDACTED]",
        "Cookie": "[REDACTED]",
        "X-API-Key": "[REDACTED]",
        "Accept": "application/json",
    }
    assert settings["header_pairs"] == [["Cookie", "[REDACTED]"], ["Accept", "*/*"]]
    assert settings["nodes"] == ["redis://[REDACTED]@10.0.0.1:6379/0"]
    assert settings["dsn"] == "postgresql://[REDACTED]@db/orders"
    assert settings["endpoint"] == "https://api.example/v1?token=[REDACTED]&page=2"
    assert settings["passwords"] == ["[REDACTED]"]
    assert settings["client_secret"] == "[REDACTED]"
    assert settings["region"] == "eu-west-1"
