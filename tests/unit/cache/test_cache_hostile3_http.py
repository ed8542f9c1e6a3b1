"""Hostile HTTP cache inputs: escaped quotes in Cache-Control, URL spellings, HEAD after GET."""

from __future__ import annotations

import pytest

from flext_api import Headers
from flext_api.cache import CachePlugin
from flext_api.cache._http_directives import parse_cache_control
from flext_api.cache._http_spec import cache_key, invalidation_targets
from flext_api.testing import FakeClock
from tests.unit.cache.http._support import fixed, get


# -- Cache-Control quoted strings (RFC 9110 §5.6.4) ---------------------------------------
def test_an_escaped_quote_does_not_end_a_quoted_string() -> None:
    """``a="\\"", no-store``: the no-store after the quoted string is seen."""
    cc = parse_cache_control(['max-age=60, x="\\"", no-store'])
    assert (cc.max_age, cc.no_store) == (60, True)


def test_an_escaped_quote_does_not_hide_private_from_a_shared_cache() -> None:
    """The same trick with ``private``: ``ext="a\\"b", private``."""
    cc = parse_cache_control(['s-maxage=60, ext="a\\"b", private'])
    assert (cc.s_maxage, cc.private) == (60, True)


def test_a_comma_inside_an_escaped_quoted_string_still_splits_nothing() -> None:
    """``no-cache="a\\", max-age=1"``: one directive; the max-age outside it counts."""
    cc = parse_cache_control(['no-cache="x\\", max-age=1", max-age=60'])
    assert (cc.no_cache, cc.max_age) == (True, 60)


async def test_a_response_hiding_no_store_behind_an_escaped_quote_is_not_stored() -> None:
    """The plugin does not keep (and serve again) a response that said no-store."""
    clock = FakeClock()
    plugin = CachePlugin(clock=clock)
    origin = fixed(clock, [("Cache-Control", 'max-age=60, x="\\"", no-store')])
    await get(plugin, origin)
    second = await get(plugin, origin)
    assert second.value.cache_status == "miss"
    assert origin.hits == 2


# -- one key per equivalent URL (RFC 9110 §4.2.3, RFC 3986 §6.2.2) -------------------------
@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://api.test/~user/a", "https://api.test/%7euser/a"),
        ("https://api.test/~user/a", "https://api.test/%7Euser/a"),
        ("https://api.test/a-b.c_d", "https://api.test/%61%2D%62%2e%63%5F%64"),
        ("https://api.test/a?q=~x", "https://api.test/a?q=%7Ex"),
        ("https://api.test/a%2Fb", "https://api.test/a%2fb"),
        ("https://api.test/a%C3%A9", "https://api.test/a%c3%a9"),
        ("http://api.test/a", "http://api.test:080/a"),
        ("http://api.test/a", "http://api.test:/a"),
        ("https://api.test/a", "https://API.Test./a"),
        ("https://[::1]:8443/a", "https://[0:0::1]:8443/a"),
    ],
)
def test_equivalent_urls_have_one_key(one: str, other: str) -> None:
    """Spellings of one URL share a key (escapes in normal form, one host spelling)."""
    assert cache_key("GET", one) == cache_key("GET", other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://api.test/a/b", "https://api.test/a%2Fb"),
        ("https://api.test/a?x=1&y=2", "https://api.test/a?x=1%26y=2"),
        ("https://api.test/a", "https://api.test/A"),
        ("https://api.test:8443/a", "https://api.test:443/a"),
        ("https://u:P@api.test/a", "https://u:p@api.test/a"),
        ("https://u:p@api.test/a", "https://api.test/a"),
    ],
)
def test_different_urls_keep_different_keys(one: str, other: str) -> None:
    """Reserved escapes stay escaped, paths keep their case, and so do credentials."""
    assert cache_key("GET", one) != cache_key("GET", other)


def test_credentials_in_the_url_are_not_written_into_the_key() -> None:
    """A key (a Redis key name, a log field) holds a digest of the userinfo, not the secret."""
    key = cache_key("GET", "https://alice:S3cret@api.test/a")
    assert "S3cret" not in key
    assert "alice" not in key


