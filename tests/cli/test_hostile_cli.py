"""Hostile use of `flext-api request` and `batch`: secrets kept out of what is shown, a
journal that names a file the command did not write, a stdout that cannot be written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flext_api.cli._app import app
from tests.servers.fault import FaultServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "flext_api.cli"]
SECRET = "s3cr3t-T0KEN"
NOT_UTF8 = b"\xff".decode("utf-8", "surrogateescape")  # what argv holds for a 0xff byte


def _authority(fault: FaultServer) -> str:
    return fault.url.removeprefix("http://")


# -- secrets ----------------------------------------------------------------------------


def test_verbose_hides_the_password_of_the_url(runner: CliRunner, fault: FaultServer) -> None:
    """Before: `-v` showed `> GET http://user:PASSWORD@host/...`. After: the userinfo and
    secret query values are [REDACTED]; the request is still sent with them."""
    url = f"http://user:{SECRET}@{_authority(fault)}/status/200?token={SECRET}&page=2"
    result = runner.invoke(app, ["request", "GET", url, "-v"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first == (
        f"> GET http://[REDACTED]@{_authority(fault)}/status/200?token=[REDACTED]&page=2"
    )
    assert fault.requests_to("/status/200")[0].headers["authorization"].startswith("Basic ")


def test_verbose_hides_credential_header_values(runner: CliRunner, fault: FaultServer) -> None:
    """Before: `-v -H 'Authorization: Bearer T'` echoed the token. After: the value of a
    credential header is [REDACTED]; other headers are shown as sent."""
    result = runner.invoke(
        app,
        [
            "request",
            "GET",
            f"{fault.url}/status/200",
            "-v",
            "-H",
            f"Authorization: Bearer {SECRET}",
            "-H",
            f"X-Api-Key: {SECRET}",
            "-H",
            "X-Trace: visible",
        ],
    )
    assert result.exit_code == 0, result.output
    assert SECRET not in result.stdout + result.stderr
    assert "> Authorization: [REDACTED]\n" in result.stdout
    assert "> X-Api-Key: [REDACTED]\n" in result.stdout
    assert "> X-Trace: visible\n" in result.stdout
    sent = fault.requests_to("/status/200")[0].headers
    assert sent["authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize("bad", ["\x01", NOT_UTF8], ids=["control", "not-utf8"])
def test_a_refused_credential_header_is_not_echoed(
    runner: CliRunner, fault: FaultServer, bad: str
) -> None:
    """Before: a bad `-H 'Authorization: ...'` was refused with its token in the error
    line. After: the same usage error (status 2) with the value [REDACTED]."""
    header = f"Authorization: Bearer {SECRET}{bad}"
    result = runner.invoke(app, ["request", "GET", f"{fault.url}/status/200", "-H", header])
    assert result.exit_code == 2
    assert SECRET not in result.stderr
    assert "[REDACTED]" in result.stderr
    assert result.stderr.count("\n") == 1
    assert fault.requests == []


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["request", "GET", "{url}"], "'URL'"),
        (["batch", "{input}", "-o", "{output}", "--base-url", "{url}"], "'--base-url'"),
    ],
    ids=["request-url", "batch-base-url"],
)
def test_a_url_that_is_not_utf8_is_refused_without_its_password(
    runner: CliRunner, fault: FaultServer, tmp_path: Path, args: list[str], option: str
) -> None:
    """Before: a URL argument with a byte that is not UTF-8 was refused with the whole
    URL, `user:password@` included. After: shown without userinfo or query."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "path": "/status/200"}\n')
    url = f"http://user:{SECRET}@{_authority(fault)}/a{NOT_UTF8}?token={SECRET}"
    values = {"url": url, "input": str(source), "output": str(tmp_path / "out.jsonl")}
    result = runner.invoke(app, [arg.format(**values) for arg in args])
    assert result.exit_code == 2
    assert SECRET not in result.stderr
    assert f"Invalid value for {option}: 'http://{_authority(fault)}/a\\udcff'" in result.stderr


def test_batch_line_with_a_bad_credential_header_is_not_echoed(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """Before: a line whose Authorization header held a CR/LF was reported (stderr and
    the output's "error") with the token. After: the value is [REDACTED] in both."""
    source = tmp_path / "in.jsonl"
    line = {"id": 1, "path": "/status/200", "headers": {"Authorization": f"Bearer {SECRET}\r\n"}}
    source.write_text(json.dumps(line) + "\n")
    output = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["batch", str(source), "-o", str(output), "--base-url", fault.url])
    assert result.exit_code == 1, result.output
    assert SECRET not in result.stderr
    assert SECRET not in output.read_text()
    (record,) = [json.loads(text) for text in output.read_text().splitlines()]
    assert record["error_code"] == "INVALID_REQUEST"
    assert "[REDACTED]" in record["error"]
    assert fault.requests == []


# -- a journal naming a file the command did not write -----------------------------------


