"""Protocol clients against the libraries they are measured against, same run.

One upstream process (aiohttp: WebSocket echo, an SSE stream, strawberry GraphQL) on
127.0.0.1; each client runs ``--rounds`` times, interleaved, and the best round counts:

1. WebSocket: ``--messages`` text messages sent and echoed on one connection, by raw
   aiohttp, ``websockets`` and ``FlextApiClient.websocket`` (target: >= 0.9 x the faster).
2. SSE: ``--events`` events read from one stream by ``httpx-sse`` (over httpx) and by
   ``FlextApiClient.sse`` (target: >= 1 x).
3. GraphQL: ``--queries`` queries at concurrency ``--concurrency`` by ``gql`` with its
   aiohttp transport and by ``GraphQLClient`` (default pipeline).

Prints a table and appends one JSON line to bench/results/protocols.jsonl.

Run: make bench   (or: .venv/bin/python bench/protocols.py [--rounds N])
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import websockets
from gql import Client, gql
from gql.transport.aiohttp import AIOHTTPTransport
from httpx_sse import aconnect_sse

from flext_api import FlextApiClient
from flext_api.protocols import GraphQLClient, WebSocketSettings

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "protocols.jsonl"
QUERY = "{ hello }"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "_protocol_server.py"), str(port)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("the protocol server failed to start") from None
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the protocol server did not start within 20 s")


# -- WebSocket --------------------------------------------------------------------------------
async def ws_aiohttp(url: str, n: int) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "/ws") as ws:

        async def send() -> None:
            for i in range(n):
                await ws.send_str(f"message {i}")

        sender = asyncio.create_task(send())
        for _ in range(n):
            await ws.receive_str()
        await sender


async def ws_websockets(url: str, n: int) -> None:
    async with websockets.connect("ws" + url[4:] + "/ws", max_size=None) as ws:

        async def send() -> None:
            for i in range(n):
                await ws.send(f"message {i}")

        sender = asyncio.create_task(send())
        for _ in range(n):
            await ws.recv()
        await sender


async def ws_flext(url: str, n: int) -> None:
    settings = WebSocketSettings(ping_interval=None)
    async with FlextApiClient(url) as client, client.websocket("/ws", settings=settings) as ws:

        async def send() -> None:
            for i in range(n):
                await ws.send_text(f"message {i}")

        sender = asyncio.create_task(send())
        for _ in range(n):
            (await ws.receive()).unwrap()
        await sender


# -- SSE --------------------------------------------------------------------------------------
async def sse_httpx(url: str, n: int) -> None:
    count = 0
    async with (
        httpx.AsyncClient(trust_env=False, timeout=30) as client,
        aconnect_sse(client, "GET", f"{url}/sse?n={n}") as source,
    ):
        async for _event in source.aiter_sse():
            count += 1
    assert count == n, count


async def sse_flext(url: str, n: int) -> None:
    count = 0
    async with FlextApiClient(url) as client, client.sse("GET", f"/sse?n={n}") as source:
        async for _event in source:
            count += 1
            if count == n:
                break
    assert count == n, count


# -- GraphQL ----------------------------------------------------------------------------------
async def gql_gql(url: str, n: int, concurrency: int) -> None:
    transport = AIOHTTPTransport(url=url + "/graphql", ssl=False)
    document = gql(QUERY)
    async with Client(transport=transport) as session:
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with semaphore:
                result = await session.execute(document)
                assert result == {"hello": "hello world"}

        await asyncio.gather(*(one() for _ in range(n)))


async def gql_flext(url: str, n: int, concurrency: int) -> None:
    async with FlextApiClient(url) as http:
        client = GraphQLClient(http)
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with semaphore:
                assert (await client.query(QUERY)).value == {"hello": "hello world"}

        await asyncio.gather(*(one() for _ in range(n)))


Run = Callable[[], Awaitable[None]]


Figures = dict[str, list[tuple[float, float]]]


async def measure(runs: dict[str, Run], rounds: int, units: int) -> Figures:
    """(units/s, client CPU us/unit) of each run, ``rounds`` times, interleaved (one
    warm-up each first). The CPU time is this process's only (the server is another
    process): steadier than units/s on a shared machine."""
    for run in runs.values():
        await run()
    figures: Figures = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start, cpu = time.perf_counter(), time.process_time()
            await run()
            wall, used = time.perf_counter() - start, time.process_time() - cpu
            figures[name].append((units / wall, used / units * 1e6))
    return figures


def report(title: str, unit: str, figures: Figures, base: str) -> list[dict[str, object]]:
    print(f"\n{title}")
    print(
        f"{'client':<26} {unit:>10} {'x base':>7} {'cpu us':>7} {'x base':>7}   "
        f"{unit} each round (base: {base})"
    )
    best = {name: max(rate for rate, _ in values) for name, values in figures.items()}
    cpu = {name: min(us for _, us in values) for name, values in figures.items()}
    rows = []
    for name, values in figures.items():
        ratio, cpu_ratio = best[name] / best[base], cpu[base] / cpu[name]
        rates = [rate for rate, _ in values]
        spread = (max(rates) - min(rates)) / max(rates)
        rounds = " ".join(f"{v:.0f}" for v in rates)
        print(
            f"{name:<26} {best[name]:>10.0f} {ratio:>7.2f} {cpu[name]:>7.1f} {cpu_ratio:>7.2f}"
            f"   {rounds} (spread {spread:.0%})"
        )
        rows.append(
            {
                "client": name,
                "per_s": round(best[name], 1),
                "ratio": round(ratio, 3),
                "cpu_us_per_unit": round(cpu[name], 2),
                "cpu_ratio": round(cpu_ratio, 3),
                "rounds": [round(v, 1) for v in rates],
            }
        )
    return rows


async def run_all(url: str, args: argparse.Namespace) -> dict[str, list[dict[str, object]]]:
    m, e, q, c = args.messages, args.events, args.queries, args.concurrency
    ws = await measure(
        {
            "raw aiohttp": lambda: ws_aiohttp(url, m),
            "websockets": lambda: ws_websockets(url, m),
            "FlextApiClient.websocket": lambda: ws_flext(url, m),
        },
        args.rounds,
        m,
    )
    faster = max(("raw aiohttp", "websockets"), key=lambda k: max(r for r, _ in ws[k]))
    sse = await measure(
        {"httpx-sse": lambda: sse_httpx(url, e), "FlextApiClient.sse": lambda: sse_flext(url, e)},
        args.rounds,
        e,
    )
    graphql = await measure(
        {
            "gql (aiohttp transport)": lambda: gql_gql(url, q, c),
            "GraphQLClient": lambda: gql_flext(url, q, c),
        },
        args.rounds,
        q,
    )
    return {
        "websocket": report(
            f"WebSocket echo: {m} messages on one connection, best of {args.rounds} "
            f"interleaved rounds (target >= 0.9 x {faster})",
            "msg/s",
            ws,
            faster,
        ),
        "sse": report(
            f"SSE: {e} events on one stream, best of {args.rounds} interleaved rounds "
            "(target >= 1 x httpx-sse)",
            "events/s",
            sse,
            "httpx-sse",
        ),
        "graphql": report(
            f"GraphQL: {q} queries, concurrency {c}, strawberry on aiohttp, best of "
            f"{args.rounds} interleaved rounds",
            "queries/s",
            graphql,
            "gql (aiohttp transport)",
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    proc, url = _start_server()
    try:
        tables = asyncio.run(run_all(url, args))
    finally:
        proc.terminate()
        proc.wait(10)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "bench": "protocols",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "messages": args.messages,
        "events": args.events,
        "queries": args.queries,
        "concurrency": args.concurrency,
        **tables,
    }
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
