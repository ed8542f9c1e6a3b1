"""What a reload retires: probes stop at the swap, a pool closes after its last user, what
is carried over stays open, a failed build closes only what it made (no server needed)."""

from __future__ import annotations

from typing import Any

import pytest

from flext_api.discovery import ServiceRegistry
from flext_api.gateway import _app, _cluster
from flext_api.gateway._app import Gateway
from flext_api.gateway._cluster import Cluster
from flext_api.gateway._config import ClusterConfig, GatewayConfig
from flext_api.testing import FakeClock
from flext_api.transports import Transport


def _data(*, threshold: int = 2, pool: int = 100, route: str = "r") -> dict[str, Any]:
    return {
        "clusters": [
            {
                "name": "c",
                "instances": [{"url": "http://127.0.0.1:9", "id": "i"}],
                # Probes on, an hour apart: a prober runs, and sends one probe at start.
                "health": {"interval": 3600, "healthy_threshold": threshold},
                "pool": {"max_connections": pool},
            }
        ],
        "routes": [{"name": route, "cluster": "c", "match": {"path_prefix": "/"}}],
        "watch": False,
    }


def _config(**changes: Any) -> GatewayConfig:
    return GatewayConfig.model_validate(_data(**changes))


class Made:
    """Every pool and registry the clusters make, and how often each pool was closed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pools: list[Transport] = []
        self.registries: list[ServiceRegistry] = []
        self._closes: dict[int, int] = {}
        real = _cluster.upstream_transport
        made = self

        def counted(config: ClusterConfig, clock: Any) -> Transport:
            transport = real(config, clock)
            close = transport.aclose

            async def aclose() -> None:
                made._closes[id(transport)] += 1
                await close()

            monkeypatch.setattr(transport, "aclose", aclose)
            made._closes[id(transport)] = 0
            made.pools.append(transport)
            return transport

        class Recorded(ServiceRegistry):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                made.registries.append(self)

        monkeypatch.setattr(_cluster, "upstream_transport", counted)
        monkeypatch.setattr(_cluster, "ServiceRegistry", Recorded)

    def closes(self, transport: Transport) -> int:
        """How many times ``transport`` was closed."""
        return self._closes[id(transport)]


def _probing(registry: ServiceRegistry) -> bool:
    prober = registry._prober
    return prober is not None and not prober.done()


async def test_a_rebuilt_registry_stops_probing_at_the_swap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reload that changes a cluster's health settings builds a new registry: the old
    one's prober is stopped when the reload returns, not at shutdown (each reload added
    one more prober probing every instance)."""
    Made(monkeypatch)
    gateway = Gateway(_config())
    await gateway.start()
    try:
        old = gateway.snapshot.clusters["c"].registry
        assert _probing(old)
        assert (await gateway.apply(_config(threshold=3))).is_success
        current = gateway.snapshot.clusters["c"].registry
        assert current is not old and _probing(current) and not current.closed
        assert old.closed and not _probing(old)
    finally:
        await gateway.aclose()


async def test_every_replaced_registry_is_closed_and_one_prober_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After N reloads that rebuild the registry, exactly one registry probes."""
    made = Made(monkeypatch)
    gateway = Gateway(_config())
    await gateway.start()
    try:
        for threshold in range(3, 9):
            assert (await gateway.apply(_config(threshold=threshold))).is_success
        assert len(made.registries) == 7
        assert [_probing(r) for r in made.registries] == [False] * 6 + [True]
        assert [r.closed for r in made.registries] == [True] * 6 + [False]
    finally:
        await gateway.aclose()
    assert all(r.closed for r in made.registries)


async def test_what_a_reload_carries_over_stays_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reload that changes neither health nor pool keeps the registry (its prober, its
    health records) and the pool: nothing of them is closed."""
    made = Made(monkeypatch)
    gateway = Gateway(_config())
    await gateway.start()
    try:
        before = gateway.snapshot.clusters["c"]
        assert (await gateway.apply(_config(route="renamed"))).is_success
        after = gateway.snapshot.clusters["c"]
        await gateway.holdings.settle()
        assert after.registry is before.registry and _probing(after.registry)
        assert after.transport is before.transport and made.closes(after.transport) == 0
        assert after.breakers["i"] is before.breakers["i"]
        assert gateway.holdings.held() == [after.transport]
    finally:
        await gateway.aclose()


