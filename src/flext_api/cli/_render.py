"""Rendering a response for people: status line, headers, a highlighted body.

JSON bodies are pretty-printed and highlighted with rich's ``Syntax``; other text is
printed as it is; binary bodies are summarized, never dumped into a terminal.

Redirected output gets the body text as it is (:class:`_Verbatim`): rich would wrap
long lines to the console's width (80 columns off a terminal), crop the lines of a
``Syntax``, expand tabs and drop some control characters, so ``> out.json`` held
broken JSON - and it renders about 200 KB a second, where a write is instant. The
status line, the header lines and the ``> `` request lines are written as they are
there too (:func:`_print_line`): a header wrapped in two reads as two headers.

On a terminal, the control characters of a text body or a header value (ESC, the C1
controls...) are shown escaped (``\x1b``): sent as they are, they are commands to the
terminal (colours, cursor moves, a window title, an OSC 52 clipboard write), and a
server would drive the user's terminal. Redirected output keeps the text as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from http import HTTPStatus

import orjson
from rich.console import Console, ConsoleOptions
from rich.segment import Segment
from rich.syntax import Syntax
from rich.text import Text

from .._models import HttpRequest, HttpResponse
from .._redact import REDACTED, redact_url, secret_name

__all__ = ["print_request", "print_response", "reason_of", "terminal_safe"]

_TEXT_TYPES = ("text/", "json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "csv")
# C0 controls but TAB, LF and the ones rich drops itself (VT, FF, CR), DEL, C1 controls.
_TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def terminal_safe(console: Console, text: str) -> str:
    """``text`` as it may reach ``console``: control characters escaped on a terminal."""
    if not console.is_terminal:
        return text
    return _TERMINAL_CONTROLS.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


class _Verbatim:
    """Text written to the console as it is (no wrapping, cropping or tab expansion),
    ended by a newline unless it has one."""

    def __init__(self, text: str) -> None:
        self.text = text if text.endswith("\n") else f"{text}\n"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        yield Segment(self.text)


def _print_line(console: Console, line: Text) -> None:
    """One line of the head; off a terminal it is written as it is (one line, however
    long, tabs kept), as a body is."""
    if console.is_terminal:
        console.print(line)
    else:
        console.print(_Verbatim(line.plain), crop=False)


def _print_body(console: Console, text: str, *, json: bool = False) -> None:
    if not console.is_terminal:
        console.print(_Verbatim(text), crop=False)
    elif json:
        # Wrapped, never cropped: a long value is shown whole.
        syntax = Syntax(
            terminal_safe(console, text),
            "json",
            theme="ansi_dark",
            background_color="default",
            word_wrap=True,
        )
        console.print(syntax)
    else:
        console.print(Text(terminal_safe(console, text)))


def reason_of(response: HttpResponse) -> str:
    """The reason phrase sent, or the standard one for the status."""
    if response.reason:
        return response.reason
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return ""


def print_request(console: Console, request: HttpRequest) -> None:
    """``> GET url`` and ``> name: value`` lines (verbose mode).

    Credentials are not shown: the URL's userinfo (``user:password@``) and secret query
    values (``?token=``), and the values of credential headers (``Authorization``,
    ``Cookie``, ``X-Api-Key``...), are ``[REDACTED]``; the output is pasted into bug
    reports and CI logs.
    """
    _print_line(console, Text(f"> {request.method} {redact_url(request.url)}", style="bold"))
    for name, value in request.headers.multi_items():
        shown = REDACTED if secret_name(name) else value
        _print_line(console, Text.assemble("> ", (name, "cyan"), f": {shown}"))
    console.print(Text(">"))


def print_response(console: Console, response: HttpResponse) -> None:
    """Status line, headers, a blank line and the body."""
    status = f"{response.http_version} {response.status_code} {reason_of(response)}".rstrip()
    style = "bold green" if response.status_code < 400 else "bold red"
    _print_line(console, Text(status, style=style))
    for name, value in response.headers.multi_items():
        _print_line(console, Text.assemble((name, "cyan"), f": {terminal_safe(console, value)}"))
    body = response.content
    if not body:
        return
    console.print()
    ctype = response.headers.get("content-type", "").lower()
    if "json" in ctype:
        try:
            pretty = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
        except orjson.JSONDecodeError:
            pass
        else:
            _print_body(console, pretty, json=True)
            return
    if not ctype or any(kind in ctype for kind in _TEXT_TYPES):
        try:
            text = body.decode(response.encoding)
        except (UnicodeDecodeError, LookupError):
            text = None
        if text is not None:
            _print_body(console, text)
            return
    console.print(
        Text(f"<{len(body)} bytes of binary data ({ctype or 'no content type'})>", style="dim")
    )
