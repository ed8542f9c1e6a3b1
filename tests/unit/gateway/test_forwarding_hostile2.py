"""Forwarding headers and hosts under a second adversarial review: lists split over lines,
quotes in a client's Host, and host lists written without a space."""

from __future__ import annotations

import pytest

from flext_api.gateway._headers import TrustedProxies, forward_pairs
from flext_api.gateway._path import valid_host


def _forwarded(
    headers: list[tuple[bytes, bytes]], *, trusted: bool = True, host: bytes = b"a.example"
) -> dict[bytes, list[bytes]]:
    out = forward_pairs(
        headers,
        client="10.0.0.1",
        scheme="http",
        host=host,
        trusted=TrustedProxies(["10.0.0.0/8"] if trusted else []),
        hop=b"1.1 gw",
        drop=frozenset(),
    )
    lines: dict[bytes, list[bytes]] = {}
    for name, value in out:
        lines.setdefault(name, []).append(value)
    return lines


def test_every_x_forwarded_for_line_of_a_trusted_proxy_is_kept_in_order() -> None:
    """Two X-Forwarded-For lines are one list (RFC 9110 5.3): both kept, ours last."""
    lines = _forwarded([(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"1.1.1.1")])
    assert lines[b"x-forwarded-for"] == [b"6.6.6.6, 1.1.1.1, 10.0.0.1"]


def test_our_forwarded_element_follows_every_line_a_trusted_proxy_sent() -> None:
    """Our element is the last of the combined Forwarded list, never between two lines."""
    lines = _forwarded([(b"forwarded", b"for=6.6.6.6"), (b"forwarded", b"for=1.1.1.1")])
    assert lines[b"forwarded"] == [
        b'for=6.6.6.6, for=1.1.1.1, for=10.0.0.1;proto=http;host="a.example"'
    ]


def test_every_via_line_is_kept_before_ours() -> None:
    """Two Via lines reach the upstream as one list ending with our hop."""
    lines = _forwarded([(b"via", b"1.1 a"), (b"via", b"1.1 b")], trusted=False)
    assert lines[b"via"] == [b"1.1 a, 1.1 b, 1.1 gw"]


def test_blank_list_lines_add_no_empty_element() -> None:
    """A blank X-Forwarded-For line adds nothing (no ``, 10.0.0.1``)."""
    lines = _forwarded([(b"x-forwarded-for", b" "), (b"x-forwarded-for", b"1.1.1.1")])
    assert lines[b"x-forwarded-for"] == [b"1.1.1.1, 10.0.0.1"]


def test_connection_named_forwarded_is_dropped_from_a_trusted_proxy() -> None:
    """A Forwarded the trusted proxy names in Connection is not extended: ours alone."""
    lines = _forwarded([(b"connection", b"forwarded"), (b"forwarded", b"for=6.6.6.6")])
    assert lines[b"forwarded"] == [b'for=10.0.0.1;proto=http;host="a.example"']


@pytest.mark.parametrize(
    ("host", "param"),
    [
        (b'x";for=6.6.6.6;by="', b'host="x\\";for=6.6.6.6;by=\\""'),
        (b"x\\", b'host="x\\\\"'),
    ],
)
def test_a_quote_in_the_host_cannot_add_forwarded_parameters(host: bytes, param: bytes) -> None:
    """The host parameter is a quoted-string: a client's quote or backslash is escaped,
    so its text never ends the string and adds a ``for=`` of its choosing."""
    lines = _forwarded([], trusted=False, host=host)
    assert lines[b"forwarded"] == [b"for=10.0.0.1;proto=http;" + param]


@pytest.mark.parametrize("host", [b"admin.example,x", b"a.example,b.example:80", b","])
def test_a_host_list_without_spaces_is_not_a_host(host: bytes) -> None:
    """A comma makes a list of hosts to upstreams that split on it: refused."""
    assert valid_host(host) is False
    assert valid_host(host) is False  # and again, from what the first call remembered
