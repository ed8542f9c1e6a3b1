"""Transformations against hostile clients and upstreams, through a real gateway."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest
from yarl import URL

from tests.integration.gateway.conftest import LiveGateway
from tests.integration.gateway.edge_origin import EdgeOrigin
from tests.integration.gateway.edge_support import edge_config, fetch, origin
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter

pytestmark = pytest.mark.integration

__all__ = ["origin"]

Run = Callable[[dict[str, Any]], LiveGateway]

DENY = {"response_deny": ["secret"]}


def serve(fault: FaultServer, path: str, status: int, body: bytes, headers: list[tuple[str, str]]
          ) -> None:  # fmt: skip
    """Add ``path`` to the fault server: always this answer (``send`` adds the length)."""

    async def handler(req: Request, w: ResponseWriter) -> None:
        await w.send(status, body, headers)

    fault.add_route(path, handler)


async def test_a_query_rewrite_sends_the_other_parameters_byte_for_byte(
    fault: FaultServer, run_gateway: Run
) -> None:
    """Parameters no rule names reach the upstream as the client wrote them: the query
    was decoded and re-encoded whole, so %FF became %EF%BF%BD, ';' became %3B and a bare
    'flag' became 'flag='; names are still matched decoded (to%6Ben is token)."""
    rules = {"query_remove": ["token"], "query_add": {"v": "2 &"}}
    gw = run_gateway(edge_config(fault.url, transform=rules))
    query = "q=%FF&a=1;b=2&flag&x=%26y%3Dz&x=2&token=1&to%6Ben=2&c=x+y&v=1"
    status, _, _ = await fetch(URL(f"{gw.url}/echo?{query}", encoded=True))
    assert status == 200
    assert fault.requests[-1].query == "q=%FF&a=1;b=2&flag&x=%26y%3Dz&x=2&c=x+y&v=2+%26"


async def test_a_second_content_type_cannot_carry_json_past_the_filter(
    fault: FaultServer, run_gateway: Run
) -> None:
    """An upstream sending ``text/plain`` and ``application/json`` got its JSON body sent
    unfiltered (only the first Content-Type was read); any JSON type makes it filtered."""
    body = b'{"id": 1, "secret": "s3"}'
    headers = [("Content-Type", "text/plain"), ("Content-Type", "application/json")]
    serve(fault, r"/tf-two-types", 200, body, headers)
    gw = run_gateway(edge_config(fault.url, transform=DENY))
    status, _, got = await fetch(gw.url + "/tf-two-types")
    assert (status, orjson.loads(got)) == (200, {"id": 1})


async def test_a_gzip_bomb_is_refused_not_inflated(fault: FaultServer, run_gateway: Run) -> None:
    """A small gzip body that inflates past max_json_bytes is the gateway's 502."""
    bomb = gzip.compress(b'{"a": "' + b"0" * 5_000_000 + b'"}')
    serve(fault, r"/tf-bomb", 200, bomb, [("Content-Type", "application/json"),
                                          ("Content-Encoding", "gzip")])  # fmt: skip
    gw = run_gateway(edge_config(fault.url, transform={**DENY, "max_json_bytes": 10_000}))
    status, headers, _ = await fetch(gw.url + "/tf-bomb")
    assert (status, headers["X-Gateway-Reason"]) == (502, "unfilterable_response")


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip, gzip"])
async def test_a_coding_the_filter_cannot_read_is_refused(
    coding: str, fault: FaultServer, run_gateway: Run
) -> None:
    """br, zstd or two codings: the body is not sent, the client gets a 502."""
    serve(fault, rf"/tf-coding-{coding[:4]}", 200, b"\x00garbage",
          [("Content-Type", "application/json"), ("Content-Encoding", coding)])  # fmt: skip
    gw = run_gateway(edge_config(fault.url, transform=DENY))
    status, headers, body = await fetch(gw.url + f"/tf-coding-{coding[:4]}")
    assert (status, headers["X-Gateway-Reason"]) == (502, "unfilterable_response")
    assert b"garbage" not in body


async def test_a_chunked_json_answer_is_filtered_and_given_a_length(
    fault: FaultServer, run_gateway: Run
) -> None:
    """A chunked upstream body is held whole, filtered, and sent with its own length."""

    async def handler(req: Request, w: ResponseWriter) -> None:
        await w.send_head(200, [("Content-Type", "application/json"),
                                ("Transfer-Encoding", "chunked")])  # fmt: skip
        await w.write_chunk(b'{"id": 1, "sec')
        await w.write_chunk(b'ret": {"deep": [1, "}"]}, "name": "n"}')
        await w.end_chunks()

    fault.add_route(r"/tf-chunked", handler)
    gw = run_gateway(edge_config(fault.url, transform=DENY))
    status, headers, body = await fetch(gw.url + "/tf-chunked")
    assert (status, orjson.loads(body)) == (200, {"id": 1, "name": "n"})
    assert int(headers["Content-Length"]) == len(body)


async def test_a_204_json_answer_passes_with_no_body(fault: FaultServer, run_gateway: Run) -> None:
    """A 204 labelled JSON has no body to filter: it passes as a 204."""
    serve(fault, r"/tf-204", 204, b"", [("Content-Type", "application/json")])
    gw = run_gateway(edge_config(fault.url, transform=DENY))
    status, _, body = await fetch(gw.url + "/tf-204")
    assert (status, body) == (204, b"")


async def test_an_event_stream_on_a_filtered_route_is_not_held(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """SSE is not JSON: each event reaches the client while the stream is still open."""
    gw = run_gateway(edge_config(origin.url, transform=DENY))
    async with aiohttp.ClientSession() as session, session.get(gw.url + "/sse") as response:
        origin.release("one")
        first = await response.content.readuntil(b"\n\n")
        origin.release("end")
        rest = await response.read()
    assert (first, rest) == (b"data: one\n\n", b"")


@pytest.mark.parametrize("name", ["Host", "content-length", "Transfer-Encoding"])
def test_removing_a_framing_header_is_a_config_error(name: str) -> None:
    """Removing Content-Length sent the upstream an empty body (the client's bytes lost),
    removing Host a request RFC 9112 forbids: such a rule is refused when loaded."""
    from pydantic import ValidationError

    from flext_api.gateway._edge_config import TransformConfig

    with pytest.raises(ValidationError, match=f"cannot remove {name}"):
        TransformConfig(request_headers_remove=("X-Other", name))
