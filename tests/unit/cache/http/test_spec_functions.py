"""The pure RFC 9111 helpers, called directly for the cases the plugin never reaches."""

from __future__ import annotations

import math

import pytest

from flext_api import Headers, HttpRequest, HttpResponse
from flext_api.cache import HttpCachePolicy
from flext_api.cache._http_spec import (
    current_age,
    freshness_lifetime,
    identified_by_304,
    invalidation_targets,
    make_stored,
    not_storable_reason,
    response_cache_control,
)
from flext_api.cache._http_store import StoredResponse

POLICY = HttpCachePolicy()


def stored(
    *headers: tuple[str, str], request_time: float = 100.0, response_time: float = 100.0
) -> StoredResponse:
    return StoredResponse(200, headers, b"", "https://x/", request_time, response_time)


def test_age_uses_the_age_header_and_response_delay() -> None:
    """current_age adds the Age header, the response delay and the time spent here."""
    record = stored(("Age", "30"), request_time=98.0, response_time=100.0)
    assert current_age(record, now=110.0) == 30 + 2 + 10


def test_apparent_age_from_date() -> None:
    """A Date earlier than the response time counts as age (apparent_age)."""
    record = stored(("Date", "Thu, 01 Jan 1970 00:01:00 GMT"), response_time=100.0)
    assert current_age(record, now=100.0) == 40.0


def test_invalid_age_header_makes_the_response_stale() -> None:
    """A non-numeric Age makes the age unknown: infinitely old, never fresh."""
    assert current_age(stored(("Age", "soon")), now=100.0) == math.inf


def test_invalid_expires_means_expired() -> None:
    """Expires: 0 (invalid) gives a lifetime of 0; no Date falls back to the response time."""
    assert freshness_lifetime(stored(("Expires", "0")), POLICY) == 0.0
    assert freshness_lifetime(stored(("Expires", "Thu, 01 Jan 1970 00:02:00 GMT")), POLICY) == 20.0


def test_nothing_to_go_on_means_no_freshness() -> None:
    """No max-age, Expires or Last-Modified: lifetime 0."""
    assert freshness_lifetime(stored(), POLICY) == 0.0


def test_only_get_and_head_are_storable() -> None:
    """not_storable_reason refuses other methods."""
    request = HttpRequest("POST", "https://x/")
    response = HttpResponse(200, request=request)
    assert not_storable_reason(request, response, policy=POLICY) == "method POST"


def test_hop_by_hop_and_connection_named_fields_are_not_stored() -> None:
    """Connection, Keep-Alive and fields Connection names are dropped before storing."""
    request = HttpRequest("GET", "https://x/")
    response = HttpResponse(
        200,
        headers=[
            ("Connection", "x-private"),
            ("Keep-Alive", "5"),
            ("X-Private", "1"),
            ("ETag", '"e"'),
        ],
        request=request,
    )
    record = make_stored(request, response, request_time=1.0, response_time=2.0)
    assert record.headers == (("ETag", '"e"'),)


def test_invalidation_targets_are_unique() -> None:
    """A Location equal to the request URL is listed once; errors and safe methods list none."""
    headers = Headers([("Location", "https://x/a"), ("Content-Location", "/a")])
    assert invalidation_targets("POST", "https://x/a", 201, headers) == ["https://x/a"]
    assert invalidation_targets("GET", "https://x/a", 200, headers) == []
    assert invalidation_targets("POST", "https://x/a", 500, headers) == []


def test_non_ascii_age_is_unknown_not_a_crash() -> None:
    """An Age of "²" (isdigit() but not an int) is an unknown age: infinitely old."""
    assert current_age(stored(("Age", "²")), now=100.0) == math.inf


def test_overflowing_age_is_clamped_to_2_31() -> None:
    """An Age too large for a float is taken as 2**31 (RFC 9111 §1.2.2), not an OverflowError."""
    assert current_age(stored(("Age", "9" * 400)), now=100.0) == 2**31


def test_overflowing_last_modified_gives_no_heuristic() -> None:
    """A Last-Modified year that overflows is ignored: no heuristic freshness, no crash."""
    bad = stored(("Last-Modified", "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"))
    assert freshness_lifetime(bad, POLICY) == 0.0


def test_surrogate_control_directives_by_device() -> None:
    """Directives targeted at this device apply (and win over untargeted ones); those
    targeted at another device are left out; with no device only untargeted ones apply."""
    policy = HttpCachePolicy(shared=True, targeted=("surrogate-control",), surrogate_device="flext")
    mine = Headers([("Surrogate-Control", "max-age=30;flext, max-age=5, no-store;other")])
    assert response_cache_control(mine, policy).max_age == 30
    assert not response_cache_control(mine, policy).no_store
    others = Headers([("Surrogate-Control", "no-store;other"), ("Cache-Control", "max-age=9")])
    assert response_cache_control(others, policy).max_age == 9  # falls back to Cache-Control
    anonymous = HttpCachePolicy(shared=True, targeted=("surrogate-control",))
    assert response_cache_control(mine, anonymous).max_age == 5


_LM = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(
    ("mine", "theirs", "identified"),
    [
        ([("ETag", '"a"')], [("ETag", '"a"')], True),
        ([("ETag", '"a"')], [("ETag", '"b"')], False),
        ([("ETag", 'W/"a"')], [("ETag", '"a"')], False),  # strong comparison
        ([("ETag", '"a"')], [("ETag", 'W/"a"')], True),  # weak comparison
        ([("ETag", 'W/"a"')], [("ETag", 'W/"b"')], False),
        ([("Last-Modified", _LM)], [("ETag", '"a"')], False),
        (
            [("ETag", '"a"'), ("Last-Modified", _LM)],
            [("ETag", '"a"'), ("Last-Modified", "x")],
            True,
        ),
        ([("Last-Modified", _LM)], [("Last-Modified", _LM)], True),
        ([("Last-Modified", _LM)], [("Last-Modified", "Wednesday, 21-Oct-15 07:28:00 GMT")], True),
        ([("Last-Modified", _LM)], [("Last-Modified", "Thu, 22 Oct 2015 07:28:00 GMT")], False),
        ([("ETag", '"a"')], [("Last-Modified", _LM)], False),
        ([("Last-Modified", "soon")], [("Last-Modified", "soon")], True),
        ([("ETag", '"a"')], [("Cache-Control", "max-age=5")], True),  # no validator at all
        ([("ETag", '"a"')], [("ETag", " ")], True),  # a blank ETag is none
    ],
)
def test_a_304_identifies_the_stored_response_by_its_validators(
    mine: list[tuple[str, str]], theirs: list[tuple[str, str]], identified: bool
) -> None:
    """identified_by_304: the 304's ETag decides (strong or weak comparison), else its
    Last-Modified (as a date), else it is about the one response asked about (§4.3.4)."""
    assert identified_by_304(stored(*mine), Headers(theirs)) is identified
