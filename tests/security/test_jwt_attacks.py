"""OWASP API2 (broken authentication): JWT attacks all end in 401, never in access."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import time
from collections.abc import Callable
from typing import Any

import httpx2
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from pydantic import SecretStr

from flext_api import ServerConfig
from flext_api._errors import ConfigError
from flext_api._server_config import AuthConfig
from flext_api.server import create_fastapi_app
from flext_api.server._jwks import fetch_jwks
from tests.security.apps import secure_app
from tests.server import keys
from tests.server.helpers import problem, serve
from tests.server.live import LiveServer

Live = Callable[[FastAPI], LiveServer]

CONFIG = ServerConfig(
    auth=AuthConfig(
        jwt_public_key=keys.public_pem(),
        jwt_issuer=keys.ISSUER,
        jwt_audience=keys.AUDIENCE,
        api_keys={"bot": SecretStr("bot-key-0123456789")},
    )
)


async def _get(token: str, path: str = "/me", **kwargs: Any) -> httpx2.Response:
    app = secure_app(io.StringIO(), CONFIG)
    async with serve(app) as client:
        return await client.get(path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def _assert_refused(response: httpx2.Response) -> None:
    assert problem(response)["status"] == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="api"')
    assert 'error="invalid_token"' in challenge


def _hs256_with(secret: bytes, payload: dict[str, Any]) -> str:
    """HS256 signed by hand (PyJWT itself refuses to sign with a PEM as HMAC key)."""
    signing_input = f"{keys.b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}."
    signing_input += keys.b64(json.dumps(payload).encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{keys.b64(signature)}"


async def test_valid_token_is_accepted() -> None:
    """Control: a correctly signed, current token for this audience works."""
    response = await _get(keys.rs256())
    assert response.json() == {"sub": "user-1"}


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
async def test_alg_none_is_refused(alg: str, signature: str) -> None:
    """alg=none (any case, with or without a signature) is refused."""
    token = keys.unsigned({"alg": alg, "typ": "JWT"}, keys.claims(), signature)
    _assert_refused(await _get(token))


async def test_flipped_signature_byte_is_refused() -> None:
    """Changing one character of the signature breaks it."""
    head, body, signature = keys.rs256().split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    _assert_refused(await _get(f"{head}.{body}.{flipped}"))


async def test_tampered_payload_is_refused() -> None:
    """Changing the claims under a valid signature is refused."""
    head, _, signature = keys.rs256().split(".")
    body = keys.b64(json.dumps(keys.claims(sub="admin", roles=["admin"])).encode())
    _assert_refused(await _get(f"{head}.{body}.{signature}"))


async def test_other_key_signature_is_refused() -> None:
    """A token signed with another RSA key is refused."""
    _assert_refused(await _get(keys.rs256(name="attacker")))


@pytest.mark.parametrize(
    "key_form",
    ["pem", "der", "jwk"],
)
async def test_algorithm_confusion_hs256_with_public_key(key_form: str) -> None:
    """HS256 signed with the service's RS256 public key (PEM, DER, JWK) is refused."""
    public = keys.rsa_key().public_key()
    secret = {
        "pem": keys.public_pem().encode(),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk": json.dumps(keys.jwk()).encode(),
    }[key_form]
    _assert_refused(await _get(_hs256_with(secret, keys.claims())))


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        # Times are offsets from the moment the test runs (not from collection).
        ({"exp": -60}, "expired"),
        ({"nbf": 60}, "not valid yet"),
        ({"iat": 60}, "not valid yet"),
        ({"aud": "another-api"}, "not issued for this service"),
        ({"iss": "https://evil.example/"}, "not issued for this service"),
        ({"iss": "https://id.example.com"}, "not issued for this service"),
        ({"exp": None}, "lacks a required claim"),
    ],
)
async def test_claim_checks(overrides: dict[str, Any], description: str) -> None:
    """exp, nbf, iat, aud, iss (no partial match) and required claims are enforced."""
    now = int(time.time())
    overrides = {
        k: now + v if k in {"exp", "nbf", "iat"} and v is not None else v
        for k, v in overrides.items()
    }
    response = await _get(keys.rs256(keys.claims(**overrides)))
    _assert_refused(response)
    assert description in response.headers["www-authenticate"]


async def test_small_clock_skew_is_tolerated() -> None:
    """A token that expired within the leeway (5 s) is still accepted."""
    response = await _get(keys.rs256(keys.claims(exp=int(time.time()) - 2)))
    assert response.status_code == 200


async def test_unknown_critical_header_is_refused() -> None:
    """A crit header naming an extension we do not understand is refused."""
    token = jwt.encode(
        keys.claims(),
        keys.rsa_key(),
        algorithm="RS256",
        headers={"crit": ["x-custom"], "x-custom": 1},
    )
    _assert_refused(await _get(token))


