"""State "invalidation": a successful unsafe request drops what is stored for its URL."""

from __future__ import annotations

from flext_api.testing import FakeClock

from ._support import URL, fixed, get, http_date, new_plugin


async def test_post_invalidates_the_stored_get_and_head() -> None:
    """After a 2xx POST to a URL, GET and HEAD of that URL go to the origin again."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    await get(plugin, origin)
    await get(plugin, origin, method="HEAD")
    await get(plugin, origin, method="POST")
    assert not (await get(plugin, origin)).value.from_cache
    assert not (await get(plugin, origin, method="HEAD")).value.from_cache
    assert origin.hits == 5


async def test_put_patch_delete_invalidate_too() -> None:
    """Every unsafe method with a non-error answer invalidates."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    for method in ("PUT", "PATCH", "DELETE"):
        await get(plugin, origin)
        await get(plugin, origin, method=method)
        assert not (await get(plugin, origin)).value.from_cache, method


async def test_location_and_content_location_on_same_origin_are_invalidated() -> None:
    """Location and Content-Location of the same origin are invalidated as well."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    cached = fixed(clock, [("Cache-Control", "max-age=60")])
    for path in ("/a", "/b", "/c"):
        await get(plugin, cached, url=f"https://api.test{path}")
    created = fixed(
        clock,
        [
            ("Location", "/a"),
            ("Content-Location", "https://api.test/b"),
            ("Date", http_date(clock)),
        ],
        status=201,
    )
    await get(plugin, created, url="https://api.test/collection", method="POST")
    results = [await get(plugin, cached, url=f"https://api.test{p}") for p in ("/a", "/b", "/c")]
    assert [r.value.from_cache for r in results] == [False, False, True]


async def test_other_origin_location_is_left_alone() -> None:
    """A Location on another origin is not invalidated (RFC 9111 §4.4)."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    cached = fixed(clock, [("Cache-Control", "max-age=60")])
    await get(plugin, cached, url="https://other.test/x")
    moved = fixed(clock, [("Location", "https://other.test/x")], status=201)
    await get(plugin, moved, method="POST")
    assert (await get(plugin, cached, url="https://other.test/x")).value.from_cache


async def test_error_answer_does_not_invalidate() -> None:
    """A POST that fails (4xx/5xx or no answer) leaves the stored GET in place."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    await get(plugin, origin)
    await get(plugin, fixed(clock, status=500), method="POST")
    await get(plugin, fixed(clock, status=404), method="DELETE")
    assert (await get(plugin, origin, url=URL)).value.from_cache


async def test_explicit_default_port_names_the_same_url() -> None:
    """https://host:443/x is https://host/x (RFC 9110 §4.2.3): a POST to one invalidates both."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    cached = fixed(clock, [("Cache-Control", "max-age=60")])
    await get(plugin, cached, url="https://api.test/a")
    await get(plugin, cached, url="http://api.test/b")
    await get(plugin, fixed(clock), url="https://API.test:443/a", method="POST")
    moved = fixed(clock, [("Location", "http://api.test:80/b")], status=201)
    await get(plugin, moved, url="http://api.test/collection", method="POST")
    assert not (await get(plugin, cached, url="https://api.test/a")).value.from_cache
    assert not (await get(plugin, cached, url="http://api.test/b")).value.from_cache
