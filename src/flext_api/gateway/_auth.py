"""Edge authentication: JWT, API keys, basic and forward-auth, with scopes and roles per route.

JWT and API keys are the server module's :class:`~flext_api.server.Authenticator`
(algorithms pinned by config, JWKS cached with refresh on an unknown ``kid`` and a
rate-limited refetch; API keys hashed at rest, compared in constant time against every
key, read from ``X-API-Key`` only - a key in the query string is ignored). Basic
passwords are PBKDF2-SHA256 hashes; a verified ``(user, password)`` pair is remembered by
its digest so the slow hash runs once per credential, not once per request. A verified
JWT is likewise remembered (bounded LRU keyed by the exact token) with its identity, so a
hot client's requests skip the signature check: each reuse re-checks ``exp`` and ``nbf``
(with the configured leeway, as the verifier does) against the gateway clock, a reuse is
at most ``TOKEN_MEMO`` seconds after the check, a refused token is never remembered, and
the memo is dropped whole when the JWKS key set is refetched or the auth config changes.
Forward-auth asks an HTTP service and passes chosen headers of its answer upstream.

Missing or bad credentials are a 401 carrying one ``WWW-Authenticate`` challenge per
accepted scheme (RFC 9110 §11.6.1, RFC 6750 §3); valid credentials lacking a scope or
role are a 403 (``error="insufficient_scope"``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import aiohttp
from starlette.exceptions import HTTPException
from starlette.types import Scope

from .._clock import Clock, get_clock
from ..server._auth import API_KEY_HEADER, Authenticator
from ..server._jwks import JwksFetch
from ..server._ws_auth import expires_at
from ._edge_config import EdgeAuthConfig, RouteAuth

__all__ = ["Denied", "EdgeAuth", "Identity", "hash_password"]

_API_KEY = API_KEY_HEADER.lower().encode()
_VERIFIED_MAX = 4096
TOKEN_MEMO = 30.0


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the request is from, once authenticated.

    ``subject`` is ``""`` only when the credentials name nobody (a forward-auth answer
    without its subject header; a JWT without ``sub`` is refused): then no subject header
    is sent upstream and a per-consumer rate limit counts by client IP.
    """

    subject: str
    method: str
    scopes: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    key_name: str | None = None
    upstream_headers: tuple[tuple[bytes, bytes], ...] = ()
    # When the credentials stop being valid (a JWT's exp plus the leeway; epoch seconds):
    # a proxied WebSocket is closed then.
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class Denied:
    """A refusal: ``status`` (401, 403 or 503), a safe ``detail`` and its challenges."""

    status: int
    detail: str
    challenges: tuple[str, ...] = ()


def hash_password(password: str, *, iterations: int = 600_000, salt: bytes | None = None) -> str:
    """The ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`` form ``edge.auth.basic`` takes.

    >>> hash_password("s3cret", iterations=1000, salt=bytes(16)).split("$")[:2]
    ['pbkdf2_sha256', '1000']
    """
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def _verify_password(password: str, encoded: str) -> bool:
    _, iterations, salt, expected = encoded.split("$")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(digest, bytes.fromhex(expected))


def safe_header_value(value: str) -> bytes:
    """``value`` as a header value: control characters (CR, LF...) removed."""
    return "".join(c for c in value if c >= " " and c != "\x7f").encode("utf-8", "replace")


_AUTH_BODY_MAX = 65536  # the most of a forward-auth answer's body read (and dropped)