async def test_a_response_stored_for_one_spelling_answers_the_other() -> None:
    """GET /%7euser then GET /~user: the second is a hit."""
    clock = FakeClock()
    plugin = CachePlugin(clock=clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    await get(plugin, origin, "https://api.test/%7euser")
    again = await get(plugin, origin, "https://API.test:443/~user")
    assert again.value.cache_status == "hit"
    assert origin.hits == 1


async def test_urls_whose_credentials_differ_only_in_case_share_nothing() -> None:
    """u:P@ and u:p@ are two principals: the second is not served the first's answer."""
    clock = FakeClock()
    plugin = CachePlugin(clock=clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    await get(plugin, origin, "https://u:P@api.test/me")
    other = await get(plugin, origin, "https://u:p@api.test/me")
    assert other.value.cache_status == "miss"
    assert origin.hits == 2


def test_a_location_on_the_same_host_with_credentials_is_same_origin() -> None:
    """Invalidation compares scheme, host and port; userinfo is not part of the origin."""
    targets = invalidation_targets(
        "POST",
        "https://u:p@api.test/items",
        201,
        Headers([("Location", "https://api.test/items/7")]),
    )
    assert targets == ["https://u:p@api.test/items", "https://api.test/items/7"]


# -- HEAD after GET (RFC 9111 §4.3.5) --------------------------------------------------------
async def test_a_head_showing_a_new_etag_drops_the_stored_get() -> None:
    """A 200 to HEAD with another ETag: the stored GET (old body) is not served again."""
    clock = FakeClock()
    plugin = CachePlugin(clock=clock)
    v1 = fixed(clock, [("Cache-Control", "max-age=600"), ("ETag", '"v1"')], body=b"one")
    await get(plugin, v1)
    v2 = fixed(clock, [("Cache-Control", "max-age=600"), ("ETag", '"v2"')], body=b"two")
    await get(plugin, v2, method="HEAD")
    after = await get(plugin, v2)
    assert (after.value.cache_status, after.value.content) == ("miss", b"two")


async def test_a_head_showing_a_new_last_modified_drops_the_stored_get() -> None:
    """Without ETags, a later Last-Modified on HEAD contradicts the stored GET."""
    clock = FakeClock()
    plugin = CachePlugin(clock=clock)
    old = "Mon, 01 Jan 2024 00:00:00 GMT"
    new = "Tue, 02 Jan 2024 00:00:00 GMT"
    await get(plugin, fixed(clock, [("Cache-Control", "max-age=600"), ("Last-Modified", old)]))
    origin = fixed(clock, [("Cache-Control", "max-age=600"), ("Last-Modified", new)])
    await get(plugin, origin, method="HEAD")
    after = await get(plugin, origin)
    assert after.value.cache_status == "miss"


async def test_a_head_agreeing_with_the_stored_get_leaves_it() -> None:
    """Same ETag, same Last-Modified (another spelling of the date): the GET is still a hit."""
    clock = FakeClock()
    plugin = CachePlugin(clock=clock)
    await get(
        plugin,
        fixed(
            clock,
            [
                ("Cache-Control", "max-age=600"),
                ("ETag", '"v1"'),
                ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ],
        ),
    )
    origin = fixed(
        clock,
        [
            ("Cache-Control", "max-age=600"),
            ("ETag", '"v1"'),
            ("Last-Modified", "Monday, 01-Jan-24 00:00:00 GMT"),
        ],
    )
    await get(plugin, origin, method="HEAD")
    after = await get(plugin, origin)
    assert after.value.cache_status == "hit"


async def test_a_head_for_another_variant_leaves_the_stored_get() -> None:
    """A HEAD whose request headers select another Vary variant contradicts nothing stored."""
    clock = FakeClock()
    plugin = CachePlugin(clock=clock)
    headers = [("Cache-Control", "max-age=600"), ("Vary", "Accept")]
    await get(plugin, fixed(clock, [*headers, ("ETag", '"json"')]), headers=[("Accept", "a/json")])
    origin = fixed(clock, [*headers, ("ETag", '"xml"')])
    await get(plugin, origin, headers=[("Accept", "a/xml")], method="HEAD")
    after = await get(plugin, origin, headers=[("Accept", "a/json")])
    assert after.value.cache_status == "hit"
