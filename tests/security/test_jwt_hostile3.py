"""Hostile tokens, third round: JWKS sets with several keys without ``kid`` (or a ``kid``
twice), tokens that name no subject, and JSON that Python's parser accepts but JSON does
not (``NaN``, ``Infinity``, ``1e999``, a member name twice)."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from flext_api import ServerConfig
from flext_api._server_config import AuthConfig
from flext_api.server import _jwks
from flext_api.testing import FakeClock
from tests.security.apps import secure_app
from tests.server import keys
from tests.server.helpers import serve

HS_SECRET = "s" * 32
JWKS_URL = "https://id.example.com/jwks"


def _kidless(name: str) -> dict[str, Any]:
    """The public JWK of RSA key ``name`` with no ``kid``."""
    data = keys.jwk(name)
    del data["kid"]
    return data


def _rs256_without_kid(name: str) -> str:
    return jwt.encode(keys.claims(), keys.rsa_key(name), algorithm="RS256")


class _Idp:
    """A JWKS endpoint whose key list the test changes; counts fetches."""

    def __init__(self, *entries: dict[str, Any]) -> None:
        self.keys = list(entries)
        self.fetches = 0

    async def __call__(self, url: str, timeout: float) -> Any:
        self.fetches += 1
        return {"keys": list(self.keys)}


def _jwks_app(idp: _Idp, algorithms: tuple[str, ...] = ("RS256",), **kwargs: Any) -> Any:
    config = ServerConfig(
        auth=AuthConfig(jwks_url=JWKS_URL, jwt_audience=keys.AUDIENCE, jwt_algorithms=algorithms)
    )
    return secure_app(io.StringIO(), config, jwks_fetch=idp, **kwargs)


async def _status(app: Any, *tokens: str) -> list[int]:
    async with serve(app) as client:
        return [
            (await client.get("/me", headers={"Authorization": f"Bearer {token}"})).status_code
            for token in tokens
        ]


# --- JWKS: keys without kid, a kid twice ----------------------------------------------


async def test_token_without_kid_is_verified_by_any_kidless_key_of_the_set() -> None:
    """Two keys without kid: a token without kid signed by either is accepted (the first
    loaded key used to be overwritten by the second)."""
    idp = _Idp(_kidless("main"), _kidless("second"))
    statuses = await _status(
        _jwks_app(idp), _rs256_without_kid("main"), _rs256_without_kid("second")
    )
    assert statuses == [200, 200]
    assert idp.fetches == 1


async def test_token_without_kid_signed_by_no_key_of_the_set_is_refused() -> None:
    """Trying every candidate does not widen trust: a third key's token is a 401."""
    idp = _Idp(_kidless("main"), _kidless("second"), keys.jwk("third", kid="k3"))
    assert await _status(_jwks_app(idp), _rs256_without_kid("attacker")) == [401]


async def test_token_without_kid_tries_at_most_max_key_candidates() -> None:
    """The keys tried for one token are bounded: the first of many kid-less keys verifies,
    one past MAX_KEY_CANDIDATES is never tried."""
    private = [ec.generate_private_key(ec.SECP256R1()) for _ in range(_jwks.MAX_KEY_CANDIDATES + 1)]
    entries = [
        json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())) | {"use": "sig"}
        for key in private
    ]
    idp = _Idp(*entries)

    def es256(key: ec.EllipticCurvePrivateKey) -> str:
        return jwt.encode(keys.claims(), key, algorithm="ES256")

    statuses = await _status(_jwks_app(idp, ("ES256",)), es256(private[0]), es256(private[-1]))
    assert statuses == [200, 401]


