"""Benchmark: EventBus publish-to-handler rate next to blinker, with sync handlers.

Run from the repository root::

    .venv/bin/python bench/events.py            # 7 interleaved rounds of 20,000 events
    .venv/bin/python bench/events.py --quick    # 3 rounds of 5,000

Each event reaches 1 and then 3 sync handlers that append to a list. EventBus:
``await bus.publish(Event("user.created", data))`` (no middleware, local delivery, as
the seed's bus); blinker: ``signal.send(sender, data=data)`` - blinker is synchronous,
so its figure is the floor of what dispatching a Python call can cost. Rounds are
interleaved (rotating order); the table shows the best rate, the spread of the rounds
((best - worst) / best) and blinker's rate divided by ours.
Prints a table and appends one JSON line to ``bench/results/events.jsonl``.
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

import blinker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from flext_api import Event, EventBus

RESULTS = Path(__file__).resolve().parent / "results" / "events.jsonl"
DATA = {"user": {"id": 1, "name": "Ada"}}
Run = Callable[[int], Awaitable[float]]


def ours(handlers: int) -> Run:
    bus = EventBus()
    seen: list[object] = []
    for _ in range(handlers):
        bus.subscribe("user.created", seen.append)

    async def run(n: int) -> float:
        publish = bus.publish
        start = time.perf_counter()
        for _ in range(n):
            await publish(Event("user.created", DATA))
        elapsed = time.perf_counter() - start
        seen.clear()
        return elapsed

    return run


def with_blinker(handlers: int) -> Run:
    signal = blinker.Namespace().signal("user.created")
    seen: list[object] = []
    receivers = [lambda sender, **kw: seen.append(kw) for _ in range(handlers)]
    for receiver in receivers:
        signal.connect(receiver, weak=False)

    async def run(n: int) -> float:
        send = signal.send
        start = time.perf_counter()
        for _ in range(n):
            send("users", data=DATA)
        elapsed = time.perf_counter() - start
        seen.clear()
        return elapsed

    return run


async def measure(n: int, rounds: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for handlers in (1, 3):
        runs = {"flext EventBus": ours(handlers), "blinker": with_blinker(handlers)}
        for run in runs.values():
            await run(min(n, 1000))
        rates: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for r in range(rounds):
            for name in names[r % 2 :] + names[: r % 2]:
                rates[name].append(n / await runs[name](n))
        best = {name: max(samples) for name, samples in rates.items()}
        for name, samples in rates.items():
            rows.append(
                {
                    "handlers": handlers,
                    "contender": name,
                    "events_per_s": round(best[name]),
                    "spread": round((best[name] - min(samples)) / best[name], 3),
                    "blinker_over_this": round(best["blinker"] / best[name], 2),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="5,000 events x 3 rounds")
    parser.add_argument("--no-save", action="store_true", help="do not append to the results file")
    args = parser.parse_args()
    n, rounds = (5_000, 3) if args.quick else (args.events, args.rounds)
    rows = asyncio.run(measure(n, rounds))
    print(f"{n:,} events x {rounds} interleaved rounds, sync handlers (best rate)")
    print(f"{'handlers':>8} {'contender':<15} {'events/s':>10} {'spread':>7} {'blinker/x':>10}")
    for row in rows:
        print(
            f"{row['handlers']:>8} {row['contender']:<15} {row['events_per_s']:>10,} "
            f"{row['spread']:>7.1%} {row['blinker_over_this']:>9.2f}x"
        )
    if not args.no_save:
        RESULTS.parent.mkdir(exist_ok=True)
        record = {
            "bench": "events",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": platform.python_version(),
            "events": n,
            "rounds": rounds,
            "rows": rows,
        }
        with RESULTS.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