async def test_a_reused_pool_stays_open_when_the_registry_is_rebuilt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Health settings changed, pool settings not: the old registry is closed, the pool
    (and its keep-alive connections) carries on."""
    made = Made(monkeypatch)
    gateway = Gateway(_config())
    await gateway.start()
    try:
        before = gateway.snapshot.clusters["c"]
        assert (await gateway.apply(_config(threshold=3))).is_success
        await gateway.holdings.settle()
        after = gateway.snapshot.clusters["c"]
        assert before.registry.closed and after.transport is before.transport
        assert made.closes(after.transport) == 0
    finally:
        await gateway.aclose()


async def test_a_replaced_pool_closes_when_its_last_user_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pool the new snapshot does not reuse stays open while a request that began
    under the old snapshot (an SSE stream) runs, and is closed once it ends."""
    made = Made(monkeypatch)
    gateway = Gateway(_config())
    await gateway.start()
    try:
        old = gateway.snapshot
        pool = old.clusters["c"].transport
        old.lease.users += 1  # what a request does when it takes the snapshot
        assert (await gateway.apply(_config(pool=50))).is_success
        await gateway.holdings.settle()
        assert made.closes(pool) == 0 and pool in gateway.holdings.held()
        assert repr(old.lease) == "<Lease [1 in use, retired]>"
        old.lease.leave()
        await gateway.holdings.settle()
        assert made.closes(pool) == 1 and pool not in gateway.holdings.held()
        assert made.closes(gateway.snapshot.clusters["c"].transport) == 0
    finally:
        await gateway.aclose()


async def test_a_replaced_pool_with_no_user_closes_at_the_swap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No request on the old snapshot: its replaced pool is closed right away."""
    made = Made(monkeypatch)
    gateway = Gateway(_config())
    await gateway.start()
    try:
        pool = gateway.snapshot.clusters["c"].transport
        assert (await gateway.apply(_config(pool=50))).is_success
        await gateway.holdings.settle()
        assert made.closes(pool) == 1
    finally:
        await gateway.aclose()
    assert made.closes(pool) == 1


async def test_a_pool_waits_for_every_snapshot_that_held_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pool kept by a second snapshot and replaced by a third stays open while a
    request of the first one runs, though the second has none."""
    made = Made(monkeypatch)
    gateway = Gateway(_config())
    await gateway.start()
    try:
        first = gateway.snapshot
        pool = first.clusters["c"].transport
        first.lease.users += 1
        assert (await gateway.apply(_config(threshold=3))).is_success  # pool kept
        assert gateway.snapshot.clusters["c"].transport is pool
        assert (await gateway.apply(_config(threshold=3, pool=50))).is_success  # replaced
        await gateway.holdings.settle()
        assert made.closes(pool) == 0
        first.lease.leave()
        await gateway.holdings.settle()
        assert made.closes(pool) == 1
    finally:
        await gateway.aclose()


