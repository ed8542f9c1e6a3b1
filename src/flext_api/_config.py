"""Settings: :class:`FlextApiConfig` and its sub-configs, with the defaults of DESIGN §3.

Sub-configs are frozen pydantic models that reject unknown keys. ``FlextApiConfig`` reads,
in order of precedence: keyword arguments, environment variables (prefix ``FLEXT_API_``,
nested with ``__``: ``FLEXT_API_CLIENT__TIMEOUT__CONNECT=2.5``), then a TOML or YAML file
given to :meth:`FlextApiConfig.load`. Invalid settings fail at load with a
:class:`~flext_api.ConfigError` whose message names the field and the value.
"""

from __future__ import annotations

import contextvars
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from ._errors import ConfigError
from ._redact import REDACTED, secret_name
from ._server_config import ServerConfig
from ._version import __version__

__all__ = [
    "BreakerConfig",
    "BulkheadConfig",
    "CacheConfig",
    "ClientConfig",
    "FlextApiConfig",
    "PoolConfig",
    "RateLimitConfig",
    "RetryConfig",
    "ServerConfig",
    "TimeoutConfig",
    "format_validation_error",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})

#: Bytes a buffered (not streamed) response body may reach once decoded: 100 MiB.
DEFAULT_MAX_RESPONSE_SIZE = 100 * 1024 * 1024

_Seconds = Field(gt=0)


class _Frozen(BaseModel):
    # allow_inf_nan=False: an infinite timeout, window or rate breaks the arithmetic
    # (and the transports) later; None says "no bound" where there may be none.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TimeoutConfig(_Frozen):
    """Per-phase timeouts of one attempt, and the total deadline of a call (seconds).

    ``None`` turns a phase's timeout off. ``total`` is the deadline of the whole logical
    request, retries and waits included (Envoy's model). A bare number is accepted
    wherever a ``TimeoutConfig`` is: it sets connect, read, write and pool.
    """

    connect: float | None = Field(default=5.0, gt=0)
    read: float | None = Field(default=30.0, gt=0)
    write: float | None = Field(default=30.0, gt=0)
    pool: float | None = Field(default=10.0, gt=0)
    total: float | None = Field(default=60.0, gt=0)

    @classmethod
    def of(cls, value: TimeoutConfig | float | dict[str, Any] | None) -> TimeoutConfig:
        """Normalize shorthand: a number sets every phase; None turns them all off."""
        if isinstance(value, TimeoutConfig):
            return value
        return cls.model_validate(_timeout_shorthand(value))


def _timeout_shorthand(value: Any) -> Any:
    if value is None:
        return {"connect": None, "read": None, "write": None, "pool": None, "total": None}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"connect": value, "read": value, "write": value, "pool": value}
    return value


if TYPE_CHECKING:

    class _TimeoutInput:
        """For type checkers only: ``ClientConfig.timeout`` takes the shorthand the
        before-validator accepts (a number, None) and reads back as a ``TimeoutConfig``.

        A field typed with a descriptor gets its ``__init__`` parameter from ``__set__``
        (the typing spec's descriptor-typed dataclass fields, read so by mypy with or
        without the pydantic plugin: tests/unit/test_config_typing.py). At run time
        pydantic sees the plain ``TimeoutConfig`` field.
        """

        @overload
        def __get__(self, instance: None, owner: type[Any]) -> _TimeoutInput: ...
        @overload
        def __get__(self, instance: object, owner: type[Any]) -> TimeoutConfig: ...
        def __get__(self, instance: object, owner: type[Any]) -> Any: ...
        def __set__(self, instance: object, value: TimeoutConfig | float | None) -> None: ...


class PoolConfig(_Frozen):
    """Connection pool: a production-sized pool with keep-alive (httpx's production figures)."""

    max_connections: int = Field(default=100, ge=1)
    max_keepalive: int = Field(default=20, ge=0)
    keepalive_expiry: float = Field(default=30.0, gt=0)
    max_connections_per_host: int = Field(default=0, ge=0)
    dns_cache_ttl: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _keepalive_within_pool(self) -> PoolConfig:
        if self.max_keepalive > self.max_connections:
            raise ValueError(
                f"max_keepalive={self.max_keepalive} is greater than "
                f"max_connections={self.max_connections}"
            )
        return self


