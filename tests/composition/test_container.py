"""FlextContainer: registration, wiring from annotations, lifetimes, cleanup, errors."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from flext_api import ErrorCode, FlextContainer
from flext_api._errors import ConfigError
from flext_api.composition import (
    DependencyCycleError,
    Lifetime,
    MissingRegistrationError,
    ScopeClosedError,
)
from tests.composition.seed_services import Cache, Config, Database, UserService


def seed_container() -> FlextContainer:
    container = FlextContainer()
    container.register(
        Config, Config(database_url="postgresql://localhost/db", redis_url="redis://localhost")
    )
    container.register_factory(Database, Database)
    container.register_factory(Cache, Cache)
    container.register_factory(UserService, UserService)
    return container


class Leaf:
    pass


class Middle:
    def __init__(self, leaf: Leaf) -> None:
        self.leaf = leaf


class Top:
    def __init__(self, middle: Middle, leaf: Leaf) -> None:
        self.middle, self.leaf = middle, leaf


class A:
    def __init__(self, b: B) -> None:
        self.b = b


class B:
    def __init__(self, a: A) -> None:
        self.a = a


def test_seed_snippet_wires_user_service() -> None:
    """The seed's example resolves UserService with its Database and Cache built from Config."""
    service = seed_container().resolve(UserService)
    assert service.db.url == "postgresql://localhost/db"
    assert service.cache.url == "redis://localhost"


def test_singletons_are_built_once() -> None:
    """A factory's product is cached: two resolves give the same object (the seed's rule)."""
    container = seed_container()
    assert container.resolve(UserService) is container.resolve(UserService)
    assert container.resolve(UserService).db is container.resolve(Database)


def test_registered_instance_is_returned_as_is() -> None:
    """register(T, instance) makes resolve(T) return that very instance."""
    container = FlextContainer()
    leaf = Leaf()
    container.register(Leaf, leaf)
    assert container.resolve(Leaf) is leaf


def test_missing_registration_names_the_chain() -> None:
    """A missing dependency raises a KeyError-compatible error naming who needed it."""
    container = FlextContainer()
    container.register_factory(UserService, UserService)
    container.register_factory(Database, Database)
    with pytest.raises(MissingRegistrationError) as info:
        container.resolve(UserService)
    assert isinstance(info.value, KeyError)
    assert str(info.value) == (
        "[CONFIG_ERROR] no registration for Config (needed by UserService -> Database -> Config)"
    )


def test_cycle_is_reported_with_its_path() -> None:
    """Factories depending on each other raise DependencyCycleError showing the loop."""
    container = FlextContainer()
    container.register_factory(A, A)
    container.register_factory(B, B)
    with pytest.raises(DependencyCycleError, match="A -> B -> A"):
        container.resolve(A)


def test_transient_gives_a_new_instance_per_resolve() -> None:
    """A transient factory builds a fresh object on every resolve."""
    container = FlextContainer()
    container.register_factory(Leaf, lifetime=Lifetime.TRANSIENT)
    assert container.resolve(Leaf) is not container.resolve(Leaf)


async def test_request_lifetime_is_one_per_scope() -> None:
    """A request service is shared inside one scope and new in the next."""
    container = FlextContainer()
    container.register_factory(Leaf, lifetime="request")
    async with container.scope() as first:
        one = await first.aresolve(Leaf)
        assert first.resolve(Leaf) is one
    async with container.scope() as second:
        assert await second.aresolve(Leaf) is not one


def test_request_service_outside_a_scope_is_refused() -> None:
    """Resolving a request service on the container itself is a ConfigError."""
    container = FlextContainer()
    container.register_factory(Leaf, lifetime=Lifetime.REQUEST)
    with pytest.raises(ConfigError, match="request lifetime"):
        container.resolve(Leaf)


def test_singleton_may_not_capture_a_request_service() -> None:
    """A singleton depending on a request service is refused (it would keep one forever)."""
    container = FlextContainer()
    container.register_factory(Leaf, lifetime=Lifetime.REQUEST)
    container.register_factory(Middle)
    with pytest.raises(ConfigError, match="depends on Leaf"):
        container.resolve(Middle)


