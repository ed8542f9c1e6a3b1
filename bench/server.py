"""Server overhead: hello-world req/s on ``create_fastapi_app`` vs a bare FastAPI app.

Both apps serve ``GET /hello -> {"hello": "world"}`` from the same server (one worker,
127.0.0.1, random port, uvicorn's own access log off) in the same run: plain uvicorn, and
``flext-api serve`` (uvicorn on flext_api.server._protocol: request-head bounds, response
heads checked and joined in one pass), each pair in the same interleaved rounds
(``--server`` picks one). The flext app has
every default middleware on, including its JSON access log (written to /dev/null). The
load comes from a separate process: ``wrk`` when installed (``apt-get install -y wrk``),
otherwise an aiohttp client started as a subprocess of this script. Rounds alternate
bare/flext so drift on a shared machine hits both; the best round of each is compared
and the spread (worst/best) of each is printed. A round with any socket error (connect,
read, write, timeout), non-2xx response or wrong body fails the whole run: a server that
drops requests must not look fast.

Prints a table per server with the ratio (target >= 0.85x) and appends one JSON line to
bench/results/server.jsonl (plain uvicorn's figures at the top level, ``serve``'s under
that key).

Run: .venv/bin/python bench/server.py [--duration 5] [--connections 32] [--rounds 3]
    [--server both|uvicorn|serve]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "server.jsonl"
HERE = Path(__file__).resolve().parent
EXPECTED_BODY = b'{"hello":"world"}'


# -- the two apps (imported by the uvicorn subprocess as server:make_*_app) --------------
def make_bare_app() -> Any:
    """FastAPI with nothing added."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def make_flext_app() -> Any:
    """``create_fastapi_app()`` with its defaults."""
    from flext_api.server import create_fastapi_app

    app = create_fastapi_app()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


# -- load generation ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("uvicorn did not become ready")


def _check_body(url: str) -> None:
    from urllib.request import urlopen

    with urlopen(url, timeout=10) as resp:
        body = resp.read()
    if body != EXPECTED_BODY:
        raise RuntimeError(f"wrong body from {url}: {body[:80]!r}")


def _run_wrk(url: str, duration: float, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", url],
        capture_output=True, text=True, check=True, timeout=duration + 30,
    ).stdout  # fmt: skip
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    # wrk prints these lines only when the count is not zero.
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if match is None or errors is not None:
        raise RuntimeError(f"wrk failed or saw errors:\n{out}")
    return float(match.group(1))


async def _aiohttp_load(url: str, duration: float, connections: int) -> float:
    import aiohttp

    count = 0
    deadline = time.monotonic() + duration

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal count
        while time.monotonic() < deadline:
            async with session.get(url) as resp:
                body = await resp.read()
                if resp.status != 200 or body != EXPECTED_BODY:
                    raise RuntimeError(f"status {resp.status}, body {body[:80]!r}")
            count += 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        return count / (time.monotonic() - start)


def _run_aiohttp(url: str, duration: float, connections: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--load", url, "--duration", str(duration),
         "--connections", str(connections)],
        capture_output=True, text=True, check=True, timeout=duration + 60,
    ).stdout  # fmt: skip
    return float(out.strip().splitlines()[-1])


def server_argv(server: str, factory: str, port: int) -> list[str]:
    """The command serving ``server:<factory>`` on ``port``: plain ``uvicorn``, or
    ``flext-api serve`` (uvicorn on flext_api.server._protocol)."""
    if server == "serve":
        return [sys.executable, "-m", "flext_api.cli", "serve", f"server:{factory}",
                "--factory", "--host", "127.0.0.1", "--port", str(port),
                "--no-access-log", "--log-level", "warning"]  # fmt: skip
    return [sys.executable, "-m", "uvicorn", "--factory", f"server:{factory}",
            "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--no-access-log", "--log-level", "warning"]  # fmt: skip


def measure(
    factory: str, duration: float, connections: int, generator: str, server: str = "uvicorn"
) -> float:
    """Serve ``factory`` on ``server`` and return the req/s the generator reached."""
    port = _free_port()
    proc = subprocess.Popen(
        server_argv(server, factory, port),
        cwd=HERE,  # serve imports ``server`` from the current directory
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(port, proc)
        url = f"http://127.0.0.1:{port}/hello"
        _check_body(url)  # wrk counts statuses, not bodies
        run = _run_wrk if generator == "wrk" else _run_aiohttp
        run(url, 1.0, connections)  # warm-up
        return run(url, duration, connections)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--generator", choices=["auto", "wrk", "aiohttp"], default="auto")
    parser.add_argument(
        "--server",
        choices=["uvicorn", "serve", "both"],
        default="both",
        help="both apps on plain uvicorn, on flext-api serve (uvicorn with our protocol), "
        "or both servers in the same interleaved rounds",
    )
    parser.add_argument("--load", help=argparse.SUPPRESS)  # internal: run as load process
    args = parser.parse_args()
    if args.load:
        print(asyncio.run(_aiohttp_load(args.load, args.duration, args.connections)))
        return
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "aiohttp"
    servers = ["uvicorn", "serve"] if args.server == "both" else [args.server]
    results: dict[str, dict[str, list[float]]] = {s: {"bare": [], "flext": []} for s in servers}
    for _ in range(args.rounds):
        for server in servers:
            for name, factory in (("bare", "make_bare_app"), ("flext", "make_flext_app")):
                results[server][name].append(
                    measure(factory, args.duration, args.connections, generator, server)
                )
    summaries = {
        server: _report(server, rounds, generator, args) for server, rounds in results.items()
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # The first server's figures at the top level (as records before --server had them),
    # the other's under its name.
    first, *others = servers
    record = {
        "bench": "server",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "generator": generator,
        "server": first,
        "duration_s": args.duration,
        "connections": args.connections,
        **summaries[first],
        **{other: summaries[other] for other in others},
    }
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def _report(
    server: str, results: dict[str, list[float]], generator: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Print one server's table; return its figures for the record."""
    bare, flext = max(results["bare"]), max(results["flext"])
    ratio = flext / bare
    overhead_us = 1e6 / flext - 1e6 / bare
    print(f"\nhello world, {server} 1 worker, {generator} -c{args.connections} "
          f"{args.duration:g}s x {args.rounds} rounds (best)")  # fmt: skip
    spread = {name: min(rounds) / max(rounds) for name, rounds in results.items()}
    print(f"{'app':<28}{'req/s (best)':>14}{'ratio':>8}{'worst/best':>12}")
    print(f"{'bare FastAPI':<28}{bare:>14.0f}{1.0:>8.2f}{spread['bare']:>12.2f}")
    print(f"{'create_fastapi_app()':<28}{flext:>14.0f}{ratio:>8.2f}{spread['flext']:>12.2f}")
    print(f"stack overhead: {overhead_us:.0f} us per request")
    print(f"target >= 0.85x: {'met' if ratio >= 0.85 else 'NOT met'}")
    return {
        "rounds": results,
        "bare_rps": round(bare, 1),
        "flext_rps": round(flext, 1),
        "ratio": round(ratio, 3),
        "overhead_us": round(overhead_us, 1),
    }


if __name__ == "__main__":
    main()
