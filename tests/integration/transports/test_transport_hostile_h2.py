"""Hostile HTTP/2 upstreams: ``HttpxTransport(http2=True)`` fails the typed way, never
hangs, never hands a cut or malformed answer out as a success, and gives its slot back.

A raw ``h2`` server over TLS (ALPN ``h2``, a throw-away ``trustme`` CA) on 127.0.0.1
answers ``/<case>`` by ``CASES[case]``; the server's own checks are off so that it can
send what RFC 9113 forbids. Connection-wide misbehaviour (no SETTINGS, a limit of 0
streams) is a constructor argument of the server.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import pytest
import trustme
from h2.settings import SettingCodes
from hyperframe.frame import ContinuationFrame, HeadersFrame, SettingsFrame

from flext_api import ErrorCode, FlextApiError, HttpRequest, HttpResponse, TimeoutConfig
from flext_api.transports import HttpxTransport
from flext_api.transports._base import INVALID_MESSAGE, UNPROCESSED
from tests.integration.transports._transports import read_body

pytestmark = pytest.mark.integration

_CONFIG = h2.config.H2Configuration(
    client_side=False,
    header_encoding=None,
    validate_inbound_headers=False,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
)


@dataclass
class Link:
    """One client connection as a case sees it."""

    conn: h2.connection.H2Connection
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def flush(self) -> None:
        self.writer.write(self.conn.data_to_send())
        await self.writer.drain()

    async def round_trip(self) -> None:
        """Flush, then wait for the client to answer a PING: what was flushed is taken,
        so what follows arrives in a later read (a body after its head was returned)."""
        self.conn.ping(b"12345678")
        await self.flush()
        while data := await self.reader.read(65536):
            events = self.conn.receive_data(data)
            if any(isinstance(event, h2.events.PingAckReceived) for event in events):
                return
        raise ConnectionError("the client went before answering the PING")


#: One request's answer: (server, link, stream id).
Case = Callable[["HostileH2", Link, int], Awaitable[None]]


def _head(status: int = 200, /, **fields: str) -> list[tuple[bytes, bytes]]:
    return [(b":status", str(status).encode())] + [
        (k.replace("_", "-").encode(), v.encode()) for k, v in fields.items()
    ]


async def _ok(_: HostileH2, link: Link, sid: int) -> None:
    link.conn.send_headers(sid, _head(content_length="5"))
    link.conn.send_data(sid, b"hello", end_stream=True)


async def _reset_mid_body(_: HostileH2, link: Link, sid: int) -> None:
    link.conn.send_headers(sid, _head(content_length="10"))
    link.conn.send_data(sid, b"hello")
    await link.round_trip()
    link.conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)


async def _refused(_: HostileH2, link: Link, sid: int) -> None:
    link.conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)


async def _refused_once(server: HostileH2, link: Link, sid: int) -> None:
    await (_refused if server.hits["/refused-once"] == 1 else _ok)(server, link, sid)


def _goaway_once(path: str) -> Case:
    """GOAWAY with the last stream id below this request's (it was not processed), then
    the connection closes; on the path's first hit only, later ones are answered."""

    async def case(server: HostileH2, link: Link, sid: int) -> None:
        if server.hits[path] > 1:
            await _ok(server, link, sid)
            return
        link.conn.close_connection(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=max(sid - 2, 0))
        server.close_after_write = True

    return case


async def _answer_then_goaway(server: HostileH2, link: Link, sid: int) -> None:
    """The answer, then GOAWAY NO_ERROR; the connection stays open (the client must go)."""
    await _ok(server, link, sid)
    link.conn.close_connection(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=sid)


def _body(length: str, data: bytes, *, later: bool = False) -> Case:
    async def case(_: HostileH2, link: Link, sid: int) -> None:
        link.conn.send_headers(sid, _head(content_length=length))
        if later:
            await link.round_trip()
        link.conn.send_data(sid, data, end_stream=True)

    return case


def _headed(**fields: str) -> Case:
    async def case(_: HostileH2, link: Link, sid: int) -> None:
        link.conn.send_headers(sid, _head(**fields))
        link.conn.send_data(sid, b"hello", end_stream=True)

    return case


async def _continuation_flood(server: HostileH2, link: Link, sid: int) -> None:
    """HEADERS without END_HEADERS, then CONTINUATION frames that never end the block
    (CVE-2024-27316), until the client goes or 100,000 frames (1.6 GB) were sent."""
    await link.flush()
    head = HeadersFrame(sid)
    head.data = b"\x82"  # any fragment: the block never ends
    link.writer.write(head.serialize())
    frame = ContinuationFrame(sid)
    frame.data = b"\x00" * 16000
    raw = frame.serialize()
    for _ in range(100_000):
        link.writer.write(raw)
        await link.writer.drain()
    server.flood_ended = True


