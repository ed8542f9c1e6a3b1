"""``PluginManager``: registration, entry-point discovery and ordered lifecycle.

``initialize()`` runs the plugins' ``initialize`` hooks in registration order and
``cleanup()`` their ``cleanup`` hooks in reverse order. One plugin's failure is
reported (logged, and in the returned result's ``details["failures"]``) and does not
stop the others, so a broken metrics exporter cannot keep the client's connections
from closing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from typing import Any

from .._errors import ErrorCode, FlextApiError
from .._result import FlextResult
from ._plugin import FlextApiPlugin, Plugin, plugin_name

__all__ = ["ENTRY_POINT_GROUP", "PluginManager"]

ENTRY_POINT_GROUP = "flext_api.plugins"
logger = logging.getLogger("flext_api.plugins")


class PluginManager:
    """An ordered set of named plugins with lifecycle hooks."""

    def __init__(self, plugins: Iterable[Plugin] = ()) -> None:
        self._plugins: dict[str, Plugin] = {}
        for plugin in plugins:
            self.register(plugin)

    def register(self, plugin: Plugin, *, name: str | None = None) -> str:
        """Add ``plugin`` under ``name`` (default: its own name); duplicates are refused."""
        if not (isinstance(plugin, FlextApiPlugin) or callable(plugin)):
            raise TypeError(
                f"a plugin must be a FlextApiPlugin or a middleware callable, got {plugin!r}"
            )
        key = name or plugin_name(plugin)
        if key in self._plugins:
            raise ValueError(f"a plugin named {key!r} is already registered")
        self._plugins[key] = plugin
        return key

    def unregister(self, name: str) -> Plugin:
        """Remove and return the plugin registered as ``name``."""
        try:
            return self._plugins.pop(name)
        except KeyError:
            raise KeyError(f"no plugin named {name!r}") from None

    def get(self, name: str) -> Plugin | None:
        """The plugin registered as ``name``, or None."""
        return self._plugins.get(name)

    @property
    def names(self) -> list[str]:
        """Registered names, in order."""
        return list(self._plugins)

    @property
    def plugins(self) -> list[Plugin]:
        """Registered plugins, in order (first is outermost in a pipeline)."""
        return list(self._plugins.values())

    def __iter__(self) -> Iterator[Plugin]:
        return iter(list(self._plugins.values()))

    def __len__(self) -> int:
        return len(self._plugins)

    def discover(self, group: str = ENTRY_POINT_GROUP) -> FlextResult[list[str]]:
        """Load and register plugins advertised under the entry-point ``group``.

        An entry point may name a plugin class (instantiated with no arguments), a plugin
        instance or a middleware function. Entry points that fail to load are skipped and
        reported in the failure's ``details["failures"]``; the others are registered.
        """
        loaded: list[str] = []
        failures: dict[str, str] = {}
        for ep in entry_points(group=group):
            try:
                obj: Any = ep.load()
                if isinstance(obj, type):
                    obj = obj()
                loaded.append(self.register(obj, name=ep.name))
            except Exception as exc:  # noqa: BLE001 - a broken third-party plugin is reported
                failures[ep.name] = f"{type(exc).__name__}: {exc}"
                logger.warning("plugin entry point %r failed to load: %s", ep.name, exc)
        if failures:
            return FlextResult.fail(
                f"{len(failures)} plugin entry point(s) failed: {', '.join(sorted(failures))}",
                code=ErrorCode.PLUGIN_ERROR,
                details={"failures": failures, "loaded": loaded},
            )
        return FlextResult.ok(loaded)

    async def initialize(self) -> FlextResult[None]:
        """Run every ``initialize`` hook in order; report failures without stopping."""
        return await self._run("initialize", list(self._plugins.items()))

    async def cleanup(self) -> FlextResult[None]:
        """Run every ``cleanup`` hook in reverse order; report failures without stopping."""
        return await self._run("cleanup", list(reversed(self._plugins.items())))

    async def _run(self, hook: str, items: list[tuple[str, Plugin]]) -> FlextResult[None]:
        failures: dict[str, str] = {}
        causes: list[BaseException] = []
        for name, plugin in items:
            method = getattr(plugin, hook, None)
            if method is None:
                continue
            try:
                await method()
            except Exception as exc:  # noqa: BLE001 - reported below, the others still run
                failures[name] = f"{type(exc).__name__}: {exc}"
                causes.append(exc)
                logger.error("plugin %r %s failed: %s", name, hook, exc)
        if failures:
            err = FlextApiError.from_code(
                ErrorCode.PLUGIN_ERROR,
                f"{hook} failed for {', '.join(failures)}",
                details={"failures": failures},
            )
            err.__cause__ = causes[0]
            return FlextResult.fail(err)
        return FlextResult.ok(None)

    def __repr__(self) -> str:
        return f"<PluginManager {self.names}>"
