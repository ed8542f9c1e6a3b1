"""Authentication dependencies, API keys, the JWT verifier and the JWKS cache."""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Annotated, Any

import httpx2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fastapi import Depends, FastAPI, Request
from pydantic import SecretStr

from flext_api import ServerConfig
from flext_api._errors import ConfigError, ConnectError
from flext_api._server_config import AuthConfig
from flext_api.server import JwksCache, Principal, require_auth, require_roles
from flext_api.server._jwks import fetch_jwks
from flext_api.server._jwt import load_public_key
from flext_api.testing import FakeClock
from tests.server import keys
from tests.server.conftest import Build
from tests.server.helpers import problem, records, serve

KEY = "k-0123456789-abcdef"
AUTH = AuthConfig(
    api_keys={"ci-bot": SecretStr(KEY)},
    api_key_hashes={"ops": hashlib.sha256(b"ops-key").hexdigest()},
    api_key_scopes={"ci-bot": ("orders:read",)},
    jwt_secret=SecretStr(keys.HS_SECRET),
    jwt_issuer=keys.ISSUER,
    jwt_audience=keys.AUDIENCE,
)


def _app(build: Build, auth: AuthConfig = AUTH, **kwargs: Any) -> FastAPI:
    app = build(ServerConfig(auth=auth), **kwargs)

    @app.get("/me")
    async def me(
        user: Annotated[Principal, Depends(require_auth())], request: Request
    ) -> dict[str, Any]:
        assert request.state.principal is user
        return {"sub": user.subject, "method": user.method, "scopes": sorted(user.scopes)}

    @app.get("/orders", dependencies=[Depends(require_auth(scopes=["orders:read"]))])
    async def orders() -> list[str]:
        return []

    @app.get("/edit", dependencies=[Depends(require_roles("editor", "admin"))])
    async def edit() -> dict[str, str]:
        return {}

    @app.get("/admin", dependencies=[Depends(require_roles("editor", "admin", require_all=True))])
    async def admin() -> dict[str, str]:
        return {}

    return app


async def test_api_key_authenticates(build: Build) -> None:
    """A configured key in X-API-Key yields a principal named after the key."""
    async with serve(_app(build)) as client:
        response = await client.get("/me", headers={"X-API-Key": KEY})
    assert response.json() == {"sub": "ci-bot", "method": "api_key", "scopes": ["orders:read"]}


async def test_hashed_api_key_authenticates(build: Build) -> None:
    """A key configured by its SHA-256 digest is accepted."""
    async with serve(_app(build)) as client:
        response = await client.get("/me", headers={"X-API-Key": "ops-key"})
    assert response.json()["sub"] == "ops"


async def test_wrong_api_key_is_401(build: Build) -> None:
    """An unknown key is a 401 with a Bearer challenge."""
    async with serve(_app(build)) as client:
        response = await client.get("/me", headers={"X-API-Key": KEY + "x"})
    assert problem(response)["status"] == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'


async def test_missing_credentials_is_401(build: Build) -> None:
    """No credentials: 401 with a challenge and no error code (RFC 6750 §3.1)."""
    async with serve(_app(build)) as client:
        response = await client.get("/me")
    assert (response.status_code, response.headers["www-authenticate"]) == (
        401,
        'Bearer realm="api"',
    )


async def test_jwt_authenticates_with_scopes_and_roles(build: Build) -> None:
    """A valid HS256 token yields its subject, scope and scp scopes, roles."""
    token = keys.hs256(keys.claims(scp=["extra"]))
    async with serve(_app(build)) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {
        "sub": "user-1",
        "method": "jwt",
        "scopes": ["extra", "orders:read", "profile"],
    }


async def test_insufficient_scope_is_403(build: Build) -> None:
    """Authenticated without the scope: 403 with insufficient_scope and the scope needed."""
    token = keys.hs256(keys.claims(scope="profile"))
    async with serve(_app(build)) as client:
        response = await client.get("/orders", headers={"Authorization": f"Bearer {token}"})
        by_key = await client.get("/orders", headers={"X-API-Key": "ops-key"})
    assert problem(response)["status"] == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="orders:read"'
    )
    assert by_key.status_code == 403


