"""ServerConfig: secure settings enforced at build time, env loading, docs switch."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from prometheus_client import Histogram
from pydantic import BaseModel, SecretStr, ValidationError

from flext_api import FlextApiConfig, ServerConfig
from flext_api._errors import ConfigError
from flext_api._server_config import AuthConfig, CorsConfig, HealthConfig, MetricsConfig
from tests.server import keys
from tests.server.conftest import Build
from tests.server.helpers import serve


def test_defaults_are_secure() -> None:
    """Defaults: 10 MiB bodies, JSON enforced, no CORS, no default limit, metrics on."""
    config = ServerConfig()
    assert config.max_body_size == 10 * 1024 * 1024
    assert config.enforce_json_content_type is True
    assert config.cors.allow_origins == ()
    assert config.cors.allow_credentials is False
    assert config.rate_limit.default_limit is None
    assert config.metrics.enabled and config.metrics.path == "/metrics"


def test_config_is_frozen_and_strict() -> None:
    """Unknown keys are rejected and the config cannot be mutated."""
    with pytest.raises(ValueError, match="extra"):
        ServerConfig(colour="blue")  # type: ignore[call-arg]
    config = ServerConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.port = 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"jwt_secret": "short-secret"}, "too short for HS256"),
        ({"jwt_secret": "x" * 40, "jwt_algorithms": ("HS512",)}, "at least 64"),
        ({"jwt_algorithms": ("none",)}, "'none' is never accepted"),
        ({"jwt_algorithms": ("HS256", "RS256"), "jwt_secret": "x" * 32}, "algorithm confusion"),
        ({"jwt_algorithms": ("XX999",)}, "unsupported"),
        ({"jwt_algorithms": ("HS256",)}, "need auth.jwt_secret"),
        ({"jwt_algorithms": ("RS256",)}, "need jwt_public_key or jwks_url"),
        (
            {"jwt_secret": "x" * 32, "jwks_url": "https://id.example.com/jwks"},
            "algorithm confusion",
        ),
        (
            {"jwt_secret": "x" * 32, "jwt_algorithms": ("RS256",), "jwks_url": "https://i/j"},
            "not used",
        ),
        ({"jwks_url": "http://id.example.com/jwks"}, "must be https"),
        ({"api_key_hashes": {"a": "not-hex"}}, "SHA-256"),
    ],
)
def test_insecure_auth_settings_raise_config_error(kwargs: dict[str, object], message: str) -> None:
    """Each insecure or inconsistent auth setting is a ConfigError naming the problem."""
    with pytest.raises(ConfigError, match=message):
        AuthConfig(**kwargs)  # type: ignore[arg-type]


def test_loopback_jwks_over_http_allowed() -> None:
    """Plain HTTP is fine for a JWKS on the loopback interface."""
    assert AuthConfig(jwks_url="http://127.0.0.1:8080/jwks").algorithms == ("RS256",)


def test_inferred_algorithms() -> None:
    """Without jwt_algorithms: HS256 for a secret, RS256 for a key, none without JWT."""
    assert AuthConfig(jwt_secret=SecretStr("x" * 32)).algorithms == ("HS256",)
    assert AuthConfig(jwt_public_key=keys.public_pem()).algorithms == ("RS256",)
    assert AuthConfig().algorithms == ()
    assert AuthConfig().jwt_enabled is False


def test_paths_must_be_absolute() -> None:
    """Endpoint paths must start with a slash."""
    for build_config in (
        lambda: ServerConfig(docs_url="docs"),
        lambda: MetricsConfig(path="metrics"),
        lambda: HealthConfig(liveness_path="health"),
    ):
        with pytest.raises(ValueError, match="must start with '/'"):
            build_config()


def test_loaded_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested server settings load from FLEXT_API_SERVER__... variables."""
    monkeypatch.setenv("FLEXT_API_SERVER__RATE_LIMIT__DEFAULT_LIMIT", "100/minute")
    monkeypatch.setenv("FLEXT_API_SERVER__MAX_BODY_SIZE", "2048")
    config = FlextApiConfig().server
    assert (config.rate_limit.default_limit, config.max_body_size) == ("100/minute", 2048)


