"""Who is the client? The socket peer, unless that peer is a proxy we trust.

Rate limiting keys on this, so it must not be spoofable: ``X-Forwarded-For`` is read only
when the TCP peer is in ``trusted_proxies``, and then the *right-most* entry that is not
itself a trusted proxy is taken - the address our own proxy saw, not whatever the client
wrote at the left (the bypass of fastapi-limiter#9 and slowapi#255).

uvicorn rewrites ``scope["client"]`` itself for peers in ``--forwarded-allow-ips``
(default ``127.0.0.1``) with the same right-most rule; run it with ``--no-proxy-headers``
to leave the decision to ``trusted_proxies`` here. An IPv4-mapped IPv6 address
(``::ffff:10.0.0.2``, a dual-stack socket's IPv4 peer) is matched as its IPv4 address.

:func:`rate_limit_key` turns that address into what a limit counts per: an IPv4 address
as it is, an IPv6 one as its network of ``ipv6_prefix`` bits (64 by default). One host
usually holds a whole /64 (SLAAC privacy addresses, a /64 or more delegated per
customer), so per-address keys gave it a fresh bucket for each address it picked; as in
GitLab's per-IP limits, the /64 is the client. Only the key is grouped: logs and
forwarded headers keep the full address.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

__all__ = ["ClientResolver", "rate_limit_key"]

_CACHE_SIZE = 4096
_MAX_KEY = 64


class ClientResolver:
    """Resolve the client address of a request given the trusted proxy networks."""

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in trusted_proxies)
        self._trusted: dict[str, bool] = {}

    def is_trusted(self, address: str) -> bool:
        """True when ``address`` lies in a trusted proxy network (memoized, bounded)."""
        if not self._networks:
            return False
        known = self._trusted.get(address)
        if known is not None:
            return known
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            known = False
        else:
            # A dual-stack socket reports an IPv4 peer as ``::ffff:a.b.c.d``: it is in
            # the IPv4 networks listed for it (an IPv6 address is never in an IPv4 one).
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            known = any(
                ip in network or (mapped is not None and mapped in network)
                for network in self._networks
            )
        if len(self._trusted) < _CACHE_SIZE:
            self._trusted[address] = known
        return known

    def client_ip(self, scope: Scope) -> str:
        """The client address to key limits on (see module docstring)."""
        client = scope.get("client")
        peer: str = client[0] if client else "unknown"
        if not self.is_trusted(peer):
            return peer
        forwarded = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
        if not forwarded:
            return peer
        hops = [_address(hop) for hop in b",".join(forwarded).decode("latin-1").split(",")]
        for hop in reversed(hops):
            if hop and not self.is_trusted(hop):
                return hop[:_MAX_KEY]
        return hops[0][:_MAX_KEY] or peer


def _address(hop: str) -> str:
    """An ``X-Forwarded-For`` hop without the port some proxies add (``1.2.3.4:5555``,
    ``[2001:db8::1]:443``): with it, each connection of one client was a key of its own
    (a fresh rate-limit bucket), and a trusted proxy written so was not recognised."""
    hop = hop.strip()
    if hop.startswith("["):
        end = hop.find("]")
        return hop[1:end] if end > 0 else hop
    host, sep, port = hop.rpartition(":")
    if sep and port.isdigit() and host.count(":") == 0 and host:
        return host  # IPv4 (or a name) with a port; a bare IPv6 has colons of its own
    return hop


def rate_limit_key(address: str, ipv6_prefix: int = 64) -> str:
    """The rate-limit key of a client ``address``: an IPv6 address grouped by its network.

    An IPv4 address (and anything that is not IPv6: ``"unknown"``, a garbage hop) is its
    own key; an IPv4-mapped one (``::ffff:10.0.0.2``) is keyed as its IPv4 address; any
    other IPv6 address as its ``/ipv6_prefix`` network, or itself (canonical form) at 128.

    >>> rate_limit_key("2001:db8:0:1:aaaa::7"), rate_limit_key("::ffff:10.0.0.2")
    ('2001:db8:0:1::/64', '10.0.0.2')
    """
    if ":" not in address:  # IPv4: no parsing on the hot path
        return address
    return _ipv6_key(address, ipv6_prefix)


# An IPv6 client is parsed once, not per request; least recently used first out, so a
# flood of fresh addresses costs a parse each but cannot keep the regulars out.
@functools.lru_cache(maxsize=_CACHE_SIZE)
def _ipv6_key(address: str, prefix: int) -> str:
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    mapped = ip.ipv4_mapped
    if mapped is not None:
        # A dual-stack socket's IPv4 peer: grouped as IPv6 it would share ``::/64``
        # with every other IPv4 client.
        return str(mapped)
    if prefix >= 128:
        return ip.compressed
    host_bits = 128 - prefix
    network = ipaddress.IPv6Address(int(ip) >> host_bits << host_bits)
    return f"{network.compressed}/{prefix}"
