"""``flext-api storage ls|cp|rm`` against a real S3 server (moto) and local files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flext_api.cli import _console
from flext_api.cli._app import app
from tests.cli.conftest import plain_console
from tests.servers.storage_servers import ServerProcess, create_s3_bucket

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures(plain_console.__name__)]


@pytest.fixture
def bucket(moto: ServerProcess) -> str:
    """A fresh bucket on the session's moto server."""
    name = f"cli-{os.urandom(4).hex()}"
    create_s3_bucket(moto.endpoint, name)
    return name


def _s3(moto: ServerProcess, *args: str) -> list[str]:
    creds = ["--access-key-id", "t", "--secret-access-key", "t"]
    return ["storage", "--endpoint", moto.endpoint, *creds, *args]


def test_cp_up_ls_cp_down_rm(moto: ServerProcess, bucket: str, tmp_path: Path) -> None:
    """A file goes up, is listed, comes back identical and is removed."""
    runner = CliRunner()
    source = tmp_path / "report.csv"
    source.write_bytes(b"a,b\n1,2\n")
    up = runner.invoke(app, _s3(moto, "cp", str(source), f"s3://{bucket}/in/"))
    assert up.exit_code == 0, up.output
    assert f"-> s3://{bucket}/in/report.csv" in up.stdout
    listed = runner.invoke(app, _s3(moto, "ls", "-r", f"s3://{bucket}/"))
    assert listed.exit_code == 0 and "in/report.csv" in listed.stdout and " 8 " in listed.stdout
    level = runner.invoke(app, _s3(moto, "ls", f"s3://{bucket}/"))
    assert "DIR" in level.stdout and "in/" in level.stdout
    back = tmp_path / "back.csv"
    down = runner.invoke(app, _s3(moto, "cp", f"s3://{bucket}/in/report.csv", str(back)))
    assert down.exit_code == 0 and back.read_bytes() == source.read_bytes()
    removed = runner.invoke(app, _s3(moto, "rm", f"s3://{bucket}/in/report.csv"))
    assert removed.exit_code == 0
    assert "report.csv" not in runner.invoke(app, _s3(moto, "ls", "-r", f"s3://{bucket}/")).stdout


def test_missing_object_exits_1_with_the_code(
    moto: ServerProcess, bucket: str, tmp_path: Path
) -> None:
    """Copying an absent object prints one NOT_FOUND line and exits with status 1."""
    result = CliRunner().invoke(app, _s3(moto, "cp", f"s3://{bucket}/nope", str(tmp_path / "x")))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: [NOT_FOUND]")
    assert not (tmp_path / "x").exists()


def test_bad_scheme_exits_1(tmp_path: Path) -> None:
    """An unknown URL scheme is a CONFIG_ERROR line and status 1."""
    result = CliRunner().invoke(app, ["storage", "rm", "ftp://host/x"])
    assert result.exit_code == 1 and "[CONFIG_ERROR]" in result.stderr


def test_large_copy_draws_a_progress_bar(tmp_path: Path) -> None:
    """A copy of 8 MiB or more shows a progress bar on stderr and copies every byte."""
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(9 * 1024 * 1024))
    target = tmp_path / "store"
    result = CliRunner().invoke(app, ["storage", "cp", str(source), f"file://{target}/"])
    assert result.exit_code == 0, result.output
    assert "MB" in result.stderr  # rich's DownloadColumn
    assert (target / "big.bin").read_bytes() == source.read_bytes()


def test_cli_process_exits_0_every_time(moto: ServerProcess, bucket: str, tmp_path: Path) -> None:
    """The real `flext-api storage` process exits 0 on each of several runs (no abort at exit)."""
    source = tmp_path / "f.txt"
    source.write_bytes(b"x" * 1000)
    command = [sys.executable, "-m", "flext_api.cli", *_s3(moto, "cp", str(source))]
    codes = []
    for index in range(5):
        done = subprocess.run(
            [*command, f"s3://{bucket}/k{index}"], capture_output=True, timeout=60, check=False
        )
        codes.append((done.returncode, done.stderr.decode()[-300:]))
    assert codes == [(0, "")] * 5


def test_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On a terminal the large copy draws a live bar (rendered to stderr)."""
    monkeypatch.setattr(
        _console, "CONSOLE_OPTIONS", {"width": 100, "force_terminal": True, "_environ": {}}
    )
    source = tmp_path / "big.bin"
    source.write_bytes(b"\0" * (9 * 1024 * 1024))
    result = CliRunner().invoke(app, ["storage", "cp", str(source), str(tmp_path / "copy.bin")])
    assert result.exit_code == 0, result.output
    assert "big.bin" in result.stderr and (tmp_path / "copy.bin").stat().st_size == 9 * 2**20


def test_ls_follows_pages(tmp_path: Path) -> None:
    """ls lists every key even past one page of 1,000."""
    for i in range(1003):
        (tmp_path / f"f{i:04d}").write_bytes(b"")
    result = CliRunner().invoke(app, ["storage", "ls", f"file://{tmp_path}/"])
    assert result.exit_code == 0 and "f1002" in result.stdout and "f0000" in result.stdout


def test_missing_local_source_is_a_usage_error(tmp_path: Path) -> None:
    """cp from a local file that does not exist is a usage error (exit status 2)."""
    result = CliRunner().invoke(app, ["storage", "cp", str(tmp_path / "none"), "memory://x"])
    assert result.exit_code == 2 and "Invalid value" in result.output


def test_main_returns_normally_when_called_from_python(
    moto: ServerProcess, bucket: str, tmp_path: Path
) -> None:
    """main(argv) raises SystemExit as usual after an S3 command (no hard exit in-process)."""
    from flext_api.cli import main

    source = tmp_path / "f.txt"
    source.write_bytes(b"x")
    with pytest.raises(SystemExit) as info:
        main(_s3(moto, "cp", str(source), f"s3://{bucket}/f.txt"))
    assert info.value.code == 0


class _HardExit(Exception):
    """Stands in for os._exit in these tests: carries the status."""


@pytest.mark.parametrize(("code", "status"), [(None, 0), (3, 3), ("bad input", 1)])
def test_exit_now_runs_exit_handlers_and_keeps_the_status(
    monkeypatch: pytest.MonkeyPatch, code: object, status: int
) -> None:
    """_exit_now runs the atexit handlers, then leaves with the command's status."""
    import atexit

    from flext_api import cli

    ran: list[bool] = []

    def fake_exit(value: int) -> None:
        raise _HardExit(value)

    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: ran.append(True))
    monkeypatch.setattr(os, "_exit", fake_exit)
    with pytest.raises(_HardExit) as info:
        cli._exit_now(code)
    assert info.value.args == (status,) and ran == [True]


def test_console_run_with_an_obstore_backend_exits_hard(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A console run (argv None) whose command opened an obstore backend ends via os._exit."""
    import atexit

    from flext_api import cli

    def fake_exit(value: int) -> None:
        raise _HardExit(value)

    source = tmp_path / "f.txt"
    source.write_bytes(b"x")
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: None)
    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setattr(sys, "argv", ["flext-api", "storage", "cp", str(source), "memory://f"])
    with pytest.raises(_HardExit) as info:
        cli.main()
    assert info.value.args == (0,)
