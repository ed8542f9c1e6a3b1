"""Gateway overhead: req/s and p50/p99 latency through proxies in front of one nginx.

Five ways to reach the same nginx upstream (``GET /`` -> a small JSON body), measured with
``wrk -t1 -c64 --latency`` in interleaved rounds (every target once per round, so drift
on a shared machine hits them all), the best round of each reported:

- nginx direct (no proxy: the ceiling of the load generator and upstream);
- nginx ``proxy_pass`` with upstream keep-alive (a compiled proxy);
- a minimal uvicorn + aiohttp proxy (bench/_minimal_proxy.py, uvicorn's defaults);
- the same minimal proxy on granian;
- the flext gateway (``flext-api gateway --config``: routing, retries, breakers,
  passive health, metrics and its JSON access log to /dev/null; httptools and uvloop
  when installed, as the minimal uvicorn proxy gets from uvicorn's defaults);
- the flext gateway with its edge policies on (a second process, one Redis): JWT auth
  plus a Redis rate limit (``/jwt``), and JWT plus Redis limit plus the shared cache
  (``/full``, every request after the first a cache hit), and the cache alone (``/hit``).

Prints a table with ratios against the minimal uvicorn proxy and appends one JSON line to
bench/results/gateway.jsonl.

Run: .venv/bin/python bench/gateway.py [--duration 5] [--connections 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from _nginx import PREAMBLE, Nginx

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "gateway.jsonl"

PROXY_CONF = (
    PREAMBLE
    + """    upstream backend {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def _spawn(stack: ExitStack, argv: list[str], port: int, env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env}
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    stack.callback(stop)
    _wait_ready(port, proc)


def _gateway_config(upstream: str, port: int, root: Path) -> Path:
    path = root / "gateway.yaml"
    path.write_text(
        json.dumps(
            {
                "listeners": [{"host": "127.0.0.1", "port": port}],
                "watch": False,
                "clusters": [
                    {"name": "nginx", "instances": [{"url": upstream}], "health": {"active": False}}
                ],
                "routes": [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "nginx"}],
            }
        ),
        encoding="utf-8",
    )  # JSON is YAML
    return path


SECRET = "bench-secret-of-at-least-thirty-two-bytes"


def _edge_config(upstream: str, port: int, root: Path, redis_url: str) -> Path:
    """A gateway with JWT + a Redis rate limit (``/jwt``) and the same plus the cache."""
    auth = {"methods": ["jwt"]}
    limit = [{"limit": "10000000/minute", "key": "consumer", "store": "redis"}]
    base = {"cluster": "nginx", "strip_prefix": True, "auth": auth, "rate_limits": limit}
    # public: a response to a request with Authorization is shared only when it says so.
    cached = {"response_add": {"Cache-Control": "public, max-age=3600"}}
    path = root / "edge.yaml"
    path.write_text(
        json.dumps(
            {
                "listeners": [{"host": "127.0.0.1", "port": port}],
                "watch": False,
                "edge": {"redis_url": redis_url, "auth": {"jwt": {"jwt_secret": SECRET}}},
                "clusters": [
                    {"name": "nginx", "instances": [{"url": upstream}], "health": {"active": False}}
                ],
                "routes": [
                    {"name": "jwt", "match": {"path_prefix": "/jwt"}, **base},
                    {"name": "full", "match": {"path_prefix": "/full"}, "cache": True,
                     "headers": cached, **base},
                    {"name": "hit", "match": {"path_prefix": "/hit"}, "cache": True,
                     "headers": cached, "cluster": "nginx", "strip_prefix": True},
                ],
            }
        ),
        encoding="utf-8",
    )  # fmt: skip
    return path


def _redis(stack: ExitStack, root: Path) -> str:
    port = _free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(root)]  # fmt: skip
    _spawn(stack, argv, port, {})
    return f"redis://127.0.0.1:{port}/0"


def _token() -> str:
    import jwt

    return jwt.encode({"sub": "bench", "exp": int(time.time()) + 86_400}, SECRET, "HS256")


def _wrk(
    url: str, duration: float, connections: int, headers: tuple[str, ...] = ()
) -> dict[str, float]:
    extra = [arg for header in headers for arg in ("-H", header)]
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
         *extra, url],
        capture_output=True, text=True, check=True, timeout=duration + 60,
    ).stdout  # fmt: skip
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rps is None or bad is not None:
        raise RuntimeError(f"wrk failed or saw errors:\n{out}")
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _latency(out, "50%"),
        "p99_ms": _latency(out, "99%"),
    }


