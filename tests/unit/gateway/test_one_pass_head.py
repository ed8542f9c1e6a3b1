"""The gateway's one-pass response head: the same bytes and errors as uvicorn's own code."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flext_api.server import _protocol
from flext_api.server._protocol import plain_head, protocol_with_header_timeout
from tests.unit.gateway._recorder import Recorder

pytest.importorskip("httptools")

_OK = b"HTTP/1.1 200 OK\r\n"


def _serve_once(protocol_class: Any, request: bytes, start: dict[str, Any], body: bytes) -> Any:
    """What ``protocol_class`` writes when an app answers ``request`` with ``start``+``body``."""
    import uvicorn
    import uvicorn.server

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start)
        await send({"type": "http.response.body", "body": body})

    async def run() -> tuple[bytes, bool, str]:
        config = uvicorn.Config(
            app, http=protocol_class, server_header=False, date_header=False,
            access_log=False, log_level="critical", lifespan="off",
        )  # fmt: skip
        config.load()
        built_class: Any = config.http_protocol_class
        protocol = built_class(
            config=config, server_state=uvicorn.server.ServerState(), app_state={},
            _loop=asyncio.get_running_loop(),
        )  # fmt: skip
        transport = Recorder()
        protocol.connection_made(transport)
        protocol.data_received(request)
        for _ in range(5):
            await asyncio.sleep(0)
        cycle = type(protocol.cycle).__name__
        protocol.connection_lost(None)
        return bytes(transport.data), transport.closed, cycle

    return asyncio.run(run())


def _uvicorn_protocol() -> Any:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    return HttpToolsProtocol


_NAMES = st.sampled_from(
    [b"content-type", b"x-a", b"etag", b"content-length", b"Content-Length", b"connection",
     b"transfer-encoding", b"bad name", b"x:y", b"", b"via", b"123", b"x-\x7f"]
)  # fmt: skip
_VALUES = st.one_of(
    st.sampled_from([b"0", b"3", b"close", b"chunked", b"keep-alive", b"a\r\nb: c", b"a\nb",
                     b"a\rb", b"x\x00", b"tab\there", b"", b"-1", b"nan"]),
    st.binary(max_size=6),
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.lists(st.tuples(_NAMES, _VALUES), max_size=6),
    status=st.sampled_from([200, 204, 304, 404, 502]),
    method=st.sampled_from(["GET", "HEAD"]),
    http10=st.booleans(),
    body=st.sampled_from([b"", b"abc"]),
)
def test_same_bytes_and_outcome_as_uvicorn(
    headers: list[tuple[bytes, bytes]], status: int, method: str, http10: bool, body: bytes
) -> None:
    """Any head, valid or not: the gateway's protocol writes what uvicorn's writes."""
    version = "1.0" if http10 else "1.1"
    request = f"{method} / HTTP/{version}\r\nHost: gw\r\n\r\n".encode()
    start = {"type": "http.response.start", "status": status, "headers": headers}
    ours = _serve_once(protocol_with_header_timeout(10.0, parser="httptools"), request, start, body)
    theirs = _serve_once(_uvicorn_protocol(), request, start, body)
    assert ours[:2] == theirs[:2]
    assert ours[2] == "OnePassCycle"


def test_plain_heads_take_the_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain response is built by plain_head, and its bytes are uvicorn's."""
    built: list[bytes] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = plain_head(*args, **kwargs)
        built.append(result[0] if result is not None else b"")
        return result

    monkeypatch.setattr(_protocol, "plain_head", recording)
    start = {
        "type": "http.response.start", "status": 200,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
    }  # fmt: skip
    request = b"GET / HTTP/1.1\r\nHost: gw\r\n\r\n"
    gateway_protocol = protocol_with_header_timeout(10.0, parser="httptools")
    ours = _serve_once(gateway_protocol, request, start, b"ok")
    head = _OK + b"content-type: text/plain\r\ncontent-length: 2\r\n\r\n"
    assert built == [head]
    assert ours[0] == head + b"ok"
    assert ours[:2] == _serve_once(_uvicorn_protocol(), request, start, b"ok")[:2]


@pytest.mark.parametrize(
    "headers",
    [
        [(b"Content-Type", b"text/plain")],  # upper case: uvicorn lowers it
        [(b"x-a", b"a\r\nx-b: injected")],
        [(b"x-a", b"\x00")],
        [(b"x-a", b"a\nb")],
        [(b"x-a", b"a\rb")],
        [(b"x-a", b"\x7f")],
        [(b"x-\x7f", b"1")],
        [(b"bad name", b"1")],
        [(b"x:y", b"1")],
        [(b"transfer-encoding", b"chunked")],
        [(b"connection", b"close")],
        [(b"content-length", b"1"), (b"content-length", b"2")],
        [(b"content-length", b"one")],
        [("x-a", "text")],
        [(b"x-a", b"1", b"extra")],
        [],
    ],
)
def test_anything_but_a_plain_head_is_left_to_uvicorn(headers: list[Any]) -> None:
    """Names to lower, forbidden bytes, framing headers, odd shapes: None (uvicorn's code)."""
    assert plain_head(_OK, headers, keep_alive=True, may_chunk=True) is None


def test_framing_of_a_plain_head() -> None:
    """Content-Length is returned; without it the body is chunked unless it cannot be."""
    with_length = plain_head(_OK, [(b"content-length", b"12")], keep_alive=True, may_chunk=True)
    assert with_length == (_OK + b"content-length: 12\r\n\r\n", 12)
    chunked = plain_head(_OK, [(b"x-a", b"1")], keep_alive=False, may_chunk=True)
    assert chunked == (
        _OK + b"x-a: 1\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n",
        None,
    )
    bodiless = plain_head(_OK, [(b"x-a", b"tab\there")], keep_alive=True, may_chunk=False)
    assert bodiless == (_OK + b"x-a: tab\there\r\n\r\n", None)
