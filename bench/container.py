"""Benchmark: FlextContainer next to svcs and dishka, resolving a 3-level graph.

Run from the repository root::

    .venv/bin/python bench/container.py            # 7 interleaved rounds of 10,000 resolves
    .venv/bin/python bench/container.py --quick    # 3 rounds of 2,000, for a smoke check

The graph: ``Service(repo: Repo, config: Config)``, ``Repo(config: Config)``, ``Config()``.

* **request** - per resolve, a new request scope (one HTTP request) in which ``Repo``
  and ``Service`` are built and ``Config`` is an app-wide singleton, then the scope is
  closed: ``async with container.scope()`` + ``resolve``; svcs ``async with
  svcs.Container(registry)`` + ``get``; dishka ``async with container()`` + ``await get``.
* **singleton** - every object app-wide and already built: the cost of a cached lookup
  (``resolve``; svcs ``Container.get`` on one container; dishka ``Container.get``).

Each round runs every contender once, in a rotating order (interleaved, so drift of the
machine hits all of them alike). The table shows the best time per resolve, the spread
of the rounds ((worst - best) / best) and the ratio to the fastest contender.
Prints a table and appends one JSON line to ``bench/results/container.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import svcs
from dishka import Provider, Scope, make_async_container, make_container

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from flext_api import FlextContainer
from flext_api.composition import Lifetime

RESULTS = Path(__file__).resolve().parent / "results" / "container.jsonl"


class Config:
    pass


class Repo:
    def __init__(self, config: Config) -> None:
        self.config = config


class Service:
    def __init__(self, repo: Repo, config: Config) -> None:
        self.repo, self.config = repo, config


Run = Callable[[int], Awaitable[float]]


# -- request scope -------------------------------------------------------------------------
def ours_request() -> Run:
    container = FlextContainer()
    container.register_factory(Config)
    container.register_factory(Repo, lifetime=Lifetime.REQUEST)
    container.register_factory(Service, lifetime=Lifetime.REQUEST)

    async def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            async with container.scope() as scope:
                scope.resolve(Service)
        return time.perf_counter() - start

    return run


def svcs_request() -> Run:
    registry = svcs.Registry()
    config = Config()
    registry.register_value(Config, config)
    registry.register_factory(Repo, lambda svcs_container: Repo(svcs_container.get(Config)))
    registry.register_factory(
        Service,
        lambda svcs_container: Service(*svcs_container.get(Repo, Config)),
    )

    async def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            async with svcs.Container(registry) as container:
                container.get(Service)
        return time.perf_counter() - start

    return run


def dishka_request() -> Run:
    provider = Provider()
    provider.provide(Config, scope=Scope.APP)
    provider.provide(Repo, scope=Scope.REQUEST)
    provider.provide(Service, scope=Scope.REQUEST)
    container = make_async_container(provider)

    async def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            async with container() as request:
                await request.get(Service)
        return time.perf_counter() - start

    return run


# -- cached singletons -----------------------------------------------------------------------
def ours_singleton() -> Run:
    container = FlextContainer()
    for klass in (Config, Repo, Service):
        container.register_factory(klass)
    resolve = container.resolve
    resolve(Service)

    async def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            resolve(Service)
        return time.perf_counter() - start

    return run


def svcs_singleton() -> Run:
    registry = svcs.Registry()
    registry.register_value(Config, Config())
    registry.register_factory(Repo, lambda svcs_container: Repo(svcs_container.get(Config)))
    registry.register_factory(
        Service, lambda svcs_container: Service(*svcs_container.get(Repo, Config))
    )
    get = svcs.Container(registry).get
    get(Service)

    async def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            get(Service)
        return time.perf_counter() - start

    return run


def dishka_singleton() -> Run:
    provider = Provider(scope=Scope.APP)
    provider.provide(Config)
    provider.provide(Repo)
    provider.provide(Service)
    get = make_container(provider).get
    get(Service)

    async def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            get(Service)
        return time.perf_counter() - start

    return run


SCENARIOS: dict[str, dict[str, Callable[[], Run]]] = {
    "request": {"flext": ours_request, "svcs": svcs_request, "dishka": dishka_request},
    "singleton": {"flext": ours_singleton, "svcs": svcs_singleton, "dishka": dishka_singleton},
}


async def measure(n: int, rounds: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for scenario, contenders in SCENARIOS.items():
        runs = {name: make() for name, make in contenders.items()}
        for run in runs.values():
            await run(min(n, 500))  # warm-up: plans, caches, code paths
        times: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                times[name].append(await runs[name](n) / n)
        fastest = min(min(t) for t in times.values())
        for name, samples in times.items():
            best = min(samples)
            rows.append(
                {
                    "scenario": scenario,
                    "contender": name,
                    "best_us": round(best * 1e6, 3),
                    "spread": round((max(samples) - best) / best, 3),
                    "vs_fastest": round(best / fastest, 2),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resolves", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="2,000 resolves x 3 rounds")
    parser.add_argument("--no-save", action="store_true", help="do not append to the results file")
    args = parser.parse_args()
    n, rounds = (2_000, 3) if args.quick else (args.resolves, args.rounds)
    rows = asyncio.run(measure(n, rounds))
    print(f"{n:,} resolves x {rounds} interleaved rounds (best per resolve)")
    print(f"{'scenario':<10} {'contender':<8} {'best µs':>9} {'spread':>7} {'vs fastest':>11}")
    for row in rows:
        print(
            f"{row['scenario']:<10} {row['contender']:<8} {row['best_us']:>9.3f} "
            f"{row['spread']:>7.1%} {row['vs_fastest']:>10.2f}x"
        )
    if not args.no_save:
        RESULTS.parent.mkdir(exist_ok=True)
        record = {
            "bench": "container",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": platform.python_version(),
            "resolves": n,
            "rounds": rounds,
            "rows": rows,
        }
        with RESULTS.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