def _latency(out: str, pct: str) -> float:
    match = re.search(rf"^\s+{re.escape(pct)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {pct} latency in wrk output:\n{out}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: run `make bench`, which installs Debian's wrk")
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="flext-bench-gw-") as tmp:
        upstream = stack.enter_context(Nginx())
        proxy = stack.enter_context(Nginx(PROXY_CONF, upstream=upstream.port))
        targets = {"nginx direct": upstream.url + "/", "nginx proxy_pass": proxy.url + "/"}
        env = {"UPSTREAM": upstream.url, "PYTHONPATH": str(HERE)}
        port = _free_port()
        _spawn(
            stack,
            [sys.executable, "-m", "uvicorn", "_minimal_proxy:app", "--host", "127.0.0.1",
             "--port", str(port), "--no-access-log", "--log-level", "warning"],
            port, env,
        )  # fmt: skip
        targets["uvicorn+aiohttp minimal"] = f"http://127.0.0.1:{port}/"
        port = _free_port()
        _spawn(
            stack,
            [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1", "--log-level", "warning",
             "_minimal_proxy:app"],
            port, env,
        )  # fmt: skip
        targets["granian+aiohttp minimal"] = f"http://127.0.0.1:{port}/"
        port = _free_port()
        config = _gateway_config(upstream.url, port, Path(tmp))
        _spawn(
            stack,
            [sys.executable, "-m", "flext_api.cli", "gateway", "--config", str(config)],
            port, {},
        )  # fmt: skip
        targets["flext gateway"] = f"http://127.0.0.1:{port}/"
        port = _free_port()
        edge = _edge_config(upstream.url, port, Path(tmp), _redis(stack, Path(tmp)))
        _spawn(
            stack,
            [sys.executable, "-m", "flext_api.cli", "gateway", "--config", str(edge)],
            port, {},
        )  # fmt: skip
        targets["gateway JWT+Redis limit"] = f"http://127.0.0.1:{port}/jwt/"
        targets["gateway JWT+limit+cache hit"] = f"http://127.0.0.1:{port}/full/"
        targets["gateway cache hit only"] = f"http://127.0.0.1:{port}/hit/"
        auth = (f"Authorization: Bearer {_token()}",)
        for url in targets.values():
            _wrk(url, 1.0, args.connections, auth)  # warm-up (and the cache's first fill)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, url in targets.items():
                rounds[name].append(_wrk(url, args.duration, args.connections, auth))
    best = {name: max(runs, key=lambda r: r["rps"]) for name, runs in rounds.items()}
    base = best["uvicorn+aiohttp minimal"]["rps"]
    print(
        f"\nGET / through each proxy to nginx, wrk -t1 -c{args.connections} "
        f"{args.duration:g}s x {args.rounds} interleaved rounds (best; spread = min-max req/s)"
    )
    print(f"{'target':<26}{'req/s':>9}{'spread':>15}{'p50 ms':>9}{'p99 ms':>9}{'vs min.':>9}")
    for name, result in best.items():
        rps = [r["rps"] for r in rounds[name]]
        spread = f"{min(rps):.0f}-{max(rps):.0f}"
        print(
            f"{name:<26}{result['rps']:>9.0f}{spread:>15}{result['p50_ms']:>9.2f}"
            f"{result['p99_ms']:>9.2f}{result['rps'] / base:>9.2f}"
        )
    gateway, direct = best["flext gateway"], best["nginx direct"]
    fastest = max(
        ("uvicorn+aiohttp minimal", "granian+aiohttp minimal"), key=lambda n: best[n]["rps"]
    )
    print(
        f"flext gateway vs the faster minimal proxy ({fastest}): "
        f"{gateway['rps'] / best[fastest]['rps']:.2f}x; added over nginx direct: "
        f"{gateway['p50_ms'] - direct['p50_ms']:.2f} ms p50, "
        f"{gateway['p99_ms'] - direct['p99_ms']:.2f} ms p99"
    )
    hit, plain = best["gateway JWT+limit+cache hit"]["rps"], best["flext gateway"]["rps"]
    edge_rps = best["gateway JWT+Redis limit"]["rps"]
    bare_hit = best["gateway cache hit only"]["rps"]
    print(f"cache-hit path (JWT+limit+cache) vs the uncached gateway proxy: {hit / plain:.2f}x")
    print(f"cache-hit path vs the same JWT+limit route uncached: {hit / edge_rps:.2f}x")
    print(f"cache-hit path alone vs the uncached gateway proxy: {bare_hit / plain:.2f}x")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "bench": "gateway",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "duration_s": args.duration,
        "connections": args.connections,
        "rounds": rounds,
        "best": best,
    }
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
