"""`flext-api storage ls` over a local directory (LocalStorage): keys shown exactly."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from flext_api.cli import _storage_cmd
from flext_api.cli._app import app


def _keys(stdout: str) -> list[str]:
    """The key column: what follows the date (``YYYY-MM-DD HH:MM``) on each row."""
    keys = []
    for line in stdout.splitlines()[1:]:
        _, _, rest = line.partition(":")
        keys.append(rest[2:].strip())
    return keys


def test_keys_that_look_like_markup_are_listed_as_they_are(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Before: the key "[red]x" was listed as "x", and "dir[/x]" ended the command with a
    MarkupError traceback. After: both are listed as named."""
    (tmp_path / "dir[").mkdir()
    (tmp_path / "dir[" / "x]").write_bytes(b"1")
    (tmp_path / "[red]x").write_bytes(b"22")
    result = runner.invoke(app, ["storage", "ls", "-r", f"file://{tmp_path}/"])
    assert result.exit_code == 0, result.output
    assert sorted(_keys(result.stdout)) == ["[red]x", "dir[/x]"]


def test_long_keys_are_neither_cut_nor_wrapped(runner: CliRunner, tmp_path: Path) -> None:
    """Before: off a terminal (80 columns; 100 in these tests) a long key ended in "..."
    and a key with spaces was wrapped onto two rows. After: one row, the whole key."""
    long_key = "k" * 150 + ".txt"
    spaced = "a rather long file name " * 5 + ".txt"
    (tmp_path / long_key).write_bytes(b"")
    (tmp_path / spaced).write_bytes(b"")
    result = runner.invoke(app, ["storage", "ls", f"file://{tmp_path}/"])
    assert result.exit_code == 0, result.output
    assert sorted(_keys(result.stdout)) == sorted([long_key, spaced])


def test_control_characters_of_a_key_do_not_reach_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a key holding ESC sequences was written raw to the terminal. After: shown
    escaped there."""
    (tmp_path / "esc\x1b[31mred").write_bytes(b"")
    screen = io.StringIO()

    def terminal(*, stderr: bool = False) -> Console:
        return Console(file=screen if not stderr else io.StringIO(), force_terminal=True)

    monkeypatch.setattr(_storage_cmd, "make_console", terminal)
    result = CliRunner().invoke(app, ["storage", "ls", f"file://{tmp_path}/"])
    assert result.exit_code == 0, result.output
    assert "esc\\x1b[31mred" in screen.getvalue()
    assert "\x1b[31mred" not in screen.getvalue()