async def test_async_factories_and_cleanup_run_in_reverse_order() -> None:
    """Async generator factories are awaited; their cleanups run last-created first."""
    events: list[str] = []

    async def make_leaf() -> AsyncIterator[Leaf]:
        events.append("open leaf")
        yield Leaf()
        events.append("close leaf")

    def make_middle(leaf: Leaf) -> Iterator[Middle]:
        events.append("open middle")
        yield Middle(leaf)
        events.append("close middle")

    container = FlextContainer()
    container.register_factory(Leaf, make_leaf)
    container.register_factory(Middle, make_middle)
    async with container:
        middle = await container.aresolve(Middle)
        assert isinstance(middle.leaf, Leaf)
    assert events == ["open leaf", "open middle", "close middle", "close leaf"]


def test_sync_resolve_of_an_async_factory_says_use_aresolve() -> None:
    """resolve() on an async factory raises a ConfigError pointing to aresolve()."""

    async def make_leaf() -> Leaf:
        return Leaf()

    container = FlextContainer()
    container.register_factory(Leaf, make_leaf)
    with pytest.raises(ConfigError, match="aresolve"):
        container.resolve(Leaf)


async def test_failing_cleanup_is_logged_and_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One cleanup raising does not keep the earlier services from being closed."""
    closed: list[str] = []

    def make_leaf() -> Iterator[Leaf]:
        yield Leaf()
        closed.append("leaf")

    def make_middle(leaf: Leaf) -> Iterator[Middle]:
        yield Middle(leaf)
        raise RuntimeError("boom")

    container = FlextContainer()
    container.register_factory(Leaf, make_leaf)
    container.register_factory(Middle, make_middle)
    container.resolve(Middle)
    await container.aclose()
    assert closed == ["leaf"]
    assert "cleanup of Middle failed" in caplog.text


def test_override_replaces_a_dependency_inside_the_block() -> None:
    """override(T, fake) is used while the block runs and forgotten after it."""
    container = FlextContainer()
    container.register_factory(Leaf)
    container.register_factory(Middle, lifetime=Lifetime.TRANSIENT)
    fake = Leaf()
    with container.override(Leaf, fake):
        assert container.resolve(Middle).leaf is fake
    assert container.resolve(Middle).leaf is not fake


def test_optional_parameter_uses_its_default_when_unregistered() -> None:
    """A parameter with a default and no registration keeps its default."""

    class WithDefault:
        def __init__(self, leaf: Leaf | None = None, retries: int = 3) -> None:
            self.leaf, self.retries = leaf, retries

    container = FlextContainer()
    container.register_factory(WithDefault)
    built = container.resolve(WithDefault)
    assert (built.leaf, built.retries) == (None, 3)


def test_unannotated_parameter_is_a_config_error() -> None:
    """A factory parameter with neither annotation nor default is refused with its name."""

    def make(thing):  # type: ignore[no-untyped-def]
        return thing

    container = FlextContainer()
    container.register_factory(Leaf, make)
    with pytest.raises(ConfigError, match="parameter 'thing'"):
        container.resolve(Leaf)


def test_resolve_result_is_a_failure_instead_of_raising() -> None:
    """resolve_result() returns a CONFIG_ERROR failure for a missing registration."""
    result = FlextContainer().resolve_result(Leaf)
    assert result.is_failure
    assert result.error_code is ErrorCode.CONFIG_ERROR


async def test_ping_contributes_a_readiness_check() -> None:
    """A service registered with ping= yields a named check that runs the ping."""
    container = FlextContainer()
    container.register_factory(Leaf, ping=lambda leaf: isinstance(leaf, Leaf))
    checks = container.readiness_checks()
    assert list(checks) == ["Leaf"]
    assert await checks["Leaf"]() is True


def test_repr_counts_registrations() -> None:
    """The repr tells how many services are registered, built and overridden."""
    container = seed_container()
    container.resolve(UserService)
    assert repr(container) == "<FlextContainer [4 registered | 3 built | 0 overridden]>"


class Unresolvable:
    def __init__(self, leaf: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
        self.leaf = leaf


def test_unreadable_annotation_is_a_config_error() -> None:
    """A factory annotated with an unknown name is a ConfigError naming the factory."""
    container = FlextContainer()
    container.register_factory(Unresolvable)
    with pytest.raises(ConfigError, match="annotations of factory Unresolvable"):
        container.resolve(Unresolvable)


def test_var_args_and_unannotated_defaults_are_left_alone() -> None:
    """*args, **kwargs and unannotated parameters with defaults are not resolved."""

    def make(*args: object, retries=3, **kwargs: object) -> Leaf:  # type: ignore[no-untyped-def]
        assert (args, retries, kwargs) == ((), 3, {})
        return Leaf()

    container = FlextContainer()
    container.register_factory(Leaf, make)
    assert isinstance(container.resolve(Leaf), Leaf)


def test_non_callable_factory_is_refused() -> None:
    """register_factory with a non-callable raises a ConfigError at once."""
    with pytest.raises(ConfigError, match="not callable"):
        FlextContainer().register_factory(Leaf, "nope")  # type: ignore[arg-type]


async def test_aresolve_covers_overrides_values_and_request_services() -> None:
    """aresolve uses overrides, registered values and the scope's cache like resolve."""
    container = FlextContainer()
    leaf = Leaf()
    container.register(Leaf, leaf)
    container.register_factory(Middle, lifetime=Lifetime.REQUEST)
    container.register_factory(Top, lifetime=Lifetime.TRANSIENT)
    async with container.scope() as scope:
        top = await scope.aresolve(Top)
        assert top.leaf is leaf and top.middle is await scope.aresolve(Middle)
        other = Leaf()
        with container.override(Leaf, other):
            assert (await scope.aresolve(Top)).leaf is other


