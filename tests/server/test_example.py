"""examples/service.py: importable, serves its endpoints, runnable as a script."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import httpx2
import pytest
from fastapi import FastAPI

from tests.server.helpers import serve
from tests.server.live import LiveServer, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def example() -> ModuleType:
    """A fresh import of the example (its app runs one lifespan per import)."""
    module = importlib.import_module("examples.service")
    return importlib.reload(module)


async def test_health_auth_and_login_limit(example: ModuleType) -> None:
    """/health is 200, /me needs the API key, /login allows five calls a minute."""
    async with serve(example.app) as client:
        health = await client.get("/health", headers={"Host": "127.0.0.1"})
        anonymous = await client.get("/me", headers={"Host": "127.0.0.1"})
        me = await client.get("/me", headers={"Host": "localhost", "X-API-Key": example.API_KEY})
        logins = [
            (await client.post("/login", headers={"Host": "127.0.0.1"})).status_code
            for _ in range(6)
        ]
    assert (health.status_code, anonymous.status_code) == (200, 401)
    assert me.json() == {"subject": "demo", "method": "api_key"}
    assert logins == [200] * 5 + [429]


def test_upstream_call_propagates_request_id(
    example: ModuleType, live: Callable[[FastAPI], LiveServer]
) -> None:
    """/upstream calls /health through FlextApiClient, carrying the same X-Request-ID."""
    server = live(example.app)  # no UPSTREAM_URL: the service calls its own address
    with httpx2.Client(base_url=server.url) as client:
        response = client.get("/upstream", headers={"X-Request-ID": "example-1"})
    assert response.json() == {
        "upstream_status": 200,
        "upstream_body": {"status": "pass"},
        "request_id": "example-1",
        "upstream_request_id": "example-1",
    }


@pytest.mark.integration
def test_runs_as_a_script() -> None:
    """python examples/service.py serves on 127.0.0.1:$PORT and prints the URLs to try."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "examples/service.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90  # a child interpreter's start-up on a loaded machine
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                status = httpx2.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code
            except httpx2.TransportError:
                time.sleep(0.1)
        assert status == 200
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=15)
    assert f"curl -i http://127.0.0.1:{port}/health" in output
