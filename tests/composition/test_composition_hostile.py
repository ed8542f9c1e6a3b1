"""Composition parts under hostile use: a singleton raced by a thread and a task, factories
that ask for their own type, and a bus fed event names without end."""

from __future__ import annotations

import asyncio
import threading

import pytest

from flext_api import Event, EventBus, FlextContainer
from flext_api.composition import DependencyCycleError
from flext_api.composition._events import _RESOLVED_MAX

GUARD = 30  # seconds: only a hang reaches it


class Pool:
    """A singleton whose first build waits until the test lets it finish."""


async def test_aresolve_waits_for_a_singleton_a_thread_is_building() -> None:
    """A sync route's ``container.resolve`` runs in a worker thread: while it builds a
    singleton, an ``aresolve`` of it (an async route's ``inject``) waits and gets the
    same instance, without blocking the event loop. It built a second one."""
    built: list[Pool] = []
    entered, release = threading.Event(), threading.Event()

    def make_pool() -> Pool:
        pool = Pool()
        built.append(pool)
        if len(built) == 1:
            entered.set()
            release.wait(GUARD)
        return pool

    container = FlextContainer()
    container.register_factory(Pool, make_pool)
    in_thread = asyncio.ensure_future(asyncio.to_thread(container.resolve, Pool))
    assert await asyncio.to_thread(entered.wait, GUARD)
    in_task = asyncio.ensure_future(container.aresolve(Pool))
    await asyncio.sleep(0)  # the task runs until it waits (or, unguarded, builds its own)
    release.set()
    assert await in_task is await in_thread
    assert len(built) == 1


async def test_resolve_in_threads_after_an_aresolve_gets_its_instance() -> None:
    """Once built by either side, every thread and task gets the one instance."""
    container = FlextContainer()
    container.register_factory(Pool, Pool)
    first = await container.aresolve(Pool)
    others = await asyncio.gather(*(asyncio.to_thread(container.resolve, Pool) for _ in range(4)))
    assert all(other is first for other in others)


async def test_event_names_without_end_keep_the_bus_bounded() -> None:
    """Each distinct event name's handler list was cached for ever, so names carrying
    ids (``order.7.paid`` for ``order.*.paid``) grew the bus with every event; the cache
    is now bounded and every event still reaches its handlers."""
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe("order.*.paid", lambda event: seen.append(event.name))
    names = [f"order.{n}.paid" for n in range(3 * _RESOLVED_MAX)]
    for name in names:
        assert (await bus.publish(Event(name))).is_success
    assert seen == names
    assert len(bus._resolved) <= _RESOLVED_MAX


async def test_subscriptions_hold_after_the_cache_rolled_over() -> None:
    """Handlers subscribed before and after a roll-over of the cache are all reached."""
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe("user.created", lambda event: seen.append("exact"))
    for n in range(_RESOLVED_MAX + 1):
        await bus.publish(Event(f"noise.{n}"))
    bus.subscribe("user.*", lambda event: seen.append("pattern"))
    await bus.publish(Event("user.created"))
    assert seen == ["exact", "pattern"]


class _Selfish:
    pass


class _Other:
    pass


async def test_async_factory_resolving_its_own_type_is_a_cycle_not_a_hang() -> None:
    """A singleton factory that asks the container for its own type (a dependency its
    signature does not declare) is reported as a cycle; it waited on its own lock."""
    container = FlextContainer()

    async def build() -> _Selfish:
        await container.aresolve(_Selfish)
        return _Selfish()

    container.register_factory(_Selfish, build)
    with pytest.raises(DependencyCycleError, match="_Selfish -> _Selfish"):
        await asyncio.wait_for(container.aresolve(_Selfish), GUARD)
    assert _Selfish not in container._instances
    # Nothing is left locked: a factory that no longer loops builds it.
    container.register_factory(_Selfish, _Selfish)
    assert isinstance(await asyncio.wait_for(container.aresolve(_Selfish), GUARD), _Selfish)


async def test_undeclared_cycle_through_two_async_factories_names_its_path() -> None:
    """A -> B -> A through aresolve calls inside the factories: the path is named."""
    container = FlextContainer()

    async def build_selfish() -> _Selfish:
        await container.aresolve(_Other)
        return _Selfish()

    async def build_other() -> _Other:
        await container.aresolve(_Selfish)
        return _Other()

    container.register_factory(_Selfish, build_selfish)
    container.register_factory(_Other, build_other)
    with pytest.raises(DependencyCycleError, match="_Selfish -> _Other -> _Selfish"):
        await asyncio.wait_for(container.aresolve(_Selfish), GUARD)


def test_sync_factory_resolving_its_own_type_is_a_cycle() -> None:
    """The sync path re-entered its own (reentrant) lock and recursed until RecursionError."""
    container = FlextContainer()

    def build() -> _Selfish:
        container.resolve(_Selfish)
        return _Selfish()

    container.register_factory(_Selfish, build)
    with pytest.raises(DependencyCycleError, match="_Selfish -> _Selfish"):
        container.resolve(_Selfish)


async def test_sync_resolve_inside_an_async_build_of_the_same_type_is_a_cycle() -> None:
    """An async factory calling the sync resolve() for its own type: the task holds the
    type's thread lock, so resolve() re-entered it and built a second instance."""
    container = FlextContainer()
    built: list[_Selfish] = []

    async def build() -> _Selfish:
        container.resolve(_Selfish)
        built.append(_Selfish())
        return built[-1]

    container.register_factory(_Selfish, build)
    with pytest.raises(DependencyCycleError, match="_Selfish -> _Selfish"):
        await asyncio.wait_for(container.aresolve(_Selfish), GUARD)
    assert built == []


async def test_two_tasks_asking_for_one_singleton_is_not_a_cycle() -> None:
    """The cycle check is per task: another task waiting for the same build is not one."""
    container = FlextContainer()
    gate = asyncio.Event()
    calls = 0

    async def build() -> _Selfish:
        nonlocal calls
        calls += 1
        await gate.wait()
        return _Selfish()

    container.register_factory(_Selfish, build)
    first = asyncio.create_task(container.aresolve(_Selfish))
    second = asyncio.create_task(container.aresolve(_Selfish))
    await asyncio.sleep(0)
    gate.set()
    a, b = await asyncio.gather(first, second)
    assert a is b
    assert calls == 1
