"""Testing kit: a fake clock, the process-wide testing switch, and ``describe(client)``.

``set_testing(True)`` makes every backoff, Retry-After and limiter sleep return at once
and, when ``attempts`` is given, caps retry attempts (as stamina's ``set_testing`` does).
It works as a plain call or as a context manager that restores the previous state::

    with set_testing(True, attempts=1):
        ...

``describe(client)`` lists a client's pipeline, outermost first, with each stage's
settings (secrets redacted), to check in a test or a log what a client will do.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, SecretBytes, SecretStr

from ._clock import _TESTING, is_testing, testing_attempts
from ._numbers import is_int
from ._redact import REDACTED, redact_url, secret_name

if TYPE_CHECKING:
    from .client._client import FlextApiClient

__all__ = ["FakeClock", "describe", "is_testing", "set_testing", "testing_attempts"]


class _RestoreTesting:
    __slots__ = ("_previous",)

    def __init__(self, previous: tuple[bool, int | None]) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _TESTING.enabled, _TESTING.attempts = self._previous


def set_testing(testing: bool, *, attempts: int | None = None) -> _RestoreTesting:
    """Turn testing mode on or off process-wide; returns a context manager restoring it.

    ``attempts`` caps the total attempts a retry stage makes while testing (None keeps
    the configured number); it is an int >= 1, checked before anything changes.

    Raises:
        TypeError: ``testing`` is not a bool, or ``attempts`` not an int.
        ValueError: ``attempts`` is below 1.
    """
    flag: object = testing
    if not isinstance(flag, bool):
        # "false" or "0" read from an environment variable would turn testing *on*.
        raise TypeError(f"testing must be a bool, got {type(flag).__name__}")
    if attempts is not None:
        if not is_int(attempts):
            raise TypeError(f"attempts must be an int, got {type(attempts).__name__}")
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
    previous = (_TESTING.enabled, _TESTING.attempts)
    _TESTING.enabled = testing
    _TESTING.attempts = attempts if testing else None
    return _RestoreTesting(previous)


class FakeClock:
    """A clock that moves only when told to.

    ``monotonic()`` and ``time()`` read the fake time; ``advance(s)`` moves it and wakes
    sleepers whose time has come; ``await sleep(s)`` waits for that (with
    ``auto_advance=True``, the default, it moves time itself and returns at once, so
    async code under test runs without real waiting). ``sleeps`` records every sleep.

    As with ``asyncio.sleep``, a sleep of 0 or less (or NaN) only yields to the loop,
    and ``sleep(math.inf)`` waits until it is cancelled - even with ``auto_advance``,
    which never moves time to infinity. ``advance`` takes finite seconds >= 0. Sleepers
    due at the same time wake in the order they went to sleep; a cancelled one is
    forgotten.
    """

    def __init__(
        self,
        start: float = 1_000.0,
        *,
        wall_start: float = 1_700_000_000.0,
        auto_advance: bool = True,
    ) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self.auto_advance = auto_advance
        self.sleeps: list[float] = []
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake due sleepers.

        Raises:
            ValueError: ``seconds`` is negative, NaN, or would take time to infinity.
        """
        now = self._now + seconds
        if not seconds >= 0 or not math.isfinite(now):
            # NaN or infinity would stick: every later reading and deadline is broken.
            raise ValueError(f"a clock cannot go back or leave finite time, got {seconds!r}")
        self._now = now
        while self._waiters and self._waiters[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)  # NaN too: max keeps its first argument
        self.sleeps.append(seconds)
        deadline = self._now + seconds
        if deadline <= self._now:  # due already: yield once, as asyncio.sleep(0) does
            await asyncio.sleep(0)
            return
        if self.auto_advance and math.isfinite(deadline):
            self.advance(seconds)
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        entry = (deadline, self._seq, fut)
        heapq.heappush(self._waiters, entry)
        try:
            await fut
        finally:
            if fut.cancelled():  # a sleep that never ends must not stay queued
                try:
                    self._waiters.remove(entry)
                except ValueError:  # advance() had popped it already
                    pass
                else:
                    heapq.heapify(self._waiters)

    def __repr__(self) -> str:
        return f"<FakeClock t={self._now:.3f}>"


# -- pipeline description ---------------------------------------------------------------------

#: Attributes that hold settings (never credentials) on plugins that keep their settings
#: as attributes instead of a ``config`` model: deadline, hedging, chaos.
_SETTING_ATTRIBUTES: Final = (
    "total",
    "enforce",
    "delay",
    "max_hedged",
    "methods",
    "fail_on_http_error",
)
#: Components whose kind is worth showing (a local or a Redis-shared limiter).
_COMPONENT_ATTRIBUTES: Final = ("limiter",)