async def test_concurrent_aresolve_builds_a_singleton_once() -> None:
    """Two aresolve calls racing on an async singleton factory build it once."""
    import asyncio

    built: list[int] = []
    gate = asyncio.Event()

    async def make_leaf() -> Leaf:
        built.append(1)
        await gate.wait()
        return Leaf()

    container = FlextContainer()
    container.register_factory(Leaf, make_leaf)
    first = asyncio.ensure_future(container.aresolve(Leaf))
    second = asyncio.ensure_future(container.aresolve(Leaf))
    await asyncio.sleep(0)
    gate.set()
    assert await first is await second
    assert built == [1]


async def test_async_ping_is_awaited() -> None:
    """A ping returning an awaitable is awaited by the readiness check."""

    async def ping(leaf: Leaf) -> bool:
        return False

    container = FlextContainer()
    container.register_factory(Leaf, ping=ping)
    assert await container.readiness_checks()["Leaf"]() is False


def test_override_only_type_and_nested_overrides() -> None:
    """A type known only through an override resolves; nested overrides restore in order."""
    container = FlextContainer()
    container.register_factory(Middle, lifetime=Lifetime.TRANSIENT)
    first, second = Leaf(), Leaf()
    with container.override(Leaf, first):
        with container.override(Leaf, second):
            assert container.resolve(Middle).leaf is second
        assert container.resolve(Middle).leaf is first
        assert Leaf in container
    assert Leaf not in container


# -- bad inputs -------------------------------------------------------------------------
class Broken:
    pass


def _divide_by_zero() -> Broken:
    raise ZeroDivisionError("division by zero")


def test_resolve_result_reports_a_raising_factory_as_a_failure() -> None:
    """resolve_result turns a factory's exception into a failure that keeps it as cause."""
    container = FlextContainer()
    container.register_factory(Broken, _divide_by_zero)
    result = container.resolve_result(Broken)
    assert result.is_failure
    assert result.error_code is ErrorCode.UNEXPECTED_ERROR
    assert result.error == "building Broken failed: ZeroDivisionError: division by zero"
    assert isinstance(result.exception.__cause__, ZeroDivisionError)  # type: ignore[union-attr]


def test_resolve_result_keeps_the_code_of_a_flext_error_from_a_factory() -> None:
    """A factory raising a FlextApiError fails with that error and its code."""
    from flext_api._errors import ConnectError

    def connect() -> Broken:
        raise ConnectError("database refused the connection")

    container = FlextContainer()
    container.register_factory(Broken, connect)
    result = container.resolve_result(Broken)
    assert result.error_code is ErrorCode.CONNECT_ERROR
    assert isinstance(result.exception, ConnectError)


