"""The flext-api entry point: --version, --help of every command, the missing-extra hint,
usage errors, and a reader that goes away."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

import flext_api
from flext_api.cli import INSTALL_HINT, main
from flext_api.cli._app import app
from tests.cli._pipe import first_line_then_close

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "flext_api.cli"]


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """main() configures structlog for the process; put the test session's back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_version(runner: CliRunner) -> None:
    """--version prints the package version and exits 0."""
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"flext-api {flext_api.__version__}\n")


def test_no_arguments_shows_help(runner: CliRunner) -> None:
    """With no command, the help is shown (usage status 2)."""
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    for command in ("request", "batch", "serve"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            "request",
            [
                "METHOD",
                "URL",
                "--header",
                "-H",
                "--json",
                "--data",
                "--timeout",
                "--retries",
                "--http2",
                "--verbose",
            ],
        ),
        (
            "batch",
            [
                "INPUT.jsonl",
                "--output",
                "-o",
                "--base-url",
                "--concurrency",
                "--rate",
                "--retries",
                "--timeout",
                "--journal",
                "--max-pause",
                "--allow-duplicates",
            ],
        ),
        ("serve", ["MODULE:APP", "--host", "--port", "--factory", "--log-level"]),
    ],
)
def test_each_command_help_lists_every_option(
    runner: CliRunner, command: str, options: list[str]
) -> None:
    """`flext-api COMMAND --help` documents every argument and option."""
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    for option in options:
        assert option in result.stdout, option


def test_missing_cli_extra_prints_install_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without typer/rich, main() prints how to install the extra and exits 1."""
    monkeypatch.setitem(sys.modules, "typer", None)
    for name in list(sys.modules):
        if name.startswith("flext_api.cli._"):
            monkeypatch.delitem(sys.modules, name)
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 1
    assert capsys.readouterr().err == f"{INSTALL_HINT} (missing module: typer)\n"


def test_other_import_errors_are_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ImportError that is not a missing extra propagates as it is."""
    monkeypatch.setitem(sys.modules, "flext_api.cli._app", None)
    with pytest.raises(ImportError, match=r"flext_api\.cli\._app"):
        main(["--version"])


def test_main_runs_the_app(capsys: pytest.CaptureFixture[str]) -> None:
    """main(argv) runs the command line and routes library logs to stderr."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"flext-api {flext_api.__version__}\n"


def test_python_dash_m_runs_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m flext_api.cli` is the same command."""
    import runpy

    monkeypatch.setattr(sys, "argv", ["flext_api.cli", "--version"])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("flext_api.cli", run_name="__main__")
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("flext-api ")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["request", "GET"], "error: Missing argument 'URL'. See 'flext-api request --help'"),
        (
            ["request", "GET", "http://x", "-H", "bad"],
            "error: Invalid value for '-H': 'bad' is not 'Name: value'. "
            "See 'flext-api request --help'",
        ),
        (["nope"], "error: No such command 'nope'. See 'flext-api --help'"),
        (
            ["request", "GET", "http://x", "--bo\ngus"],
            "error: No such option: --bo\\x0agus. See 'flext-api request --help'",
        ),
    ],
)
def test_usage_error_is_one_line(runner: CliRunner, args: list[str], line: str) -> None:
    """A usage error is one `error:` line on stderr, nothing on stdout, status 2."""
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"{line}\n")


@pytest.mark.parametrize(
    ("args", "start", "hint"),
    [
        (["request", "GET", "http://x", "--bogus"], "No such option: --bogus", "request"),
        (
            ["request", "GET", "http://x", "--timeout", "soon"],
            "Invalid value for '--timeout'",
            "request",
        ),
        (["batch", "in.jsonl", "-o", "o", "--concurrency", "0"], "Invalid value for", "batch"),
        (["gateway", "check"], "Missing argument 'FILE'", "gateway check"),
        (["--bogus"], "No such option: --bogus", ""),
    ],
)
def test_usage_errors_of_every_kind_are_one_line(
    runner: CliRunner, tmp_path: Path, args: list[str], start: str, hint: str
) -> None:
    """Unknown options, bad values and missing arguments of every command: one line, 2."""
    (tmp_path / "in.jsonl").write_text('{"id": 1, "path": "/x"}\n')
    args = [str(tmp_path / a) if a == "in.jsonl" else a for a in args]
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"error: {start}")
    command = f"flext-api {hint}".rstrip()
    assert result.stderr.endswith(f"See '{command} --help'\n")
    assert result.stderr.count("\n") == 1


def test_usage_error_stays_one_line_on_a_narrow_terminal() -> None:
    """The real command on a 20-column terminal: the usage error is one line, no panel
    (typer drew a boxed panel wrapped to the width, after the usage line)."""
    env = {**os.environ, "COLUMNS": "20", "TTY_COMPATIBLE": "1", "NO_COLOR": "1"}
    done = subprocess.run(
        [*COMMAND, "request", "GET", "http://x", "--timeout", "soon"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    err = re.sub(r"\x1b\[[0-9;]*m", "", done.stderr)
    assert (done.returncode, done.stdout) == (2, "")
    assert err.startswith("error: Invalid value for '--timeout': ")
    assert err.endswith(". See 'flext-api request --help'\n") and err.count("\n") == 1


def test_help_is_unchanged_by_the_one_line_errors(runner: CliRunner) -> None:
    """--help is still typer's formatted help on stdout, status 0."""
    result = runner.invoke(app, ["request", "--help"])
    assert result.exit_code == 0 and result.stderr == ""
    assert "Usage: flext-api request [OPTIONS]" in result.stdout and "─ Options ─" in result.stdout


@pytest.mark.parametrize(
    ("args", "status"),
    [(["--help"], 0), (["batch", "--help"], 0), (["request", "--help"], 0), ([], 2)],
)
def test_help_into_a_reader_that_goes_away(args: list[str], status: int) -> None:
    """`flext-api --help | head -1`: the rest of the help is dropped quietly and the
    status is the help's own (0; 2 for the help of a missing command), not rich's 1."""
    # A wide terminal makes the help far larger than a pipe holds: the command must
    # block on the pipe, then meet it closed.
    env = {**os.environ, "COLUMNS": "20000"}
    first, returncode, err = first_line_then_close(args, env)
    assert first.strip() == "" and len(first) > 10_000  # rich's blank first line
    assert (returncode, err) == (status, "")
