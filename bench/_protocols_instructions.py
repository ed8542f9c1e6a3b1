"""Instructions per WebSocket message (callgrind), our client against raw aiohttp.

Each client of ``bench/protocols.py`` (the very functions the bench times) runs in a
worker process under ``valgrind --tool=callgrind`` with instrumentation off while it
imports; the echo server (``_protocol_server.py``) runs outside valgrind. Once the
worker is ready, instrumentation is turned on, one warm-up run is made, then a run of
``--small`` and a run of ``--large`` messages, each between a zero and a dump of the
counters: (I(large) - I(small)) / (large - small) is the cost of one message, the
connection set-up and tear-down left out. Deterministic enough to decide on a loaded
machine where wall-clock figures are not. A tool for decisions, not part of
``make bench`` (it needs valgrind and takes minutes).

Run: .venv/bin/python bench/_protocols_instructions.py [--small 1000] [--large 5000]
    [--targets aiohttp,flext,websockets]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

RUNS = {"aiohttp": "ws_aiohttp", "flext": "ws_flext", "websockets": "ws_websockets"}


def _worker(name: str, url: str) -> None:
    """Run the bench's client ``name`` once per ``N`` line read from stdin."""
    import protocols

    run = getattr(protocols, RUNS[name])
    print("ready", flush=True)
    for line in sys.stdin:
        asyncio.run(run(url, int(line)))
        print("done", flush=True)


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def _total(dump: Path) -> int:
    match = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no instruction total in {dump}")
    return int(match.group(1))


def _measure(name: str, url: str, counts: tuple[int, int, int], out: Path) -> list[int]:
    """Instruction totals of the runs after the first (the warm-up) of ``counts``."""
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, __file__, "--worker", name, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    totals: list[int] = []
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{name}: the worker did not start")
        _control(proc.pid, "--instr=on")
        for i, count in enumerate(counts):
            if i:
                _control(proc.pid, "--zero")
            proc.stdin.write(f"{count}\n")
            proc.stdin.flush()
            if proc.stdout.readline().strip() != "done":
                raise RuntimeError(f"{name}: the worker failed")
            if i:
                _control(proc.pid, "--dump")
                totals.append(_total(out.with_name(f"{out.name}.{i}")))
    finally:
        proc.stdin.close()
        proc.wait(600)
    return totals


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--targets", default="aiohttp,flext")
    parser.add_argument("--keep", type=Path, help="keep the callgrind files in this folder")
    args = parser.parse_args()
    from protocols import _start_server

    server, url = _start_server()
    results: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="flext-ws-ir-") as tmp:
            folder = args.keep or Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            for name in args.targets.split(","):
                out = folder / f"{name}.out"
                small, large = _measure(name, url, (args.warmup, args.small, args.large), out)
                results[name] = (large - small) / (args.large - args.small)
                print(
                    f"{name:<12}{results[name]:>12,.0f} instructions/message "
                    f"({args.small}: {small:,}, {args.large}: {large:,})",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait(10)
    if "aiohttp" in results:
        for name, value in results.items():
            print(f"{name:<12}{results['aiohttp'] / value:>8.3f}x raw aiohttp's speed")


if __name__ == "__main__":
    main()
