"""``FlextContainer``: dependency injection wired from the factories' annotations.

Written here rather than on a library because neither well-kept candidate has the
seed's shape: ``svcs`` is a service *locator* (a factory receives the container and asks
for what it needs; nothing is wired from annotations), and ``dishka`` wires from
annotations but freezes its providers before the container exists and splits sync and
async containers, while the seed registers into a live container
(``container.register_factory(Database, Database)``) and resolves synchronously.

Rules:

* ``register(T, instance)`` - a ready value; the container never closes it.
* ``register_factory(T, factory, lifetime=...)`` - the factory's annotated parameters are
  resolved from the container (a parameter with a default is optional). A factory may be
  a class, a function, a coroutine function, or a (async) generator function: the value
  it yields is the service, the code after ``yield`` is its cleanup.
* Lifetimes: ``singleton`` (one per container, the default, as in the seed),
  ``request`` (one per :meth:`FlextContainer.scope`, closed when the scope ends) and
  ``transient`` (a new one per ``resolve`` call).
* A singleton is built by the container, from its own plan, whoever asked first: the
  transients it needs live as long as it does. A singleton that needs a request
  service - directly or through transients - is refused (a captive dependency: it
  would keep the first request's object, closed, for ever); the error names the chain.
* Cleanups run in reverse order of creation: at scope exit for request services and
  for the transients a scope built, at :meth:`FlextContainer.aclose` (the app's
  shutdown) for singletons and the transients they hold. A transient with a cleanup
  resolved on the container itself is refused (its cleanup could only run at shutdown,
  one per call: a leak), as FastAPI ties a ``yield`` dependency to its request and
  ASP.NET Core warns against disposable transients resolved from the root. A failing
  cleanup is logged and the others still run.
* A scope refuses to resolve once closed (:class:`ScopeClosedError`), and a sync
  factory that returns a coroutine (a lambda around an ``async def``) is a ConfigError:
  the coroutine would have been handed out as the service.
* A type registered again while its factory runs (by that factory, or another
  thread) is not cached from the old factory: that caller gets what it built, the
  later ones are built by the new registration, as after any ``register``.
* Resolution walks a plan computed once per type (dependencies first); a missing
  registration names the chain that needed it, and a cycle is reported with its path.
* A singleton is built once however it is asked for at the same moment: by tasks
  (``aresolve``, an :class:`asyncio.Lock` per type) and by threads too - FastAPI runs a
  sync route, and so its ``container.resolve(...)``, in a worker thread - with a
  :class:`threading.RLock` per type that ``aresolve`` takes as well. A factory that asks
  for the type it is building (directly or through other factories, by calling
  ``resolve``/``aresolve`` in its body rather than declaring the dependency) is a
  :class:`DependencyCycleError` naming the path, not a wait on its own lock.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import typing
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar, cast

from .._errors import ConfigError, ErrorCode, FlextApiError
from .._result import FlextResult
from ._events import cancelling

__all__ = [
    "DependencyCycleError",
    "FlextContainer",
    "Lifetime",
    "MissingRegistrationError",
    "RequestScope",
    "ScopeClosedError",
]

T = TypeVar("T")
_MISSING: Any = object()
_logger = logging.getLogger("flext_api.composition")


class Lifetime(StrEnum):
    """How long a factory's product lives."""

    SINGLETON = "singleton"
    REQUEST = "request"
    TRANSIENT = "transient"


class MissingRegistrationError(ConfigError, KeyError):
    """Nothing is registered for a type that was asked for (a ``KeyError``, as in the seed)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return FlextApiError.__str__(self)


class DependencyCycleError(ConfigError):
    """The factories' dependencies form a cycle."""


class ScopeClosedError(ConfigError):
    """A :class:`RequestScope` was used after it closed (its services are cleaned up)."""


def _name(service_type: object) -> str:
    return getattr(service_type, "__qualname__", None) or repr(service_type)


def _chain(types: tuple[object, ...]) -> str:
    return " -> ".join(_name(t) for t in types)


