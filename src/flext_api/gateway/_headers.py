"""Header rules of a proxy: hop-by-hop removal, ``Via``, ``X-Forwarded-*`` and ``Forwarded``.

Pure functions over lists of ``(name, value)`` byte pairs (the ASGI shape). Hop-by-hop
headers are the ones RFC 9110 §7.6.1 names plus every header listed in ``Connection``.
Forwarding headers that arrive from a client outside ``trusted_proxies`` are dropped and
rewritten, so a client cannot forge its address; a trusted proxy's are extended. A
client's ``Proxy`` header is never forwarded (httpoxy, CVE-2016-5385: a CGI-style upstream
turns it into ``HTTP_PROXY`` and sends its own outgoing requests through that proxy).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from .._syntax import sendable_header

__all__ = [
    "HOP_BY_HOP",
    "TrustedProxies",
    "forward_pairs",
    "forward_request_headers",
    "response_headers",
    "response_pairs",
    "rule_problem",
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
#: Headers only a proxy may set: a client outside ``trusted_proxies`` has them dropped, a
#: trusted proxy's are kept. Beside the address, scheme and host (which we write), some
#: frameworks build URLs or pick the path served from these (``X-Forwarded-Prefix`` and
#: ``-Port`` in Spring's ForwardedHeaderFilter, Werkzeug's ProxyFix, Symfony;
#: ``X-Original-URL`` and ``X-Rewrite-URL`` in Symfony and Zend before CVE-2018-14773):
#: from a client, they would serve a path other than the one the router matched.
_FORWARDING = frozenset(
    {
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-forwarded-server",
        b"x-original-url",
        b"x-rewrite-url",
        b"x-real-ip",
    }
)
#: Never forwarded upstream: the hop-by-hop headers and ``Proxy`` (httpoxy, CVE-2016-5385),
#: which no client has a reason to send (no standard defines it) and a CGI upstream reads
#: as ``HTTP_PROXY``. One set, so the per-header test costs what it did.
_NOT_FORWARDED = HOP_BY_HOP | {b"proxy"}

#: What a route's header rules may not add: the framing and per-connection headers the
#: proxy writes itself. A rule's ``Content-Length`` or ``Transfer-Encoding`` frames a body
#: other than the one sent: the upstream reads the rest of it as a request of its own (on
#: a pooled connection: someone else's), and a client gets a cut or doubled body.
PROXY_OWNED = HOP_BY_HOP | {b"content-length"}

# Connection values that name no header beyond the hop-by-hop ones (nearly all of them).
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close", b"upgrade", b"te"})

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


def _connection_named(values: list[bytes]) -> frozenset[bytes]:
    """The header names listed in ``Connection`` values (lower-case)."""
    return frozenset(t.strip().lower() for value in values for t in value.split(b",") if t.strip())


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
    return forward_pairs(
        headers,
        client=client,
        scheme=scheme,
        host=host,
        trusted=trusted,
        hop=http_version.encode() + b" " + via,
        drop=frozenset(),
    )


def forward_pairs(
    headers: Iterable[tuple[bytes, bytes]],
    *,
    client: str | None,
    scheme: str,
    host: bytes | None,
    trusted: TrustedProxies,
    hop: bytes,
    drop: frozenset[bytes],
) -> Pairs:
    """:func:`forward_request_headers` in one pass, the ``Via`` element ``hop`` given
    (``b"1.1 gateway"``) and the names in ``drop`` left out as well.

    ``X-Forwarded-For``, ``Forwarded`` and ``Via`` are lists a header may split over
    several lines (RFC 9110 §5.3): every line is kept, in order, and ours comes last,
    as the one an upstream counting hops from the right expects to read first.
    """
    believe = client in trusted
    # The earlier hops' list elements, None while there are none (the usual request).
    prior_for: list[bytes] | None = None
    prior_forwarded: list[bytes] | None = None
    prior_via: list[bytes] | None = None
    connection: list[bytes] | None = None
    out: Pairs = []
    for name, value in headers:
        name = name.lower()
        if name in _NOT_FORWARDED:
            if name == b"connection" and value.lower() not in _PLAIN_CONNECTION:
                connection = [value] if connection is None else [*connection, value]
            continue
        if name in _FORWARDING:
            if believe:
                if name == b"x-forwarded-for":
                    prior_for = _add_element(prior_for, value)
                elif name == b"forwarded":
                    prior_forwarded = _add_element(prior_forwarded, value)
                elif name != b"x-real-ip":
                    out.append((name, value))
            continue
        if name == b"via":
            prior_via = _add_element(prior_via, value)
            continue
        if name not in drop:
            out.append((name, value))
    if connection is not None:  # rare: Connection names more headers to drop
        named = _connection_named(connection)
        out = [pair for pair in out if pair[0] not in named]
        if b"x-forwarded-for" in named:
            prior_for = None
        if b"forwarded" in named:
            prior_forwarded = None
        if b"via" in named:
            prior_via = None
    addr = (client or "unknown").encode()
    out.append((b"x-forwarded-for", b", ".join([*prior_for, addr]) if prior_for else addr))
    if not believe or not any(n == b"x-forwarded-proto" for n, _ in out):
        out.append((b"x-forwarded-proto", scheme.encode()))
    if host is not None and (not believe or not any(n == b"x-forwarded-host" for n, _ in out)):
        out.append((b"x-forwarded-host", host))
    node = f'"[{client}]"' if client and ":" in client else (client or "unknown")
    element = f"for={node};proto={scheme}".encode()
    if host is not None:
        if 34 in host or 92 in host:  # '"' or '\\' (an int test: a tenth of a bytes one)
            host = _quoted_text(host)
        element += b';host="' + host + b'"'
    out.append(
        (b"forwarded", b", ".join([*prior_forwarded, element]) if prior_forwarded else element)
    )
    out.append((b"via", b", ".join([*prior_via, hop]) if prior_via else hop))
    return out


def _quoted_text(value: bytes) -> bytes:
    """``value`` escaped for the inside of an RFC 9110 §5.6.4 quoted-string: a ``"`` or
    ``\\`` in it is escaped, so a client's text ends where the parameter does (never
    ``host="x";for=6.6.6.6``)."""
    return value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')


def _add_element(elements: list[bytes] | None, value: bytes) -> list[bytes] | None:
    """``elements`` with one line of a list header appended (a blank line adds nothing)."""
    value = value.strip()
    if not value:
        return elements
    if elements is None:
        return [value]
    elements.append(value)
    return elements


def response_headers(
    headers: Iterable[tuple[bytes, bytes]], *, via: bytes, http_version: str
) -> Pairs:
    """The upstream response headers to send to the client, with our ``Via`` appended."""
    return response_pairs(headers, hop=http_version.encode() + b" " + via, request_id=None)


def response_pairs(
    headers: Iterable[tuple[bytes, bytes]], *, hop: bytes, request_id: bytes | None
) -> Pairs:
    """:func:`response_headers` in one pass, the ``Via`` element ``hop`` given; with a
    ``request_id``, the upstream's ``X-Request-ID`` is replaced by it (appended last).

    ``Via`` is a list a response may split over several lines (RFC 9110 §5.3), as the
    request's: every line is kept, in order, and ours comes last (one line, as
    :func:`forward_pairs` writes it).
    """
    connection: list[bytes] | None = None
    out: Pairs = []
    via: bytes | None = None  # the upstream's Via lines joined (most responses have none)
    for name, value in headers:
        name = name.lower()
        if name in HOP_BY_HOP:
            if name == b"connection" and value.lower() not in _PLAIN_CONNECTION:
                connection = [value] if connection is None else [*connection, value]
            continue
        if name == b"via":
            value = value.strip()
            if value:
                via = value if via is None else via + b", " + value
            continue
        if request_id is not None and name == b"x-request-id":
            continue
        out.append((name, value))
    if connection is not None:  # rare: Connection names more headers to drop
        named = _connection_named(connection)
        if b"via" in named:
            via = None
        out = [pair for pair in out if pair[0] not in named]
    out.append((b"via", hop if via is None else via + b", " + hop))
    if request_id is not None:
        out.append((b"x-request-id", request_id))
    return out


def rule_problem(name: str, value: str) -> str | None:
    """Why a route's rule may not add the header ``name: value`` (None: it may)."""
    try:
        sendable_header(name, value)
    except ValueError as exc:
        return str(exc)
    if name.lower().encode() in PROXY_OWNED:
        return f"{name!r} is a framing or hop-by-hop header the proxy writes; a rule cannot add it"
    return None


def apply_rules(
    pairs: Pairs, add: Sequence[tuple[bytes, bytes]], remove: frozenset[bytes]
) -> Pairs:
    """Remove ``remove`` and the names of ``add``, then append ``add``."""
    if not add and not remove:
        return pairs
    drop = remove | {name for name, _ in add}
    return [p for p in pairs if p[0] not in drop] + list(add)
