"""DeadlinePlugin: one deadline for the whole call, set once and enforced."""

from __future__ import annotations

import asyncio

import pytest

from flext_api import ErrorCode, FlextResult, HttpRequest, HttpResponse, TimeoutConfig
from flext_api.client.plugins import DeadlinePlugin
from flext_api.testing import FakeClock

from ._fakes import Upstream, get


async def test_sets_the_default_total_deadline() -> None:
    """An unset deadline becomes now + 60 s (TimeoutConfig's total)."""
    plugin = DeadlinePlugin(clock=FakeClock(start=100.0))
    request = get()
    await plugin.handle(request, Upstream([200]))
    assert request.deadline == 160.0


async def test_a_request_timeout_overrides_the_total() -> None:
    """request.timeout.total wins over the plugin's total."""
    plugin = DeadlinePlugin(5.0, clock=FakeClock(start=0.0))
    request = get(timeout=TimeoutConfig(total=2.0))
    await plugin.handle(request, Upstream([200]))
    assert request.deadline == 2.0


async def test_no_total_means_no_deadline() -> None:
    """A total of None leaves the request without a deadline."""
    plugin = DeadlinePlugin(TimeoutConfig(total=None), clock=FakeClock())
    request = get()
    result = await plugin.handle(request, Upstream([200]))
    assert result.is_success and request.deadline is None


async def test_an_existing_deadline_is_kept() -> None:
    """A deadline set by an outer layer is not moved."""
    plugin = DeadlinePlugin(5.0, clock=FakeClock(start=0.0))
    request = get(deadline=3.0)
    await plugin.handle(request, Upstream([200]))
    assert request.deadline == 3.0


async def test_a_passed_deadline_fails_without_calling() -> None:
    """A request whose deadline is over is DEADLINE_EXCEEDED and is not sent."""
    plugin = DeadlinePlugin(clock=FakeClock(start=10.0))
    upstream = Upstream([200])
    result = await plugin.handle(get(deadline=9.0), upstream)
    assert result.error_code is ErrorCode.DEADLINE_EXCEEDED
    assert upstream.calls == 0


async def test_a_call_in_flight_is_cut_off_at_the_deadline() -> None:
    """enforce=True cancels a call still running when the deadline passes."""
    plugin = DeadlinePlugin(0.01, clock=FakeClock(start=0.0))
    cancelled = asyncio.Event()

    async def hangs(request: HttpRequest) -> FlextResult[HttpResponse]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    result = await plugin.handle(get(), hangs)
    assert result.error_code is ErrorCode.DEADLINE_EXCEEDED
    assert "passed during the call" in (result.error or "")
    assert cancelled.is_set()


async def test_enforce_off_only_sets_the_deadline() -> None:
    """enforce=False sets the deadline and leaves cutting off to the stages below."""
    plugin = DeadlinePlugin(0.01, clock=FakeClock(start=0.0), enforce=False)
    request = get()
    result = await plugin.handle(request, Upstream([200]))
    assert result.is_success and request.deadline == 0.01
    assert repr(plugin) == "<DeadlinePlugin total=0.01s enforce=False>"


def test_invalid_total_is_rejected() -> None:
    """A non-positive total is a ValueError."""
    with pytest.raises(ValueError, match="total timeout"):
        DeadlinePlugin(0)
    assert repr(DeadlinePlugin(TimeoutConfig(total=None))) == (
        "<DeadlinePlugin total=none enforce=True>"
    )


async def test_an_explicit_total_shortens_a_later_deadline() -> None:
    """DeadlinePlugin(0.5) on a client had no effect: the client had already set its
    own 60 s deadline. A plugin given a timeout keeps the earlier of the two; one built
    with the default total leaves an existing deadline alone."""
    request = get(deadline=60.0)
    await DeadlinePlugin(0.5, clock=FakeClock(start=0.0)).handle(request, Upstream([200]))
    assert request.deadline == 0.5
    request = get(deadline=60.0)
    await DeadlinePlugin(clock=FakeClock(start=0.0)).handle(request, Upstream([200]))
    assert request.deadline == 60.0
