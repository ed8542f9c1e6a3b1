"""Instructions per request (callgrind) of the gateway's server protocol in-process.

bench/_gateway_instructions.py measures whole gateway processes over sockets; this tool
drives the gateway's own httptools protocol (the one ``flext-api gateway`` serves with)
on in-memory transports, so each run is shorter and steadier: ``--connections``
protocols each get one request per batch (``GET`` with the bench's bearer token), a batch
ends when every answer is in, each answer must be a ``200 OK``. Upstream (one nginx) and
Redis are real. Instrumentation is off while the child starts; it is turned on for a
warm-up, the counters are zeroed (after ``gc.collect(); gc.freeze()``, so a full
collection landing in one run and not the other does not decide), ``--requests`` are
sent and the counters dumped. Targets: ``plain`` (bench/gateway.py's plain gateway), the
edge routes ``jwt``, ``full`` and ``hit``, and ``memlimit`` (``hit`` behind an in-memory
rate limit per client IP, a route added here).

Compare candidates in PAIRED runs (same moment, same load): the absolute counts drift by
a few thousand with the machine's load (how Redis's replies are split into reads).

Run: .venv/bin/python bench/_edge_instructions.py [--requests 1280] [--targets full,hit,plain]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _nginx import Nginx
from gateway import _edge_config, _gateway_config, _redis, _token

_PATHS = {"plain": "/", "jwt": "/jwt/", "full": "/full/", "hit": "/hit/", "memlimit": "/mem/"}
# The memlimit target: the cache-only route behind a memory rate limit that never refuses.
_MEM_ROUTE = {
    "name": "mem", "match": {"path_prefix": "/mem"}, "cache": True, "cluster": "nginx",
    "strip_prefix": True, "headers": {"response_add": {"Cache-Control": "public, max-age=3600"}},
    "rate_limits": [{"limit": "10000000/minute", "key": "ip", "store": "memory"}],
}  # fmt: skip


class _Transport:
    """Enough of an asyncio transport for uvicorn's protocol; writes go to ``sink``."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name)

    def write(self, data: bytes) -> None:
        self.sink(data)

    def writelines(self, parts: Any) -> None:
        self.sink(b"".join(parts))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        raise RuntimeError("the gateway closed a keep-alive connection")

    def pause_reading(self) -> None:
        """Nothing to pause."""

    def resume_reading(self) -> None:
        """Nothing to resume."""


async def _child(config: Any, path: str, requests: int, connections: int) -> None:
    """Serve ``requests`` requests of ``path`` (``config``: the parsed gateway config)."""
    import uvicorn.server

    from flext_api.gateway._app import create_gateway
    from flext_api.gateway._config import GatewayConfig
    from flext_api.gateway._serve import uvicorn_config

    config = GatewayConfig.model_validate(config)
    gateway = create_gateway(config)
    await gateway.start()
    settings = uvicorn_config(gateway, "127.0.0.1", 0, listener=config.listeners[0])
    settings.load()
    state = uvicorn.server.ServerState()
    loop = asyncio.get_running_loop()
    answered = [0]
    waiting: list[tuple[int, asyncio.Future[None]]] = []

    def sink(data: bytes) -> None:
        count = data.count(b"HTTP/1.1 ")
        if count != data.count(b"HTTP/1.1 200 OK") and not waiting[0][1].done():
            waiting[0][1].set_exception(RuntimeError(f"bad answer: {data[:200]!r}"))
        answered[0] += count
        if waiting and answered[0] >= waiting[0][0] and not waiting[0][1].done():
            waiting[0][1].set_result(None)

    protocols = []
    for _ in range(connections):
        protocol = settings.http_protocol_class(
            config=settings, server_state=state, app_state={}, _loop=loop
        )
        protocol.connection_made(_Transport(sink))
        protocols.append(protocol)
    token = os.environ["BENCH_TOKEN"]
    request = f"GET {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\r\n".encode()

    async def send(count: int) -> None:
        while count > 0:
            batch = min(connections, count)
            count -= batch
            waiting[:] = [(answered[0] + batch, loop.create_future())]
            for protocol in protocols[:batch]:
                protocol.data_received(request)
            await waiting[0][1]

    def control(*args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True
        )

    await send(1)  # the cache's first fill
    await send(connections * 2)
    control("--instr=on")
    await send(connections * 2)
    gc.collect()
    gc.freeze()
    control("--zero")
    await send(requests)
    control("--dump")
    await gateway.aclose()


def _measure(config: Path, path: str, requests: int, connections: int, root: Path) -> float:
    out = root / "callgrind.out"
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, __file__, "--child", str(config), path, str(requests), str(connections)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONHASHSEED": "0", "BENCH_TOKEN": _token()},
    )  # fmt: skip
    dump = out.with_name(out.name + ".1")
    match = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no instruction total in {dump}")
    for leftover in root.glob("callgrind.out*"):
        leftover.unlink()
    return int(match.group(1)) / requests


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        import uvloop

        path_of_config, path, requests, connections = sys.argv[2:6]
        data = json.loads(Path(path_of_config).read_text())
        uvloop.run(_child(data, path, int(requests), int(connections)))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=1280)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--targets", default="full,hit,plain")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="flext-edge-ir-") as tmp:
        root = Path(tmp)
        upstream = stack.enter_context(Nginx())
        configs = {
            "plain": _gateway_config(upstream.url, 1, root),
            "edge": _edge_config(upstream.url, 1, root, _redis(stack, root)),
        }
        for written in configs.values():
            data = json.loads(written.read_text())
            data["listeners"][0]["header_timeout"] = 600  # valgrind: no 408 for a slow loop
            if written is configs["edge"]:
                data["routes"].append(_MEM_ROUTE)
            written.write_text(json.dumps(data))
        for name in args.targets.split(","):
            chosen = configs["plain" if name == "plain" else "edge"]
            value = _measure(chosen, _PATHS[name], args.requests, args.connections, root)
            print(f"{name:<8}{value:>12,.0f} instructions/request", flush=True)


if __name__ == "__main__":
    main()
