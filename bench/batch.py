"""Batch throughput against a local nginx, and the memory of a 1,000,000-line batch.

1. Throughput, same run, same nginx (one worker, keep-alive): N GETs at concurrency C
   sent by (a) ``asyncio.gather`` over raw aiohttp with a semaphore, the usual hand-made
   batch; (b) the same gather through ``FlextApiClient`` (what the client itself costs);
   (c) ``client.batch`` with no plugins; (d) ``client.batch`` with the default pipeline
   (deadline, retry, breaker). Each runs ``--rounds`` times, interleaved; the best round
   counts, for req/s and for the CPU time of this process per request (steadier than
   req/s on a shared machine). The target is (c) >= 0.85 x (a).
2. Memory: a fresh process runs the ``flext-api batch`` command itself (input file of
   ``--memory-lines`` lines, output file, journal) over an in-process transport that
   answers at once and keeps nothing (MockTransport records every request), so nothing but
   the batch machinery is measured, and reports its peak RSS (``VmHWM``). The input
   is generated in a temp dir and deleted afterwards.

Prints a table and appends one JSON line to bench/results/batch.jsonl.

Run: make bench   (or: .venv/bin/python bench/batch.py [--requests N] [--memory-lines N])
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _nginx import Nginx

from flext_api import ClientConfig, PoolConfig
from flext_api.client import FlextApiClient
from flext_api.client.batch._models import BatchRequest

RESULTS = Path(__file__).resolve().parent / "results" / "batch.jsonl"
ROOT = Path(__file__).resolve().parents[1]


async def raw_gather(url: str, n: int, concurrency: int) -> None:
    """asyncio.gather of n coroutines over one aiohttp session, a semaphore as the limit."""
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:
        semaphore = asyncio.Semaphore(concurrency)
        failures = 0

        async def one(i: int) -> None:
            nonlocal failures
            async with semaphore, session.get(f"{url}/item/{i}") as resp:
                await resp.read()
                failures += resp.status != 200

        await asyncio.gather(*(one(i) for i in range(n)))
        assert failures == 0


def _client(url: str, *, defaults: bool) -> FlextApiClient:
    config = ClientConfig(pool=PoolConfig(max_connections=100, max_keepalive=100))
    return FlextApiClient(url, config=config, default_plugins=defaults)


async def client_gather(url: str, n: int, concurrency: int) -> None:
    """The same gather + semaphore, through FlextApiClient (no plugins): the client's cost."""
    async with _client(url, defaults=False) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> bool:
            async with semaphore:
                return (await client.get(f"/item/{i}")).is_success

        assert all(await asyncio.gather(*(one(i) for i in range(n))))


async def flext_batch(url: str, n: int, concurrency: int, *, defaults: bool) -> None:
    """client.batch over a generator of BatchRequests."""
    async with _client(url, defaults=defaults) as client:
        requests = (BatchRequest(i, f"/item/{i}") for i in range(n))
        ok = 0
        async for result in client.batch(requests, concurrency=concurrency):
            ok += result.success
        assert ok == n, f"{n - ok} failures"


async def _measure(run: Awaitable[None], n: int) -> tuple[float, float]:
    """(requests per second, CPU microseconds of this process per request)."""
    wall, cpu = time.perf_counter(), time.process_time()
    await run
    return n / (time.perf_counter() - wall), (time.process_time() - cpu) / n * 1e6


RUNS: dict[str, Callable[[str, int, int], Awaitable[None]]] = {
    "asyncio.gather + raw aiohttp": raw_gather,
    "asyncio.gather + FlextApiClient": client_gather,
    "client.batch (no plugins)": lambda u, n, c: flext_batch(u, n, c, defaults=False),
    "client.batch (default pipeline)": lambda u, n, c: flext_batch(u, n, c, defaults=True),
}


async def throughput(n: int, concurrency: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in RUNS}
    with Nginx() as nginx:
        for run in RUNS.values():  # warm-up: connections, imports, nginx caches
            await run(nginx.url, 2000, concurrency)
        for _ in range(rounds):
            for name, run in RUNS.items():
                figures[name].append(await _measure(run(nginx.url, n, concurrency), n))
    return figures


# ru_maxrss survives exec on Linux (it would report the parent's size): read VmHWM.
_PEAK = r"""
def peak_rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")
"""

