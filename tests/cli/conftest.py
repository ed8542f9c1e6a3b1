"""CLI test fixtures: a pinned console (fixed width, no colour) and a CliRunner."""

from __future__ import annotations

import re
from typing import Any

import pytest
from typer.testing import CliRunner

from flext_api.cli import _console


@pytest.fixture(autouse=True)
def plain_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every console the command makes renders 100 columns wide, without colour."""
    monkeypatch.setattr(
        _console,
        "CONSOLE_OPTIONS",
        {"width": 100, "color_system": None, "force_terminal": False, "_environ": {}},
    )


@pytest.fixture
def runner() -> CliRunner:
    """typer's CliRunner (stdout and stderr kept apart)."""
    return CliRunner()


def normalize(text: str, **values: Any) -> str:
    """Replace the run-dependent parts of an output: dates, and the given literal values."""
    text = re.sub(r"Date: [^\n]+", "Date: <date>", text)
    for name, value in values.items():
        text = text.replace(str(value), f"<{name}>")
    return text
