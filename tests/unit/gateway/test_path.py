"""Dot segments in request paths: resolved as RFC 3986 says, or refused when hidden."""

from __future__ import annotations

import pytest

from flext_api.gateway._path import (
    normalize_path,
    routing_path,
    split_target,
    valid_host,
    with_host,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/a/b/c", b"/a/b/c"),
        (b"/a/./b", b"/a/b"),
        (b"/a/b/../c", b"/a/c"),
        (b"/a/%2e%2E/c", b"/c"),
        (b"/a/b/..", b"/a/"),
        (b"/a/b/.", b"/a/b/"),
        (b"/.", b"/"),
        (b"/a/../..x/.b/c..", b"/..x/.b/c.."),  # dots inside names are not segments
        (b"/a%2Fb/c%20d", b"/a%2Fb/c%20d"),  # other escapes kept as sent
        (b"/a//b", b"/a//b"),  # empty segments kept
        (b"/file.json", b"/file.json"),
        (b"*", b"*"),
    ],
)
def test_resolved(raw: bytes, expected: bytes) -> None:
    assert normalize_path(raw) == expected


def test_a_path_with_nothing_to_resolve_is_returned_itself() -> None:
    raw = b"/a/b%20c/d.txt"
    assert normalize_path(raw) is raw


@pytest.mark.parametrize(
    "raw",
    [
        b"/..",
        b"/a/../../b",
        b"/%2e%2e/b",
        b"/a/..%2fb",
        b"/a/..%2Fb",
        b"/a/%2e%2e%2fb",
        b"/a/..%5cb",
        b"/a/..\\b",
        b"/a/b\\..\\c",
        b"/a/..;/b",
        b"/a/.;x/b",
        b"/a/%2e%2e;jsessionid=1/b",
    ],
)
def test_refused(raw: bytes) -> None:
    assert normalize_path(raw) is None


def test_routing_path_decodes_like_the_server() -> None:
    assert routing_path(b"/a%2Fb/c%20d") == "/a/b/c d"
    assert routing_path(b"/plain") == "/plain"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"http://a.example/x/y", (b"a.example", b"/x/y")),
        (b"HTTPS://a.example:8443", (b"a.example:8443", b"/")),
        (b"http://a.example?q=1", (b"a.example", b"/")),
        (b"http://a.example/x?q=/y#f", (b"a.example", b"/x")),
        (b"http://u:p@a.example/x", None),  # userinfo: an error (RFC 9110 4.2.4)
        (b"http:///x", None),
        (b"ftp://a.example/x", None),
        (b"a.example:443", None),  # authority form (CONNECT)
        (b"/x", None),
    ],
)
def test_split_target(target: bytes, expected: tuple[bytes, bytes] | None) -> None:
    assert split_target(target) == expected


@pytest.mark.parametrize(
    ("host", "valid"),
    [
        (b"a.example", True),
        (b"a.example:8080", True),
        (b"[::1]:8080", True),
        (b"xn--bcher-kva.example.", True),
        (b"a.example, b.example", False),
        (b"a.example b", False),
        (b"a/b", False),
        (b"a@b", False),
        (b"a:b:c", False),
        (b"a\x00", False),
    ],
)
def test_valid_host(host: bytes, valid: bool) -> None:
    assert valid_host(host) is valid
    assert valid_host(host) is valid  # and again, from what the first call remembered


def test_with_host_replaces_every_host_line() -> None:
    headers = [(b"host", b"x"), (b"accept", b"*/*"), (b"host", b"y")]
    assert with_host(headers, b"a.example") == [(b"host", b"a.example"), (b"accept", b"*/*")]