class RetryConfig(_Frozen):
    """Safe retries (urllib3, Envoy, stamina defaults).

    Statuses in ``statuses`` and transport errors are retried; connect errors for any
    method, everything else only for idempotent methods or requests carrying an
    ``Idempotency-Key``. Backoff is ``min(backoff_max, backoff_initial * multiplier**n)``
    with full jitter. A ``Retry-After`` up to ``retry_after_max`` is honoured; a longer one
    (or one past the deadline) fails fast. A per-host budget keeps retries under
    ``budget_ratio`` of recent requests, with a floor of ``budget_min_per_second`` retries
    per second of the window (Finagle's ``minRetriesPerSec``), so quiet clients keep retrying.
    """

    enabled: bool = True
    max_retries: int = Field(default=3, ge=0)
    statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    methods: frozenset[str] = IDEMPOTENT_METHODS
    backoff_initial: float = Field(default=0.5, ge=0)
    backoff_multiplier: float = Field(default=2.0, ge=1)
    backoff_max: float = Field(default=10.0, ge=0)
    jitter: bool = True
    respect_retry_after: bool = True
    retry_after_max: float = Field(default=60.0, ge=0)
    budget_ratio: float | None = Field(default=0.2, ge=0, le=1)
    budget_min_per_second: float = Field(default=3.0, ge=0)
    budget_window: float = Field(default=10.0, gt=0)
    seed: int | None = None

    @field_validator("methods", mode="after")
    @classmethod
    def _upper(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(m.upper() for m in value)


class BreakerConfig(_Frozen):
    """Per-host circuit breaker (Polly, resilience4j, Envoy figures; docs/resilience.md).

    A dead host opens fast: ``consecutive_failures`` host-down failures in a row
    (connect errors, broken connections, 502/503/504; Envoy's
    ``consecutive_gateway_failure``). Other failures (a 500 of one path, a read timeout)
    open it only as a ``failure_ratio`` of at least ``minimum_calls`` calls in
    ``window`` seconds (resilience4j's 50 %, Polly's and resilience4j's 100 calls), so a
    few failing calls on one path never block the host's healthy paths. The first open
    time is Polly's 5 s, growing with each opening in a row up to Envoy's 300 s.
    """

    enabled: bool = True
    consecutive_failures: int = Field(default=5, ge=1)
    failure_ratio: float = Field(default=0.5, gt=0, le=1)
    minimum_calls: int = Field(default=100, ge=1)
    window: float = Field(default=30.0, gt=0)
    open_duration: float = Field(default=5.0, gt=0)
    open_duration_max: float = Field(default=300.0, gt=0)
    open_duration_multiplier: float = Field(default=2.0, ge=1)
    open_jitter: float = Field(default=0.1, ge=0, le=1)
    half_open_calls: int = Field(default=3, ge=1)
    slow_call_duration: float | None = Field(default=None, gt=0)
    slow_call_ratio: float | None = Field(default=None, gt=0, le=1)
    idle_eviction: float = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _open_bounds(self) -> BreakerConfig:
        if self.open_duration_max < self.open_duration:
            raise ValueError(
                f"open_duration_max={self.open_duration_max} is less than "
                f"open_duration={self.open_duration}"
            )
        return self


class RateLimitConfig(_Frozen):
    """Client-side per-host rate limit (off by default): GCRA token bucket that waits."""

    enabled: bool = False
    # At least one request in ~32 years: a smaller rate's interval overflows a float.
    rate: float = Field(default=10.0, ge=1e-9, description="requests per second")
    burst: int = Field(default=1, ge=1)
    adaptive: bool = True
    #: Longest pause a server's hint (Retry-After, a quota reset) may put on a host.
    max_pause: float = Field(default=60.0, ge=0)
    redis_url: str | None = None
    #: Key prefix in Redis: clients sharing a prefix (and host) share one limit.
    redis_prefix: str = "flext_api:ratelimit:"


class BulkheadConfig(_Frozen):
    """Per-host concurrency cap with a bounded queue (off by default)."""

    enabled: bool = False
    max_concurrent: int = Field(default=50, ge=1)
    max_queue: int = Field(default=100, ge=0)


class CacheConfig(_Frozen):
    """RFC 9111 client cache (off by default): private cache of GET/HEAD in memory."""

    enabled: bool = False
    backend: Literal["memory", "redis", "filesystem"] = "memory"
    shared: bool = False
    max_entries: int = Field(default=10_000, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)


class ClientConfig(_Frozen):
    """Everything a :class:`~flext_api.FlextApiClient` needs, with production defaults."""

    base_url: str | None = None
    if TYPE_CHECKING:
        # ClientConfig(timeout=30) and (timeout=None) as the validator below allows;
        # config.timeout is a TimeoutConfig (see _TimeoutInput).
        timeout: _TimeoutInput = _TimeoutInput()
    else:
        timeout: TimeoutConfig = TimeoutConfig()
    pool: PoolConfig = PoolConfig()
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    bulkhead: BulkheadConfig = BulkheadConfig()
    cache: CacheConfig = CacheConfig()
    transport: Literal["aiohttp", "httpx", "pyreqwest"] = "aiohttp"
    http2: bool = False
    verify_ssl: bool = True
    follow_redirects: bool = True
    max_redirects: int = Field(default=20, ge=0)
    # Bytes of a buffered response body, after decompression (None: no cap). A larger
    # body (or a decompression bomb) fails with RESPONSE_TOO_LARGE instead of filling
    # memory; a streamed response is read at the caller's pace and not capped.
    max_response_size: int | None = Field(default=DEFAULT_MAX_RESPONSE_SIZE, ge=1)
    fail_on_http_error: bool = True
    headers: dict[str, str] = Field(default_factory=dict)
    user_agent: str = f"flext-api/{__version__}"
    logging: bool = False
    metrics: bool = False
    tracing: bool = False

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> Any:
        return _timeout_shorthand(value)


_FLAT_CORS = {
    "cors_origins": "allow_origins",
    "cors_credentials": "allow_credentials",
    "cors_methods": "allow_methods",
    "cors_headers": "allow_headers",
}

# How list settings are written in the environment (pydantic-settings parses them as JSON).
_ENV_EXAMPLE = """FLEXT_API_SERVER__CORS__ALLOW_ORIGINS='["https://app.example"]'"""

_CONFIG_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "flext_api_config_file", default=None
)


