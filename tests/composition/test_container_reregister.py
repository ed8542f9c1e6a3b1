"""A type registered again while its factory is running: the new registration wins."""

from __future__ import annotations

import pytest

from flext_api.composition import FlextContainer


class Service:
    def __init__(self, origin: str) -> None:
        self.origin = origin


def reregistering(container: FlextContainer, lifetime: str) -> None:
    def old() -> Service:
        container.register_factory(Service, lambda: Service("new"), lifetime=lifetime)
        return Service("old")

    container.register_factory(Service, old, lifetime=lifetime)


def test_singleton_registered_again_by_its_factory_is_built_anew() -> None:
    """The caller gets the old factory's value; the next resolve the new one's."""
    container = FlextContainer()
    reregistering(container, "singleton")
    assert container.resolve(Service).origin == "old"
    assert container.resolve(Service).origin == "new"
    assert container.resolve(Service) is container.resolve(Service)


async def test_async_resolve_of_a_singleton_registered_again_builds_anew() -> None:
    """aresolve keeps no value of a registration replaced while it was building."""
    container = FlextContainer()
    reregistering(container, "singleton")
    assert (await container.aresolve(Service)).origin == "old"
    assert (await container.aresolve(Service)).origin == "new"


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_request_service_registered_again_in_a_scope_builds_anew(
    asynchronous: bool,
) -> None:
    """In a scope too, the replaced registration's value is not kept."""
    container = FlextContainer()
    reregistering(container, "request")
    async with container.scope() as scope:
        first = await scope.aresolve(Service) if asynchronous else scope.resolve(Service)
        second = await scope.aresolve(Service) if asynchronous else scope.resolve(Service)
    assert (first.origin, second.origin) == ("old", "new")
