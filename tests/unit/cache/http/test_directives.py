"""Cache-Control, HTTP-date and Vary parsing."""

from __future__ import annotations

import math

from flext_api.cache._http_directives import (
    CacheControl,
    normalize_field,
    parse_cache_control,
    parse_http_date,
    parse_vary,
)


def test_flags_and_deltas() -> None:
    """Flags and delta-seconds directives are read case-insensitively across field lines."""
    cc = parse_cache_control(["Public, MAX-AGE=60", "s-maxage=120, must-revalidate"])
    assert cc == CacheControl(max_age=60, s_maxage=120, public=True, must_revalidate=True)


def test_quoted_arguments_with_commas() -> None:
    """A quoted argument may hold commas (no-cache="a, b" is one directive)."""
    cc = parse_cache_control(['no-cache="Set-Cookie, X-Foo", max-age=5'])
    assert cc.no_cache is True
    assert cc.max_age == 5


def test_first_occurrence_wins() -> None:
    """A repeated directive keeps its first value."""
    assert parse_cache_control(["max-age=5, max-age=50"]).max_age == 5


def test_invalid_max_age_means_stale() -> None:
    """A non-integer max-age counts as 0 (stale), as RFC 9111 §4.2.1 recommends."""
    assert parse_cache_control(["max-age=soon"]).max_age == 0
    assert parse_cache_control(["max-age"]).max_age == 0


def test_huge_delta_is_clamped() -> None:
    """delta-seconds above 2**31 become 2**31."""
    assert parse_cache_control(["max-age=99999999999999"]).max_age == 2**31


def test_request_directives() -> None:
    """max-stale (bare and valued), min-fresh, only-if-cached, stale-* extensions."""
    cc = parse_cache_control(
        ["max-stale, min-fresh=3, only-if-cached, stale-if-error=9, stale-while-revalidate=7"]
    )
    assert cc.max_stale == math.inf
    assert (cc.min_fresh, cc.only_if_cached, cc.stale_if_error, cc.stale_while_revalidate) == (
        3,
        True,
        9,
        7,
    )
    assert parse_cache_control(["max-stale=4"]).max_stale == 4.0


def test_invalid_optional_values_are_ignored() -> None:
    """Invalid stale-if-error or max-stale values are dropped; unknown directives too."""
    cc = parse_cache_control(["stale-if-error=x, max-stale=y, foo=bar, , ="])
    assert cc == CacheControl()


def test_http_dates() -> None:
    """IMF-fixdate, the obsolete forms and a -0000 zone parse; garbage is None."""
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777.0
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777.0
    assert parse_http_date("Sun Nov  6 08:49:37 1994") == 784111777.0
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 -0000") == 784111777.0
    assert parse_http_date("0") is None
    assert parse_http_date("") is None
    assert parse_http_date(None) is None


def test_vary_names() -> None:
    """Vary names are lower-cased, de-duplicated and kept in order."""
    assert parse_vary(["Accept, accept-encoding", "ACCEPT", " "]) == ("accept", "accept-encoding")


def test_normalize_field() -> None:
    """Field values compare without the whitespace around commas; absent is None."""
    assert normalize_field(["a, b", "c"]) == "a,b,c"
    assert normalize_field([]) is None


def test_non_ascii_digits_are_not_delta_seconds() -> None:
    """Only ASCII digits count: "²" and full-width digits (U+FF11) are invalid, never a crash."""
    cc = parse_cache_control(["max-age=²", "stale-while-revalidate=²", "min-fresh=\uff11\uff12"])
    assert cc.max_age == 0  # invalid freshness: stale
    assert cc.stale_while_revalidate is None
    assert cc.min_fresh is None
    assert parse_cache_control(["s-maxage=\uff11\uff12"]).s_maxage == 0


def test_date_with_overflowing_year_is_invalid() -> None:
    """A year too large for the platform parses as an invalid date, not an OverflowError."""
    assert parse_http_date("Mon, 01 Jan 99999999999999999999 00:00:00 GMT") is None
