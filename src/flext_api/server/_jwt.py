"""JWT verification with the algorithms pinned by configuration, never by the token.

Checks, in order: the token parses - three base64url segments whose header and claims
are strict JSON objects: a member name twice (RFC 7515 §5.2 and RFC 7519 §4 allow a
parser to keep the last, another parser - the upstream's - may keep the first), or
``NaN``/``Infinity``/a number out of float range (which Python's ``json`` accepts, RFC
8259 does not) is refused; its header ``alg`` is one of the configured algorithms (so
``none`` and the HS256-signed-with-the-RS256-public-key confusion attack fail before any
key is touched); ``exp``/``nbf``/``iat`` are JSON numbers a float can hold (RFC 7519 §2
NumericDate: PyJWT takes ``int()`` of them, so a string ``"1999999999"`` or a bool would
pass, and the WebSocket expiry (:func:`~._ws_auth.expires_at`), which reads only
numbers, would never close the connection); ``sub`` is a string that is not all spaces
and holds no control character (it is the principal's subject: per-consumer rate
limits, the identity headers sent upstream and the logs all key on it, so a token that
names nobody is refused rather than given an empty identity shared by every such token,
and one whose subject a header cannot carry rather than sent as another subject); the
candidate keys (HMAC secret, public key, or the JWKS keys for
its ``kid`` and ``alg``: with several, as for a token without ``kid``, each is tried
until one verifies the signature); then PyJWT verifies the signature,
``exp``/``nbf``/``iat`` with a small leeway, ``iss`` and ``aud`` when configured, and the
required claims. PyJWT >= 2.13 also rejects unknown ``crit`` headers and the
JWK-as-HMAC-secret trick (CVE-2026-48526). Header parameters that point at keys
(``jku``, ``x5u``, ``jwk``, ``x5c``) are never fetched nor used: keys come from the
configuration only.

Failures raise :class:`InvalidTokenError` with a short, fixed description meant for the
``WWW-Authenticate`` header; PyJWT's own message (which can quote token content) is not
passed on.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from flext_api._errors import ConfigError
from flext_api._server_config import AuthConfig

from ._jwks import JwksCache

__all__ = ["InvalidTokenError", "JwtVerifier", "load_public_key"]

_KEY_TYPES: dict[str, tuple[type, ...]] = {
    "RS": (rsa.RSAPublicKey,),
    "PS": (rsa.RSAPublicKey,),
    "ES": (ec.EllipticCurvePublicKey,),
    "Ed": (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey),
}


_TIME_CLAIMS = ("exp", "nbf", "iat")
# C0 controls and DEL: what a header value may not carry (see safe_header_value).
_CONTROL = frozenset(map(chr, [*range(0x20), 0x7F]))


class InvalidTokenError(Exception):
    """The bearer token was refused; ``description`` is safe to send to the client."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def load_public_key(pem: str, algorithms: tuple[str, ...]) -> Any:
    """Load a PEM public key and check it suits ``algorithms``; ConfigError otherwise."""
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise ConfigError("auth.jwt_public_key is not a PEM public key") from exc
    for alg in algorithms:
        if not isinstance(key, _KEY_TYPES[alg[:2]]):
            raise ConfigError(f"auth.jwt_public_key: a {type(key).__name__} cannot verify {alg}")
    return key


