"""Discovery: the cost of a pick per balancer, and the client over service:// vs a base URL.

Part 1 - pick cost (µs per pick, best of ``--rounds``) of every balancer over 10 and
100 instances, alone and through ``ServiceRegistry.pick`` (health check of the set,
the pick counter and the ``FlextResult``). Ring hash picks with a key.

Part 2 - ``FlextApiClient`` with its default pipeline against a local nginx, once with
``base_url=nginx`` and once with ``base_url="service://bench"`` through a registry of
three instances (the same nginx on three ports: three hosts, so three breakers and
three keep-alive host pools, as with real instances), GETs at concurrency 1 and 64. Both
clients get the same pool: 100 connections in total and no per-host limit, so the
service:// client's three hosts share what the plain client's one host has. The two
clients alternate within each round, which of them goes first swaps every round, and
every response is checked; the ratio is service:// over the plain base URL (best of
``--rounds`` each), with the spread of the per-round ratios. A cell is ``--requests``
GETs (10,000 by default, about a second at concurrency 64): with 3,000 a cell lasted a
third of a second and one scheduler hiccup moved its rate by a fifth.

Prints tables and appends one JSON line to ``bench/results/discovery.jsonl``.

Run: make bench
    (or: .venv/bin/python bench/discovery.py [--picks N] [--requests N] [--rounds N])
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
from _nginx import PREAMBLE, Nginx, _free_port
from client_throughput import _drive

from flext_api import ClientConfig, PoolConfig
from flext_api.client import FlextApiClient
from flext_api.discovery import BALANCERS, ServiceInstance, ServiceRegistry

RESULTS = Path(__file__).resolve().parent / "results" / "discovery.jsonl"
# One pool size for both clients, with no per-host limit: equal total capacity.
POOL = PoolConfig(max_connections=100, max_keepalive=100)
# One nginx, three listening ports: the service's three instances are three hosts.
THREE_PORTS = (
    PREAMBLE
    + """    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{port2};
        listen 127.0.0.1:{port3};
        location / {{ default_type application/json; return 200 '{{"ok":true}}'; }}
    }}
}}
"""
)


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
        assert result.value.content == b'{"ok":true}'

    await _drive(100, c, one)
    return await _drive(n, c, one)


async def client_ratio(urls: list[str], n: int, rounds: int) -> list[dict[str, object]]:
    registry = ServiceRegistry()
    for k, url in enumerate(urls):
        inst = ServiceInstance(id=f"nginx-{k}", name="bench", url=url)
        (await registry.register("bench", inst)).unwrap()
    rows: list[dict[str, object]] = []
    config = ClientConfig(pool=POOL)

    async def plain(c: int) -> float:
        async with FlextApiClient(urls[0], config=config) as client:
            return await _client_rps(client, n, c)

    async def service(c: int) -> float:
        async with FlextApiClient("service://bench", config=config, registry=registry) as client:
            return await _client_rps(client, n, c)

    for c in (1, 64):
        best = {"base_url": 0.0, "service://": 0.0}
        ratios: list[float] = []
        for r in range(rounds):
            # Which client runs first swaps every round: neither always gets a warm start.
            if r % 2 == 0:
                base, svc = await plain(c), await service(c)
            else:
                svc, base = await service(c), await plain(c)
            best["base_url"] = max(best["base_url"], base)
            best["service://"] = max(best["service://"], svc)
            ratios.append(svc / base)
        rows.append(
            {
                "concurrency": c,
                "base_url_req_s": round(best["base_url"], 1),
                "service_req_s": round(best["service://"], 1),
                "ratio": round(best["service://"] / best["base_url"], 3),
                "round_ratios": [round(x, 3) for x in ratios],
            }
        )
    await registry.aclose()
    return rows


async def main(picks: int, n: int, rounds: int) -> None:
    picks_rows = await pick_costs(picks, rounds)
    ports = {"port2": _free_port(), "port3": _free_port()}
    with Nginx(THREE_PORTS, **ports) as nginx:
        urls = [nginx.url, *(f"http://127.0.0.1:{p}" for p in ports.values())]
        client_rows = await client_ratio(urls, n, rounds)
    print(f"\npick cost, µs per pick, best of {rounds} rounds of {picks} picks")
    print(f"{'n':>4}  {'balancer':<14} {'pick':>8} {'registry.pick':>14}")
    for row in picks_rows:
        print(
            f"{row['instances']:>4}  {row['balancer']:<14} {row['pick_us']:>8} "
            f"{row['registry_pick_us']:>14}"
        )
    print(
        f"\nclient, {n} GETs per cell, default pipeline, same pool (100 connections in "
        f"total, no per-host limit), best of {rounds} interleaved rounds"
    )
    print(f"{'conc':>4}  {'base_url req/s':>15} {'service:// req/s':>17} {'ratio':>7}  spread")
    for row in client_rows:
        spread = row["round_ratios"]
        assert isinstance(spread, list)
        print(
            f"{row['concurrency']:>4}  {row['base_url_req_s']:>15} {row['service_req_s']:>17} "
            f"{row['ratio']:>7}  {min(spread)}-{max(spread)}"
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
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.picks, args.requests, args.rounds))
