"""The dependency-free helpers shared with the client: redaction and request context."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from flext_api._context import (
    get_request_id,
    get_traceparent,
    propagation_headers,
    request_context,
)
from flext_api._redact import (
    DEFAULT_SENSITIVE_HEADERS,
    REDACTED,
    escape_control,
    redact_headers,
    redact_query,
    redact_url,
    scrub_userinfo,
    sensitive_names,
    strip_url,
)


def test_escape_control_examples() -> None:
    """CR, LF, TAB, ESC, DEL, C1 and line separators become visible escapes."""
    assert escape_control("plain text é") == "plain text é"
    assert escape_control("a\r\nb\tc\x1b[0m\x7f") == "a\\x0d\\x0ab\\x09c\\x1b[0m\\x7f"
    assert escape_control("x\u2028y\x85") == "x\\u2028y\\x85"
    assert escape_control("\U000e0001") == "\\U000e0001"


@given(st.text())
def test_escape_control_leaves_no_line_breaks(text: str) -> None:
    """Whatever the input, the output has no character that could end a log line."""
    escaped = escape_control(text)
    assert escaped.isprintable()
    assert len(escaped.splitlines()) <= 1


def test_redact_headers() -> None:
    """Sensitive headers are replaced, others escaped, repeats joined; bytes accepted."""
    result = redact_headers(
        [
            (b"Authorization", b"Bearer abc"),
            ("Set-Cookie", "a=1"),
            ("X-Trace", "one"),
            ("x-trace", "two\r\n"),
        ]
    )
    assert result == {
        "authorization": REDACTED,
        "set-cookie": REDACTED,
        "x-trace": "one, two\\x0d\\x0a",
    }


def test_sensitive_names_extends_defaults() -> None:
    """Extra names are added lower-cased."""
    names = sensitive_names(DEFAULT_SENSITIVE_HEADERS, ["X-Tenant-Secret"])
    assert "x-tenant-secret" in names and "authorization" in names
    assert redact_headers([("X-Tenant-Secret", "s")], names) == {"x-tenant-secret": REDACTED}


def test_redact_query() -> None:
    """Sensitive parameter values are replaced, encoded names recognized, rest kept."""
    assert redact_query("") == ""
    assert redact_query(b"a=1&api%5Fkey=k&TOKEN=t&flag&x=%0d") == (
        f"a=1&api%5Fkey={REDACTED}&TOKEN={REDACTED}&flag&x=%0d"
    )


def test_redact_url() -> None:
    """Userinfo (a lone token too) and sensitive parameters are removed from URLs."""
    # The fragment goes too: never sent, and OAuth's implicit flow puts tokens there.
    assert redact_url("https://u:pw@h.example/p?token=t&page=2#access_token=s") == (
        f"https://{REDACTED}@h.example/p?token={REDACTED}&page=2"
    )
    # A userinfo holding '/', '?' or '#' (base64 secrets, cloud keys) read as
    # host 'u', port 'ab' and a path by urlsplit: cut at its '@' all the same.
    for url in ("https://u:ab/cd@h.example/p", "https://u:ab?cd@h.example/p"):
        assert redact_url(url) == f"https://{REDACTED}@h.example/p"
        assert strip_url(url) == "https://h.example/p"
    # An '@' in the path or query of a URL without userinfo is no userinfo.
    assert strip_url("http://h.example:8080/users/a@b.com?e=c@d") == (
        "http://h.example:8080/users/a@b.com"
    )
    assert scrub_userinfo("sending to http://ak:sk@127.0.0.1:9/b failed") == (
        f"sending to http://{REDACTED}@127.0.0.1:9/b failed"
    )
    assert redact_url("https://ghp_secret@h.example/p") == f"https://{REDACTED}@h.example/p"
    assert redact_url("http://h/\x1b[2J") == "http://h/\\x1b[2J"
    # CR/LF are escaped before parsing (urlsplit would delete them) and stay visible.
    assert redact_url("http://h/a\r\nb?q=1") == "http://h/a\\x0d\\x0ab?q=1"
    # An unparsable URL keeps neither its userinfo nor its query.
    assert redact_url("http://u:pw@[::1/p?token=t") == "http://[::1/p"


def test_context_defaults_and_request_context() -> None:
    """Outside a request nothing is set; request_context sets and restores."""
    assert (get_request_id(), get_traceparent(), propagation_headers()) == (None, None, {})
    with request_context("rid", "00-" + "a" * 32 + "-" + "b" * 16 + "-01"):
        assert propagation_headers() == {
            "X-Request-ID": "rid",
            "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        }
        with request_context("inner"):
            assert propagation_headers() == {"X-Request-ID": "inner"}
        assert get_request_id() == "rid"
    assert get_request_id() is None


async def test_context_is_per_task() -> None:
    """Concurrent tasks each see their own request ID."""

    async def worker(rid: str) -> str | None:
        with request_context(rid):
            await asyncio.sleep(0)
            return get_request_id()

    assert list(await asyncio.gather(worker("a"), worker("b"))) == ["a", "b"]
