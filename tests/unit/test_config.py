"""Settings: defaults from DESIGN §3, environment, files, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from flext_api import (
    BreakerConfig,
    ClientConfig,
    FlextApiConfig,
    PoolConfig,
    RetryConfig,
    TimeoutConfig,
    create_flext_api,
)
from flext_api._errors import ConfigError


def test_defaults_match_the_design_table() -> None:
    """Pool, timeouts, retry and breaker defaults are the documented ones."""
    c = ClientConfig()
    assert (c.pool.max_connections, c.pool.max_keepalive, c.pool.keepalive_expiry) == (
        100,
        20,
        30.0,
    )
    assert (c.timeout.connect, c.timeout.read, c.timeout.total) == (5.0, 30.0, 60.0)
    r = c.retry
    assert r.max_retries == 3 and r.statuses == {429, 500, 502, 503, 504}
    assert r.methods == {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"}
    assert (r.backoff_initial, r.backoff_multiplier, r.backoff_max, r.retry_after_max) == (
        0.5,
        2.0,
        10.0,
        60.0,
    )
    b = c.breaker
    assert (b.consecutive_failures, b.failure_ratio, b.minimum_calls, b.window) == (
        5,
        0.5,
        100,
        30.0,
    )
    assert (b.open_duration, b.open_duration_max, b.half_open_calls) == (5.0, 300.0, 3)
    assert not c.rate_limit.enabled and not c.cache.enabled


def test_environment_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """FLEXT_API_CLIENT__TIMEOUT__CONNECT=2.5 reaches client.timeout.connect."""
    monkeypatch.setenv("FLEXT_API_CLIENT__TIMEOUT__CONNECT", "2.5")
    assert FlextApiConfig.load().client.timeout.connect == 2.5


def test_negative_timeout_from_environment_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """A negative connect timeout fails at load with the field path and the value."""
    monkeypatch.setenv("FLEXT_API_CLIENT__TIMEOUT__CONNECT", "-1")
    with pytest.raises(ConfigError) as info:
        FlextApiConfig.load()
    assert "client.timeout.connect = '-1'" in info.value.message


def test_unknown_key_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown setting is an error naming it."""
    monkeypatch.setenv("FLEXT_API_CLIENT__NOPE", "1")
    with pytest.raises(ConfigError, match=r"client\.nope: unknown setting"):
        FlextApiConfig.load()


def test_keepalive_above_pool_size_is_rejected() -> None:
    """max_keepalive > max_connections names both values."""
    with pytest.raises(
        ValidationError, match="max_keepalive=200 is greater than max_connections=100"
    ):
        PoolConfig(max_keepalive=200)


def test_open_duration_bounds() -> None:
    """open_duration_max below open_duration is rejected."""
    with pytest.raises(ValidationError, match=r"open_duration_max=10\.0"):
        BreakerConfig(open_duration=30, open_duration_max=10)


def test_timeout_shorthand() -> None:
    """A number sets every phase; None turns them all off; an instance passes through."""
    assert ClientConfig(timeout=3).timeout == TimeoutConfig(connect=3, read=3, write=3, pool=3)
    off = TimeoutConfig.of(None)
    assert (off.connect, off.read, off.total) == (None, None, None)
    t = TimeoutConfig(read=1)
    assert TimeoutConfig.of(t) is t
    assert TimeoutConfig.of({"read": 2}).read == 2


def test_retry_methods_are_upper_cased() -> None:
    """Methods given in lower case are normalized."""
    assert RetryConfig(methods=frozenset({"get"})).methods == {"GET"}