async def test_roles_any_and_all(build: Build) -> None:
    """require_roles needs one role by default, all with require_all."""
    editor = keys.hs256(keys.claims(roles=["editor"]))
    nobody = keys.hs256(keys.claims(roles="viewer"))
    async with serve(_app(build)) as client:
        edit = await client.get("/edit", headers={"Authorization": f"Bearer {editor}"})
        admin = await client.get("/admin", headers={"Authorization": f"Bearer {editor}"})
        viewer = await client.get("/edit", headers={"Authorization": f"Bearer {nobody}"})
        anonymous = await client.get("/edit")
    assert (edit.status_code, admin.status_code, viewer.status_code) == (200, 403, 403)
    assert anonymous.status_code == 401


def test_require_roles_needs_a_role() -> None:
    """require_roles() without roles is a programming error."""
    with pytest.raises(ValueError, match="at least one role"):
        require_roles()


async def test_bearer_without_jwt_config_is_401(build: Build) -> None:
    """A bearer token where only API keys are configured is invalid_token."""
    async with serve(_app(build, AuthConfig(api_keys={"a": SecretStr(KEY)}))) as client:
        response = await client.get("/me", headers={"Authorization": "Bearer x.y.z"})
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_nothing_configured_refuses(build: Build) -> None:
    """With no credentials configured every protected request is a 401."""
    async with serve(_app(build, AuthConfig())) as client:
        response = await client.get("/me", headers={"X-API-Key": "anything"})
    assert response.status_code == 401


async def test_require_auth_outside_factory_is_config_error() -> None:
    """Using require_auth on an app the factory did not build is a ConfigError."""
    app = FastAPI()

    @app.get("/x", dependencies=[Depends(require_auth())])
    async def x() -> None:
        return None

    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        with pytest.raises(ConfigError, match="create_fastapi_app"):
            await client.get("/x")


async def test_rs256_public_key(build: Build) -> None:
    """An RS256 token verifies against a configured PEM public key."""
    auth = AuthConfig(jwt_public_key=keys.public_pem(), jwt_audience=keys.AUDIENCE)
    async with serve(_app(build, auth)) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {keys.rs256()}"})
    assert response.json()["sub"] == "user-1"


def test_jwks_url_needs_a_cache() -> None:
    """A verifier for a JWKS-only config refuses to be built without its cache."""
    from flext_api.server._jwt import JwtVerifier

    with pytest.raises(ConfigError, match="no JWKS cache"):
        JwtVerifier(AuthConfig(jwks_url="https://id.example.com/jwks"))


def test_public_key_must_be_pem_of_right_family() -> None:
    """Garbage PEM or a key of another family fails at build time."""
    with pytest.raises(ConfigError, match="not a PEM public key"):
        load_public_key("-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----", ("RS256",))
    with pytest.raises(ConfigError, match="cannot verify RS256"):
        load_public_key(keys.ec_public_pem(), ("RS256",))


class FakeIdp:
    """A JWKS document source counting fetches; can be told to fail."""

    def __init__(self, *jwks: dict[str, Any]) -> None:
        self.keys = list(jwks)
        self.fetches = 0
        self.fail = False
        self.failure: Exception = OSError("idp down")

    async def __call__(self, url: str, timeout: float) -> Any:
        self.fetches += 1
        if self.fail:
            raise self.failure
        return {"keys": self.keys}


def _cache(idp: FakeIdp, clock: FakeClock, log: io.StringIO | None = None) -> JwksCache:
    from flext_api.server import make_json_logger

    return JwksCache(
        "https://id.example.com/jwks",
        algorithms=("RS256",),
        fetch=idp,
        ttl=300,
        min_refresh_interval=30,
        clock=clock,
        logger=make_json_logger(log or io.StringIO()),
    )


async def test_jwks_fetches_once_and_caches() -> None:
    """Keys are fetched on first use and served from cache after."""
    idp, clock = FakeIdp(keys.jwk(kid="k1")), FakeClock()
    cache = _cache(idp, clock)
    assert (await cache.get_key("k1")) is not None
    assert (await cache.get_key("k1")) is not None
    assert idp.fetches == 1
    assert repr(cache) == "<JwksCache 'https://id.example.com/jwks' [1 keys, 1 fetches]>"


async def test_jwks_unknown_kid_refresh_is_rate_limited() -> None:
    """Unknown kids trigger at most one fetch per min_refresh_interval."""
    idp, clock = FakeIdp(keys.jwk(kid="k1")), FakeClock()
    cache = _cache(idp, clock)
    await cache.get_key("k1")
    for n in range(50):
        assert (await cache.get_key(f"random-{n}")) is None
    assert idp.fetches == 1
    clock.advance(31)
    idp.keys.append(keys.jwk("rotated", kid="k2"))
    assert (await cache.get_key("k2")) is not None
    assert idp.fetches == 2


