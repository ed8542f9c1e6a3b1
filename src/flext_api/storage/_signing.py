"""GCS V4 signed URLs, signed locally with a service account's RSA key.

The algorithm of Google's "V4 signing process" (``GOOG4-RSA-SHA256``): a canonical
request (method, path, sorted query, ``host`` header, ``UNSIGNED-PAYLOAD``), hashed
into a string to sign with the credential scope, signed with RSASSA-PKCS1-v1_5 over
SHA-256. No call leaves the process. ``cryptography`` (a dependency of
``pyjwt[crypto]``) does the RSA part and is imported on first use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import quote, urlsplit

from .._errors import ConfigError

__all__ = ["sign_v4", "string_to_sign"]

_MAX_EXPIRY = 7 * 24 * 3600


def _canonical(
    method: str, path: str, host: str, email: str, expires: int, when: datetime
) -> tuple[str, dict[str, str], str]:
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{when:%Y%m%d}/auto/storage/goog4_request"
    query = {
        "X-Goog-Algorithm": "GOOG4-RSA-SHA256",
        "X-Goog-Credential": f"{email}/{scope}",
        "X-Goog-Date": stamp,
        "X-Goog-Expires": str(expires),
        "X-Goog-SignedHeaders": "host",
    }
    canonical_query = "&".join(
        f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(query.items())
    )
    request = "\n".join(
        [
            method,
            quote(path, safe="/~"),
            canonical_query,
            f"host:{host}\n",
            "host",
            "UNSIGNED-PAYLOAD",
        ]
    )
    digest = hashlib.sha256(request.encode()).hexdigest()
    return f"GOOG4-RSA-SHA256\n{stamp}\n{scope}\n{digest}", query, canonical_query


def string_to_sign(
    method: str, endpoint: str, path: str, email: str, expires_in: timedelta, when: datetime
) -> str:
    """The exact text the private key signs (exposed so tests can verify a signature)."""
    host = urlsplit(endpoint).netloc
    return _canonical(method, path, host, email, int(expires_in.total_seconds()), when)[0]


def sign_v4(
    account: Mapping[str, str],
    method: str,
    endpoint: str,
    path: str,
    expires_in: timedelta,
    when: datetime,
) -> str:
    """A V4 signed URL for ``method`` on ``path`` (``/bucket/key``) valid ``expires_in``."""
    try:
        email, pem = account["client_email"], account["private_key"]
    except KeyError as exc:
        raise ConfigError(f"service_account lacks {exc.args[0]!r}") from None
    expires = int(expires_in.total_seconds())
    if not 1 <= expires <= _MAX_EXPIRY:
        raise ConfigError(f"expires_in must be 1 s to 7 days, got {expires} s")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("service_account private_key is not an RSA key")
    host = urlsplit(endpoint).netloc
    text, _, canonical_query = _canonical(method, path, host, email, expires, when)
    signature = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256()).hex()
    return f"{endpoint}{quote(path, safe='/~')}?{canonical_query}&X-Goog-Signature={signature}"
