"""Composition parts under hostile use: a singleton raced by a thread and a task, and a
bus fed event names without end."""

from __future__ import annotations

import asyncio
import threading

from flext_api import Event, EventBus, FlextContainer
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