class FlextApiConfig(BaseSettings):
    """Root settings: ``client`` and ``server``, from arguments, environment and a file."""

    model_config = SettingsConfigDict(
        env_prefix="FLEXT_API_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    client: ClientConfig = ClientConfig()
    server: ServerConfig = ServerConfig()

    # The FLEXT guides' flat app settings (``FlextApiConfig(title=..., cors_origins=...)``);
    # when given they override ``server`` in :meth:`server_config`.
    title: str | None = None
    version: str | None = None
    description: str | None = None
    docs_url: str | None = None
    redoc_url: str | None = None
    cors_origins: list[str] | None = None
    cors_credentials: bool | None = None
    cors_methods: list[str] | None = None
    cors_headers: list[str] | None = None

    def server_config(self) -> ServerConfig:
        """``server`` with the flat FLEXT app settings that were given applied over it."""
        flat = {
            name: getattr(self, name)
            for name in ("title", "version", "description", "docs_url", "redoc_url")
            if getattr(self, name) is not None
        }
        cors = {
            target: getattr(self, name)
            for name, target in _FLAT_CORS.items()
            if getattr(self, name) is not None
        }
        if not flat and not cors:
            return self.server
        data = self.server.model_dump()
        data.update(flat)
        data["cors"] = {**data["cors"], **cors}
        try:
            return ServerConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc)) from exc

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _CONFIG_FILE.get()
        if path is None:
            return (init_settings, env_settings)
        file_source: PydanticBaseSettingsSource
        if path.suffix.lower() == ".toml":
            file_source = TomlConfigSettingsSource(settings_cls, toml_file=path)
        else:
            file_source = YamlConfigSettingsSource(settings_cls, yaml_file=path)
        return (init_settings, env_settings, file_source)

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> FlextApiConfig:
        """Load settings; raise :class:`ConfigError` naming the field and value on error.

        ``path`` is a ``.toml``, ``.yaml`` or ``.yml`` file; environment variables override
        it and ``overrides`` override both.
        """
        file_path = Path(path) if path is not None else None
        if file_path is not None:
            _check_file(file_path)
        token = _CONFIG_FILE.set(file_path)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, source=file_path)) from exc
        except SettingsError as exc:
            # An environment value of a nested setting that is not JSON: pydantic-settings
            # names the top field and the source, the cause says what did not parse.
            cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
            raise ConfigError(
                f"invalid configuration: {exc}{cause} (list and table values in the "
                f"environment are JSON, e.g. {_ENV_EXAMPLE})"
            ) from exc
        finally:
            _CONFIG_FILE.reset(token)


def _check_file(path: Path) -> None:
    """Fail early, with the file's name and the parser's position, on an unusable file."""
    suffix = path.suffix.lower()
    if suffix not in {".toml", ".yaml", ".yml"}:
        raise ConfigError(
            f"config file {path.name!r}: unsupported type {suffix!r} (use .toml or .yaml)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path.name!r} cannot be parsed: {exc}") from exc
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config file {path.name!r} must hold a table/mapping at the top")


def _names_secret(names: Iterable[object]) -> bool:
    """True when one of ``names`` names a credential: a part of an error's location
    (``headers.Cookie``, ``auth.client_secret``...: its input is not shown), or a key of
    a mapping given as a whole (a headers dict)."""
    return any(secret_name(name) for name in names)


def format_validation_error(exc: ValidationError, *, source: Path | None = None) -> str:
    """One line per problem: ``field.path = value: reason``."""
    where = f" (from {source.name})" if source is not None else ""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "<root>"
        value = err.get("input")
        if _names_secret(err["loc"]) or (isinstance(value, dict) and _names_secret(value)):
            value = REDACTED  # a bad token is still a token: the message goes to logs
        if err["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown setting (value {value!r})")
        elif err["type"] == "list_type" and isinstance(value, str):
            # Most likely an environment variable written "a,b": lists there are JSON.
            hint = f"lists in the environment are JSON, e.g. {_ENV_EXAMPLE}"
            lines.append(f"{loc} = {value!r}: {err['msg']} ({hint})")
        else:
            lines.append(f"{loc} = {value!r}: {err['msg']}")
    return f"invalid configuration{where}: " + "; ".join(lines)
