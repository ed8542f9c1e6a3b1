"""Test keys and token builders (generated once per process, never written to disk)."""

from __future__ import annotations

import base64
import json
import time
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

HS_SECRET = "0123456789abcdef0123456789abcdef-test-only"
ISSUER = "https://id.example.com/"
AUDIENCE = "orders-api"


@cache
def rsa_key(name: str = "main") -> rsa.RSAPrivateKey:
    """An RSA private key per name (2048 bits)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(name: str = "main") -> str:
    """The PEM public key of :func:`rsa_key`."""
    return (
        rsa_key(name)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def ec_public_pem() -> str:
    """An EC public key (the wrong family for RS256)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def jwk(name: str = "main", kid: str = "k1", alg: str | None = "RS256") -> dict[str, Any]:
    """The public JWK of :func:`rsa_key` with ``kid``."""
    data: dict[str, Any] = json.loads(
        jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key(name).public_key())
    )
    data.update(kid=kid, use="sig")
    if alg is not None:
        data["alg"] = alg
    return data


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for the test issuer/audience, one hour of validity."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "user-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "scope": "orders:read profile",
        "roles": ["editor"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def rs256(payload: dict[str, Any] | None = None, *, name: str = "main", kid: str = "k1") -> str:
    """A token signed with the named RSA key."""
    return jwt.encode(payload or claims(), rsa_key(name), algorithm="RS256", headers={"kid": kid})


def hs256(payload: dict[str, Any] | None = None, *, secret: str = HS_SECRET) -> str:
    """A token signed with an HMAC secret."""
    return jwt.encode(payload or claims(), secret, algorithm="HS256")


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    """A hand-built token (for alg=none and header tricks)."""
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(payload).encode())
    return f"{head}.{body}.{signature}"
