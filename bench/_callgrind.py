"""Instructions per request of a server process under callgrind (the shared driver).

:func:`server_instructions` starts ``argv`` under ``valgrind --tool=callgrind`` with
instrumentation off while it starts (imports cost billions of instructions and minutes
under valgrind); once it answers, instrumentation is turned on, ``warmup`` requests are
sent, the counters are zeroed, ``count`` more are sent (``GET url`` over keep-alive
connections from a client outside valgrind, every answer checked) and the counters are
dumped: their total divided by ``count`` is the cost of one request in the server
process, start-up and warm-up left out. Used by ``_server_instructions.py`` and
``_gateway_instructions.py``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import aiohttp

#: Whether an answer (status, body) is the expected one.
Check = Callable[[int, bytes], bool]


async def load(
    url: str, count: int, connections: int, check: Check, headers: Mapping[str, str]
) -> None:
    """Send ``count`` GETs over ``connections`` keep-alive connections; check each."""
    left = count
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with session.get(url) as response:
                    body = await response.read()
                    if not check(response.status, body):
                        raise RuntimeError(f"bad answer {response.status}: {body[:80]!r}")

        await asyncio.gather(*(worker() for _ in range(connections)))


def _ready(
    url: str, proc: subprocess.Popen[bytes], check: Check, headers: Mapping[str, str]
) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"target exited with {proc.returncode}")
        try:
            asyncio.run(load(url, 1, 1, check, headers))
            return
        except (aiohttp.ClientError, OSError):
            time.sleep(0.5)
    raise RuntimeError("target did not start")


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def server_instructions(
    argv: list[str],
    url: str,
    *,
    warmup: int,
    count: int,
    out: Path,
    check: Check,
    connections: int = 8,
    headers: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> float:
    """Instructions per request of the server ``argv`` starts (see the module's text)."""
    headers = headers or {}
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    try:
        _ready(url, proc, check, headers)
        _control(proc.pid, "--instr=on")
        asyncio.run(load(url, warmup, connections, check, headers))
        _control(proc.pid, "--zero")
        asyncio.run(load(url, count, connections, check, headers))
        _control(proc.pid, "--dump")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(600)
    dump = out.with_name(out.name + ".1")  # the --dump above; exit writes `out` itself
    match = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no instruction total in {dump}")
    return int(match.group(1)) / count
