"""`flext-api request` off a terminal: every line of the head is written whole."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from flext_api.cli._app import app
from tests.servers.fault import FaultServer

pytestmark = pytest.mark.integration

# Longer than the 100 columns the tests' console has, with spaces rich would wrap at.
_LONG_VALUE = ", ".join(f"feature{n}=()" for n in range(20))
_TAB_HEADER = "X-Tab:a\tb"


def test_long_header_line_is_not_wrapped_when_redirected(
    runner: CliRunner, fault: FaultServer
) -> None:
    """A header longer than the console's width is one line of redirected output."""
    url = f"{fault.url}/status/200?h={quote(f'X-Long:{_LONG_VALUE}')}"
    result = runner.invoke(app, ["request", "GET", url])
    assert result.exit_code == 0
    assert f"\nX-Long: {_LONG_VALUE}\n" in result.stdout


def test_long_request_line_is_not_wrapped_when_redirected(
    runner: CliRunner, fault: FaultServer
) -> None:
    """With -v, a request header longer than the console's width is one `> ` line."""
    url = f"{fault.url}/status/200"
    result = runner.invoke(app, ["request", "GET", url, "-v", "-H", f"X-Long: {_LONG_VALUE}"])
    assert result.exit_code == 0
    assert f"\n> X-Long: {_LONG_VALUE}\n" in result.stdout


def test_tab_in_header_value_is_kept_when_redirected(runner: CliRunner, fault: FaultServer) -> None:
    """A tab inside a header value reaches redirected output as a tab, not spaces."""
    url = f"{fault.url}/status/200?h={quote(_TAB_HEADER)}"
    result = runner.invoke(app, ["request", "GET", url])
    assert result.exit_code == 0
    assert "\nX-Tab: a\tb\n" in result.stdout
