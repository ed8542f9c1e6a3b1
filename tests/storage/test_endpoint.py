"""Storage endpoints are checked before a client sees them: the Rust clients of S3 and
Azure panic on a URL they cannot parse, so a bad one is a CONFIG_ERROR (a usage error on
the command line), never a panic."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from flext_api import ErrorCode
from flext_api._errors import ConfigError
from flext_api.cli._app import app
from flext_api.storage import AzureStorage, GCSStorage, S3Storage, open_storage
from flext_api.storage._url import check_endpoint
from tests.cli.conftest import plain_console

BAD = [
    "notaurl",
    "127.0.0.1:9000",
    "ftp://127.0.0.1:9000",
    "http://",
    "http://[::1",
    "http://127.0.0.1:99999",
    "http://127.0.0.1:0",
    "http://a b:9000",
    "http://a<b:9000",
    "http://bücher.example:9000",
    "http://1.2.3.4.5:9000",
    "http://999.1.1.1:9000",
    "http://[fe80::1%25eth0]:9000",
    "http://u<x:pw@127.0.0.1:9000",
    "http://127.0.0.1:9000/a<b",
    "http://127.0.0.1:9000/?x=1",
]
GOOD = [
    "http://127.0.0.1:9000",
    "https://s3.eu-west-1.amazonaws.com",
    "http://minio_1:9000/",
    "http://[::1]:10000/devstoreaccount1",
]


def _s3(endpoint: str) -> Any:
    return S3Storage("bkt", endpoint=endpoint)


def _azure(endpoint: str) -> Any:
    return AzureStorage("c", account_name="a", endpoint=endpoint)


def _gcs(endpoint: str) -> Any:
    return GCSStorage("bkt", endpoint=endpoint)


@pytest.mark.parametrize("endpoint", BAD)
@pytest.mark.parametrize("build", [_s3, _azure, _gcs])
def test_a_malformed_endpoint_is_config_error_at_construction(build: Any, endpoint: str) -> None:
    """S3, Azure and GCS backends refuse it when built, in one line naming the endpoint."""
    with pytest.raises(ConfigError, match=r"^\[CONFIG_ERROR\] storage endpoint .* is not an"):
        build(endpoint)


@pytest.mark.parametrize("endpoint", GOOD)
def test_endpoints_of_every_usual_shape_are_accepted(endpoint: str) -> None:
    """Hosts by name, address or IPv6 literal, with a port and a path, pass unchanged."""
    assert check_endpoint(endpoint) == endpoint
    assert _s3(endpoint).bucket == "bkt"


def test_the_message_keeps_the_user_info_out() -> None:
    """A refused endpoint is shown without the secret it may carry."""
    with pytest.raises(ConfigError) as caught:
        check_endpoint("http://key:SECRET@127.0.0.1:0")
    assert "SECRET" not in caught.value.message and "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("url", "env"),
    [
        ("s3://bkt/k", {"AWS_ENDPOINT_URL": "notaurl"}),
        ("az://c/k", {"AZURE_STORAGE_ACCOUNT_NAME": "a", "AZURE_STORAGE_ENDPOINT": "http://["}),
        ("gs://bkt/k", {"STORAGE_EMULATOR_HOST": "127.0.0.1:9023"}),
    ],
)
def test_open_storage_reports_an_endpoint_from_the_environment(
    url: str, env: dict[str, str]
) -> None:
    """An endpoint from the environment is a failed result with the endpoint's message."""
    result = open_storage(url, env=env)
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert str(result.error).startswith("storage endpoint ")


@pytest.mark.usefixtures(plain_console.__name__)
def test_cli_endpoint_is_a_usage_error() -> None:
    """`storage --endpoint notaurl ls s3://...` exits 2 naming the option."""
    result = CliRunner().invoke(app, ["storage", "--endpoint", "notaurl", "ls", "s3://bkt/x"])
    assert result.exit_code == 2
    text = " ".join(result.stderr.replace("│", " ").split())
    assert "Invalid value for '--endpoint': storage endpoint 'notaurl' is not an" in text


def test_cli_process_never_panics() -> None:
    """The real command with the reviewer's value: exit 2 and no Rust panic on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUST_")}
    command = [sys.executable, "-m", "flext_api.cli", "storage", "--endpoint", "notaurl"]
    done = subprocess.run(
        [*command, "ls", "s3://bucket/x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert "panicked" not in done.stderr and "storage endpoint 'notaurl'" in done.stderr
