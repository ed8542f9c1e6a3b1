"""Configs the loader and the reloader must refuse as failures, never raise: files PyYAML
cannot turn into values, ``auth`` sections the server module's checks refuse, and the
secrets such refusals may quote (no server needed)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from flext_api import ErrorCode
from flext_api.gateway import parse_config
from flext_api.gateway._app import Gateway
from flext_api.gateway._config import GatewayConfig
from flext_api.gateway._reload import Reloader
from flext_api.server._logging import make_json_logger

_VALID = (
    "clusters: [{name: c, instances: [{url: 'http://127.0.0.1:9'}], health: {active: false}}]\n"
    "routes: [{name: r, cluster: c, match: {path_prefix: /}}]\n"
    "watch: false\n"
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("x: " + "[" * 5000 + "]" * 5000, "nested too deeply"),
        ("x: " + "{a: " * 5000 + "1" + "}" * 5000, "nested too deeply"),
        (_VALID + "via: 2024-13-45\n", "month must be in 1..12"),
        (_VALID + "drain_timeout: !!int abc\n", "invalid literal for int()"),
        (_VALID + "drain_timeout: !!float abc\n", "could not convert string to float"),
        (_VALID + "watch: !!bool maybe\n", "maybe"),
        (_VALID + "via: !!timestamp x\n", "a value cannot be read"),
        (_VALID + "drain_timeout: " + "9" * 5000 + "\n", "digits"),
    ],
)
def test_a_file_pyyaml_chokes_on_is_a_failure(text: str, reason: str) -> None:
    """PyYAML's composer recurses and its constructors raise ValueError, KeyError or
    AttributeError on some scalars: a CONFIG_ERROR failure saying so (they escaped)."""
    result = parse_config(text, source="gw.yaml")
    assert result.is_failure and result.error_code is ErrorCode.CONFIG_ERROR
    assert (result.error or "").startswith("gw.yaml: not valid YAML: ")
    assert reason in (result.error or "")


@pytest.mark.parametrize(
    ("auth", "reason"),
    [
        ({"jwt_secret": "short"}, "auth.jwt_secret: 5 bytes is too short"),
        ({"jwks_url": "http://idp.example/jwks"}, "auth.jwks_url must be https://"),
        ({"jwt_algorithms": ["none"]}, "'none' is never accepted"),
    ],
)
def test_an_auth_section_its_checks_refuse_is_a_failure(auth: dict[str, Any], reason: str) -> None:
    """The server module's AuthConfig checks raise ConfigError, which pydantic lets
    through: a failure with the message (it escaped the loader)."""
    result = parse_config(_VALID + yaml.safe_dump({"auth": auth}), source="gw.yaml")
    assert result.is_failure and result.error_code is ErrorCode.CONFIG_ERROR
    assert reason in (result.error or ""), result.error


@pytest.mark.parametrize(
    ("extra", "shown"),
    [
        (
            {"rate_limit": {"storage_uri": "mongodb://ops:pw-1/x@y@10.0.0.9/db"}},
            "'mongodb://**********@10.0.0.9/db'",
        ),
        (
            {"auth": {"jwks_url": "http://ci:pw-1@idp.example/jwks"}},
            "'http://**********@idp.example/jwks'",
        ),
    ],
)
def test_an_error_quoting_a_url_hides_its_userinfo(extra: dict[str, Any], shown: str) -> None:
    """A password in a URL a validator quotes is shown as ********** (even one holding
    ``/`` or ``@``); the rest of the URL stays to say which it is."""
    result = parse_config(_VALID + yaml.safe_dump(extra))
    assert result.is_failure
    assert shown in (result.error or "")
    assert "pw-1" not in (result.error or "")


def _gateway() -> tuple[Gateway, io.StringIO]:
    log = io.StringIO()
    config = GatewayConfig.model_validate(yaml.safe_load(_VALID))
    return Gateway(config, access_log=make_json_logger(log)), log


def _refusals(log: io.StringIO) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    return [r for r in records if r["event"] == "config reload refused"]


def _refused(gateway: Gateway) -> float:
    return gateway.metrics.reloads.labels("refused")._value.get()  # type: ignore[no-any-return]


async def test_a_refused_reload_logs_no_password(tmp_path: Path) -> None:
    """The log line of a refused reload hides a quoted URL's password."""
    path = tmp_path / "gw.yaml"
    registry = {"backend": "redis", "url": "redis://:hunter2@10.0.0.9:port/0"}
    data = yaml.safe_load(_VALID)
    data["clusters"][0] = {"name": "c", "registry": registry}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    gateway, log = _gateway()
    await gateway.start()
    try:
        result = await Reloader(gateway, path).reload()
        [record] = _refusals(log)
    finally:
        await gateway.aclose()
    assert result.is_failure
    assert "redis://**********@10.0.0.9:port/0" in record["error"]
    assert "hunter2" not in log.getvalue() and "hunter2" not in (result.error or "")


async def test_a_loader_that_raises_is_a_refusal_not_the_end_of_reloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever escapes the loader is refused, counted and logged like an invalid file,
    and the next reload applies (it propagated: a 500 on /admin/reload, and the end of
    the file watch's task)."""
    path = tmp_path / "gw.yaml"
    path.write_text(_VALID, encoding="utf-8")
    gateway, log = _gateway()
    await gateway.start()
    reloader = Reloader(gateway, path)

    def broken(path: Path) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("flext_api.gateway._reload.load_config", broken)
    try:
        result = await reloader.reload()
        assert result.error_code is ErrorCode.CONFIG_ERROR
        assert isinstance(result.exception and result.exception.__cause__, RecursionError)
        assert _refused(gateway) == 1
        [record] = _refusals(log)
        assert "maximum recursion depth" in record["error"]
        monkeypatch.undo()
        assert (await reloader.reload()).is_success
    finally:
        await gateway.aclose()


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", "caf\u00e9"])
def test_an_admin_token_no_client_can_send_is_refused_unechoed(token: str) -> None:
    """``token: ""`` served an admin API nobody could use; a token with a space, a
    control or a non-ASCII character cannot follow ``Bearer`` either (RFC 6750 §2.1).
    The error, which is logged, does not quote the token."""
    data = {
        "clusters": [{"name": "s", "instances": [{"url": "http://127.0.0.1:9"}]}],
        "routes": [{"name": "r", "match": {"path_prefix": "/"}, "cluster": "s"}],
        "admin": {"token": token},
    }
    with pytest.raises(ValidationError, match=r"admin\.token must be a non-empty bearer") as err:
        GatewayConfig.model_validate(data)
    assert "input_value" not in str(err.value)
    if token:
        assert token not in str(err.value)
