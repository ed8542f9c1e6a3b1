"""``DnsBackend``: instances from DNS SRV or A records, cached for their TTL.

``SRV`` (``_NAME._tcp.DOMAIN``) gives host, port and weight; only the lowest priority
group with a target that has an address is used, as RFC 2782 has clients do. Within
it, one instance per address and port (records naming one endpoint twice have their
weights summed); weight-0 targets are picked rarely but not never (see
:func:`_srv_weights`). ``A``
(``NAME.DOMAIN``) gives addresses on ``default_port``. An answer is reused until its
TTL runs out (clamped to ``[min_ttl, max_ttl]``); the registry relists when it does.
DNS is read-only here: ``register`` and ``unregister`` fail with ``CONFIG_ERROR``.

A DNS failure (timeout, no server answering) is a ``DNS_ERROR`` failure, so the
registry keeps serving the last known instances; NXDOMAIN for the service's name is an
answer (no instance). An SRV target without an address (NXDOMAIN, or no ``A`` record:
an IPv6-only host) is skipped and logged once, and the other targets are served; when
no target resolves, the listing is a ``DNS_ERROR`` failure, so the last known instances
are kept (marked stale) rather than the service emptied.

Needs the ``dns`` extra (dnspython's asyncio resolver).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncGenerator, Callable, Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.rdtypes.IN.SRV
import dns.resolver
import structlog

from .._clock import Clock, get_clock
from .._errors import ConfigError, ErrorCode, FlextApiError
from .._result import FlextResult
from ._instance import ServiceInstance

__all__ = ["DnsBackend"]

_log = structlog.get_logger("flext_api.discovery")


class _NoTargetResolves(Exception):
    """No SRV target has an address: a failed lookup, not an answer."""


#: The largest instance weight (ServiceInstance allows 1..10000).
_MAX_WEIGHT = 10000


def _srv_weights(weights: Sequence[int]) -> builtins.list[int]:
    """Instance weights for one priority group's SRV weights (0..65535 each).

    RFC 2782: when every weight is 0, targets are chosen uniformly (all 1); when some
    are above 0, a weight-0 target has "a very small chance": it gets 1 and the others
    are scaled up by the largest factor that keeps them within 10000. Weights above
    10000 are scaled down to fit, keeping their proportions (clamping them made 20000
    and 10000 equal). Otherwise the SRV weights are the instance weights.
    """
    top = max(weights, default=0)
    if top == 0:
        return [1] * len(weights)
    if top > _MAX_WEIGHT:
        return [max(1, round(w * _MAX_WEIGHT / top)) if w else 1 for w in weights]
    factor = _MAX_WEIGHT // top if 0 in weights else 1
    return [w * factor if w else 1 for w in weights]


def _dns_error(name: str, exc: BaseException) -> FlextApiError:
    why = str(exc) if isinstance(exc, _NoTargetResolves) else f"{type(exc).__name__}: {exc}"
    err = FlextApiError.from_code(
        ErrorCode.DNS_ERROR, f"DNS lookup for service {name!r} failed: {why}"
    )
    err.__cause__ = exc
    return err


class DnsBackend:
    """A read-only registry backend on DNS SRV or A records.

    Args:
        domain: appended to the service name (``orders`` -> ``_orders._tcp.DOMAIN``).
        record: ``"SRV"`` or ``"A"``.
        nameservers: DNS servers to ask (default: the system's).
        port: their port.
        scheme: ``http`` or ``https`` for the instance URLs.
        default_port: the port of ``A`` instances.
        query_name: maps a service name to the DNS name to ask (overrides ``domain``).
        min_ttl / max_ttl: bounds of the cache time, seconds.
        timeout: seconds for one lookup.
        resolver: a configured ``dns.asyncresolver.Resolver`` (overrides the above).
        clock: the clock cache expiry is measured on.
    """

    kind = "dns"
    shared = True

    def __init__(
        self,
        domain: str = "",
        *,
        record: str = "SRV",
        nameservers: Sequence[str] | None = None,
        port: int = 53,
        scheme: str = "http",
        default_port: int = 80,
        query_name: Callable[[str], str] | None = None,
        min_ttl: float = 1.0,
        max_ttl: float = 300.0,
        timeout: float = 2.0,
        resolver: dns.asyncresolver.Resolver | None = None,
        clock: Clock | None = None,
    ) -> None:
        record = record.upper()
        if record not in ("SRV", "A"):
            raise ConfigError(f"record must be 'SRV' or 'A', got {record!r}")
        if scheme not in ("http", "https"):
            raise ConfigError(f"scheme must be 'http' or 'https', got {scheme!r}")
        if not 0 < min_ttl <= max_ttl:
            raise ConfigError("need 0 < min_ttl <= max_ttl")
        if not 0 < port < 65536 or not 0 < default_port < 65536:
            raise ConfigError(
                f"port and default_port must be in 1..65535, got {port} and {default_port}"
            )
        if not timeout > 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.record = record
        self.scheme = scheme
        self.default_port = default_port
        self.min_ttl, self.max_ttl = min_ttl, max_ttl
        suffix = f".{domain.strip('.')}" if domain.strip(".") else ""
        if query_name is None:
            if record == "SRV":

                def query_name(name: str) -> str:
                    return f"_{name}._tcp{suffix}"

            else:

                def query_name(name: str) -> str:
                    return f"{name}{suffix}"

        self._query_name = query_name
        if resolver is None:
            resolver = dns.asyncresolver.Resolver(configure=nameservers is None)
            if nameservers is not None:
                try:
                    resolver.nameservers = list(nameservers)
                except ValueError as exc:  # dnspython's word for a name server it cannot use
                    raise ConfigError(f"nameservers: {exc}") from exc
            resolver.port = port
            resolver.lifetime = timeout
            resolver.timeout = timeout
        self._resolver = resolver
        self._clock = get_clock(clock)
        self._cache: dict[str, tuple[float, builtins.list[ServiceInstance]]] = {}
        #: SRV targets found without an address, so each is logged once until it resolves.
        self._dangling: set[tuple[str, str]] = set()
        #: SRV records of no usable port, so each is logged once.
        self._bad: set[tuple[str, str, int]] = set()

    async def register(self, instance: ServiceInstance) -> FlextResult[None]:
        return FlextResult.fail(
            "the DNS registry is read-only: publish records in DNS", code=ErrorCode.CONFIG_ERROR
        )

    async def unregister(self, name: str, instance_id: str) -> FlextResult[None]:
        return await self.register(ServiceInstance(id=instance_id, name=name, url="http://x"))

    def _ttl(self, ttl: float) -> float:
        return min(self.max_ttl, max(self.min_ttl, float(ttl)))

    async def list(self, name: str) -> FlextResult[builtins.list[ServiceInstance]]:
        now = self._clock.monotonic()
        cached = self._cache.get(name)
        if cached is not None and now < cached[0]:
            return FlextResult.ok(list(cached[1]))
        try:
            ttl, instances = await (self._srv(name) if self.record == "SRV" else self._a(name))
        except dns.resolver.NXDOMAIN:
            ttl, instances = self.min_ttl, []
        except dns.resolver.NoAnswer:
            ttl, instances = self.min_ttl, []
        except (dns.exception.DNSException, _NoTargetResolves) as exc:
            return FlextResult(error=_dns_error(name, exc))
        self._cache[name] = (now + self._ttl(ttl), instances)
        return FlextResult.ok(list(instances))

    async def _addresses(self, host: str) -> tuple[float, builtins.list[str]]:
        answer = await self._resolver.resolve(host, "A")
        assert answer.rrset is not None
        return answer.rrset.ttl, [r.address for r in answer]

    async def _a(self, name: str) -> tuple[float, builtins.list[ServiceInstance]]:
        ttl, addresses = await self._addresses(self._query_name(name))
        return ttl, [
            ServiceInstance(
                id=f"{addr}-{self.default_port}",
                name=name,
                url=f"{self.scheme}://{addr}:{self.default_port}",
            )
            for addr in sorted(addresses)
        ]

    async def _srv(self, name: str) -> tuple[float, builtins.list[ServiceInstance]]:
        answer = await self._resolver.resolve(self._query_name(name), "SRV")
        assert answer.rrset is not None
        ttl: float = answer.rrset.ttl
        # A target of "." says the service is decidedly not offered (RFC 2782); port 0
        # is no port to connect to (the record is skipped and logged once).
        records = [r for r in answer if r.target != dns.name.root and not self._port_zero(name, r)]
        skipped: builtins.list[str] = []
        # The lowest priority group with a target that has an address: the targets of a
        # group are tried before the next one's, as RFC 2782 has clients do.
        for priority in sorted({r.priority for r in records}):
            # One instance per (address, port): an endpoint named twice (two records, two
            # names of one address) is one instance with the records' weights summed, as
            # RFC 2782's draw gives it; it used to be two instances of one id.
            summed: dict[tuple[str, int], int] = {}
            targets: dict[tuple[str, int], str] = {}
            group = sorted(
                (r for r in records if r.priority == priority),
                key=lambda r: (str(r.target), r.port),
            )
            for rec in group:
                host = str(rec.target).rstrip(".")
                resolved = await self._target(name, host)
                if resolved is None:
                    skipped.append(host)
                    continue
                host_ttl, addresses = resolved
                ttl = min(ttl, host_ttl)
                for addr in addresses:
                    summed[addr, rec.port] = summed.get((addr, rec.port), 0) + rec.weight
                    targets.setdefault((addr, rec.port), host)
            if summed:
                ordered = sorted(summed)
                weights = _srv_weights([summed[key] for key in ordered])
                return ttl, [
                    ServiceInstance(
                        id=f"{addr}-{port}",
                        name=name,
                        url=f"{self.scheme}://{addr}:{port}",
                        weight=weight,
                        metadata={"target": targets[addr, port]},
                    )
                    for (addr, port), weight in zip(ordered, weights, strict=True)
                ]
        if skipped:
            raise _NoTargetResolves(
                f"no target of {self._query_name(name)} has an address: {', '.join(skipped)}"
            )
        return ttl, []

    def _port_zero(self, name: str, record: dns.rdtypes.IN.SRV.SRV) -> bool:
        """True (logged once per target) for an SRV record naming port 0."""
        if record.port:
            return False
        host = str(record.target).rstrip(".")
        if (name, host, 0) not in self._bad:
            self._bad.add((name, host, 0))
            _log.warning(
                "discovery.bad_record",
                backend="dns",
                service=name,
                target=host,
                port=0,
                error="SRV record names port 0",
            )
        return True

    async def _target(self, name: str, host: str) -> tuple[float, builtins.list[str]] | None:
        """The addresses of SRV target ``host``; None (logged once) when it has none."""
        try:
            resolved = await self._addresses(host)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as exc:
            # One dangling target (removed, or IPv6 only) is not the service gone.
            if (name, host) not in self._dangling:
                self._dangling.add((name, host))
                _log.warning(
                    "discovery.srv_target_unresolvable",
                    service=name,
                    target=host,
                    error=type(exc).__name__,
                )
            return None
        self._dangling.discard((name, host))
        return resolved

    async def changes(self, name: str) -> AsyncGenerator[None, None]:
        while True:
            cached = self._cache.get(name)
            wait = self.min_ttl
            if cached is not None:
                wait = max(self.min_ttl, cached[0] - self._clock.monotonic())
            await asyncio.sleep(wait)  # DNS cannot push: look again when the TTL runs out
            yield None

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"<DnsBackend record={self.record} [{len(self._cache)} names cached]>"
