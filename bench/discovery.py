"""Discovery: the cost of a pick per balancer, and the client over service:// vs a base URL.

Part 1 - pick cost (µs per pick, best of ``--rounds``) of every balancer over 10 and
100 instances, alone and through ``ServiceRegistry.pick`` (health check of the set,
the pick counter and the ``FlextResult``). Ring hash picks with a key.

Part 2 - ``FlextApiClient`` with its default pipeline against a local nginx, once with
``base_url=nginx`` and once with ``base_url="service://bench"`` through a registry of
three instances (all the same nginx), GETs at concurrency 1 and 64, the two clients
alternating within each round, best of ``--rounds``; the ratio is service:// over the
plain base URL measured in the same run.

Prints tables and appends one JSON line to ``bench/results/discovery.jsonl``.

Run: make bench   (or: .venv/bin/python bench/discovery.py [--picks N] [--requests N])
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _nginx import Nginx
from client_throughput import _drive

from flext_api import ClientConfig, PoolConfig
from flext_api.client import FlextApiClient
from flext_api.discovery import BALANCERS, ServiceInstance, ServiceRegistry

RESULTS = Path(__file__).resolve().parent / "results" / "discovery.jsonl"
POOL = PoolConfig(max_connections=100, max_keepalive=100)


def _instances(n: int) -> list[ServiceInstance]:
    return [
        ServiceInstance(id=f"i{k}", name="bench", url=f"http://10.0.{k // 250}.{k % 250}:80")
        for k in range(n)
    ]


def _time_us(fn: Callable[[], object], picks: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(picks):
            fn()
        best = min(best, (time.perf_counter() - start) / picks * 1e6)
    return best


async def pick_costs(picks: int, rounds: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for size in (10, 100):
        for kind, factory in BALANCERS.items():
            balancer = factory()
            balancer.update(_instances(size))
            key = "user-42" if kind == "ring_hash" else None
            alone = _time_us(functools.partial(balancer.pick, key), picks, rounds)
            registry = ServiceRegistry(balancer=kind)
            for inst in _instances(size):
                (await registry.register("bench", inst)).unwrap()
            via = _time_us(functools.partial(registry.pick, "bench", key=key), picks, rounds)
            rows.append(
                {"instances": size, "balancer": kind, "pick_us": round(alone, 3),
                 "registry_pick_us": round(via, 3)}
            )  # fmt: skip
    return rows


async def _client_rps(client: FlextApiClient, n: int, c: int) -> float:
    async def one() -> None:
        result = await client.get("/")
        assert result.is_success, result.error

    await _drive(100, c, one)
    return await _drive(n, c, one)


async def client_ratio(url: str, n: int, rounds: int) -> list[dict[str, object]]:
    registry = ServiceRegistry()
    for k in range(3):
        inst = ServiceInstance(id=f"nginx-{k}", name="bench", url=url)
        (await registry.register("bench", inst)).unwrap()
    rows: list[dict[str, object]] = []
    config = ClientConfig(pool=POOL)
    for c in (1, 64):
        best = {"base_url": 0.0, "service://": 0.0}
        for _ in range(rounds):
            async with FlextApiClient(url, config=config) as plain:
                best["base_url"] = max(best["base_url"], await _client_rps(plain, n, c))
            async with FlextApiClient("service://bench", config=config, registry=registry) as svc:
                best["service://"] = max(best["service://"], await _client_rps(svc, n, c))
        rows.append(
            {
                "concurrency": c,
                "base_url_req_s": round(best["base_url"], 1),
                "service_req_s": round(best["service://"], 1),
                "ratio": round(best["service://"] / best["base_url"], 3),
            }
        )
    await registry.aclose()
    return rows


async def main(picks: int, n: int, rounds: int) -> None:
    picks_rows = await pick_costs(picks, rounds)
    with Nginx() as nginx:
        client_rows = await client_ratio(nginx.url, n, rounds)
    print(f"\npick cost, µs per pick, best of {rounds} rounds of {picks} picks")
    print(f"{'n':>4}  {'balancer':<14} {'pick':>8} {'registry.pick':>14}")
    for row in picks_rows:
        print(
            f"{row['instances']:>4}  {row['balancer']:<14} {row['pick_us']:>8} "
            f"{row['registry_pick_us']:>14}"
        )
    print(f"\nclient, {n} GETs per cell, default pipeline, best of {rounds} interleaved rounds")
    print(f"{'conc':>4}  {'base_url req/s':>15} {'service:// req/s':>17} {'ratio':>7}")
    for row in client_rows:
        print(
            f"{row['concurrency']:>4}  {row['base_url_req_s']:>15} {row['service_req_s']:>17} "
            f"{row['ratio']:>7}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "bench": "discovery",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "picks": picks,
        "requests_per_cell": n,
        "rounds": rounds,
        "pick_cost": picks_rows,
        "client": client_rows,
    }
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--picks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.picks, args.requests, args.rounds))
