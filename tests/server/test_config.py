"""ServerConfig: secure settings enforced at build time, env loading, docs switch."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from flext_api import FlextApiConfig, ServerConfig
from flext_api._errors import ConfigError
from flext_api._server_config import AuthConfig, HealthConfig, MetricsConfig
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
