"""Edge policies against hostile or broken peers, through a real gateway."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from flext_api.server._logging import make_json_logger
from tests._poll import eventually
from tests.integration.gateway.conftest import LiveGateway
from tests.integration.gateway.edge_origin import EdgeOrigin
from tests.integration.gateway.edge_support import edge_config, fetch, origin

pytestmark = pytest.mark.integration

__all__ = ["origin"]

Run = Callable[[dict[str, Any]], LiveGateway]


async def test_the_field_filter_keeps_numbers_as_the_upstream_wrote_them(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """Kept members are copied byte for byte: no 64-bit or double rounding of numbers."""
    gw = run_gateway(edge_config(origin.url, transform={"response_deny": ["secret"]}))
    document = '{"id": 18446744073709551617, "price": 0.10000000000000000001, "secret": "s"}'
    status, headers, body = await fetch(gw.url + "/raw", params={"b": document})
    assert status == 200
    assert body == b'{"id":18446744073709551617,"price":0.10000000000000000001}'
    assert headers["Content-Length"] == str(len(body))


async def test_asking_for_gzip_does_not_step_around_the_field_filter(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """A client's Accept-Encoding: gzip is not passed on when the route filters fields."""
    gw = run_gateway(edge_config(origin.url, transform={"response_deny": ["secret"]}))
    query = {"b": '{"id": 1, "secret": "s"}', "gz": "1"}
    status, headers, body = await fetch(
        gw.url + "/raw", params=query, headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert (status, body) == (200, b'{"id":1}')
    assert "Content-Encoding" not in headers


async def test_a_gzip_body_the_upstream_sends_anyway_is_filtered(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """An upstream that gzips whatever the request accepts: the body is decoded and
    filtered (it passed through untouched, the denied field in it), and goes out plain."""
    gw = run_gateway(edge_config(origin.url, transform={"response_deny": ["secret"]}))
    query = {"b": '{"id": 1, "secret": "s"}', "ce": "gzip"}
    status, headers, body = await fetch(gw.url + "/raw", params=query, auto_decompress=False)
    assert (status, body) == (200, b'{"id":1}')
    assert "Content-Encoding" not in headers and headers["Content-Length"] == "8"


@pytest.mark.parametrize(
    ("query", "transform"),
    [
        ({"b": '{"id": 1, "secret": "' + "x" * 64 + '"}'}, {"max_json_bytes": 32}),
        ({"b": '{"id": 1, "secret": "s"}', "ce": "br"}, {}),
        ({"b": '{"id": 1, "secret": "s"', "ct": "application/vnd.api+json"}, {}),
        ({"b": '[{"id": 1, "secret": "s"}]'}, {"response_allow": ["id"]}),
    ],
    ids=["too-big", "unknown-coding", "invalid-json", "array-under-allow"],
)
async def test_a_body_the_field_filter_cannot_read_is_a_502(
    origin: EdgeOrigin, run_gateway: Run, query: dict[str, str], transform: dict[str, Any]
) -> None:
    """The filter fails closed: what it cannot read may hold the denied field, so the
    client gets the gateway's 502 and none of the body (it got the body unfiltered)."""
    rules = {"response_deny": ["secret"], **transform}
    gw = run_gateway(edge_config(origin.url, transform=rules))
    status, headers, body = await fetch(gw.url + "/raw", params=query, auto_decompress=False)
    assert (status, headers["X-Gateway-Reason"]) == (502, "unfilterable_response")
    assert b'"s"' not in body and b"xxxx" not in body
    assert orjson.loads(body)["reason"] == "unfilterable_response"


async def test_on_unreadable_pass_sends_what_the_filter_cannot_read(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """``on_unreadable: pass`` is the opt-out: such a body is sent as it came."""
    rules = {"response_deny": ["secret"], "max_json_bytes": 8, "on_unreadable": "pass"}
    gw = run_gateway(edge_config(origin.url, transform=rules))
    status, _, body = await fetch(gw.url + "/raw", params={"b": '{"id": 1, "secret": "s"}'})
    assert (status, body) == (200, b'{"id": 1, "secret": "s"}')


def _forward(origin: EdgeOrigin) -> dict[str, Any]:
    edge = {"auth": {"forward": {"url": origin.url + "/auth", "copy_headers": ["x-user"]}}}
    return edge_config(origin.url, edge=edge, auth={"methods": ["forward"]})


async def test_forward_auth_copies_every_value_of_a_utf8_header(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """A copied header with UTF-8 bytes and two values: both reach the upstream, not a 500."""
    gw = run_gateway(_forward(origin))
    status, _, _ = await fetch(gw.url + "/echo", headers={"Authorization": "Bearer utf8"})
    assert status == 200
    assert origin.requests[-1]["headers"]["x-user"] == "z\u00fcr\u20ac,second"


@pytest.mark.parametrize("token", ["broken", "throttled", "moved"])
async def test_a_failing_forward_auth_service_is_503_not_401(
    origin: EdgeOrigin, run_gateway: Run, token: str
) -> None:
    """A 5xx, a 429 or a redirect from the auth service judged nothing: 503
    auth_unavailable, never a credentials refusal (429 and 3xx were a 401)."""
    gw = run_gateway(_forward(origin))
    status, headers, _ = await fetch(gw.url + "/echo", headers={"Authorization": f"Bearer {token}"})
    assert (status, headers["X-Gateway-Reason"]) == (503, "auth_unavailable")
    assert "WWW-Authenticate" not in headers


def _dead_redis() -> str:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


def _recorded(gw: LiveGateway) -> io.StringIO:
    """The gateway's access log, from now on, as JSON lines in memory."""
    stream = io.StringIO()
    gw.gateway.access_log = make_json_logger(stream, name="flext_api.gateway")
    return stream


def _logged(log: io.StringIO) -> list[dict[str, Any]]:
    """The access-log records of requests written to ``log``."""
    lines: list[dict[str, Any]] = [orjson.loads(line) for line in log.getvalue().splitlines()]
    return [line for line in lines if line.get("event") == "request"]


def _refusing(reason: str, origin: EdgeOrigin) -> dict[str, Any]:
    """A gateway whose route refuses ``GET /echo`` (made twice) for ``reason``."""
    forward = {"auth": {"forward": {"url": origin.url + "/auth"}}}
    if reason == "rate_limited":
        return edge_config(origin.url, rate_limits=[{"limit": "1/minute"}])
    if reason == "rate_limit_unavailable":
        limit = {"limit": "5/minute", "store": "redis", "on_store_error": "closed"}
        edge = {"redis_url": _dead_redis()}
        return edge_config(origin.url, edge=edge, rate_limits=[limit])
    return edge_config(origin.url, edge=forward, auth={"methods": ["forward"]})


# The reason, its status and the forward-auth service's verdict (see EdgeOrigin /auth).
REFUSALS = [
    ("rate_limited", 429, None),
    ("rate_limit_unavailable", 503, None),
    ("unauthorized", 401, None),
    ("forbidden", 403, "Bearer banned"),
    ("auth_unavailable", 503, "Bearer broken"),
]


@pytest.mark.parametrize(("reason", "status", "authorization"), REFUSALS)
async def test_an_edge_refusal_carries_its_reason(
    reason: str, status: int, authorization: str | None, origin: EdgeOrigin, run_gateway: Run
) -> None:
    """An edge policy's refusal is the gateway's, like a core one: the reason is in
    X-Gateway-Reason, the problem's ``reason`` and the access log."""
    gw = run_gateway(_refusing(reason, origin))
    log = _recorded(gw)
    headers = {"Authorization": authorization} if authorization else {}
    await fetch(gw.url + "/echo", headers=headers)  # spends a limit of 1
    got, answer, body = await fetch(gw.url + "/echo", headers=headers)
    assert (got, answer["X-Gateway-Reason"]) == (status, reason)
    assert answer["Content-Type"] == "application/problem+json"
    assert orjson.loads(body)["reason"] == reason
    # The record is written once the answer went out: it may trail the client's read.
    assert await eventually(lambda: len(_logged(log)) == 2)
    logged = _logged(log)[-1]
    assert (logged["status"], logged["reason"], logged["route"]) == (status, reason, "all")


async def test_a_concurrency_refusal_carries_its_reason(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """The in-flight limit's 503 says concurrency_limited (header, body, access log)."""
    gw = run_gateway(edge_config(origin.url, concurrency=1))
    log = _recorded(gw)
    slow = asyncio.create_task(fetch(gw.url + "/c/slow?ms=1500&cc=no-store"))
    assert await eventually(lambda: origin.hits["slow"] > 0)
    status, headers, body = await fetch(gw.url + "/echo")
    await slow
    assert (status, headers["X-Gateway-Reason"]) == (503, "concurrency_limited")
    assert headers["Retry-After"] == "1"
    assert orjson.loads(body)["reason"] == "concurrency_limited"
    assert await eventually(lambda: any(r["path"] == "/echo" for r in _logged(log)))
    logged = [r for r in _logged(log) if r["path"] == "/echo"]
    assert [(r["status"], r["reason"]) for r in logged] == [(503, "concurrency_limited")]