async def test_malformed_tokens_are_refused() -> None:
    """Garbage, truncated and non-JSON tokens are refused."""
    for token in ("garbage", "a.b", "a.b.c", keys.rs256()[:-30]):
        _assert_refused(await _get(token))


async def test_jku_and_path_kid_are_never_fetched() -> None:
    """jku/x5u and a path-like kid do not make the service fetch anything else."""
    fetched: list[str] = []

    async def idp(url: str, timeout: float) -> Any:
        fetched.append(url)
        return {"keys": [keys.jwk(kid="k1")]}

    config = ServerConfig(
        auth=AuthConfig(jwks_url="https://id.example.com/jwks", jwt_audience=keys.AUDIENCE)
    )
    app = secure_app(io.StringIO(), config, jwks_fetch=idp)
    attacker_headers = {
        "kid": "../../../../etc/passwd",
        "jku": "http://127.0.0.1:1/evil-jwks",
        "x5u": "http://127.0.0.1:1/evil-cert",
    }
    token = jwt.encode(
        keys.claims(), keys.rsa_key("attacker"), algorithm="RS256", headers=attacker_headers
    )
    async with serve(app) as client:
        for _ in range(5):
            response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
            _assert_refused(response)
    assert set(fetched) == {"https://id.example.com/jwks"}
    assert len(fetched) == 1  # later unknown kids within 30 s reuse the last fetch


async def test_token_in_query_string_is_ignored() -> None:
    """?access_token= is not a credential."""
    app = secure_app(io.StringIO(), CONFIG)
    async with serve(app) as client:
        response = await client.get("/me", params={"access_token": keys.rs256()})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Basic dXNlcjpwYXNz", "bearer"])
async def test_malformed_scheme_is_401_with_challenge(header: str) -> None:
    """A missing or foreign scheme is a 401 with a Bearer challenge."""
    app = secure_app(io.StringIO(), CONFIG)
    async with serve(app) as client:
        response = await client.get("/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'


async def test_forbidden_is_403_not_401() -> None:
    """Authenticated without the scope or role: 403, not 401."""
    token = keys.rs256(keys.claims(scope="profile", roles=["viewer"]))
    orders = await _get(token, "/orders")
    admin = await _get(token, "/admin")
    assert (orders.status_code, admin.status_code) == (403, 403)


@pytest.mark.parametrize("secret", ["changethis", "secret", "x" * 31])
def test_weak_hs256_secret_refuses_to_start(secret: str) -> None:
    """The factory cannot be configured with an HS256 secret under 32 bytes."""
    with pytest.raises(ConfigError, match="too short"):
        create_fastapi_app(ServerConfig(auth=AuthConfig(jwt_secret=SecretStr(secret))))


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'"keys"',
        b"null",
        b"<html>login</html>",
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps({"keys": [keys.jwk(kid="k1")]}).encode() + b" " * (2 * 1024 * 1024),
    ],
    ids=["list", "string", "null", "html", "deep", "huge"],
)
async def test_garbage_jwks_document_is_401_not_500(live: Live, body: bytes) -> None:
    """A JWKS endpoint answering a non-object, HTML, deep or over-1-MiB body: 401, logged."""

    async def jwks(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    application = web.Application()
    application.router.add_get("/jwks", jwks)
    async with TestServer(application, host="127.0.0.1") as idp:
        local = str(idp.make_url("/jwks"))

        async def fetch(url: str, timeout: float) -> Any:
            return await fetch_jwks(local, timeout)

        config = ServerConfig(
            auth=AuthConfig(jwks_url="https://id.example.com/jwks", jwt_audience=keys.AUDIENCE)
        )
        stream = io.StringIO()
        server = live(secure_app(stream, config, jwks_fetch=fetch))
        async with httpx2.AsyncClient(base_url=server.url) as client:
            response = await client.get(
                "/me", headers={"Authorization": f"Bearer {keys.rs256()}"}, timeout=30
            )
    _assert_refused(response)
    challenge = response.headers["www-authenticate"]
    assert 'error_description="The token\'s signing key is unknown."' in challenge
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["event"] for r in logged if r.get("level") == "warning"] == ["jwks refresh failed"]


async def test_hanging_jwks_fetch_is_401_within_the_timeout(live: Live) -> None:
    """A JWKS fetch that never answers ends after jwks_timeout; the request gets a 401."""
    never = asyncio.Event()

    async def fetch(url: str, timeout: float) -> Any:
        await never.wait()  # ignores its timeout, as a careless fetcher would

    config = ServerConfig(
        auth=AuthConfig(
            jwks_url="https://id.example.com/jwks", jwt_audience=keys.AUDIENCE, jwks_timeout=0.2
        )
    )
    server = live(secure_app(io.StringIO(), config, jwks_fetch=fetch))
    async with httpx2.AsyncClient(base_url=server.url) as client:
        response = await client.get(
            "/me", headers={"Authorization": f"Bearer {keys.rs256()}"}, timeout=30
        )
    _assert_refused(response)
