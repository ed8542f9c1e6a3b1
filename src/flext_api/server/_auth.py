"""Authentication and authorization dependencies: ``require_auth`` and ``require_roles``.

Credentials are read from two places only: ``Authorization: Bearer <JWT>`` and the
``X-API-Key`` header. A token or key in the query string is ignored (it would end up in
proxy and access logs). API keys are compared as SHA-256 digests of the bytes sent (a
non-ASCII key matches when sent as UTF-8) with ``hmac.compare_digest`` against *every*
configured key, so neither the key's length nor which key matched shows in the timing.

Status codes follow RFC 6750 §3.1 (and FastAPI PR #13786): missing or invalid
credentials -> 401 with ``WWW-Authenticate: Bearer realm=...`` (plus ``error="invalid_token"``
when a token was sent); authenticated but lacking a scope or role -> 403.

    @app.get("/admin", dependencies=[Depends(require_roles("admin"))])
    @app.get("/me")
    async def me(user: Annotated[Principal, Depends(require_auth(scopes=["profile"]))]): ...
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.requests import Request

from flext_api._clock import Clock
from flext_api._errors import ConfigError
from flext_api._server_config import AuthConfig

from ._jwks import JwksCache, JwksFetch
from ._jwt import InvalidTokenError, JwtVerifier

__all__ = ["API_KEY_HEADER", "Authenticator", "Principal", "require_auth", "require_roles"]

API_KEY_HEADER = "X-API-Key"

_bearer = HTTPBearer(auto_error=False)
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made the request, as established by :func:`require_auth`.

    ``subject``: a JWT's ``sub``, a non-empty string (a token without one is refused), or
    the configured name of the API key.
    """

    subject: str
    method: Literal["jwt", "api_key"]
    scopes: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict)


def _strings(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list | tuple):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


class Authenticator:
    """Turns request credentials into a :class:`Principal` for one :class:`AuthConfig`."""

    def __init__(
        self,
        config: AuthConfig,
        *,
        jwks_fetch: JwksFetch | None = None,
        clock: Clock | None = None,
        logger: Any = None,
    ) -> None:
        self.config = config
        self.jwks: JwksCache | None = None
        if config.jwks_url is not None and config.jwt_public_key is None:
            self.jwks = JwksCache(
                config.jwks_url,
                algorithms=config.algorithms,
                fetch=jwks_fetch,
                ttl=config.jwks_cache_ttl,
                min_refresh_interval=config.jwks_min_refresh_interval,
                timeout=config.jwks_timeout,
                clock=clock,
                logger=logger,
            )
        self.jwt = JwtVerifier(config, jwks=self.jwks) if config.jwt_enabled else None
        keys = [
            (name, hashlib.sha256(key.get_secret_value().encode()).digest())
            for name, key in config.api_keys.items()
        ]
        keys += [(name, bytes.fromhex(digest)) for name, digest in config.api_key_hashes.items()]
        self._api_keys = keys
        # Inside a quoted-string a backslash escapes the next character: a realm ending
        # in one would swallow the closing quote, so neither may pass.
        self._realm = config.realm.replace('"', "").replace("\\", "")

    def challenge(self, error: str | None = None, description: str | None = None) -> str:
        """A ``WWW-Authenticate`` value for a 401."""
        value = f'Bearer realm="{self._realm}"'
        if error is not None:
            value += f', error="{error}"'
        if description is not None:
            value += f', error_description="{description}"'
        return value

    def unauthorized(self, detail: str, error: str | None = None) -> HTTPException:
        """The 401 to raise, with its challenge."""
        desc = detail if error is not None else None
        return HTTPException(401, detail, headers={"WWW-Authenticate": self.challenge(error, desc)})

    def match_api_key(self, key: str) -> str | None:
        """The name of the configured key equal to ``key``, or None (constant time).

        ``key`` is a header value as Starlette decodes it (latin-1): encoded back, it is
        the bytes the client sent, so a non-ASCII key sent as UTF-8 matches the key
        configured (or hashed) as UTF-8. A str that cannot have come off the wire (a
        character above U+00FF) is taken as UTF-8 text.
        """
        try:
            sent = key.encode("latin-1")
        except UnicodeEncodeError:
            sent = key.encode()
        digest = hashlib.sha256(sent).digest()
        found = None
        for name, expected in self._api_keys:  # no early exit: timing says nothing
            if hmac.compare_digest(digest, expected):
                found = name
        return found

    async def authenticate(self, token: str | None, api_key: str | None) -> Principal:
        """The principal for a bearer token or an API key; raises the 401 otherwise."""
        if token is not None:
            if self.jwt is None:
                raise self.unauthorized("Bearer tokens are not accepted here.", "invalid_token")
            try:
                claims = await self.jwt.verify(token)
            except InvalidTokenError as exc:
                raise self.unauthorized(exc.description, "invalid_token") from exc
            return Principal(
                subject=claims["sub"],  # a non-empty string: the verifier checked it
                method="jwt",
                scopes=_strings(claims.get(self.config.scope_claim)) | _strings(claims.get("scp")),
                roles=_strings(claims.get(self.config.roles_claim)),
                claims=claims,
            )
        if api_key is not None:
            name = self.match_api_key(api_key)
            if name is None:
                raise self.unauthorized("The API key is not valid.")
            scopes = frozenset(self.config.api_key_scopes.get(name, ()))
            return Principal(subject=name, method="api_key", scopes=scopes)
        raise self.unauthorized("Authentication is required.")


def _authenticator(request: Request) -> Authenticator:
    state = getattr(request.app.state, "flext", None)
    authenticator = getattr(state, "authenticator", None)
    if not isinstance(authenticator, Authenticator):
        raise ConfigError("require_auth needs an app built by create_fastapi_app")
    return authenticator


def require_auth(*, scopes: Iterable[str] = ()) -> Callable[..., Awaitable[Principal]]:
    """A dependency returning the request's :class:`Principal`; 401/403 otherwise.

    ``scopes``: every one of them must be granted (JWT ``scope``/``scp`` claim, or the
    API key's ``api_key_scopes``), else 403 ``insufficient_scope``.
    """
    needed = frozenset(scopes)

    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        api_key: Annotated[str | None, Security(_api_key)],
    ) -> Principal:
        authenticator = _authenticator(request)
        token = bearer.credentials if bearer is not None else None
        principal = await authenticator.authenticate(token, api_key)
        if not needed <= principal.scopes:
            challenge = authenticator.challenge("insufficient_scope")
            challenge += f', scope="{" ".join(sorted(needed))}"'
            raise HTTPException(
                403, "The credentials lack a required scope.", {"WWW-Authenticate": challenge}
            )
        request.state.principal = principal
        return principal

    return dependency


def require_roles(
    *roles: str, require_all: bool = False, scopes: Iterable[str] = ()
) -> Callable[..., Awaitable[Principal]]:
    """A dependency requiring one of ``roles`` (all of them with ``require_all``); 403 if not."""
    if not roles:
        raise ValueError("require_roles needs at least one role")
    wanted = frozenset(roles)
    authenticated = require_auth(scopes=scopes)

    # A default, not Annotated: the string annotation could not see the local `authenticated`.
    async def dependency(principal: Principal = Depends(authenticated)) -> Principal:  # noqa: B008
        granted = wanted <= principal.roles if require_all else bool(wanted & principal.roles)
        if not granted:
            raise HTTPException(403, "The credentials lack a required role.")
        return principal

    return dependency
