"""A gateway cluster at run time, built on :mod:`flext_api.discovery`.

Each cluster is a service in its own :class:`~flext_api.discovery.ServiceRegistry`
(memory backend): the config's instances are registered there, the registry's balancer
picks, its :class:`~flext_api.discovery.HealthTracker` runs active probes and passive
outlier ejection keyed by instance id. The gateway adds what is per-attempt: a circuit
breaker per instance, the upstream pool and the retry budget.

State that must outlive a reload survives it: :meth:`Cluster.build` reuses the previous
registry when the balancer and health settings are unchanged (re-registering only the
instances that changed), or hands the previous health tracker to the new registry
otherwise; breakers and drain flags are kept per instance id, and so are the counts of
requests in flight (a stream begun before the reload still counts on its instance in
the admin API, and ends on the same count); the pool is kept when its
settings did not change, so keep-alive connections survive too. What a reload does not
keep is closed by the gateway (see :mod:`._retire`); a build that fails closes what it
made (:meth:`Cluster.discard`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .._clock import Clock, get_clock
from .._config import TimeoutConfig
from .._errors import ErrorCode
from ..discovery import (
    HealthCheckConfig,
    OutlierConfig,
    RegistryBackend,
    ServiceInstance,
    ServiceRegistry,
)
from ..resilience import Admit, CircuitBreaker, Reject, RetryBudget
from ..transports import AiohttpTransport, Transport
from ._config import (
    DNS_OPTIONS,
    ClusterConfig,
    HealthConfig,
    InstanceConfig,
    RegistrySourceConfig,
)
from ._reasons import Reason
from ._retire import close_logged

__all__ = ["Cluster", "Picked"]

_NEVER = 2**31 - 1


def upstream_transport(config: ClusterConfig, clock: Clock) -> Transport:
    """The cluster's pool: ``h1`` for http:// (aiohttp for https://), or aiohttp only."""
    timeout = TimeoutConfig(connect=config.timeouts.connect)
    aiohttp = AiohttpTransport(config.pool, timeout, clock=clock, passthrough=True)
    if config.transport == "aiohttp":
        return aiohttp
    from ..transports import H1Transport

    return H1Transport(config.pool, timeout, clock=clock, fallback=aiohttp)


def health_check_of(config: HealthConfig) -> HealthCheckConfig | None:
    """discovery's active-probe settings for ``config`` (None: probes off)."""
    if not config.active:
        return None
    return HealthCheckConfig(
        path=config.path,
        interval=config.interval,
        timeout=config.timeout,
        healthy_threshold=config.healthy_threshold,
        unhealthy_threshold=config.unhealthy_threshold,
    )


def outlier_of(config: HealthConfig) -> OutlierConfig:
    """discovery's passive-ejection settings for ``config``."""
    passive = config.passive
    if not passive.enabled:
        return OutlierConfig(consecutive_5xx=_NEVER, consecutive_gateway_errors=_NEVER)
    return OutlierConfig(
        consecutive_5xx=passive.consecutive_5xx,
        consecutive_gateway_errors=passive.consecutive_gateway_errors,
        base_ejection_time=passive.base_ejection_time,
        max_ejection_time=passive.max_ejection_time,
        max_ejection_percent=passive.max_ejection_percent,
    )


def _backend(source: RegistrySourceConfig | None) -> RegistryBackend | None:
    """The shared backend ``source`` names (None: the registry's own memory backend)."""
    if source is None:
        return None
    if source.backend == "redis":
        from ..discovery import RedisBackend

        return RedisBackend(source.url)
    if source.backend == "dns":
        return _dns_backend(source)
    from ..discovery import EtcdBackend

    return EtcdBackend(source.url)


def _dns_backend(source: RegistrySourceConfig) -> RegistryBackend:
    """A DNS SRV/A backend: ``dns://`` asks the system's resolvers, ``dns://HOST:PORT`` one."""
    from ..discovery import DnsBackend  # the dns extra, only when configured

    parts = urlsplit(source.url)
    options: dict[str, Any] = {
        name: value
        for name in DNS_OPTIONS
        if name != "domain" and (value := getattr(source, name)) is not None
    }
    if parts.hostname:
        options["nameservers"] = [parts.hostname]
        options["port"] = parts.port or 53
    return DnsBackend(source.domain or "", **options)


def _restore_tracker(previous: Cluster) -> None:
    """Give ``previous``'s health tracker back its own settings (a rebuilt registry took
    it over with the new ones, and will not be used)."""
    tracker = previous.registry.tracker
    tracker.check = health_check_of(previous.config.health) or HealthCheckConfig()
    tracker.outlier = outlier_of(previous.config.health)


def _instance(cluster: str, config: InstanceConfig) -> ServiceInstance:
    return ServiceInstance(
        id=config.instance_id, name=cluster, url=config.url, weight=config.weight
    )


