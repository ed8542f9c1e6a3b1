"""What a reload leaves behind: closed at the swap (probes) or after its last user (pools).

A reload builds a new :class:`~flext_api.gateway.Snapshot` and swaps it in; requests,
SSE streams and aggregates that began under the old one keep it until they end (each
holds its snapshot's :class:`Lease` meanwhile). What the new snapshot does not carry
over is closed:

* the registry of a cluster that was removed, or rebuilt because its balancer, health
  or registry settings changed, at the swap: its active health probes and its
  shared-registry watches stop at once. Requests still on the old snapshot go on picking
  from its local view (no I/O) and reporting into the health records, which the new
  registry continues.
* a pool (transport) that no cluster of the new snapshot reuses, once no snapshot that
  holds it is in use: when the last request or stream that began under one ends, or at
  the swap when there is none. There is no time bound: one would cut a stream the reload
  must leave alone. Idle connections of such a pool still close after its
  ``keepalive_expiry``, as in any pool.

What is carried over (a reused registry or pool, health records, breakers, drain flags)
is not touched. A reload refused before the swap closes only what its build made
(:meth:`Snapshot.build`). At shutdown :meth:`Holdings.aclose` closes every pool left,
each once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import structlog
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from ..transports import Transport
    from ._app import Snapshot

__all__ = ["Holdings", "Lease", "close_logged", "leased"]

_log = structlog.get_logger("flext_api.gateway")


class _Closable(Protocol):
    async def aclose(self) -> None: ...


async def close_logged(closable: _Closable, what: str) -> None:
    """Close ``closable``; a failure is logged, not raised (the caller has an outcome of
    its own to give: a reload applied, a build's own error, the other pools to close)."""
    try:
        await closable.aclose()
    except Exception as exc:  # noqa: BLE001 - logged; the caller carries on
        _log.warning("gateway.close_failed", what=what, error=repr(exc), exc_info=exc)


class Lease:
    """The requests using one snapshot now; :meth:`retire` says what to do once none is.

    A request enters (``users += 1``) when it takes the snapshot and calls :meth:`leave`
    when it ends.
    """

    __slots__ = ("_then", "users")

    def __init__(self) -> None:
        self.users = 0
        self._then: Callable[[], None] | None = None

    def leave(self) -> None:
        """One user ended; the last one after :meth:`retire` runs what it was given."""
        self.users -= 1
        if not self.users and self._then is not None:
            then, self._then = self._then, None
            then()

    def retire(self, then: Callable[[], None]) -> None:
        """No new request takes the snapshot: run ``then`` when no user is left (now if
        none is)."""
        if self.users:
            self._then = then
        else:
            then()

    def __repr__(self) -> str:
        state = ", retired" if self._then is not None else ""
        return f"<Lease [{self.users} in use{state}]>"


def leased(
    upstream: Callable[[Scope, Receive, Send], Awaitable[object]], lease: Lease
) -> Callable[[Scope, Receive, Send], Awaitable[object]]:
    """``upstream`` holding ``lease`` while it runs: for a call that may come after the
    request that made it ended (a cache's revalidation in the background).

    Such a call starts right after its request, under the lease it held. Only when a
    reload swaps the snapshot out and its last request ends in between does it find the
    pool closed: it then gets a 502 ``upstream_reset`` and the stale entry stays.
    """

    async def held(scope: Scope, receive: Receive, send: Send) -> object:
        lease.users += 1
        try:
            return await upstream(scope, receive, send)
        finally:
            lease.leave()

    return held


class Holdings:
    """The pools the gateway's snapshots hold, each counted by the snapshots holding it.

    A snapshot holds its pools from the moment it is swapped in until it is retired and
    its last user ended; a pool no snapshot holds any more is closed. Registries are not
    counted: a retired one is closed at the swap (:meth:`swap`).
    """

    def __init__(self) -> None:
        self._pools: dict[int, Transport] = {}
        self._holders: dict[int, int] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def hold(self, snapshot: Snapshot) -> None:
        """``snapshot`` is in force: its pools stay open while it holds them."""
        for key, transport in _pools(snapshot).items():
            self._pools[key] = transport
            self._holders[key] = self._holders.get(key, 0) + 1

    async def swap(self, old: Snapshot, new: Snapshot) -> None:
        """``new`` replaced ``old``: close the registries of ``old`` that ``new`` does
        not keep, and let ``old``'s pools go once no request uses ``old`` any more."""
        self.hold(new)
        kept = {id(c.registry) for c in new.clusters.values()}
        dropped = {
            id(c.registry): c.registry for c in old.clusters.values() if id(c.registry) not in kept
        }
        old.lease.retire(functools.partial(self._release, old))
        # Shielded: a reload cancelled now (at shutdown) still stops every prober.
        closing = [close_logged(registry, "registry") for registry in dropped.values()]
        await asyncio.shield(asyncio.gather(*closing))

    def _release(self, snapshot: Snapshot) -> None:
        """``snapshot`` holds its pools no more: close those nothing else holds."""
        for key in _pools(snapshot):
            count = self._holders.get(key)
            if count is None:
                continue  # closed at shutdown already
            if count > 1:
                self._holders[key] = count - 1
                continue
            del self._holders[key]
            transport = self._pools.pop(key)
            task = asyncio.get_running_loop().create_task(close_logged(transport, "pool"))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def held(self) -> list[Transport]:
        """The pools some snapshot holds now (open, or in use by a retired snapshot)."""
        return list(self._pools.values())

    async def settle(self) -> None:
        """Wait for the pools being closed now to be closed."""
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def aclose(self) -> None:
        """Close every pool still held and wait for those being closed; idempotent."""
        pools = list(self._pools.values())
        self._pools.clear()
        self._holders.clear()
        for transport in pools:
            await close_logged(transport, "pool")
        await self.settle()

    def __repr__(self) -> str:
        return f"<Holdings [{len(self._pools)} pools held, {len(self._closing)} closing]>"


def _pools(snapshot: Snapshot) -> dict[int, Transport]:
    return {id(c.transport): c.transport for c in snapshot.clusters.values()}
