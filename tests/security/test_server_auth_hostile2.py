"""Hostile inputs to the factory's auth, second round: non-ASCII API keys, time claims
that are not numbers, JWKS keys without ``alg``, concurrent JWKS misses, odd realms."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import time
from typing import Annotated, Any

import jwt
import pytest
from fastapi import Depends, WebSocket
from pydantic import SecretStr
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from flext_api import ServerConfig
from flext_api._server_config import AuthConfig
from flext_api.server import (
    JwksCache,
    Principal,
    create_fastapi_app,
    make_json_logger,
    require_websocket_auth,
)
from flext_api.testing import FakeClock
from tests.security.apps import secure_app
from tests.server import keys
from tests.server.helpers import records, serve

HS_SECRET = "s" * 32


def _hs256_raw(payload: bytes) -> str:
    """An HS256 token over ``payload`` as given (JSON PyJWT would not write)."""
    header = keys.b64(b'{"alg":"HS256","typ":"JWT"}')
    signing_input = f"{header}.{keys.b64(payload)}"
    signature = hmac.new(HS_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{keys.b64(signature)}"


# --- API keys are compared as the bytes sent ------------------------------------------


@pytest.mark.parametrize("form", ["plain", "hashed"])
async def test_non_ascii_api_key_sent_as_utf8_is_accepted(form: str) -> None:
    """A key with non-ASCII characters, configured (or hashed) as UTF-8 and sent as UTF-8
    bytes, authenticates; a near miss does not."""
    key = "clé-ñandú-0123456789"
    auth = (
        AuthConfig(api_keys={"uni": SecretStr(key)})
        if form == "plain"
        else AuthConfig(api_key_hashes={"uni": hashlib.sha256(key.encode()).hexdigest()})
    )
    app = secure_app(io.StringIO(), ServerConfig(auth=auth))
    async with serve(app) as client:
        good = await client.get("/me", headers=[(b"X-API-Key", key.encode())])
        latin1 = await client.get("/me", headers=[(b"X-API-Key", key.encode("latin-1"))])
    assert (good.status_code, good.json()) == (200, {"sub": "uni"})
    assert latin1.status_code == 401


# --- exp / nbf / iat must be JSON numbers ---------------------------------------------


def _time_claim_tokens() -> dict[str, str]:
    now = int(time.time())
    base = {"sub": "alice", "exp": now + 3600}
    return {
        "exp-string": jwt.encode(base | {"exp": str(now + 3600)}, HS_SECRET, algorithm="HS256"),
        "nbf-string": jwt.encode(base | {"nbf": str(now - 60)}, HS_SECRET, algorithm="HS256"),
        "iat-string": jwt.encode(base | {"iat": str(now)}, HS_SECRET, algorithm="HS256"),
        "exp-too-big": _hs256_raw(b'{"sub":"alice","exp":1' + b"0" * 400 + b"}"),
    }


def _hs_config() -> ServerConfig:
    return ServerConfig(auth=AuthConfig(jwt_secret=SecretStr(HS_SECRET)))


@pytest.mark.parametrize("case", sorted(_time_claim_tokens()))
async def test_time_claim_that_is_no_number_is_refused(case: str) -> None:
    """exp/nbf/iat as a numeric string, or an integer no float holds, is a 401 (PyJWT
    alone takes int() of them and lets them through)."""
    token = _time_claim_tokens()[case]
    app = secure_app(io.StringIO(), _hs_config())
    async with serve(app) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "time claims are not numbers" in response.headers["www-authenticate"]


@pytest.mark.parametrize("case", ["exp-string", "exp-too-big"])
def test_websocket_with_a_non_numeric_exp_is_refused_at_the_handshake(case: str) -> None:
    """A string exp would open a socket that never expires, a huge one crashed the
    handshake (OverflowError): both are refused with 1008 before accept."""
    app = create_fastapi_app(_hs_config(), logger=make_json_logger(io.StringIO()))
    accepted: list[Principal] = []

    @app.websocket("/feed")
    async def feed(
        websocket: WebSocket, user: Annotated[Principal, Depends(require_websocket_auth())]
    ) -> None:
        accepted.append(user)
        await websocket.accept()
        await websocket.close()

    token = _time_claim_tokens()[case]
    with (
        TestClient(app) as client,
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/feed", headers={"Authorization": f"Bearer {token}"}),
    ):
        pass
    assert refused.value.code == 1008
    assert accepted == []


async def test_float_and_integer_time_claims_still_pass() -> None:
    """Control: a fractional exp and integer nbf/iat are valid NumericDates."""
    now = int(time.time())
    token = jwt.encode(
        {"sub": "alice", "exp": now + 3600.5, "nbf": now - 1, "iat": now},
        HS_SECRET,
        algorithm="HS256",
    )
    app = secure_app(io.StringIO(), _hs_config())
    async with serve(app) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"sub": "alice"}


# --- JWKS keys without alg, and keys with a malformed alg -----------------------------


def _jwks_app(document: dict[str, Any], algorithms: tuple[str, ...]) -> Any:
    async def idp(url: str, timeout: float) -> Any:
        return document

    config = ServerConfig(
        auth=AuthConfig(
            jwks_url="https://id.example.com/jwks",
            jwt_audience=keys.AUDIENCE,
            jwt_algorithms=algorithms,
        )
    )
    return secure_app(io.StringIO(), config, jwks_fetch=idp)


@pytest.mark.parametrize("alg", ["PS256", "RS512"])
async def test_alg_less_rsa_jwks_key_verifies_every_configured_rsa_algorithm(alg: str) -> None:
    """An RSA JWK without "alg" (as many IdPs publish) verifies PS256 or RS512 tokens
    when the service is pinned to them, not only RS256."""
    document = {"keys": [keys.jwk(kid="k1", alg=None)]}
    token = jwt.encode(keys.claims(), keys.rsa_key("main"), algorithm=alg, headers={"kid": "k1"})
    async with serve(_jwks_app(document, (alg,))) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"sub": "user-1"}


async def test_alg_less_key_still_refuses_an_unpinned_algorithm() -> None:
    """Binding an alg-less key to the pinned algorithms does not widen them: an RS256
    token against a service pinned to PS256 is refused before any key is used."""
    document = {"keys": [keys.jwk(kid="k1", alg=None)]}
    token = keys.rs256()
    async with serve(_jwks_app(document, ("PS256",))) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "algorithm is not accepted" in response.headers["www-authenticate"]


async def test_jwk_with_a_non_string_alg_does_not_sink_the_set() -> None:
    """One key whose "alg" is a list is skipped; the good key next to it still works."""
    odd = keys.jwk("other", kid="odd") | {"alg": ["RS256"]}
    document = {"keys": [odd, keys.jwk(kid="k1")]}
    stream = io.StringIO()

    async def idp(url: str, timeout: float) -> Any:
        return document

    cache = JwksCache(
        "https://id.example.com/jwks",
        algorithms=("RS256",),
        fetch=idp,
        clock=FakeClock(),
        logger=make_json_logger(stream),
    )
    assert (await cache.get_key("k1", "RS256")) is not None
    assert (await cache.get_key("odd", "RS256")) is None
    assert records(stream, "jwks refresh failed") == []


# --- concurrent misses share one fetch, whatever the refresh interval ----------------


async def test_concurrent_misses_share_one_fetch_with_no_refresh_interval() -> None:
    """With jwks_min_refresh_interval=0, 20 requests missing at once still make one
    fetch: those that queued behind it use its result."""
    gate = asyncio.Event()
    fetches: list[str] = []

    async def idp(url: str, timeout: float) -> Any:
        fetches.append(url)
        await gate.wait()
        return {"keys": [keys.jwk(kid="k1")]}

    cache = JwksCache(
        "https://id.example.com/jwks",
        algorithms=("RS256",),
        fetch=idp,
        min_refresh_interval=0,
        clock=FakeClock(),
    )
    tasks = [asyncio.create_task(cache.get_key("k1")) for _ in range(20)]
    await asyncio.sleep(0)  # one loop turn: every task reaches the fetch or the lock
    gate.set()
    found = await asyncio.gather(*tasks)
    assert all(key is not None for key in found)
    assert len(fetches) == 1


# --- the realm cannot break the challenge's quoting ------------------------------------


async def test_realm_with_a_backslash_keeps_the_challenge_well_formed() -> None:
    """A realm ending in a backslash would escape the closing quote; it is dropped."""
    config = ServerConfig(auth=AuthConfig(api_keys={"bot": SecretStr("k" * 20)}, realm="corp\\"))
    app = secure_app(io.StringIO(), config)
    async with serve(app) as client:
        response = await client.get("/me")
    assert response.headers["www-authenticate"] == 'Bearer realm="corp"'
    json.dumps(response.json())  # the problem body is intact too