class Picked:
    """One attempt's instance and its breaker admission (both None: breaker turned off)."""

    __slots__ = ("admit", "breaker", "instance")

    def __init__(
        self, instance: ServiceInstance, breaker: CircuitBreaker | None, admit: Admit | None
    ) -> None:
        self.instance = instance
        self.breaker = breaker
        self.admit = admit

    @property
    def id(self) -> str:
        """The instance id."""
        return self.instance.id

    @property
    def url(self) -> str:
        """The instance's base URL."""
        return self.instance.url


class Cluster:
    """A named set of upstream instances behind one pool (see the module docstring)."""

    __slots__ = (
        "_breaker_on",
        "_service",
        "breakers",
        "budget",
        "clock",
        "config",
        "drained",
        "in_flight",
        "name",
        "registry",
        "transport",
    )

    def __init__(
        self,
        config: ClusterConfig,
        registry: ServiceRegistry,
        transport: Transport,
        breakers: dict[str, CircuitBreaker],
        drained: set[str],
        clock: Clock,
        in_flight: dict[str, int] | None = None,
    ) -> None:
        self.config = config
        #: The cluster's name (read per request: a plain attribute, not the model's).
        self.name: str = config.name
        self._service = config.service
        self._breaker_on = config.breaker.enabled
        self.registry = registry
        self.transport = transport
        self.breakers = breakers
        self.drained = drained
        self.clock = clock
        #: Requests and WebSockets in flight per instance id; shared with the snapshots
        #: before and after a reload, so those still running on an old one are counted.
        self.in_flight: dict[str, int] = {} if in_flight is None else in_flight
        retry = config.retry
        self.budget = RetryBudget(
            ratio=retry.budget_ratio,
            min_retries=retry.budget_min_retries,
            window=retry.budget_window,
        )

    @classmethod
    async def build(
        cls, config: ClusterConfig, previous: Cluster | None, clock: Clock | None = None
    ) -> Cluster:
        """A cluster for ``config``, keeping ``previous``'s state for remaining instances."""
        clock = get_clock(clock)
        reuse = (
            previous is not None
            and previous.config.balancer == config.balancer
            and previous.config.health == config.health
            and previous.config.registry == config.registry
        )
        if reuse and previous is not None:
            registry = previous.registry
        else:
            registry = ServiceRegistry(
                _backend(config.registry),
                balancer=config.balancer,
                health_check=health_check_of(config.health),
                outlier=outlier_of(config.health),
                clock=clock,
            )
            if previous is not None:
                # Health records are keyed by instance id: the new registry continues them.
                tracker = previous.registry.tracker
                tracker.check = registry.tracker.check
                tracker.outlier = registry.tracker.outlier
                registry.tracker = tracker
            try:
                await registry.__aenter__()
                return await cls._fill(config, previous, registry, clock)
            except BaseException:
                # Nothing will use it: its probes and watches stop, and the running
                # cluster's health settings are as they were.
                if previous is not None:
                    _restore_tracker(previous)
                await close_logged(registry, "registry")
                raise
        return await cls._fill(config, previous, registry, clock)

    @classmethod
    async def _fill(
        cls,
        config: ClusterConfig,
        previous: Cluster | None,
        registry: ServiceRegistry,
        clock: Clock,
    ) -> Cluster:
        """The rest of :meth:`build`: instances, breakers and pool, on ``registry``."""
        wanted = {i.instance_id: i for i in config.instances}
        drained = set(previous.drained) if previous is not None else set()
        name = config.service
        if config.registry is not None:
            # Instances are the registry's: load them now; the registry follows changes.
            await registry.refresh(name)
        else:
            drained &= set(wanted)
            current = {i.id: i for i in registry.instances(name).unwrap_or([])}
            for instance_id, instance in wanted.items():
                value = _instance(name, instance)
                if instance_id in drained:
                    continue
                if current.get(instance_id) != value:
                    (await registry.register(name, value)).unwrap()
            for instance_id in current:
                if instance_id not in wanted:
                    await registry.unregister(name, instance_id)
        old_breakers = previous.breakers if previous is not None else {}
        breakers = {
            instance_id: kept
            for instance_id, kept in old_breakers.items()
            if kept.config == config.breaker
            and (config.registry is not None or instance_id in wanted)
        }
        for instance_id in wanted:
            if instance_id not in breakers:
                breakers[instance_id] = CircuitBreaker(config.breaker, key=instance_id)
        if (
            previous is not None
            and previous.config.pool == config.pool
            and previous.config.transport == config.transport
        ):
            transport = previous.transport
        else:
            transport = upstream_transport(config, clock)
        in_flight = previous.in_flight if previous is not None else {}
        for instance_id in [i for i, count in in_flight.items() if not count]:
            del in_flight[instance_id]  # nothing running: no id kept for ever
        return cls(config, registry, transport, breakers, drained, clock, in_flight)

    async def discard(self, previous: Cluster | None) -> None:
        """Close what :meth:`build` made for a snapshot that will not be used (a reload
        that failed); what it took over from ``previous`` (in use) is left as it was."""
        if previous is None or self.registry is not previous.registry:
            if previous is not None:
                _restore_tracker(previous)
            await close_logged(self.registry, "registry")
        if previous is None or self.transport is not previous.transport:
            await close_logged(self.transport, "pool")

    def pick(self, exclude: set[str]) -> Picked | Reason:
        """The next instance to try, avoiding ``exclude`` while another exists.

        Instances whose breaker is open are skipped; the reason when none can be used.
        """
        now = self.clock.monotonic()
        skipped: set[str] | None = None
        breaker_open = False
        registry = self.registry
        # The registry's local view, asked directly (what registry.pick does, without a
        # result object per request).
        cluster = registry.cluster(self._service)
        if cluster is None:
            return Reason.NO_HEALTHY_INSTANCE
        drained = self.drained
        breaker_on = self._breaker_on
        for _ in range(len(cluster.instances) + 1):
            instance = cluster.pick(
                registry.monotonic(), None, exclude if skipped is None else exclude | skipped
            )
            if instance is None:
                break
            ident = instance.id
            if skipped is not None and ident in skipped:
                break  # every candidate was tried
            if ident in drained:
                skipped = {ident} if skipped is None else skipped | {ident}
                continue
            if not breaker_on:
                cluster.on_start(instance)
                return Picked(instance, None, None)
            breaker = self.breakers.get(ident)
            if breaker is None:  # an instance the registry added since
                breaker = CircuitBreaker(self.config.breaker, key=ident)
                self.breakers[ident] = breaker
            admit = breaker.allow(now)
            if isinstance(admit, Reject):
                breaker_open = True
                skipped = {ident} if skipped is None else skipped | {ident}
                continue
            cluster.on_start(instance)
            return Picked(instance, breaker, admit)
        return Reason.BREAKER_OPEN if breaker_open else Reason.NO_HEALTHY_INSTANCE

    def report(
        self, picked: Picked, *, status: int | None, error: ErrorCode | None, duration: float
    ) -> None:
        """Record one attempt's outcome: breaker, passive health and balancer feedback."""
        breaker, admit = picked.breaker, picked.admit
        if breaker is not None and admit is not None:
            now = self.clock.monotonic()
            if error is not None or (status is not None and status in (502, 503, 504)):
                breaker.on_failure(now, duration, admit)
            else:
                breaker.on_success(now, duration, admit)
        self.registry.record_call(
            self._service, picked.instance, status=status, error=error, latency=duration
        )

    def release(self, picked: Picked) -> None:
        """The attempt ended without saying anything about the instance."""
        if picked.breaker is not None and picked.admit is not None:
            picked.breaker.release(picked.admit)
        # The call the pick started ends: a least-request or EWMA balancer stops counting
        # it in flight (and learns no latency from it).
        self.registry.record_call(
            self._service, picked.instance, status=None, error=None, latency=0.0
        )

    async def set_drained(self, instance_id: str, drained: bool) -> bool:
        """Take an instance out of rotation (or back); False when the id is unknown.

        A file instance is also unregistered from the cluster's own registry; one from a
        shared registry only stops getting picks here (other gateways still use it).
        """
        service = self.config.service
        config = next((i for i in self.config.instances if i.instance_id == instance_id), None)
        cluster = self.registry.cluster(service)
        known = cluster is not None and instance_id in cluster.instances
        if config is None and not known and instance_id not in self.drained:
            return False
        if drained:
            self.drained.add(instance_id)
            if config is not None:
                await self.registry.unregister(service, instance_id)
        else:
            self.drained.discard(instance_id)
            if config is not None:
                (await self.registry.register(service, _instance(service, config))).unwrap()
        return True

    def describe(self) -> dict[str, Any]:
        """The admin API's view: discovery's health state plus breakers and drain flags."""
        now = self.clock.monotonic()
        cluster = self.registry.cluster(self.config.service)
        rows = {r["id"]: r for r in (cluster.describe(now)["instances"] if cluster else [])}
        for config in self.config.instances:  # drained file instances are unregistered
            rows.setdefault(config.instance_id, {"id": config.instance_id, "url": config.url})
        instances = []
        for instance_id, found in rows.items():
            row = dict(found)
            if instance_id in self.drained:
                row["state"] = "drained"
            breaker = self.breakers.get(instance_id)
            row["breaker"] = breaker.state.value if breaker is not None else "closed"
            row["in_flight"] = self.in_flight.get(instance_id, 0)
            instances.append(row)
        return {
            "name": self.name,
            "service": self.config.service,
            "registry": self.config.registry.backend if self.config.registry else "memory",
            "balancer": self.config.balancer,
            "instances": instances,
            "pool": self.transport.stats(),
        }

    async def aclose(self, *, close_transport: bool) -> None:
        """Stop the registry's probes (and close the pool when asked)."""
        await self.registry.aclose()
        if close_transport:
            await self.transport.aclose()
