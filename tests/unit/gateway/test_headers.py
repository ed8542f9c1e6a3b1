"""Proxy header rules: hop-by-hop removal and forwarding headers."""

from __future__ import annotations

from flext_api.gateway._headers import (
    TrustedProxies,
    apply_rules,
    forward_request_headers,
    response_headers,
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
