"""JWT verification with the algorithms pinned by configuration, never by the token.

Checks, in order: the token parses; its header ``alg`` is one of the configured
algorithms (so ``none`` and the HS256-signed-with-the-RS256-public-key confusion attack
fail before any key is touched); the key (HMAC secret, public key, or the JWKS key for
its ``kid``); then PyJWT verifies the signature, ``exp``/``nbf``/``iat`` with a small
leeway, ``iss`` and ``aud`` when configured, and the required claims. PyJWT >= 2.13 also
rejects unknown ``crit`` headers and the JWK-as-HMAC-secret trick (CVE-2026-48526).
Last, ``exp``/``nbf``/``iat`` must be JSON numbers a float can hold (RFC 7519 §2
NumericDate): PyJWT takes ``int()`` of them, so a string ``"1999999999"`` or a bool
would pass, and the WebSocket expiry (:func:`~._ws_auth.expires_at`), which reads only
numbers, would never close the connection.

Failures raise :class:`InvalidTokenError` with a short, fixed description meant for the
``WWW-Authenticate`` header; PyJWT's own message (which can quote token content) is not
passed on.
"""

from __future__ import annotations

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
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidTokenError("The token is malformed.") from exc
        if header.get("alg") not in self._algorithms:
            raise InvalidTokenError("The token's algorithm is not accepted.")
        key = self._key
        if key is None:
            assert self._jwks is not None
            kid = header.get("kid")
            key = await self._jwks.get_key(kid if isinstance(kid, str) else None, header["alg"])
            if key is None:
                raise InvalidTokenError("The token's signing key is unknown.")
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
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(_description(exc)) from exc
        _check_time_claims(claims)
        return claims
