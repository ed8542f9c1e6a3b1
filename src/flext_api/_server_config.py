"""``ServerConfig``: settings of :func:`flext_api.create_fastapi_app`, secure by default.

Kept in its own module so the server's settings can grow without touching the client's.
Pure pydantic (no FastAPI import): :class:`~flext_api.FlextApiConfig` embeds it, so it
loads from the environment (``FLEXT_API_SERVER__RATE_LIMIT__DEFAULT_LIMIT=100/minute``)
and files even where the ``server`` extra is not installed.

Settings that would make the service insecure fail when the config is built, with a
:class:`~flext_api.ConfigError` naming the field: ``*`` CORS origins with credentials,
an HMAC JWT secret shorter than its hash (RFC 7518 §3.2; 32 bytes for HS256), mixed HMAC
and public-key JWT algorithms (RFC 8725 §2.1), ``none``, or a plain-HTTP JWKS URL to a
non-loopback host.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from ._errors import ConfigError
from ._syntax import check_networks, sendable_header, split_config_url

__all__ = [
    "AccessLogConfig",
    "AuthConfig",
    "CorsConfig",
    "HealthConfig",
    "MetricsConfig",
    "SecurityHeadersConfig",
    "ServerConfig",
    "ServerRateLimitConfig",
]

MIB = 1024 * 1024
_HMAC_MIN_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# Prometheus client's default buckets, which are also OTel's advice for request duration.
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class _Frozen(BaseModel):
    # allow_inf_nan=False: an infinite timeout or interval breaks the arithmetic later (an
    # infinite jwks_timeout made every JWT request a 500), as in the client's config.
    # hide_input_in_errors: the config holds secrets (JWT secrets, API keys, Redis URLs
    # with passwords) and its errors are logged; they say where and what, not the value.
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, hide_input_in_errors=True
    )


def _check_ipv6_prefix(value: int) -> int:
    # Below /32 one key would cover a whole provider's allocation (RIRs hand out /32s).
    if not 32 <= value <= 128:
        raise ValueError(
            f"ipv6_prefix must be between 32 and 128 (64: one key per /64, a single "
            f"host's usual allocation; 128: one key per address), got {value}"
        )
    return value


Ipv6Prefix = Annotated[int, AfterValidator(_check_ipv6_prefix)]
"""The prefix length an IPv6 client's rate-limit key covers (32..128)."""


def _check_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"must start with '/': {value!r}")
    return value


