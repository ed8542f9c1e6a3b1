"""State "stale -> revalidate": a stale response with a validator triggers a conditional request."""

from __future__ import annotations

from flext_api.testing import FakeClock

from ._support import Origin, answer, fixed, get, http_date, new_plugin


async def test_stale_with_etag_sends_if_none_match() -> None:
    """Past max-age, the request carries If-None-Match with the stored ETag."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=10"), ("ETag", '"v1"')])
    await get(plugin, origin)
    clock.advance(11)
    await get(plugin, origin)
    assert origin.hits == 2
    assert origin.requests[1].headers["if-none-match"] == '"v1"'
    assert "if-none-match" not in origin.requests[0].headers


async def test_stale_with_last_modified_sends_if_modified_since() -> None:
    """A stored Last-Modified becomes If-Modified-Since."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    modified = http_date(clock, -5)
    origin = fixed(clock, [("Cache-Control", "max-age=0"), ("Last-Modified", modified)])
    await get(plugin, origin)
    await get(plugin, origin)
    assert origin.requests[1].headers["if-modified-since"] == modified


async def test_no_cache_response_is_revalidated_every_time() -> None:
    """A response marked no-cache is stored but never used without revalidation."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "no-cache, max-age=600"), ("ETag", '"v"')])
    await get(plugin, origin)
    await get(plugin, origin)
    assert origin.hits == 2
    assert origin.requests[1].headers["if-none-match"] == '"v"'


async def test_request_no_cache_forces_revalidation() -> None:
    """Cache-Control: no-cache (or Pragma: no-cache) on the request revalidates a fresh response."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=600"), ("ETag", '"v"')])
    await get(plugin, origin)
    await get(plugin, origin, headers=[("Cache-Control", "no-cache")])
    await get(plugin, origin, headers=[("Pragma", "no-cache")])
    assert origin.hits == 3
    assert all(r.headers.get("if-none-match") == '"v"' for r in origin.requests[1:])


async def test_stale_without_validator_is_a_plain_request() -> None:
    """A stale response without ETag or Last-Modified is not used; the request goes as is."""
    clock = FakeClock()
    plugin = new_plugin(clock, stale_if_error=60)  # kept for stale-if-error only
    origin = fixed(clock, [("Cache-Control", "max-age=1")])
    await get(plugin, origin)
    clock.advance(2)
    result = await get(plugin, origin)
    assert origin.hits == 2
    assert "if-none-match" not in origin.requests[1].headers
    assert not result.value.from_cache


async def test_stale_while_revalidate_serves_stale_and_refreshes_in_background() -> None:
    """Inside stale-while-revalidate the stale body answers at once and one refresh runs."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    bodies = iter([b"old", b"new"])
    origin = Origin(
        lambda req: answer(
            req,
            headers=[
                ("Date", http_date(clock)),
                ("Cache-Control", "max-age=10, stale-while-revalidate=30"),
            ],
            body=next(bodies),
        )
    )
    await get(plugin, origin)
    clock.advance(15)
    stale = await get(plugin, origin)
    again = await get(plugin, origin)  # the refresh is already running: no second one
    assert stale.value.cache_status == "stale"
    assert stale.value.content == b"old"
    assert again.value.content == b"old"
    await plugin.drain()
    assert origin.hits == 2
    fresh = await get(plugin, origin)
    assert fresh.value.cache_status == "hit"
    assert fresh.value.content == b"new"


async def test_plugin_default_stale_while_revalidate_window() -> None:
    """stale_while_revalidate= on the plugin applies when the response does not set it."""
    clock = FakeClock()
    plugin = new_plugin(clock, stale_while_revalidate=30)
    origin = fixed(clock, [("Cache-Control", "max-age=10"), ("ETag", '"e"')])
    await get(plugin, origin)
    clock.advance(15)
    assert (await get(plugin, origin)).value.cache_status == "stale"
    await plugin.drain()
    assert origin.requests[1].headers["if-none-match"] == '"e"'


async def test_must_revalidate_disables_stale_while_revalidate() -> None:
    """must-revalidate forbids serving stale: the request waits for revalidation."""
    clock = FakeClock()
    plugin = new_plugin(clock, stale_while_revalidate=30)
    origin = fixed(clock, [("Cache-Control", "max-age=10, must-revalidate"), ("ETag", '"e"')])
    await get(plugin, origin)
    clock.advance(15)
    result = await get(plugin, origin)
    assert result.value.cache_status == "miss"  # revalidated in the foreground: a new 200
    assert origin.hits == 2


async def test_request_max_stale_accepts_a_stale_response() -> None:
    """max-stale=N on the request lets a response up to N seconds stale answer."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=10"), ("ETag", '"kept"')])
    await get(plugin, origin)
    clock.advance(15)
    result = await get(plugin, origin, headers=[("Cache-Control", "max-stale=10")])
    assert result.value.cache_status == "stale"
    bare = await get(plugin, origin, headers=[("Cache-Control", "max-stale")])
    assert bare.value.cache_status == "stale"
    assert origin.hits == 1
