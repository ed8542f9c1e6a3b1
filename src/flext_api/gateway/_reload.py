"""Hot reload: from the file on SIGHUP, on a change of the file (debounced) or on request.

The new file is parsed and validated whole (:func:`load_config`) before anything
changes; an invalid one is refused, logged and counted, and the old config keeps
serving. A valid one is swapped in atomically by :meth:`Gateway.apply`. The outcome of
the last reload (and a refusal's reason) stays in :attr:`Reloader.last`, which
``GET /admin/reload/status`` shows.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

from .._errors import ConfigError
from .._result import FlextResult
from ._app import Gateway, Snapshot
from ._config import GatewayConfig
from ._loader import load_config

__all__ = ["Reloader"]


class Reloader:
    """Reloads ``gateway`` from ``path``; one reload at a time."""

    def __init__(self, gateway: Gateway, path: Path, *, debounce_ms: int = 300) -> None:
        self.gateway = gateway
        self.path = path
        self.debounce_ms = debounce_ms
        self.last_error: str | None = None
        # What the last reload did: {"result": "applied"|"refused", "at", "error"}.
        self.last: dict[str, str | None] | None = None
        self._lock = asyncio.Lock()

    async def reload(self) -> FlextResult[Snapshot]:
        """Validate the file and apply it, or refuse it and keep the running config."""
        async with self._lock:
            try:
                result = load_config(self.path)
            except Exception as exc:  # noqa: BLE001 - refused, logged and returned, not raised
                # The loader returns its failures; should one escape it anyway, it must not
                # end the file watch (a task nobody awaits) nor be a 500 on /admin/reload.
                return self._refuse(f"the config could not be loaded: {exc!r}", exc)
            if result.is_failure:
                return self._refuse(result.error or "invalid config", result.exception)
            config = self._keep_startup_settings(result.value)
            try:
                applied = await self.gateway.apply(config)
            except Exception as exc:  # noqa: BLE001 - refused, logged and returned, not raised
                # Valid but not buildable (a resource could not be made): the old config
                # keeps serving, as for an invalid file; the watch loop carries on.
                return self._refuse(f"the new config could not be applied: {exc!r}", exc)
            self.last_error = None
            self.last = {"result": "applied", "at": _now(), "error": None}
            self.gateway.access_log.info("config reloaded", path=str(self.path))
            return applied

    def _refuse(self, error: str, cause: BaseException | None) -> FlextResult[Snapshot]:
        self.last_error = error
        self.last = {"result": "refused", "at": _now(), "error": error}
        self.gateway.metrics.reloads.labels("refused").inc()
        self.gateway.access_log.error("config reload refused", path=str(self.path), error=error)
        if isinstance(cause, ConfigError):
            return FlextResult.fail(cause)
        failure = ConfigError(error)
        failure.__cause__ = cause
        return FlextResult.fail(failure)

    def _keep_startup_settings(self, config: GatewayConfig) -> GatewayConfig:
        """``config`` with the settings read only at start-up (the listeners and the admin
        port, ``drain_timeout``, ``watch``) as they are running, and a warning naming the
        ones the file changed: the rest of the file applies now, and ``/admin/config``
        shows what is in force."""
        running = self.gateway.config
        kept: dict[str, object] = {}
        for name in ("listeners", "drain_timeout", "watch"):
            if getattr(config, name) != getattr(running, name):
                kept[name] = getattr(running, name)
        old, new = running.admin, config.admin
        if (old.host, old.port, old.token is None) != (new.host, new.port, new.token is None):
            kept["admin"] = new.model_copy(
                update={"host": old.host, "port": old.port, "token": old.token}
            )
        if not kept:
            return config
        self.gateway.access_log.warning(
            "config reload: settings read at start-up kept as running; restart to apply",
            path=str(self.path),
            settings=sorted(kept),
        )
        return config.model_copy(update=kept)

    async def watch(self) -> None:
        """Reload on every (debounced) change of the file, until cancelled.

        The directory the path is in is watched, not the file: editors save by renaming a
        new file over the old one, and a Kubernetes ConfigMap volume swaps a ``..data``
        symlink to a new directory (``gateway.yaml -> ..data/gateway.yaml``) and deletes
        the old one, so the file the path resolves to moves at every update. A batch of
        changes in that directory reloads when it names the file or when the file the
        path leads to is not the one last seen (another target, inode, size or mtime).
        When the path is a symlink to another directory, that one is watched too.
        """
        from watchfiles import awatch

        link, roots, names = _watched(self.path)
        seen = _identity(link)
        async for changes in awatch(*roots, debounce=self.debounce_ms):
            current = _identity(link)
            named = any(Path(p).name in names for _, p in changes)
            if named or current != seen:
                seen = current
                names = _watched(link)[2]
                await self.reload()


def _now() -> str:
    """The time of day for an operator (ISO 8601 UTC, milliseconds)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _watched(path: Path) -> tuple[Path, list[Path], set[str]]:
    """``path`` made absolute (symlinks kept), the directories to watch for it and the
    file names that mean it changed (its own and its target's)."""
    link = Path(os.path.abspath(path))
    target = link.resolve()
    roots = [link.parent]
    if not target.parent.is_relative_to(link.parent):
        roots.append(target.parent)
    return link, roots, {link.name, target.name}


def _identity(path: Path) -> tuple[str, int, int, int, int] | None:
    """What tells one version of the file at ``path`` from another (None: unreadable)."""
    try:
        real = os.path.realpath(path)
        stat = os.stat(real)
    except OSError:
        return None
    return real, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns
