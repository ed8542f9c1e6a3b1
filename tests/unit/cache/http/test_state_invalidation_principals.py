"""State "invalidation" with several principals behind one private cache: every
principal's copy is voided, whatever happens in between (in-flight stores, a lost or
damaged guard record)."""

from __future__ import annotations

from flext_api import FlextResult, HttpRequest, HttpResponse
from flext_api.cache import CachePlugin
from flext_api.cache._http_spec import cache_key
from flext_api.cache._http_store import GUARD_TTL
from flext_api.testing import FakeClock

from ._support import URL, Origin, answer, fixed, get, http_date, new_plugin

A = [("Authorization", "Bearer a")]
B = [("Authorization", "Bearer b")]
CACHEABLE = [("Cache-Control", "max-age=60")]


async def test_a_post_by_one_principal_voids_the_others_copies() -> None:
    """A and B have the URL stored; A's POST makes B's next GET go to the origin."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, CACHEABLE)
    await get(plugin, origin, headers=A)
    await get(plugin, origin, headers=B)
    assert (await get(plugin, origin, headers=B)).value.from_cache
    await get(plugin, origin, headers=A, method="POST")
    assert not (await get(plugin, origin, headers=B)).value.from_cache
    assert not (await get(plugin, origin, headers=B, method="HEAD")).value.from_cache


def _racing_origin(plugin: CachePlugin, clock: FakeClock) -> Origin:
    """Answers B's GET with the old version, after A's POST went through the same cache."""

    async def a_posts() -> None:
        await get(plugin, fixed(clock), headers=A, method="POST")

    state = {"posted": False}

    def respond(request: HttpRequest) -> FlextResult[HttpResponse]:
        return answer(request, 200, [("Date", http_date(clock)), *CACHEABLE], b"old")

    class Racing(Origin):
        async def __call__(self, request: HttpRequest) -> FlextResult[HttpResponse]:
            if not state["posted"]:
                state["posted"] = True
                await a_posts()  # the origin changed after it read the old version
            return await super().__call__(request)

    return Racing(respond)


async def test_an_answer_read_before_an_invalidation_is_not_stored() -> None:
    """B's GET is in flight while A's POST invalidates the URL: B's (old) answer is not
    stored, so B's next GET goes to the origin (no guard existed before B's GET)."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    await get(plugin, _racing_origin(plugin, clock), headers=B)
    later = fixed(clock, CACHEABLE)
    assert not (await get(plugin, later, headers=B)).value.from_cache
    assert later.hits == 1


async def test_an_answer_read_before_an_invalidation_is_not_stored_next_to_others() -> None:
    """The same race while A's copy (and so the URL's guard) is stored already."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    await get(plugin, fixed(clock, CACHEABLE), headers=A)
    await get(plugin, _racing_origin(plugin, clock), headers=B)
    later = fixed(clock, CACHEABLE)
    assert not (await get(plugin, later, headers=B)).value.from_cache
    assert not (await get(plugin, later, headers=A)).value.from_cache


async def test_a_damaged_guard_makes_misses_then_heals() -> None:
    """A guard record that is not a token voids the principals' copies (a miss, logged
    by the plugin); the next store writes a fresh guard and hits follow."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, CACHEABLE)
    await get(plugin, origin, headers=A)
    await plugin.cache.set("http:" + cache_key("GET", URL) + " guard", b"not a token")
    assert not (await get(plugin, origin, headers=A)).value.from_cache
    assert (await get(plugin, origin, headers=A)).value.from_cache


async def test_a_copy_outliving_its_guard_is_a_miss_not_a_stale_hit() -> None:
    """Past GUARD_TTL the guard is gone: a copy still fresh by max-age goes to the origin."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    lasting = [("Cache-Control", f"max-age={int(GUARD_TTL * 2)}")]
    origin = fixed(clock, lasting)
    await get(plugin, origin, headers=A)
    clock.advance(GUARD_TTL + 1)
    assert not (await get(plugin, origin, headers=A)).value.from_cache
    assert (await get(plugin, origin, headers=A)).value.from_cache


async def test_a_shared_cache_keeps_no_guard() -> None:
    """shared=True has no per-principal keys: nothing but the URL's record is written."""
    clock = FakeClock()
    plugin = new_plugin(clock, shared=True)
    origin = fixed(clock, [("Cache-Control", "public, max-age=60")])
    await get(plugin, origin, headers=A)
    assert (await get(plugin, origin, headers=B)).value.from_cache
    assert (await plugin.cache.stats()).entries == 1
