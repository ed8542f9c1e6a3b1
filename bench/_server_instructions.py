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
import sys
import tempfile
from pathlib import Path

from _callgrind import server_instructions

from server import EXPECTED_BODY, HERE, _free_port

_FACTORIES = {"bare": "make_bare_app", "flext": "make_flext_app"}


def _ok(status: int, body: bytes) -> bool:
    return status == 200 and body == EXPECTED_BODY


def instructions(factory: str, warmup: int, count: int, out: Path) -> float:
    """Instructions per request of uvicorn serving ``server:<factory>``."""
    port = _free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", f"server:{factory}",
            "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--no-access-log", "--log-level", "warning"]  # fmt: skip
    url = f"http://127.0.0.1:{port}/hello"
    return server_instructions(argv, url, warmup=warmup, count=count, out=out, check=_ok)


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
