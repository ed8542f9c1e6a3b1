"""Header rules under a third adversarial review: httpoxy's ``Proxy``, the forwarding
headers frameworks pick the path from, ``Via`` lines in a response, and the ``Host`` of
a WebSocket handshake."""

from __future__ import annotations

from typing import Any

import pytest

from flext_api.gateway._app import Gateway
from flext_api.gateway._headers import (
    TrustedProxies,
    forward_pairs,
    forward_request_headers,
    response_pairs,
)

# Headers a framework reads to build URLs or choose the path served: a proxy's to set.
PROXY_SET = [
    (b"x-forwarded-port", b"8443"),
    (b"x-forwarded-prefix", b"/admin"),
    (b"x-forwarded-server", b"admin.internal"),
    (b"x-original-url", b"/admin/users"),
    (b"x-rewrite-url", b"/admin/users"),
]
PROXY_SET_NAMES = {name for name, _ in PROXY_SET}


def _forwarded(headers: list[tuple[bytes, bytes]], *, trusted: bool) -> list[tuple[bytes, bytes]]:
    return forward_pairs(
        headers,
        client="10.0.0.1",
        scheme="http",
        host=b"a.example",
        trusted=TrustedProxies(["10.0.0.0/8"] if trusted else []),
        hop=b"1.1 gw",
        drop=frozenset(),
    )


@pytest.mark.parametrize("trusted", [False, True], ids=["client", "trusted-proxy"])
@pytest.mark.parametrize("name", [b"proxy", b"Proxy", b"PROXY"])
def test_a_proxy_header_is_never_forwarded(name: bytes, trusted: bool) -> None:
    """httpoxy (CVE-2016-5385): ``Proxy`` would become a CGI upstream's HTTP_PROXY."""
    out = _forwarded([(name, b"http://6.6.6.6:8080"), (b"x-keep", b"1")], trusted=trusted)
    assert [pair for pair in out if pair[0] == b"proxy"] == []
    assert (b"x-keep", b"1") in out


def test_forward_request_headers_drops_a_proxy_header_too() -> None:
    """The keyword form of the request rules drops ``Proxy`` as well."""
    out = forward_request_headers(
        [(b"proxy", b"http://6.6.6.6:8080")],
        client="192.0.2.1",
        scheme="http",
        host=b"a.example",
        trusted=TrustedProxies([]),
        via=b"gw",
        http_version="1.1",
    )
    assert b"proxy" not in {name for name, _ in out}


def test_only_the_exact_name_proxy_is_dropped() -> None:
    """Only the exact name ``Proxy`` is dropped; ``Proxy-Id`` (no standard's) passes."""
    out = _forwarded([(b"proxy-id", b"7")], trusted=False)
    assert (b"proxy-id", b"7") in out


@pytest.mark.parametrize(("name", "value"), PROXY_SET)
def test_a_client_cannot_send_a_forwarding_header_a_framework_trusts(
    name: bytes, value: bytes
) -> None:
    """From a client outside trusted_proxies these are dropped, as X-Forwarded-Host is."""
    out = _forwarded([(name, value), (b"x-keep", b"1")], trusted=False)
    assert name not in {n for n, _ in out}
    assert (b"x-keep", b"1") in out


def test_a_client_cannot_send_them_in_any_letter_case() -> None:
    """Header names are case-insensitive: ``X-Original-URL`` is dropped like its lower case."""
    out = _forwarded(
        [(b"X-Original-URL", b"/admin"), (b"X-Forwarded-Prefix", b"/a")], trusted=False
    )
    assert not PROXY_SET_NAMES & {n for n, _ in out}


def test_a_trusted_proxy_keeps_every_forwarding_header_it_set() -> None:
    """A proxy in trusted_proxies is believed: its values pass as it sent them."""
    out = _forwarded(list(PROXY_SET), trusted=True)
    assert [pair for pair in out if pair[0] in PROXY_SET_NAMES] == PROXY_SET


def test_the_forwarding_headers_we_write_are_still_written_for_a_client() -> None:
    """Dropping the client's leaves ours: For, Proto, Host, Forwarded and Via."""
    out = dict(_forwarded(list(PROXY_SET), trusted=False))
    assert out[b"x-forwarded-for"] == b"10.0.0.1"
    assert out[b"x-forwarded-proto"] == b"http"
    assert out[b"x-forwarded-host"] == b"a.example"
    assert out[b"via"] == b"1.1 gw"


def test_every_response_via_line_is_kept_in_order_before_ours() -> None:
    """Three Via lines from the upstream: all kept in order, our hop the last element."""
    out = response_pairs(
        [(b"Via", b"1.0 a"), (b"x-keep", b"1"), (b"via", b"1.1 b"), (b"VIA", b"1.1 c")],
        hop=b"1.1 gw",
        request_id=None,
    )
    assert [value for name, value in out if name == b"via"] == [b"1.0 a, 1.1 b, 1.1 c, 1.1 gw"]
    assert (b"x-keep", b"1") in out


def test_a_blank_response_via_line_adds_no_empty_element() -> None:
    """A blank Via line adds nothing (no ``, , 1.1 gw``)."""
    out = response_pairs([(b"via", b" "), (b"via", b"1.1 b")], hop=b"1.1 gw", request_id=None)
    assert [value for name, value in out if name == b"via"] == [b"1.1 b, 1.1 gw"]


def _scope(*headers: tuple[bytes, bytes], http_version: str = "1.1") -> dict[str, Any]:
    return {"type": "websocket", "http_version": http_version, "headers": list(headers)}


@pytest.mark.parametrize(
    "headers",
    [
        [(b"host", b"a b")],
        [(b"host", b"admin.example,x")],
        [(b"host", b"www.example, admin.example")],
        [(b"host", b"www.example"), (b"host", b"admin.example")],
        [],
    ],
    ids=["space", "comma", "list", "two-lines", "none"],
)
def test_a_handshake_host_a_route_cannot_be_sure_of_is_refused(
    headers: list[tuple[bytes, bytes]],
) -> None:
    """The handshake's Host is held to the rule of a request's (``_front``)."""
    assert Gateway.clean_host(_scope(*headers)) is False


@pytest.mark.parametrize(
    "scope",
    [
        _scope((b"host", b"admin.example")),
        _scope((b"host", b"[::1]:8080")),
        _scope(http_version="1.0"),
    ],
    ids=["name", "ip-literal", "http10-without-host"],
)
def test_a_handshake_with_a_plain_host_passes(scope: dict[str, Any]) -> None:
    """One Host line naming a host, or none where HTTP/1.0 allows it: accepted."""
    assert Gateway.clean_host(scope) is True
