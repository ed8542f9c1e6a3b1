"""Wiring of the composition parts into an app built by ``create_fastapi_app``.

Everything rides on the factory's resource stack (opened in order at start-up, closed in
reverse at shutdown, after the drain), so the order is::

    container   (singletons' cleanups run last of all)
    app plugins (initialize(app) in order; a failure stops the start-up unless the
                 manager has fail_fast=False, which skips the failing plugin)
    event bus   (transport consumers)
    tasks       (background work starts once the parts above are up, cancelled first)

``app.state.container``, ``app.state.plugins``, ``app.state.events`` and
``app.state.tasks`` hold them; the container's pings become readiness checks of ``/ready``.
Nothing here runs per request: the parts live on the resource stack and ``app.state``
(slow requests are a concern of the factory's observed pass, see :mod:`._app`).
"""

from __future__ import annotations

from fastapi import FastAPI

from flext_api.composition import AppPluginManager, EventBus, FlextContainer, TaskSupervisor

from ._state import FlextServerState

__all__ = ["wire_composition"]


class _PluginLifecycle:
    """The app plugins as one resource: ``initialize(app)`` on enter, ``cleanup()`` on exit."""

    def __init__(self, manager: AppPluginManager, app: FastAPI) -> None:
        self.manager = manager
        self.app = app

    async def __aenter__(self) -> _PluginLifecycle:
        # A failure (fail_fast) arrives with the started plugins already cleaned up by the
        # manager; it raises here, so the app does not start. fail_fast=False succeeds.
        (await self.manager.initialize(self.app)).unwrap()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.manager.cleanup()  # failures are logged by the manager


def wire_composition(
    app: FastAPI,
    state: FlextServerState,
    *,
    container: FlextContainer | None = None,
    plugins: AppPluginManager | None = None,
    event_bus: EventBus | None = None,
) -> None:
    """Attach the composition parts to ``app`` (see the module docstring)."""
    if container is not None:
        app.state.container = container
        state.add_resource(container)
        for name, check in container.readiness_checks().items():
            state.add_readiness_check(name, check)
    if plugins is not None:
        app.state.plugins = plugins
        state.add_resource(_PluginLifecycle(plugins, app))
    if event_bus is not None:
        app.state.events = event_bus
        state.add_resource(event_bus)
    app.state.tasks = state.add_resource(TaskSupervisor())