def test_short_secret_from_environment_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short HS256 secret in the environment fails at load with ConfigError."""
    monkeypatch.setenv("FLEXT_API_SERVER__AUTH__JWT_SECRET", "changethis")
    with pytest.raises(ConfigError, match="too short"):
        FlextApiConfig.load()


async def test_docs_disabled(build: Build) -> None:
    """docs_enabled=False removes /docs, /redoc and /openapi.json."""
    async with serve(build(ServerConfig(docs_enabled=False))) as client:
        statuses = [(await client.get(p)).status_code for p in ("/docs", "/redoc", "/openapi.json")]
    assert statuses == [404, 404, 404]


async def test_docs_enabled_and_probes_not_in_schema(build: Build) -> None:
    """With docs on, the schema is served and leaves the probe endpoints out."""
    config = ServerConfig(title="orders", version="2.1.0")
    async with serve(build(config)) as client:
        schema = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert (schema["info"]["title"], schema["info"]["version"]) == ("orders", "2.1.0")
    assert not {"/health", "/ready", "/metrics"} & set(schema.get("paths", {}))
    assert docs.status_code == 200


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize(
    ("model", "field"),
    [
        (AuthConfig, "jwks_timeout"),
        (AuthConfig, "jwks_cache_ttl"),
        (AuthConfig, "jwks_min_refresh_interval"),
        (AuthConfig, "jwt_leeway"),
        (HealthConfig, "check_timeout"),
        (HealthConfig, "drain_timeout"),
    ],
)
def test_float_settings_must_be_finite(model: type[BaseModel], field: str, value: float) -> None:
    """No float setting of the server accepts inf or NaN (inf broke every JWT request)."""
    with pytest.raises(ValidationError, match="finite number"):
        model(**{field: value})


def test_infinite_jwks_timeout_from_environment_is_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FLEXT_API_SERVER__AUTH__JWKS_TIMEOUT=inf fails at load, naming the field."""
    monkeypatch.setenv("FLEXT_API_SERVER__AUTH__JWKS_TIMEOUT", "inf")
    with pytest.raises(ConfigError, match=r"auth\.jwks_timeout"):
        FlextApiConfig.load()


@pytest.mark.parametrize(
    "build_config",
    [
        lambda: AuthConfig(realm="orders\r\n"),
        lambda: AuthConfig(realm="orders\n"),
        lambda: CorsConfig(allow_headers=("Authorization", "X-Trace\n")),
        lambda: CorsConfig(expose_headers=("X-Request-ID\r\n",)),
        lambda: CorsConfig(allow_methods=("GET", "POST\n")),
        lambda: CorsConfig(allow_headers=("X Trace",)),
    ],
    ids=["realm-crlf", "realm-lf", "allow-headers", "expose-headers", "methods", "space"],
)
def test_header_bound_settings_refuse_what_no_header_can_carry(
    build_config: Callable[[], object],
) -> None:
    """realm and the CORS header/method lists are checked at build, as other header
    settings are: a newline would drop every 401 or every preflight."""
    with pytest.raises(ValidationError, match="header"):
        build_config()


