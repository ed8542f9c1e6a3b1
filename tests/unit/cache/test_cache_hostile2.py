"""Hostile inputs: a computation raising a BaseException, damaged HTTP cache records."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import orjson
import pytest

from flext_api.cache import AsyncSmartCache, CachePlugin
from flext_api.cache._codec import CorruptEntryError
from flext_api.cache._http_spec import cache_key
from flext_api.cache._http_store import StoredResponse, decode_variants, encode_variants
from flext_api.testing import FakeClock
from tests.unit.cache.http._support import URL, fixed, get


class Abort(BaseException):
    """What pytest.fail, trio.Cancelled or a framework's own abort look like: no Exception."""


async def test_a_base_exception_reaches_owner_and_waiters_and_the_key_recovers() -> None:
    """A BaseException from fn ends its flight: every caller gets it, the next call recomputes."""
    cache = AsyncSmartCache(clock=FakeClock())
    started, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def fn() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            started.set()
            await release.wait()
            raise Abort("stop")
        return 7

    owner = asyncio.ensure_future(cache.get_or_compute("k", fn))
    await started.wait()
    waiter = asyncio.ensure_future(cache.get_or_compute("k", fn))
    release.set()
    results = await asyncio.gather(owner, waiter, return_exceptions=True)

    assert [type(r) for r in results] == [Abort, Abort]
    assert (await cache.get_cache_stats())["coalesced"] == 1
    assert (await cache.get_cache_stats())["in_flight"] == 0
    assert await cache.get_or_compute("k", fn) == 7
    assert calls == 2


async def test_a_base_exception_is_not_cached_as_a_failure() -> None:
    """A BaseException is not a failure kept for retry_interval: nothing is stored for the key."""
    cache = AsyncSmartCache(clock=FakeClock())

    def fn() -> int:
        raise Abort("stop")

    with pytest.raises(Abort):
        await cache.get_or_compute("k", fn)
    stats = await cache.get_cache_stats()
    assert (stats["total_entries"], stats["error_entries"], stats["in_flight"]) == (0, 0, 0)


T = 1_700_000_000.0
GOOD: dict[str, Any] = {
    "s": 200,
    "h": [["Cache-Control", "max-age=60"]],
    "u": URL,
    "q": T,
    "p": T,
    "y": [["accept", "text/plain"]],
    "r": "OK",
    "v": "HTTP/1.1",
    "n": 0,
}
DAMAGE: list[dict[str, Any]] = [
    {"s": -1},
    {"s": 0},
    {"s": 99_999},
    {"s": 200.5},
    {"s": True},
    {"h": [["Bad Name", "x"]]},
    {"h": [["X-Split", "a\r\nSet-Cookie: evil=1"]]},
    {"h": [["X", 1]]},
    {"h": None},
    {"u": 5},
    {"r": None},
    {"q": "nan"},
    {"p": "inf"},
    {"p": "1700000000"},
    {"y": {"accept": "x"}},
    {"y": [["accept", 5]]},
    {"n": -1},
    {"n": 1.0},
]


def _record(meta: list[dict[str, Any]], bodies: bytes = b"") -> bytes:
    blob = orjson.dumps(meta)
    return struct.pack(">I", len(blob)) + blob + bodies


def test_an_intact_record_still_decodes() -> None:
    """The field checks accept what encode_variants writes (the reference for DAMAGE below)."""
    stored = StoredResponse(200, (("Cache-Control", "max-age=60"),), b"", URL, T, T)
    assert decode_variants(_record([GOOD])) == [
        StoredResponse(
            200,
            (("Cache-Control", "max-age=60"),),
            b"",
            URL,
            T,
            T,
            (("accept", "text/plain"),),
            "OK",
        )
    ]
    assert decode_variants(encode_variants([stored])) == [stored]


@pytest.mark.parametrize("damage", DAMAGE, ids=[repr(d) for d in DAMAGE])
def test_a_record_with_a_field_of_the_wrong_shape_is_corrupt(damage: dict[str, Any]) -> None:
    """JSON that parses but holds a bad status, header, time or length is damage, not a response."""
    with pytest.raises(CorruptEntryError):
        decode_variants(_record([GOOD | damage]))


@pytest.mark.parametrize(
    "damage",
    [
        {"s": -1},
        {"h": [["X-Split", "a\r\nSet-Cookie: evil=1"], ["Cache-Control", "max-age=60"]]},
        {"p": "nan", "q": "nan"},
    ],
    ids=["status", "crlf", "nan-time"],
)
async def test_a_damaged_but_parseable_record_is_a_miss_not_an_answer(
    damage: dict[str, Any],
) -> None:
    """The plugin asks the origin instead of serving a damaged record, and stores the new answer."""
    clock = FakeClock()
    plugin = CachePlugin(clock=clock)
    origin = fixed(clock, [("Cache-Control", "max-age=60")])
    key = "http:" + cache_key("GET", URL)
    meta = GOOD | {"q": clock.time(), "p": clock.time(), "y": []} | damage
    await plugin.cache.set(key, _record([meta]))

    result = await get(plugin, origin)

    assert result.is_success
    assert (result.value.status_code, result.value.cache_status) == (200, "miss")
    assert origin.hits == 1
    again = await get(plugin, origin)
    assert again.value.cache_status == "hit"
    assert origin.hits == 1
