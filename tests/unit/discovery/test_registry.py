"""ServiceRegistry on the memory backend: registration, picks, health, watch, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from flext_api._errors import ErrorCode
from flext_api._result import FlextResult
from flext_api.discovery import (
    DiscoveryEvent,
    InstanceStateChanged,
    MemoryBackend,
    OutlierConfig,
    ProbeCompleted,
    RegistryBackend,
    RegistryStale,
    ServiceChange,
    ServiceInstance,
    ServiceRegistry,
)
from flext_api.testing import FakeClock


def _inst(k: int, name: str = "orders", **kw: object) -> ServiceInstance:
    return ServiceInstance(id=f"{name}-{k}", name=name, url=f"http://127.0.0.1:{9000 + k}", **kw)  # type: ignore[arg-type]


async def test_registered_instance_takes_traffic_at_once() -> None:
    """A freshly registered instance is picked before any probe ran."""
    registry = ServiceRegistry()
    assert (await registry.register("orders", _inst(1))).is_success
    picked = await registry.get_instance("orders")
    assert picked.value.id == "orders-1"


async def test_unregistered_instance_stops_taking_calls_at_once() -> None:
    """After unregister, no pick returns the removed instance."""
    registry = ServiceRegistry()
    await registry.register("orders", _inst(1))
    await registry.register("orders", _inst(2))
    assert (await registry.unregister("orders", "orders-1")).is_success
    assert {(await registry.get_instance("orders")).value.id for _ in range(10)} == {"orders-2"}


async def test_unknown_service_is_a_connect_error() -> None:
    """No instance: a failed result with CONNECT_ERROR naming the service."""
    result = await ServiceRegistry().get_instance("nothing")
    assert result.error_code is ErrorCode.CONNECT_ERROR and "nothing" in (result.error or "")


async def test_instances_lists_all_and_available() -> None:
    """instances() lists the registered set; available=True only those taking traffic."""
    registry = ServiceRegistry()
    await registry.register("orders", _inst(1))
    await registry.register("orders", _inst(2, health="unhealthy"))
    assert len(registry.instances("orders").value) == 2
    assert [i.id for i in registry.instances("orders", available=True).value] == ["orders-1"]
    assert registry.instances("other").value == []


@pytest.mark.parametrize(
    ("name", "instance"),
    [
        ("bad name!", _inst(1)),
        ("orders", ServiceInstance(id="x", name="orders", url="ftp://h")),
        ("orders", ServiceInstance(id="x", name="orders", url="http://h:99999")),
        ("orders", ServiceInstance(id="x", name="orders", url="http://h/?q=1")),
        # urlsplit drops CR/LF silently: the URL would carry them into every request line.
        ("orders", ServiceInstance(id="x", name="orders", url="http://h/a\r\nX-Evil: 1")),
        ("orders", ServiceInstance(id="x", name="orders", url="http://h/a b")),
        ("orders", ServiceInstance(id="x", name="orders", url="http://h\x00:1")),
        ("orders", ServiceInstance(id="x", name="orders", url="http://h:0")),
        ("orders", ServiceInstance(id="x", name="orders", url="http://h", weight=0)),
        ("orders", ServiceInstance(id="x", name="orders", url="http://h", health="meh")),
        ("orders", ServiceInstance(id="x", name="orders", url="http://h", last_check=float("inf"))),
        ("orders", ServiceInstance(id="", name="orders", url="http://h")),
        ("other", _inst(1)),
        ("orders", "http://h"),
    ],
)
async def test_bad_registration_is_invalid_request(name: str, instance: ServiceInstance) -> None:
    """Every malformed registration fails with INVALID_REQUEST and stores nothing."""
    registry = ServiceRegistry()
    result = await registry.register(name, instance)
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert registry.services() == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9001?", "http://127.0.0.1:9001#", "http://127.0.0.1:9001/api?"]
)
async def test_instance_url_with_an_empty_query_or_fragment_is_invalid(url: str) -> None:
    """A URL ending in a bare '?' or '#' is refused: each call's path, appended to it,
    would land in the query or the fragment (every call reaching the prefix itself)."""
    registry = ServiceRegistry()
    result = await registry.register("orders", ServiceInstance(id="x", name="orders", url=url))
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "query or fragment" in (result.error or "")
    assert registry.services() == []


async def test_bad_names_on_reads_fail() -> None:
    """unregister/instances/refresh with a bad name fail with INVALID_REQUEST."""
    registry = ServiceRegistry()
    assert (await registry.unregister("a b", "x")).error_code is ErrorCode.INVALID_REQUEST
    assert (await registry.unregister("a", "x y")).error_code is ErrorCode.INVALID_REQUEST
    assert registry.instances("").error_code is ErrorCode.INVALID_REQUEST
    assert (await registry.refresh("a/b")).error_code is ErrorCode.INVALID_REQUEST


async def test_reregistration_keeps_health_state() -> None:
    """An ejected instance stays ejected when registered again (a reload)."""
    clock = FakeClock()
    registry = ServiceRegistry(clock=clock)
    for k in range(3):
        await registry.register("orders", _inst(k))
    bad = _inst(0)
    for _ in range(5):
        registry.record_call("orders", bad, status=503, error=None, latency=0.01)
    await registry.unregister("orders", bad.id)
    await registry.register("orders", bad)
    assert bad.id not in {i.id for i in registry.instances("orders", available=True).value}


async def test_passive_ejection_then_expiry_readmits() -> None:
    """An ejected instance gets no picks until its ejection time has passed."""
    clock = FakeClock()
    registry = ServiceRegistry(clock=clock, outlier=OutlierConfig(base_ejection_time=10.0))
    for k in range(3):
        await registry.register("orders", _inst(k))
    for _ in range(5):
        registry.record_call("orders", _inst(0), status=500, error=None, latency=0.01)
    assert "orders-0" not in {(await registry.get_instance("orders")).value.id for _ in range(9)}
    clock.advance(10.0)
    assert "orders-0" in {(await registry.get_instance("orders")).value.id for _ in range(9)}


async def test_passive_ejection_never_empties_the_cluster() -> None:
    """All instances failing: passive checks leave at least one available."""
    registry = ServiceRegistry(clock=FakeClock(), outlier=OutlierConfig(max_ejection_percent=100))
    for k in range(3):
        await registry.register("orders", _inst(k))
    for _ in range(10):
        for k in range(3):
            registry.record_call(
                "orders", _inst(k), status=None, error=ErrorCode.CONNECT_ERROR, latency=0.0
            )
    assert len(registry.instances("orders", available=True).value) == 1


async def test_all_down_panics_to_every_instance() -> None:
    """When probes mark every instance down, picks still go somewhere (panic mode)."""
    registry = ServiceRegistry(clock=FakeClock())
    await registry.register("orders", _inst(1))
    for _ in range(3):
        registry.record_probe("orders", "orders-1", passed=False, status=500, error=None)
    assert registry.instances("orders", available=True).value == []
    assert (await registry.get_instance("orders")).value.id == "orders-1"
    assert registry.stats()["services"]["orders"]["panic"] is True


async def test_probe_results_flow_to_hooks_and_state() -> None:
    """Probe results emit ProbeCompleted and state transitions emit InstanceStateChanged."""
    events: list[DiscoveryEvent] = []
    registry = ServiceRegistry(clock=FakeClock(), hooks=[events.append])
    await registry.register("orders", _inst(1))
    for _ in range(3):
        registry.record_probe(
            "orders", "orders-1", passed=False, status=None, error="CONNECT_ERROR"
        )
    kinds = [e.event for e in events if isinstance(e, InstanceStateChanged)]
    assert kinds == ["added", "down"]
    assert sum(isinstance(e, ProbeCompleted) for e in events) == 3


async def test_probe_of_removed_instance_is_ignored() -> None:
    """A probe result for an instance no longer registered changes nothing."""
    events: list[DiscoveryEvent] = []
    registry = ServiceRegistry(hooks=[events.append])
    registry.record_probe("orders", "ghost", passed=False, status=None, error=None)
    registry.record_call("orders", _inst(1), status=500, error=None, latency=0.0)
    assert events == []


def _states(registry: ServiceRegistry, name: str) -> dict[str, str]:
    return {r["id"]: r["state"] for r in registry.stats()["services"][name]["instances"]}


async def _two_primaries(registry: ServiceRegistry) -> ServiceInstance:
    """orders and users each with an instance named 'primary'; orders' is returned."""
    orders = ServiceInstance(id="primary", name="orders", url="http://127.0.0.1:9001")
    users = ServiceInstance(id="primary", name="users", url="http://127.0.0.1:9101")
    for inst in (orders, _inst(2), users, _inst(2, "users")):
        assert (await registry.register(inst.name, inst)).is_success
    return orders


