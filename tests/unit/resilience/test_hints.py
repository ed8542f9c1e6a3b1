"""Parsing of server back-off hints: Retry-After and the RateLimit header family."""

from __future__ import annotations

import pytest

from flext_api import Headers
from flext_api.resilience import parse_retry_after, rate_limit_remaining, server_delay_hint

# 2023-11-14T22:13:20Z: the FakeClock's default wall time.
NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), ("0", 0.0), ("1.5", 1.5), (" 7 ", 7.0), ("5, 10", 5.0)],
)
def test_retry_after_delay_seconds(value: str, expected: float) -> None:
    """delay-seconds (and a repeated field's first value) parse to seconds."""
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        "Tue, 14 Nov 2023 22:14:20 GMT",  # IMF-fixdate
        "Tuesday, 14-Nov-23 22:14:20 GMT",  # obsolete RFC 850 form
        "Tue Nov 14 22:14:20 2023",  # asctime, no zone: GMT by definition
    ],
)
def test_retry_after_http_date_forms(value: str) -> None:
    """Every HTTP-date form of RFC 9110 gives the seconds until that instant."""
    assert parse_retry_after(value, NOW) == pytest.approx(60.0)


def test_retry_after_date_in_the_past_means_now() -> None:
    """A date already gone asks for no wait at all."""
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", NOW) == 0.0


@pytest.mark.parametrize(
    "value",
    [
        "", "soon", "-5", "inf", "nan", "1e999", "Mon, 99 Foo",
        # A year or an offset no datetime holds raised OverflowError (a PLUGIN_ERROR).
        "Thu, 01 Jan 99999999999999999999 00:00:00 GMT",
        "Thu, 01 Jan 2099 00:00:00 +9999999999999999999",
    ],
)  # fmt: skip
def test_retry_after_malformed_is_ignored(value: str) -> None:
    """A value that is neither delay-seconds nor an HTTP-date is None, not an error."""
    assert parse_retry_after(value, NOW) is None


def test_hint_prefers_retry_after() -> None:
    """Retry-After wins over a rate-limit reset."""
    headers = Headers({"Retry-After": "3", "RateLimit-Reset": "30"})
    assert server_delay_hint(429, headers, NOW) == 3.0


def test_hint_uses_ratelimit_reset_on_429() -> None:
    """A 429 without Retry-After falls back to RateLimit-Reset (delta-seconds)."""
    assert server_delay_hint(429, Headers({"RateLimit-Reset": "12"}), NOW) == 12.0


def test_hint_skips_malformed_retry_after_for_the_reset() -> None:
    """A broken Retry-After does not hide a usable reset on a 429."""
    headers = Headers({"Retry-After": "later", "RateLimit-Reset": "4"})
    assert server_delay_hint(429, headers, NOW) == 4.0


def test_hint_ignores_reset_when_not_throttled() -> None:
    """A 503 with quota left gives no hint from RateLimit-Reset."""
    headers = Headers({"RateLimit-Reset": "12", "RateLimit-Remaining": "40"})
    assert server_delay_hint(503, headers, NOW) is None


def test_hint_uses_reset_when_quota_is_exhausted() -> None:
    """RateLimit-Remaining: 0 makes the reset a hint whatever the status."""
    headers = Headers({"RateLimit-Reset": "9", "RateLimit-Remaining": "0"})
    assert server_delay_hint(503, headers, NOW) == 9.0


def test_hint_reads_structured_ratelimit_field() -> None:
    """The draft-08 ``RateLimit: "p";r=0;t=10`` field gives remaining and reset."""
    headers = Headers({"RateLimit": '"default";r=0;flag;t=10, "burst";r=5;t=1'})
    assert rate_limit_remaining(headers) == 0
    assert server_delay_hint(200, headers, NOW) == 10.0


def test_hint_structured_field_without_reset() -> None:
    """A structured field without ``t`` gives no delay."""
    assert server_delay_hint(429, Headers({"RateLimit": '"default";r=0'}), NOW) is None


def test_x_ratelimit_reset_epoch_and_delta() -> None:
    """X-RateLimit-Reset above 10^9 is an epoch timestamp, below it delta-seconds."""
    epoch = Headers({"X-RateLimit-Reset": str(int(NOW) + 45)})
    delta = Headers({"X-RateLimit-Reset": "45"})
    past = Headers({"X-RateLimit-Reset": str(int(NOW) - 45)})
    assert server_delay_hint(429, epoch, NOW) == 45.0
    assert server_delay_hint(429, delta, NOW) == 45.0
    assert server_delay_hint(429, past, NOW) == 0.0


def test_no_hint_at_all() -> None:
    """A throttled response with no hint headers gives None."""
    assert server_delay_hint(429, Headers(), NOW) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"RateLimit-Remaining": "3"}, 3),
        ({"X-RateLimit-Remaining": "0"}, 0),
        ({"RateLimit-Remaining": "many"}, None),
        ({}, None),
    ],
)
def test_rate_limit_remaining(headers: dict[str, str], expected: int | None) -> None:
    """Remaining quota is read from the standard or the X- field; junk is None."""
    assert rate_limit_remaining(Headers(headers)) == expected


@pytest.mark.parametrize("value", ["\u0661\u0662", "1_0", "+5", "0x10", "12abc", "1.", ".5"])
def test_retry_after_needs_ascii_delay_seconds(value: str) -> None:
    """Only ASCII digits make a delay: Unicode digits, underscores and signs are garbage."""
    assert parse_retry_after(value, 0.0) is None


@pytest.mark.parametrize("value", ["\u0661\u0662", "1_0", "+5"])
def test_reset_and_remaining_need_ascii_digits(value: str) -> None:
    """RateLimit-Reset and -Remaining in Unicode digits or with underscores are ignored."""
    assert server_delay_hint(429, {"ratelimit-reset": value}, 0.0) is None
    assert rate_limit_remaining({"ratelimit-remaining": value}) is None
