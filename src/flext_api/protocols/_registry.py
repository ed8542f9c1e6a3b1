"""``ProtocolRegistry``: one place to find a protocol by name and make its clients.

Built-ins (``http``, ``graphql``, ``websocket``, ``sse``) are registered up front;
third-party packages advertise theirs under the entry-point group
``flext_api.protocols`` and :meth:`ProtocolRegistry.discover` loads them. A protocol may
be registered as a class (made on first use, with no arguments) or as an instance; it
needs a ``create_client(config)`` method and, to run requests through the registry, an
async ``execute_request(request)`` returning a ``FlextResult``.
"""

from __future__ import annotations

import inspect
import logging
from importlib.metadata import entry_points
from typing import Any, cast

from .._errors import ConfigError, ErrorCode, FlextApiError
from .._result import FlextResult

__all__ = ["ENTRY_POINT_GROUP", "ProtocolRegistry"]

ENTRY_POINT_GROUP = "flext_api.protocols"
logger = logging.getLogger("flext_api.protocols")


class ProtocolRegistry:
    """Protocols by name.

    >>> registry = ProtocolRegistry()
    >>> registry.names()
    ['graphql', 'http', 'sse', 'websocket']
    >>> client = registry.get_protocol("http").create_client(
    ...     {"base_url": "http://127.0.0.1:8000"})
    """

    def __init__(self, *, builtins: bool = True) -> None:
        self._entries: dict[str, Any] = {}
        if builtins:
            from ._builtin import FlextWebProtocol, GraphQLProtocol, SSEProtocol, WebSocketProtocol

            for proto in (FlextWebProtocol, GraphQLProtocol, WebSocketProtocol, SSEProtocol):
                self._entries[proto.name] = proto

    def register(self, name: str, protocol: Any) -> FlextResult[None]:
        """Register (or replace) ``name``; ``CONFIG_ERROR`` when ``protocol`` has no
        ``create_client`` method or ``name`` is empty, padded with spaces or holds a
        control character."""
        if (
            not isinstance(cast(object, name), str)
            or not name.strip()
            or name != name.strip()
            or not name.isprintable()
        ):
            return FlextResult.fail(
                f"protocol name must be a non-empty str without surrounding spaces or "
                f"control characters, got {name!r}",
                code=ErrorCode.CONFIG_ERROR,
            )
        if not callable(getattr(protocol, "create_client", None)):
            return FlextResult.fail(
                f"protocol {name!r} has no create_client(config) method: {protocol!r}",
                code=ErrorCode.CONFIG_ERROR,
            )
        self._entries[name] = protocol
        return FlextResult.ok(None)

    def unregister(self, name: str) -> FlextResult[None]:
        """Remove ``name``; ``CONFIG_ERROR`` when it is not registered."""
        if not isinstance(cast(object, name), str) or self._entries.pop(name, None) is None:
            return FlextResult(error=self._unknown(name))
        return FlextResult.ok(None)

    def resolve(self, name: str) -> FlextResult[Any]:
        """The protocol instance for ``name`` (a registered class is made once, here)."""
        # A name of another type (an unhashable list, say) is simply not registered.
        entry = self._entries.get(name) if isinstance(cast(object, name), str) else None
        if entry is None:
            return FlextResult(error=self._unknown(name))
        if isinstance(entry, type):
            try:
                entry = entry()
            except Exception as exc:  # noqa: BLE001 - third-party constructors may raise anything
                err = FlextApiError.from_code(
                    ErrorCode.CONFIG_ERROR, f"protocol {name!r} could not be created: {exc}"
                )
                err.__cause__ = exc
                return FlextResult(error=err)
            self._entries[name] = entry
        return FlextResult.ok(entry)

    def get_protocol(self, name: str) -> Any:
        """The protocol for ``name``; raises :class:`ConfigError` naming the known ones."""
        return self.resolve(name).value

    def create_client(self, config: dict[str, Any]) -> FlextResult[Any]:
        """A client of ``config["protocol"]`` (default ``http``) from the rest of ``config``."""
        if not isinstance(cast(object, config), dict):
            return FlextResult.fail(
                f"config must be a dict, got {type(config).__name__}", code=ErrorCode.CONFIG_ERROR
            )
        rest = dict(config)
        name = rest.pop("protocol", "http")
        resolved = self.resolve(name)
        if resolved.is_failure:
            return resolved
        try:
            return FlextResult.ok(resolved.value.create_client(rest))
        except FlextApiError as exc:
            return FlextResult(error=exc)
        except Exception as exc:  # noqa: BLE001 - a third-party protocol may raise anything
            err = FlextApiError.from_code(
                ErrorCode.CONFIG_ERROR, f"protocol {name!r} create_client failed: {exc}"
            )
            err.__cause__ = exc
            return FlextResult(error=err)

    async def execute(self, name: str, request: Any) -> FlextResult[Any]:
        """Run ``request`` through protocol ``name``'s ``execute_request``."""
        resolved = self.resolve(name)
        if resolved.is_failure:
            return resolved
        execute = getattr(resolved.value, "execute_request", None)
        if execute is None:
            return FlextResult.fail(
                f"protocol {name!r} has no execute_request", code=ErrorCode.CONFIG_ERROR
            )
        try:
            outcome = execute(request)
            if inspect.isawaitable(outcome):
                outcome = await outcome
        except FlextApiError as exc:
            return FlextResult(error=exc)
        except Exception as exc:  # noqa: BLE001 - a third-party protocol may raise anything
            return FlextResult(error=FlextApiError.wrap(exc, code=ErrorCode.PLUGIN_ERROR))
        if not isinstance(outcome, FlextResult):
            return FlextResult.fail(
                f"protocol {name!r} execute_request returned {type(outcome).__name__}, "
                "not a FlextResult",
                code=ErrorCode.PLUGIN_ERROR,
            )
        return outcome

    def discover(self, group: str = ENTRY_POINT_GROUP) -> FlextResult[list[str]]:
        """Register the protocols advertised under the entry-point ``group``.

        Entry points that fail to load (or are not protocols) are skipped and named in
        the failure's ``details["failures"]``; the others are registered.
        """
        loaded: list[str] = []
        failures: dict[str, str] = {}
        for ep in entry_points(group=group):
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken third-party package is reported
                failures[ep.name] = f"{type(exc).__name__}: {exc}"
                logger.warning("protocol entry point %r failed to load: %s", ep.name, exc)
                continue
            registered = self.register(ep.name, obj)
            if registered.is_failure:
                failures[ep.name] = registered.error or "not a protocol"
            else:
                loaded.append(ep.name)
        if failures:
            return FlextResult.fail(
                f"{len(failures)} protocol entry point(s) failed: {', '.join(sorted(failures))}",
                code=ErrorCode.PLUGIN_ERROR,
                details={"failures": failures, "loaded": loaded},
            )
        return FlextResult.ok(loaded)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def _unknown(self, name: str) -> FlextApiError:
        return ConfigError(
            f"no protocol named {name!r}; registered: {', '.join(self.names()) or 'none'}"
        )

    def __repr__(self) -> str:
        return f"<ProtocolRegistry [{', '.join(self.names())}]>"
