"""H1Transport's URL split and its lazily decoded response headers (no sockets)."""

from __future__ import annotations

import pytest

from flext_api.transports._h1 import _RawHeaders, _split


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://a:1/x?y#z", ("a:1", "/x?y")),
        ("http://a:80/x/y?z=/", ("a:80", "/x/y?z=/")),
        ("http://a:1", ("a:1", "/")),
        ("http://a?q/x", ("a", "/?q/x")),
        ("http://a#f/x", ("a", "/")),
        ("https://a/", None),
    ],
)
def test_split_gives_authority_and_target(url: str, expected: tuple[str, str] | None) -> None:
    """The authority ends at the first of / ? #; the fragment is never sent."""
    assert _split(url) == expected


def test_raw_headers_decode_on_first_use() -> None:
    """Lookups, repeated names and the pair list read as the decoded str pairs."""
    headers = _RawHeaders.of([(b"Content-Type", b"a"), (b"X-A", b"1"), (b"x-a", b"\xe9")])
    assert headers["content-type"] == "a"
    assert headers.get_list("x-a") == ["1", "\xe9"]
    assert headers.raw() == [("Content-Type", "a"), ("X-A", "1"), ("x-a", "\xe9")]


def test_raw_headers_other_missing_attributes_still_raise() -> None:
    """Only the decoded pairs are made on demand; any other name is an AttributeError."""
    with pytest.raises(AttributeError):
        _ = _RawHeaders.of([]).missing