@dataclass(slots=True)
class _Registration:
    service_type: Any
    factory: Callable[..., Any] | None
    lifetime: Lifetime
    value: Any = _MISSING
    ping: Callable[[Any], object] | None = None
    kind: str = "sync"  # sync | async | gen | agen | value
    params: tuple[tuple[str, Any, bool], ...] | None = None  # (name, type, optional)
    deps: tuple[tuple[str, Any], ...] = ()  # (name, type) passed, set when planned


def _kind(factory: Callable[..., Any]) -> str:
    if inspect.isasyncgenfunction(factory):
        return "agen"
    if inspect.isgeneratorfunction(factory):
        return "gen"
    if inspect.iscoroutinefunction(factory):
        return "async"
    return "sync"


def _lifetime(lifetime: Lifetime | str) -> Lifetime:
    try:
        return Lifetime(lifetime)
    except ValueError:
        valid = ", ".join(repr(member.value) for member in Lifetime)
        raise ConfigError(f"unknown lifetime {lifetime!r}: use one of {valid}") from None


def _hints(factory: Callable[..., Any], target: Any) -> dict[str, Any]:
    """The resolved annotations of ``factory``'s parameters (``NameError`` if one cannot be)."""
    try:
        return typing.get_type_hints(target)
    except TypeError:  # a callable object or a functools.partial
        parameters = inspect.signature(factory, eval_str=True).parameters
        return {n: p.annotation for n, p in parameters.items() if p.annotation is not p.empty}


def _params(factory: Callable[..., Any]) -> tuple[tuple[str, Any, bool], ...]:
    target = factory.__init__ if isinstance(factory, type) else factory  # type: ignore[misc]
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError) as exc:  # builtins such as int or dict have none
        raise ConfigError(
            f"cannot read the signature of factory {_name(factory)}: {exc} (register a "
            "function that builds it, or an instance)"
        ) from exc
    try:
        hints = _hints(factory, target)
    except NameError as exc:
        raise ConfigError(
            f"cannot read the annotations of factory {_name(factory)}: {exc}"
        ) from exc
    params = []
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        optional = param.default is not param.empty
        annotation = hints.get(name, _MISSING)
        if annotation is _MISSING:
            if optional:
                continue
            raise ConfigError(
                f"parameter {name!r} of factory {_name(factory)} has no annotation and no "
                "default: the container cannot tell what to pass"
            )
        params.append((name, annotation, optional))
    return tuple(params)


def _returned_coroutine(reg: _Registration, coroutine: Any) -> ConfigError:
    coroutine.close()  # never awaited, and never will be: no "never awaited" warning
    return ConfigError(
        f"the factory of {_name(reg.service_type)} is a sync callable that returned a "
        "coroutine (a lambda or partial around an async def?): register the async "
        "function itself, or make the factory `async def`"
    )


def _scope_closed() -> ScopeClosedError:
    return ScopeClosedError(
        "this request scope is closed (its services were cleaned up): resolve in a new "
        "one, `async with container.scope() as scope`"
    )


def _current_builder() -> object:
    """Who is resolving: the running task, else (a worker thread) the thread."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop in this thread
        task = None
    return task if task is not None else threading.get_ident()


def _wait_for(lock: threading.RLock) -> None:
    """Return once ``lock`` is free (run in a worker thread by ``aresolve``)."""
    with lock:
        pass


def _yielded_nothing(reg: _Registration) -> ConfigError:
    return ConfigError(
        f"the generator factory of {_name(reg.service_type)} returned without yielding a service"
    )


class _Cleanups:
    """Cleanups of one container or scope, run last-created first."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[tuple[str, Generator[Any] | AsyncGenerator[Any]]] = []

    def add(self, name: str, gen: Generator[Any] | AsyncGenerator[Any]) -> None:
        self._items.append((name, gen))

    async def run(self) -> None:
        while self._items:
            name, gen = self._items.pop()
            try:
                if isinstance(gen, Generator):
                    again = next(gen, _MISSING) is not _MISSING
                    if again:
                        gen.close()
                else:
                    again = await anext(gen, _MISSING) is not _MISSING
                    if again:
                        await gen.aclose()
                if again:
                    raise ConfigError(
                        f"the factory of {name} yielded more than once: a factory yields "
                        "its service once, the code after that yield is its cleanup"
                    )
            except (Exception, asyncio.CancelledError) as exc:
                # A CancelledError the cleanup awaited (a future another task cancelled)
                # is its failure; only the cancellation of the closing task propagates.
                if isinstance(exc, asyncio.CancelledError) and cancelling():
                    raise
                _logger.error("cleanup of %s failed", name, exc_info=exc)


