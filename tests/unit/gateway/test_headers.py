"""Proxy header rules: hop-by-hop removal and forwarding headers."""

from __future__ import annotations

from flext_api.gateway._headers import (
    TrustedProxies,
    apply_rules,
    forward_pairs,
    forward_request_headers,
    response_headers,
    response_pairs,
    strip_hop_by_hop,
)


def _fwd(headers: list[tuple[bytes, bytes]], client: str, trusted: list[str]) -> dict[bytes, bytes]:
    return dict(
        forward_request_headers(
            headers,
            client=client,
            scheme="https",
            host=b"api.example.com",
            trusted=TrustedProxies(trusted),
            via=b"gw",
            http_version="1.1",
        )
    )


def test_hop_by_hop_and_connection_named_removed() -> None:
    """RFC 9110 hop-by-hop headers and the ones Connection names are dropped."""
    out = strip_hop_by_hop(
        [
            (b"Connection", b"close, X-Hop"),
            (b"X-Hop", b"1"),
            (b"TE", b"trailers"),
            (b"X-Keep", b"2"),
        ]
    )
    assert out == [(b"x-keep", b"2")]


def test_untrusted_client_cannot_forge_forwarding() -> None:
    """X-Forwarded-* from an untrusted client are replaced by what the gateway saw."""
    out = _fwd([(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-proto", b"http")], "10.0.0.9", [])
    assert out[b"x-forwarded-for"] == b"10.0.0.9"
    assert out[b"x-forwarded-proto"] == b"https"
    assert out[b"forwarded"] == b'for=10.0.0.9;proto=https;host="api.example.com"'
    assert out[b"via"] == b"1.1 gw"


def test_trusted_proxy_chain_extended() -> None:
    """A trusted proxy's X-Forwarded-For and Forwarded are extended, Via appended."""
    out = _fwd(
        [(b"x-forwarded-for", b"1.2.3.4"), (b"forwarded", b"for=1.2.3.4"), (b"via", b"1.1 lb")],
        "10.0.0.1",
        ["10.0.0.0/8"],
    )
    assert out[b"x-forwarded-for"] == b"1.2.3.4, 10.0.0.1"
    assert out[b"forwarded"].startswith(b"for=1.2.3.4, for=10.0.0.1")
    assert out[b"via"] == b"1.1 lb, 1.1 gw"


def test_ipv6_client_quoted_in_forwarded() -> None:
    """An IPv6 client is quoted and bracketed in Forwarded (RFC 7239)."""
    out = _fwd([], "::1", [])
    assert out[b"forwarded"].startswith(b'for="[::1]"')


def test_trusted_proxies_ignores_bad_addresses() -> None:
    """Non-IP client names are never trusted."""
    trusted = TrustedProxies(["127.0.0.1"])
    assert "127.0.0.1" in trusted
    assert "localhost" not in trusted and None not in trusted


def test_response_via_appended() -> None:
    """The response keeps the upstream's Via and adds ours; Transfer-Encoding goes."""
    out = response_headers(
        [(b"Via", b"1.1 app"), (b"Transfer-Encoding", b"chunked")], via=b"gw", http_version="1.1"
    )
    assert out == [(b"via", b"1.1 app, 1.1 gw")]


def test_apply_rules_adds_and_removes() -> None:
    """Added headers replace existing ones; removed ones go."""
    out = apply_rules([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")], [(b"a", b"9")], frozenset({b"b"}))
    assert out == [(b"c", b"3"), (b"a", b"9")]


def test_forward_pairs_drops_connection_named_forwarding_and_given_names() -> None:
    """The one-pass form drops ``drop`` and what Connection names, even a trusted XFF."""
    out = forward_pairs(
        [
            (b"Connection", b"X-Forwarded-For, via"),
            (b"x-forwarded-for", b"1.2.3.4"),
            (b"via", b"1.1 lb"),
            (b"host", b"a"),
            (b"x-request-id", b"old"),
            (b"x-keep", b"1"),
        ],
        client="10.0.0.1",
        scheme="http",
        host=b"a",
        trusted=TrustedProxies(["10.0.0.0/8"]),
        hop=b"1.1 gw",
        drop=frozenset({b"host", b"x-request-id"}),
    )
    assert out == [
        (b"x-keep", b"1"),
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"x-forwarded-proto", b"http"),
        (b"x-forwarded-host", b"a"),
        (b"forwarded", b'for=10.0.0.1;proto=http;host="a"'),
        (b"via", b"1.1 gw"),
    ]


def test_response_pairs_replaces_request_id_and_ends_the_via_list() -> None:
    """The upstream's X-Request-ID gives way to ours; every Via line is kept, in order,
    and our hop ends the list (never between two of the upstream's lines)."""
    out = response_pairs(
        [(b"Via", b"1.1 a"), (b"X-Request-ID", b"up"), (b"via", b"1.1 b"), (b"TE", b"x")],
        hop=b"1.1 gw",
        request_id=b"ours",
    )
    assert out == [(b"via", b"1.1 a, 1.1 b, 1.1 gw"), (b"x-request-id", b"ours")]


def test_response_pairs_via_named_by_connection_is_replaced() -> None:
    """A Via that Connection names is dropped and ours appended alone."""
    out = response_pairs(
        [(b"connection", b"via"), (b"via", b"1.1 a"), (b"x-keep", b"1")],
        hop=b"1.1 gw",
        request_id=None,
    )
    assert out == [(b"x-keep", b"1"), (b"via", b"1.1 gw")]


def test_plain_connection_value_drops_only_itself() -> None:
    """``Connection: Keep-Alive`` names nothing more: every other header stays."""
    out = response_pairs(
        [(b"Connection", b"Keep-Alive"), (b"Keep-Alive", b"timeout=5"), (b"x-keep", b"1")],
        hop=b"1.1 gw",
        request_id=None,
    )
    assert out == [(b"x-keep", b"1"), (b"via", b"1.1 gw")]
