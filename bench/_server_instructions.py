"""Instructions per hello-world request (callgrind), bare FastAPI against the factory app.

Serves the two apps of ``bench/server.py`` (``make_bare_app``, ``make_flext_app``) with
the same uvicorn command under ``valgrind --tool=callgrind``, instrumentation off while
it starts (imports cost billions of instructions and minutes under valgrind); once it
answers, instrumentation is turned on, ``--warmup`` requests are sent, the counters are
zeroed, ``--requests`` more are sent (``GET /hello`` over 8 keep-alive connections from a
client outside valgrind, every status and body checked) and the counters are dumped:
their total divided by the requests is the cost of one request in the server process,
start-up and warm-up left out. Deterministic enough to decide on a loaded machine where
wall-clock figures are not. A tool for decisions, not part of ``make bench`` (it needs
valgrind and takes minutes).

Run: .venv/bin/python bench/_server_instructions.py [--requests 1000] [--warmup 200]
    [--targets bare,flext]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from server import EXPECTED_BODY, HERE, _free_port

_FACTORIES = {"bare": "make_bare_app", "flext": "make_flext_app"}


async def _load(url: str, count: int, connections: int = 8) -> None:
    """Send ``count`` GETs over ``connections`` keep-alive connections; check each."""
    left = count
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with session.get(url) as response:
                    body = await response.read()
                    if response.status != 200 or body != EXPECTED_BODY:
                        raise RuntimeError(f"bad answer {response.status}: {body[:80]!r}")

        await asyncio.gather(*(worker() for _ in range(connections)))


def _ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}")
        try:
            asyncio.run(_load(url, 1, 1))
            return
        except (aiohttp.ClientError, OSError):
            time.sleep(0.5)
    raise RuntimeError("uvicorn did not start")


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def instructions(factory: str, warmup: int, count: int, out: Path) -> float:
    """Instructions per request of uvicorn serving ``server:<factory>``."""
    port = _free_port()
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, "-m", "uvicorn", "--factory", f"server:{factory}",
         "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--no-access-log", "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/hello"
    try:
        _ready(url, proc)
        _control(proc.pid, "--instr=on")
        asyncio.run(_load(url, warmup))
        _control(proc.pid, "--zero")
        asyncio.run(_load(url, count))
        _control(proc.pid, "--dump")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(600)
    dump = out.with_name(out.name + ".1")  # the --dump above; exit writes `out` itself
    match = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no instruction total in {dump}")
    return int(match.group(1)) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--targets", default="bare,flext")
    parser.add_argument("--keep", help="directory to keep the callgrind dumps in")
    args = parser.parse_args()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="flext-server-ir-") as tmp:
        root = Path(args.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        for name in args.targets.split(","):
            out = root / f"{name}.out"
            results[name] = instructions(_FACTORIES[name], args.warmup, args.requests, out)
            print(f"{name:<8}{results[name]:>12,.0f} instructions/request", flush=True)
    if "bare" in results:
        for name, value in results.items():
            print(f"{name:<8}{results['bare'] / value:>8.3f}x bare FastAPI's rate (by count)")


if __name__ == "__main__":
    main()
