"""Where the command's output goes: rich consoles for stdout and stderr.

The consoles resolve ``sys.stdout``/``sys.stderr`` when they write (rich's default), so
typer's ``CliRunner`` captures them. ``CONSOLE_OPTIONS`` is the one place tests pin the
rendering (a fixed width, no colour) for exact assertions, as rich's own tests do.

**A reader that goes away** (``flext-api request ... | head -1``) is not a failure of the
command: the rest of its output is dropped without a word (the stream is pointed at
``/dev/null``, as Python's note on SIGPIPE recommends) and the command ends with the
status of what it did - 0 when the request succeeded, 1 with its ``error:`` line when it
failed. Rich's default would exit 1 at once, which reads as a failed request. Every
command prints to stdout only once its work is done, so there is nothing to stop early.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console

__all__ = ["CONSOLE_OPTIONS", "make_console"]

#: Extra keyword arguments for every Console the command creates (tests set
#: ``{"width": 100, "color_system": None, "force_terminal": False, "_environ": {}}``).
CONSOLE_OPTIONS: dict[str, Any] = {}


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The stream's reader is gone: drop the rest quietly (module docstring)."""
        self.quiet = True
        stream = sys.stderr if self.stderr else sys.stdout
        try:
            fileno = stream.fileno()
        except (AttributeError, OSError, ValueError):  # not a file (a test's buffer)
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            # Also for what is still buffered: flushed at exit, it would fail again.
            os.dup2(devnull, fileno)
        finally:
            os.close(devnull)


def make_console(*, stderr: bool = False) -> Console:
    """A console on stdout (results) or stderr (progress, diagnostics).

    Diagnostics are never wrapped: one message is one line, whatever the width.
    """
    return _Console(stderr=stderr, highlight=False, soft_wrap=stderr, **CONSOLE_OPTIONS)