def _description(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "The token has expired."
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "The token is not valid yet."
    if isinstance(exc, jwt.InvalidAudienceError | jwt.InvalidIssuerError):
        return "The token was not issued for this service."
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return "The token lacks a required claim."
    return "The token is invalid."


def _check_time_claims(claims: dict[str, Any]) -> None:
    for name in _TIME_CLAIMS:
        if name not in claims:
            continue
        value = claims[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidTokenError("The token's time claims are not numbers.")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int too large for a float
            finite = False
        if not finite:
            raise InvalidTokenError("The token's time claims are not numbers.")


def _check_subject(claims: dict[str, Any]) -> None:
    subject = claims.get("sub")
    if subject is None:
        raise InvalidTokenError("The token lacks a required claim.")
    # A control character cannot go upstream in a header: dropping it would make two
    # subjects one ("a\x00b" and "ab"); all spaces would read as "nobody".
    if not isinstance(subject, str) or not subject.strip(" ") or not _CONTROL.isdisjoint(subject):
        raise InvalidTokenError("The token's subject is not valid.")


class _NotStrictJsonError(ValueError):
    """A member name twice, or a number JSON does not have."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _NotStrictJsonError("duplicate member name")
    return found


def _no_constant(name: str) -> Any:
    raise _NotStrictJsonError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise _NotStrictJsonError("number out of range")
    return value


def _strict_segment(segment: str) -> dict[str, Any]:
    """A header or claims segment as a JSON object, strictly (see module docstring)."""
    stripped = segment.rstrip("=")
    try:
        raw = base64.b64decode(stripped + "=" * (-len(stripped) % 4), b"-_", validate=True)
        value = json.loads(
            raw,
            object_pairs_hook=_unique_members,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    # ValueError: JSON, UTF-8 and int-digit-limit errors; RecursionError: deep nesting.
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise InvalidTokenError("The token is malformed.") from exc
    if not isinstance(value, dict):
        raise InvalidTokenError("The token is malformed.")
    return value


def _strict_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    segments = token.split(".")
    if len(segments) != 3:
        raise InvalidTokenError("The token is malformed.")
    return _strict_segment(segments[0]), _strict_segment(segments[1])


class JwtVerifier:
    """Verify bearer tokens against one :class:`AuthConfig` (see module docstring)."""

    def __init__(self, config: AuthConfig, *, jwks: JwksCache | None = None) -> None:
        self._algorithms = list(config.algorithms)
        self._jwks = jwks
        self._key: Any = None
        if config.jwt_secret is not None:
            self._key = config.jwt_secret.get_secret_value().encode()
        elif config.jwt_public_key is not None:
            self._key = load_public_key(config.jwt_public_key, config.algorithms)
        elif jwks is None:
            raise ConfigError("auth: jwks_url is set but no JWKS cache was given")
        self._issuer = config.jwt_issuer
        self._audience = config.jwt_audience
        self._leeway = config.jwt_leeway
        self._options: Any = {
            "require": list(config.jwt_required_claims),
            "verify_aud": config.jwt_audience is not None,
            "verify_iss": config.jwt_issuer is not None,
            "enforce_minimum_key_length": True,
        }

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; :class:`InvalidTokenError` when anything is wrong."""
        _, unverified = _strict_parts(token)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidTokenError("The token is malformed.") from exc
        alg = header.get("alg")
        if alg not in self._algorithms:
            raise InvalidTokenError("The token's algorithm is not accepted.")
        # Shape checks before the signature: PyJWT would report an exp of `true` as
        # expired, and what it returns is what was parsed here (no duplicates to differ).
        _check_time_claims(unverified)
        _check_subject(unverified)
        if self._key is not None:
            return self._decode(token, (self._key,))
        assert self._jwks is not None
        kid = header.get("kid")  # PyJWT refused a kid that is no string
        keys = await self._jwks.get_keys(kid or None, alg)
        if not keys:
            raise InvalidTokenError("The token's signing key is unknown.")
        try:
            return self._decode(token, keys)
        except _NoKeyMatchedError:
            # A token without kid signed by a key the set gained since it was fetched.
            if kid or not await self._jwks.refresh_after_miss():
                raise
        return self._decode(token, await self._jwks.get_keys(None, alg))

    def _decode(self, token: str, keys: tuple[Any, ...]) -> dict[str, Any]:
        """The claims, checked with the first of ``keys`` whose signature matches."""
        for key in keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=self._algorithms,
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=self._leeway,
                    options=self._options,
                )
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError):
                continue  # not this key (or one PyJWT will not use): try the next
            except jwt.PyJWTError as exc:
                raise InvalidTokenError(_description(exc)) from exc
            return claims
        raise _NoKeyMatchedError("The token is invalid.")


class _NoKeyMatchedError(InvalidTokenError):
    """No candidate key verified the signature."""
