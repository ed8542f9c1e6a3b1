"""Running the command with a reader that goes away, as ``flext-api ... | head -1`` does."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "flext_api.cli"]


def first_line_then_close(
    args: list[str], env: Mapping[str, str] | None = None
) -> tuple[str, int, str]:
    """Run ``flext-api *args``, read one line of its stdout and close the pipe (what
    ``head -1`` does); its first line, exit status and whole stderr."""
    with subprocess.Popen(
        [*COMMAND, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=60)
    return first, proc.returncode, err
