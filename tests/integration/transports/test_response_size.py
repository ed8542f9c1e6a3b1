"""A buffered response body past ``max_response_size`` is RESPONSE_TOO_LARGE on every transport.

The server on 127.0.0.1 answers ``/<kind>/<bytes>``:

- ``length``: ``Content-Length: <bytes>`` and that many bytes;
- ``chunked``: the same bytes, chunked (no length announced);
- ``gzip``: ``<bytes>`` zeros gzipped (about a thousandth of the size on the wire),
  chunked: a decompression bomb when ``<bytes>`` is large;
- ``huge``: ``Content-Length: <bytes>``, then 128 KiB of it, and nothing more until the
  client hangs up: the announced length alone must fail the request.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable

import pytest

from flext_api import ClientConfig, ErrorCode, FlextApiError, HttpRequest
from flext_api.client import FlextApiClient
from flext_api.transports import AiohttpTransport, H1Transport, Transport

LIMIT = 1 << 20  # 1 MiB
BOMB = 64 << 20  # 64 MiB of zeros, ~64 KiB gzipped


def _httpx(limit: int | None) -> Transport:
    from flext_api.transports import HttpxTransport

    return HttpxTransport(http2=False, max_response_size=limit)


def _pyreqwest(limit: int | None) -> Transport:
    from flext_api.transports import PyreqwestTransport

    return PyreqwestTransport(max_response_size=limit)


TRANSPORTS: dict[str, Callable[[int | None], Transport]] = {
    "aiohttp": lambda limit: AiohttpTransport(max_response_size=limit),
    "h1": lambda limit: H1Transport(max_response_size=limit),
    "httpx": _httpx,
    "pyreqwest": _pyreqwest,
}
# H1Transport passes bodies on as they are (it is the gateway's proxy client).
DECOMPRESSING = sorted(set(TRANSPORTS) - {"h1"})


def _chunked(body: bytes, size: int = 1 << 16) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
             for i in range(0, len(body), size)]  # fmt: skip
    return b"".join(parts) + b"0\r\n\r\n"


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip.compress(bytes(BOMB), compresslevel=9)


@pytest.fixture
async def server(bomb: bytes) -> AsyncIterator[tuple[str, list[str]]]:
    """The base URL, and the request lines the server saw."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                seen.append(line.decode().strip())
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                _, kind, size = line.split()[1].decode().split("/")
                n = int(size)
                if kind == "length":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n + bytes(n))
                elif kind == "chunked":
                    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    writer.write(head + _chunked(bytes(n)))
                elif kind == "gzip":
                    head = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
                    writer.write(head + _chunked(bomb if n == BOMB else gzip.compress(bytes(n))))
                else:  # huge
                    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n
                    writer.write(head + bytes(128 << 10))
                    await writer.drain()
                    await reader.read()  # until the client closes
                    break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up on a body it refused
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", seen
    srv.close()
    await srv.wait_closed()


async def _too_large(transport: Transport, url: str) -> FlextApiError:
    with pytest.raises(FlextApiError) as caught:
        await transport.send(HttpRequest("GET", url))
    err = caught.value
    assert err.code is ErrorCode.RESPONSE_TOO_LARGE, err
    assert err.details["limit"] == LIMIT
    assert "max_response_size" in str(err)
    return err


@pytest.mark.parametrize("kind", ["length", "chunked"])
@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_body_past_the_limit_fails_and_the_transport_goes_on(
    server: tuple[str, list[str]], name: str, kind: str
) -> None:
    """A body one byte past the limit fails; one at the limit, and the next request, pass."""
    base, _ = server
    transport = TRANSPORTS[name](LIMIT)
    try:
        await _too_large(transport, f"{base}/{kind}/{LIMIT + 1}")
        at_limit = await transport.send(HttpRequest("GET", f"{base}/{kind}/{LIMIT}"))
        assert at_limit.status_code == 200
        assert at_limit.content == bytes(LIMIT)
        assert transport.stats()["in_use"] == 0  # the failed request gave its slot back
    finally:
        await transport.aclose()


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_announced_length_fails_before_the_body(
    server: tuple[str, list[str]], name: str
) -> None:
    """``Content-Length`` past the limit fails without reading the body (the server
    sends 128 KiB of the 1 GiB it announces, then waits)."""
    base, _ = server
    transport = TRANSPORTS[name](LIMIT)
    try:
        err = await _too_large(transport, f"{base}/huge/{LIMIT * 1024}")
        assert err.details["declared"] == LIMIT * 1024
    finally:
        await transport.aclose()


@pytest.mark.parametrize("name", DECOMPRESSING)
async def test_decompression_bomb_is_stopped(
    server: tuple[str, list[str]], bomb: bytes, name: str
) -> None:
    """64 MiB of gzipped zeros (~64 KiB on the wire) fail at the 1 MiB cap, decoded.

    The wire size alone is under the cap: only counting the decoded bytes stops it.
    """
    base, _ = server
    assert len(bomb) < LIMIT
    transport = TRANSPORTS[name](LIMIT)
    try:
        err = await _too_large(transport, f"{base}/gzip/{BOMB}")
        assert "declared" not in err.details
        small = await transport.send(HttpRequest("GET", f"{base}/gzip/1000"))
        assert small.content == bytes(1000)  # decoded under the cap: passes
    finally:
        await transport.aclose()


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
async def test_streamed_and_uncapped_bodies_are_not_capped(
    server: tuple[str, list[str]], name: str
) -> None:
    """A streamed response is read at the caller's pace; ``None`` turns the cap off."""
    base, _ = server
    capped = TRANSPORTS[name](LIMIT)
    uncapped = TRANSPORTS[name](None)
    try:
        streamed = await capped.send(HttpRequest("GET", f"{base}/chunked/{4 * LIMIT}"), stream=True)
        total = 0
        async for chunk in streamed.aiter_bytes():
            total += len(chunk)
        await streamed.aclose()
        assert total == 4 * LIMIT
        whole = await uncapped.send(HttpRequest("GET", f"{base}/length/{4 * LIMIT}"))
        assert len(whole.content) == 4 * LIMIT
    finally:
        await capped.aclose()
        await uncapped.aclose()


@pytest.mark.parametrize("transport", ["aiohttp", "httpx", "pyreqwest"])
async def test_client_config_caps_and_does_not_retry(
    server: tuple[str, list[str]], transport: str
) -> None:
    """``ClientConfig.max_response_size`` reaches the client's transport; the failure is
    not retried (the next answer would be as large)."""
    base, seen = server
    config = ClientConfig(max_response_size=LIMIT, transport=transport)  # type: ignore[arg-type]
    async with FlextApiClient(base, config=config) as client:
        result = await client.get(f"/gzip/{BOMB}")
    assert result.is_failure
    assert result.error_code is ErrorCode.RESPONSE_TOO_LARGE
    assert seen.count(f"GET /gzip/{BOMB} HTTP/1.1") == 1


def test_default_cap_is_100_mib() -> None:
    assert ClientConfig().max_response_size == 100 * 1024 * 1024
    assert ClientConfig(max_response_size=None).max_response_size is None
    with pytest.raises(ValueError, match="max_response_size"):
        ClientConfig(max_response_size=0)
