"""The real `flext-api` process against the fault server, including kill -9 and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.cli._pipe import first_line_then_close
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "flext_api.cli"]


def _run(
    *args: str, timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_request_process(fault: FaultServer) -> None:
    """`flext-api request` prints the response and exits 0."""
    done = _run("request", "GET", f"{fault.url}/status/200")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("HTTP/1.1 200 OK\n")
    assert done.stdout.endswith('{\n  "status": 200\n}\n')


def test_batch_process(fault: FaultServer, tmp_path: Path) -> None:
    """`flext-api batch` writes every result; progress is plain lines off a terminal."""
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": f"id-{i}", "path": "/status/404" if i % 10 == 0 else "/status/200"})
            + "\n"
            for i in range(2000)
        )
    )
    output = tmp_path / "out.jsonl"
    done = _run("batch", str(source), "-o", str(output), "--base-url", fault.url, "--retries", "0")
    assert done.returncode == 1, done.stderr
    assert Counter(_ids(output)) == Counter(f"id-{i}" for i in range(2000))
    assert "batch: 2000/2000 done, 200 failed" in done.stderr
    assert "HTTP_STATUS" in done.stdout and "p99 latency" in done.stdout


def _journaled_lines(journal: Path) -> int:
    """Input lines the journal records as done (0 before it exists)."""
    if not journal.exists():
        return 0
    count = 0
    for line in journal.read_bytes().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written right now
        count += len(record.get("lines", []))
    return count


def test_kill_9_then_resume_gives_every_id_exactly_once(fault: FaultServer, tmp_path: Path) -> None:
    """kill -9 halfway, resume with the journal: both outputs hold each id exactly once."""
    total = 20_000
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f"id-{i}", "path": "/delay/0.02"}) + "\n" for i in range(total))
    )
    journal, first, second = tmp_path / "run.journal", tmp_path / "out1.jsonl", tmp_path / "out2"
    args = [
        "batch",
        str(source),
        "--base-url",
        fault.url,
        "--journal",
        str(journal),
        "--concurrency",
        "50",
    ]
    proc = subprocess.Popen(
        [*COMMAND, *args, "-o", str(first)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while _journaled_lines(journal) < total // 2:
            assert proc.poll() is None, "the batch ended before it could be killed"
            assert time.monotonic() < deadline, "the batch did not reach halfway in time"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert 0 < len(_ids(first)) < total

    resumed = _run(*args, "-o", str(second))
    assert resumed.returncode == 0, resumed.stderr
    done_before = int(resumed.stderr.split("resuming: ", 1)[1].split()[0])
    assert total // 2 <= done_before < total
    union = Counter(_ids(first)) + Counter(_ids(second))
    assert union == Counter(f"id-{i}" for i in range(total))


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(
    fault: FaultServer, tmp_path: Path
) -> None:
    """SIGINT: exit 130 with a resume hint; the same command then completes the output."""
    total = 3000
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f"id-{i}", "path": "/delay/0.02"}) + "\n" for i in range(total))
    )
    journal, output = tmp_path / "run.journal", tmp_path / "out.jsonl"
    args = [
        "batch",
        str(source),
        "-o",
        str(output),
        "--base-url",
        fault.url,
        "--journal",
        str(journal),
        "--concurrency",
        "20",
    ]
    proc = subprocess.Popen(
        [*COMMAND, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while _journaled_lines(journal) < 200:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: run the same command to resume" in err
    assert out.startswith("batch interrupted")
    assert 200 <= len(_ids(output)) < total

    resumed = _run(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert Counter(_ids(output)) == Counter(f"id-{i}" for i in range(total))


@pytest.mark.parametrize(("status", "code"), [(200, 0), (500, 1)])
def test_a_reader_that_goes_away_leaves_the_exit_status_to_the_request(
    fault: FaultServer, tmp_path: Path, status: int, code: int
) -> None:
    """`request ... | head -1`: the rest of the output is dropped quietly; the status (and
    the error line of a failure) is the request's, not a broken pipe's."""
    path = f"/big/{tmp_path.name}"

    async def big(request: Request, writer: ResponseWriter) -> None:
        # Pretty-printed, far more than a pipe holds: the command must block, then
        # meet a closed pipe.
        await writer.send_json({f"key-{i}": i for i in range(8_000)}, status=status)

    route = fault.add_route(path, big)
    try:
        args = ["request", "GET", f"{fault.url}{path}", "--retries", "0"]
        first, returncode, err = first_line_then_close(args)
    finally:
        fault.remove_route(route)
    assert first.startswith(f"HTTP/1.1 {status} ")
    assert returncode == code, err
    expected = "" if code == 0 else "error: [HTTP_STATUS] HTTP 500 Internal Server Error from GET"
    assert err.startswith(expected) and "Traceback" not in err and err.count("\n") == code


def test_batch_reads_a_piped_input_once(fault: FaultServer, tmp_path: Path) -> None:
    """Before: the line count read the pipe to its end, so `... | flext-api batch
    /dev/stdin` ran no request, wrote an empty output and exited 0. After: every line
    runs (the total shows as ?); with --journal, which reads the input twice, exit 2."""
    lines = "".join(json.dumps({"id": i, "path": "/status/200"}) + "\n" for i in range(30))
    output = tmp_path / "out.jsonl"
    args = ["batch", "/dev/stdin", "-o", str(output), "--base-url", fault.url]
    done = _run(*args, stdin=lines)
    assert done.returncode == 0, done.stderr
    assert Counter(_ids(output)) == Counter(range(30))
    assert "batch: 30/? done" in done.stderr
    journal = tmp_path / "run.journal"
    refused = _run(*args, "--journal", str(journal), stdin=lines)
    assert refused.returncode == 2
    assert "not a regular file" in refused.stderr
    assert not journal.exists()


def test_stdout_that_cannot_encode_the_body(fault: FaultServer) -> None:
    """Before: on a stdout whose encoding lacks a character of the answer (an ASCII or
    cp1252 locale), the request ended in a UnicodeEncodeError traceback. After: that
    character is shown escaped and the status is the request's."""
    done = subprocess.run(
        [*COMMAND, "request", "POST", f"{fault.url}/echo", "--json", '{"n": "café"}'],
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, b"")
    assert b"caf\\xe9" in done.stdout