async def test_probes_of_a_same_id_in_another_service_do_not_reset_a_failure_streak() -> None:
    """users/primary passing its probes does not keep a failing orders/primary up: an id
    is unique only within its service."""
    events: list[DiscoveryEvent] = []
    registry = ServiceRegistry(clock=FakeClock(), hooks=[events.append])
    await _two_primaries(registry)
    for _ in range(3):  # unhealthy_threshold 3
        registry.record_probe("orders", "primary", passed=False, status=503, error=None)
        registry.record_probe("users", "primary", passed=True, status=200, error=None)
    assert _states(registry, "orders")["primary"] == "down"
    assert _states(registry, "users")["primary"] == "up"
    assert "primary" not in {i.id for i in registry.instances("orders", available=True).value}
    downs = [
        (e.service, e.instance_id)
        for e in events
        if isinstance(e, InstanceStateChanged) and e.event == "down"
    ]
    assert downs == [("orders", "primary")]


async def test_ejection_stays_within_the_service_of_the_failing_instance() -> None:
    """Five 503s from orders/primary eject it and leave users/primary in rotation."""
    registry = ServiceRegistry(clock=FakeClock())
    orders_primary = await _two_primaries(registry)
    for _ in range(5):
        registry.record_call("orders", orders_primary, status=503, error=None, latency=0.01)
    assert _states(registry, "orders")["primary"] == "ejected"
    assert _states(registry, "users")["primary"] == "up"
    assert "primary" in {i.id for i in registry.instances("users", available=True).value}