async def test_jwks_refreshes_when_stale_and_keeps_keys_on_failure() -> None:
    """After the TTL the set is refetched; a failed fetch keeps the old keys and logs."""
    idp, clock, log = FakeIdp(keys.jwk(kid="k1")), FakeClock(), io.StringIO()
    cache = _cache(idp, clock, log)
    await cache.get_key("k1")
    clock.advance(301)
    idp.fail = True
    assert (await cache.get_key("k1")) is not None
    assert idp.fetches == 2
    assert records(log, "jwks refresh failed")[0]["error"] == "OSError('idp down')"


async def test_jwks_fetcher_failing_with_a_flext_error_keeps_the_keys() -> None:
    """A fetcher on a FlextApiClient fails with a FlextApiError: a failed refresh like an
    OSError (old keys kept, logged), not an error escaping into the request."""
    idp, clock, log = FakeIdp(keys.jwk(kid="k1")), FakeClock(), io.StringIO()
    cache = _cache(idp, clock, log)
    await cache.get_key("k1")
    clock.advance(301)
    idp.fail, idp.failure = True, ConnectError("idp down")
    assert (await cache.get_key("k1")) is not None
    assert idp.fetches == 2
    assert records(log, "jwks refresh failed")[0]["error"].startswith("ConnectError(")


async def test_jwks_fetcher_failing_with_a_flext_error_is_401(build: Build) -> None:
    """With no key set yet, a fetcher's FlextApiError gives the request a 401, not a 502."""
    idp = FakeIdp(keys.jwk(kid="k1"))
    idp.fail, idp.failure = True, ConnectError("idp down")
    auth = AuthConfig(jwks_url="https://id.example.com/jwks", jwt_audience=keys.AUDIENCE)
    async with serve(_app(build, auth, jwks_fetch=idp)) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {keys.rs256()}"})
    assert response.status_code == 401
    assert "signing key is unknown" in response.headers["www-authenticate"]


async def test_jwks_concurrent_misses_share_one_fetch() -> None:
    """Many simultaneous first uses cause a single fetch."""
    idp, clock = FakeIdp(keys.jwk(kid="k1")), FakeClock()
    cache = _cache(idp, clock)
    found = await asyncio.gather(*(cache.get_key("k1") for _ in range(20)))
    assert all(key is not None for key in found)
    assert idp.fetches == 1


async def test_jwks_kid_less_lookup_and_filtering() -> None:
    """No kid works with exactly one key; keys for other algorithms or uses are ignored."""
    enc = keys.jwk("enc", kid="enc") | {"use": "enc"}
    other_alg = keys.jwk("ps", kid="ps", alg="PS256")
    idp, clock = FakeIdp(keys.jwk(kid="k1"), enc, other_alg), FakeClock()
    cache = _cache(idp, clock)
    assert (await cache.get_key(None)) is not None
    assert (await cache.get_key("enc")) is None
    assert (await cache.get_key("ps")) is None
    idp.keys.append(keys.jwk("second", kid="k2"))
    clock.advance(301)
    assert (await cache.get_key(None)) is None  # ambiguous with two keys


async def test_jwt_through_jwks(build: Build) -> None:
    """The app verifies RS256 tokens with keys from the injected JWKS fetcher."""
    idp = FakeIdp(keys.jwk(kid="k1"))
    auth = AuthConfig(jwks_url="https://id.example.com/jwks", jwt_audience=keys.AUDIENCE)
    async with serve(_app(build, auth, jwks_fetch=idp)) as client:
        good = await client.get("/me", headers={"Authorization": f"Bearer {keys.rs256()}"})
        unknown = await client.get(
            "/me", headers={"Authorization": f"Bearer {keys.rs256(name='other', kid='zz')}"}
        )
    assert good.json()["sub"] == "user-1"
    assert (
        'error_description="The token\'s signing key is unknown."'
        in unknown.headers["www-authenticate"]
    )


async def test_default_fetcher_reads_a_real_server() -> None:
    """fetch_jwks GETs the document from a real local HTTP server."""

    async def jwks(request: web.Request) -> web.Response:
        return web.json_response({"keys": [keys.jwk(kid="k1")]})

    application = web.Application()
    application.router.add_get("/jwks", jwks)
    async with TestServer(application, host="127.0.0.1") as server:
        document = await fetch_jwks(str(server.make_url("/jwks")), 5.0)
    assert document["keys"][0]["kid"] == "k1"
