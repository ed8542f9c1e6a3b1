"""The edge's verified-token memo: reuse within the token's window, never past it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from flext_api.gateway._auth import _VERIFIED_MAX, TOKEN_MEMO, Denied, EdgeAuth, Identity
from flext_api.gateway._edge_config import EdgeAuthConfig, RouteAuth
from flext_api.server._jwt import JwtVerifier
from flext_api.testing import FakeClock
from tests.server import keys

SECRET = "unit-secret-of-at-least-thirty-two-bytes!"
RULE = RouteAuth(methods=("jwt",))


def scope_with(token: str) -> dict[str, Any]:
    """A request scope carrying ``token`` as a bearer token."""
    return {"type": "http", "headers": [(b"authorization", b"Bearer " + token.encode())]}


def hs_token(**claims: Any) -> str:
    """An HS256 token under SECRET with ``claims`` (a subject, one hour of validity by default)."""
    now = int(time.time())
    body = {"sub": "alice", "iat": now, "exp": now + 3600, **claims}
    return keys.hs256({k: v for k, v in body.items() if v is not None}, secret=SECRET)


class Counting:
    """Counts the signature checks of an :class:`EdgeAuth`'s verifier."""

    def __init__(self, auth: EdgeAuth) -> None:
        assert auth.authenticator is not None
        verifier = auth.authenticator.jwt
        assert isinstance(verifier, JwtVerifier)
        self.calls = 0
        real = verifier.verify

        async def verify(token: str) -> dict[str, Any]:
            self.calls += 1
            return await real(token)

        verifier.verify = verify  # type: ignore[method-assign]


def hs_auth(
    clock: FakeClock | None = None, leeway: float = 5.0, **jwt: Any
) -> tuple[EdgeAuth, Counting]:
    """An HS256 edge auth on ``clock`` (the wall clock when None) with its check counter."""
    config = EdgeAuthConfig.model_validate(
        {"jwt": {"jwt_secret": SECRET, "jwt_leeway": leeway, **jwt}}
    )
    auth = EdgeAuth(config, clock=clock)
    return auth, Counting(auth)


async def test_a_verified_token_is_reused_without_a_second_check() -> None:
    """The same token again is answered from the memo: one signature check for many requests."""
    auth, counting = hs_auth()
    token = hs_token()
    found = [await auth.authenticate(scope_with(token), RULE) for _ in range(5)]
    assert all(isinstance(f, Identity) and f.subject == "alice" for f in found)
    assert counting.calls == 1


async def test_a_refused_token_is_never_remembered() -> None:
    """A bad signature is checked (and refused) on every request."""
    auth, counting = hs_auth()
    forged = keys.hs256({"sub": "mallory", "exp": int(time.time()) + 3600}, secret="x" * 40)
    for _ in range(3):
        found = await auth.authenticate(scope_with(forged), RULE)
        assert isinstance(found, Denied) and found.status == 401
    assert counting.calls == 3


async def test_a_changed_token_is_not_taken_for_a_remembered_one() -> None:
    """A token differing from a remembered one in one character is verified, and refused."""
    auth, _ = hs_auth()
    token = hs_token()
    assert isinstance(await auth.authenticate(scope_with(token), RULE), Identity)
    head, body, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    found = await auth.authenticate(scope_with(f"{head}.{body}.{flipped}"), RULE)
    assert isinstance(found, Denied) and found.status == 401


async def test_reuse_ends_at_expiry_plus_leeway_on_the_gateway_clock() -> None:
    """Past exp + leeway on the gateway's clock the memo is not used: the token is checked."""
    now = time.time()
    clock = FakeClock(wall_start=now)
    auth, counting = hs_auth(clock, leeway=5)
    token = hs_token(exp=int(now) + 20)
    await auth.authenticate(scope_with(token), RULE)
    clock.advance(int(now) + 20 + 5 - now - 0.5)  # inside exp + leeway and TOKEN_MEMO
    await auth.authenticate(scope_with(token), RULE)
    assert counting.calls == 1
    clock.advance(1)
    await auth.authenticate(scope_with(token), RULE)
    assert counting.calls == 2


async def test_reuse_lasts_at_most_token_memo_seconds() -> None:
    """A long-lived token is checked again TOKEN_MEMO seconds after its last check."""
    clock = FakeClock(wall_start=time.time())
    auth, counting = hs_auth(clock)
    token = hs_token()
    await auth.authenticate(scope_with(token), RULE)
    clock.advance(TOKEN_MEMO - 1)
    await auth.authenticate(scope_with(token), RULE)
    clock.advance(2)
    await auth.authenticate(scope_with(token), RULE)
    assert counting.calls == 2


