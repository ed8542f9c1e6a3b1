"""Run the http-cache-tests conformance suite against the gateway's shared cache.

Starts the suite's origin server (bound to 127.0.0.1), a gateway (``flext-api gateway``)
with a pass-through ``cache: true`` route to it, runs the suite's client through the
gateway, and prints the score table computed with the suite's own result logic
(``lib/display.mjs``: required / optimal / check x pass / fail / dependency).

    python scripts/cache_tests.py [--package DIR] [--min-required N] [--results FILE]

Exits 1 when fewer than ``--min-required`` required tests pass. Every process it starts
is stopped on the way out, also on failure. No traffic leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_PACKAGE = ROOT / ".npm" / "node_modules" / "http-cache-tests"
ATS_REQUIRED = 132  # Apache Traffic Server's required passes on cache-tests.fyi


def free_port() -> int:
    """A port the OS says is free on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    """Return once ``port`` accepts connections; raise if ``proc`` died or 30 s passed."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


def gateway_config(origin: int) -> dict[str, object]:
    """A gateway with one pass-through cached route to the origin (its setup paths uncached)."""
    cluster = {
        "name": "origin",
        "instances": [{"url": f"http://127.0.0.1:{origin}"}],
        "health": {"active": False, "passive": {"enabled": False}},
        # The origin (node) drops idle keep-alive connections after 5 s: expire ours
        # sooner, and retry an idempotent request whose reused connection was reset -
        # but never retry on a status (the suite's 5xx answers must reach it as sent).
        "pool": {"keepalive_expiry": 2.0},
        "retry": {"retries": 2, "statuses": [], "budget_min_retries": 1000},
        "breaker": {"enabled": False},
    }
    return {
        "watch": False,
        "clusters": [cluster],
        "routes": [
            {"name": "setup", "match": {"path_prefix": "/config"}, "cluster": "origin"},
            {"name": "state", "match": {"path_prefix": "/state"}, "cluster": "origin"},
            {"name": "cached", "match": {"path_prefix": "/"}, "cluster": "origin", "cache": True},
        ],
    }


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc`` (kill it if it does not stop)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run(package: Path, workdir: Path) -> dict[str, object]:
    """Run the suite through a fresh gateway; the scored result."""
    origin_port, gateway_port = free_port(), free_port()
    origin_log, gateway_log = workdir / "origin.log", workdir / "gateway.log"
    env = {**os.environ, "npm_config_protocol": "http", "npm_config_port": str(origin_port),
           "npm_config_pidfile": str(workdir / "origin.pid")}  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with origin_log.open("wb") as out:
            command = ["node", "--import", (HERE / "cache_tests" / "bind-loopback.mjs").as_uri(),
                       "server/server.mjs"]  # fmt: skip
            procs.append(subprocess.Popen(command, cwd=package, env=env, stdout=out, stderr=out))
        wait_port(origin_port, procs[-1], "origin", origin_log)
        config = workdir / "gateway.yaml"
        config.write_text(yaml.safe_dump(gateway_config(origin_port)), encoding="utf-8")
        with gateway_log.open("wb") as out:
            command = [sys.executable, "-m", "flext_api.cli", "gateway", "--config", str(config),
                       "--port", str(gateway_port)]  # fmt: skip
            procs.append(subprocess.Popen(command, stdout=out, stderr=out))
        wait_port(gateway_port, procs[-1], "gateway", gateway_log)
        client_env = {**os.environ, "npm_config_base": f"http://127.0.0.1:{gateway_port}",
                      "npm_package_config_id": ""}  # fmt: skip
        client = subprocess.run(
            ["node", "--no-warnings", "cli.mjs"],
            cwd=package, env=client_env, capture_output=True, check=True, timeout=600,
        )  # fmt: skip
        results = workdir / "results.json"
        (ROOT / "artifacts").mkdir(exist_ok=True)
        (ROOT / "artifacts" / "cache-tests-results.json").write_bytes(client.stdout)
        results.write_bytes(client.stdout)
        scored = subprocess.run(
            ["node", str(HERE / "cache_tests" / "score.mjs"), str(package), str(results)],
            capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        parsed: dict[str, object] = json.loads(scored.stdout)
        return parsed
    finally:
        for proc in reversed(procs):
            stop(proc)


def render(table: dict[str, dict[str, int]]) -> str:
    """The score table as text."""
    lines = [f"{'kind':<10}{'pass':>7}{'fail':>7}{'dependency':>12}{'other':>7}{'total':>7}"]
    for kind in ("required", "optimal", "check"):
        row = table.get(kind, {})
        total = sum(row.values())
        lines.append(
            f"{kind:<10}{row.get('pass', 0):>7}{row.get('fail', 0):>7}"
            f"{row.get('dependency', 0):>12}{row.get('other', 0):>7}{total:>7}"
        )
    return "\n".join(lines)


def main() -> int:
    """Run, print the table, and judge the required passes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, default=DEFAULT_PACKAGE)
    parser.add_argument("--min-required", type=int, default=ATS_REQUIRED + 1)
    parser.add_argument("--results", type=Path, help="also write the scored JSON here")
    parser.add_argument("--show-failed", action="store_true", help="list failed required tests")
    args = parser.parse_args()
    if not (args.package / "cli.mjs").exists():
        print(f"http-cache-tests is not installed at {args.package} (make cache-tests does it)")
        return 2
    with tempfile.TemporaryDirectory(prefix="cache-tests-") as tmp:
        scored = run(args.package.resolve(), Path(tmp))
    table = scored["table"]
    assert isinstance(table, dict)
    print(render(table))
    if args.results is not None:
        args.results.write_text(json.dumps(scored, indent=2), encoding="utf-8")
    if args.show_failed:
        failed = scored["failed"]
        assert isinstance(failed, list)
        print("failed required:", *failed, sep="\n  ")
    passed = int(table.get("required", {}).get("pass", 0))
    verdict = "ok" if passed >= args.min_required else "FAIL"
    print(f"required passes: {passed} (minimum {args.min_required}; Traffic Server: "
          f"{ATS_REQUIRED}) -> {verdict}")  # fmt: skip
    return 0 if passed >= args.min_required else 1


if __name__ == "__main__":
    sys.exit(main())
