"""Headers, HttpRequest and HttpResponse: the hot-path value objects."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flext_api import ErrorCode, FlextApiError, Headers, HttpRequest, HttpResponse
from flext_api._errors import DecodeError, InvalidRequestError
from flext_api._models import _HOSTS, _HOSTS_MAX, host_of, validate_header


def test_headers_are_case_insensitive_and_keep_repeats() -> None:
    """Lookup ignores case; repeated fields join on lookup and stay apart in get_list."""
    h = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X-One", "1")])
    assert h["SET-COOKIE"] == "a=1, b=2"
    assert h.get_list("set-cookie") == ["a=1", "b=2"]
    assert "x-one" in h
    assert len(h) == 2 and sorted(h) == ["set-cookie", "x-one"]
    assert h.get("missing") is None
    assert h.multi_items()[0] == ("Set-Cookie", "a=1")


def test_headers_set_add_remove_and_copy_are_independent() -> None:
    """set replaces, add appends, remove drops; a copy does not see later changes."""
    h = Headers({"A": "1"})
    c = h.copy()
    h.add("a", "2")
    assert h.get_list("A") == ["1", "2"]
    h.set("A", "3")
    assert h["a"] == "3"
    h.remove("A")
    assert "a" not in h
    assert c["a"] == "1"
    assert c.raw() == [("A", "1")]


def test_headers_equality() -> None:
    """Headers equal other Headers regardless of name case, and plain mappings."""
    assert Headers({"A": "1"}) == Headers({"a": "1"})
    assert Headers({"A": "1"}) == {"a": "1"}
    assert Headers({"A": "1"}).__eq__(5) is NotImplemented
    assert repr(Headers({"A": "1"})) == "Headers([('A', '1')])"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Bad", "a\r\nInjected: 1"),
        ("X-Bad", "a\nb"),
        ("X-Bad", "a\x00b"),
        ("Bad Name", "v"),
        ("Bad\r\nName", "v"),
        ("X-Trailing-LF\n", "v"),
        ("", "v"),
    ],
)
def test_validate_header_rejects_what_could_split_a_message(name: str, value: str) -> None:
    """CR, LF, NUL in values and non-token names are INVALID_REQUEST."""
    with pytest.raises(InvalidRequestError) as info:
        validate_header(name, value)
    assert info.value.code is ErrorCode.INVALID_REQUEST


def test_validate_header_accepts_tabs_and_non_str_is_rejected() -> None:
    """HTAB is allowed in a value; a non-str value is refused."""
    validate_header("X-Ok", "a\tb")
    with pytest.raises(InvalidRequestError):
        validate_header("X-Ok", 5)  # type: ignore[arg-type]


def test_request_host_and_repr_hide_secrets() -> None:
    """host is lower-cased host:port without userinfo; repr drops the query and credentials."""
    req = HttpRequest("GET", "https://user:pw@API.example:8443/p?token=secret")
    assert req.host == "api.example:8443"
    assert repr(req) == "<HttpRequest [GET https://API.example:8443/p]>"
    assert HttpRequest("GET", "http://h?x=1").host == "h"
    assert req.is_replayable


def test_host_of_stays_right_and_bounded_past_its_cache_limit() -> None:
    """More distinct URLs than the host cache holds: each host is still right, the cache bounded."""
    urls = [f"http://User@Host-{i}.example:81/p?q={i}" for i in range(_HOSTS_MAX + 5)]
    hosts = [host_of(url) for url in urls]
    assert hosts == [f"host-{i}.example:81" for i in range(_HOSTS_MAX + 5)]
    assert len(_HOSTS) <= _HOSTS_MAX
    assert host_of(urls[0]) == "host-0.example:81"


def test_request_copy_is_independent() -> None:
    """copy() gives its own headers and extensions."""
    req = HttpRequest("POST", "http://h/", headers={"A": "1"}, content=b"x", extensions={"k": 1})
    dup = req.copy()
    dup.headers.set("A", "2")
    dup.extensions["k"] = 2
    assert req.headers["A"] == "1" and req.extensions["k"] == 1
    assert dup.content == b"x"


def test_response_text_json_and_status_helpers() -> None:
    """text decodes with the charset; json parses; status helpers classify."""
    resp = HttpResponse(
        200,
        headers={"Content-Type": "application/json; charset=latin-1"},
        content='{"a": "é"}'.encode("latin-1"),
    )
    assert resp.encoding == "latin-1"
    assert resp.json() == {"a": "é"}
    assert resp.is_success and not resp.is_error and not resp.is_redirect
    assert resp.error_for_status() is None
    assert resp.raise_for_status() is resp
    assert repr(resp) == "<HttpResponse [200]>"


def test_response_unknown_charset_falls_back_to_utf8() -> None:
    """An unknown charset decodes as utf-8 with replacement."""
    resp = HttpResponse(200, headers={"content-type": "text/plain; charset=nope"}, content=b"ok")
    assert resp.text == "ok"


def test_response_json_error_is_typed() -> None:
    """A non-JSON body raises DecodeError saying what came (the body stays on the error's
    response, out of the message)."""
    resp = HttpResponse(200, content=b"<html>")
    with pytest.raises(DecodeError) as info:
        resp.json()
    assert info.value.code is ErrorCode.DECODE_ERROR
    assert "6 bytes, no Content-Type" in info.value.message
    assert "<html>" not in info.value.message
    assert info.value.response is resp


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=UTF-8"])
def test_response_json_ignores_a_utf8_byte_order_mark(ctype: str) -> None:
    """A UTF-8 BOM before the JSON is ignored (RFC 8259 §8.1): it was a DECODE_ERROR."""
    resp = HttpResponse(200, headers={"content-type": ctype}, content=b'\xef\xbb\xbf{"a": 1}')
    assert resp.json() == {"a": 1}


def test_response_error_for_status() -> None:
    """A 503 stands for an HTTP_STATUS error that carries the response."""
    req = HttpRequest("GET", "http://h/x?secret=1")
    resp = HttpResponse(503, reason="Service Unavailable", request=req)
    err = resp.error_for_status()
    assert err is not None and err.code is ErrorCode.HTTP_STATUS and err.response is resp
    assert err.message == "HTTP 503 Service Unavailable from GET http://h/x"
    with pytest.raises(FlextApiError):
        resp.raise_for_status()
    assert HttpResponse(302, headers={"Location": "/"}).is_redirect


async def test_streaming_response_reads_and_closes_once() -> None:
    """aiter_bytes yields chunks and calls close exactly once; aread joins them."""
    closed: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b""
        yield b"c\nd\n"

    async def close() -> None:
        closed.append(1)

    resp = HttpResponse(200, stream=chunks(), close=close)
    consumed_before = resp.is_stream_consumed
    assert consumed_before is False
    with pytest.raises(FlextApiError):
        _ = resp.content
    assert await resp.aread() == b"abc\nd\n"
    assert resp.is_stream_consumed and closed == [1]
    await resp.aclose()
    assert closed == [1]


async def test_a_stream_iterated_twice_or_read_after_close_is_an_error() -> None:
    """A stream is read once: iterating it again yielded nothing (as if the body were
    empty), and aread() after aclose() said the body was "not read"; both are now an
    INVALID_REQUEST saying the body is gone."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"ab"

    iterated = HttpResponse(200, stream=chunks())
    assert [c async for c in iterated.aiter_bytes()] == [b"ab"]
    with pytest.raises(FlextApiError, match="iterated already") as again:
        _ = [c async for c in iterated.aiter_bytes()]
    assert again.value.code is ErrorCode.INVALID_REQUEST
    with pytest.raises(FlextApiError, match="gone"):
        await iterated.aread()
    closed = HttpResponse(200, stream=chunks())
    await closed.aclose()
    with pytest.raises(FlextApiError, match="closed before it was read"):
        await closed.aread()
    kept = HttpResponse(200, stream=chunks())
    assert await kept.aread() == b"ab"
    assert [c async for c in kept.aiter_bytes()] == [b"ab"]  # read into memory: repeatable
    assert [c async for c in HttpResponse(204).aiter_bytes()] == []


