"""The flext-api entry point: --version, --help of every command, the missing-extra hint."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import structlog
from typer.testing import CliRunner

import flext_api
from flext_api.cli import INSTALL_HINT, main
from flext_api.cli._app import app


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
