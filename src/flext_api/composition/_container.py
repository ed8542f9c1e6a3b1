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
* Cleanups run in reverse order of creation: at scope exit for request services, at
  :meth:`FlextContainer.aclose` (the app's shutdown) for singletons. A failing cleanup
  is logged and the others still run.
* Resolution walks a plan computed once per type (dependencies first); a missing
  registration names the chain that needed it, and a cycle is reported with its path.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import typing
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar, cast

from .._errors import ConfigError, ErrorCode, FlextApiError
from .._result import FlextResult

__all__ = [
    "DependencyCycleError",
    "FlextContainer",
    "Lifetime",
    "MissingRegistrationError",
    "RequestScope",
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
            except Exception:
                _logger.exception("cleanup of %s failed", name)


class _Resolver:
    """What a container and a request scope share: the walk that builds services."""

    _root: FlextContainer
    _cache: dict[Any, Any] | None  # request-lifetime instances (None on the root)
    _cleanups: _Cleanups

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
        if cache is not None:
            cache[reg.service_type] = value

    def _owner(self, reg: _Registration) -> _Cleanups:
        return self._root._cleanups if reg.lifetime is Lifetime.SINGLETON else self._cleanups

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
            ConfigError: an async factory on the way (use :meth:`aresolve`).
        """
        root = self._root
        if not root._overrides:
            value = root._instances.get(service_type, _MISSING)
            if value is not _MISSING:
                return cast("T", value)
        singletons, scoped, overrides = root._instances, self._cache, root._overrides
        built: dict[Any, Any] = {}
        # The loop is _lookup/_start/_finish inlined: this is the per-request hot path.
        for reg in self._plan(service_type):
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
                    value = self._build_sync(reg, built, service_type)
                    if cache is not None:
                        cache[key] = value
            built[key] = value
        return cast("T", built[service_type])

    def _build_sync(self, reg: _Registration, built: dict[Any, Any], asked: Any) -> Any:
        if reg.kind in ("async", "agen"):
            raise ConfigError(
                f"{_name(reg.service_type)} has an async factory: use "
                f"`await container.aresolve({_name(asked)})`"
            )
        value = self._start(reg, built)
        if reg.kind == "gen":
            gen = value
            value = next(gen, _MISSING)
            if value is _MISSING:
                raise _yielded_nothing(reg)
            self._owner(reg).add(_name(reg.service_type), gen)
        return value

    async def aresolve(self, service_type: type[T]) -> T:
        """Like :meth:`resolve`, awaiting async factories on the way."""
        root = self._root
        if not root._overrides:
            value = root._instances.get(service_type, _MISSING)
            if value is not _MISSING:
                return cast("T", value)
        built: dict[Any, Any] = {}
        for reg in self._plan(service_type):
            if self._lookup(reg, built):
                continue
            if reg.lifetime is Lifetime.SINGLETON:
                # Two callers never build one singleton twice; the lock is per type and
                # held only while that one service is built.
                async with root._locks.setdefault(reg.service_type, asyncio.Lock()):
                    if not self._lookup(reg, built):
                        await self._acreate(reg, built)
            else:
                await self._acreate(reg, built)
        return cast("T", built[service_type])

    async def _acreate(self, reg: _Registration, built: dict[Any, Any]) -> None:
        value = self._start(reg, built)
        if reg.kind == "async":
            value = await value
        elif reg.kind in ("gen", "agen"):
            gen = value
            value = next(gen, _MISSING) if reg.kind == "gen" else await anext(gen, _MISSING)
            if value is _MISSING:
                raise _yielded_nothing(reg)
            self._owner(reg).add(_name(reg.service_type), gen)
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

    __slots__ = ("_cache", "_cleanups", "_root")

    def __init__(self, root: FlextContainer) -> None:
        self._root = root
        self._cache = {}
        self._cleanups = _Cleanups()

    async def aclose(self) -> None:
        """Run the cleanups of this scope's services."""
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
        self._cache = None
        self._cleanups = _Cleanups()
        self._registrations: dict[Any, _Registration] = {}
        self._instances: dict[Any, Any] = {}
        self._plans: dict[Any, tuple[_Registration, ...]] = {}
        self._overrides: dict[Any, Any] = {}
        self._locks: dict[Any, asyncio.Lock] = {}

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

    def __contains__(self, service_type: object) -> bool:
        return service_type in self._registrations or service_type in self._overrides

    # -- planning -----------------------------------------------------------------------
    def _build_plan(self, service_type: Any) -> tuple[_Registration, ...]:
        order: list[_Registration] = []
        done: set[Any] = set()

        def visit(t: Any, path: tuple[Any, ...]) -> None:
            if t in done:
                return
            if t in path:
                cycle = (*path[path.index(t) :], t)
                raise DependencyCycleError(f"dependency cycle: {_chain(cycle)}")
            reg = self._registrations.get(t)
            if reg is None:
                if t in self._overrides:
                    reg = _Registration(t, None, Lifetime.SINGLETON, kind="value")
                else:
                    needed = f" (needed by {_chain((*path, t))})" if path else ""
                    raise MissingRegistrationError(f"no registration for {_name(t)}{needed}")
            elif reg.factory is not None and t not in self._overrides:
                if reg.params is None:
                    reg.params = _params(reg.factory)
                deps = []
                for name, dep, optional in reg.params:
                    if optional and dep not in self:
                        continue
                    visit(dep, (*path, t))
                    self._check_captive(reg, dep)
                    deps.append((name, dep))
                reg.deps = tuple(deps)
            done.add(t)
            order.append(reg)

        visit(service_type, ())
        plan = tuple(order)
        self._plans[service_type] = plan
        return plan

    def _check_captive(self, reg: _Registration, dep: Any) -> None:
        dep_reg = self._registrations.get(dep)
        if (
            reg.lifetime is Lifetime.SINGLETON
            and dep_reg is not None
            and dep_reg.lifetime is Lifetime.REQUEST
            and dep not in self._overrides
        ):
            raise ConfigError(
                f"singleton {_name(reg.service_type)} depends on {_name(dep)}, which has the "
                "request lifetime: it would keep one request's instance forever"
            )

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