class CorsConfig(_Frozen):
    """Cross-origin requests. No origins (the default) means no CORS headers at all."""

    allow_origins: tuple[str, ...] = ()
    allow_credentials: bool = False
    allow_methods: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
    allow_headers: tuple[str, ...] = ("Authorization", "Content-Type", "X-API-Key", "X-Request-ID")
    expose_headers: tuple[str, ...] = (
        "X-Request-ID",
        "X-Response-Time",
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "RateLimit-Policy",
    )
    max_age: int = Field(default=600, ge=0)

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(origin if origin == "*" else _serialized_origin(origin) for origin in value)

    # Each is sent in a preflight's header; a CR/LF in one would fail every preflight.
    @field_validator("allow_headers", "expose_headers", "allow_methods")
    @classmethod
    def _tokens(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            sendable_header(name)
        return value

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> CorsConfig:
        if self.allow_credentials and "*" in self.allow_origins:
            # Starlette reflects any Origin in this case (Kludex/starlette#3246); refuse.
            raise ConfigError(
                "cors.allow_origins: '*' cannot be combined with cors.allow_credentials=True; "
                "list the trusted origins instead"
            )
        return self


def _serialized_origin(origin: str) -> str:
    """``origin`` as a browser serializes it (RFC 6454 §6.2): scheme and host in lower
    case, no default port, no trailing slash - the form the ``Origin`` header carries, so
    ``https://App.Example.com:443/`` matches ``https://app.example.com``."""
    message = f"origin must be scheme://host[:port] or '*': {origin!r}"
    try:
        parts = split_config_url(origin.rstrip("/"))
        port = parts.port
    except ValueError:
        raise ValueError(message) from None
    scheme = parts.scheme.lower()
    plain = not (parts.path or parts.query or parts.fragment or "@" in parts.netloc)
    if scheme not in _DEFAULT_PORTS or not parts.hostname or not plain:
        raise ValueError(message)
    host = parts.hostname.lower()
    if not host.isascii():  # browsers send an IDN host in its punycode form
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(message) from None
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    suffix = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{suffix}"


class SecurityHeadersConfig(_Frozen):
    """Headers added to every response (OWASP REST Security Cheat Sheet set).

    A header the handler already set is left alone. ``None`` turns one header off.
    ``hsts`` is ignored by browsers over plain HTTP (RFC 6797 §8.1), so it is safe on.
    """

    enabled: bool = True
    cache_control: str | None = "no-store"
    content_security_policy: str | None = "default-src 'none'; frame-ancestors 'none'"
    docs_content_security_policy: str = (
        "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
        "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
        "frame-ancestors 'none'"
    )
    strict_transport_security: str | None = "max-age=31536000; includeSubDomains"
    content_type_options: str | None = "nosniff"
    frame_options: str | None = "DENY"
    referrer_policy: str | None = "no-referrer"
    cross_origin_opener_policy: str | None = "same-origin"
    cross_origin_resource_policy: str | None = "same-origin"
    permissions_policy: str | None = (
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
        "microphone=(), payment=(), usb=()"
    )
    extra: dict[str, str] = Field(default_factory=dict)

    def headers(self) -> dict[str, str | None]:
        """Every header by its name, ``extra`` included (None: that header is off)."""
        return {
            "Cache-Control": self.cache_control,
            "Content-Security-Policy": self.content_security_policy,
            "Strict-Transport-Security": self.strict_transport_security,
            "X-Content-Type-Options": self.content_type_options,
            "X-Frame-Options": self.frame_options,
            "Referrer-Policy": self.referrer_policy,
            "Cross-Origin-Opener-Policy": self.cross_origin_opener_policy,
            "Cross-Origin-Resource-Policy": self.cross_origin_resource_policy,
            "Permissions-Policy": self.permissions_policy,
            **self.extra,
        }

    # A header no response can carry would fail every response at the server (uvicorn
    # refuses it), so it is refused when the config is read.
    @model_validator(mode="after")
    def _sendable(self) -> SecurityHeadersConfig:
        for name, value in self.headers().items():
            if value is not None:
                sendable_header(name, value)
        sendable_header("Content-Security-Policy", self.docs_content_security_policy)
        return self


class ServerRateLimitConfig(_Frozen):
    """Inbound rate limiting (``limits`` library, memory or Redis storage).

    ``default_limit`` applies to every route except health, readiness and metrics; it is
    off by default because a per-client limit is only right once ``trusted_proxies`` is
    set for the deployment (behind an unlisted proxy every client shares one bucket).
    Named, stricter buckets (``Depends(rate_limit("login", "5/minute"))``) work either way.
    ``strategy`` defaults to the moving window, the one that never lets more than the
    limit through in any window (the sliding-window counter estimates and can).
    ``ipv6_prefix``: an IPv6 client is keyed by its network of this many bits (64: one
    host usually holds a whole /64 and would otherwise get a bucket per address; 128:
    per address); IPv4 clients are keyed per address.
    """

    enabled: bool = True
    default_limit: str | None = None
    storage_uri: str = "memory://"
    strategy: Literal["fixed-window", "moving-window", "sliding-window-counter"] = "moving-window"
    trusted_proxies: tuple[str, ...] = ()
    ipv6_prefix: Ipv6Prefix = 64
    key_prefix: str = "flext-api"
    headers: bool = True
    fail_open: bool = True

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        check_networks(value)
        return value

    @field_validator("storage_uri")
    @classmethod
    def _storage(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"memory", "redis", "rediss"}:
            raise ValueError(f"storage_uri must be memory:// or redis(s)://...: {value!r}")
        return value


def subject_name_ok(name: str) -> bool:
    """A configured name that becomes a principal's subject (an API key's name, a basic
    user): non-empty, not all spaces, no control character (as a JWT's ``sub`` must be)."""
    return bool(name.strip(" ")) and not any(c < " " or c == "\x7f" for c in name)


class AuthConfig(_Frozen):
    """JWT and API-key authentication for ``require_auth`` / ``require_roles``.

    ``jwt_algorithms`` is pinned here and never read from a token. Left empty it is
    inferred: ``HS256`` with ``jwt_secret``, ``RS256`` with a public key or JWKS URL.
    API keys come only from the ``X-API-Key`` header; ``api_keys`` maps a name (the
    principal's subject) to the key, ``api_key_hashes`` a name to the key's SHA-256 hex.
    """

    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwks_url: str | None = None
    jwt_algorithms: tuple[str, ...] = ()
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway: float = Field(default=5.0, ge=0, le=300)
    jwt_required_claims: tuple[str, ...] = ("exp",)
    scope_claim: str = "scope"
    roles_claim: str = "roles"
    jwks_cache_ttl: float = Field(default=300.0, gt=0)
    jwks_min_refresh_interval: float = Field(default=30.0, ge=0)
    jwks_timeout: float = Field(default=5.0, gt=0)
    api_keys: dict[str, SecretStr] = Field(default_factory=dict)
    api_key_hashes: dict[str, str] = Field(default_factory=dict)
    api_key_scopes: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    realm: str = "api"

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The pinned algorithms (inferred when ``jwt_algorithms`` is empty)."""
        if self.jwt_algorithms:
            return self.jwt_algorithms
        if self.jwt_secret is not None:
            return ("HS256",)
        if self.jwt_public_key is not None or self.jwks_url is not None:
            return ("RS256",)
        return ()

    @property
    def jwt_enabled(self) -> bool:
        """True when some JWT key source is configured."""
        return bool(self.jwt_secret or self.jwt_public_key or self.jwks_url)

    # The realm is sent in every 401's WWW-Authenticate; a CR/LF would drop them all.
    @field_validator("realm")
    @classmethod
    def _realm(cls, value: str) -> str:
        sendable_header("WWW-Authenticate", value)
        return value

    @model_validator(mode="after")
    def _secure(self) -> AuthConfig:
        if self.jwt_public_key is not None and self.jwks_url is not None:
            raise ConfigError(
                "auth: jwt_public_key and jwks_url are both set; keep the one source of "
                "signing keys this service should trust"
            )
        for field, names in (("api_keys", self.api_keys), ("api_key_hashes", self.api_key_hashes)):
            for name in names:
                if not subject_name_ok(name):
                    raise ConfigError(
                        f"auth.{field}[{name!r}]: a key's name is the principal's subject "
                        "(sent upstream in a header, the key of per-consumer limits): it "
                        "must be non-empty, not all spaces, with no control character"
                    )
        for name, key in self.api_keys.items():
            if not key.get_secret_value():
                raise ConfigError(f"auth.api_keys[{name!r}]: the key is empty")
        algorithms = self.algorithms
        if any(alg.lower() == "none" for alg in algorithms):
            raise ConfigError("auth.jwt_algorithms: 'none' is never accepted")
        hmac_algs = [alg for alg in algorithms if alg in _HMAC_MIN_KEY_BYTES]
        other = [alg for alg in algorithms if alg not in _HMAC_MIN_KEY_BYTES]
        unknown = [alg for alg in other if alg not in _ASYMMETRIC_ALGORITHMS]
        if unknown:
            raise ConfigError(f"auth.jwt_algorithms: unsupported algorithm(s) {unknown}")
        if hmac_algs and other:
            raise ConfigError(
                f"auth.jwt_algorithms: HMAC {hmac_algs} mixed with public-key {other} "
                "(algorithm confusion, RFC 8725 §2.1); use one family"
            )
        if hmac_algs:
            self._check_secret(hmac_algs)
            if self.jwt_public_key is not None or self.jwks_url is not None:
                raise ConfigError(
                    "auth: a public key / JWKS URL cannot be used with HMAC algorithms "
                    f"{hmac_algs} (algorithm confusion, RFC 8725 §2.1)"
                )
        elif other:
            if self.jwt_public_key is None and self.jwks_url is None:
                raise ConfigError(f"auth.jwt_algorithms {other} need jwt_public_key or jwks_url")
            if self.jwt_secret is not None:
                raise ConfigError(f"auth.jwt_secret is not used by algorithms {other}; remove it")
        if self.jwks_url is not None:
            _check_jwks_url(self.jwks_url)
        for name, digest in self.api_key_hashes.items():
            if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
                raise ConfigError(f"auth.api_key_hashes[{name!r}]: not a SHA-256 hex digest")
        return self

    def _check_secret(self, hmac_algs: list[str]) -> None:
        if self.jwt_secret is None:
            raise ConfigError(f"auth.jwt_algorithms {hmac_algs} need auth.jwt_secret")
        size = len(self.jwt_secret.get_secret_value().encode())
        needed = max(_HMAC_MIN_KEY_BYTES[alg] for alg in hmac_algs)
        if size < needed:
            raise ConfigError(
                f"auth.jwt_secret: {size} bytes is too short for {'/'.join(hmac_algs)} "
                f"(at least {needed} random bytes, RFC 7518 §3.2)"
            )


def _check_jwks_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    loopback = parts.hostname in {"localhost", "127.0.0.1", "::1"}
    if parts.scheme == "http" and loopback:
        return
    raise ConfigError(f"auth.jwks_url must be https:// (http only for loopback): {url!r}")


class MetricsConfig(_Frozen):
    """Prometheus ``/metrics`` on a per-app registry.

    ``token`` protects the endpoint with a bearer token (constant-time compare); an
    empty one (an unset secret) is refused, not taken as "no token".
    ``group_status_codes`` labels ``2xx`` instead of ``200`` (fewer series).
    """

    enabled: bool = True
    path: str = "/metrics"
    token: SecretStr | None = None
    group_status_codes: bool = True
    buckets: tuple[float, ...] = _DEFAULT_BUCKETS
    exclude_paths: tuple[str, ...] = ()

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _check_path(value)

    @model_validator(mode="after")
    def _token(self) -> MetricsConfig:
        if self.token is None:
            return self
        token = self.token.get_secret_value()
        if not token:
            raise ConfigError(
                "metrics.token: the token is empty; set one, or leave it unset for an "
                "unprotected endpoint"
            )
        if token != token.strip():
            # A client's header value is stripped, so such a token could never match.
            raise ConfigError(
                "metrics.token: the token has leading or trailing whitespace (a secret "
                "file's newline?); strip it"
            )
        return self

    @field_validator("buckets", mode="before")
    @classmethod
    def _drop_inf_bucket(cls, value: object) -> object:
        # The +Inf bucket is always there; a list ending in it (prometheus_client's
        # Histogram.DEFAULT_BUCKETS) is taken without it rather than counted twice.
        if isinstance(value, list | tuple) and value:
            try:
                last = float(value[-1])
            except (TypeError, ValueError):
                return value
            if last == math.inf:
                return tuple(value[:-1])
        return value

    @field_validator("buckets")
    @classmethod
    def _increasing(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(low >= high for low, high in itertools.pairwise(value)):
            raise ValueError(f"bucket bounds must be strictly increasing: {value}")
        return value


class AccessLogConfig(_Frozen):
    """One structlog JSON record per request; secrets redacted, control chars escaped."""

    enabled: bool = True
    log_headers: bool = False
    redact_headers: tuple[str, ...] = ()
    redact_query_params: tuple[str, ...] = ()
    skip_paths: tuple[str, ...] = ()


class HealthConfig(_Frozen):
    """Liveness and readiness endpoints and the shutdown drain."""

    liveness_path: str = "/health"
    readiness_path: str = "/ready"
    check_timeout: float = Field(default=2.0, gt=0)
    drain_timeout: float = Field(default=10.0, ge=0)

    @field_validator("liveness_path", "readiness_path")
    @classmethod
    def _paths(cls, value: str) -> str:
        return _check_path(value)


class ServerConfig(_Frozen):
    """Settings of the FastAPI app factory (secure defaults; see docs/server.md)."""

    title: str = "flext-api service"
    version: str = "0.1.0"
    description: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    docs_enabled: bool = True
    docs_url: str = "/docs"
    redoc_url: str = "/redoc"
    openapi_url: str = "/openapi.json"
    max_body_size: int = Field(default=10 * MIB, ge=0)
    allowed_hosts: tuple[str, ...] = ("*",)
    request_id_header: str = "X-Request-ID"
    response_time_header: str = "X-Response-Time"
    enforce_json_content_type: bool = True
    cors: CorsConfig = CorsConfig()
    security_headers: SecurityHeadersConfig = SecurityHeadersConfig()
    rate_limit: ServerRateLimitConfig = ServerRateLimitConfig()
    auth: AuthConfig = AuthConfig()
    metrics: MetricsConfig = MetricsConfig()
    access_log: AccessLogConfig = AccessLogConfig()
    health: HealthConfig = HealthConfig()

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one host, or '*' for any")
        return tuple(host.lower() for host in value)

    @field_validator("docs_url", "redoc_url", "openapi_url")
    @classmethod
    def _paths(cls, value: str) -> str:
        return _check_path(value)

    @field_validator("request_id_header")
    @classmethod
    def _id_header(cls, value: str) -> str:
        sendable_header(value)
        return value

    @field_validator("response_time_header")
    @classmethod
    def _timing_header(cls, value: str) -> str:
        if value:  # "" turns the header off
            sendable_header(value)
        return value

    # The probes and /metrics are answered by exact path before routing: one path for two
    # of them would silently replace one.
    @model_validator(mode="after")
    def _distinct_probe_paths(self) -> ServerConfig:
        health = self.health
        if health.liveness_path == health.readiness_path:
            raise ConfigError(
                f"health.readiness_path: {health.readiness_path!r} is also health.liveness_path"
            )
        if self.metrics.enabled and self.metrics.path in (
            health.liveness_path,
            health.readiness_path,
        ):
            raise ConfigError(
                f"metrics.path: {self.metrics.path!r} is also a health probe path; "
                "give /metrics a path of its own"
            )
        return self