def test_resolve_result_still_reports_a_missing_registration() -> None:
    """A missing dependency stays a CONFIG_ERROR failure holding MissingRegistrationError."""
    container = FlextContainer()
    container.register_factory(Middle, Middle)
    result = container.resolve_result(Middle)
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert isinstance(result.exception.__cause__, MissingRegistrationError)  # type: ignore[union-attr]


def test_unknown_lifetime_is_a_config_error_listing_the_valid_ones() -> None:
    """register_factory(lifetime="forever") raises ConfigError naming the lifetimes."""
    with pytest.raises(ConfigError) as caught:
        FlextContainer().register_factory(Leaf, Leaf, lifetime="forever")
    assert caught.value.message == (
        "unknown lifetime 'forever': use one of 'singleton', 'request', 'transient'"
    )


def test_non_callable_ping_is_refused_at_registration() -> None:
    """A ping that is not callable is a ConfigError when registered, not at /ready."""
    with pytest.raises(ConfigError, match="the ping of Leaf is not callable"):
        FlextContainer().register_factory(Leaf, Leaf, ping=True)  # type: ignore[arg-type]


_NOTHING: list[Leaf] = []


def _yields_nothing() -> Iterator[Leaf]:
    yield from _NOTHING


async def _ayields_nothing() -> AsyncIterator[Leaf]:
    for leaf in _NOTHING:
        yield leaf


def test_generator_factory_that_yields_nothing_is_a_config_error() -> None:
    """A generator factory returning before its yield raises ConfigError, not StopIteration."""
    container = FlextContainer()
    container.register_factory(Leaf, _yields_nothing)
    with pytest.raises(ConfigError, match="generator factory of Leaf returned without"):
        container.resolve(Leaf)
    assert container.resolve_result(Leaf).error_code is ErrorCode.CONFIG_ERROR


async def test_async_resolve_of_a_generator_that_yields_nothing_is_a_config_error() -> None:
    """aresolve of an empty (async) generator factory raises ConfigError, not RuntimeError."""
    for factory in (_yields_nothing, _ayields_nothing):
        container = FlextContainer()
        container.register_factory(Leaf, factory)
        with pytest.raises(ConfigError, match="returned without yielding"):
            await container.aresolve(Leaf)


