"""State "no-store": responses the RFC forbids storing are forwarded and forgotten."""

from __future__ import annotations

from flext_api.testing import FakeClock

from ._support import fixed, get, new_plugin


async def test_response_no_store_is_never_stored() -> None:
    """Cache-Control: no-store on the response: every request reaches the origin."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "no-store, max-age=60")])
    for _ in range(3):
        assert not (await get(plugin, origin)).value.from_cache
    assert origin.hits == 3


async def test_request_no_store_is_not_stored() -> None:
    """Cache-Control: no-store on the request keeps its answer out of the cache."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    await get(plugin, origin, headers=[("Cache-Control", "no-store")])
    await get(plugin, origin)
    assert origin.hits == 2


async def test_private_is_stored_by_a_private_cache_only() -> None:
    """private responses are kept by the client cache and refused by a shared one."""
    clock = FakeClock()
    headers = [("Cache-Control", "private, max-age=60")]
    private, shared = new_plugin(clock), new_plugin(clock, shared=True)
    private_origin, shared_origin = fixed(clock, headers), fixed(clock, headers)
    for _ in range(2):
        await get(private, private_origin)
        await get(shared, shared_origin)
    assert private_origin.hits == 1
    assert shared_origin.hits == 2


async def test_shared_cache_and_authorization() -> None:
    """A shared cache stores authorized answers only if public, s-maxage or must-revalidate."""
    clock = FakeClock()
    auth = [("Authorization", "Bearer t")]
    plain = fixed(clock, [("Cache-Control", "max-age=60")])
    public = fixed(clock, [("Cache-Control", "public, max-age=60")])
    shared = new_plugin(clock, shared=True)
    for _ in range(2):
        await get(shared, plain, headers=auth)
        await get(shared, public, url="https://api.test/public", headers=auth)
    assert plain.hits == 2
    assert public.hits == 1


async def test_vary_star_is_never_stored() -> None:
    """Vary: * can never match a later request, so it is not stored."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60"), ("Vary", "*")])
    await get(plugin, origin)
    await get(plugin, origin)
    assert origin.hits == 2


async def test_must_understand_stores_only_statuses_the_cache_knows() -> None:
    """must-understand (RFC 9111 §5.2.2.3): a status the cache knows is stored despite the
    no-store beside it; an unknown one (599) is not stored at all; the request's own
    no-store still wins."""
    clock = FakeClock()
    directive = [("Cache-Control", "max-age=60, must-understand, no-store")]
    known, unknown = fixed(clock, directive), fixed(clock, directive, status=599)
    plugin = new_plugin(clock, shared=True)
    for _ in range(2):
        await get(plugin, known)
        await get(plugin, unknown, url="https://api.test/unknown")
    assert (known.hits, unknown.hits) == (1, 2)
    asked = fixed(clock, directive)
    await get(plugin, asked, url="https://api.test/asked", headers=[("Cache-Control", "no-store")])
    await get(plugin, asked, url="https://api.test/asked")
    assert asked.hits == 2
