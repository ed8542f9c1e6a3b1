"""Hostile inputs to redaction and plugin settings: nothing secret or unbounded gets out."""

from __future__ import annotations

import math
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from flext_api import HttpRequest, HttpResponse
from flext_api._errors import ErrorCode, FlextApiError
from flext_api._redact import redact_query, redact_url, scrub_userinfo, strip_url, userinfo_of
from flext_api.client import FlextApiClient
from flext_api.client.observability import LoggingPlugin, MetricsPlugin
from flext_api.transports._mock import MockTransport

SECRET = "sekrit-Hx7w-0003"


class _Recorder:
    """A structlog-like logger keeping ``(level, event, fields)`` of every call."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        def log(event: str, **fields: Any) -> None:
            self.records.append((level, event, fields))

        return log


# -- query strings with ';' separators ----------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "shown"),
    [
        (f"q=1;token={SECRET}", "q=1;token=[REDACTED]"),
        (f"token={SECRET};page=2&sig={SECRET}", "token=[REDACTED];page=2&sig=[REDACTED]"),
        ("a=1;;b=2&&c", "a=1;;b=2&&c"),
    ],
)
def test_a_semicolon_separates_query_parameters(query: str, shown: str) -> None:
    """``;`` separates parameters as ``&`` does; the rest is kept byte for byte."""
    assert redact_query(query) == shown


def test_a_url_with_a_semicolon_separated_token_hides_it() -> None:
    """``redact_url`` masks a sensitive parameter after a ``;``."""
    assert redact_url(f"https://h.example/p?q=1;access_token={SECRET}") == (
        "https://h.example/p?q=1;access_token=[REDACTED]"
    )


# -- userinfo holding '/' in free text ---------------------------------------------------------
@pytest.mark.parametrize(
    "password", ["wJalr/K7MDENG", "a/b/c+d", "p?w", "p#w", "ab/cd?ef#gh"]
)  # fmt: skip
def test_scrub_userinfo_hides_a_password_holding_url_delimiters(password: str) -> None:
    """An AWS-style secret key with ``/`` in an echoed endpoint is masked whole."""
    text = f"error sending to http://AKID:{password}@127.0.0.1:9000/bucket: refused"
    scrubbed = scrub_userinfo(text)
    assert password not in scrubbed
    assert "AKID" not in scrubbed
    assert scrubbed == "error sending to http://[REDACTED]@127.0.0.1:9000/bucket: refused"


def test_scrub_userinfo_keeps_an_at_sign_in_a_path() -> None:
    """An ``@`` in a path or query is no userinfo: the text is unchanged."""
    text = "GET http://h.example:8080/users/a@b.com?e=c@d failed; see https://[::1]/x"
    assert scrub_userinfo(text) == text


def test_scrub_userinfo_hides_every_url_of_the_text() -> None:
    """Two URLs in one message both lose their userinfo."""
    text = f"http://u:{SECRET}@a.example/ then redis://:{SECRET}/x@b.example:6379/0"
    scrubbed = scrub_userinfo(text)
    assert SECRET not in scrubbed
    assert scrubbed == "http://[REDACTED]@a.example/ then redis://[REDACTED]@b.example:6379/0"


# -- URLs without a scheme ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "stripped"),
    [
        (f"user:{SECRET}@redis.internal:6379/0", "redis.internal:6379/0"),
        (f":{SECRET}@localhost:6379", "localhost:6379"),
        (f"//user:{SECRET}@h.example/p?token={SECRET}", "//h.example/p"),
        (f"h.example/p#access_token={SECRET}", "h.example/p"),
        ("/users/a@b.com?e=1", "/users/a@b.com"),
        ("h.example:8080/p", "h.example:8080/p"),
    ],
)
def test_strip_url_without_a_scheme_keeps_no_secret(url: str, stripped: str) -> None:
    """A scheme-relative or scheme-less URL loses its userinfo, query and fragment."""
    assert strip_url(url) == stripped


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"user:{SECRET}@h.example/p?token={SECRET}", "[REDACTED]@h.example/p?token=[REDACTED]"),
        (f"//user:{SECRET}@h.example/p", "//[REDACTED]@h.example/p"),
        ("/users/a@b.com?page=2", "/users/a@b.com?page=2"),
    ],
)
def test_redact_url_without_a_scheme_hides_the_userinfo(url: str, shown: str) -> None:
    """``user:pw@host`` is not read as scheme ``user`` with the password in the path."""
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("url", "userinfo"),
    [
        ("https://ak:s/k@h.example/p", "ak:s/k"),
        ("https://h.example/users/a@b.com", None),
        ("//tok@h.example", "tok"),
        ("u:pw@h.example:1/p", "u:pw"),
        ("https://h.example", None),
    ],
)
def test_userinfo_of_finds_what_strip_url_removes(url: str, userinfo: str | None) -> None:
    """``userinfo_of`` returns the userinfo as written, None without one."""
    assert userinfo_of(url) == userinfo


# -- the logging plugin, end to end ---------------------------------------------------------
def _logged(records: list[tuple[str, str, dict[str, Any]]]) -> str:
    return repr(records)


async def test_an_error_echoing_a_decoded_password_is_scrubbed() -> None:
    """A percent-encoded password (``%2F``) echoed decoded by an error is masked too."""
    password = "wJalr/K7MDENG-0003"

    def handler(request: HttpRequest) -> HttpResponse:
        raise FlextApiError.from_code(ErrorCode.CONNECT_ERROR, f"auth failed with {password}")

    log = _Recorder()
    client = FlextApiClient(
        "http://AKID:wJalr%2FK7MDENG-0003@api.test",
        transport=MockTransport(handler),
        plugins=[LoggingPlugin(log)],
        default_plugins=False,
    )
    await client.get("/x")
    assert [event for _, event, _ in log.records] == ["http.client.attempt", "http.client.request"]
    assert "wJalr" not in _logged(log.records)


async def test_a_token_after_a_semicolon_never_reaches_the_log() -> None:
    """``?q=1;token=...`` is masked in the URL and, by value, in the error message."""

    def handler(request: HttpRequest) -> HttpResponse:
        raise FlextApiError.from_code(ErrorCode.CONNECT_ERROR, f"refused: {request.url}")

    log = _Recorder()
    client = FlextApiClient(
        "http://api.test",
        transport=MockTransport(handler),
        plugins=[LoggingPlugin(log)],
        default_plugins=False,
    )
    await client.get(f"/x?q=1;token={SECRET}")
    events = [event for _, event, _ in log.records]
    assert events == ["http.client.attempt", "http.client.request"]
    assert SECRET not in _logged(log.records)


# -- settings that would unbind cardinality or truncation -------------------------------------
@pytest.mark.parametrize("value", [math.nan, 1.5, True, "3", None])
def test_max_servers_must_be_an_int(value: Any) -> None:
    """NaN would never cap the server label; any non-int is refused with TypeError."""
    with pytest.raises(TypeError, match="max_servers must be an int"):
        MetricsPlugin(max_servers=value)


@pytest.mark.parametrize("value", [math.nan, 1.5, True, "3", None])
def test_max_body_must_be_an_int(value: Any) -> None:
    """NaN would never truncate a body; any non-int is refused with TypeError."""
    with pytest.raises(TypeError, match="max_body must be an int"):
        LoggingPlugin(max_body=value)


def test_a_registry_shared_by_two_metrics_plugins_gives_a_clear_error() -> None:
    """A second plugin on the same registry says what to do instead."""
    registry = CollectorRegistry()
    first = MetricsPlugin(registry)
    with pytest.raises(ValueError, match="share one MetricsPlugin between clients"):
        MetricsPlugin(registry)
    assert b"http_client_request_duration_seconds" in first.exposition()


def test_a_refused_registration_leaves_the_registry_as_it_was() -> None:
    """A registry already holding one series gets none of the plugin's others."""
    registry = CollectorRegistry()
    Counter("http_client_retries", "the application's own", registry=registry)
    before = sorted(metric.name for metric in registry.collect())
    with pytest.raises(ValueError, match="already holds"):
        MetricsPlugin(registry)
    assert sorted(metric.name for metric in registry.collect()) == before