#: Answers whose content-length is unlike their DATA; "-later": the DATA arrives after
#: the client returned the head.
LENGTHS: dict[str, Case] = {
    "/length-past-the-data": _body("10", b"hello"),
    "/length-short-of-the-data": _body("2", b"hello"),
    "/length-past-the-data-later": _body("10", b"hello", later=True),
    "/length-short-of-the-data-later": _body("2", b"hello", later=True),
}
#: Answers with a connection-specific field.
CONNECTION_FIELDS: dict[str, Case] = {
    "/connection-keep-alive": _headed(connection="keep-alive"),
    "/transfer-encoding": _headed(transfer_encoding="chunked"),
    "/keep-alive": _headed(keep_alive="timeout=5"),
    "/proxy-connection": _headed(proxy_connection="close"),
    "/upgrade": _headed(upgrade="h2c"),
}
CASES: dict[str, Case] = {
    "/ok": _ok,
    "/reset-mid-body": _reset_mid_body,
    "/refused": _refused,
    "/refused-once": _refused_once,
    "/goaway-first": _goaway_once("/goaway-first"),
    "/goaway-below": _goaway_once("/goaway-below"),
    "/answer-then-goaway": _answer_then_goaway,
    "/continuation-flood": _continuation_flood,
    **LENGTHS,
    **CONNECTION_FIELDS,
}


class HostileH2:
    """An h2 server over TLS on 127.0.0.1; ``hits`` counts requests by path,
    ``connections`` the connections accepted."""

    def __init__(
        self,
        ca: trustme.CA,
        *,
        silent: bool = False,
        max_streams: int | None = None,
        refuse_on_head: bool = False,
    ):
        self._ca = ca
        self._refuse_on_head = refuse_on_head
        self._silent = silent
        self._max_streams = max_streams
        self.hits: Counter[str] = Counter()
        self.connections = 0
        self.close_after_write = False
        self.flood_ended = False
        self._listener: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.url = ""

    async def __aenter__(self) -> HostileH2:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1").configure_cert(context)
        context.set_alpn_protocols(["h2"])
        self._listener = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=context)
        self.url = f"https://127.0.0.1:{self._listener.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._listener is not None
        self._listener.close()
        for writer in self._writers:  # the handlers still waiting on a client read EOF
            writer.transport.abort()
        await asyncio.gather(*self._handlers)
        await self._listener.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            if self._silent:
                while await reader.read(65536):  # takes the preface, answers nothing
                    pass
                return
            conn = h2.connection.H2Connection(config=_CONFIG)
            conn.initiate_connection()
            preface = conn.data_to_send()
            if self._max_streams is not None:
                # Written by hand: h2 would enforce the limit on the client's HEADERS
                # itself, and the test wants the streams refused one by one.
                settings = SettingsFrame(0)
                settings.settings = {SettingCodes.MAX_CONCURRENT_STREAMS: self._max_streams}
                preface = settings.serialize()
            writer.write(preface)
            link = Link(conn, reader, writer)
            paths: dict[int, str] = {}
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        headers = dict(event.headers or [])
                        paths[event.stream_id] = headers[b":path"].decode()
                        self.hits[paths[event.stream_id]] += 1
                        if self._refuse_on_head:
                            conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                    if isinstance(event, h2.events.StreamEnded):
                        if self._max_streams is not None:
                            conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                        else:
                            case = CASES[paths[event.stream_id]]
                            await case(self, link, event.stream_id)
                writer.write(conn.data_to_send())
                await writer.drain()
                if self.close_after_write:
                    self.close_after_write = False
                    return
        except (ConnectionError, ssl.SSLError, h2.exceptions.ProtocolError):
            # The client gave up on a hostile answer (what the tests want), or sent a
            # frame after this side's GOAWAY, which h2 refuses.
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throw-away CA the client trusts and the servers' certificates come from."""
    return trustme.CA()


@pytest.fixture
async def server(ca: trustme.CA) -> AsyncIterator[HostileH2]:
    async with HostileH2(ca) as running:
        yield running


def _transport(ca: trustme.CA, timeout: TimeoutConfig | None = None) -> HttpxTransport:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return HttpxTransport(timeout=timeout, http2=True, ssl_context=context)


async def _bounded(coro: Coroutine[Any, Any, HttpResponse]) -> HttpResponse:
    return await asyncio.wait_for(coro, 30)  # a hang guard only


async def _fetch(
    transport: HttpxTransport, url: str, *, stream: bool = False, method: str = "GET"
) -> bytes:
    content = b"{}" if method == "POST" else None
    request = HttpRequest(method, url, content=content)
    response = await _bounded(transport.send(request, stream=stream))
    assert response.http_version == "HTTP/2"
    return await read_body(response, stream=stream)


