"""Output typer prints itself (`--version`, `gateway check`) to a stdout that cannot be
written: one error line and status 1, as for every other command (docs/cli.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "flext_api.cli"]
FULL = "error: cannot write to stdout: No space left on device"

pytestmark = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")


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


def test_version_to_a_full_disk_is_status_1() -> None:
    """`--version` whose line cannot be written says so and exits 1, not 0."""
    done = _to_full_disk("--version")
    assert (done.returncode, done.stderr.splitlines()) == (1, [FULL])


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
