"""Response rendering and option parsing, checked on exact output."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import typer
from rich.console import Console

from flext_api import HttpRequest, HttpResponse
from flext_api.cli._options import client_config, parse_body, parse_headers, parse_rate
from flext_api.cli._render import print_request, print_response, reason_of


def _render(response: HttpResponse) -> str:
    out = io.StringIO()
    print_response(Console(file=out, width=60, color_system=None, _environ={}), response)
    return out.getvalue()


def test_json_body_is_pretty_printed() -> None:
    """A JSON body is indented by two spaces."""
    response = HttpResponse(
        200, headers={"Content-Type": "application/json"}, content=b'{"a":{"b":[1]}}'
    )
    assert _render(response) == (
        "HTTP/1.1 200 OK\nContent-Type: application/json\n\n"
        '{\n  "a": {\n    "b": [\n      1\n    ]\n  }\n}\n'
    )


def test_invalid_json_is_printed_as_text() -> None:
    """A body announced as JSON that does not parse is shown as it is."""
    response = HttpResponse(500, headers={"Content-Type": "application/json"}, content=b"{oops")
    assert _render(response).endswith("\n\n{oops\n")


def test_text_body_is_printed_as_is_and_reason_kept() -> None:
    """A text body is printed verbatim; a reason sent by the server is used."""
    response = HttpResponse(
        299,
        headers={"Content-Type": "text/plain; charset=utf-8"},
        content=b"hello\nworld",
        reason="Custom",
        http_version="HTTP/2",
    )
    assert _render(response) == (
        "HTTP/2 299 Custom\nContent-Type: text/plain; charset=utf-8\n\nhello\nworld\n"
    )


def test_binary_and_undecodable_bodies_are_summarized() -> None:
    """Binary content types and bytes that are not text are never dumped."""
    png = HttpResponse(200, headers={"Content-Type": "image/png"}, content=b"\x89PNG")
    bad_text = HttpResponse(200, content=b"\xff\xfe\x00")
    assert _render(png).endswith("\n\n<4 bytes of binary data (image/png)>\n")
    assert _render(bad_text).endswith("<3 bytes of binary data (no content type)>\n")


def test_empty_body_prints_only_the_head() -> None:
    """No body: status line and headers only."""
    assert _render(HttpResponse(204)) == "HTTP/1.1 204 No Content\n"


def test_reason_of_unknown_status_is_empty() -> None:
    """A status without a standard phrase has no reason."""
    assert reason_of(HttpResponse(599)) == ""


def test_print_request() -> None:
    """Verbose request lines start with '> '."""
    out = io.StringIO()
    request = HttpRequest("GET", "http://h/x", headers={"A": "b"})
    print_request(Console(file=out, width=60, color_system=None, _environ={}), request)
    assert out.getvalue() == "> GET http://h/x\n> A: b\n>\n"


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("100/s", 100.0),
        ("100", 100.0),
        ("600/min", 10.0),
        ("2/h", 2 / 3600),
        ("1.5 / second", 1.5),
        ("30/m", 0.5),
    ],
)
def test_parse_rate(text: str, per_second: float) -> None:
    """Rates are per second, per minute or per hour; a bare number is per second."""
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["", "fast", "0/s", "10/day", "-1/s"])
def test_parse_rate_rejects_nonsense(text: str) -> None:
    """Anything else is a usage error naming --rate."""
    with pytest.raises(typer.BadParameter, match="is not a rate"):
        parse_rate(text)


def test_parse_headers() -> None:
    """'Name: value' pairs are split and stripped; a value may contain colons."""
    assert parse_headers(["A: 1", "B:  http://x:1 "]) == [("A", "1"), ("B", "http://x:1")]
    assert parse_headers(None) == []
    with pytest.raises(typer.BadParameter, match="control character"):
        parse_headers(["A: x\x00y"])


def test_parse_body(tmp_path: Path) -> None:
    """Text is encoded as UTF-8; @FILE is read as bytes."""
    (tmp_path / "f").write_bytes(b"\x00\x01")
    assert parse_body("é", "'--data'") == "é".encode()
    assert parse_body(f"@{tmp_path / 'f'}", "'--data'") == b"\x00\x01"


def test_client_config_from_options() -> None:
    """Options map to the client config; unset ones keep the library defaults."""
    config = client_config(retries=1, timeout=2.5, http2=True, rate=50.0, concurrency=300)
    assert config.retry.max_retries == 1
    assert (config.timeout.connect, config.timeout.read) == (2.5, 2.5)
    assert config.http2
    assert (config.rate_limit.enabled, config.rate_limit.rate, config.rate_limit.burst) == (
        True,
        50.0,
        50,
    )
    assert (config.pool.max_connections, config.pool.max_keepalive) == (300, 300)
    default = client_config()
    assert default.retry.max_retries == 3 and not default.rate_limit.enabled


def _render_on_terminal(response: HttpResponse) -> str:
    out = io.StringIO()
    console = Console(file=out, width=60, color_system=None, force_terminal=True, _environ={})
    print_response(console, response)
    return out.getvalue()


def test_control_characters_do_not_reach_a_terminal() -> None:
    """Before: a text body's ESC sequences (a window title, colours) went to the terminal
    raw, so the server drove it. After: shown escaped there; a redirect keeps them."""
    body = "\x1b]0;pwned\x07\x1b[31mred\x1b[0m\x9b2J\r\nnext\n".encode()
    response = HttpResponse(
        200, headers={"Content-Type": "text/plain", "X-Note": "a\x1bb"}, content=body
    )
    shown = _render_on_terminal(response)
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert "\x9b" not in shown
    assert "\\x1b]0;pwned\\x07\\x1b[31mred\\x1b[0m\\x9b2J\nnext\n" in shown
    assert "X-Note: a\\x1bb" in shown
    # Redirected, the body is kept exactly (BEL and CR included).
    assert _render(response).endswith("\n\n" + body.decode())


def test_redirected_json_keeps_long_values_whole() -> None:
    """Before: off a terminal, a JSON line longer than the console was cropped to its
    width (`> out.json` held broken JSON). After: every line is written whole."""
    value = "z" * 300
    response = HttpResponse(
        200, headers={"Content-Type": "application/json"}, content=f'{{"k":"{value}"}}'.encode()
    )
    assert _render(response).endswith(f'\n\n{{\n  "k": "{value}"\n}}\n')


def test_redirected_text_is_the_body_as_it_is() -> None:
    """Before: a redirected text body was wrapped at the console's width, its tabs
    expanded, BEL and CR dropped and a newline added after its own. After: as sent."""
    body = "a" * 150 + "\tb\r\n\x07c\n"
    response = HttpResponse(200, headers={"Content-Type": "text/plain"}, content=body.encode())
    assert _render(response) == f"HTTP/1.1 200 OK\nContent-Type: text/plain\n\n{body}"


def test_json_body_on_a_terminal_has_controls_escaped_and_is_not_cropped() -> None:
    """Before: a JSON string's C1 controls (CSI) and DEL reached the terminal raw, and
    a long value was cropped at its width. After: escaped, and wrapped whole."""
    content = '{"a":"x\u009b2Jy\x7f","k":"' + "z" * 100 + '"}'
    response = HttpResponse(
        200, headers={"Content-Type": "application/json"}, content=content.encode()
    )
    shown = _render_on_terminal(response)
    assert "\x9b" not in shown
    assert "\x7f" not in shown
    assert "x\\x9b2Jy\\x7f" in shown
    assert shown.count("z") == 100