async def test_a_kid_shared_by_keys_of_two_algorithms_keeps_both() -> None:
    """kid "k1" on an RSA and an EC key (RFC 7517 §4.5 allows it across key types): an
    RS256 token naming k1 is accepted (the EC key used to replace the RSA one)."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    idp = _Idp(keys.jwk(kid="k1"), ec_jwk | {"kid": "k1", "use": "sig", "alg": "ES256"})
    es256 = jwt.encode(keys.claims(), ec_key, algorithm="ES256", headers={"kid": "k1"})
    statuses = await _status(_jwks_app(idp, ("RS256", "ES256")), keys.rs256(kid="k1"), es256)
    assert statuses == [200, 200]


async def test_token_with_a_kid_is_matched_by_that_kid_only() -> None:
    """A token naming kid k1 is checked with k1's key only, not with a kid-less key of the
    set that would verify it."""
    idp = _Idp(keys.jwk(kid="k1"), _kidless("second"))
    assert await _status(_jwks_app(idp), keys.rs256(name="second", kid="k1")) == [401]


async def test_token_without_kid_from_a_key_added_later_refreshes_once() -> None:
    """A token without kid that no cached key verifies refetches the set (rate-limited, as
    an unknown kid does): a key the IdP added since is found; within the refresh interval
    further misses do not fetch."""
    clock = FakeClock()
    idp = _Idp(_kidless("main"))
    app = _jwks_app(idp, clock=clock)
    async with serve(app) as client:

        async def get(token: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            return (await client.get("/me", headers=headers)).status_code

        first = await get(_rs256_without_kid("main"))
        idp.keys.append(_kidless("second"))
        clock.advance(31)  # past jwks_min_refresh_interval (30 s), within the TTL
        added = await get(_rs256_without_kid("second"))
        fetches_after_rotation = idp.fetches
        stranger = await get(_rs256_without_kid("attacker"))
    assert (first, added, stranger) == (200, 200, 401)
    assert (fetches_after_rotation, idp.fetches) == (2, 2)


async def test_embedded_jwk_header_is_never_trusted() -> None:
    """A token carrying its own key in the "jwk" header, signed with it, is refused."""
    attacker = keys.jwk("attacker", kid="k1")
    token = jwt.encode(
        keys.claims(), keys.rsa_key("attacker"), algorithm="RS256", headers={"jwk": attacker}
    )
    idp = _Idp(keys.jwk(kid="k1"))
    assert await _status(_jwks_app(idp), token) == [401]


# --- sub: present, a non-empty string, no control characters --------------------------


def _hs256_raw(payload: bytes, header: bytes = b'{"alg":"HS256","typ":"JWT"}') -> str:
    """An HS256 token over ``header`` and ``payload`` as given (JSON PyJWT would not write)."""
    signing_input = f"{keys.b64(header)}.{keys.b64(payload)}"
    signature = hmac.new(HS_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{keys.b64(signature)}"


async def _hs_response(token: str) -> tuple[int, str]:
    app = secure_app(io.StringIO(), ServerConfig(auth=AuthConfig(jwt_secret=SecretStr(HS_SECRET))))
    async with serve(app) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.headers.get("www-authenticate", "")


def _exp() -> int:
    return int(time.time()) + 3600


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({}, "lacks a required claim"),
        ({"sub": None}, "lacks a required claim"),
        ({"sub": ""}, "subject is not valid"),
        ({"sub": 7}, "subject is not valid"),
        ({"sub": "\r\n\t\x00"}, "subject is not valid"),
        ({"sub": "   "}, "subject is not valid"),
    ],
    ids=["missing", "null", "empty", "number", "controls-only", "spaces-only"],
)
async def test_token_naming_no_usable_subject_is_refused(
    claims: dict[str, Any], description: str
) -> None:
    """No sub, a non-string one, or one that is empty once a header drops its control
    characters and trims its spaces: 401 invalid_token, never an empty subject shared by
    every such token."""
    token = jwt.encode({"exp": _exp(), **claims}, HS_SECRET, algorithm="HS256")
    status, challenge = await _hs_response(token)
    assert status == 401
    assert 'error="invalid_token"' in challenge
    assert description in challenge


# --- JSON Python accepts and JSON does not ---------------------------------------------


@pytest.mark.parametrize(
    ("header", "payload"),
    [
        (b'{"alg":"HS256","typ":"JWT"}', b'{"sub":"alice","sub":"admin","exp":%d}'),
        (b'{"alg":"none","alg":"HS256"}', b'{"sub":"alice","exp":%d}'),
        (b'{"alg":"HS256","typ":"JWT"}', b'{"sub":"alice","exp":%d,"roles":NaN}'),
        (b'{"alg":"HS256","typ":"JWT"}', b'{"sub":"alice","exp":%d,"level":Infinity}'),
        (b'{"alg":"HS256","typ":"JWT"}', b'{"sub":"alice","exp":%d,"level":1e999}'),
        (b'{"alg":"HS256","x":-Infinity}', b'{"sub":"alice","exp":%d}'),
        (b'{"alg":"HS256","typ":"JWT"}', b'{"sub":"alice","exp":Infinity,"x":%d}'),
        (b'{"alg":"HS256","typ":"JWT"}', b'{"sub":"alice","exp":%d,"nbf":NaN}'),
        (b'{"alg":"HS256","typ":"JWT"}', b'{"sub":"alice","exp":%d,"iat":1e999}'),
    ],
    ids=[
        "payload-dup-sub",
        "header-dup-alg",
        "claim-nan",
        "claim-infinity",
        "claim-1e999",
        "header-infinity",
        "exp-infinity",
        "nbf-nan",
        "iat-1e999",
    ],
)
async def test_json_that_is_not_strict_json_is_refused(header: bytes, payload: bytes) -> None:
    """A member name twice (the last wins here, the first in some upstream parser) or a
    NaN/Infinity/1e999 anywhere in the header or claims: 401, the token is malformed."""
    status, challenge = await _hs_response(_hs256_raw(payload % _exp(), header))
    assert status == 401
    assert "The token is malformed." in challenge


async def test_boolean_exp_is_reported_as_not_a_number() -> None:
    """exp=true is refused as a time claim that is not a number (PyJWT read it as 1 and
    said "expired")."""
    status, challenge = await _hs_response(_hs256_raw(b'{"sub":"alice","exp":true}'))
    assert status == 401
    assert "time claims are not numbers" in challenge


@pytest.mark.parametrize("space", [" ", "\t"], ids=["space", "tab"])
async def test_token_with_whitespace_inside_is_refused(space: str) -> None:
    """Whitespace inside the token is not skipped: 401 (around it, it is the header's
    optional whitespace, trimmed by HTTP itself)."""
    head, rest = jwt.encode({"sub": "alice", "exp": _exp()}, HS_SECRET, "HS256").split(".", 1)
    status, _ = await _hs_response(f"{head}.{space}{rest}")
    assert status == 401


async def test_strict_json_still_accepts_an_ordinary_token() -> None:
    """Control: floats, nested objects, lists and unicode claims pass the strict parse."""
    claims = {"sub": "zoë", "exp": _exp() + 0.5, "ctx": {"a": [1, 2.5, None, True]}}
    status, _ = await _hs_response(jwt.encode(claims, HS_SECRET, algorithm="HS256"))
    assert status == 200
