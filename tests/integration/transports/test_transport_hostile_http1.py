"""Hostile HTTP/1.1 upstreams: every transport fails the same typed way, never hangs,
never leaks its pool slot, and never hands a cut or double-framed body out as a success.

A raw server on 127.0.0.1 answers ``/<case>`` with ``ANSWERS[case]`` byte for byte, then
closes. What the other parity suites cover is not repeated here (a gzip body cut short,
a status past 599, trailers, a caller's own framing headers).

Fixed with these tests: httpx2 and pyreqwest took an answer with both Content-Length
and Transfer-Encoding (pyreqwest: two Content-Length fields) as valid; H1Transport
returned the bytes after a HEAD answer as its body, called a chunk size it could not
parse mid-stream "the upstream closed the connection", took a status below 100 for an
interim answer, and failed (or waited on) an upload the upstream had already answered
with 413.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from flext_api import ErrorCode, FlextApiError, HttpRequest, HttpResponse
from flext_api.transports import H1Transport, Transport
from flext_api.transports._base import INVALID_MESSAGE, INVALID_STATUS
from tests.integration.transports._transports import TRANSPORTS, canned_server, read_body

pytestmark = pytest.mark.integration

OK = b"HTTP/1.1 200 OK\r\n"
CHUNKED = OK + b"Transfer-Encoding: chunked\r\n\r\n"
#: Answers that must fail PROTOCOL_ERROR on every transport, buffered or streamed.
BROKEN: dict[str, bytes] = {
    "length-past-the-body": OK + b"Content-Length: 100\r\n\r\nhello",
    "head-then-close": OK + b"Content-Length: 5\r\n",
    "no-last-chunk": CHUNKED + b"5\r\nhello\r\n",
    "last-chunk-unterminated": CHUNKED + b"5\r\nhello\r\n0\r\n",
    "chunk-cut": CHUNKED + b"9\r\nhello",
    "chunk-size-0x": CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-negative": CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-huge": CHUNKED + b"ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "chunk-size-2^64-1": CHUNKED + b"ffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "length-and-chunked": (
        OK + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ),
    "two-lengths": OK + b"Content-Length: 2\r\nContent-Length: 5\r\n\r\nhello",
    "negative-length": OK + b"Content-Length: -1\r\n\r\nhello",
    "length-not-a-number": OK + b"Content-Length: abc\r\n\r\nhello",
    "length-0x": OK + b"Content-Length: 0x5\r\n\r\nhello",
    "nul-in-a-value": OK + b"X-A: a\x00b\r\nContent-Length: 5\r\n\r\nhello",
    "status-abc": b"HTTP/1.1 abc OK\r\nContent-Length: 5\r\n\r\nhello",
    "status-two-digits": b"HTTP/1.1 20 X\r\nContent-Length: 5\r\n\r\nhello",
    "status-four-digits": b"HTTP/1.1 2000 X\r\nContent-Length: 5\r\n\r\nhello",
    "status-099": b"HTTP/1.1 099 X\r\nContent-Length: 5\r\n\r\nhello",
    "not-http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
}
#: Answers every transport returns as ``200 hello``.
FINE: dict[str, bytes] = {
    "chunk-extension": CHUNKED + b"5;ext=1\r\nhello\r\n0\r\n\r\n",
    "100-continue-first": b"HTTP/1.1 100 Continue\r\n\r\n" + OK + b"Content-Length: 5\r\n\r\nhello",
    "103-early-hints-first": (
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        + OK
        + b"Content-Length: 5\r\n\r\nhello"
    ),
}
ANSWERS = {
    **BROKEN,
    **FINE,
    "head-with-a-body": OK + b"Content-Length: 5\r\n\r\nhello",
    "two-equal-lengths": OK + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
}


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """``/<case>`` answers ``ANSWERS[case]``, then the connection is closed."""
    async with canned_server(ANSWERS) as url:
        yield url


async def _bounded(coro: Coroutine[Any, Any, HttpResponse]) -> HttpResponse:
    return await asyncio.wait_for(coro, 30)  # a hang guard only


async def _fetch(transport: Transport, url: str, *, stream: bool, method: str = "GET") -> bytes:
    response = await _bounded(transport.send(HttpRequest(method, url), stream=stream))
    return await read_body(response, stream=stream)


async def _failure(transport: Transport, url: str, *, stream: bool) -> FlextApiError:
    with pytest.raises(FlextApiError) as caught:
        await _fetch(transport, url, stream=stream)
    assert transport.stats()["in_use"] == 0
    return caught.value


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_a_broken_answer_is_a_protocol_error(
    server: str, name: str, case: str, stream: bool
) -> None:
    """Never a success, never a hang, the slot given back; the next request still works."""
    transport = TRANSPORTS[name]()
    try:
        error = await _failure(transport, f"{server}/{case}", stream=stream)
        assert error.code is ErrorCode.PROTOCOL_ERROR, repr(error)
        assert await _fetch(transport, f"{server}/chunk-extension", stream=stream) == b"hello"
    finally:
        await transport.aclose()


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_length_and_chunked_together_is_an_invalid_message(
    server: str, name: str, stream: bool
) -> None:
    """RFC 9112 §6.3: both framings at once "ought to be handled as an error"; httpx2
    and pyreqwest read the chunked body and returned 200."""
    transport = TRANSPORTS[name]()
    try:
        error = await _failure(transport, f"{server}/length-and-chunked", stream=stream)
        assert (error.code, error.details.get("reason")) == (
            ErrorCode.PROTOCOL_ERROR,
            INVALID_MESSAGE,
        )
    finally:
        await transport.aclose()


@pytest.mark.parametrize("name", ["aiohttp", "h1", "pyreqwest"])
async def test_two_equal_content_length_fields_are_an_invalid_message(
    server: str, name: str
) -> None:
    """Two equal Content-Length fields are refused as two different ones are (pyreqwest
    took them as one; httpx2's parser merges them before the transport sees them, as
    RFC 9110 §8.6 allows, and is left out)."""
    transport = TRANSPORTS[name]()
    try:
        error = await _failure(transport, f"{server}/two-equal-lengths", stream=False)
        assert error.details.get("reason") == INVALID_MESSAGE
    finally:
        await transport.aclose()


@pytest.mark.parametrize("name", ["aiohttp", "h1"])
async def test_a_status_below_100_is_an_invalid_status(server: str, name: str) -> None:
    """``099`` is no interim answer: h1 waited for a final one and said the upstream
    closed the connection."""
    transport = TRANSPORTS[name]()
    try:
        error = await _failure(transport, f"{server}/status-099", stream=False)
        assert error.details.get("reason") == INVALID_STATUS
    finally:
        await transport.aclose()


@pytest.mark.parametrize("case", ["chunk-size-0x", "chunk-size-negative", "chunk-size-huge"])
async def test_h1_says_a_bad_chunk_size_is_invalid_when_streamed(server: str, case: str) -> None:
    """The parser's error stays the reason when the connection closes after it (it was
    replaced by "the upstream closed the connection", with no reason)."""
    transport = H1Transport()
    try:
        error = await _failure(transport, f"{server}/{case}", stream=True)
        assert error.details.get("reason") == INVALID_MESSAGE, repr(error)
    finally:
        await transport.aclose()


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
@pytest.mark.parametrize("case", sorted(FINE))
@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_an_odd_but_valid_answer_arrives_whole(
    server: str, name: str, case: str, stream: bool
) -> None:
    """A chunk extension, a 100 or a 103 before the answer: ``200 hello``."""
    transport = TRANSPORTS[name]()
    try:
        assert await _fetch(transport, f"{server}/{case}", stream=stream) == b"hello"
        assert transport.stats()["in_use"] == 0
    finally:
        await transport.aclose()


AIOHTTP_HEAD = pytest.mark.xfail(
    strict=True, reason="aiohttp's parser fails the answer on the bytes after it"
)


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
@pytest.mark.parametrize(
    "name", [pytest.param("aiohttp", marks=AIOHTTP_HEAD), "h1", "httpx", "pyreqwest"]
)
async def test_bytes_after_a_head_answer_are_no_body(server: str, name: str, stream: bool) -> None:
    """A HEAD answer has no body (RFC 9110 §9.3.2), whatever follows it: h1 returned
    the bytes sent after it as the body."""
    transport = TRANSPORTS[name]()
    try:
        url = f"{server}/head-with-a-body"
        assert await _fetch(transport, url, stream=stream, method="HEAD") == b""
        assert transport.stats()["in_use"] == 0
    finally:
        await transport.aclose()


# ---------------------------------------------------------------- early answer
EARLY = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig"


def _early_answer(then_close: bool) -> Callable[..., Coroutine[Any, Any, None]]:
    """A handler that answers 413 after the request head, reads nothing more, and then
    closes (``then_close``) or holds the connection until the client goes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            writer.write(EARLY)
            await writer.drain()
            if not then_close:
                await asyncio.Event().wait()  # cancelled when the listener closes
        finally:
            writer.close()

    return handle


async def _upload() -> AsyncIterator[bytes]:
    for _ in range(4096):  # 256 MiB: far past every socket buffer
        yield b"x" * 65536


@pytest.mark.parametrize("then_close", [True, False], ids=["then-closes", "then-stalls"])
@pytest.mark.parametrize("name", ["aiohttp", "h1", "pyreqwest"])
async def test_an_early_413_ends_a_large_upload(name: str, then_close: bool) -> None:
    """The upstream answers 413 before the streamed body ends and stops reading it: the
    413 is the answer. h1 waited on the full socket until the read timeout (or failed
    PROTOCOL_ERROR when the upstream then closed)."""
    listener = await asyncio.start_server(_early_answer(then_close), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/upload"
    transport = TRANSPORTS[name]()
    try:
        response = await _bounded(transport.send(HttpRequest("POST", url, stream=_upload())))
        assert (response.status_code, response.content) == (413, b"big")
        assert transport.stats()["in_use"] == 0
        if isinstance(transport, H1Transport):
            assert transport.stats()["open"] == 0  # aborted: no wait for the unsent bytes
    finally:
        await transport.aclose()
        listener.close()
        await listener.wait_closed()
