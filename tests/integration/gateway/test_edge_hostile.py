"""Edge policies against hostile or broken peers, through a real gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

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


async def test_a_failing_forward_auth_service_is_503_not_401(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """A 5xx from the auth service judged nothing: 503, never a credentials refusal."""
    gw = run_gateway(_forward(origin))
    status, headers, _ = await fetch(gw.url + "/echo", headers={"Authorization": "Bearer broken"})
    assert status == 503
    assert "WWW-Authenticate" not in headers