async def test_factory_yielding_twice_is_closed_and_logged_at_cleanup(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A second yield is reported and the generator closed, so its finally block runs."""
    closed: list[str] = []

    def twice() -> Iterator[Leaf]:
        try:
            yield Leaf()
            yield Leaf()
        finally:
            closed.append("closed")

    container = FlextContainer()
    container.register_factory(Leaf, twice)
    container.resolve(Leaf)
    await container.aclose()
    assert closed == ["closed"]
    assert "yielded more than once" in caplog.text


def test_callable_object_and_partial_factories_are_wired_from_annotations() -> None:
    """A callable instance or a functools.partial is a factory like a function."""
    import functools

    class MakeMiddle:
        def __call__(self, leaf: Leaf) -> Middle:
            return Middle(leaf)

    def make_top(middle: Middle, leaf: Leaf, tag: str) -> Top:
        return Top(middle, leaf)

    container = FlextContainer()
    container.register_factory(Leaf, Leaf)
    container.register_factory(Middle, MakeMiddle())
    container.register_factory(Top, functools.partial(make_top, tag="t"))
    top = container.resolve(Top)
    assert top.middle.leaf is container.resolve(Leaf)


def test_builtin_type_without_signature_is_a_config_error() -> None:
    """register_factory(dict) fails with a ConfigError saying what to register instead."""
    container = FlextContainer()
    container.register_factory(dict)
    result = container.resolve_result(dict)
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert "cannot read the signature of factory dict" in (result.error or "")


# -- captive dependencies through transients ------------------------------------------------
class Session:
    """A request's session, closed when its request ends."""

    closed = False


def open_session() -> Iterator[Session]:
    session = Session()
    yield session
    session.closed = True


class Repo:
    def __init__(self, session: Session) -> None:
        self.session = session


class Reports:
    def __init__(self, repo: Repo) -> None:
        self.repo = repo


class ReportsView:
    def __init__(self, reports: Reports) -> None:
        self.reports = reports


async def test_singleton_may_not_capture_a_request_service_through_transients() -> None:
    """singleton -> transient -> request is refused, naming the chain, before anything is built."""
    container = FlextContainer()
    container.register_factory(Session, open_session, lifetime="request")
    container.register_factory(Repo, lifetime="transient")
    container.register_factory(Reports)
    container.register_factory(ReportsView, lifetime="transient")
    async with container.scope() as scope:
        for asked in (Reports, ReportsView):
            with pytest.raises(ConfigError) as caught:
                await scope.aresolve(asked)
            assert caught.value.message == (
                "singleton Reports depends on Session, which has the request lifetime "
                "(Reports -> Repo -> Session): it would keep one request's instance forever"
            )
        assert isinstance((await scope.aresolve(Repo)).session, Session)  # fine per request


def test_overridden_request_service_is_not_captive() -> None:
    """An override is a plain value: a singleton may depend on it through a transient."""
    container = FlextContainer()
    container.register_factory(Session, open_session, lifetime="request")
    container.register_factory(Repo, lifetime="transient")
    container.register_factory(Reports)
    fake = Session()
    with container.override(Session, fake):
        assert container.resolve(Reports).repo.session is fake


# -- transients with a cleanup -----------------------------------------------------------
class Conn:
    pass


def counted_conn(log: list[str]) -> Callable[[], Iterator[Conn]]:
    def open_conn() -> Iterator[Conn]:
        log.append("open")
        yield Conn()
        log.append("close")

    return open_conn


async def test_transient_with_cleanup_is_closed_when_its_scope_ends() -> None:
    """Each resolve in a scope opens one; all of them close when that scope ends."""
    log: list[str] = []
    container = FlextContainer()
    container.register_factory(Conn, counted_conn(log), lifetime="transient")
    async with container.scope() as scope:
        first, second = scope.resolve(Conn), await scope.aresolve(Conn)
        assert first is not second and log == ["open", "open"]
    assert log == ["open", "open", "close", "close"]


async def test_transient_with_cleanup_on_the_container_itself_is_refused() -> None:
    """Outside a scope its cleanup could only run at shutdown: refused before it opens."""
    log: list[str] = []
    container = FlextContainer()
    container.register_factory(Conn, counted_conn(log), lifetime="transient")
    container.register_factory(Pool, lifetime="transient")
    for asked in (Conn, Pool):
        expected = (
            f"Conn is transient and has a cleanup (its factory yields): resolve "
            f"{asked.__name__} inside `async with container.scope()`"
        )
        with pytest.raises(ConfigError, match=re.escape(expected)):
            container.resolve(asked)
        with pytest.raises(ConfigError, match=re.escape(expected)):
            await container.aresolve(asked)
    assert log == []


class Pool:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn


class UsesPool:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool


async def test_singletons_transient_lives_and_closes_with_it() -> None:
    """A singleton's transient is opened once with it, kept after scopes, closed at aclose."""
    log: list[str] = []
    container = FlextContainer()
    container.register_factory(Conn, counted_conn(log), lifetime="transient")
    container.register_factory(Pool)
    container.register_factory(UsesPool, lifetime="transient")
    async with container.scope() as scope:
        pool = (await scope.aresolve(UsesPool)).pool
    for _ in range(3):
        assert container.resolve(UsesPool).pool is pool  # not rebuilt, nothing re-opened
    assert log == ["open"]
    await container.aclose()
    assert log == ["open", "close"]


def _gated_conn(log: list[str], gate: asyncio.Event) -> Callable[[], AsyncIterator[Conn]]:
    """An async generator factory of Conn that waits for ``gate`` before it yields."""

    async def open_conn() -> AsyncIterator[Conn]:
        log.append("open")
        await gate.wait()
        yield Conn()
        log.append("close")

    return open_conn


async def test_concurrent_aresolve_builds_a_singletons_transients_once() -> None:
    """Two callers racing on a singleton with an async transient open that transient once."""
    log: list[str] = []
    gate = asyncio.Event()
    open_conn = _gated_conn(log, gate)

    container = FlextContainer()
    container.register_factory(Conn, open_conn, lifetime="transient")
    container.register_factory(Pool)
    first = asyncio.ensure_future(container.aresolve(Pool))
    second = asyncio.ensure_future(container.aresolve(Pool))
    await asyncio.sleep(0)
    gate.set()
    assert await first is await second
    await container.aclose()
    assert log == ["open", "close"]


# -- misuse --------------------------------------------------------------------------------
async def test_closed_scope_refuses_to_resolve() -> None:
    """After its end a scope raises ScopeClosedError and builds nothing more."""
    log: list[str] = []
    container = FlextContainer()
    container.register_factory(Conn, counted_conn(log), lifetime="request")
    container.register_factory(Leaf)
    scope = container.scope()
    async with scope:
        await scope.aresolve(Conn)
    assert repr(scope) == "<RequestScope [closed]>"
    for asked in (Conn, Leaf):
        with pytest.raises(ScopeClosedError, match="this request scope is closed"):
            scope.resolve(asked)
        with pytest.raises(ScopeClosedError, match="this request scope is closed"):
            await scope.aresolve(asked)
    assert log == ["open", "close"]
    assert issubclass(ScopeClosedError, ConfigError)


async def test_sync_factory_returning_a_coroutine_is_a_config_error() -> None:
    """A lambda around an async def would hand out a coroutine: refused, the coroutine closed."""

    async def connect() -> Leaf:
        return Leaf()

    container = FlextContainer()
    container.register_factory(Leaf, lambda: connect())
    with pytest.raises(ConfigError, match="sync callable that returned a coroutine"):
        container.resolve(Leaf)
    with pytest.raises(ConfigError, match="sync callable that returned a coroutine"):
        await container.aresolve(Leaf)


# -- concurrency and hostile cleanups ------------------------------------------------------
async def test_concurrent_aresolve_in_one_scope_builds_a_request_service_once() -> None:
    """Two callers racing in one scope on an async request factory share one instance."""
    log: list[str] = []
    gate = asyncio.Event()
    open_conn = _gated_conn(log, gate)

    container = FlextContainer()
    container.register_factory(Conn, open_conn, lifetime="request")
    container.register_factory(Pool, lifetime="transient")
    async with container.scope() as scope:
        first = asyncio.ensure_future(scope.aresolve(Conn))
        second = asyncio.ensure_future(scope.aresolve(Pool))
        await asyncio.sleep(0)
        gate.set()
        assert (await second).conn is await first
    assert log == ["open", "close"]


async def test_cleanup_raising_a_stray_cancelled_error_does_not_skip_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cleanup that awaited a future someone cancelled fails alone: the rest still close."""
    closed: list[str] = []

    async def make_leaf() -> AsyncIterator[Leaf]:
        yield Leaf()
        closed.append("leaf")

    async def make_middle(leaf: Leaf) -> AsyncIterator[Middle]:
        yield Middle(leaf)
        future = asyncio.get_running_loop().create_future()
        future.cancel()
        await future  # cancelled by another task, not by the shutdown

    container = FlextContainer()
    container.register_factory(Leaf, make_leaf)
    container.register_factory(Middle, make_middle)
    await container.aresolve(Middle)
    await container.aclose()
    assert closed == ["leaf"]
    assert "cleanup of Middle failed" in caplog.text


class Slow:
    """A service whose factory waits before it yields."""


async def test_service_finished_after_its_scope_closed_is_cleaned_up_at_once() -> None:
    """A scope that ends while an async factory of it is still opening: the service is
    cleaned up when the factory yields (its cleanup would never run otherwise) and the
    caller gets ScopeClosedError instead of a service nobody will close."""
    log: list[str] = []
    release = asyncio.Event()

    async def slow() -> AsyncIterator[Slow]:
        await release.wait()
        log.append("open")
        yield Slow()
        log.append("close")

    container = FlextContainer()
    container.register_factory(Slow, slow, lifetime="request")
    scope = container.scope()
    pending = asyncio.ensure_future(scope.aresolve(Slow))
    await asyncio.sleep(0)  # the factory is waiting for release
    await scope.aclose()
    release.set()
    with pytest.raises(ScopeClosedError):
        await pending
    assert log == ["open", "close"]
