"""Fresh cache hits answered by the gateway's protocol, without an ASGI call.

Through a real gateway listener (httptools) to a real origin: the answer is the one the
app gives, byte for byte but for ``Age``; it is counted as a hit; and every request the
fast path must leave to the app (a client directive, ``HEAD``, an absolute-form target
naming another host, a request pipelined behind a slow one) still gets the app's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.gateway.conftest import LiveGateway
from tests.integration.gateway.edge_origin import EdgeOrigin
from tests.integration.gateway.edge_support import edge_config, origin

pytestmark = pytest.mark.integration

__all__ = ["origin"]

Run = Callable[[dict[str, Any]], LiveGateway]


async def _exchange(gw: LiveGateway, payload: bytes, answers: int) -> list[bytes]:
    """Write ``payload`` on one connection; read ``answers`` whole answers (each framed by
    its ``Content-Length``), or until the gateway closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(payload)
        await writer.drain()
        out: list[bytes] = []
        for _ in range(answers):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            no_body = payload.startswith(b"HEAD ")
            body = b"" if no_body else await asyncio.wait_for(reader.readexactly(length), 10)
            out.append(head + body)
        return out
    finally:
        writer.close()


def _get(path: str, *extra: str, method: str = "GET") -> bytes:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: gw", *extra, "", ""]).encode()


def _without_age(answer: bytes) -> bytes:
    return b"\r\n".join(line for line in answer.split(b"\r\n") if not line.startswith(b"age:"))


async def _warm(gw: LiveGateway, origin: EdgeOrigin, path: str) -> None:
    """Store ``path`` (a miss), then read it once through the app (which memoizes it)."""
    name = path.rsplit("/", 1)[1]
    await _exchange(gw, _get(path), 1)
    for _ in range(100):  # the store is written once the answer is out
        await _exchange(gw, _get(path), 1)
        if origin.hits[name] == 1:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} was never served from the cache")


def count_edge_calls(gw: LiveGateway, method: str) -> list[int]:
    """Count the calls of the gateway edge's ``method`` from now on."""
    edge: Any = gw.gateway.edge
    calls: list[int] = []
    original = getattr(edge, method)

    def counted(*args: Any) -> Any:
        calls.append(1)
        return original(*args)

    setattr(edge, method, counted)
    return calls


def _count_app_calls(gw: LiveGateway) -> list[int]:
    """Count the requests that reach the edge chain from now on (the app's path)."""
    return count_edge_calls(gw, "run")


async def test_a_fresh_hit_skips_the_app_and_gets_its_answer(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """The protocol's answer to a fresh hit is the app's, byte for byte but for Age."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    await _warm(gw, origin, "/c/a")  # the miss that stores it
    calls = _count_app_calls(gw)
    request = _get("/c/a", "X-Request-ID: rid-1")
    [now] = await _exchange(gw, request, 1)
    assert calls == []
    edge: Any = gw.gateway.edge
    edge.hit_now = lambda *args: None  # the fast path declines: the app answers
    [via_app] = await _exchange(gw, request, 1)
    assert calls == [1]
    assert now.startswith(b"HTTP/1.1 200 OK\r\n") and b"x-request-id: rid-1\r\n" in now
    assert _without_age(now) == _without_age(via_app)
    assert origin.hits["a"] == 1


async def test_fresh_hits_are_counted_as_the_app_counts_them(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """Hits answered by the protocol are in the cache and request metrics."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    await _warm(gw, origin, "/c/m")
    registry = gw.gateway.metrics.registry

    def counts() -> tuple[float | None, float | None]:
        hits = registry.get_sample_value(
            "gateway_cache_requests_total", {"route": "all", "outcome": "hit"}
        )
        requests = registry.get_sample_value(
            "gateway_requests_total",
            {"route": "all", "cluster": "svc", "status_class": "2xx", "reason": ""},
        )
        return hits, requests

    calls = _count_app_calls(gw)
    await _exchange(gw, _get("/c/m") * 3, 3)
    assert calls == []
    for _ in range(100):  # counted right after each answer is written, on the gateway's loop
        if counts() == (4.0, 5.0):
            break
        await asyncio.sleep(0.01)
    assert counts() == (4.0, 5.0)  # the miss and one hit through the app, then these three


@pytest.mark.parametrize(
    ("request_bytes", "reaches_origin"),
    [
        (_get("/c/d", "Cache-Control: no-cache"), True),
        (_get("/c/d", "Range: bytes=0-3"), True),
        (_get("/c/d", method="HEAD"), False),
        (_get("/c/d", "Connection: close"), False),
        (b"GET http://elsewhere/c/d HTTP/1.1\r\nHost: gw\r\n\r\n", True),
    ],
    ids=["no-cache", "range", "head", "connection-close", "absolute-form-other-host"],
)
async def test_requests_the_fast_path_leaves_to_the_app(
    origin: EdgeOrigin, run_gateway: Run, request_bytes: bytes, reaches_origin: bool
) -> None:
    """A client directive, a range, HEAD, a closing connection or another host in the
    target: the app answers, by its own rules (the origin is asked where they say so)."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    await _warm(gw, origin, "/c/d")
    calls = _count_app_calls(gw)
    [answer] = await _exchange(gw, request_bytes, 1)
    assert calls == [1]
    assert answer.split(b"\r\n", 1)[0] in (b"HTTP/1.1 200 OK", b"HTTP/1.1 206 Partial Content")
    assert origin.hits["d"] == (2 if reaches_origin else 1)


async def test_a_hit_pipelined_behind_a_slow_request_keeps_its_place(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """Hit, slow miss, hit in one write: three answers in that order."""
    gw = run_gateway(edge_config(origin.url, cache=True))
    await _warm(gw, origin, "/c/h")
    answers = await _exchange(gw, _get("/c/h") + _get("/c/s?ms=200") + _get("/c/h"), 3)
    bodies = [answer.split(b"\r\n\r\n", 1)[1] for answer in answers]
    assert bodies == [
        b'{"name": "h", "hit": 1}',
        b'{"name": "s", "hit": 1}',
        b'{"name": "h", "hit": 1}',
    ]