def _clean(value: bytes) -> bytes:
    """``value`` with control bytes (CR, LF, NUL...) removed."""
    return bytes(b for b in value if b >= 0x20 and b != 0x7F)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class EdgeAuth:
    """The credential sources of one config (see module docstring)."""

    def __init__(
        self,
        config: EdgeAuthConfig,
        *,
        clock: Clock | None = None,
        jwks_fetch: JwksFetch | None = None,
    ) -> None:
        self.config = config
        jwt = config.jwt
        has_keys = bool(jwt.api_keys or jwt.api_key_hashes)
        self.authenticator = (
            Authenticator(jwt, clock=clock, jwks_fetch=jwks_fetch)
            if jwt.jwt_enabled or has_keys
            else None
        )
        self._verified: OrderedDict[bytes, str] = OrderedDict()
        self._clock = get_clock(clock)
        # Verified tokens -> (identity, wall-clock window it may be reused in).
        self._tokens: OrderedDict[bytes, tuple[Identity, float, float]] = OrderedDict()
        self._keys_seen = 0  # the JWKS key-set generation the memo was filled under
        self._leeway = float(jwt.jwt_leeway)
        self._identity_lines: dict[Identity, list[tuple[bytes, bytes]]] = {}
        self._session: aiohttp.ClientSession | None = None
        realm = config.realm.replace('"', "")
        self._schemes = {
            "jwt": f'Bearer realm="{realm}"',
            "basic": f'Basic realm="{realm}", charset="UTF-8"',
            "api_key": f'ApiKey realm="{realm}", header="{API_KEY_HEADER}"',
        }

    def _challenges(self, rule: RouteAuth, error: str | None = None) -> tuple[str, ...]:
        out = []
        for method in rule.methods:
            challenge = self._schemes.get(method)
            if challenge is None:
                continue
            if method == "jwt" and error is not None:
                challenge += f', error="{error}"'
            out.append(challenge)
        return tuple(out)

    async def authenticate(self, scope: Scope, rule: RouteAuth) -> Identity | Denied:
        """The identity behind ``scope``'s credentials, or why it is refused."""
        found = await self._identify(scope, rule)
        if isinstance(found, Denied):
            return found
        return self._with_grants(found, rule)

    def authenticate_now(self, scope: Scope, rule: RouteAuth) -> Identity | Denied | None:
        """:meth:`authenticate` when its answer is known without waiting: a bearer token
        this gateway verified already (and still in its validity window); None otherwise
        (nothing was checked)."""
        if "jwt" not in rule.methods:
            return None
        authorization = _header(scope, b"authorization")
        scheme, _, credentials = (authorization or b"").partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        found = self._remembered(credentials.strip())
        if found is None:
            return None
        return self._with_grants(found, rule)

    def _with_grants(self, found: Identity, rule: RouteAuth) -> Identity | Denied:
        """``found``, or the 403 when it lacks the route's scopes or roles."""
        if rule.scopes and not frozenset(rule.scopes) <= found.scopes:
            bearer = self._schemes["jwt"] + ', error="insufficient_scope"'
            bearer += f', scope="{" ".join(sorted(rule.scopes))}"'
            return Denied(403, "The credentials lack a required scope.", (bearer,))
        if rule.roles and not frozenset(rule.roles) & found.roles:
            return Denied(403, "The credentials lack a required role.")
        return found

    async def _identify(self, scope: Scope, rule: RouteAuth) -> Identity | Denied:
        authorization = _header(scope, b"authorization")
        scheme, _, credentials = (authorization or b"").partition(b" ")
        scheme = scheme.lower()
        methods = rule.methods
        if scheme == b"bearer" and "jwt" in methods:
            token = credentials.strip()
            return self._remembered(token) or await self._jwt_or_key(rule, token=token)
        if scheme == b"basic" and "basic" in methods:
            return await self._basic(rule, credentials.strip())
        api_key = _header(scope, _API_KEY)
        if api_key is not None and "api_key" in methods:
            return await self._jwt_or_key(rule, api_key=api_key.decode("latin-1"))
        if "forward" in methods:
            return await self._forward(scope)
        return Denied(401, "Authentication is required.", self._challenges(rule))

    def _remembered(self, token: bytes) -> Identity | None:
        """The identity of an already verified ``token`` still inside its validity window."""
        memo = self._tokens.get(token)
        if memo is None:
            return None
        jwks = self.authenticator.jwks if self.authenticator is not None else None
        if jwks is not None and jwks.generation != self._keys_seen:
            self._tokens.clear()  # the key set was refetched: every token is checked again
            return None
        identity, not_before, until = memo
        if not not_before <= self._clock.time() < until:
            del self._tokens[token]
            return None
        self._tokens.move_to_end(token)
        return identity

    async def _jwt_or_key(
        self, rule: RouteAuth, *, token: bytes | None = None, api_key: str | None = None
    ) -> Identity | Denied:
        assert self.authenticator is not None  # checked against the config at load time
        text = token.decode("latin-1") if token is not None else None
        try:
            principal = await self.authenticator.authenticate(text, api_key)
        except HTTPException as exc:
            error = "invalid_token" if token is not None else None
            return Denied(401, str(exc.detail), self._challenges(rule, error))
        identity = Identity(
            subject=principal.subject,
            method=principal.method,
            scopes=principal.scopes,
            roles=principal.roles,
            key_name=principal.subject if principal.method == "api_key" else None,
            expires_at=expires_at(principal, self._leeway),
        )
        if token is not None:
            # Read after the check, with no await in between: the key set it was checked with.
            jwks = self.authenticator.jwks
            self._remember(token, identity, principal.claims, jwks.generation if jwks else 0)
        return identity

    def _remember(self, token: bytes, identity: Identity, claims: Any, generation: int) -> None:
        """Keep a verified token for reuse within the window its claims allow."""
        expires, starts = claims.get("exp"), claims.get("nbf")
        if not isinstance(expires, int | float):
            return  # no expiry: verified every time
        if generation != self._keys_seen:
            self._tokens.clear()
            self._keys_seen = generation
        now = self._clock.time()
        leeway = self._leeway
        not_before = float(starts) - leeway if isinstance(starts, int | float) else -math.inf
        until = min(float(expires) + leeway, now + TOKEN_MEMO)
        self._tokens[token] = (identity, not_before, until)
        if len(self._tokens) > _VERIFIED_MAX:
            self._tokens.popitem(last=False)

    async def _basic(self, rule: RouteAuth, credentials: bytes) -> Identity | Denied:
        refused = Denied(401, "The user name or password is wrong.", self._challenges(rule))
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
            user, sep, password = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return refused
        encoded = self.config.basic.get(user)
        if not sep or encoded is None:
            return refused
        memo = hashlib.sha256(credentials + b"\0" + encoded.encode()).digest()
        if memo in self._verified:
            self._verified.move_to_end(memo)
            return Identity(subject=user, method="basic")
        # The hash is slow by design: off the event loop.
        if not await asyncio.to_thread(_verify_password, password, encoded):
            return refused
        self._verified[memo] = user
        if len(self._verified) > _VERIFIED_MAX:
            self._verified.popitem(last=False)
        return Identity(subject=user, method="basic")

    async def _forward(self, scope: Scope) -> Identity | Denied:
        forward = self.config.forward
        assert forward is not None  # checked against the config at load time
        wanted = set(forward.pass_headers)
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k.decode("latin-1") in wanted
        }
        headers["X-Forwarded-Method"] = scope.get("method", "GET")
        query = scope.get("query_string", b"").decode("latin-1")
        # The path as the client sent it (percent-encoded): the decoded one may hold
        # CR/LF from %0d%0a, which no header may carry.
        raw_path = scope.get("raw_path") or scope["path"].encode()
        headers["X-Forwarded-Uri"] = raw_path.decode("latin-1") + ("?" + query if query else "")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
            )
        try:
            async with self._session.get(
                forward.url,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=forward.timeout),
            ) as response:
                # Only the status and headers count: read a small body to keep the
                # connection, never a big one (leaving the block closes it instead).
                read = 0
                async for chunk in response.content.iter_chunked(16384):
                    read += len(chunk)
                    if read > _AUTH_BODY_MAX:
                        break
                status = response.status
                answer = response.headers
                if 200 <= status < 300:
                    # Every value, as the bytes the service sent (aiohttp decodes them as
                    # UTF-8 with surrogateescape), control characters removed.
                    copied = tuple(
                        (name.encode(), _clean(value.encode("utf-8", "surrogateescape")))
                        for name in forward.copy_headers
                        for value in answer.getall(name, ())
                    )
                    return Identity(
                        subject=answer.get(forward.subject_header, ""),
                        method="forward",
                        upstream_headers=copied,
                    )
                challenges = tuple(answer.getall("WWW-Authenticate", ()))
        except (aiohttp.ClientError, TimeoutError, OSError):
            return Denied(503, "The authentication service is unavailable.")
        if status == 403:
            return Denied(403, "The authentication service refused the request.")
        if status >= 500 or status == 429 or 300 <= status < 400:
            # The service failed, is throttling us, or sent us elsewhere: the
            # credentials were not judged.
            return Denied(503, "The authentication service is unavailable.")
        return Denied(401, "The authentication service refused the credentials.", challenges)

    def upstream_names(self) -> frozenset[bytes]:
        """Every header name the gateway sets upstream (dropped from client requests)."""
        names = set(self.config.identity_headers.names)
        if self.config.forward is not None:
            names.update(n.encode() for n in self.config.forward.copy_headers)
        return frozenset(names)

    def identity_headers(self, identity: Identity) -> list[tuple[bytes, bytes]]:
        """The headers that tell the upstream who the request is from."""
        found = self._identity_lines.get(identity)
        if found is not None:
            return found
        names = self.config.identity_headers
        out = [(names.method.encode(), identity.method.encode())]
        subject = safe_header_value(identity.subject)
        if subject:  # an empty value would read as "authenticated as nobody"
            out.insert(0, (names.subject.encode(), subject))
        if identity.scopes:
            out.append((names.scopes.encode(), " ".join(sorted(identity.scopes)).encode()))
        if identity.roles:
            out.append((names.roles.encode(), " ".join(sorted(identity.roles)).encode()))
        out.extend(identity.upstream_headers)
        if len(self._identity_lines) >= _VERIFIED_MAX:
            self._identity_lines.clear()
        self._identity_lines[identity] = out
        return out

    async def aclose(self) -> None:
        """Close the forward-auth session, if one was opened."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def describe(self) -> dict[str, Any]:
        """What the dashboard shows: configured sources."""
        return {
            "jwt": self.config.jwt.jwt_enabled,
            "basic_users": len(self.config.basic),
            "forward": self.config.forward is not None,
        }
