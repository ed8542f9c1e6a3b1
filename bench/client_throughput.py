"""Client throughput against a local nginx, and the pipeline's own cost per request.

For each concurrency (1, 8, 64) it sends N GETs with: raw aiohttp configured like our
transport (no cookie jar, no total timeout, no proxy environment: the base of every
ratio), raw aiohttp at its defaults (labelled), raw httpx2, raw httpx, FlextApiClient
with no plugins, and FlextApiClient with its default pipeline; it prints the best req/s
of the interleaved rounds, the ratio to the equal-config aiohttp and each client's
spread (worst/best round). Every response's status and body are checked: a wrong one
fails the run. Then it measures the
pipeline's cost per request over MockTransport (no network). One JSON line per run is
appended to bench/results/client_throughput.jsonl.

Run: make bench   (or: .venv/bin/python bench/client_throughput.py [--requests N] [--rounds R]
[--loop both|asyncio|uvloop]). By default the whole table is printed twice: every client on
asyncio's event loop, then every client on uvloop (the ``speed`` extra), so each ratio
compares clients on the same loop; ``--loop asyncio`` or ``--loop uvloop`` runs one.
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

import aiohttp
import httpx
import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _nginx import Nginx

from flext_api import ClientConfig, HttpResponse, PoolConfig
from flext_api.client import FlextApiClient
from flext_api.transports import MockTransport

RESULTS = Path(__file__).resolve().parent / "results" / "client_throughput.jsonl"
POOL = PoolConfig(max_connections=100, max_keepalive=100)
BODY = b'{"ok":true}'


async def _drive(n: int, concurrency: int, one: Callable[[], Awaitable[None]]) -> float:
    """Run `one` n times with `concurrency` workers; return requests per second."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


async def raw_aiohttp(url: str, n: int, c: int, *, equal: bool) -> float:
    connector = aiohttp.TCPConnector(limit=100)
    options: dict[str, object] = (
        # What AiohttpTransport sets: no timer per request, no cookie jar, no proxy env.
        {
            "timeout": aiohttp.ClientTimeout(total=None),
            "cookie_jar": aiohttp.DummyCookieJar(),
            "trust_env": False,
        }
        if equal
        else {}
    )
    async with aiohttp.ClientSession(connector=connector, **options) as session:  # type: ignore[arg-type]

        async def one() -> None:
            async with session.get(url) as resp:
                body = await resp.read()
                if resp.status != 200 or body != BODY:
                    raise RuntimeError(f"aiohttp: status {resp.status}, body {body[:60]!r}")

        await _drive(100, c, one)
        return await _drive(n, c, one)


async def raw_httpx_like(module: object, url: str, n: int, c: int) -> float:
    limits = module.Limits(max_connections=100, max_keepalive_connections=100)  # type: ignore[attr-defined]
    async with module.AsyncClient(limits=limits) as client:  # type: ignore[attr-defined]

        async def one() -> None:
            resp = await client.get(url)
            if resp.status_code != 200 or resp.content != BODY:
                raise RuntimeError(f"{module}: status {resp.status_code}")

        await _drive(100, c, one)
        return await _drive(n, c, one)


async def flext(url: str, n: int, c: int, *, defaults: bool) -> float:
    config = ClientConfig(pool=POOL)
    async with FlextApiClient(config=config, default_plugins=defaults) as client:

        async def one() -> None:
            result = await client.get(url)
            if not result.is_success or result.value.content != BODY:
                raise RuntimeError(f"flext: {result}")

        await _drive(100, c, one)
        return await _drive(n, c, one)


async def pipeline_cost(n: int, *, defaults: bool) -> float:
    """Microseconds per request through the client over MockTransport (no I/O), best of 3."""
    ok = HttpResponse(200, content=b"{}")
    transport = MockTransport(lambda request: ok)
    async with FlextApiClient(
        "http://bench.local", transport=transport, default_plugins=defaults
    ) as client:
        for _ in range(1000):
            await client.get("/items")
        transport.requests.clear()
        best = float("inf")
        for _ in range(3):  # best of 3: a pause from elsewhere on the machine is not cost
            start = time.perf_counter()
            for i in range(n):
                await client.get("/items")
                if i % 10_000 == 0:
                    transport.requests.clear()
            best = min(best, (time.perf_counter() - start) / n * 1e6)
        return best