@pytest.mark.parametrize(
    ("written", "serialized"),
    [
        ("https://App.Example.com", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("HTTP://app.example.com:80/", "http://app.example.com"),
        ("http://app.example.com:8080", "http://app.example.com:8080"),
        ("https://app.example.com:80", "https://app.example.com:80"),
        ("http://[::1]:80", "http://[::1]"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_cors_origins_are_normalized_to_the_browser_form(written: str, serialized: str) -> None:
    """A configured origin is compared in the form browsers send (lower case, no
    default port), so any spelling of it matches."""
    assert CorsConfig(allow_origins=(written,)).allow_origins == (serialized,)


@pytest.mark.parametrize(
    "origin", ["https://a.example/app", "https://a.example?x", "https://u@a.example", "ftp://a"]
)
def test_cors_origin_with_more_than_scheme_host_port_is_refused(origin: str) -> None:
    """A path, query or userinfo can never match an Origin header: refused at build."""
    with pytest.raises(ValidationError, match="scheme://host"):
        CorsConfig(allow_origins=(origin,))


async def test_preflight_matches_an_origin_written_in_another_case(build: Build) -> None:
    """'https://App.Example.com:443' in the config admits the browser's origin."""
    app = build(ServerConfig(cors=CorsConfig(allow_origins=("https://App.Example.com:443",))))
    async with serve(app) as client:
        response = await client.options(
            "/anything",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "GET",
            },
        )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"


def test_metrics_buckets_ending_in_inf_are_taken_without_it() -> None:
    """prometheus_client's DEFAULT_BUCKETS (ending in +Inf) give one +Inf bucket, not two."""
    buckets = MetricsConfig(buckets=Histogram.DEFAULT_BUCKETS).buckets
    assert buckets == tuple(Histogram.DEFAULT_BUCKETS[:-1])


@pytest.mark.parametrize(
    "buckets", [(0.1, math.nan), (0.1, math.inf, 1.0), (1.0, 0.5), (0.5, 0.5), (-math.inf, 1.0)]
)
def test_metrics_buckets_must_be_finite_and_increasing(buckets: tuple[float, ...]) -> None:
    """NaN, an inner inf and unsorted or repeated bounds are refused."""
    with pytest.raises(ValidationError, match=r"finite number|strictly increasing"):
        MetricsConfig(buckets=buckets)


async def test_metrics_with_default_prometheus_buckets_has_one_inf_line(build: Build) -> None:
    """A scrape shows exactly one le="+Inf" bucket per series."""
    app = build(ServerConfig(metrics=MetricsConfig(buckets=Histogram.DEFAULT_BUCKETS)))
    async with serve(app) as client:
        await client.get("/health")
        await client.get("/nowhere")
        text = (await client.get("/metrics")).text
    series = [line for line in text.splitlines() if line.startswith("http_server_request_dura")]
    infs = [line for line in series if 'le="+Inf"' in line]
    counts = [line for line in series if "_count{" in line]
    assert len(infs) == len(counts) >= 1


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_metrics_path_must_not_be_a_probe_path(path: str) -> None:
    """/metrics on a probe's path would replace the probe: a ConfigError."""
    with pytest.raises(ConfigError, match=r"metrics\.path"):
        ServerConfig(metrics=MetricsConfig(path=path))
    assert ServerConfig(metrics=MetricsConfig(path=path, enabled=False)).metrics.path == path


def test_same_liveness_and_readiness_path_is_refused() -> None:
    """One path for both probes is a ConfigError."""
    with pytest.raises(ConfigError, match="readiness_path"):
        ServerConfig(health=HealthConfig(readiness_path="/health"))


def test_public_key_with_jwks_url_is_ambiguous() -> None:
    """A PEM key and a JWKS URL together: which one is trusted is not guessed."""
    with pytest.raises(ConfigError, match="jwt_public_key and jwks_url"):
        AuthConfig(jwt_public_key=keys.public_pem(), jwks_url="https://id.example.com/jwks")


def test_empty_api_key_is_refused() -> None:
    """An empty configured API key is a ConfigError."""
    with pytest.raises(ConfigError, match=r"api_keys\['a'\]"):
        AuthConfig(api_keys={"a": SecretStr("")})


def test_a_config_error_does_not_quote_the_refused_value() -> None:
    """An API key given as a plain string (not a name -> hash map) was quoted in the
    error (``input_value='...'``), which is logged: the key leaked."""
    with pytest.raises(ValidationError) as err:
        ServerConfig(auth={"api_keys": "sk-live-plaintext-key"})  # type: ignore[arg-type]
    assert "auth.api_keys" in str(err.value)
    assert "sk-live-plaintext-key" not in str(err.value)
