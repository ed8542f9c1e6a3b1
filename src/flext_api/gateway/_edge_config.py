"""Config of the gateway's edge policies: auth, rate limits, concurrency, cache, transforms.

Every policy is set per route; ``edge.defaults`` gives the value a route uses when it
does not set its own (a route overrides a default by setting the key, e.g.
``auth: {required: false}`` on a public route under a global auth default)::

    edge:
      redis_url: redis://127.0.0.1:6379/0
      auth:
        jwt: {jwt_secret: "...", jwt_audience: orders-api}
        basic: {admin: "pbkdf2_sha256$600000$<salt hex>$<hash hex>"}
      defaults:
        rate_limits: [{limit: "100/minute", key: ip}]
    routes:
      - name: orders
        match: {path_prefix: /orders}
        cluster: orders
        cache: true
        auth: {methods: [jwt, api_key], scopes: ["orders:read"]}
        rate_limits: [{limit: "10/second", key: consumer, store: redis, on_store_error: closed}]
        concurrency: 64

See ``docs/gateway-policies.md`` for each policy.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._redact import strip_url
from .._server_config import AuthConfig, Ipv6Prefix, subject_name_ok
from .._syntax import split_config_url

__all__ = [
    "AggregateBackend",
    "AggregateConfig",
    "EdgeAuthConfig",
    "EdgeConfig",
    "ForwardAuthConfig",
    "IdentityHeaders",
    "RateLimitRule",
    "RouteAuth",
    "RoutePolicies",
    "SharedCacheConfig",
    "TransformConfig",
]

AuthMethod = Literal["jwt", "api_key", "basic", "forward"]
_DEVICE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BASIC_HASH = re.compile(r"^pbkdf2_sha256\$\d{4,7}\$[0-9a-f]{16,128}\$[0-9a-f]{64}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ForwardAuthConfig(_Model):
    """Ask an HTTP service: a 2xx lets the request through, anything else is refused.

    ``pass_headers`` are copied from the client's request to the auth service;
    ``copy_headers`` from the auth service's 2xx answer onto the upstream request (the
    client's own values of these are always dropped). ``subject_header`` names the answer
    header that carries the identity (for per-consumer limits and ``X-Auth-Subject``).
    """

    url: str
    timeout: float = Field(default=2.0, gt=0)
    pass_headers: tuple[str, ...] = ("authorization", "cookie")
    copy_headers: tuple[str, ...] = ()
    subject_header: str = "x-auth-subject"

    @field_validator("pass_headers", "copy_headers")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.lower() for v in value)

    @field_validator("copy_headers")
    @classmethod
    def _copyable(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _settable(value)

    @field_validator("subject_header")
    @classmethod
    def _lower_one(cls, value: str) -> str:
        return value.lower()


# Headers the gateway sets upstream are dropped from every client request first: these
# would then be taken from every request (its framing, its host, its credentials).
_NOT_SETTABLE = frozenset(
    {"authorization", "connection", "content-length", "content-type", "cookie", "host",
     "keep-alive", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"}
)  # fmt: skip


def _settable(names: tuple[str, ...]) -> tuple[str, ...]:
    for name in names:
        if name.lower() in _NOT_SETTABLE:
            raise ValueError(
                f"{name!r} cannot carry an identity: it would be dropped from every client request"
            )
    return names


class IdentityHeaders(_Model):
    """Headers that carry the authenticated identity upstream.

    Dropped from every inbound request on every route (a client cannot forge them), then
    set by the gateway when auth succeeded.
    """

    subject: str = "x-auth-subject"
    method: str = "x-auth-method"
    scopes: str = "x-auth-scopes"
    roles: str = "x-auth-roles"

    @model_validator(mode="after")
    def _lower(self) -> IdentityHeaders:
        for name in ("subject", "method", "scopes", "roles"):
            if getattr(self, name) != getattr(self, name).lower():
                raise ValueError(f"identity header {name!r} must be lower case")
        _settable((self.subject, self.method, self.scopes, self.roles))
        return self

    @property
    def names(self) -> frozenset[bytes]:
        """All four names as ASGI header names."""
        return frozenset(n.encode() for n in (self.subject, self.method, self.scopes, self.roles))


class EdgeAuthConfig(_Model):
    """The credential sources routes may accept.

    ``jwt`` is the server module's :class:`~flext_api.AuthConfig` (pinned algorithms,
    JWKS with cache, refresh on an unknown ``kid`` and rate-limited refetch; API keys as
    SHA-256 digests in ``api_key_hashes``, read from ``X-API-Key`` only). ``basic`` maps
    a user to a ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`` string (make one
    with :func:`flext_api.gateway.hash_password`).
    """

    jwt: AuthConfig = AuthConfig()
    basic: dict[str, str] = Field(default_factory=dict)
    forward: ForwardAuthConfig | None = None
    identity_headers: IdentityHeaders = IdentityHeaders()
    realm: str = "gateway"

    @field_validator("basic")
    @classmethod
    def _hashed(cls, value: dict[str, str]) -> dict[str, str]:
        for user, digest in value.items():
            if ":" in user:
                raise ValueError(f"basic user {user!r} contains ':'")
            if not subject_name_ok(user):
                raise ValueError(
                    f"basic user {user!r}: the name is the request's subject (sent upstream "
                    "in a header): non-empty, not all spaces, no control character"
                )
            if not _BASIC_HASH.match(digest):
                raise ValueError(
                    f"basic user {user!r}: the password must be a "
                    "pbkdf2_sha256$<iterations>$<salt hex>$<hash hex> string, never plain text"
                )
        return value


class RouteAuth(_Model):
    """Auth of one route: accepted ``methods``; every one of ``scopes``, any of ``roles``."""

    required: bool = True
    methods: tuple[AuthMethod, ...] = ("jwt", "api_key")
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()


class RateLimitRule(_Model):
    """One limit: ``limit`` (``"100/minute"``) per ``key``.

    ``key``: ``consumer`` (the authenticated subject, else the client IP), ``api_key``
    (the key's name), ``ip`` (the client behind ``trusted_proxies``), ``header`` (the value
    of ``header``; absent -> the client IP). A client IP that is IPv6 counts as its
    network of ``ipv6_prefix`` bits (64: one host usually holds a whole /64 and would
    otherwise get a bucket per address; 128: per address); an IPv4 one per address.

    ``store: redis`` shares the count between gateways through ``edge.redis_url``;
    ``on_store_error`` is what happens while Redis is unreachable: ``open`` lets requests
    through, ``closed`` answers 503 (both counted in ``gateway_ratelimit_store_errors``).
    ``lease`` (redis only): the most slots one gateway takes from Redis at once for a
    key and spends locally (default 1 % of the limit, at most 64; 1: a round trip per
    request). Never more than the limit is admitted; up to ``lease - 1`` slots per
    gateway and key may go unused when a window ends.
    """

    limit: str
    key: Literal["consumer", "api_key", "ip", "header"] = "ip"
    header: str | None = None
    store: Literal["memory", "redis"] = "memory"
    on_store_error: Literal["open", "closed"] = "open"
    name: str | None = None
    ipv6_prefix: Ipv6Prefix = 64
    lease: int | None = Field(default=None, ge=1, le=10000)

    @field_validator("limit")
    @classmethod
    def _parses(cls, value: str) -> str:
        from ..server._ratelimit import parse_limit

        parse_limit(value)
        return value

    @model_validator(mode="after")
    def _header_named(self) -> RateLimitRule:
        if self.key == "header" and not self.header:
            raise ValueError("key: header needs header: <name>")
        if self.lease is not None and self.store != "redis":
            raise ValueError("lease is for store: redis (a memory count is local already)")
        return self


_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})


class TransformConfig(_Model):
    """Request header and query rewrites; a JSON response field allow or deny list.

    ``response_allow``/``response_deny`` apply to top-level keys of a JSON object body
    (``application/json`` or ``+json``, up to ``max_json_bytes``, gzip and deflate
    decoded). A JSON body the filter cannot read (bigger, another coding, not JSON, or a
    non-object under an allow list) is refused with a 502 ``unfilterable_response``;
    ``on_unreadable: pass`` sends it as it came. Other types pass as they are.
    """

    request_headers_add: dict[str, str] = Field(default_factory=dict)
    request_headers_remove: tuple[str, ...] = ()
    query_add: dict[str, str] = Field(default_factory=dict)
    query_remove: tuple[str, ...] = ()
    response_allow: tuple[str, ...] | None = None
    response_deny: tuple[str, ...] = ()
    max_json_bytes: int = Field(default=1 << 20, ge=1)
    on_unreadable: Literal["reject", "pass"] = "reject"

    @field_validator("request_headers_remove")
    @classmethod
    def _framing_kept(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        framing = sorted({n for n in value if n.lower() in _FRAMING})
        if framing:  # the proxy frames the forwarded request by them
            raise ValueError(
                f"request_headers_remove cannot remove {', '.join(framing)}: Host, "
                "Content-Length and Transfer-Encoding frame the forwarded request"
            )
        return value


class AggregateBackend(_Model):
    """One backend of a composite route: ``GET cluster + path``, merged under ``key``."""

    key: str
    cluster: str
    path: str
    timeout: float = Field(default=2.0, gt=0)

    @field_validator("key")
    @classmethod
    def _not_the_marker(cls, value: str) -> str:
        if value == "_partial":
            raise ValueError("'_partial' is the marker of a partial answer, not a key")
        return value

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must start with '/'")
        return value


class AggregateConfig(_Model):
    """A composite route: the backends are called concurrently, their JSON merged.

    Each answer lands under its ``key`` (``merge: keyed``) or its object's keys are merged
    into one object (``merge: flat``; a backend's own ``_partial`` key is dropped, the
    marker is the gateway's). A backend that fails, passes its ``timeout`` or answers
    more than ``max_body_bytes`` is left out, listed in ``_partial`` and the response
    carries ``X-Aggregate-Partial``.
    """

    backends: list[AggregateBackend] = Field(min_length=1)
    merge: Literal["keyed", "flat"] = "keyed"
    max_body_bytes: int = Field(default=1 << 20, ge=1)

    @field_validator("backends")
    @classmethod
    def _keys_unique(cls, value: list[AggregateBackend]) -> list[AggregateBackend]:
        keys = [backend.key for backend in value]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:  # one answer would overwrite the other (or sit beside its _partial)
            raise ValueError(f"backend keys must be unique: {', '.join(map(repr, twice))}")
        return value


class RoutePolicies(_Model):
    """The policies of ``edge.defaults`` (a route's own keys override them one by one)."""

    auth: RouteAuth | None = None
    rate_limits: tuple[RateLimitRule, ...] | None = None
    concurrency: int | None = Field(default=None, ge=1)
    transform: TransformConfig | None = None


class SharedCacheConfig(_Model):
    """The shared RFC 9111 cache behind ``cache: true`` routes.

    ``store: redis`` keeps entries in ``edge.redis_url`` (shared by gateways); bodies
    above ``max_body_bytes`` are streamed through and not stored; SSE never is.
    ``stale_if_unreachable``: seconds past expiry a stored response may answer when no
    upstream could be reached at all (connect failure, reset, timeout - RFC 9111 §4.2.4's
    "disconnected" case), unless it says ``must-revalidate``, ``proxy-revalidate``,
    ``s-maxage`` or ``no-cache``. ``targeted``: RFC 9213 fields obeyed instead of
    ``Cache-Control`` (``Surrogate-Control`` is removed before the client sees it).
    ``surrogate_device``: the token the gateway announces upstream in
    ``Surrogate-Capability: <token>="Surrogate/1.0"`` (Edge Architecture 1.0); a
    ``Surrogate-Control`` directive targeted ``;<token>`` applies to it, one targeted at
    another device does not. None announces nothing.
    """

    store: Literal["memory", "redis"] = "memory"
    max_entries: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=1 << 20, ge=1)
    heuristic_fraction: float = Field(default=0.1, ge=0, le=1)
    stale_if_error: float = Field(default=0.0, ge=0)
    stale_while_revalidate: float = Field(default=0.0, ge=0)
    stale_if_unreachable: float = Field(default=3600.0, ge=0)
    targeted: tuple[str, ...] = ("cdn-cache-control", "surrogate-control")
    surrogate_device: str | None = "flext"
    namespace: str = Field(default="flext-gw:", min_length=1)

    @field_validator("targeted")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.lower() for v in value)

    @field_validator("surrogate_device")
    @classmethod
    def _device_token(cls, value: str | None) -> str | None:
        # A header token: it is sent in Surrogate-Capability and matched after a ';'.
        if value is not None and not _DEVICE_TOKEN.fullmatch(value):
            raise ValueError(
                f"surrogate_device must be letters, digits, '-' or '_' (1-64), got {value!r}"
            )
        return value.lower() if value is not None else None


class EdgeConfig(_Model):
    """Everything the edge policies share: Redis, credential sources, cache, defaults."""

    redis_url: str | None = None
    auth: EdgeAuthConfig = EdgeAuthConfig()
    cache: SharedCacheConfig = SharedCacheConfig()
    defaults: RoutePolicies = RoutePolicies()

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        shown = strip_url(value)  # no password in the error
        try:
            scheme = split_config_url(value).scheme
        except ValueError as exc:
            raise ValueError(f"{shown!r}: {exc}") from None
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"{shown!r} is not a redis://, rediss:// or unix:// URL")
        return value

    @model_validator(mode="after")
    def _redis_when_used(self) -> EdgeConfig:
        needs = self.cache.store == "redis" or any(
            r.store == "redis" for r in self.defaults.rate_limits or ()
        )
        if needs and not self.redis_url:
            raise ValueError("a redis store is configured but edge.redis_url is not set")
        return self