async def main(n: int, rounds: int, loop: str = "asyncio") -> None:
    rows: list[dict[str, object]] = []
    with Nginx() as nginx:
        url = nginx.url + "/"
        for c in (1, 8, 64):
            # Clients alternate within each round and each keeps its best round, so a
            # burst of load from elsewhere on the machine does not decide a ratio.
            runs: dict[str, list[float]] = {}
            for _ in range(rounds):
                figures = {
                    "aiohttp (equal config)": await raw_aiohttp(url, n, c, equal=True),
                    "aiohttp (defaults)": await raw_aiohttp(url, n, c, equal=False),
                    "httpx2": await raw_httpx_like(httpx2, url, n, c),
                    "httpx": await raw_httpx_like(httpx, url, n, c),
                    "flext (no plugins)": await flext(url, n, c, defaults=False),
                    "flext (default pipeline)": await flext(url, n, c, defaults=True),
                    **{name: await row(url, n, c) for name, row in PYREQWEST_ROWS.items()},
                }
                for name, rps in figures.items():
                    runs.setdefault(name, []).append(rps)
            base = max(runs["aiohttp (equal config)"])
            for name, figures_of in runs.items():
                rows.append(
                    {
                        "concurrency": c,
                        "client": name,
                        "req_s": round(max(figures_of), 1),
                        "ratio_to_aiohttp": round(max(figures_of) / base, 3),
                        "spread": round(min(figures_of) / max(figures_of), 3),
                    }
                )
    bare = await pipeline_cost(20_000, defaults=False)
    full = await pipeline_cost(20_000, defaults=True)

    print(
        f"\nclient throughput, {n} GETs per cell, best of {rounds} interleaved rounds, "
        f"local nginx (1 worker), {loop} event loop"
    )
    print(f"{'conc':>4}  {'client':<26} {'req/s':>10} {'x aiohttp (equal)':>18} {'spread':>7}")
    for row in rows:
        print(
            f"{row['concurrency']:>4}  {row['client']:<26} {row['req_s']:>10} "
            f"{row['ratio_to_aiohttp']:>18} {row['spread']:>7}"
        )
    pyreqwest_summary(rows)
    print("\npipeline over MockTransport (µs per request, no network):")
    print(f"  no plugins        {bare:8.1f}")
    print(f"  default pipeline  {full:8.1f}   (stages add {full - bare:.1f} µs)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "bench": "client_throughput",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "requests_per_cell": n,
        "rounds": rounds,
        "loop": loop,
        "rows": rows,
        "pipeline_us": {
            "no_plugins": round(bare, 2),
            "default": round(full, 2),
            "default_stages_added": round(full - bare, 2),
        },
    }
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


# -- the pyreqwest transport (extra 'pyreqwest') ------------------------------------------
# Raw pyreqwest configured as PyreqwestTransport configures it, and FlextApiClient on that
# transport ("flext/prq": no plugins, default pipeline), in the same interleaved rounds as the rows
# above. Every body is checked; a failed request or a wrong body is counted, and the run
# fails at the end if any was.
PYREQWEST_ERRORS: dict[str, int] = {}


def _pyreqwest_check(name: str, ok: bool) -> None:
    if not ok:
        PYREQWEST_ERRORS[name] = PYREQWEST_ERRORS.get(name, 0) + 1


async def raw_pyreqwest(url: str, n: int, c: int) -> float:
    from datetime import timedelta

    from pyreqwest.client import ClientBuilder

    timeout = ClientConfig().timeout
    assert timeout.connect is not None and timeout.read is not None
    builder = (
        ClientBuilder()
        .follow_redirects(False)
        .no_proxy()
        .http1_only()
        .pool_idle_timeout(timedelta(seconds=POOL.keepalive_expiry))
        .pool_max_idle_per_host(POOL.max_keepalive)
        .connect_timeout(timedelta(seconds=timeout.connect))
        .read_timeout(timedelta(seconds=timeout.read))
    )
    # pyreqwest's own in-flight cap stands for the transport's pool slots.
    async with builder.max_connections(POOL.max_connections).build() as client:

        async def one() -> None:
            try:
                resp = await client.get(url).build().send()
                body = (await resp.bytes()).to_bytes()
            except Exception:  # counted; the run fails at the end
                _pyreqwest_check("pyreqwest (raw)", False)
                return
            _pyreqwest_check("pyreqwest (raw)", resp.status == 200 and body == BODY)

        await _drive(100, c, one)
        return await _drive(n, c, one)


async def flext_pyreqwest(url: str, n: int, c: int, *, defaults: bool) -> float:
    name = f"flext/prq ({'pipeline' if defaults else 'no plugins'})"
    config = ClientConfig(pool=POOL, transport="pyreqwest")
    async with FlextApiClient(config=config, default_plugins=defaults) as client:

        async def one() -> None:
            result = await client.get(url)
            _pyreqwest_check(name, result.is_success and result.value.content == BODY)

        await _drive(100, c, one)
        return await _drive(n, c, one)


PYREQWEST_ROWS: dict[str, Callable[[str, int, int], Awaitable[float]]] = {
    "pyreqwest (raw)": raw_pyreqwest,
    "flext/prq (no plugins)": lambda u, n, c: flext_pyreqwest(u, n, c, defaults=False),
    "flext/prq (pipeline)": lambda u, n, c: flext_pyreqwest(u, n, c, defaults=True),
}


def pyreqwest_summary(rows: list[dict[str, object]]) -> None:
    """Ratios of the pyreqwest rows to raw pyreqwest; the errors counted (fails if any)."""
    print("\npyreqwest transport (x raw pyreqwest, same rounds):")
    for c in sorted({int(str(r["concurrency"])) for r in rows}):
        cell = {str(r["client"]): float(str(r["req_s"])) for r in rows if r["concurrency"] == c}
        raw = cell.get("pyreqwest (raw)")
        if not raw:
            continue
        for name in ("flext/prq (no plugins)", "flext/prq (pipeline)"):
            print(f"{c:>4}  {name:<26} {cell[name] / raw:6.3f}")
    print(f"errors counted: {PYREQWEST_ERRORS or 'none'}")
    if PYREQWEST_ERRORS:
        raise SystemExit(f"pyreqwest rows: failed or wrong responses {PYREQWEST_ERRORS}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loop", choices=("both", "asyncio", "uvloop"), default="both")
    args = parser.parse_args()
    if args.loop in ("both", "asyncio"):
        asyncio.run(main(args.requests, args.rounds))
    if args.loop in ("both", "uvloop"):
        import uvloop

        uvloop.run(main(args.requests, args.rounds, "uvloop"))