def _journal_naming(tmp_path: Path, source: Path, victim: Path, fault: FaultServer) -> Path:
    """A journal of a real run of ``source``, with one more record naming ``victim``."""
    journal = tmp_path / "run.journal"
    first = CliRunner().invoke(
        app,
        [
            "batch",
            str(source),
            "-o",
            str(tmp_path / "first.jsonl"),
            "--base-url",
            fault.url,
            "--journal",
            str(journal),
        ],
    )
    assert first.exit_code == 0, first.output
    with journal.open("a") as fh:
        fh.write(json.dumps({"output": str(victim), "offset": 0, "lines": [1]}) + "\n")
    return journal


def test_resume_never_cuts_a_file_that_holds_no_results(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """Before: resuming with a journal that named another file (hand-edited, damaged,
    from another machine) truncated it - `/etc/passwd` with offset 0 lost every byte.
    After: exit 2, the file is left as it was, and no output is opened."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "path": "/status/200"}\n')
    victim = tmp_path / "precious.txt"
    victim.write_text("root:x:0:0:root:/root:/bin/bash\n")
    journal = _journal_naming(tmp_path, source, victim, fault)
    output = tmp_path / "second.jsonl"
    result = runner.invoke(
        app,
        [
            "batch",
            str(source),
            "-o",
            str(output),
            "--base-url",
            fault.url,
            "--journal",
            str(journal),
        ],
    )
    assert result.exit_code == 2, result.output
    assert victim.read_text() == "root:x:0:0:root:/root:/bin/bash\n"
    assert "not cut back (left untouched)" in result.stderr
    assert str(victim) in result.stderr
    assert not output.exists()


def test_resume_still_cuts_a_torn_result_line(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """A result line torn by kill -9 after the last checkpoint is still cut off."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "path": "/status/200"}\n{"id": 2, "path": "/status/200"}\n')
    journal = tmp_path / "run.journal"
    output = tmp_path / "out.jsonl"
    args = ["batch", str(source), "-o", str(output), "--base-url", fault.url]
    assert runner.invoke(app, [*args, "--journal", str(journal)]).exit_code == 0
    whole = output.read_bytes()
    with output.open("ab") as fh:
        fh.write(b'{"id":2,"line":2,"succ')
    result = runner.invoke(app, [*args, "--journal", str(journal)])
    assert result.exit_code == 0, result.output
    assert output.read_bytes() == whole


# -- a stdout that cannot be written ------------------------------------------------------


def _to_full_disk(*args: str) -> subprocess.CompletedProcess[str]:
    with Path("/dev/full").open("w") as full:
        return subprocess.run(
            [*COMMAND, *args],
            cwd=ROOT,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_request_to_a_full_disk_is_one_error_line(fault: FaultServer) -> None:
    """Before: stdout on a full disk ended `request` with an OSError traceback. After:
    `error: cannot write to stdout: ...` and status 1; a failed request's own error
    line follows."""
    done = _to_full_disk("request", "GET", f"{fault.url}/status/404", "--retries", "0")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: cannot write to stdout: No space left on device",
        f"error: [HTTP_STATUS] HTTP 404 Not Found from GET {fault.url}/status/404",
    ]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_batch_summary_to_a_full_disk_is_status_2(fault: FaultServer, tmp_path: Path) -> None:
    """Before: a traceback once every result was written. After: the results are kept,
    one error line, status 2 (an output that cannot be written)."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "path": "/status/200"}\n')
    output = tmp_path / "out.jsonl"
    done = _to_full_disk("batch", str(source), "-o", str(output), "--base-url", fault.url)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == "error: cannot write to stdout: No space left on device"
    assert json.loads(output.read_text())["success"] is True


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_storage_ls_to_a_full_disk_is_one_error_line(tmp_path: Path) -> None:
    """Before: an OSError traceback. After: one error line, status 1."""
    (tmp_path / "a.txt").write_bytes(b"x")
    done = _to_full_disk("storage", "ls", f"file://{tmp_path}/")
    assert done.returncode == 1
    assert done.stderr == "error: cannot write to stdout: No space left on device\n"


# -- output typer prints itself (--version, gateway check) to that stdout ------------------

FULL = "error: cannot write to stdout: No space left on device"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_version_to_a_full_disk_is_status_1() -> None:
    """`--version` whose line cannot be written says so and exits 1, not 0."""
    done = _to_full_disk("--version")
    assert (done.returncode, done.stderr.splitlines()) == (1, [FULL])


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_gateway_check_to_a_full_disk_is_status_1(tmp_path: Path) -> None:
    """`gateway check` whose `ok:` line cannot be written says so and exits 1, not 0."""
    config = tmp_path / "gateway.yaml"
    config.write_text(
        'clusters: [{name: c, instances: [{url: "http://127.0.0.1:9"}]}]\n'
        "routes: [{name: r, cluster: c, match: {path_prefix: /}}]\n"
    )
    done = _to_full_disk("gateway", "check", str(config))
    assert (done.returncode, done.stderr.splitlines()) == (1, [FULL])


def test_version_to_a_reader_that_left_is_status_0() -> None:
    """A reader that goes away is still not an error: `--version | head -0` exits 0."""
    with subprocess.Popen(
        [*COMMAND, "--version"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader is gone before the line is written
        stderr = process.stderr.read()
        assert (process.wait(timeout=120), stderr) == (0, b"")
