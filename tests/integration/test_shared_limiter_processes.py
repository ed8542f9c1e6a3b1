"""Two client processes share one 10 req/s limit through the Redis rate limiter.

Each process is a real ``FlextApiClient`` with ``RateLimitConfig(redis_url=...)`` (see
``tests/integration/_limiter_worker.py``). They start together and send as fast as
their limiter lets them for about 3 s; the fault server's own request timestamps must
show 10 req/s in total (+-10 %), not 10 per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
import redis

from tests.integration._limiter_worker import SHARED_RATE
from tests.servers.fault import FaultServer
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("a", "b")
# Each worker keeps sending for SECONDS; the callers still queued then (up to 2 x
# LOOPS_PER_WORKER slots of 0.1 s) take the span the server sees to about 3 s.
SECONDS = 2.5
LOOPS_PER_WORKER = 3  # enough callers that the shared queue never runs dry

#: pytest's ``record_property``: measured figures land in the junit XML report.
Record = Callable[[str, object], None]


def _spawn(fault: FaultServer, redis_url: str, name: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    args = [fault.url, redis_url, name, str(SECONDS), str(LOOPS_PER_WORKER)]
    return subprocess.Popen(
        [sys.executable, "-W", "error", "-m", "tests.integration._limiter_worker", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stream(pipe: IO[str] | None) -> IO[str]:
    assert pipe is not None
    return pipe


def _forget_shared_state(redis_url: str, port: int) -> None:
    """Drop the limiter key an earlier test in this session may have left for this host."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(f"flext_api:ratelimit:127.0.0.1:{port}")
    finally:
        client.close()


def _run_workers(fault: FaultServer, redis_url: str) -> list[dict[str, Any]]:
    procs = [_spawn(fault, redis_url, name) for name in WORKERS]
    try:
        # Start both only once both are up: interpreter start-up is not part of the test.
        for proc in procs:
            assert _stream(proc.stdout).readline().strip() == "ready", proc.stderr
        for proc in procs:
            _stream(proc.stdin).write("go\n")
            _stream(proc.stdin).flush()
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            assert err == "", err
            reports.append(json.loads(out))
        return reports
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_two_processes_send_10_per_second_in_total(
    fault: FaultServer, redis_server: RedisServer, record_property: Record
) -> None:
    """Two processes sharing a Redis limit of 10 req/s reach the server at 10 req/s in total."""
    _forget_shared_state(redis_server.url, fault.port)
    reports = _run_workers(fault, redis_server.url)

    assert [r["fell_back"] for r in reports] == [False, False]
    assert all(set(r["outcomes"]) == {"ok"} for r in reports), reports
    seen = [r for r in fault.requests_to("/status/200") if r.headers.get("x-worker") in WORKERS]
    assert len(seen) == sum(r["outcomes"]["ok"] for r in reports)
    times = sorted(r.time for r in seen)
    span = times[-1] - times[0]
    rate = (len(times) - 1) / span
    per_worker = {name: sum(r.headers["x-worker"] == name for r in seen) for name in WORKERS}
    record_property("rate_per_s", round(rate, 3))
    record_property("span_s", round(span, 3))
    record_property("per_worker", per_worker)
    assert span >= SECONDS
    assert SHARED_RATE * 0.9 <= rate <= SHARED_RATE * 1.1, f"{rate:.2f} req/s over {span:.2f}s"
    # Both processes really competed for the one limit (neither ran alone).
    assert min(per_worker.values()) >= len(seen) // 4, per_worker