async def test_aiter_lines_splits_across_chunks() -> None:
    """Lines split across chunk boundaries come out whole; a trailing partial line too."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"one\r\ntw"
        yield b"o\nthree"

    resp = HttpResponse(200, stream=chunks())
    assert [line async for line in resp.aiter_lines()] == ["one", "two", "three"]


async def test_aiter_bytes_of_a_read_response() -> None:
    """A non-streaming response yields its content once (nothing for an empty body)."""
    assert [c async for c in HttpResponse(200, content=b"x").aiter_bytes()] == [b"x"]
    assert [c async for c in HttpResponse(204).aiter_bytes()] == []


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://API.Example.COM./x", "api.example.com"),
        ("http://example.com:80/x", "example.com"),
        ("http://example.com:080/x", "example.com"),
        ("https://example.com:443", "example.com"),
        ("wss://example.com:443/ws", "example.com"),
        ("http://example.com:443/x", "example.com:443"),
        ("http://user:pw@example.com:8080/x", "example.com:8080"),
        ("http://[0:0::1]:8080/x", "[::1]:8080"),
        ("http://[::1]/x", "[::1]"),
    ],
)
def test_request_host_is_one_spelling_per_host(url: str, host: str) -> None:
    """Per-host policies key on request.host: spellings of one host must agree."""
    assert HttpRequest("GET", url).host == host


async def test_aiter_lines_joins_what_chunks_cut() -> None:
    """A UTF-8 character or a CRLF cut between two chunks (at every cut point) reads as
    the same lines as the whole body."""
    text = "h\u00e9llo\r\nw\u00f6rld\rlast\n\nend"
    data = text.encode()

    async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    for cut in range(len(data) + 1):
        response = HttpResponse(
            200,
            headers={"content-type": "text/plain; charset=utf-8"},
            stream=pieces(data[:cut], data[cut:]),
        )
        assert [line async for line in response.aiter_lines()] == text.splitlines(), cut


@pytest.mark.parametrize(
    "url",
    ["http://bücher.example/a", "http://BÜCHER.example:80/", "http://xn--bcher-kva.example/"],
)
def test_an_internationalised_host_has_one_spelling(url: str) -> None:
    """Per-host policies key on host_of: the Unicode and the xn-- form of one host share
    one breaker, limiter and budget (they were two)."""
    assert host_of(url) == "xn--bcher-kva.example"
