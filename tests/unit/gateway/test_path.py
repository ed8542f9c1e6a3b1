"""Dot segments in request paths: resolved as RFC 3986 says, or refused when hidden."""

from __future__ import annotations

import pytest

from flext_api.gateway._path import normalize_path, routing_path


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