async def _failure(
    transport: HttpxTransport, url: str, *, stream: bool = False, method: str = "GET"
) -> FlextApiError:
    with pytest.raises(FlextApiError) as caught:
        await _fetch(transport, url, stream=stream, method=method)
    assert transport.stats()["in_use"] == 0
    return caught.value


STREAM = pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])


@STREAM
async def test_a_reset_mid_body_is_a_protocol_error(
    server: HostileH2, ca: trustme.CA, stream: bool
) -> None:
    """RST_STREAM after 5 of 10 bytes: PROTOCOL_ERROR, never ``hello`` as the body; the
    connection serves the next request."""
    transport = _transport(ca)
    try:
        error = await _failure(transport, f"{server.url}/reset-mid-body", stream=stream)
        assert error.code is ErrorCode.PROTOCOL_ERROR, repr(error)
        assert await _fetch(transport, f"{server.url}/ok", stream=stream) == b"hello"
        assert server.connections == 1
    finally:
        await transport.aclose()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_refused_stream_says_the_request_was_not_processed(
    server: HostileH2, ca: trustme.CA, method: str
) -> None:
    """REFUSED_STREAM before any HEADERS (RFC 9113 §8.7: not processed, safe to retry):
    CONNECT_ERROR with reason ``unprocessed``, which the retry policy resends whatever
    the method. It was a PROTOCOL_ERROR, which a POST is never retried on."""
    transport = _transport(ca)
    try:
        error = await _failure(transport, f"{server.url}/refused", method=method)
        assert (error.code, error.details.get("reason")) == (ErrorCode.CONNECT_ERROR, UNPROCESSED)
        assert await _fetch(transport, f"{server.url}/ok") == b"hello"
    finally:
        await transport.aclose()


async def test_a_post_refused_once_succeeds_through_the_retry_plugin(
    server: HostileH2, ca: trustme.CA
) -> None:
    """The client's default pipeline resends a POST the server refused unprocessed."""
    from flext_api import ClientConfig
    from flext_api.client import FlextApiClient
    from flext_api.testing import set_testing

    context = ssl.create_default_context()
    ca.configure_trust(context)
    with set_testing(True):
        async with FlextApiClient(
            server.url, config=ClientConfig(http2=True), ssl_context=context
        ) as client:
            result = await asyncio.wait_for(client.post("/refused-once", json={}), 30)
            assert result.value.content == b"hello"
            assert result.value.attempts == 2
            assert client.stats()["pool"]["in_use"] == 0
    assert server.hits["/refused-once"] == 2


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_goaway_with_last_stream_id_0_is_unprocessed(
    server: HostileH2, ca: trustme.CA, method: str
) -> None:
    """GOAWAY with last stream id 0 as the answer to the first request: nothing was
    processed (RFC 9113 §6.8): CONNECT_ERROR ``unprocessed``, retried whatever the
    method. It was a PROTOCOL_ERROR (httpcore2 resends below any other last stream id,
    but reads 0 as "none given")."""
    transport = _transport(ca)
    try:
        error = await _failure(transport, f"{server.url}/goaway-first", method=method)
        assert (error.code, error.details.get("reason")) == (
            ErrorCode.CONNECT_ERROR,
            UNPROCESSED,
        ), repr(error)
        assert await _fetch(transport, f"{server.url}/goaway-first", method=method) == b"hello"
        assert server.connections == 2
    finally:
        await transport.aclose()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_goaway_below_a_later_stream_resends_it_on_a_new_connection(
    server: HostileH2, ca: trustme.CA, method: str
) -> None:
    """Stream 1 answered, then GOAWAY with last stream id 1 for stream 3: httpcore2
    sends it again on a new connection, and the caller gets the answer."""
    transport = _transport(ca)
    try:
        assert await _fetch(transport, f"{server.url}/ok") == b"hello"
        assert await _fetch(transport, f"{server.url}/goaway-below", method=method) == b"hello"
        assert server.hits["/goaway-below"] == 2
        assert server.connections == 2
        assert transport.stats()["in_use"] == 0
    finally:
        await transport.aclose()


async def test_goaway_after_the_answer_opens_a_new_connection(
    server: HostileH2, ca: trustme.CA
) -> None:
    """The answer arrives whole; the next request goes on a new connection."""
    transport = _transport(ca)
    try:
        assert await _fetch(transport, f"{server.url}/answer-then-goaway") == b"hello"
        assert await _fetch(transport, f"{server.url}/ok") == b"hello"
        assert await _fetch(transport, f"{server.url}/ok") == b"hello"
        assert server.connections == 2
        assert transport.stats()["in_use"] == 0
    finally:
        await transport.aclose()