def test_toml_file_is_loaded_and_env_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TOML file is read; an environment variable wins over it."""
    path = tmp_path / "flext.toml"
    path.write_text(
        "[client]\nbase_url = 'http://127.0.0.1:1'\n[client.timeout]\nread = 7\nconnect = 1\n"
    )
    monkeypatch.setenv("FLEXT_API_CLIENT__TIMEOUT__CONNECT", "2")
    cfg = FlextApiConfig.load(path)
    assert cfg.client.base_url == "http://127.0.0.1:1"
    assert (cfg.client.timeout.read, cfg.client.timeout.connect) == (7, 2)


def test_yaml_file_is_loaded(tmp_path: Path) -> None:
    """A YAML file is read, and keyword overrides win."""
    path = tmp_path / "flext.yaml"
    path.write_text("client:\n  retry:\n    max_retries: 5\nserver:\n  port: 9000\n")
    cfg = FlextApiConfig.load(path, server={"port": 9001})
    assert cfg.client.retry.max_retries == 5
    assert cfg.server.port == 9001


def test_invalid_value_in_a_file_names_file_field_and_value(tmp_path: Path) -> None:
    """A bad value in a file is reported with the file name, field path and value."""
    path = tmp_path / "bad.yaml"
    path.write_text("client:\n  pool:\n    max_connections: -5\n")
    with pytest.raises(ConfigError) as info:
        FlextApiConfig.load(path)
    assert "(from bad.yaml)" in info.value.message
    assert "client.pool.max_connections = -5" in info.value.message


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("broken.toml", "[client\n", "cannot be parsed"),
        ("broken.yaml", "client: [\n", "cannot be parsed"),
        ("list.yaml", "- 1\n- 2\n", "must hold a table"),
        ("conf.ini", "x=1", "unsupported type"),
    ],
)
def test_unusable_files_fail_with_a_clear_message(
    tmp_path: Path, name: str, text: str, match: str
) -> None:
    """Unparsable, non-mapping and unsupported files fail at load."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        FlextApiConfig.load(path)


def test_missing_file_fails_clearly(tmp_path: Path) -> None:
    """A file that cannot be read is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="cannot be read"):
        FlextApiConfig.load(tmp_path / "absent.toml")


def test_configs_are_frozen() -> None:
    """Sub-configs are immutable value objects."""
    with pytest.raises(ValidationError):
        ClientConfig().http2 = True


def test_non_json_nested_environment_value_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pydantic-settings' SettingsError (a nested value that is not JSON) is a ConfigError."""
    monkeypatch.setenv("FLEXT_API_SERVER__CORS__ALLOW_ORIGINS", "[https://a.example")
    with pytest.raises(ConfigError, match=r"field \"server\".*EnvSettingsSource.*are JSON"):
        FlextApiConfig.load()


def test_comma_separated_list_in_the_environment_says_lists_are_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEXT_API_CORS_ORIGINS", "https://a.example,https://b.example")
    with pytest.raises(ConfigError, match=r"cors_origins = .*lists in the environment are JSON"):
        FlextApiConfig.load()


def test_create_flext_api_reports_a_bad_environment_variable_as_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The facade reads the environment through load(): no bare pydantic traceback."""
    monkeypatch.setenv("FLEXT_API_CLIENT__TIMEOUT__CONNECT", "soon")
    with pytest.raises(ConfigError, match=r"client\.timeout\.connect = 'soon'"):
        create_flext_api()


@pytest.mark.parametrize(
    ("variable", "value", "secret"),
    [
        ("FLEXT_API_CLIENT__HEADERS", '{"Authorization": ["Bearer s3cr3t-token"]}', "s3cr3t"),
        ("FLEXT_API_CLIENT__HEADERS", '{"Cookie": 5, "X-A": [1]}', "Cookie"),
    ],
)
def test_a_bad_credential_setting_is_named_not_shown(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, secret: str
) -> None:
    """A credential that fails validation is still a credential: the ConfigError (which
    goes to logs) names the setting and hides the value."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        FlextApiConfig.load()
    message = str(info.value)
    assert "client.headers" in message and "[REDACTED]" in message
    if secret != "Cookie":
        assert secret not in message


def test_a_bad_plain_setting_still_shows_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXT_API_CLIENT__HEADERS", '{"X-Trace": ["abc"]}')
    with pytest.raises(ConfigError, match=r"client\.headers\.X-Trace = \['abc'\]"):
        FlextApiConfig.load()


@pytest.mark.parametrize("rate", [1e-320, 1e-10, 0.0])
def test_a_rate_too_small_to_schedule_is_a_config_error(rate: float) -> None:
    """1e-320 passed ``gt=0`` and then failed in the limiter with a bare ValueError."""
    from flext_api import RateLimitConfig

    with pytest.raises(ValidationError, match="rate"):
        RateLimitConfig(enabled=True, rate=rate)
    assert RateLimitConfig(enabled=True, rate=1e-9).rate == 1e-9
