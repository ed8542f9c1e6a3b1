"""The token endpoint's answer, read without I/O: an access token or a clear AUTH_ERROR.

Kept apart from the plugin so each rule of RFC 6749 §5 is tested on its own: a success
is a JSON object with ``access_token`` and a ``token_type`` of ``Bearer`` (compared
case-insensitively, §5.1); ``expires_in`` is optional (no expiry known: the token is
kept until the API answers 401); a refusal carries ``error`` and ``error_description``
(§5.2), which go into the message, escaped and shortened, with the client secret
scrubbed in case a server echoes it (raw, form-encoded, or in the base64 Basic
credentials of an echoed ``Authorization`` header).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import quote, quote_plus

import orjson

from ..._errors import AuthError
from ..._models import HttpResponse
from ..._redact import REDACTED, escape_control, redact_url

__all__ = ["AccessToken", "basic_credentials", "parse_token_response", "token_error"]

_MAX_TEXT = 200


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token and the instant (client's monotonic clock) it stops being used."""

    value: str = field(repr=False)
    expires_at: float | None
    scope: str | None = None

    def usable(self, now: float) -> bool:
        """True while the token may still be sent."""
        return self.expires_at is None or now < self.expires_at


def basic_credentials(client_id: str, secret: str) -> str:
    """The HTTP Basic credentials of a token request: id and secret form-encoded, then
    joined and base64-encoded (RFC 6749 §2.3.1)."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return base64.b64encode(pair.encode()).decode("ascii")


def _clean(text: object, secret: str, client_id: str) -> str:
    out = escape_control(str(text))
    if secret:
        # A server echoing the request quotes the secret as it was sent: form-encoded
        # in the body, or inside the Basic credentials, which travel base64-encoded (an
        # echoed Authorization header); without its padding, in case that is dropped.
        basic = basic_credentials(client_id, secret).rstrip("=")
        for spelling in (secret, quote_plus(secret), quote(secret, safe=""), basic):
            out = out.replace(escape_control(spelling), REDACTED)
    return out if len(out) <= _MAX_TEXT else out[:_MAX_TEXT] + "..."


def token_error(
    message: str,
    *,
    token_url: str,
    client_id: str,
    secret: str,
    details: dict[str, Any] | None = None,
) -> AuthError:
    """An ``AUTH_ERROR`` naming the endpoint and client, never the secret."""
    where = redact_url(token_url)
    info = {"token_url": where, "client_id": client_id, **(details or {})}
    return AuthError(
        f"OAuth2 token request to {where} for client {client_id!r} failed: "
        f"{_clean(message, secret, client_id)}",
        details=info,
    )


def _json_object(response: HttpResponse) -> dict[str, Any] | None:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _lifetime(raw: object) -> float | None:
    # Some servers send expires_in as a string; booleans are not numbers here.
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            return None
    # A NaN or infinite lifetime ("inf" as a string) would keep the token forever.
    if isinstance(raw, int | float) and raw > 0 and math.isfinite(raw):
        return float(raw)
    return None


def parse_token_response(
    response: HttpResponse,
    *,
    now: float,
    leeway: float,
    token_url: str,
    client_id: str,
    secret: str,
) -> AccessToken:
    """The :class:`AccessToken` in ``response``; raises :class:`AuthError` otherwise.

    ``now`` is when the request was sent: the lifetime counts from then, so time spent
    on the wire shortens it rather than extending it. The token is dropped ``leeway``
    seconds early, but never before half its lifetime (a 10 s token with the default
    30 s leeway is still used for 5 s instead of being fetched on every request).
    """
    ctx = {"token_url": token_url, "client_id": client_id, "secret": secret}
    data = _json_object(response)
    if 300 <= response.status_code < 400:
        # Never followed (see the plugin): a redirect could carry the client secret in
        # the form to another origin, or hand back a token from a host nobody trusted.
        location = redact_url(_clean(response.headers.get("location") or "", secret, client_id))
        _raise(
            f"HTTP {response.status_code}: the token endpoint redirects to {location!r}; "
            "redirects are not followed for token requests (set token_url to the target)",
            {"status": response.status_code},
            ctx,
        )
    if response.status_code >= 400 or response.status_code < 200:
        details: dict[str, Any] = {"status": response.status_code}
        if data is not None and isinstance(data.get("error"), str):
            details["oauth_error"] = _clean(data["error"], secret, client_id)
            reason = f"{details['oauth_error']}"
            if data.get("error_description"):
                reason += f" ({_clean(data['error_description'], secret, client_id)})"
        else:
            reason = "no OAuth error in the body"
        _raise(f"HTTP {response.status_code}: {reason}", details, ctx)
    if data is None:
        _raise("the answer is not a JSON object", {"status": response.status_code}, ctx)
    value = data.get("access_token")
    # It goes into a header: control characters could split it, and a non-ASCII one
    # would reach the API as different bytes on different transports (or fail).
    if (
        not isinstance(value, str)
        or not value
        or not value.isascii()
        or escape_control(value) != value
    ):
        _raise("the answer has no usable access_token", {}, ctx)
    token_type = data.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        _raise(f"unsupported token_type {_clean(token_type, secret, client_id)!r}", {}, ctx)
    lifetime = _lifetime(data.get("expires_in"))
    expires_at = None if lifetime is None else now + lifetime - min(leeway, lifetime / 2)
    scope = data.get("scope")
    return AccessToken(value, expires_at, scope if isinstance(scope, str) else None)


def _raise(message: str, details: dict[str, Any], ctx: dict[str, str]) -> NoReturn:
    raise token_error(
        message,
        token_url=ctx["token_url"],
        client_id=ctx["client_id"],
        secret=ctx["secret"],
        details=details,
    )