class _Resolver:
    """What a container and a request scope share: the walk that builds services."""

    _root: FlextContainer
    _cache: dict[Any, Any] | None  # request-lifetime instances (None on the root)
    _cleanups: _Cleanups
    _locks: dict[Any, asyncio.Lock]  # singletons' on the root, request services' on a scope
    _closed = False  # a closed RequestScope refuses to resolve

    def _plan(self, service_type: Any) -> tuple[_Registration, ...]:
        root = self._root
        plan = root._plans.get(service_type)
        if plan is None:
            plan = root._build_plan(service_type)
        return plan

    def _cache_for(self, reg: _Registration) -> dict[Any, Any] | None:
        if reg.lifetime is Lifetime.SINGLETON:
            return self._root._instances
        if reg.lifetime is Lifetime.REQUEST:
            if self._cache is None:
                raise ConfigError(
                    f"{_name(reg.service_type)} has the request lifetime: resolve it inside "
                    "container.scope() (or through inject() in a route)"
                )
            return self._cache
        return None

    def _start(self, reg: _Registration, built: dict[Any, Any]) -> Any:
        """Call ``reg``'s factory with its dependencies from ``built``."""
        assert reg.factory is not None
        return reg.factory(**{name: built[dep] for name, dep in reg.deps})

    def _finish(self, reg: _Registration, value: Any, built: dict[Any, Any]) -> None:
        built[reg.service_type] = value
        cache = self._cache_for(reg)
        if cache is not None and self._root._registrations.get(reg.service_type) is reg:
            cache[reg.service_type] = value

    def _owner(self, reg: _Registration, asked: Any) -> _Cleanups:
        """Who runs the cleanup of ``reg``, built for ``asked`` (before it is built)."""
        if reg.lifetime is Lifetime.SINGLETON:
            return self._root._cleanups
        if self._cache is None:  # on the container: only a singleton's own transients
            top = self._root._registrations.get(asked)
            if top is None or top.lifetime is not Lifetime.SINGLETON:
                raise ConfigError(
                    f"{_name(reg.service_type)} is transient and has a cleanup (its factory "
                    f"yields): resolve {_name(asked)} inside `async with container.scope()` "
                    "(or through inject() in a route), whose end runs the cleanup; resolved "
                    "on the container itself each one would wait for the shutdown"
                )
        return self._cleanups

    def _lookup(self, reg: _Registration, built: dict[Any, Any]) -> bool:
        """Put an existing value of ``reg`` in ``built``; False when it must be created."""
        overrides = self._root._overrides
        if reg.service_type in overrides:
            built[reg.service_type] = overrides[reg.service_type]
            return True
        if reg.value is not _MISSING:
            built[reg.service_type] = reg.value
            return True
        cache = self._cache_for(reg)
        if cache is not None:
            value = cache.get(reg.service_type, _MISSING)
            if value is not _MISSING:
                built[reg.service_type] = value
                return True
        return False

    def resolve(self, service_type: type[T]) -> T:
        """The service registered for ``service_type``, built (synchronously) if needed.

        Raises:
            MissingRegistrationError: nothing registered (the message names the chain).
            DependencyCycleError: the dependencies loop.
            ScopeClosedError: this scope is closed.
            ConfigError: an async factory on the way (use :meth:`aresolve`), or another
                registration mistake (the message says which).
        """
        if self._closed:
            raise _scope_closed()
        root = self._root
        if not root._overrides:
            value = root._instances.get(service_type, _MISSING)
            if value is not _MISSING:
                return cast("T", value)
        plan = self._plan(service_type)
        top = plan[-1]
        if top.lifetime is Lifetime.SINGLETON and top.value is _MISSING:
            if self is not root:
                return root.resolve(service_type)  # a singleton is the container's to build
            if service_type not in root._overrides:
                builder = root._check_cycle(service_type)
                # Sync routes resolve in worker threads: one builds, the others wait.
                with root._thread_lock(service_type):
                    value = root._instances.get(service_type, _MISSING)
                    if value is _MISSING:
                        with root._building_by(service_type, builder):
                            value = self._walk(plan, service_type)
                    return cast("T", value)
        return cast("T", self._walk(plan, service_type))

    def _walk(self, plan: tuple[_Registration, ...], service_type: Any) -> Any:
        """Build ``service_type`` synchronously along ``plan``."""
        root = self._root
        top = plan[-1]
        singletons, scoped, overrides = root._instances, self._cache, root._overrides
        built: dict[Any, Any] = {}
        # The loop is _lookup/_start/_finish inlined: this is the per-request hot path.
        for reg in plan:
            key = reg.service_type
            if overrides and key in overrides:
                built[key] = overrides[key]
                continue
            value = reg.value
            if value is _MISSING:
                lifetime = reg.lifetime
                if lifetime is Lifetime.SINGLETON:
                    cache: dict[Any, Any] | None = singletons
                elif lifetime is Lifetime.REQUEST and scoped is not None:
                    cache = scoped
                else:  # transient: None; a request service outside a scope: raises
                    cache = self._cache_for(reg)
                if cache is not None:
                    value = cache.get(key, _MISSING)
                if value is _MISSING:
                    if reg is not top and lifetime is Lifetime.SINGLETON:
                        value = root.resolve(key)  # from its own plan (see _build_plan)
                    else:
                        value = self._build_sync(reg, built, service_type)
                        # Re-registered while its factory ran (by the factory, or
                        # another thread): the caller gets this value, later ones the
                        # new registration's, as a register() after the build would do.
                        if cache is not None and root._registrations.get(key) is reg:
                            cache[key] = value
            built[key] = value
        return built[service_type]

    def _build_sync(self, reg: _Registration, built: dict[Any, Any], asked: Any) -> Any:
        kind = reg.kind
        if kind in ("async", "agen"):
            raise ConfigError(
                f"{_name(reg.service_type)} has an async factory: use "
                f"`await container.aresolve({_name(asked)})`"
            )
        if kind == "gen":
            owner = self._owner(reg, asked)
            gen = self._start(reg, built)
            value = next(gen, _MISSING)
            if value is _MISSING:
                raise _yielded_nothing(reg)
            owner.add(_name(reg.service_type), gen)
            return value
        value = self._start(reg, built)
        if inspect.iscoroutine(value):
            raise _returned_coroutine(reg, value)
        return value

    async def aresolve(self, service_type: type[T]) -> T:
        """Like :meth:`resolve`, awaiting async factories on the way.

        A singleton is built once even when several callers ask at the same moment.
        """
        if self._closed:
            raise _scope_closed()
        root = self._root
        if not root._overrides:
            value = root._instances.get(service_type, _MISSING)
            if value is not _MISSING:
                return cast("T", value)
        plan = self._plan(service_type)
        top = plan[-1]
        if (
            top.lifetime is Lifetime.SINGLETON
            and top.value is _MISSING
            and service_type not in root._overrides
        ):
            # Two callers never build one singleton twice: its lock is held while its
            # plan runs (singletons it needs take their own locks: the declared graph is
            # acyclic, and a factory asking for a type its own task is building is
            # refused here, before it would wait on that lock for ever).
            builder = root._check_cycle(service_type)
            async with root._locks.setdefault(service_type, asyncio.Lock()):
                value = root._instances.get(service_type, _MISSING)
                if value is _MISSING:
                    with root._building_by(service_type, builder):
                        value = await root._abuild_alone(plan, service_type)
                return cast("T", value)
        return cast("T", await self._abuild(plan, service_type))

    async def _abuild_alone(self, plan: tuple[_Registration, ...], service_type: Any) -> Any:
        """Build the singleton ``service_type`` holding its thread lock, or take what a
        thread (a sync route's ``resolve``) built while this task waited for it."""
        lock = self._root._thread_lock(service_type)
        while not lock.acquire(blocking=False):
            # A worker thread is building it: wait in a thread, never blocking the loop.
            await asyncio.to_thread(_wait_for, lock)
            value = self._root._instances.get(service_type, _MISSING)
            if value is not _MISSING:
                return value
        try:
            return await self._abuild(plan, service_type)
        finally:
            lock.release()

    async def _abuild(self, plan: tuple[_Registration, ...], service_type: Any) -> Any:
        root = self._root
        top = plan[-1]
        built: dict[Any, Any] = {}
        for reg in plan:
            if self._lookup(reg, built):
                continue
            if reg is not top and reg.lifetime is Lifetime.SINGLETON:
                built[reg.service_type] = await root.aresolve(reg.service_type)
            elif reg.lifetime is Lifetime.REQUEST and reg.kind in ("async", "agen"):
                # One per scope also when two callers in it race on an awaiting factory.
                async with self._locks.setdefault(reg.service_type, asyncio.Lock()):
                    if not self._lookup(reg, built):
                        await self._acreate(reg, built, service_type)
            else:
                await self._acreate(reg, built, service_type)
        return built[service_type]

    async def _acreate(self, reg: _Registration, built: dict[Any, Any], asked: Any) -> None:
        kind = reg.kind
        if kind in ("gen", "agen"):
            owner = self._owner(reg, asked)
            gen = self._start(reg, built)
            value = next(gen, _MISSING) if kind == "gen" else await anext(gen, _MISSING)
            if value is _MISSING:
                raise _yielded_nothing(reg)
            if self._closed:
                # The scope ended while the factory was opening: its cleanups have run,
                # so this one runs now, and nobody gets a service no one will close.
                late = _Cleanups()
                late.add(_name(reg.service_type), gen)
                await late.run()
                raise _scope_closed()
            owner.add(_name(reg.service_type), gen)
        else:
            value = self._start(reg, built)
            if kind == "async":
                value = await value
            elif inspect.iscoroutine(value):
                raise _returned_coroutine(reg, value)
        self._finish(reg, value, built)

    def resolve_result(self, service_type: type[T]) -> FlextResult[T]:
        """:meth:`resolve` as a :class:`FlextResult`; it never raises.

        A registration mistake fails with ``CONFIG_ERROR``; a factory that raised fails
        with the code of the :class:`FlextApiError` it raised, else ``UNEXPECTED_ERROR``,
        the factory's exception kept as the error's ``__cause__``.
        """
        try:
            return FlextResult.ok(self.resolve(service_type))
        except ConfigError as exc:
            return FlextResult.fail(exc.message, code=exc.code, exception=exc)
        except FlextApiError as exc:
            return FlextResult.fail(exc)
        except Exception as exc:  # noqa: BLE001 - the failure holds it as its cause
            return FlextResult.fail(
                f"building {_name(service_type)} failed: {type(exc).__name__}: {exc}",
                code=ErrorCode.UNEXPECTED_ERROR,
                exception=exc,
            )


