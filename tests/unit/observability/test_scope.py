"""The shared machinery: call scopes, the event bridge, bounded label values."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flext_api import HttpRequest, HttpResponse
from flext_api._result import FlextResult
from flext_api.client.observability._scope import (
    AttemptStage,
    CallState,
    _dispatch,
    current,
    normalize_method,
    pop,
    push,
    server_address,
    split_address,
    status_class,
)
from flext_api.resilience import RateLimitWaited, ResilienceEvent, remove_event_hook
from flext_api.resilience._events import Emitter
from tests.unit.observability.logcapture import LogCapture


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://Api.Test/x", "api.test:80"),
        ("https://api.test/x", "api.test:443"),
        ("http://api.test:8080/x", "api.test:8080"),
        ("http://user:pw@api.test/x", "api.test:80"),
        ("https://[::1]/x", "[::1]:443"),
        ("http://[::1]:9000/x", "[::1]:9000"),
    ],
)
def test_server_address_is_host_and_port(url: str, address: str) -> None:
    """host:port, default port made explicit, userinfo dropped."""
    assert server_address(HttpRequest("GET", url)) == address


@pytest.mark.parametrize(
    ("address", "parts"),
    [("api.test:80", ("api.test", 80)), ("[::1]:9000", ("::1", 9000)), ("h:x", ("h", None))],
)
def test_split_address(address: str, parts: tuple[str, int | None]) -> None:
    """An address splits into host and port (None when not a number)."""
    assert split_address(address) == parts


def test_normalize_method_and_status_class() -> None:
    """Known methods pass, others are _OTHER; statuses become classes."""
    assert [normalize_method(m) for m in ("GET", "PATCH", "PURGE")] == ["GET", "PATCH", "_OTHER"]
    assert status_class(HttpResponse(404)) == "4xx"
    assert status_class(None) == "none"


def test_current_finds_the_innermost_state_of_its_owner() -> None:
    """Nested scopes of one owner: the innermost wins; other owners are separate."""
    a, b = object(), object()
    outer = CallState(HttpRequest("GET", "http://h/"), 0.0)
    inner = CallState(HttpRequest("GET", "http://h/"), 0.0)
    t1 = push(a, outer)
    t2 = push(b, inner)
    t3 = push(a, inner)
    assert current(a) is inner and current(b) is inner
    pop(t3)
    assert current(a) is outer
    pop(t2)
    pop(t1)
    assert current(a) is None


class _Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[ResilienceEvent, CallState]] = []
        self.fail = fail

    def on_resilience_event(self, event: ResilienceEvent, state: CallState) -> None:
        if self.fail:
            raise RuntimeError("observer bug")
        self.events.append((event, state))


def test_bridge_delivers_once_per_owner_and_survives_a_broken_observer(
    json_logs: LogCapture,
) -> None:
    """Each owner gets the event once (innermost state); a raising one is logged."""
    good, broken = _Recorder(), _Recorder(fail=True)
    outer = CallState(HttpRequest("GET", "http://h/"), 0.0)
    inner = CallState(HttpRequest("GET", "http://h/"), 0.0)
    tokens = [push(good, outer), push(broken, outer), push(object(), outer), push(good, inner)]
    event = RateLimitWaited("h", 0.1)
    Emitter().emit(event)
    for token in reversed(tokens):
        pop(token)
    assert good.events == [(event, inner)]
    (record,) = json_logs.events("observability event handler raised")
    assert record["level"] == "error" and "observer bug" in record["exception"]


def test_bridge_is_subscribed_only_while_a_call_is_in_flight() -> None:
    """No observed call in flight: emitters stay inactive (no event is built)."""
    assert not Emitter().active
    first = push(object(), CallState(HttpRequest("GET", "http://h/"), 0.0))
    second = push(object(), CallState(HttpRequest("GET", "http://h/"), 0.0))
    assert Emitter().active
    pop(second)
    assert Emitter().active
    pop(first)
    assert not Emitter().active


def test_bridge_removed_behind_its_back_is_tolerated(json_logs: LogCapture) -> None:
    """If someone unregistered the hook, ending the last call does not fail."""
    token = push(object(), CallState(HttpRequest("GET", "http://h/"), 0.0))
    remove_event_hook(_dispatch)
    pop(token)
    assert json_logs.events("observability event hook was already removed")
    assert not Emitter().active


async def test_attempt_stage_calls_its_handler_and_has_a_name() -> None:
    """An AttemptStage is a named middleware."""

    async def handle(request: HttpRequest, call_next: object) -> FlextResult[HttpResponse]:
        return FlextResult.ok(HttpResponse(204))

    stage = AttemptStage("x", handle)
    assert repr(stage) == "<AttemptStage x>" and stage.name == "x"
    result = await stage(HttpRequest("GET", "http://h/"), handle)  # type: ignore[arg-type]
    assert result.value.status_code == 204


def test_importing_observability_loads_neither_otel_nor_prometheus() -> None:
    """`import flext_api.client.observability` imports no optional dependency."""
    code = (
        "import sys, flext_api.client.observability, flext_api.client.auth\n"
        "print(sorted(m for m in ('opentelemetry', 'prometheus_client') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
