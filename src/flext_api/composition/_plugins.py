"""``AppPluginManager``: plugins of a *service* (the seed's Nexios ``PluginManager``).

Not to be confused with :class:`flext_api.PluginManager`, which holds the plugins of an
HTTP *client* (middlewares around each outgoing request). Both speak one vocabulary -
``register``, ``get``, ``discover``, ``initialize``, ``cleanup``, results as
:class:`FlextResult` - but an app plugin is set up once with the app
(``initialize(app)``) and torn down at shutdown, and ``register`` takes the name first,
as the seed writes it: ``manager.register("cache", CachePlugin())``.

Lifecycle (run by :func:`flext_api.create_fastapi_app` when given ``plugins=``):
``initialize(app)`` in registration order; when one fails, the error is logged and
returned, the plugins already initialized are cleaned up in reverse order, and the app
refuses to start - unless ``fail_fast=False``, which logs, skips the plugin (it is in
``skipped`` with its error) and goes on: ``initialize`` then succeeds and the app starts
with the others. A start cut short by cancellation also cleans up what had started.
``cleanup()`` runs in reverse order, reporting every failure and stopping at none. A
plugin whose ``initialize`` raised is not cleaned up: it undoes its own partial work.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

from .._errors import ErrorCode, FlextApiError
from .._result import FlextResult
from ._events import cancelling

__all__ = ["APP_PLUGIN_GROUP", "AppPlugin", "AppPluginManager"]

APP_PLUGIN_GROUP = "flext_api.app_plugins"
_logger = logging.getLogger("flext_api.composition.plugins")


class AppPlugin(ABC):
    """A plugin of an app: ``initialize(app)`` at start-up, ``cleanup()`` at shutdown.

    Both may be sync or async.
    """

    @abstractmethod
    def initialize(self, app: Any) -> object:
        """Set the plugin up for ``app`` (e.g. put a client in ``app.state``)."""

    @abstractmethod
    def cleanup(self) -> object:
        """Release what :meth:`initialize` acquired."""


async def _run(method: Any, *args: Any) -> None:
    outcome = method(*args)
    if inspect.isawaitable(outcome):
        await outcome


def _plugin_error(hook: str, failures: dict[str, str], cause: BaseException) -> FlextApiError:
    err = FlextApiError.from_code(
        ErrorCode.PLUGIN_ERROR,
        f"app plugin {hook} failed for {', '.join(failures)}",
        details={"failures": failures},
    )
    err.__cause__ = cause
    return err


class AppPluginManager:
    """Named app plugins with discovery and an ordered lifecycle (module docstring)."""

    def __init__(self, *, fail_fast: bool = True) -> None:
        self.fail_fast = fail_fast
        self._plugins: dict[str, AppPlugin] = {}
        self._initialized: list[str] = []
        self.skipped: dict[str, str] = {}  # fail_fast=False: name -> why it did not start
        self.logger = _logger

    def __repr__(self) -> str:
        skipped = f" skipped={list(self.skipped)}" if self.skipped else ""
        return f"<AppPluginManager {self.names} initialized={self._initialized}{skipped}>"

    def register(self, name: str, plugin: AppPlugin) -> None:
        """Add ``plugin`` as ``name`` (ValueError when the name is empty or taken)."""
        if not isinstance(name, str):
            raise TypeError(f"an app plugin's name must be a str, got {type(name).__name__}")
        if not name:
            raise ValueError("an app plugin's name cannot be empty")
        if isinstance(plugin, type):
            raise TypeError(
                f"app plugin {name!r} is the class {plugin.__name__}: register an instance "
                f"({plugin.__name__}())"
            )
        if not all(callable(getattr(plugin, hook, None)) for hook in ("initialize", "cleanup")):
            raise TypeError(f"app plugin {name!r} needs initialize(app) and cleanup() methods")
        if name in self._plugins:
            raise ValueError(f"an app plugin named {name!r} is already registered")
        self._plugins[name] = plugin

    def get(self, name: str) -> AppPlugin | None:
        """The plugin registered as ``name``, or None (as the client's manager)."""
        return self._plugins.get(name)

    @property
    def names(self) -> list[str]:
        """Registered names, in order."""
        return list(self._plugins)

    def __iter__(self) -> Iterator[AppPlugin]:
        return iter(list(self._plugins.values()))

    def __len__(self) -> int:
        return len(self._plugins)

    # -- discovery ------------------------------------------------------------------------
    def discover(self, package: str) -> FlextResult[list[str]]:
        """Register one instance of each :class:`AppPlugin` subclass in ``package``'s modules.

        Each plugin is named after its module (as in the seed). Modules that fail to
        import are reported in the failure's ``details["failures"]``; the others load.
        """
        if not isinstance(package, str):
            raise TypeError(f"discover() takes a package name (str), got {type(package).__name__}")
        try:
            root = importlib.import_module(package)
        except ImportError as exc:
            self.logger.error("plugin package %r not found: %s", package, exc)
            return FlextResult.fail(
                f"plugin package {package!r} not found: {exc}",
                code=ErrorCode.PLUGIN_ERROR,
                exception=exc,
            )
        except Exception as exc:  # an empty or relative name, or a package that raises
            self.logger.exception("plugin package %r failed to import", package)
            return FlextResult.fail(
                f"plugin package {package!r} failed to import: {type(exc).__name__}: {exc}",
                code=ErrorCode.PLUGIN_ERROR,
                exception=exc,
            )
        found: list[str] = []
        failures: dict[str, str] = {}
        for info in pkgutil.iter_modules(getattr(root, "__path__", [])):
            try:
                module = importlib.import_module(f"{package}.{info.name}")
                for _, item in inspect.getmembers(module, inspect.isclass):
                    if (
                        issubclass(item, AppPlugin)
                        and not inspect.isabstract(item)
                        and item.__module__ == module.__name__
                    ):
                        self.register(info.name, item())
                        found.append(info.name)
                        self.logger.info("discovered app plugin %s", info.name)
            except Exception as exc:  # noqa: BLE001 - a broken module is reported, others load
                failures[info.name] = f"{type(exc).__name__}: {exc}"
                self.logger.error("app plugin %r failed to load: %s", info.name, exc)
        return self._discovered(found, failures)

    def discover_entry_points(self, group: str = APP_PLUGIN_GROUP) -> FlextResult[list[str]]:
        """Register the plugins advertised under the entry-point ``group``.

        An entry point names a plugin class (instantiated with no arguments) or instance.
        """
        found: list[str] = []
        failures: dict[str, str] = {}
        for ep in entry_points(group=group):
            try:
                obj: Any = ep.load()
                self.register(ep.name, obj() if isinstance(obj, type) else obj)
                found.append(ep.name)
            except Exception as exc:  # noqa: BLE001 - reported below, the others load
                failures[ep.name] = f"{type(exc).__name__}: {exc}"
                self.logger.error("app plugin entry point %r failed: %s", ep.name, exc)
        return self._discovered(found, failures)

    @staticmethod
    def _discovered(found: list[str], failures: dict[str, str]) -> FlextResult[list[str]]:
        if failures:
            return FlextResult.fail(
                f"{len(failures)} app plugin(s) failed to load: {', '.join(sorted(failures))}",
                code=ErrorCode.PLUGIN_ERROR,
                details={"failures": failures, "loaded": found},
            )
        return FlextResult.ok(found)

    # -- lifecycle ------------------------------------------------------------------------
    async def initialize(self, app: Any) -> FlextResult[None]:
        """Initialize every plugin in order (see the module docstring for failures).

        With ``fail_fast`` (the default) the first failure is returned after the plugins
        already initialized were cleaned up, last first; when that cleanup fails too,
        its failures are in ``details["cleanup_failures"]``. With ``fail_fast=False`` a
        failing plugin is logged, recorded in :attr:`skipped` and passed over, and the
        result is a success (a later ``initialize`` tries the skipped ones again).
        """
        try:
            return await self._initialize(app)
        except BaseException:  # cancelled mid-start: the app will not run, undo the start
            await self.cleanup()
            raise

    async def _initialize(self, app: Any) -> FlextResult[None]:
        for name, plugin in self._plugins.items():
            if name in self._initialized:
                continue
            try:
                await _run(plugin.initialize, app)
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and cancelling():
                    raise  # the start itself is cancelled: initialize() undoes it
                self.logger.error("app plugin %r failed to initialize", name, exc_info=exc)
                reason = f"{type(exc).__name__}: {exc}"
                if not self.fail_fast:
                    self.skipped[name] = reason
                    self.logger.warning("app plugin %r skipped (fail_fast=False)", name)
                    continue
                err = _plugin_error("initialize", {name: reason}, exc)
                undone = await self.cleanup()
                if undone.exception is not None:  # the plugins started before did not all stop
                    err.details["cleanup_failures"] = undone.exception.details["failures"]
                return FlextResult.fail(err)
            self.skipped.pop(name, None)
            self._initialized.append(name)
            self.logger.info("initialized app plugin %s", name)
        return FlextResult.ok(None)

    async def cleanup(self) -> FlextResult[None]:
        """Clean up the initialized plugins, last first; every failure is reported."""
        failures: dict[str, str] = {}
        cause: BaseException | None = None
        while self._initialized:
            name = self._initialized.pop()
            try:
                await _run(self._plugins[name].cleanup)
                self.logger.info("cleaned up app plugin %s", name)
            except (Exception, asyncio.CancelledError) as exc:
                # A CancelledError the cleanup awaited (not the shutdown's) is its failure.
                if isinstance(exc, asyncio.CancelledError) and cancelling():
                    raise
                self.logger.error("app plugin %r failed to clean up", name, exc_info=exc)
                failures[name] = f"{type(exc).__name__}: {exc}"
                cause = cause or exc
        if cause is not None:
            return FlextResult.fail(_plugin_error("cleanup", failures, cause))
        return FlextResult.ok(None)
