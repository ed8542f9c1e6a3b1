"""State "vary": variants selected by the request fields named in Vary are kept apart."""

from __future__ import annotations

from flext_api import HttpRequest
from flext_api.testing import FakeClock

from ._support import Origin, answer, get, http_date, new_plugin


def negotiating(clock: FakeClock) -> Origin:
    """Answers with the Accept it saw as the body, Vary: Accept, max-age=60."""

    def respond(request: HttpRequest):  # type: ignore[no-untyped-def]
        accept = request.headers.get("accept", "none").encode()
        headers = [("Date", http_date(clock)), ("Cache-Control", "max-age=60"), ("Vary", "Accept")]
        return answer(request, headers=headers, body=accept)

    return Origin(respond)


async def test_vary_accept_keeps_two_variants_apart() -> None:
    """JSON and XML requests each get their own stored variant."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = negotiating(clock)
    json_h, xml_h = [("Accept", "application/json")], [("Accept", "application/xml")]
    await get(plugin, origin, headers=json_h)
    await get(plugin, origin, headers=xml_h)
    json_r = await get(plugin, origin, headers=json_h)
    xml_r = await get(plugin, origin, headers=xml_h)
    assert origin.hits == 2
    assert json_r.value.content == b"application/json"
    assert xml_r.value.content == b"application/xml"
    assert json_r.value.from_cache and xml_r.value.from_cache


async def test_vary_matching_normalizes_whitespace() -> None:
    """Values that differ only in whitespace around commas select the same variant."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = negotiating(clock)
    await get(plugin, origin, headers=[("Accept", "a/b, c/d")])
    result = await get(plugin, origin, headers=[("Accept", "a/b,c/d")])
    assert result.value.from_cache


async def test_absent_field_is_its_own_variant() -> None:
    """A request without the varying field does not match a variant that had it."""
    clock = FakeClock()
    plugin = new_plugin(clock)
    origin = negotiating(clock)
    await get(plugin, origin, headers=[("Accept", "text/plain")])
    result = await get(plugin, origin)
    assert not result.value.from_cache
    assert (await get(plugin, origin)).value.content == b"none"


async def test_variant_count_is_bounded() -> None:
    """Past max_variants the oldest variant is dropped."""
    clock = FakeClock()
    plugin = new_plugin(clock, max_variants=2)
    origin = negotiating(clock)
    for kind in ("a/1", "a/2", "a/3"):
        await get(plugin, origin, headers=[("Accept", kind)])
        clock.advance(1)
    assert (await get(plugin, origin, headers=[("Accept", "a/3")])).value.from_cache
    assert not (await get(plugin, origin, headers=[("Accept", "a/1")])).value.from_cache
