"""Instructions per proxied request (callgrind), the minimal proxy against the gateway.

Each target runs under ``valgrind --tool=callgrind`` with instrumentation off while it
starts (imports cost billions of instructions and minutes under valgrind); once it
answers, instrumentation is turned on, ``--warmup`` requests are sent, the counters are
zeroed, ``--requests`` more are sent (``GET /`` through it to one nginx, 8 keep-alive
connections from a client outside valgrind) and the counters are dumped: their total
divided by the requests is the cost of one request, start-up and warm-up left out.
Deterministic enough to decide on a loaded machine where wall-clock figures are not.
A tool for decisions, not part of ``make bench`` (it needs valgrind and takes minutes).

The edge targets run bench/gateway.py's edge gateway (one Redis): ``jwt`` (JWT + Redis
rate limit, proxied), ``full`` (JWT + Redis limit + a cache hit) and ``hit`` (a cache hit
alone), each sent with the bench's bearer token.

Run: .venv/bin/python bench/_gateway_instructions.py [--requests 1000] [--warmup 200]
    [--connections 8] [--keep DIR] [--targets minimal,gateway,gateway-aiohttp,jwt,full,hit]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from _callgrind import server_instructions
from _nginx import Nginx
from gateway import _edge_config, _free_port, _gateway_config, _redis, _token

HERE = Path(__file__).resolve().parent


_EDGE = {"jwt": "/jwt/", "full": "/full/", "hit": "/hit/"}


def _ok(status: int, body: bytes) -> bool:
    return status == 200 and b"ok" in body


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="copy each dump here (callgrind_annotate)")
    parser.add_argument("--targets", default="minimal,gateway,gateway-aiohttp")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {_token()}"}
    results: dict[str, float] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="flext-gw-ir-") as tmp:
        root = Path(tmp)
        upstream = stack.enter_context(Nginx())
        for name in args.targets.split(","):
            port = _free_port()
            env: dict[str, str] = {}
            if name == "minimal":
                env = {"UPSTREAM": upstream.url, "PYTHONPATH": str(HERE)}
                argv = [sys.executable, "-m", "uvicorn", "_minimal_proxy:app", "--host",
                        "127.0.0.1", "--port", str(port), "--no-access-log",
                        "--log-level", "warning"]  # fmt: skip
            elif name in _EDGE:
                config = _edge_config(upstream.url, port, root, _redis(stack, root))
                data = json.loads(config.read_text())
                data["listeners"][0]["header_timeout"] = 600
                config.write_text(json.dumps(data))
                argv = [sys.executable, "-m", "flext_api.cli", "gateway", "--config", str(config)]
            else:
                config = _gateway_config(upstream.url, port, root)
                data = json.loads(config.read_text())
                # Under valgrind a loaded machine can take seconds to read a head: the
                # slowloris timer must not fire (it arms no timer for a head read whole).
                data["listeners"][0]["header_timeout"] = 600
                if name == "gateway-aiohttp":
                    data["clusters"][0]["transport"] = "aiohttp"
                config.write_text(json.dumps(data))
                argv = [sys.executable, "-m", "flext_api.cli", "gateway", "--config", str(config)]
            url = f"http://127.0.0.1:{port}{_EDGE.get(name, '/')}"
            out = root / f"{name}.out"
            results[name] = server_instructions(
                argv, url, warmup=args.warmup, count=args.requests, out=out, check=_ok,
                connections=args.connections, headers=headers, env=env,
            )  # fmt: skip
            if args.keep is not None:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(out.with_name(out.name + ".1"), args.keep / f"{name}.callgrind")
            print(f"{name:<18}{results[name]:>12,.0f} instructions/request", flush=True)
    if "minimal" in results:
        for name, value in results.items():
            print(f"{name:<18}{value / results['minimal']:>8.2f}x the minimal proxy's count")


if __name__ == "__main__":
    main()