async def test_a_removed_cluster_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cluster the new config no longer has: its prober stops and its pool closes."""
    made = Made(monkeypatch)
    data = _data()
    extra = {**data["clusters"][0], "name": "d", "instances": [{"url": "http://127.0.0.1:7"}]}
    gateway = Gateway(
        GatewayConfig.model_validate({**data, "clusters": [*data["clusters"], extra]})
    )
    await gateway.start()
    try:
        removed, kept = gateway.snapshot.clusters["d"], gateway.snapshot.clusters["c"]
        assert (await gateway.apply(_config())).is_success
        await gateway.holdings.settle()
        assert removed.registry.closed and not _probing(removed.registry)
        assert made.closes(removed.transport) == 1
        assert _probing(kept.registry) and made.closes(kept.transport) == 0
    finally:
        await gateway.aclose()


async def test_a_build_that_fails_closes_what_it_made_and_nothing_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reload whose snapshot fails to build (after its clusters were made) closes the
    registry, prober and pool it made; the running ones stay open, with their health
    settings as they were."""
    made = Made(monkeypatch)
    gateway = Gateway(_config())
    await gateway.start()
    try:
        running = gateway.snapshot.clusters["c"]
        check = running.registry.tracker.check

        def broken(routes: Any) -> Any:
            raise OSError(24, "Too many open files")

        monkeypatch.setattr(_app, "Router", broken)
        with pytest.raises(OSError, match="Too many open files"):
            await gateway.apply(_config(threshold=3, pool=50))
        registry, pool = made.registries[-1], made.pools[-1]
        assert registry is not running.registry and pool is not running.transport
        assert registry.closed and not _probing(registry) and made.closes(pool) == 1
        assert gateway.snapshot.clusters["c"] is running
        assert not running.registry.closed and _probing(running.registry)
        assert made.closes(running.transport) == 0
        assert running.registry.tracker.check == check
        assert gateway.holdings.held() == [running.transport]
    finally:
        await gateway.aclose()


async def test_a_cluster_that_fails_to_build_closes_its_new_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cluster build that fails after making its registry (here: the pool) closes it
    and gives the running cluster's health tracker its own settings back."""
    made = Made(monkeypatch)
    clock = FakeClock()
    config = _config().clusters[0]
    running = await Cluster.build(config, None, clock)
    check = running.registry.tracker.check

    def no_pool(config: ClusterConfig, clock: Any) -> Transport:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(_cluster, "upstream_transport", no_pool)
    changed = _config(threshold=5, pool=50).clusters[0]
    with pytest.raises(OSError, match="Too many open files"):
        await Cluster.build(changed, running, clock)
    built = made.registries[-1]
    assert built is not running.registry and built.closed and not _probing(built)
    assert not running.registry.closed and _probing(running.registry)
    assert running.registry.tracker.check == check
    await running.aclose(close_transport=True)


async def test_shutdown_closes_every_pool_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shutdown closes the pools in force and those retired snapshots still hold, each
    once (twice called, and a request ending after it, close nothing again)."""
    made = Made(monkeypatch)
    gateway = Gateway(_config())
    await gateway.start()
    second = None
    for step, changes in enumerate(({"pool": 50}, {"pool": 50, "threshold": 3}, {"pool": 80})):
        assert (await gateway.apply(_config(**changes))).is_success
        if step == 0:
            second = gateway.snapshot
            second.lease.users += 1  # still streaming at shutdown
    assert second is not None
    await gateway.aclose()
    await gateway.aclose()
    second.lease.leave()
    await gateway.holdings.settle()
    assert len(made.pools) == 3
    assert [made.closes(p) for p in made.pools] == [1, 1, 1]
    assert all(r.closed for r in made.registries)
    assert repr(gateway.holdings) == "<Holdings [0 pools held, 0 closing]>"


def test_a_lease_runs_its_retirement_once_after_the_last_user() -> None:
    """retire() runs at once with no user, else when the last one leaves; once."""
    from flext_api.gateway._retire import Holdings, Lease

    ran: list[str] = []
    idle = Lease()
    idle.retire(lambda: ran.append("idle"))
    busy = Lease()
    busy.users += 2
    busy.retire(lambda: ran.append("busy"))
    assert ran == ["idle"] and repr(busy) == "<Lease [2 in use, retired]>"
    busy.leave()
    assert ran == ["idle"]
    busy.leave()
    busy.users += 1  # a late user (a background revalidation) changes nothing
    busy.leave()
    assert ran == ["idle", "busy"] and repr(busy) == "<Lease [0 in use]>"
    assert repr(Holdings()) == "<Holdings [0 pools held, 0 closing]>"
