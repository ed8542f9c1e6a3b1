"""Hot reload: from the file on SIGHUP, on a change of the file (debounced) or on request.

The new file is parsed and validated whole (:func:`load_config`) before anything
changes; an invalid one is refused, logged and counted, and the old config keeps
serving. A valid one is swapped in atomically by :meth:`Gateway.apply`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from .._result import FlextResult
from ._app import Gateway, Snapshot
from ._loader import load_config

__all__ = ["Reloader"]


class Reloader:
    """Reloads ``gateway`` from ``path``; one reload at a time."""

    def __init__(self, gateway: Gateway, path: Path, *, debounce_ms: int = 300) -> None:
        self.gateway = gateway
        self.path = path
        self.debounce_ms = debounce_ms
        self.last_error: str | None = None
        self._lock = asyncio.Lock()

    async def reload(self) -> FlextResult[Snapshot]:
        """Validate the file and apply it, or refuse it and keep the running config."""
        async with self._lock:
            result = load_config(self.path)
            if result.is_failure:
                self.last_error = result.error
                self.gateway.metrics.reloads.labels("refused").inc()
                self.gateway.access_log.error(
                    "config reload refused", path=str(self.path), error=result.error
                )
                return FlextResult.fail(result.exception or result.error or "invalid config")
            self.last_error = None
            applied = await self.gateway.apply(result.value)
            self.gateway.access_log.info("config reloaded", path=str(self.path))
            return applied

    async def watch(self) -> None:
        """Reload on every (debounced) change of the file, until cancelled."""
        from watchfiles import awatch

        target = self.path.resolve()
        # Watch the directory: editors replace a file by renaming, which a file watch misses.
        async for changes in awatch(target.parent, debounce=self.debounce_ms):
            if any(Path(p).name == target.name for _, p in changes):
                await self.reload()
