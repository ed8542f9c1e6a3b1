"""An upstream that goes away (or answers) while a slow client's body is still coming.

nginx and Envoy fail the upstream exchange as soon as the upstream connection closes
while the request body is being proxied (502), and relay an early answer (a 413 the
upstream sent before reading the whole body) at once; either way the client's connection
is closed afterwards, the rest of its body unread. The gateway fails or relays at once
too, instead of waiting on the stalled client until ``per_try``. Real listener, raw
upstream that reads the head and part of the body, raw client that sends 1000 bytes of a
longer body and then stalls.

Not covered: closing the client's connection after such an answer (its body is left
unread). That needs a lingering close in the listener, or a client still sending gets a
reset instead of the answer; the listener keeps the connection (until its keep-alive
timeout) and drops what else arrives.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from flext_api.server._protocol import httptools_available
from tests.integration.gateway.conftest import LiveGateway, basic_config
from tests.integration.gateway.upstream import listening

pytestmark = pytest.mark.integration

Run = Callable[[dict[str, Any]], LiveGateway]
PARSERS = ["h11", *(["httptools"] if httptools_available() else [])]
# Far past the test's own bound (30 s): an answer before it is the fix's, not a timeout's.
_PATIENT = {"connect": 5, "per_try": 60, "total": 120, "idle": 60}
_PART = b"b" * 1000
_HEADS = {
    "length": b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + _PART,
    "chunked": b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"3e8\r\n"
    + _PART
    + b"\r\n",
}
_EARLY = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\n"


@dataclass
class _Quitter:
    """An upstream that reads a request head and some body, then does ``how``: ``close``
    (FIN), ``reset`` (RST), ``answer`` (a 413 and a close) or ``answer-open`` (a 413,
    the connection left open)."""

    how: str
    url: str = ""
    connections: int = 0
    got_body: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            assert await reader.read(65536)  # part of the body
            self.got_body.set()
            if self.how == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            if self.how.startswith("answer"):
                close = b"" if self.how == "answer-open" else b"Connection: close\r\n"
                writer.write(_EARLY + close + b"\r\ntoo large")
                await writer.drain()
            if self.how == "answer-open":
                while await reader.read(65536):  # until the gateway closes it
                    pass
        finally:
            writer.close()
            self.closed.set()


def _config(upstream: _Quitter, parser: str) -> dict[str, Any]:
    config = basic_config(upstream.url, timeouts=_PATIENT, retry={"retries": 0})
    config["clusters"][0]["health"] = {"active": False}  # only the clients' requests
    config["listeners"] = [{"parser": parser}]
    return config


async def _stalled_post(gw: LiveGateway, framing: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """Send a head and 1000 body bytes, then nothing: the answer (status, headers, body).
    Times out on a gateway that waits for the rest of the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(_HEADS[framing])
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        status_line, *lines = head[:-4].split(b"\r\n")
        headers = {n.strip().lower(): v.strip() for n, _, v in (x.partition(b":") for x in lines)}
        body = await asyncio.wait_for(reader.readexactly(int(headers[b"content-length"])), 30)
    finally:
        writer.close()
    return int(status_line.split()[1]), headers, body


async def _settled(gw: LiveGateway) -> dict[str, Any]:
    """The upstream pool's figures once nothing is in flight (polled, bounded)."""
    cluster = gw.gateway.snapshot.clusters["svc"]
    stats: dict[str, Any] = {}
    for _ in range(1000):
        stats = cluster.transport.stats()
        if gw.gateway.in_flight == 0 and stats["in_use"] == 0 and stats["open"] == 0:
            break
        await asyncio.sleep(0.01)
    assert gw.gateway.in_flight == 0
    assert set(cluster.in_flight.values()) <= {0}
    return stats


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("how", ["close", "reset"])
async def test_an_upstream_gone_while_the_client_stalls_is_a_prompt_502(
    run_gateway: Run, parser: str, framing: str, how: str
) -> None:
    """The upstream connection lost mid-body answers 502 ``upstream_reset`` at once (not
    504 after ``per_try``), and the exchange leaves nothing behind."""
    async with listening(_Quitter(how)) as upstream:
        gw = run_gateway(_config(upstream, parser))
        status, headers, _ = await _stalled_post(gw, framing)
        assert (status, headers[b"x-gateway-reason"]) == (502, b"upstream_reset")
        assert upstream.got_body.is_set()
        stats = await _settled(gw)
        assert (stats["in_use"], stats["open"], stats["idle"]) == (0, 0, 0)


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("how", ["answer", "answer-open"])
async def test_an_early_answer_while_the_client_stalls_is_relayed(
    run_gateway: Run, parser: str, framing: str, how: str
) -> None:
    """An upstream's answer before the end of the body is relayed at once, and the
    upstream connection is closed, never reused."""
    async with listening(_Quitter(how)) as upstream:
        gw = run_gateway(_config(upstream, parser))
        status, headers, body = await _stalled_post(gw, framing)
        assert (status, body) == (413, b"too large")
        assert b"x-gateway-reason" not in headers
        stats = await _settled(gw)
        assert (stats["in_use"], stats["open"], stats["idle"]) == (0, 0, 0)
        await asyncio.wait_for(upstream.closed.wait(), 30)  # the gateway closed its side
        assert upstream.connections == 1
