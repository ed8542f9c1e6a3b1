"""Instructions per client request (callgrind), against the raw aiohttp base.

Each target runs twice under ``valgrind --tool=callgrind``, sending ``--small`` and then
``--large`` GETs (after the same warm-up) at ``--concurrency`` to a local nginx; the
difference of the two totals divided by the difference of the request counts is the
cost of one request, start-up (imports, nginx, warm-up) and shut-down cancelled out.
Instrumentation is off until the warm-up is done (it then turns itself on with
``callgrind_control``), which only makes the runs shorter. Deterministic
enough to decide on a loaded machine where wall-clock figures are not. Only the Python
process is counted (nginx runs outside valgrind). A tool for decisions, not part of
``make bench`` (it needs valgrind and takes minutes).

Targets (the load of each is the benches' own code, so the figures describe them):

* ``raw``: raw aiohttp configured like our transport (bench/client_throughput.py's base);
* ``bare``: FlextApiClient with no plugins; ``default``: with its default pipeline;
* ``plain`` / ``service``: bench/discovery.py's two clients (default pipeline, a plain
  base URL or ``service://`` over three instances on one nginx);
* ``mock-bare`` / ``mock-default``: the client over MockTransport (no network).

Run: .venv/bin/python bench/_client_instructions.py [--targets raw,bare,default]
    [--small 300] [--large 1300] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TARGETS = (
    "raw", "bare", "default", "plain", "service",
    "mock-bare", "mock-default", "mock-plain", "mock-service",
)  # fmt: skip


def _instrument() -> None:
    """Turn callgrind's instrumentation on for this process (a no-op outside valgrind)."""
    if not os.environ.get("FLEXT_BENCH_CALLGRIND"):
        return
    for _ in range(5):  # callgrind_control can miss a busy process: ask again
        done = subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode == 0:
            return
    raise RuntimeError(f"callgrind_control failed: {done.stdout}{done.stderr}")


async def _mock(n: int, c: int, *, defaults: bool, service: bool | None = None) -> None:
    """The client over MockTransport; with ``service`` set, over three instances of a
    registry, through ``service://`` (True) or the first one's base URL (False)."""
    from client_throughput import _drive

    from flext_api import HttpResponse
    from flext_api.client import FlextApiClient
    from flext_api.discovery import ServiceInstance, ServiceRegistry
    from flext_api.transports import MockTransport

    ok = HttpResponse(200, content=b"{}")
    transport = MockTransport(lambda request: ok)
    registry = None
    base = "http://bench.local"
    if service is not None:
        registry = ServiceRegistry()
        for k in range(3):
            url = f"http://127.0.0.{k + 1}:8080"
            inst = ServiceInstance(id=f"i{k}", name="bench", url=url)
            (await registry.register("bench", inst)).unwrap()
        base = "service://bench" if service else "http://127.0.0.1:8080"
    async with FlextApiClient(
        base, transport=transport, default_plugins=defaults, registry=registry
    ) as client:

        async def one() -> None:
            result = await client.get("/items")
            if not result.is_success:
                raise RuntimeError(f"flext: {result}")
            if len(transport.requests) > 1000:
                transport.requests.clear()

        await _drive(200, c, one)
        _instrument()
        await _drive(n, c, one)


async def _discovery(n: int, c: int, *, service: bool) -> None:
    from _nginx import Nginx, _free_port
    from discovery import POOL, THREE_PORTS, _client_rps

    from flext_api import ClientConfig
    from flext_api.client import FlextApiClient
    from flext_api.discovery import ServiceInstance, ServiceRegistry

    ports = {"port2": _free_port(), "port3": _free_port()}
    with Nginx(THREE_PORTS, **ports) as nginx:
        urls = [nginx.url, *(f"http://127.0.0.1:{p}" for p in ports.values())]
        registry = ServiceRegistry()
        for k, url in enumerate(urls):
            inst = ServiceInstance(id=f"nginx-{k}", name="bench", url=url)
            (await registry.register("bench", inst)).unwrap()
        config = ClientConfig(pool=POOL)
        base = "service://bench" if service else urls[0]
        async with FlextApiClient(base, config=config, registry=registry) as client:
            await _client_rps(client, 0, c)  # its warm-up only
            _instrument()
            await _client_rps(client, n, c)
        await registry.aclose()


async def load(target: str, n: int, c: int) -> None:
    """Send the warm-up and ``n`` requests of ``target`` (run under valgrind)."""
    if target in ("mock-plain", "mock-service"):
        await _mock(n, c, defaults=True, service=target == "mock-service")
        return
    if target.startswith("mock-"):
        await _mock(n, c, defaults=target == "mock-default")
        return
    if target in ("plain", "service"):
        await _discovery(n, c, service=target == "service")
        return
    from _nginx import Nginx
    from client_throughput import flext, raw_aiohttp

    with Nginx() as nginx:
        url = nginx.url + "/"
        _instrument()  # the bench's own warm-up is then counted: the same in both runs
        if target == "raw":
            await raw_aiohttp(url, n, c, equal=True)
        else:
            await flext(url, n, c, defaults=target == "default")


def _total(target: str, n: int, c: int) -> int:
    for attempt in range(3):  # a port taken meanwhile by another nginx: start again
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "callgrind.out"
            done = subprocess.run(
                ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                 f"--callgrind-out-file={out}", sys.executable, __file__, "--load", target,
                 "--requests", str(n), "--concurrency", str(c)],
                check=attempt == 2, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**os.environ, "FLEXT_BENCH_CALLGRIND": "1"},
            )  # fmt: skip
            if done.returncode != 0:
                continue
            text = out.read_text(encoding="utf-8", errors="replace")
        found = re.search(r"^totals:\s*(\d+)", text, re.MULTILINE)
        if found is None:
            raise RuntimeError("no totals in the callgrind output")
        return int(found.group(1))
    raise AssertionError("unreachable: the last attempt raises")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="raw,bare,default")
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--large", type=int, default=1300)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--load", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        asyncio.run(load(args.load, args.requests, args.concurrency))
        return
    c = args.concurrency
    print(f"instructions per request, {c} concurrent, (I{args.large} - I{args.small}) / "
          f"{args.large - args.small}")  # fmt: skip
    figures: dict[str, float] = {}
    for target in args.targets.split(","):
        if target not in TARGETS:
            raise SystemExit(f"unknown target {target!r}; one of {', '.join(TARGETS)}")
        small, large = _total(target, args.small, c), _total(target, args.large, c)
        figures[target] = (large - small) / (args.large - args.small)
        # Each ratio is base / this: above 1 means fewer instructions than the base.
        base_name = {
            "bare": "raw", "default": "raw", "service": "plain", "mock-service": "mock-plain"
        }.get(target)  # fmt: skip
        base = figures.get(base_name) if base_name else None
        ratio = f"   {base_name}/this {base / figures[target]:.3f}" if base else ""
        print(f"  {target:<14} {figures[target]:>12,.0f}{ratio}", flush=True)


if __name__ == "__main__":
    main()
