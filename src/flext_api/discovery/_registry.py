"""``ServiceRegistry``: services by name, their instances, health and balancing.

Reads are served from a local view (one :class:`Cluster` per service), so a pick costs
no I/O. Writes go to the backend first and then to the local view, so a registered
instance takes traffic at once and an unregistered one stops taking new calls at once.
With a shared backend (Redis, etcd) the registry also follows every service it was
asked about: it lists it once, then relists on each change the backend signals.

When the backend cannot be reached, the registry keeps serving the last known instances
(never an empty set because the store blinked), logs a warning once per outage, marks
the service ``stale`` in :meth:`ServiceRegistry.stats` and in ``watch`` changes, and
resumes on its own when the backend answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from types import TracebackType
from typing import Any

import structlog

from .._clock import Clock, get_clock
from .._errors import ErrorCode, FlextApiError
from .._result import FlextResult
from ._backend import MemoryBackend, RegistryBackend
from ._balancers import LoadBalancer, make_balancer
from ._cluster import Cluster
from ._events import (
    DiscoveryEvent,
    DiscoveryHook,
    InstanceStateChanged,
    ProbeCompleted,
    RegistryStale,
    emit,
)
from ._health import HealthCheckConfig, HealthTracker, OutlierConfig, Transition
from ._instance import ServiceChange, ServiceInstance, validate_name

__all__ = ["ServiceRegistry"]

_log = structlog.get_logger("flext_api.discovery")
_NONE: frozenset[str] = frozenset()
_RETRY_MIN, _RETRY_MAX = 0.1, 5.0
_JOURNAL_MAX = 256  # this process's last writes per service, for in-flight listings


def _fail(error: FlextApiError) -> FlextResult[Any]:
    return FlextResult(error=error)


class ServiceRegistry:
    """Named services with health-checked, load-balanced instances.

    >>> registry = ServiceRegistry()                                  # doctest: +SKIP
    >>> await registry.register("orders", ServiceInstance(id="o1", name="orders",
    ...                                                   url="http://127.0.0.1:9001"))
    >>> (await registry.get_instance("orders")).value.url
    'http://127.0.0.1:9001'

    Args:
        backend: where instances live (default :class:`MemoryBackend`).
        balancer: a name of :data:`BALANCERS` or a factory of :class:`LoadBalancer`.
        health_check: active probe settings; None runs no probes (passive checks still
            apply). Probes run inside ``async with registry`` or :meth:`health_check`.
        outlier: passive outlier-detection settings.
        clock: the clock health and balancing decisions read.
        hooks: callables receiving :mod:`discovery events <flext_api.discovery>`.
    """

    def __init__(
        self,
        backend: RegistryBackend | None = None,
        *,
        balancer: str | Callable[[], LoadBalancer] = "round_robin",
        health_check: HealthCheckConfig | None = None,
        outlier: OutlierConfig | None = None,
        clock: Clock | None = None,
        hooks: Sequence[DiscoveryHook] = (),
    ) -> None:
        self.backend: RegistryBackend = backend if backend is not None else MemoryBackend()
        self._balancer_factory = make_balancer(balancer)
        self.health_check_config = health_check
        self.tracker = HealthTracker(health_check, outlier)
        self._clock = get_clock(clock)
        #: The registry clock's ``monotonic`` (health and ejection times are on it).
        self.monotonic = self._clock.monotonic
        self._hooks = tuple(hooks)
        self._clusters: dict[str, Cluster] = {}
        self._watchers: dict[str, list[asyncio.Queue[ServiceChange | None]]] = {}
        self._sync: dict[str, asyncio.Task[None]] = {}
        self._synced: dict[str, asyncio.Event] = {}
        self._prober: asyncio.Task[None] | None = None
        self._grace: dict[str, float] = {}
        # This process's writes, numbered, per service (bounded): a listing that was in
        # flight while one landed is taken with the writes made since its start on top,
        # so a stale snapshot never undoes a register or unregister made here.
        self._writes = 0
        self._journal: dict[str, deque[tuple[int, str, ServiceInstance | None]]] = {}
        self._probes: dict[tuple[str, str, bool], int] = {}
        # How long an empty answer right after an outage is not believed: a TTL and a
        # half of the backend's (the owners re-register within one heartbeat).
        self._grace_period = 1.5 * float(getattr(self.backend, "ttl", 10.0))
        self._closed = False
        self._closing = asyncio.Event()  # wakes the probe loop's sleep at aclose()

    # -- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> ServiceRegistry:
        if self.health_check_config is not None and self._prober is None:
            self._prober = asyncio.get_running_loop().create_task(self.health_check())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._closed

    async def aclose(self) -> None:
        """Stop probes and watches, end watchers, close the backend; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        tasks = {t for t in (self._prober, *self._sync.values()) if t is not None}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        for queues in self._watchers.values():
            for queue in queues:
                queue.put_nowait(None)
        await self.backend.aclose()

    async def health_check(self) -> None:
        """Probe every instance until the registry closes (the seed's loop)."""
        from ._prober import run_probes

        await run_probes(self, self.health_check_config or HealthCheckConfig())

    async def _sleep_unless_closed(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less when the registry closes meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._closing.wait()

    # -- writes -------------------------------------------------------------------------------
    async def register(self, name: str, instance: ServiceInstance) -> FlextResult[ServiceInstance]:
        """Add ``instance`` to service ``name``; it takes traffic at once.

        Registering an id again replaces the instance and keeps its health state.
        """
        try:
            validate_name(name)
            if not isinstance(instance, ServiceInstance):
                raise FlextApiError.from_code(
                    ErrorCode.INVALID_REQUEST,
                    f"register() needs a ServiceInstance, got {type(instance).__name__}",
                )
            instance.validate()
            if instance.name != name:
                raise FlextApiError.from_code(
                    ErrorCode.INVALID_REQUEST,
                    f"instance {instance.id!r} names service {instance.name!r}, not {name!r}",
                )
        except FlextApiError as exc:
            return _fail(exc)
        if self._closed:
            return _fail(self._closed_error())
        stored = await self.backend.register(instance)
        if stored.is_failure:
            return FlextResult(error=stored.exception)
        self._journal_write(name, instance.id, instance)
        change = self._cluster(name).add(instance, self._clock.monotonic())
        self._publish(change)
        self._follow(name)
        return FlextResult.ok(instance)

    async def unregister(self, name: str, instance_id: str) -> FlextResult[None]:
        """Remove an instance: no new call goes to it from now on (unknown ids succeed)."""
        try:
            validate_name(name)
            validate_name(instance_id, "instance id")
        except FlextApiError as exc:
            return _fail(exc)
        if self._closed:
            return _fail(self._closed_error())
        removed = await self.backend.unregister(name, instance_id)
        if removed.is_failure:
            return removed
        self._journal_write(name, instance_id, None)
        cluster = self._clusters.get(name)
        if cluster is not None:
            self._publish(cluster.remove(instance_id, self._clock.monotonic()))
        return FlextResult.ok(None)

    # -- reads --------------------------------------------------------------------------------
    def instances(
        self, name: str, *, available: bool = False
    ) -> FlextResult[list[ServiceInstance]]:
        """The known instances of ``name`` (only those taking traffic with ``available``).

        With a shared backend, the first call starts following ``name``; await
        :meth:`refresh` to wait for the backend's answer.
        """
        try:
            validate_name(name)
        except FlextApiError as exc:
            return _fail(exc)
        cluster = self._clusters.get(name)
        if cluster is None:
            self._follow(name)
            return FlextResult.ok([])
        if available:
            return FlextResult.ok([] if cluster.panic else list(cluster.available))
        return FlextResult.ok(list(cluster.instances.values()))

    async def refresh(self, name: str) -> FlextResult[list[ServiceInstance]]:
        """List ``name`` from the backend now; on failure the last known set stays."""
        try:
            validate_name(name)
        except FlextApiError as exc:
            return _fail(exc)
        if self._closed:
            # Its backend is closed too: a Redis client would open a connection nobody
            # closes, and a failure would be logged as the store being unreachable.
            return _fail(self._closed_error())
        self._follow(name)
        listed = await self._list(name)
        if listed.is_failure:
            self._mark_stale(name, listed.exception)
            return listed
        self._apply(name, listed.value)
        return listed

    async def get_instance(
        self, name: str, *, key: str | None = None, exclude: Collection[str] = _NONE
    ) -> FlextResult[ServiceInstance]:
        """One instance of ``name`` picked by the balancer (the seed's call).

        ``key`` feeds consistent hashing; ids in ``exclude`` (hosts a retry already
        tried) are avoided while another instance exists.
        """
        if self.backend.shared and name not in self._sync and not self._closed:
            try:
                validate_name(name)
            except FlextApiError as exc:
                return _fail(exc)
            self._follow(name)
            # The first call for a name waits for the backend's first answer.
            synced = self._synced.get(name)
            if synced is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5.0):
                        await synced.wait()
        return self.pick(name, key=key, exclude=exclude)

    def pick(
        self, name: str, *, key: str | None = None, exclude: Collection[str] = _NONE
    ) -> FlextResult[ServiceInstance]:
        """Like :meth:`get_instance` without waiting (the local view only)."""
        cluster = self._clusters.get(name)
        chosen = None if cluster is None else cluster.pick(self.monotonic(), key, exclude)
        if chosen is None:
            return _fail(
                FlextApiError.from_code(
                    ErrorCode.CONNECT_ERROR,
                    f"service {name!r} has no registered instance",
                    details={"service": name},
                )
            )
        return FlextResult(chosen)

    def cluster(self, name: str) -> Cluster | None:
        """The local view of service ``name`` (None before anything is known of it)."""
        return self._clusters.get(name)

    def services(self) -> list[str]:
        """Names of the services known locally."""
        return sorted(self._clusters)

    # -- feedback from traffic and probes ----------------------------------------------------
    def on_start(self, name: str, instance: ServiceInstance) -> None:
        """A call to ``instance`` starts (for least-request and EWMA balancing)."""
        cluster = self._clusters.get(name)
        if cluster is not None:
            cluster.on_start(instance)

    def record_call(
        self,
        name: str,
        instance: ServiceInstance,
        *,
        status: int | None,
        error: ErrorCode | None,
        latency: float,
    ) -> None:
        """Feed a finished call's outcome to the balancer and to outlier detection."""
        cluster = self._clusters.get(name)
        if cluster is None:
            return
        transition = cluster.record_call(
            instance, status=status, error=error, latency=latency, now=self._clock.monotonic()
        )
        if transition is not None:
            self.report(name, transition)

    def record_probe(
        self, name: str, instance_id: str, *, passed: bool, status: int | None, error: str | None
    ) -> None:
        """Feed one active probe result (the prober calls this)."""
        cluster = self._clusters.get(name)
        if cluster is None or instance_id not in cluster.instances:
            return  # removed meanwhile: its result no longer matters
        key = (name, instance_id, passed)
        self._probes[key] = self._probes.get(key, 0) + 1
        if self._hooks:
            emit(self._hooks, ProbeCompleted(name, instance_id, passed, status, error))
        transition = cluster.record_probe(instance_id, passed, self._clock.monotonic())
        if transition is not None:
            self.report(name, transition)

    def report(self, name: str, transition: Transition) -> None:
        """Log and emit a health transition of service ``name`` (for callers that feed a
        :class:`Cluster` directly, as the client stage does)."""
        log = _log.warning if transition.event in ("down", "ejected") else _log.info
        log(
            f"discovery.instance_{transition.event}",
            service=name,
            instance=transition.instance_id,
            reason=transition.reason,
            ejected_for=transition.ejected_for,
        )
        self._emit(
            InstanceStateChanged(
                name,
                transition.instance_id,
                transition.event,
                transition.reason,
                transition.ejected_for,
            )
        )

    # -- watching -----------------------------------------------------------------------------
    async def watch(self, name: str) -> AsyncIterator[ServiceChange]:
        """Changes of ``name``: first its current instances (when any), then each change.

        Ends when the registry closes. An invalid name raises ``FlextApiError`` on the
        first iteration (an iterator has no result to return).
        """
        validate_name(name)
        queue: asyncio.Queue[ServiceChange | None] = asyncio.Queue()
        self._watchers.setdefault(name, []).append(queue)
        try:
            self._follow(name)
            cluster = self._clusters.get(name)
            if cluster is not None and cluster.instances:
                current = tuple(cluster.instances.values())
                yield ServiceChange(name, current, (), (), current, cluster.stale)
            while not self._closed or not queue.empty():
                change = await queue.get()
                if change is None:
                    return
                yield change
        finally:
            self._watchers[name].remove(queue)

    # -- shared backends ----------------------------------------------------------------------
    def _follow(self, name: str) -> None:
        if not self.backend.shared or name in self._sync or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a sync caller): followed on the first async call
        self._synced[name] = asyncio.Event()
        self._sync[name] = loop.create_task(self._sync_loop(name))

    async def _sync_loop(self, name: str) -> None:
        delay = _RETRY_MIN
        # Checks of ``_closed`` too, not only cancellation: a store client may swallow
        # a cancel that lands inside one of its calls.
        while not self._closed:
            try:
                # ``.value`` raises the FlextApiError of a failed listing.
                self._apply(name, (await self._list(name)).value)
                async with contextlib.aclosing(self.backend.changes(name)) as changes:
                    async for _ in changes:
                        if self.closed:
                            return
                        self._apply(name, (await self._list(name)).value)
                        delay = _RETRY_MIN  # the stream works: a later end backs off afresh
                # The stream ended without an error (the store hung up, a proxy closed
                # the watch): watch again after the backoff below, not as fast as the
                # store answers.
            except Exception as exc:  # noqa: BLE001 - a backend bug must not end following
                self._mark_stale(name, FlextApiError.wrap(exc))  # a FlextApiError as it is
            if self.closed:
                return
            # Background timer, not a call's backoff: real time even while testing.
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)

    def _journal_write(self, name: str, instance_id: str, instance: ServiceInstance | None) -> None:
        """Number a write the backend took (``instance`` None: an unregister)."""
        self._writes += 1
        journal = self._journal.get(name)
        if journal is None:
            journal = self._journal[name] = deque(maxlen=_JOURNAL_MAX)
        journal.append((self._writes, instance_id, instance))

    async def _list(self, name: str) -> FlextResult[list[ServiceInstance]]:
        """The backend's listing of ``name``, with this process's writes made during it
        on top (the listing may be a snapshot from before they landed)."""
        since = self._writes
        listed = await self.backend.list(name)
        journal = self._journal.get(name)
        if listed.is_failure or not journal or journal[-1][0] <= since:
            return listed
        merged = {instance.id: instance for instance in listed.value}
        for number, instance_id, instance in journal:
            if number <= since:
                continue
            if instance is None:
                merged.pop(instance_id, None)
            else:
                merged[instance_id] = instance
        return FlextResult.ok(list(merged.values()))

    def _apply(self, name: str, instances: list[ServiceInstance]) -> None:
        cluster = self._cluster(name)
        synced = self._synced.get(name)
        if cluster.stale and not instances and cluster.instances:
            # A store back from an outage may come back empty (Redis without
            # persistence) until the owners' next heartbeat: hold the last known set
            # for one grace period instead of dropping every instance.
            now = self._clock.monotonic()
            since = self._grace.setdefault(name, now)
            if now - since < self._grace_period:
                if synced is not None:
                    synced.set()
                return
        self._grace.pop(name, None)
        if cluster.stale:
            cluster.stale = False
            _log.info("discovery.backend_recovered", service=name, backend=self.backend.kind)
            self._emit(RegistryStale(name, False, self.backend.kind, None))
            self._publish_stale(cluster)
        self._publish(cluster.replace(instances, self._clock.monotonic()))
        if synced is not None:
            synced.set()

    def _mark_stale(self, name: str, error: FlextApiError | None) -> None:
        cluster = self._cluster(name)
        synced = self._synced.get(name)
        if synced is not None:
            synced.set()  # waiting callers get the last known set (maybe none)
        if cluster.stale:
            return
        cluster.stale = True
        message = error.message if error is not None else "unknown error"
        _log.warning(
            "discovery.backend_unreachable",
            service=name,
            backend=self.backend.kind,
            error=message,
            serving=len(cluster.instances),
        )
        self._emit(RegistryStale(name, True, self.backend.kind, message))
        self._publish_stale(cluster)

    # -- helpers ------------------------------------------------------------------------------
    def _cluster(self, name: str) -> Cluster:
        cluster = self._clusters.get(name)
        if cluster is None:
            cluster = self._clusters[name] = Cluster(name, self._balancer_factory(), self.tracker)
        return cluster

    def _publish(self, change: ServiceChange | None) -> None:
        if change is None:
            return
        for inst in change.added:
            self._emit(InstanceStateChanged(change.name, inst.id, "added", "registered"))
        for inst in change.removed:
            self._emit(InstanceStateChanged(change.name, inst.id, "removed", "unregistered"))
            for passed in (True, False):
                self._probes.pop((change.name, inst.id, passed), None)
        for queue in self._watchers.get(change.name, ()):
            queue.put_nowait(change)

    def _publish_stale(self, cluster: Cluster) -> None:
        current = tuple(cluster.instances.values())
        change = ServiceChange(cluster.name, (), (), (), current, cluster.stale)
        for queue in self._watchers.get(cluster.name, ()):
            queue.put_nowait(change)

    def _emit(self, event: DiscoveryEvent) -> None:
        if self._hooks:
            emit(self._hooks, event)

    @staticmethod
    def _closed_error() -> FlextApiError:
        return FlextApiError.from_code(ErrorCode.INVALID_REQUEST, "registry is closed")

    # -- introspection ------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Per service: instances with state and picks, available count, stale, panic."""
        now = self._clock.monotonic()
        return {
            "backend": self.backend.kind,
            "services": {name: c.describe(now) for name, c in sorted(self._clusters.items())},
        }

    def probe_counts(self) -> dict[tuple[str, str, bool], int]:
        """Active probe results so far: ``(service, instance_id, passed) -> count``."""
        return dict(self._probes)

    def describe(self) -> dict[str, Any]:
        """Backend, balancer and health settings (for ``flext_api.testing.describe``)."""
        check = self.health_check_config
        return {
            "backend": self.backend.kind,
            "balancer": self._balancer_factory().kind,
            "health_check": None
            if check is None
            else {
                "path": check.path,
                "interval": check.interval,
                "healthy_threshold": check.healthy_threshold,
                "unhealthy_threshold": check.unhealthy_threshold,
            },
            "outlier": {
                "consecutive_5xx": self.tracker.outlier.consecutive_5xx,
                "consecutive_gateway_errors": self.tracker.outlier.consecutive_gateway_errors,
                "max_ejection_percent": self.tracker.outlier.max_ejection_percent,
            },
            "services": self.services(),
        }

    def __repr__(self) -> str:
        count = sum(len(c.instances) for c in self._clusters.values())
        stale = sum(1 for c in self._clusters.values() if c.stale)
        return (
            f"<ServiceRegistry backend={self.backend.kind!r} [{len(self._clusters)} services, "
            f"{count} instances{f', {stale} stale' if stale else ''}]>"
        )
