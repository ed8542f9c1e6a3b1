"""`flext-api request` through CliRunner against the fault server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flext_api.cli._app import app
from tests.servers.fault import FaultServer

from .conftest import normalize

pytestmark = pytest.mark.integration


def test_success_prints_status_headers_and_pretty_json(
    runner: CliRunner, fault: FaultServer
) -> None:
    """A 201 is shown as status line, headers, blank line, indented JSON; exit 0."""
    result = runner.invoke(app, ["request", "GET", f"{fault.url}/status/201?h=X-Fixed:1"])
    assert result.exit_code == 0
    assert normalize(result.stdout) == (
        "HTTP/1.1 201 Created\n"
        "Content-Type: application/json\n"
        "X-Fixed: 1\n"
        "Content-Length: 15\n"
        "Date: <date>\n"
        "\n"
        "{\n"
        '  "status": 201\n'
        "}\n"
    )
    assert result.stderr == ""


def test_http_error_prints_the_response_and_one_line_reason(
    runner: CliRunner, fault: FaultServer
) -> None:
    """A 404 still shows the response; stderr has one line with the code; exit 1."""
    url = f"{fault.url}/status/404"
    result = runner.invoke(app, ["request", "GET", url, "--retries", "0"])
    assert result.exit_code == 1
    assert result.stdout.startswith("HTTP/1.1 404 Not Found\n")
    assert result.stderr == f"error: [HTTP_STATUS] HTTP 404 Not Found from GET {url}\n"


def test_retries_exhausted_shows_the_last_response(runner: CliRunner, fault: FaultServer) -> None:
    """After retries on 503, the last response is shown and the reason names the attempts."""
    result = runner.invoke(
        app, ["request", "GET", f"{fault.url}/status/503", "--retries", "1", "--timeout", "5"]
    )
    assert result.exit_code == 1
    assert result.stdout.startswith("HTTP/1.1 503 Service Unavailable\n")
    assert result.stderr.startswith("error: [RETRIES_EXHAUSTED] gave up after 2 attempts")
    assert result.stderr.count("\n") == 1


def test_connection_refused_is_one_line_on_stderr(runner: CliRunner) -> None:
    """No response: nothing on stdout, one CONNECT_ERROR line on stderr, exit 1."""
    result = runner.invoke(app, ["request", "GET", "http://127.0.0.1:1/", "--retries", "0"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: [CONNECT_ERROR] ")
    assert result.stderr.count("\n") == 1


def test_read_timeout(runner: CliRunner, fault: FaultServer) -> None:
    """--timeout bounds each phase: a slow answer is READ_TIMEOUT."""
    result = runner.invoke(
        app, ["request", "GET", f"{fault.url}/delay/2", "--timeout", "0.2", "--retries", "0"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: [READ_TIMEOUT]")


def _echo(stdout: str) -> dict[str, object]:
    body = stdout.split("\n\n", 1)[1]
    loaded: dict[str, object] = json.loads(body)
    return loaded


def test_json_body_and_headers_are_sent(runner: CliRunner, fault: FaultServer) -> None:
    """--json sends compact JSON with its content type; -H adds headers."""
    result = runner.invoke(
        app,
        [
            "request",
            "post",
            f"{fault.url}/echo",
            "--json",
            '{"a": [1, 2]}',
            "-H",
            "X-One: 1",
            "-H",
            "X-Two: two",
        ],
    )
    assert result.exit_code == 0
    echo = _echo(result.stdout)
    assert echo["method"] == "POST"
    assert echo["body"] == '{"a":[1,2]}'
    headers = echo["headers"]
    assert isinstance(headers, dict)
    assert (headers["content-type"], headers["x-one"], headers["x-two"]) == (
        "application/json",
        "1",
        "two",
    )


def test_bodies_from_files(runner: CliRunner, fault: FaultServer, tmp_path: Path) -> None:
    """@FILE reads --json and --data from a file."""
    (tmp_path / "b.json").write_text('{"k": "v"}')
    (tmp_path / "raw.txt").write_bytes(b"raw bytes")
    as_json = runner.invoke(
        app, ["request", "PUT", f"{fault.url}/echo", "--json", f"@{tmp_path / 'b.json'}"]
    )
    raw = runner.invoke(
        app, ["request", "PUT", f"{fault.url}/echo", "-d", f"@{tmp_path / 'raw.txt'}"]
    )
    assert _echo(as_json.stdout)["body"] == '{"k":"v"}'
    assert _echo(raw.stdout)["body"] == "raw bytes"


def test_verbose_shows_request_and_timing(runner: CliRunner, fault: FaultServer) -> None:
    """-v prints the request lines first and the timing on stderr."""
    url = f"{fault.url}/status/200"
    result = runner.invoke(app, ["request", "GET", url, "-v", "-H", "X-A: b"])
    assert result.stdout.startswith(
        f"> GET {url}\n> User-Agent: flext-api/0.1.0\n> X-A: b\n>\nHTTP/1.1 200 OK\n"
    )
    assert result.stderr.startswith("* 200 in ")
    assert result.stderr.endswith(" ms, 1 attempt(s), HTTP/1.1\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "{}", "--data", "x"], "use --json or --data, not both"),
        (["--json", "{nope"], "not valid JSON"),
        (["-H", "no-colon"], "is not 'Name: value'"),
        (["-H", "Bad Name: v"], "invalid header name"),
        (["--json", "@/no/such/file"], "cannot read '/no/such/file'"),
    ],
)
def test_usage_errors_exit_2(runner: CliRunner, args: list[str], message: str) -> None:
    """Bad options are usage errors (exit 2) with a message naming the problem."""
    result = runner.invoke(app, ["request", "POST", "http://127.0.0.1:1/", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


def test_verbose_failure_without_response_still_shows_the_request(runner: CliRunner) -> None:
    """-v on a refused connection prints the request that was attempted."""
    result = runner.invoke(app, ["request", "GET", "http://127.0.0.1:1/x", "-v", "--retries", "0"])
    assert result.exit_code == 1
    assert result.stdout.startswith("> GET http://127.0.0.1:1/x\n")


def test_invalid_url_is_one_line_and_no_request(runner: CliRunner) -> None:
    """A URL refused before sending: INVALID_REQUEST on stderr, nothing on stdout, even -v."""
    result = runner.invoke(app, ["request", "GET", "not a url", "-v"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: [INVALID_REQUEST] ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://127.0.0.1:1/", "-d", "a\udcff"], "'a\\udcff' is not valid UTF-8 text"),
        (["http://127.0.0.1:1/", "--json", '"\udcff"'], "is not valid UTF-8 text"),
        (["http://127.0.0.1:1/", "-H", "X: \udcff"], "is not valid UTF-8 text"),
        (["http://127.0.0.1:1/p\udcff"], "not valid UTF-8"),
        (["http://127.0.0.1:1/", "--timeout", "inf"], "inf is not a finite number of seconds"),
    ],
)
def test_undecodable_arguments_and_infinite_timeout_exit_2(
    runner: CliRunner, args: list[str], message: str
) -> None:
    """Argument bytes that are not UTF-8 (surrogate escapes) and --timeout inf are usage errors."""
    result = runner.invoke(app, ["request", "POST", *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