class RequestScope(_Resolver):
    """One unit of work (usually one HTTP request): request-lifetime services live here.

    ``async with container.scope() as scope: svc = await scope.aresolve(Service)``;
    leaving the block runs the scope's cleanups, last created first.
    """

    __slots__ = ("_cache", "_cleanups", "_closed", "_locks", "_root")

    def __init__(self, root: FlextContainer) -> None:
        self._root = root
        self._cache = {}
        self._cleanups = _Cleanups()
        self._closed = False
        self._locks = {}

    def __repr__(self) -> str:
        assert self._cache is not None
        state = "closed" if self._closed else f"{len(self._cache)} built"
        return f"<RequestScope [{state}]>"

    async def aclose(self) -> None:
        """Run the cleanups of this scope's services; the scope refuses to resolve after."""
        self._closed = True
        await self._cleanups.run()
        assert self._cache is not None
        self._cache.clear()

    async def __aenter__(self) -> RequestScope:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class FlextContainer(_Resolver):
    """A registry of services and their factories (see the module docstring).

    >>> class Config: ...
    >>> class Db:
    ...     def __init__(self, config: Config) -> None:
    ...         self.config = config
    >>> c = FlextContainer()
    >>> c.register(Config, Config())
    >>> c.register_factory(Db, Db)
    >>> c.resolve(Db) is c.resolve(Db)
    True
    """

    def __init__(self) -> None:
        self._root = self
        self._closed = False  # never: the container resolves again after aclose()
        self._cache = None
        self._cleanups = _Cleanups()
        self._registrations: dict[Any, _Registration] = {}
        self._instances: dict[Any, Any] = {}
        self._plans: dict[Any, tuple[_Registration, ...]] = {}
        self._overrides: dict[Any, Any] = {}
        self._locks = {}
        self._thread_locks: dict[Any, threading.RLock] = {}
        # singleton type -> the task or thread building it (in the order they started)
        self._building: dict[Any, object] = {}

    def __repr__(self) -> str:
        return (
            f"<FlextContainer [{len(self._registrations)} registered | "
            f"{len(self._instances)} built | {len(self._overrides)} overridden]>"
        )

    # -- registration -------------------------------------------------------------------
    def register(self, service_type: type[T] | Any, instance: T) -> None:
        """Make ``resolve(service_type)`` return ``instance`` (the caller keeps owning it)."""
        self._add(_Registration(service_type, None, Lifetime.SINGLETON, instance, kind="value"))

    def register_factory(
        self,
        service_type: type[T] | Any,
        factory: Callable[..., Any] | None = None,
        *,
        lifetime: Lifetime | str = Lifetime.SINGLETON,
        ping: Callable[[T], object] | None = None,
    ) -> None:
        """Build ``service_type`` with ``factory`` (default: the type itself) when asked.

        Args:
            lifetime: ``singleton`` (default), ``request`` or ``transient``.
            ping: ``ping(service) -> bool | awaitable``; contributes a readiness check
                named after the type (False or an exception = not ready).
        """
        factory = service_type if factory is None else factory
        if not callable(factory):
            raise ConfigError(f"the factory of {_name(service_type)} is not callable")
        if ping is not None and not callable(ping):
            raise ConfigError(f"the ping of {_name(service_type)} is not callable")
        reg = _Registration(service_type, factory, _lifetime(lifetime), ping=ping)
        reg.kind = _kind(factory)
        self._add(reg)

    def _add(self, reg: _Registration) -> None:
        self._registrations[reg.service_type] = reg
        self._instances.pop(reg.service_type, None)
        self._plans.clear()

    def _thread_lock(self, service_type: Any) -> threading.RLock:
        """The lock held while ``service_type`` (a singleton) is built (dict.setdefault
        is atomic: two threads get the same lock)."""
        return self._thread_locks.setdefault(service_type, threading.RLock())

    def _check_cycle(self, service_type: Any) -> object:
        """The current builder; a DependencyCycleError when it is building ``service_type``
        already (a factory asked for its own type, maybe through other factories)."""
        builder = _current_builder()
        if self._building.get(service_type) == builder:  # a task, or a thread's number
            path = [t for t, b in list(self._building.items()) if b == builder]
            cycle = (*path[path.index(service_type) :], service_type)
            raise DependencyCycleError(f"dependency cycle: {_chain(cycle)}")
        return builder

    @contextmanager
    def _building_by(self, service_type: Any, builder: object) -> Iterator[None]:
        self._building[service_type] = builder
        try:
            yield
        finally:
            self._building.pop(service_type, None)

    def __contains__(self, service_type: object) -> bool:
        return service_type in self._registrations or service_type in self._overrides

    # -- planning -----------------------------------------------------------------------
    def _build_plan(self, service_type: Any) -> tuple[_Registration, ...]:
        """The registrations to walk for ``service_type``, dependencies first, it last.

        A singleton other than ``service_type`` is a leaf here: it is built from a plan
        of its own (kept in ``_plans``), so what it needs is built once, with it, and
        never again for the callers that find it built. Missing registrations, cycles
        and captive dependencies are found across those boundaries all the same.
        """
        plans = self._plans
        registrations, overrides = self._registrations, self._overrides

        def walk(top: Any, path: tuple[Any, ...]) -> tuple[_Registration, ...]:
            order: list[_Registration] = []
            # type -> the chain by which it reaches a request service through transients
            # (None when it does not); a type in it has been visited.
            reaches: dict[Any, tuple[Any, ...] | None] = {}

            def visit(t: Any, path: tuple[Any, ...]) -> tuple[Any, ...] | None:
                if t in reaches:
                    return reaches[t]
                if t in path:
                    cycle = (*path[path.index(t) :], t)
                    raise DependencyCycleError(f"dependency cycle: {_chain(cycle)}")
                reg = registrations.get(t)
                chain: tuple[Any, ...] | None = None
                if reg is None:
                    if t not in overrides:
                        needed = f" (needed by {_chain((*path, t))})" if path else ""
                        raise MissingRegistrationError(f"no registration for {_name(t)}{needed}")
                    reg = _Registration(t, None, Lifetime.SINGLETON, kind="value")
                elif reg.factory is not None and t not in overrides:
                    if t is not top and reg.lifetime is Lifetime.SINGLETON:
                        if t not in plans:
                            plans[t] = walk(t, path)
                    else:
                        chain = self._plan_deps(reg, (*path, t), visit)
                reaches[t] = chain
                order.append(reg)
                return chain

            visit(top, path)
            return tuple(order)

        plan = walk(service_type, ())
        plans[service_type] = plan
        return plan

    def _plan_deps(
        self,
        reg: _Registration,
        path: tuple[Any, ...],
        visit: Callable[[Any, tuple[Any, ...]], tuple[Any, ...] | None],
    ) -> tuple[Any, ...] | None:
        """Visit ``reg``'s dependencies, set ``reg.deps``; its chain to a request service."""
        assert reg.factory is not None
        if reg.params is None:
            reg.params = _params(reg.factory)
        deps = []
        reached: tuple[Any, ...] | None = None
        for name, dep, optional in reg.params:
            if optional and dep not in self:
                continue
            chain = visit(dep, path)
            if chain is not None and reached is None:
                reached = chain
            deps.append((name, dep))
        reg.deps = tuple(deps)
        t = reg.service_type
        if reg.lifetime is Lifetime.REQUEST:
            return (t,)
        if reached is None:
            return None
        if reg.lifetime is Lifetime.SINGLETON:
            raise ConfigError(
                f"singleton {_name(t)} depends on {_name(reached[-1])}, which has the "
                f"request lifetime ({_chain((t, *reached))}): it would keep one request's "
                "instance forever"
            )
        return (t, *reached)  # a transient: whoever holds it reaches the request service

    # -- scopes, overrides, lifecycle -----------------------------------------------------
    def scope(self) -> RequestScope:
        """A new request scope (an async context manager)."""
        return RequestScope(self)

    @contextmanager
    def override(self, service_type: type[T] | Any, instance: T) -> Iterator[None]:
        """Resolve ``service_type`` to ``instance`` inside the block (tests).

        Services already built keep what they were built with: override before the
        first resolve, or use a fresh container per test.
        """
        previous = self._overrides.get(service_type, _MISSING)
        self._overrides[service_type] = instance
        self._plans.clear()
        try:
            yield
        finally:
            if previous is _MISSING:
                del self._overrides[service_type]
            else:
                self._overrides[service_type] = previous
            self._plans.clear()

    def readiness_checks(self) -> dict[str, Callable[[], typing.Awaitable[object]]]:
        """``{name: async check}`` for every service registered with a ``ping``."""
        checks: dict[str, Callable[[], typing.Awaitable[object]]] = {}
        for reg in self._registrations.values():
            if reg.ping is not None:
                checks[_name(reg.service_type)] = self._pinger(reg.service_type, reg.ping)
        return checks

    def _pinger(
        self, service_type: Any, ping: Callable[[Any], object]
    ) -> Callable[[], typing.Awaitable[object]]:
        async def check() -> object:
            async with self.scope() as scope:
                outcome = ping(await scope.aresolve(service_type))
                if inspect.isawaitable(outcome):
                    outcome = await outcome
                return outcome

        return check

    async def aclose(self) -> None:
        """Run the singletons' cleanups, last created first, and forget them."""
        await self._cleanups.run()
        self._instances.clear()

    async def __aenter__(self) -> FlextContainer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
