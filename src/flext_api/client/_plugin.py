"""The plugin pipeline: one middleware shape, composed once, first listed outermost.

A plugin is either

* a **middleware**: any callable ``(request, call_next) -> Awaitable[FlextResult[HttpResponse]]``
  (aiohttp's ``client_middlewares`` shape); it may call ``call_next`` zero, one or many
  times (retry does), or
* a :class:`FlextApiPlugin` subclass with optional hooks ``before_request(request)``,
  ``after_response(request, response)`` and ``on_error(request, error)``. Hooks may be
  sync or async and may return a value (a replacement request/response) or a
  :class:`FlextResult`; a failed result short-circuits the call. A subclass that needs
  full control overrides :meth:`FlextApiPlugin.handle` instead.

A subclass whose hooks are written for dicts, as in the FLEXT guides
(``before_request(request_config: dict)``, ``after_response(response: dict)``), is
recognised once, when the class is defined, and runs through :mod:`._dict_hooks`.

An exception escaping a plugin becomes a ``PLUGIN_ERROR`` failure naming the plugin;
the chain is built once per client, not per request.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, ClassVar, TypeAlias, cast

from .._clock import Clock, system_clock
from .._errors import ErrorCode, FlextApiError, PluginError
from .._models import HttpRequest, HttpResponse
from .._result import FlextResult
from ._dict_hooks import handle_with_dicts, uses_dict_hooks

__all__ = [
    "CallNext",
    "FlextApiPlugin",
    "Middleware",
    "Plugin",
    "SplitPlugin",
    "build_pipeline",
    "plugin_name",
]

CallNext: TypeAlias = Callable[[HttpRequest], Awaitable[FlextResult[HttpResponse]]]
Middleware: TypeAlias = Callable[[HttpRequest, CallNext], Awaitable[FlextResult[HttpResponse]]]


class FlextApiPlugin:
    """Base class for hook-style plugins (and for built-ins that override :meth:`handle`).

    Lifecycle: :meth:`initialize` runs when the client opens (``async with``) and
    :meth:`cleanup` when it closes; :class:`~flext_api.PluginManager` orders them.
    """

    #: Shown in ``PLUGIN_ERROR`` messages, ``describe()`` and logs.
    name: str = ""

    #: False runs the plugin without its own exception guard (one coroutine frame less
    #: per request); the pipeline's shared guard still reports what it raises, by name.
    #: The built-in plugins set it; keep the default for third-party code.
    guarded: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = cls.__name__
        # Decided here, once per class: the per-call path carries no style check.
        if "handle" not in cls.__dict__ and uses_dict_hooks(cls):
            cls.handle = handle_with_dicts  # type: ignore[method-assign,assignment]

    # Hooks: subclasses define the ones they need. Each may be sync or async and return
    # None (keep going), a replacement object, or a FlextResult (a failure stops the call).
    # Typed loosely: the FLEXT dict style (``before_request(dict)``,
    # ``after_response(dict)``) is a supported way to write them too.
    before_request: Callable[..., Any] | None = None
    after_response: Callable[..., Any] | None = None
    on_error: Callable[[HttpRequest, FlextApiError], Any] | None = None

    # The clock this plugin measures and waits on. A plugin built without one runs on
    # its client's clock (:meth:`use_clock`), so one client is one clock: the deadline
    # the client sets is an instant every stage reads on the same clock.
    _own_clock: Clock | None = None
    _clock: Clock = system_clock

    def _init_clock(self, clock: Clock | None) -> None:
        self._own_clock = clock
        self._clock = system_clock if clock is None else clock

    @property
    def own_clock(self) -> Clock | None:
        """The clock this plugin was given, or None when it runs on its client's."""
        return self._own_clock

    def use_clock(self, clock: Clock) -> None:
        """Run on ``clock`` (the client's) unless this plugin was given a clock of its own."""
        if self._own_clock is None and clock is not self._clock:
            self._clock = clock
            self._clock_changed(clock)

    def _clock_changed(self, clock: Clock) -> None:
        """Hand a new clock to the parts this plugin built (override when there are any)."""

    def use_fail_on_http_error(self, fail: bool) -> None:
        """Take the client's ``fail_on_http_error``, for requests that do not set their own.

        The client calls it once, when it is built. Only a stage that answers without
        calling down the pipeline needs it, so its answer follows the same rule as the
        transport's (the HTTP cache does); the default ignores it.
        """

    def attempt_stage(self) -> Middleware | None:
        """An optional middleware the client places innermost, to see every attempt.

        The plugin itself sits where it was listed (it sees the logical request once);
        the returned stage sits below retry and auth, just above redirects and the
        transport. Logging and tracing use it for per-attempt records and spans.
        """
        return None

    async def initialize(self) -> None:
        """Open resources (connections, background tasks). Called once per client open."""

    async def cleanup(self) -> None:
        """Release what :meth:`initialize` opened. Called once per client close."""

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Run the hooks around ``call_next``; override for full control of the call."""
        if self.before_request is not None:
            out = await _maybe_await(self.before_request(request))
            if isinstance(out, FlextResult):
                if out.is_failure:
                    return out
                out = out.value
            if isinstance(out, HttpRequest):
                request = out
        result = await call_next(request)
        if result.is_success:
            if self.after_response is not None:
                out = await _maybe_await(self.after_response(request, result.value))
                if isinstance(out, FlextResult):
                    return out
                if isinstance(out, HttpResponse):
                    return FlextResult.ok(out)
            return result
        if self.on_error is not None:
            error = result.exception
            assert error is not None
            out = await _maybe_await(self.on_error(request, error))
            if isinstance(out, FlextResult):
                return out
            if isinstance(out, HttpResponse):
                return FlextResult.ok(out)
        return result

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class SplitPlugin(FlextApiPlugin):
    """A built-in whose work around a call is two synchronous steps (retry, breaker...).

    * :meth:`enter` runs before the rest of the chain and returns a token for
      :meth:`leave`, or a :class:`FlextResult`: the answer, the rest not called, or the
      plugin itself: :meth:`take_over` then runs the call (a path that must wait);
    * :meth:`leave` gets the rest's result and returns the result to pass on, or an
      awaitable of it (a slow path, such as a retry, which may call ``call_next`` again);
    * :meth:`abandon` runs instead of :meth:`leave` when the rest raised (cancellation),
      to give back what :meth:`enter` took.

    :func:`build_pipeline` runs consecutive such plugins in one coroutine frame instead
    of one frame each (every frame is paid again on each resume after network I/O);
    :meth:`handle` runs one alone. A subclass that overrides :meth:`handle` is composed
    as any plugin.
    """

    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def enter(self, request: HttpRequest) -> Any:
        """Before the rest of the chain: a token for :meth:`leave`, or the answer."""
        return None

    def leave(
        self,
        request: HttpRequest,
        token: Any,
        result: FlextResult[HttpResponse],
        call_next: CallNext,
    ) -> FlextResult[HttpResponse] | Awaitable[FlextResult[HttpResponse]]:
        """After it: the result to pass on, or an awaitable of it."""
        return result

    def abandon(self, token: Any) -> None:
        """The rest raised (cancellation or a bug): undo what :meth:`enter` took."""

    def take_over(
        self, request: HttpRequest, call_next: CallNext
    ) -> Awaitable[FlextResult[HttpResponse]]:
        """The whole call, when :meth:`enter` returned the plugin itself."""
        return call_next(request)

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """:meth:`enter`, the rest of the chain, :meth:`leave` (or :meth:`abandon`)."""
        token = self.enter(request)
        if type(token) is FlextResult:
            return token
        if token is self:
            whole: FlextResult[HttpResponse] = await self.take_over(request, call_next)
            return whole
        try:
            result = await call_next(request)
        except BaseException:
            self.abandon(token)
            raise
        out = self.leave(request, token, result, call_next)
        return out if type(out) is FlextResult else await out


Plugin: TypeAlias = FlextApiPlugin | Middleware


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def plugin_name(plugin: Plugin) -> str:
    """A readable name for a plugin (its ``name``, class or function name)."""
    if isinstance(plugin, FlextApiPlugin):
        return plugin.name or type(plugin).__name__
    name = getattr(plugin, "name", None) or getattr(plugin, "__name__", None)
    return str(name) if name else type(plugin).__name__


class _Owners:
    """Which plugin a traceback frame belongs to, to name the culprit of an exception."""

    __slots__ = ("_by_code", "_by_id")

    def __init__(self, plugins: Sequence[Plugin]) -> None:
        # Methods of plugin objects (hooks, handle, __call__) have the plugin as `self`;
        # plain middleware functions are known by their code object.
        self._by_id = {id(p): plugin_name(p) for p in plugins}
        self._by_code: dict[object, str] = {
            code: plugin_name(p)
            for p in plugins
            if (code := getattr(p, "__code__", None)) is not None
        }

    def blame(self, tb: TracebackType | None, default: str) -> str:
        """The innermost plugin whose code is on the traceback (``default`` if none)."""
        name = default
        while tb is not None:
            frame = tb.tb_frame
            owner = frame.f_locals.get("self")
            found = self._by_id.get(id(owner)) if owner is not None else None
            if found is None:
                found = self._by_code.get(frame.f_code)
            if found is not None:
                name = found
            tb = tb.tb_next
        return name


def _plugin_failure(
    exc: Exception, request: HttpRequest, owners: _Owners, default: str
) -> FlextResult[HttpResponse]:
    if isinstance(exc, FlextApiError):
        # A plugin that raises one of our errors meant that error.
        return FlextResult.fail(exc)
    name = owners.blame(exc.__traceback__, default)
    err = PluginError(
        f"plugin {name!r} raised {type(exc).__name__}: {exc}",
        code=ErrorCode.PLUGIN_ERROR,
        request=request,
        details={"plugin": name},
    )
    err.__cause__ = exc
    return FlextResult.fail(err)


def _guard(plugin: Plugin, call_next: CallNext, owners: _Owners) -> CallNext:
    """Bind one plugin to the rest of the chain; exceptions become PLUGIN_ERROR."""
    handle: Middleware = plugin.handle if isinstance(plugin, FlextApiPlugin) else plugin
    name = plugin_name(plugin)

    async def stage(request: HttpRequest) -> FlextResult[HttpResponse]:
        try:
            return await handle(request, call_next)
        except Exception as exc:  # noqa: BLE001 - any plugin bug is reported, never lost
            return _plugin_failure(exc, request, owners, name)

    stage.__qualname__ = f"stage[{name}]"
    return stage


def _bind(plugin: FlextApiPlugin, call_next: CallNext) -> CallNext:
    """Bind a trusted plugin without a guard frame (the outer guard covers it)."""
    handle = plugin.handle

    def stage(request: HttpRequest) -> Awaitable[FlextResult[HttpResponse]]:
        return handle(request, call_next)

    stage.__qualname__ = f"stage[{plugin_name(plugin)}]"
    return stage


def _is_split(plugin: Plugin) -> bool:
    return isinstance(plugin, SplitPlugin) and type(plugin).handle is SplitPlugin.handle


def _fuse(stages: Sequence[SplitPlugin], inner: CallNext, owners: _Owners | None) -> CallNext:
    """Run ``stages`` (outermost first) around ``inner``, two per coroutine frame."""
    handler = inner
    at = len(stages)
    while at > 0:
        # Only the outermost frame guards: an exception from an inner one reaches it.
        guard = owners if at <= 2 else None
        if at == 1:
            handler = _fuse_one(stages[0], handler, guard)
        else:
            handler = _fuse_pair(stages[at - 2], stages[at - 1], handler, guard)
        at -= 2
    return handler


def _fuse_one(stage: SplitPlugin, inner: CallNext, owners: _Owners | None) -> CallNext:
    """Run one split stage around ``inner`` (see :func:`_fuse_pair`)."""
    enter, leave, abandon, take_over = stage.enter, stage.leave, stage.abandon, stage.take_over

    async def fused(request: HttpRequest) -> FlextResult[HttpResponse]:
        token = None
        entered = False
        try:
            token = enter(request)
            if type(token) is FlextResult:
                return token
            if token is stage:
                whole: FlextResult[HttpResponse] = await take_over(request, inner)
                return whole
            entered = True
            result = await inner(request)
            entered = False
            out = leave(request, token, result, inner)
            return out if type(out) is FlextResult else await out
        except BaseException as exc:
            if entered:
                abandon(token)
            if owners is None or not isinstance(exc, Exception):
                raise
            return _plugin_failure(exc, request, owners, "pipeline")

    fused.__qualname__ = f"stage[{plugin_name(stage)}]"
    return fused


def _fuse_pair(
    outer: SplitPlugin, second: SplitPlugin, inner: CallNext, owners: _Owners | None
) -> CallNext:
    """Run two split stages (``outer`` first) around ``inner`` in one coroutine frame.

    Does what their nested :meth:`SplitPlugin.handle` frames would: the enters in
    order (an answer stops there), ``inner``, the leaves in reverse order (a slow path
    awaited in place, calling the chain below its stage), and on an exception the
    abandons of the stages entered and not yet left. With ``owners`` it is also the
    pipeline's guard: an exception becomes ``PLUGIN_ERROR`` naming the culprit.
    """
    enter0, leave0, abandon0 = outer.enter, outer.leave, outer.abandon
    enter1, leave1, abandon1 = second.enter, second.leave, second.abandon
    take_over0, take_over1 = outer.take_over, second.take_over
    # The chain below each stage, for its slow path (a retry calls it again).
    next1 = inner
    next0 = _bind(second, inner)

    async def fused(request: HttpRequest) -> FlextResult[HttpResponse]:
        token0 = token1 = None
        entered = 0
        try:
            token0 = enter0(request)
            if type(token0) is FlextResult:
                return token0
            if token0 is outer:
                return await take_over0(request, next0)
            entered = 1
            token1 = enter1(request)
            if type(token1) is FlextResult:
                result = token1
            elif token1 is second:
                result = await take_over1(request, next1)
            else:
                entered = 2
                result = await inner(request)
                entered = 1
                out = leave1(request, token1, result, next1)
                result = out if type(out) is FlextResult else await out
            entered = 0
            out = leave0(request, token0, result, next0)
            return out if type(out) is FlextResult else await out
        except BaseException as exc:
            if entered == 2:
                abandon1(token1)
            if entered:
                abandon0(token0)
            if owners is None or not isinstance(exc, Exception):
                raise
            return _plugin_failure(exc, request, owners, "pipeline")

    fused.__qualname__ = f"stage[{plugin_name(outer)}+{plugin_name(second)}]"
    return fused


def build_pipeline(plugins: Sequence[Plugin], endpoint: CallNext) -> CallNext:
    """Compose ``plugins`` around ``endpoint``; the first plugin listed is outermost.

    Each plugin runs inside a guard that turns an exception into ``PLUGIN_ERROR`` naming
    it. Plugins that set ``guarded = False`` (the built-in ones) share one outer guard
    instead of a coroutine frame each: every frame is paid again on each resume after
    network I/O. The culprit is still named, from the traceback. Consecutive
    :class:`SplitPlugin` s run in one frame; when they are the whole chain, that frame
    is the guard.
    """
    owners = _Owners(plugins)
    if plugins and all(_is_split(p) for p in plugins):
        return _fuse(cast("list[SplitPlugin]", list(plugins)), endpoint, owners)
    handler = endpoint
    shared = False
    run: list[SplitPlugin] = []
    for plugin in reversed(plugins):
        if _is_split(plugin):
            run.insert(0, cast("SplitPlugin", plugin))
            shared = True
            continue
        if run:
            handler = _fuse(run, handler, None)
            run = []
        if isinstance(plugin, FlextApiPlugin) and not plugin.guarded:
            handler = _bind(plugin, handler)
            shared = True
        else:
            handler = _guard(plugin, handler, owners)
    if run:
        handler = _fuse(run, handler, None)
    if not shared:
        return handler
    inner = handler

    async def outer(request: HttpRequest) -> FlextResult[HttpResponse]:
        try:
            return await inner(request)
        except Exception as exc:  # noqa: BLE001 - any plugin bug is reported, never lost
            return _plugin_failure(exc, request, owners, "pipeline")

    return outer