async def test_success_of_a_same_id_in_another_service_does_not_reset_a_5xx_streak() -> None:
    """A 200 from users/primary between orders/primary's 503s leaves orders' count alone."""
    registry = ServiceRegistry(clock=FakeClock())
    orders_primary = await _two_primaries(registry)
    users_primary = registry.cluster("users").instances["primary"]  # type: ignore[union-attr]
    for _ in range(4):
        registry.record_call("orders", orders_primary, status=503, error=None, latency=0.01)
    registry.record_call("users", users_primary, status=200, error=None, latency=0.01)
    registry.record_call("orders", orders_primary, status=503, error=None, latency=0.01)
    assert _states(registry, "orders")["primary"] == "ejected"


async def test_raising_hook_does_not_break_registration() -> None:
    """A hook that raises is logged; the registration still succeeds."""

    def boom(event: DiscoveryEvent) -> None:
        raise RuntimeError("hook")

    registry = ServiceRegistry(hooks=[boom])
    assert (await registry.register("orders", _inst(1))).is_success


async def test_watch_yields_current_set_then_changes() -> None:
    """watch() first yields the current instances, then each registration change."""
    registry = ServiceRegistry()
    await registry.register("orders", _inst(1))
    changes: list[ServiceChange] = []

    async def consume() -> None:
        async for change in registry.watch("orders"):
            changes.append(change)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await registry.register("orders", _inst(2))
    await registry.unregister("orders", "orders-1")
    await registry.aclose()
    await task
    assert [len(c.added) for c in changes] == [1, 1, 0]
    assert [i.id for i in changes[2].removed] == ["orders-1"]


async def test_closed_registry_refuses_writes() -> None:
    """After aclose(), register and unregister fail; aclose is idempotent."""
    registry = ServiceRegistry()
    await registry.aclose()
    await registry.aclose()
    assert (await registry.register("orders", _inst(1))).error_code is ErrorCode.INVALID_REQUEST
    assert (await registry.unregister("orders", "x")).error_code is ErrorCode.INVALID_REQUEST


async def test_ring_hash_key_pins_an_instance() -> None:
    """With ring hashing, the same key always picks the same instance."""
    registry = ServiceRegistry(balancer="ring_hash")
    for k in range(5):
        await registry.register("orders", _inst(k))
    ids = {(await registry.get_instance("orders", key="user-7")).value.id for _ in range(10)}
    assert len(ids) == 1


async def test_describe_and_repr_show_the_setup() -> None:
    """describe() names backend and balancer; repr counts services and instances."""
    registry = ServiceRegistry(balancer="least_request")
    await registry.register("orders", _inst(1))
    assert registry.describe()["balancer"] == "least_request"
    assert repr(registry) == "<ServiceRegistry backend='memory' [1 services, 1 instances]>"
    assert "1 of 1 available" in repr(registry.cluster("orders"))


