"""The gateway demo behind ``make run``: two upstream services and the gateway in front.

Starts two instances of ``examples/service.py`` (ports 9001 and 9002) and serves
``examples/gateway.yaml`` on 127.0.0.1:8000 (admin API on 127.0.0.1:9901). Ctrl-C stops
the gateway (draining it) and both services.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from flext_api.gateway import load_config, serve

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "gateway.yaml"
UPSTREAM_PORTS = (9001, 9002)


def _start_service(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PORT": str(port)}
    return subprocess.Popen(
        [sys.executable, str(HERE / "service.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    url = f"http://127.0.0.1:{port}/health"
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"examples/service.py on port {port} exited ({process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise SystemExit(f"examples/service.py on port {port} did not become healthy")


def main() -> None:
    """Start the services, print what to try, serve the gateway until Ctrl-C."""
    config = load_config(CONFIG).unwrap()
    services = [_start_service(port) for port in UPSTREAM_PORTS]
    try:
        for port, process in zip(UPSTREAM_PORTS, services, strict=True):
            _wait_healthy(port, process)
        base = "http://127.0.0.1:8000"
        admin = "http://127.0.0.1:9901"
        token = "demo-admin-token-change-me"
        print(f"flext-api gateway demo on {base} -> instances on ports 9001, 9002")
        print(f"  curl -i {base}/api/health            # prefix /api stripped, round robin")
        print(f"  curl -i {base}/upstream              # catch-all route")
        print(f"  curl -i -X POST {base}/login         # exact route; the 6th in a minute: 429")
        print(f"  curl -i {base}/nowhere/at/all        # the service's own 404, passed through")
        print(f"  open {admin}/dashboard#token={token} in a browser: live dashboard")
        print(f"  curl -s {admin}/health               # aggregated upstream health")
        print(f"  curl -s {admin}/metrics | grep gateway_")
        print(f"  curl -s -H 'Authorization: Bearer {token}' {admin}/admin/clusters")
        print(f"  curl -s -X POST -H 'Authorization: Bearer {token}' {admin}/admin/reload")
        shown = CONFIG.relative_to(Path.cwd()) if CONFIG.is_relative_to(Path.cwd()) else CONFIG
        print(f"  edit {shown} and save: the gateway reloads it (an invalid edit is refused)")
        print("  Ctrl-C drains the gateway and stops the services", flush=True)
        serve(config, config_path=CONFIG)
    finally:
        for process in services:
            process.terminate()
        for process in services:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