_CHILD = (
    _PEAK
    + r"""
import json, sys, time
from functools import partial
from flext_api import HttpResponse
from flext_api.cli import _batch_cmd
from flext_api.cli._app import app
from flext_api.client._client import FlextApiClient

BODY = b'{"ok": true, "data": "0123456789abcdef"}'


class AnswerTransport:
    # MockTransport keeps every request for inspection; this one keeps nothing.
    name = "bench"

    async def send(self, request, *, stream=False):
        return HttpResponse(200, content=BODY, headers={"Content-Type": "application/json"},
                            request=request)

    async def aclose(self):
        pass

    def stats(self):
        return {"transport": self.name, "in_use": 0, "idle": 0, "waiting": 0}


_batch_cmd.FlextApiClient = partial(FlextApiClient, transport=AnswerTransport())
source, output, journal = sys.argv[1:4]
start = time.perf_counter()
try:
    app(["batch", source, "-o", output, "--journal", journal, "--base-url", "http://bench.local"],
        prog_name="flext-api", standalone_mode=False)
except SystemExit:
    pass
elapsed = time.perf_counter() - start
print(json.dumps({"peak_rss_mb": peak_rss_mb(), "seconds": round(elapsed, 1)}))
"""
)


def memory(lines: int) -> dict[str, float | int]:
    """Peak RSS of `flext-api batch` over a `lines`-line input (MockTransport)."""
    with tempfile.TemporaryDirectory(prefix="flext-bench-batch-") as tmp:
        source = Path(tmp) / "in.jsonl"
        with source.open("w") as fh:
            for i in range(lines):
                fh.write(
                    f'{{"id": "request-{i:08d}", "path": "/items/{i}", '
                    f'"params": {{"page": {i % 100}}}}}\n'
                )
        output, journal = Path(tmp) / "out.jsonl", Path(tmp) / "run.journal"
        baseline = subprocess.run(
            [
                sys.executable,
                "-c",
                _PEAK + "import flext_api.cli._app, flext_api.client\nprint(peak_rss_mb())",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(source), str(output), str(journal)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        with output.open("rb") as fh:
            written = sum(1 for _ in fh)
    assert written == lines, f"{written} output lines for {lines} input lines"
    return {
        "lines": lines,
        "transport": "in-process answer (no network, no request recording)",
        "peak_rss_mb": figures["peak_rss_mb"],
        "import_rss_mb": float(baseline.stdout),
        "seconds": figures["seconds"],
        "output_lines": written,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--memory-lines", type=int, default=1_000_000, help="lines of the memory run (0 skips it)"
    )
    args = parser.parse_args()

    figures = asyncio.run(throughput(args.requests, args.concurrency, args.rounds))
    best = {name: max(rps for rps, _ in values) for name, values in figures.items()}
    cpu = {name: min(us for _, us in values) for name, values in figures.items()}
    base = "asyncio.gather + raw aiohttp"
    print(
        f"\nbatch throughput: {args.requests} GETs, concurrency {args.concurrency}, "
        f"local nginx (1 worker), best of {args.rounds} interleaved rounds, same run"
    )
    print(
        f"{'runner':<34} {'req/s':>8} {'x raw':>6} {'cpu us/req':>11} {'x raw':>6}   "
        "req/s of each round"
    )
    rows = []
    for name in RUNS:
        rounds = " ".join(f"{rps:.0f}" for rps, _ in figures[name])
        ratio, cpu_ratio = best[name] / best[base], cpu[base] / cpu[name]
        print(
            f"{name:<34} {best[name]:>8.0f} {ratio:>6.2f} {cpu[name]:>11.1f} "
            f"{cpu_ratio:>6.2f}   {rounds}"
        )
        rows.append(
            {
                "runner": name,
                "req_s": round(best[name], 1),
                "ratio_to_raw": round(ratio, 3),
                "cpu_us_per_request": round(cpu[name], 1),
                "cpu_ratio_to_raw": round(cpu_ratio, 3),
                "rounds_req_s": [round(rps, 1) for rps, _ in figures[name]],
            }
        )

    mem = memory(args.memory_lines) if args.memory_lines else None
    if mem is not None:
        print(
            f"\nmemory: flext-api batch over {mem['lines']:,} lines (in-process transport, "
            "journal on): "
            f"peak RSS {mem['peak_rss_mb']} MB (imports alone {mem['import_rss_mb']} MB), "
            f"{mem['seconds']} s"
        )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "bench": "batch",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "requests": args.requests,
        "concurrency": args.concurrency,
        "rows": rows,
        "memory": mem,
    }
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
