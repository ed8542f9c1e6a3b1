"""Event hooks: per-policy and process-wide, never able to break a call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from flext_api.resilience import (
    ChaosInjected,
    ResilienceEvent,
    add_event_hook,
    remove_event_hook,
)
from flext_api.resilience._events import Emitter


@pytest.fixture
def received() -> Iterator[list[ResilienceEvent]]:
    """A process-wide hook collecting events, removed after the test."""
    events: list[ResilienceEvent] = []
    add_event_hook(events.append)
    yield events
    remove_event_hook(events.append)


def test_local_then_global_hooks_receive_the_event(received: list[ResilienceEvent]) -> None:
    """An emitted event reaches the policy's hooks and the process-wide ones."""
    local: list[ResilienceEvent] = []
    emitter = Emitter([local.append])
    event = ChaosInjected("h", "latency 1s")
    emitter.emit(event)
    assert local == [event] and received == [event]


def test_emitter_is_inactive_without_hooks() -> None:
    """With no hook anywhere, emitters report inactive so no event is built."""
    assert not Emitter().active
    assert Emitter([print]).active


def test_global_hook_activates_every_emitter(received: list[ResilienceEvent]) -> None:
    """A process-wide hook makes an emitter without hooks active."""
    assert Emitter().active


def test_a_raising_hook_is_logged_and_skipped() -> None:
    """A hook that raises is logged; the next hook still runs and nothing propagates."""
    seen: list[ResilienceEvent] = []

    def broken(event: ResilienceEvent) -> None:
        raise RuntimeError("metrics backend down")

    emitter = Emitter([broken, seen.append])
    with structlog.testing.capture_logs() as logs:
        emitter.emit(ChaosInjected("h", "x"))
    assert len(seen) == 1
    assert logs[0]["event"] == "resilience event hook raised"
    assert logs[0]["log_level"] == "error"


def test_a_hook_may_remove_itself_while_running() -> None:
    """Removing a hook from inside it does not disturb the current delivery."""
    calls: list[str] = []

    def once(event: ResilienceEvent) -> None:
        calls.append("once")
        remove_event_hook(once)

    add_event_hook(once)
    emitter = Emitter()
    emitter.emit(ChaosInjected("h", "x"))
    emitter.emit(ChaosInjected("h", "x"))
    assert calls == ["once"]


def test_removing_an_unknown_hook_is_an_error() -> None:
    """remove_event_hook of a hook never added is a ValueError."""
    with pytest.raises(ValueError, match="not registered"):
        remove_event_hook(print)


def test_hooks_must_be_callable() -> None:
    """Non-callable hooks are refused up front."""
    with pytest.raises(TypeError):
        add_event_hook("not a function")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Emitter(["nope"])  # type: ignore[list-item]