def test_instance_round_trips_through_dict() -> None:
    """to_dict/from_dict keep every field; malformed records fail."""
    inst = _inst(1, weight=3, zone="a", metadata={"v": "2"})
    assert ServiceInstance.from_dict(inst.to_dict()) == inst
    with pytest.raises(Exception, match="malformed"):
        ServiceInstance.from_dict({"id": "x"})
    assert inst.host == "127.0.0.1:9001" and hash(inst) == hash(_inst(1))


class _FlakyBackend(MemoryBackend):
    """A shared memory backend whose list() fails while ``down`` is set."""

    kind = "flaky"
    shared = True

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def list(self, name: str) -> FlextResult[list[ServiceInstance]]:
        if self.down:
            return FlextResult.fail("store unreachable", code=ErrorCode.CONNECT_ERROR)
        return await super().list(name)

    async def changes(self, name: str) -> AsyncGenerator[None, None]:
        while not self.down:
            await asyncio.sleep(0.01)
            yield None


async def test_unreachable_backend_keeps_last_known_instances() -> None:
    """The store failing keeps the last set, marks it stale once, and recovers."""
    events: list[DiscoveryEvent] = []
    backend = _FlakyBackend()
    assert isinstance(backend, RegistryBackend)
    registry = ServiceRegistry(backend, hooks=[events.append])
    await registry.register("orders", _inst(1))
    assert (await registry.get_instance("orders")).is_success
    backend.down = True
    for _ in range(200):
        if registry.stats()["services"]["orders"]["stale"]:
            break
        await asyncio.sleep(0.01)
    assert registry.stats()["services"]["orders"]["stale"] is True
    assert (await registry.get_instance("orders")).value.id == "orders-1"
    assert (await registry.refresh("orders")).is_failure
    backend.down = False
    for _ in range(500):
        if not registry.stats()["services"]["orders"]["stale"]:
            break
        await asyncio.sleep(0.01)
    await registry.aclose()
    stale = [e.stale for e in events if isinstance(e, RegistryStale)]
    assert stale == [True, False]


class _SnapshotBackend(MemoryBackend):
    """A shared memory backend whose list() takes its snapshot, then waits for ``gate``:
    a listing in flight while other writes land, as over a network."""

    kind = "snapshot"
    shared = True

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.listing = asyncio.Event()

    async def list(self, name: str) -> FlextResult[list[ServiceInstance]]:
        snapshot = await super().list(name)
        self.listing.set()
        await self.gate.wait()
        return snapshot

    async def changes(self, name: str) -> AsyncGenerator[None, None]:
        await asyncio.Event().wait()  # no pushes: only the first listing matters here
        yield None  # pragma: no cover


@pytest.mark.parametrize("via", ["sync", "refresh"])
async def test_listing_in_flight_does_not_undo_local_writes(via: str) -> None:
    """A listing whose snapshot predates a register or unregister made here keeps them:
    the new instance stays, the removed one stays gone."""
    backend = _SnapshotBackend()
    registry = ServiceRegistry(backend)
    await registry.register("orders", _inst(1))
    await registry.register("orders", _inst(3))
    refresh = None
    if via == "refresh":
        refresh = asyncio.ensure_future(registry.refresh("orders"))
    await asyncio.wait_for(backend.listing.wait(), 5)  # snapshot: orders-1, orders-3
    await registry.register("orders", _inst(2))
    await registry.unregister("orders", "orders-3")
    backend.gate.set()
    if refresh is not None:
        listed = await refresh
        assert {i.id for i in listed.value} == {"orders-1", "orders-2"}
    for _ in range(100):
        await asyncio.sleep(0)
    ids = {i.id for i in registry.instances("orders").value}
    await registry.aclose()
    assert ids == {"orders-1", "orders-2"}


@pytest.mark.parametrize("url", ["http://user:s3cr3t@127.0.0.1:9001", "https://s3cr3t@h.test/api"])
async def test_instance_url_with_credentials_is_invalid_and_not_echoed(url: str) -> None:
    """Credentials in an instance URL would reach stats(), the shared registry and the
    logs: refused, and the error does not repeat them."""
    registry = ServiceRegistry()
    result = await registry.register("orders", ServiceInstance(id="x", name="orders", url=url))
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "credentials" in (result.error or "") and "s3cr3t" not in (result.error or "")
    assert registry.services() == []
