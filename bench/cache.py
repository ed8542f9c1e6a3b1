"""Benchmark: AsyncSmartCache next to cashews, aiocache and async-lru; eviction hit ratios on Zipf.

Run from the repository root::

    .venv/bin/python bench/cache.py            # full run (about a minute on 2 cores)
    .venv/bin/python bench/cache.py --quick    # smaller numbers, for a smoke check

Part 1, throughput (ops/s, best of ``--repeat`` interleaved rounds - every library once
per round - with the spread worst/best of each):

* **hit path** - awaiting an already cached key, over a ring of 100 warm keys. Each
  library is used through its get-or-compute API: ``AsyncSmartCache.get_or_compute``,
  cashews ``@cache(ttl=...)`` on ``mem://`` (protected, its default), aiocache
  ``@cached`` on ``SimpleMemoryCache``, async-lru ``@alru_cache``.
* **miss path** - every call a new key whose computation returns at once.

Part 2, hit ratio of the eviction policies on a Zipf workload (``--accesses`` accesses
over ``--keys`` keys, cache size 1 % of the keys, alpha 0.9 and 1.0). The trace drives
the policy classes the cache uses (``ClockPolicy`` = ``"lru"``, ``TinyLfuPolicy`` =
``"tinylfu"``) exactly as the cache does (a hit is ``node.refs += 1``), next to an exact
LRU (``OrderedDict.move_to_end``) as the reference. "top-k mass" is the ratio a cache
holding the k most popular keys would get (the static optimum under Zipf).

Prints a table and appends one JSON line to ``bench/results/cache.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import platform
import random
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from flext_api.cache import AsyncSmartCache
from flext_api.cache._policy import ClockPolicy, EvictionPolicy, PolicyNode, TinyLfuPolicy

RESULTS = Path(__file__).resolve().parent / "results" / "cache.jsonl"
WARM_KEYS = [f"key:{i}" for i in range(100)]


async def compute(key: str) -> str:
    return key


# -- contenders: each returns (hit_call, miss_call) taking a key ------------------------
def ours() -> tuple[str, Callable[[str], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    cache = AsyncSmartCache(ttl=3600)

    def call(key: str) -> Awaitable[Any]:
        return cache.get_or_compute(key, functools.partial(compute, key))

    return "flext AsyncSmartCache", call, cache.aclose


def cashews_mem() -> tuple[str, Callable[[str], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    from cashews import Cache

    cache = Cache()
    cache.setup("mem://")
    call = cache(ttl="1h")(compute)

    async def close() -> None:
        await cache.close()

    return "cashews 7.x mem:// @cache", call, close


def aiocache_mem() -> tuple[str, Callable[[str], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    from aiocache import SimpleMemoryCache, cached

    call = cached(ttl=3600, cache=SimpleMemoryCache)(compute)

    async def close() -> None:
        return None

    return "aiocache SimpleMemoryCache @cached", call, close


def async_lru() -> tuple[str, Callable[[str], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    from async_lru import alru_cache

    call = alru_cache(maxsize=None, ttl=3600)(compute)

    async def close() -> None:
        await call.cache_close()

    return "async-lru @alru_cache", call, close


CONTENDERS = [ours, cashews_mem, aiocache_mem, async_lru]


async def hit_rate_ops(call: Callable[[str], Awaitable[Any]], n: int) -> float:
    for key in WARM_KEYS:
        await call(key)
    ring = list(itertools.islice(itertools.cycle(WARM_KEYS), n))
    start = time.perf_counter()
    for key in ring:
        await call(key)
    return n / (time.perf_counter() - start)


async def miss_rate_ops(call: Callable[[str], Awaitable[Any]], n: int, run: int) -> float:
    keys = [f"miss:{run}:{i}" for i in range(n)]
    start = time.perf_counter()
    for key in keys:
        await call(key)
    return n / (time.perf_counter() - start)


async def throughput(hits: int, misses: int, repeat: int) -> list[dict[str, Any]]:
    """Round by round, every library once per round, so drift hits all of them alike."""
    hit_runs: dict[str, list[float]] = {}
    miss_runs: dict[str, list[float]] = {}
    for run in range(repeat):
        for make in CONTENDERS:
            name, call, close = make()
            hit_runs.setdefault(name, []).append(await hit_rate_ops(call, hits))
            miss_runs.setdefault(name, []).append(await miss_rate_ops(call, misses, run))
            await close()
    return [
        {
            "library": name,
            "hit_ops_s": round(max(hit_runs[name])),
            "miss_ops_s": round(max(miss_runs[name])),
            "hit_spread": round(min(hit_runs[name]) / max(hit_runs[name]), 3),
            "miss_spread": round(min(miss_runs[name]) / max(miss_runs[name]), 3),
        }
        for name in hit_runs
    ]


# -- hit ratio -----------------------------------------------------------------------------
def zipf_trace(keys: int, alpha: float, accesses: int, seed: int) -> list[int]:
    weights = [1.0 / (rank**alpha) for rank in range(1, keys + 1)]
    cumulative = list(itertools.accumulate(weights))
    rng = random.Random(seed)
    ids = list(range(keys))
    rng.shuffle(ids)  # popularity must not follow the key's numeric order
    return [ids[r] for r in rng.choices(range(keys), cum_weights=cumulative, k=accesses)]


def exact_lru_ratio(capacity: int, trace: list[int]) -> float:
    data: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for key in trace:
        if key in data:
            data.move_to_end(key)
            hits += 1
        else:
            data[key] = None
            if len(data) > capacity:
                data.popitem(last=False)
    return hits / len(trace)


def policy_ratio(policy: EvictionPolicy, trace: list[int]) -> float:
    resident: dict[int, PolicyNode] = {}
    hits = 0
    for key in trace:
        node = resident.get(key)
        if node is not None:
            node.refs += 1  # what AsyncSmartCache's hit path does
            hits += 1
            continue
        node = PolicyNode(key)
        resident[key] = node
        for victim in policy.add(node):
            del resident[victim.key]  # type: ignore[arg-type]  # int keys here
    return hits / len(trace)


def hit_ratios(keys: int, accesses: int, alphas: list[float]) -> list[dict[str, Any]]:
    capacity = max(1, keys // 100)
    rows = []
    for alpha in alphas:
        trace = zipf_trace(keys, alpha, accesses, seed=42)
        weights = sorted((1.0 / (r**alpha) for r in range(1, keys + 1)), reverse=True)
        rows.append(
            {
                "alpha": alpha,
                "keys": keys,
                "capacity": capacity,
                "accesses": accesses,
                "exact_lru": round(exact_lru_ratio(capacity, trace), 4),
                "flext_lru_clock": round(policy_ratio(ClockPolicy(capacity), trace), 4),
                "flext_tinylfu": round(policy_ratio(TinyLfuPolicy(capacity), trace), 4),
                "top_k_mass": round(sum(weights[:capacity]) / sum(weights), 4),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small numbers (smoke check)")
    parser.add_argument("--hits", type=int, default=200_000)
    parser.add_argument("--misses", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--accesses", type=int, default=1_000_000)
    parser.add_argument("--no-save", action="store_true", help="do not append to the results file")
    args = parser.parse_args()
    if args.quick:
        args.hits, args.misses, args.repeat, args.keys, args.accesses = (
            20_000,
            2_000,
            3,
            10_000,
            100_000,
        )

    rows = asyncio.run(throughput(args.hits, args.misses, args.repeat))
    ours_hit = rows[0]["hit_ops_s"]
    print(f"\nThroughput (ops/s, best of {args.repeat}; hits={args.hits}, misses={args.misses})")
    print(
        f"{'library':<38}{'hit path':>14}{'miss path':>14}{'hit vs ours':>14}"
        f"{'spread hit/miss':>18}"
    )
    for row in rows:
        ratio = row["hit_ops_s"] / ours_hit
        spread = f"{row['hit_spread']:.2f}/{row['miss_spread']:.2f}"
        print(
            f"{row['library']:<38}{row['hit_ops_s']:>14,}{row['miss_ops_s']:>14,}"
            f"{ratio:>13.2f}x{spread:>18}"
        )

    ratios = hit_ratios(args.keys, args.accesses, [0.9, 1.0])
    print(f"\nHit ratio, Zipf, {args.accesses:,} accesses, {args.keys:,} keys, cache = 1 % of keys")
    print(f"{'alpha':<8}{'exact LRU':>12}{'flext lru':>12}{'tinylfu':>12}{'top-k mass':>12}")
    for r in ratios:
        print(
            f"{r['alpha']:<8}{r['exact_lru']:>12.4f}{r['flext_lru_clock']:>12.4f}"
            f"{r['flext_tinylfu']:>12.4f}{r['top_k_mass']:>12.4f}"
        )

    record = {
        "bench": "cache",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "quick": args.quick,
        "throughput": rows,
        "hit_ratio": ratios,
    }
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        print(f"\nappended to {RESULTS}")


if __name__ == "__main__":
    main()
