"""Header rules of a proxy: hop-by-hop removal, ``Via``, ``X-Forwarded-*`` and ``Forwarded``.

Pure functions over lists of ``(name, value)`` byte pairs (the ASGI shape). Hop-by-hop
headers are the ones RFC 9110 §7.6.1 names plus every header listed in ``Connection``.
Forwarding headers that arrive from a client outside ``trusted_proxies`` are dropped and
rewritten, so a client cannot forge its address; a trusted proxy's are extended.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = [
    "HOP_BY_HOP",
    "TrustedProxies",
    "forward_request_headers",
    "response_headers",
    "strip_hop_by_hop",
]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_FORWARDING = frozenset(
    {b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip"}
)

Pairs = list[tuple[bytes, bytes]]


class TrustedProxies:
    """A set of addresses and networks whose forwarding headers are believed."""

    __slots__ = ("_networks",)

    def __init__(self, entries: Iterable[str]) -> None:
        self._networks = tuple(ipaddress.ip_network(e, strict=False) for e in entries)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str) or not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)


def strip_hop_by_hop(headers: Iterable[tuple[bytes, bytes]]) -> Pairs:
    """Drop RFC 9110 §7.6.1 hop-by-hop headers and the ones named in ``Connection``."""
    pairs = [(name.lower(), value) for name, value in headers]
    named = HOP_BY_HOP  # copied only when a Connection header names more
    for name, value in pairs:
        if name == b"connection":
            named = named | {t.strip().lower() for t in value.split(b",") if t.strip()}
    return [pair for pair in pairs if pair[0] not in named]


def forward_request_headers(
    headers: Iterable[tuple[bytes, bytes]],
    *,
    client: str | None,
    scheme: str,
    host: bytes | None,
    trusted: TrustedProxies,
    via: bytes,
    http_version: str,
) -> Pairs:
    """The request headers to send upstream (hop-by-hop out, forwarding headers in)."""
    pairs = strip_hop_by_hop(headers)
    believe = client in trusted
    prior_for = b""
    prior_via = b""
    out: Pairs = []
    for name, value in pairs:
        if name in _FORWARDING:
            if believe and name == b"x-forwarded-for":
                prior_for = value
            if believe and name in (b"x-forwarded-proto", b"x-forwarded-host", b"forwarded"):
                out.append((name, value))
            continue
        if name == b"via":
            prior_via = value
            continue
        out.append((name, value))
    addr = (client or "unknown").encode()
    out.append((b"x-forwarded-for", prior_for + b", " + addr if prior_for else addr))
    if not any(n == b"x-forwarded-proto" for n, _ in out):
        out.append((b"x-forwarded-proto", scheme.encode()))
    if host is not None and not any(n == b"x-forwarded-host" for n, _ in out):
        out.append((b"x-forwarded-host", host))
    node = f'"[{client}]"' if client and ":" in client else (client or "unknown")
    element = f"for={node};proto={scheme}".encode()
    if host is not None:
        element += b';host="' + host + b'"'
    existing = next((i for i, (n, _) in enumerate(out) if n == b"forwarded"), None)
    if existing is None:
        out.append((b"forwarded", element))
    else:
        out[existing] = (b"forwarded", out[existing][1] + b", " + element)
    hop = http_version.encode() + b" " + via
    out.append((b"via", prior_via + b", " + hop if prior_via else hop))
    return out


def response_headers(
    headers: Iterable[tuple[bytes, bytes]], *, via: bytes, http_version: str
) -> Pairs:
    """The upstream response headers to send to the client, with our ``Via`` appended."""
    out = strip_hop_by_hop(headers)
    hop = http_version.encode() + b" " + via
    for index, (name, value) in enumerate(out):
        if name == b"via":
            out[index] = (name, value + b", " + hop)
            return out
    out.append((b"via", hop))
    return out


def apply_rules(
    pairs: Pairs, add: Sequence[tuple[bytes, bytes]], remove: frozenset[bytes]
) -> Pairs:
    """Remove ``remove`` and the names of ``add``, then append ``add``."""
    if not add and not remove:
        return pairs
    drop = remove | {name for name, _ in add}
    return [p for p in pairs if p[0] not in drop] + list(add)