@STREAM
@pytest.mark.parametrize("case", sorted(LENGTHS))
async def test_a_length_unlike_the_data_is_an_invalid_message(
    server: HostileH2, ca: trustme.CA, case: str, stream: bool
) -> None:
    """RFC 9113 §8.1.1: content-length unlike the DATA received is malformed:
    PROTOCOL_ERROR ``invalid_message`` (h2's own error escaped untranslated)."""
    transport = _transport(ca)
    try:
        error = await _failure(transport, f"{server.url}{case}", stream=stream)
        assert (error.code, error.details.get("reason")) == (
            ErrorCode.PROTOCOL_ERROR,
            INVALID_MESSAGE,
        ), repr(error)
        assert await _fetch(transport, f"{server.url}/ok") == b"hello"
    finally:
        await transport.aclose()


@STREAM
@pytest.mark.parametrize("case", sorted(CONNECTION_FIELDS))
async def test_a_connection_specific_header_is_an_invalid_message(
    server: HostileH2, ca: trustme.CA, case: str, stream: bool
) -> None:
    """RFC 9113 §8.2.2: an answer with a connection-specific field is malformed (httpx2
    turns h2's check off and returned it as 200)."""
    transport = _transport(ca)
    try:
        error = await _failure(transport, f"{server.url}{case}", stream=stream)
        assert (error.code, error.details.get("reason")) == (
            ErrorCode.PROTOCOL_ERROR,
            INVALID_MESSAGE,
        ), repr(error)
        assert await _fetch(transport, f"{server.url}/ok") == b"hello"
    finally:
        await transport.aclose()


async def test_a_continuation_flood_is_cut_short(server: HostileH2, ca: trustme.CA) -> None:
    """CONTINUATION frames that never end the header block: PROTOCOL_ERROR long before
    the server runs out of frames (h2 keeps at most 64), not a head buffered forever."""
    transport = _transport(ca)
    try:
        error = await _failure(transport, f"{server.url}/continuation-flood")
        assert error.code is ErrorCode.PROTOCOL_ERROR, repr(error)
        assert not server.flood_ended
    finally:
        await transport.aclose()


async def test_a_server_that_never_answers_the_preface_times_out(ca: trustme.CA) -> None:
    """TLS, then no SETTINGS and no answer: READ_TIMEOUT, the slot given back."""
    transport = _transport(ca, TimeoutConfig(read=0.5))
    try:
        async with HostileH2(ca, silent=True) as silent:
            error = await _failure(transport, f"{silent.url}/ok")
        assert error.code is ErrorCode.READ_TIMEOUT, repr(error)
    finally:
        await transport.aclose()


async def test_max_concurrent_streams_zero_fails_with_a_bound(ca: trustme.CA) -> None:
    """SETTINGS_MAX_CONCURRENT_STREAMS=0: httpcore2 sends the first request before it
    reads the SETTINGS (refused: ``unprocessed``), and holds the next one back (h2
    refuses to open the stream: ``unprocessed`` too, it was a bare PROTOCOL_ERROR);
    never a wait without end."""
    transport = _transport(ca, TimeoutConfig(read=2, pool=2))
    try:
        async with HostileH2(ca, max_streams=0) as closed:
            for method in ("GET", "POST"):
                error = await _failure(transport, f"{closed.url}/ok", method=method)
                assert (error.code, error.details.get("reason")) == (
                    ErrorCode.CONNECT_ERROR,
                    UNPROCESSED,
                ), repr(error)
            assert closed.connections == 1
    finally:
        await transport.aclose()


async def _upload() -> AsyncIterator[bytes]:
    for _ in range(64):  # 4 MiB: past the 64 KiB stream window the server never opens
        yield b"x" * 65536


@pytest.mark.xfail(
    strict=True,
    reason="httpcore2 waits for flow-control window on a stream the server has reset "
    "(AsyncHTTP2Connection._wait_for_outgoing_flow never looks at the StreamReset): "
    "READ_TIMEOUT when the read timeout runs out, not the refusal",
)
async def test_refused_stream_during_an_upload_is_unprocessed(ca: trustme.CA) -> None:
    """REFUSED_STREAM on the request's head while its body is still being sent:
    CONNECT_ERROR ``unprocessed`` at once."""
    transport = _transport(ca, TimeoutConfig(read=2))
    try:
        async with HostileH2(ca, refuse_on_head=True) as refusing:
            request = HttpRequest("POST", f"{refusing.url}/ok", stream=_upload())
            with pytest.raises(FlextApiError) as caught:
                await _bounded(transport.send(request))
        assert transport.stats()["in_use"] == 0
        assert (caught.value.code, caught.value.details.get("reason")) == (
            ErrorCode.CONNECT_ERROR,
            UNPROCESSED,
        ), repr(caught.value)
    finally:
        await transport.aclose()
