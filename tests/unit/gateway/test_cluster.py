"""Gateway clusters on discovery: picking, breakers, ejection, state kept across reloads."""

from __future__ import annotations

from typing import Any

from flext_api import ErrorCode
from flext_api.gateway import Cluster, ClusterConfig, Reason
from flext_api.gateway._cluster import Picked
from flext_api.testing import FakeClock


def _config(**overrides: Any) -> ClusterConfig:
    data: dict[str, Any] = {
        "name": "svc",
        "instances": [
            {"url": "http://10.0.0.1:80", "id": "a"},
            {"url": "http://10.0.0.2:80", "id": "b"},
        ],
        "health": {"active": False, "passive": {"consecutive_gateway_errors": 2}},
        "breaker": {"consecutive_failures": 100},
    }
    data.update(overrides)
    return ClusterConfig.model_validate(data)


def _fail(cluster: Cluster, picked: Picked) -> None:
    cluster.report(picked, status=None, error=ErrorCode.CONNECT_ERROR, duration=0.01)


async def test_pick_avoids_tried_instances() -> None:
    """A retry goes to the instance not tried yet."""
    cluster = await Cluster.build(_config(), None, FakeClock())
    first = cluster.pick(set())
    assert isinstance(first, Picked)
    second = cluster.pick({first.id})
    assert isinstance(second, Picked) and second.id != first.id
    await cluster.aclose(close_transport=True)


async def test_ejection_survives_reload_with_new_health_settings() -> None:
    """An ejected instance stays ejected when a reload changes the health settings."""
    clock = FakeClock()
    cluster = await Cluster.build(_config(), None, clock)
    for _ in range(2):
        picked = cluster.pick({"a"})
        assert isinstance(picked, Picked) and picked.id == "b"
        _fail(cluster, picked)
    states = {row["id"]: row["state"] for row in cluster.describe()["instances"]}
    assert states["b"] == "ejected"
    changed = _config(health={"active": False, "passive": {"consecutive_gateway_errors": 3}})
    reloaded = await Cluster.build(changed, cluster, clock)
    assert reloaded.registry is not cluster.registry
    states = {row["id"]: row["state"] for row in reloaded.describe()["instances"]}
    assert states["b"] == "ejected"
    await cluster.aclose(close_transport=False)
    await reloaded.aclose(close_transport=True)


async def test_breaker_and_pool_kept_for_remaining_instances() -> None:
    """A reload keeps the breaker of an instance that remains and the unchanged pool."""
    clock = FakeClock()
    cluster = await Cluster.build(_config(), None, clock)
    reloaded = await Cluster.build(
        _config(instances=[{"url": "http://10.0.0.1:80", "id": "a"}]), cluster, clock
    )
    assert reloaded.breakers["a"] is cluster.breakers["a"]
    assert "b" not in reloaded.breakers
    assert reloaded.transport is cluster.transport
    assert reloaded.registry is cluster.registry
    assert [r["id"] for r in reloaded.describe()["instances"]] == ["a"]
    await reloaded.aclose(close_transport=True)


async def test_open_breakers_give_breaker_open() -> None:
    """When every instance's breaker is open, the reason is breaker_open."""
    clock = FakeClock()
    cluster = await Cluster.build(
        _config(
            breaker={"consecutive_failures": 1},
            health={"active": False, "passive": {"enabled": False}},
        ),
        None,
        clock,
    )
    for _ in range(2):
        picked = cluster.pick(set())
        assert isinstance(picked, Picked)
        _fail(cluster, picked)
    assert cluster.pick(set()) is Reason.BREAKER_OPEN
    await cluster.aclose(close_transport=True)


async def test_breaker_turned_off_never_opens() -> None:
    """breaker.enabled false: failures never open it and every pick is admitted."""
    clock = FakeClock()
    cluster = await Cluster.build(
        _config(
            breaker={"enabled": False, "consecutive_failures": 1},
            health={"active": False, "passive": {"enabled": False}},
        ),
        None,
        clock,
    )
    for _ in range(6):
        picked = cluster.pick(set())
        assert isinstance(picked, Picked) and picked.breaker is None
        _fail(cluster, picked)
        cluster.release(picked)
    assert isinstance(cluster.pick(set()), Picked)
    await cluster.aclose(close_transport=True)


async def test_drain_and_enable() -> None:
    """Drained instances get no picks; draining every one gives no_healthy_instance."""
    cluster = await Cluster.build(_config(), None, FakeClock())
    assert await cluster.set_drained("a", True)
    assert await cluster.set_drained("b", True)
    assert not await cluster.set_drained("ghost", True)
    assert cluster.pick(set()) is Reason.NO_HEALTHY_INSTANCE
    states = {row["state"] for row in cluster.describe()["instances"]}
    assert states == {"drained"}
    await cluster.set_drained("a", False)
    picked = cluster.pick(set())
    assert isinstance(picked, Picked) and picked.id == "a"
    await cluster.aclose(close_transport=True)


async def test_drain_flag_survives_reload() -> None:
    """A drained instance stays drained across a reload."""
    clock = FakeClock()
    cluster = await Cluster.build(_config(), None, clock)
    await cluster.set_drained("b", True)
    reloaded = await Cluster.build(_config(balancer="random"), cluster, clock)
    assert reloaded.drained == {"b"}
    for _ in range(5):
        picked = reloaded.pick(set())
        assert isinstance(picked, Picked) and picked.id == "a"
    await cluster.aclose(close_transport=False)
    await reloaded.aclose(close_transport=True)


async def test_pool_is_h1_with_aiohttp_for_https_by_default() -> None:
    """A cluster's pool is H1Transport, with aiohttp as its fallback (https://)."""
    from flext_api.transports import AiohttpTransport, H1Transport

    cluster = await Cluster.build(_config(), None, FakeClock())
    assert isinstance(cluster.transport, H1Transport)
    assert isinstance(cluster.transport._fallback, AiohttpTransport)
    await cluster.aclose(close_transport=True)


async def test_transport_aiohttp_is_a_choice_and_a_change_rebuilds_the_pool() -> None:
    """``transport: aiohttp`` gives aiohttp for every upstream; changing it makes a new pool."""
    from flext_api.transports import AiohttpTransport

    clock = FakeClock()
    cluster = await Cluster.build(_config(), None, clock)
    reloaded = await Cluster.build(_config(transport="aiohttp"), cluster, clock)
    assert isinstance(reloaded.transport, AiohttpTransport)
    await cluster.aclose(close_transport=True)
    await reloaded.aclose(close_transport=True)


async def test_released_attempt_frees_the_balancers_in_flight_count() -> None:
    """An attempt released without an outcome (client gone, body too large, pool full)
    ends the call the pick started: least_request no longer counts it in flight (it
    counted it forever, so the instance looked busier and lost its share of picks)."""
    cluster = await Cluster.build(_config(balancer="least_request"), None, FakeClock())
    for _ in range(3):
        picked = cluster.pick(set())
        assert isinstance(picked, Picked)
        cluster.release(picked)
    view = cluster.registry.cluster("svc")
    assert view is not None
    assert {ident: view.balancer.in_flight(ident) for ident in ("a", "b")} == {"a": 0, "b": 0}  # type: ignore[attr-defined]
    await cluster.aclose(close_transport=True)