def describe(client: FlextApiClient) -> list[dict[str, Any]]:
    """The client's pipeline, outermost first: one dict per stage with its settings.

    Each dict has ``name`` (as in :meth:`FlextApiClient.describe`, whose order it
    follows), ``type`` (the stage's class name, None when unknown) and ``settings``:

    * a plugin with a pydantic ``config`` (retry, circuit breaker, rate limit,
      bulkhead): every field of it, sets as sorted lists (``max_retries``, ``statuses``,
      ``backoff_*``; ``consecutive_failures``, ``failure_ratio``, ``open_duration``...),
      plus the kind of its ``limiter``; other plugins: their known setting attributes
      (the deadline's ``total`` and ``enforce``, hedging's ``delay``...);
    * an attempt stage (``logging[attempt]``): the plugin it belongs to;
    * ``redirects``: ``follow_redirects`` and ``max_redirects``;
    * the transport (``transport:aiohttp``): its ``pool`` figures.

    Only settings are read, never an auth plugin's credentials, and URL or secret-like
    values are redacted (a Redis URL may carry a password; a ``headers`` setting an
    ``Authorization`` or ``Cookie``; a setting named ``api_token`` or ``db_password`` a
    secret), so the result can be logged.

    >>> [stage["name"] for stage in describe(FlextApiClient())]  # doctest: +SKIP
    ['deadline', 'retry', 'circuit_breaker', 'redirects', 'transport:aiohttp']
    """
    stages: list[dict[str, Any]] = []
    for name in client.describe():
        if name == "redirects":
            cfg = client.config
            settings: dict[str, Any] = {
                "follow_redirects": cfg.follow_redirects,
                "max_redirects": cfg.max_redirects,
            }
            stages.append({"name": name, "type": "redirects", "settings": settings})
        elif name.startswith("transport:"):
            transport = client.transport
            pool = {k: v for k, v in transport.stats().items() if k != "transport"}
            stages.append(
                {"name": name, "type": type(transport).__name__, "settings": {"pool": pool}}
            )
        elif name.endswith("[attempt]"):
            owner = name.removesuffix("[attempt]")
            plugin = client.plugins.get(owner)
            kind = None if plugin is None else type(plugin).__name__
            stages.append({"name": name, "type": kind, "settings": {"attempt_stage_of": owner}})
        else:
            plugin = client.plugins.get(name)
            if plugin is None:  # unregistered after the pipeline was built
                stages.append({"name": name, "type": None, "settings": {}})
            else:
                kind = type(plugin).__name__
                stages.append({"name": name, "type": kind, "settings": _plugin_settings(plugin)})
    return stages


def _plugin_settings(plugin: object) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    config = getattr(plugin, "config", None)
    if isinstance(config, BaseModel):
        settings.update(_plain(config.model_dump()))
    for attr in _SETTING_ATTRIBUTES:
        value = getattr(plugin, attr, None)
        if value is not None and not callable(value):
            settings[attr] = _plain(value)
    own = getattr(plugin, "settings", None)
    if callable(own):  # a stage that describes itself (discovery: registry and balancer)
        settings.update(_plain(own()))
    for attr in _COMPONENT_ATTRIBUTES:
        component = getattr(plugin, attr, None)
        if component is not None:
            settings[attr] = type(component).__name__
    return settings


def _plain(value: Any, key: str = "") -> Any:
    """Plain, stable, log-safe data: sets sorted, tuples as lists, secrets redacted.

    A value is redacted by its name (a header such as ``Authorization`` or ``Cookie``, a
    query parameter such as ``token``, a name holding ``password``, ``secret``,
    ``token``...), the items of a list or set by the name of the list, the value of a
    ``(name, value)`` pair in a headers setting by its name; a URL anywhere loses its
    userinfo and its secret query values.
    """
    if isinstance(value, Mapping):
        return {str(k): _plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(_plain(v, key) for v in value)
    if isinstance(value, list | tuple):
        if len(value) == 2 and isinstance(value[0], str) and "header" in key.lower():
            # A (name, value) pair of a headers setting given as pairs: the name says.
            return [value[0], _plain(value[1], value[0])]
        return [_plain(v, key) for v in value]
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, str | bytes) and key and secret_name(key):
        return REDACTED
    if isinstance(value, str):
        lowered = key.lower()
        if "://" in value or lowered.endswith(("url", "urls")):
            return redact_url(value)
    return value