async def test_a_token_expiring_while_remembered_is_refused() -> None:
    """A remembered token is refused once its exp passes (leeway 0, real time)."""
    auth, _ = hs_auth(leeway=0)
    token = hs_token(exp=int(time.time()) + 2)
    assert isinstance(await auth.authenticate(scope_with(token), RULE), Identity)
    deadline = time.monotonic() + 30
    found: Identity | Denied = Identity(subject="", method="jwt")
    while time.monotonic() < deadline:
        found = await auth.authenticate(scope_with(token), RULE)
        if isinstance(found, Denied):
            break
        await asyncio.sleep(0.1)
    assert isinstance(found, Denied) and found.status == 401
    assert found.detail == "The token has expired."


async def test_a_token_without_exp_is_checked_every_time() -> None:
    """Without an exp claim nothing bounds reuse, so the token is never remembered."""
    auth, counting = hs_auth(jwt_required_claims=[])
    token = hs_token(exp=None)
    for _ in range(3):
        assert isinstance(await auth.authenticate(scope_with(token), RULE), Identity)
    assert counting.calls == 3


async def test_memo_is_bounded() -> None:
    """The memo keeps at most _VERIFIED_MAX tokens, dropping the least recently used."""
    auth, _ = hs_auth()
    tokens = [hs_token(sub=f"user-{n}") for n in range(_VERIFIED_MAX + 2)]
    for token in tokens:
        await auth.authenticate(scope_with(token), RULE)
    memo = auth._tokens
    assert len(memo) == _VERIFIED_MAX
    assert tokens[0].encode() not in memo and tokens[-1].encode() in memo


class Idp:
    """A JWKS source the test rotates."""

    def __init__(self, *names: str) -> None:
        self.names = list(names)

    async def __call__(self, url: str, timeout: float) -> Any:
        return {"keys": [keys.jwk(name, kid=name) for name in self.names]}


async def test_a_jwks_refetch_drops_the_memo() -> None:
    """When the key set is fetched again, tokens signed by a key now gone are refused."""
    clock = FakeClock(wall_start=time.time())
    idp = Idp("old")
    config = EdgeAuthConfig.model_validate(
        {"jwt": {"jwks_url": "https://id.example.com/jwks", "jwks_min_refresh_interval": 1}}
    )
    auth = EdgeAuth(config, clock=clock, jwks_fetch=idp)
    counting = Counting(auth)
    old = keys.rs256(keys.claims(aud=None, iss=None), name="old", kid="old")
    assert isinstance(await auth.authenticate(scope_with(old), RULE), Identity)
    assert isinstance(await auth.authenticate(scope_with(old), RULE), Identity)
    assert counting.calls == 1
    idp.names = ["new"]  # the IdP rotated: "old" is withdrawn
    clock.advance(2)
    new = keys.rs256(keys.claims(aud=None, iss=None), name="new", kid="new")
    assert isinstance(await auth.authenticate(scope_with(new), RULE), Identity)  # refetches
    found = await auth.authenticate(scope_with(old), RULE)
    assert isinstance(found, Denied) and found.status == 401


@pytest.mark.parametrize("scopes", [(), ("read",)])
async def test_route_scopes_still_apply_to_a_remembered_token(scopes: tuple[str, ...]) -> None:
    """A remembered identity is checked against each route's scopes (403 when lacking)."""
    auth, _ = hs_auth()
    token = hs_token()
    assert isinstance(await auth.authenticate(scope_with(token), RULE), Identity)
    found = await auth.authenticate(scope_with(token), RouteAuth(methods=("jwt",), scopes=scopes))
    assert isinstance(found, Denied) == bool(scopes)


async def test_a_refetch_caused_by_a_refused_token_also_drops_the_memo() -> None:
    """A refetch triggered by an unknown kid (refused) ends reuse of the withdrawn key's tokens."""
    clock = FakeClock(wall_start=time.time())
    idp = Idp("old")
    config = EdgeAuthConfig.model_validate(
        {"jwt": {"jwks_url": "https://id.example.com/jwks", "jwks_min_refresh_interval": 1}}
    )
    auth = EdgeAuth(config, clock=clock, jwks_fetch=idp)
    old = keys.rs256(keys.claims(aud=None, iss=None), name="old", kid="old")
    assert isinstance(await auth.authenticate(scope_with(old), RULE), Identity)
    idp.names = ["new"]
    clock.advance(2)
    stranger = keys.rs256(keys.claims(aud=None, iss=None), name="other", kid="other")
    assert isinstance(await auth.authenticate(scope_with(stranger), RULE), Denied)  # refetches
    found = await auth.authenticate(scope_with(old), RULE)
    assert isinstance(found, Denied) and found.status == 401
