"""Where the command's output goes: rich consoles for stdout and stderr.

The consoles resolve ``sys.stdout``/``sys.stderr`` when they write (rich's default), so
typer's ``CliRunner`` captures them. ``CONSOLE_OPTIONS`` is the one place tests pin the
rendering (a fixed width, no colour) for exact assertions, as rich's own tests do.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

__all__ = ["CONSOLE_OPTIONS", "make_console"]

#: Extra keyword arguments for every Console the command creates (tests set
#: ``{"width": 100, "color_system": None, "force_terminal": False, "_environ": {}}``).
CONSOLE_OPTIONS: dict[str, Any] = {}


def make_console(*, stderr: bool = False) -> Console:
    """A console on stdout (results) or stderr (progress, diagnostics).

    Diagnostics are never wrapped: one message is one line, whatever the width.
    """
    return Console(stderr=stderr, highlight=False, soft_wrap=stderr, **CONSOLE_OPTIONS)
