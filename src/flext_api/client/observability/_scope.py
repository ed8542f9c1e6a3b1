"""What the observability plugins share: the call in progress, attempt stages, labels.

**The call in progress.** Each plugin's outer stage pushes ``(plugin, state)`` on a
context variable for the duration of a logical request; its attempt stage (placed
innermost by the client) and its resilience-event handler find that state again with
:func:`current`. Retry and hedged attempts run in the same task or in tasks created
inside the request, so they inherit the variable.

**Resilience events.** One process-wide hook, subscribed while at least one observed
request is in flight (so nothing stays registered when plugins are dropped without
``cleanup``), hands each event to the plugins whose request is in progress in the
emitting context. An event therefore reaches the plugins of the client that caused
it, not every plugin in the process; an event emitted outside any observed request (a
manual ``breaker.reset()``) reaches none.

**Labels.** Bounded values only: a method outside the standard set is ``_OTHER``
(OpenTelemetry's rule), a server is ``host:port``, a status is its class.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from typing import Any, Protocol, runtime_checkable

import structlog

from ..._models import HttpRequest, HttpResponse
from ..._result import FlextResult
from ...resilience import ResilienceEvent, add_event_hook, remove_event_hook
from .._plugin import CallNext

__all__ = [
    "AttemptStage",
    "CallState",
    "EventObserver",
    "current",
    "normalize_method",
    "pop",
    "push",
    "response_of",
    "server_address",
    "split_address",
    "status_class",
]

_log = structlog.get_logger("flext_api.client.observability")

# RFC 9110 methods plus PATCH (RFC 5789): OpenTelemetry's "known methods".
_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)


class CallState:
    """One logical request as an observability plugin follows it."""

    __slots__ = ("attempts", "data", "request", "sent", "server", "started")

    def __init__(self, request: HttpRequest, started: float, data: Any = None) -> None:
        self.request = request
        self.started = started
        self.server = server_address(request)
        #: attempts seen so far by the plugin's attempt stage
        self.attempts = 0
        #: the requests those attempts sent: auth added secrets the caller's lacks
        self.sent: list[HttpRequest] = []
        #: whatever else the plugin keeps (a span, a redactor)
        self.data = data

    def attempt(self, request: HttpRequest) -> int:
        """Count one more attempt sending ``request``; return its number (from 1)."""
        self.attempts += 1
        self.sent.append(request)
        return self.attempts


_STACK: ContextVar[tuple[tuple[object, CallState], ...]] = ContextVar(
    "flext_api_observed_calls", default=()
)


def push(owner: object, state: CallState) -> Token[tuple[tuple[object, CallState], ...]]:
    """Mark ``state`` as ``owner``'s call in progress; pass the token to :func:`pop`."""
    _bridge_acquire()
    return _STACK.set((*_STACK.get(), (owner, state)))


def pop(token: Token[tuple[tuple[object, CallState], ...]]) -> None:
    """End what :func:`push` started."""
    _STACK.reset(token)
    _bridge_release()


def current(owner: object) -> CallState | None:
    """``owner``'s innermost call in progress in this context, or None."""
    for who, state in reversed(_STACK.get()):
        if who is owner:
            return state
    return None


@runtime_checkable
class EventObserver(Protocol):
    """A plugin that wants the resilience events of its own calls."""

    def on_resilience_event(self, event: ResilienceEvent, state: CallState) -> None:
        """Record ``event``, emitted while ``state``'s call was in progress."""


def _dispatch(event: ResilienceEvent) -> None:
    seen: set[int] = set()
    for owner, state in reversed(_STACK.get()):
        if id(owner) in seen or not isinstance(owner, EventObserver):
            continue
        seen.add(id(owner))
        try:
            owner.on_resilience_event(event, state)
        except Exception:  # noqa: BLE001 - observability must never change an outcome
            _log.exception("observability event handler raised", event_type=type(event).__name__)


# The dispatcher is subscribed only while at least one observed call is in flight:
# events reach nobody otherwise, and with no call in flight the registry is left as the
# application set it (an emitter without hooks builds no event at all).
_bridge_lock = threading.Lock()
_calls_in_flight = 0


def _bridge_acquire() -> None:
    global _calls_in_flight
    with _bridge_lock:
        _calls_in_flight += 1
        if _calls_in_flight == 1:
            add_event_hook(_dispatch)


def _bridge_release() -> None:
    global _calls_in_flight
    with _bridge_lock:
        _calls_in_flight -= 1
        if _calls_in_flight == 0:
            try:
                remove_event_hook(_dispatch)
            except ValueError:  # removed behind our back (a test resetting the registry)
                _log.debug("observability event hook was already removed")


class AttemptStage:
    """The middleware a plugin's ``attempt_stage()`` returns, named after the plugin."""

    __slots__ = ("_handle", "name")

    def __init__(
        self,
        name: str,
        handle: Callable[[HttpRequest, CallNext], Awaitable[FlextResult[HttpResponse]]],
    ) -> None:
        self.name = name
        self._handle = handle

    def __call__(
        self, request: HttpRequest, call_next: CallNext
    ) -> Awaitable[FlextResult[HttpResponse]]:
        return self._handle(request, call_next)

    def __repr__(self) -> str:
        return f"<AttemptStage {self.name}>"


# -- labels ---------------------------------------------------------------------------------
def normalize_method(method: str) -> str:
    """``method`` when it is a known HTTP method, else ``_OTHER``."""
    return method if method in _METHODS else "_OTHER"


def server_address(request: HttpRequest) -> str:
    """``host:port`` of the request, with the scheme's default port made explicit.

    The host is spelt as the per-host policies key it (``request.host``: no trailing
    dot, compressed IPv6), so ``Example.com.`` and ``example.com:443`` are one series.
    """
    host = request.host
    if ":" not in host or host.endswith("]"):  # no port (an IPv6 literal ends with "]")
        default = 443 if request.url.partition(":")[0].lower() in ("https", "wss") else 80
        host = f"{host}:{default}"
    return host


def split_address(address: str) -> tuple[str, int | None]:
    """``("host", port)`` of a :func:`server_address` value (IPv6 brackets removed)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else None


def response_of(result: FlextResult[HttpResponse]) -> HttpResponse | None:
    """The response behind ``result``: its value, or the one its error carries."""
    error = result.exception
    return result.value if error is None else error.response


def status_class(response: HttpResponse | None) -> str:
    """``"2xx"``... for a response, ``"none"`` when no response arrived."""
    return "none" if response is None else f"{response.status_code // 100}xx"
