"""The gateway's edge never forwards an empty identity: a JWT naming no subject is
refused, and a forward-auth answer without one sends no subject header upstream
(real listener, uvicorn on 127.0.0.1)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from tests.integration.gateway.conftest import LiveGateway, run_gateway
from tests.integration.gateway.edge_origin import EdgeOrigin
from tests.integration.gateway.edge_support import edge_config, fetch, origin

pytestmark = pytest.mark.integration

__all__ = ["origin", "run_gateway"]

Run = Callable[[dict[str, Any]], LiveGateway]
SECRET = "a-test-secret-of-at-least-thirty-two-bytes!"


def _config(origin_url: str) -> dict[str, Any]:
    edge = {"auth": {"jwt": {"jwt_secret": SECRET}}}
    return edge_config(origin_url, edge=edge, auth={"methods": ["jwt"]})


@pytest.mark.parametrize(
    "claims", [{}, {"sub": ""}, {"sub": "\r\n"}], ids=["missing", "empty", "control-only"]
)
async def test_jwt_naming_no_subject_is_refused_at_the_edge(
    claims: dict[str, Any], origin: EdgeOrigin, run_gateway: Run
) -> None:
    """No sub, an empty sub, or one made only of control characters: 401 invalid_token and
    nothing reaches the upstream (it used to get X-Auth-Subject with an empty value)."""
    gw = run_gateway(_config(origin.url))
    token = jwt.encode({"exp": int(time.time()) + 300, **claims}, SECRET, algorithm="HS256")
    status, headers, _ = await fetch(gw.url + "/echo", headers={"Authorization": "Bearer " + token})
    assert status == 401
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert origin.requests == []


async def test_subject_header_is_sent_for_a_jwt_with_sub(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """Control: a token with sub reaches the upstream with X-Auth-Subject set to it."""
    gw = run_gateway(_config(origin.url))
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 300}, SECRET, algorithm="HS256")
    status, _, _ = await fetch(gw.url + "/echo", headers={"Authorization": "Bearer " + token})
    assert (status, origin.requests[-1]["headers"]["x-auth-subject"]) == (200, "alice")


async def test_forward_auth_answer_without_subject_sends_no_subject_header(
    origin: EdgeOrigin, run_gateway: Run
) -> None:
    """A forward-auth 2xx without its subject header: the upstream gets X-Auth-Method but
    no X-Auth-Subject (it used to get one with an empty value), and a client-sent one is
    still dropped."""
    edge = {"auth": {"forward": {"url": origin.url + "/auth", "copy_headers": ["x-user"]}}}
    gw = run_gateway(edge_config(origin.url, edge=edge, auth={"methods": ["forward"]}))
    forged = {"Authorization": "Bearer utf8", "X-Auth-Subject": "root"}
    status, _, _ = await fetch(gw.url + "/echo", headers=forged)
    seen = origin.requests[-1]["headers"]
    assert (status, seen["x-auth-method"]) == (200, "forward")
    assert "x-auth-subject" not in seen
