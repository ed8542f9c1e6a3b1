"""OWASP API8: CR/LF and control characters never split a header or a log line.

Raw bytes over a real socket, because HTTP clients refuse to send these requests.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from tests.security.apps import secure_app
from tests.server.live import LiveServer, raw_http, response_headers, wait_for_records

pytestmark = pytest.mark.integration

Live = Callable[[FastAPI], LiveServer]
UUID_HEX = re.compile(r"[0-9a-f]{32}")


def _request(target: bytes, *headers: bytes) -> bytes:
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: 127.0.0.1", *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _only_json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_crlf_in_request_id_does_not_inject_headers(live: Live) -> None:
    """'X-Request-ID: abc<CRLF>Set-Cookie: ...' yields no Set-Cookie and no split log."""
    stream = io.StringIO()
    server = live(secure_app(stream))
    raw = raw_http(server.port, _request(b"/hello", b"X-Request-ID: abc\r\nSet-Cookie: owned=1"))
    status, headers = response_headers(raw)
    names = [name for name, _ in headers]
    assert status == 200
    assert "set-cookie" not in names
    assert dict(headers)["x-request-id"] == "abc"
    records = wait_for_records(stream, 1)
    assert [r["request_id"] for r in records if r["event"] == "request"] == ["abc"]


@pytest.mark.parametrize(
    "value", [b"abc\rInjected: 1", b"abc\x1b[31mred", b"abc\x00nul", b"a" * 200, b"abc def"]
)
def test_hostile_request_id_is_replaced_or_refused(live: Live, value: bytes) -> None:
    """Bare CR, ESC, NUL, overlong or spaced IDs never come back verbatim."""
    stream = io.StringIO()
    server = live(secure_app(stream))
    raw = raw_http(server.port, _request(b"/hello", b"X-Request-ID: " + value))
    status, headers = response_headers(raw)
    if status == 400:  # the HTTP parser itself refused the request line or header
        assert b"Injected" not in raw.split(b"\r\n\r\n")[0]
        return
    echoed = dict(headers)["x-request-id"]
    assert UUID_HEX.fullmatch(echoed)
    assert "injected" not in [name for name, _ in headers]
    for record in _only_json_lines(stream):
        assert "\x1b" not in json.dumps(record, ensure_ascii=False)


def test_crlf_in_path_stays_one_log_line(live: Live) -> None:
    """A percent-encoded CRLF in the path is escaped in the log and not reflected as a header."""
    stream = io.StringIO()
    server = live(secure_app(stream))
    raw = raw_http(server.port, _request(b"/a%0d%0aSet-Cookie:%20owned=1"))
    status, headers = response_headers(raw)
    assert status == 404
    assert "set-cookie" not in [name for name, _ in headers]
    records = [r for r in wait_for_records(stream, 1) if r["event"] == "request"]
    assert len(stream.getvalue().splitlines()) == len(_only_json_lines(stream))
    assert records[0]["path"] == "/a\\x0d\\x0aSet-Cookie: owned=1"


def test_raw_control_bytes_in_path_are_refused_by_parser(live: Live) -> None:
    """A raw CR in the request target is rejected before the app; the log stays valid."""
    stream = io.StringIO()
    server = live(secure_app(stream))
    raw = raw_http(server.port, b"GET /a\rb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400")
    assert all(isinstance(record, dict) for record in _only_json_lines(stream))


def test_ansi_escape_in_user_agent_is_neutralised(live: Live) -> None:
    """ESC sequences in the User-Agent are logged escaped, on one line."""
    stream = io.StringIO()
    server = live(secure_app(stream))
    raw_http(server.port, _request(b"/hello", b"User-Agent: evil\x1b[2J\x1b[31m"))
    [record] = [r for r in wait_for_records(stream, 1) if r["event"] == "request"]
    assert record["user_agent"] == "evil\\x1b[2J\\x1b[31m"
    assert "\x1b" not in stream.getvalue()
