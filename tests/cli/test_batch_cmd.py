"""`flext-api batch` through CliRunner against the fault server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flext_api.cli import _batch_cmd
from flext_api.cli._app import app
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter

pytestmark = pytest.mark.integration


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def _out(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _summary(stdout: str) -> dict[str, str]:
    """The summary table as {label: value}, with the timing figures masked as <t>."""
    rows: dict[str, str] = {}
    for line in stdout.splitlines()[2:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 2:
            label, value = cells
            timed = "latency" in label or label in ("elapsed", "throughput")
            rows[label] = re.sub(r"\d+(\.\d+)?", "<t>", value) if timed else value
    return rows


def test_batch_writes_one_result_per_line_and_a_summary(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """Every input line gets one output line; the summary counts outcomes; exit 1 on failures."""
    requests = [
        {"id": f"r{i}", "path": "/status/500" if i % 5 == 0 else "/status/200"} for i in range(50)
    ]
    source = _write(tmp_path / "in.jsonl", requests)
    output = tmp_path / "out.jsonl"
    result = runner.invoke(
        app,
        [
            "batch",
            str(source),
            "-o",
            str(output),
            "--base-url",
            fault.url,
            "--retries",
            "0",
            "--concurrency",
            "8",
        ],
    )
    assert result.exit_code == 1
    records = _out(output)
    assert sorted(r["id"] for r in records) == sorted(r["id"] for r in requests)
    first = next(r for r in records if r["id"] == "r1")
    assert list(first) == [
        "id",
        "line",
        "success",
        "status_code",
        "data",
        "error",
        "error_code",
        "duration_ms",
        "attempts",
    ]
    assert (first["line"], first["success"], first["data"]) == (2, True, {"status": 200})
    assert _summary(result.stdout) == {
        "results": "50",
        "ok": "40",
        "failed": "10",
        "HTTP_STATUS": "10",
        "retries": "0",
        "p50 latency": "<t> ms",
        "p95 latency": "<t> ms",
        "p99 latency": "<t> ms",
        "elapsed": "<t> s",
        "throughput": "<t> req/s",
    }
    assert re.search(r"batch: 50/50 done, 10 failed, 0 retries, \d+ req/s, ETA 0s", result.stderr)


def test_all_successful_exits_0(runner: CliRunner, fault: FaultServer, tmp_path: Path) -> None:
    """Exit status 0 when every request succeeded; blank lines are not requests."""
    source = _write(
        tmp_path / "in.jsonl",
        [
            {"id": 1, "path": "/echo"},
            "",
            "  ",
            {
                "id": 2,
                "path": f"{fault.url}/echo",
                "method": "POST",
                "json": {"a": 1},
                "headers": {"X-T": "v"},
                "params": {"q": "1"},
            },
        ],
    )
    output = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["batch", str(source), "-o", str(output), "--base-url", fault.url])
    assert result.exit_code == 0
    by_id = {r["id"]: r for r in _out(output)}
    assert set(by_id) == {1, 2}
    echo = by_id[2]["data"]
    assert (echo["method"], echo["body"], echo["headers"]["x-t"], echo["query"]) == (
        "POST",
        '{"a":1}',
        "v",
        {"q": ["1"]},
    )
    assert by_id[2]["line"] == 4


def test_malformed_lines_are_reported_and_written_as_failures(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """Bad lines are named with their line number on stderr and kept in the output."""
    source = _write(
        tmp_path / "in.jsonl",
        [
            {"id": "ok", "path": "/status/200"},
            "not json",
            "[1, 2]",
            {"id": "x", "method": "GET"},
            {"id": "y", "path": "/a", "bogus": 1},
        ],
    )
    output = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["batch", str(source), "-o", str(output), "--base-url", fault.url])
    assert result.exit_code == 1
    assert "line 2: invalid JSON" in result.stderr
    assert "line 3: expected a JSON object, got list" in result.stderr
    assert "line 4: missing required field 'path'" in result.stderr
    assert "line 5: unknown field(s) 'bogus'" in result.stderr
    failures = {r["line"]: r for r in _out(output) if not r["success"]}
    assert sorted(failures) == [2, 3, 4, 5]
    assert {r["error_code"] for r in failures.values()} == {"INVALID_REQUEST"}
    assert (failures[2]["id"], failures[4]["id"], failures[5]["id"]) == (None, "x", "y")
    assert _summary(result.stdout)["malformed lines"] == "4"


def test_many_malformed_lines_are_summarized(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """Past 20 malformed lines, the rest are counted instead of listed."""
    source = _write(tmp_path / "in.jsonl", ["{"] * 25)
    result = runner.invoke(
        app, ["batch", str(source), "-o", str(tmp_path / "o"), "--base-url", fault.url]
    )
    assert result.stderr.count("invalid JSON") == 20
    assert "... and 5 more malformed line(s)" in result.stderr


def test_relative_paths_without_base_url_fail_per_item(runner: CliRunner, tmp_path: Path) -> None:
    """Without --base-url a relative path is a malformed line: that item's INVALID_REQUEST."""
    source = _write(tmp_path / "in.jsonl", [{"id": 1, "path": "/x"}])
    output = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["batch", str(source), "-o", str(output)])
    assert result.exit_code == 1
    [record] = _out(output)
    assert record["error_code"] == "INVALID_REQUEST"
    assert record["error"] == "line 1: relative URL '/x' needs a base_url on the client"
    assert _summary(result.stdout)["malformed lines"] == "1"


def test_lines_whose_url_the_client_refuses_are_malformed(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """Before: a path the client refuses as a URL failed only when its turn came, without
    its line number and not counted as malformed. After: the client's URL check runs as
    the line is read; nothing is sent for it. A space in a path is encoded and sent."""
    source = _write(
        tmp_path / "in.jsonl",
        [
            {"id": "ok", "path": "/status/200"},
            {"id": "v6", "path": "http://[::1"},
            {"id": "port", "path": "http://127.0.0.1:99999/"},
            {"id": "crlf", "path": "/status/200\r\nX-Injected: 1"},
            {"id": "host", "path": "http://a b/"},
            {"id": "service", "path": "service://users/1"},
            {"id": "params", "path": "/status/200", "params": {"a": {"b": 1}}},
            {"id": "number", "path": 5},
            {"id": "space", "path": "/echo?q=a b"},
        ],
    )
    output = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["batch", str(source), "-o", str(output), "--base-url", fault.url])
    assert result.exit_code == 1, result.stderr
    shown = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert shown == [
        "line 2: malformed URL 'http://[::1': its host is not a valid IPv6 literal or name",
        "line 3: malformed URL 'http://127.0.0.1:99999/': its port is not a number from 0 to 65535",
        "line 4: URL contains a control character (CR, LF, NUL...): "
        "'/status/200\\r\\nX-Injected: 1'",
        "line 5: URL host contains invalid characters: 'http://a b/'",
        "line 6: service:// URLs need a discovery registry; the command has none",
        "line 7: value of 'a' must be str, int, float, bool or None (or a list of them), got dict",
        "line 8: BatchRequest 'number': path must be a non-empty str",
    ]
    records = {r["id"]: r for r in _out(output)}
    assert {i for i, r in records.items() if r["success"]} == {"ok", "space"}
    for line, request_id in enumerate(["v6", "port", "crlf", "host", "service", "params"], 2):
        record = records[request_id]
        assert (record["line"], record["error_code"], record["attempts"]) == (
            line,
            "INVALID_REQUEST",
            0,
        )
        assert record["error"].startswith(f"line {line}: ")
    assert records["space"]["data"]["query"] == {"q": ["a b"]}
    assert sorted(r.path for r in fault.requests) == ["/echo", "/status/200"]
    assert _summary(result.stdout)["malformed lines"] == "7"


def test_journal_resume_skips_lines_done_before(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """A second run with the same journal sends only the lines not done; exit by outcome."""
    source = _write(tmp_path / "in.jsonl", [{"id": i, "path": "/status/200"} for i in range(6)])
    journal = tmp_path / "run.journal"
    first = runner.invoke(
        app,
        [
            "batch",
            str(source),
            "-o",
            str(tmp_path / "a.jsonl"),
            "--base-url",
            fault.url,
            "--journal",
            str(journal),
        ],
    )
    assert first.exit_code == 0
    fault.reset()
    second = runner.invoke(
        app,
        [
            "batch",
            str(source),
            "-o",
            str(tmp_path / "b.jsonl"),
            "--base-url",
            fault.url,
            "--journal",
            str(journal),
        ],
    )
    assert second.exit_code == 0
    assert "resuming: 6 line(s) done before" in second.stderr
    assert _out(tmp_path / "b.jsonl") == []
    assert fault.hits("/status/200") == 0
    assert _summary(second.stdout)["skipped (done before)"] == "6"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rate", "fast"], "is not a rate"),
        (["--concurrency", "0"], "concurrency"),
        (["--base-url", "ftp://x"], "unsupported URL scheme"),
    ],
)
def test_bad_options_exit_2(
    runner: CliRunner, tmp_path: Path, extra: list[str], message: str
) -> None:
    """Bad option values are reported in one message with exit status 2."""
    source = _write(tmp_path / "in.jsonl", [{"id": 1, "path": "/x"}])
    result = runner.invoke(app, ["batch", str(source), "-o", str(tmp_path / "o"), *extra])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


def test_unwritable_output_and_mismatched_journal_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    """An output that cannot be created, or a journal of another input, is exit 2."""
    source = _write(tmp_path / "in.jsonl", [{"id": 1, "path": "/x"}])
    result = runner.invoke(app, ["batch", str(source), "-o", str(tmp_path / "no" / "o")])
    assert result.exit_code == 2
    assert "error: cannot write" in result.stderr
    journal = _write(
        tmp_path / "j", [{"flext_api_batch_journal": 1, "input": "x", "input_size": 1}]
    )
    result = runner.invoke(
        app, ["batch", str(source), "-o", str(tmp_path / "o"), "--journal", str(journal)]
    )
    assert result.exit_code == 2
    assert "use another --journal" in result.stderr


def test_missing_input_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    """A missing input file is reported by the argument check (exit 2)."""
    result = runner.invoke(app, ["batch", str(tmp_path / "nope.jsonl"), "-o", "o"])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_interrupt_keeps_what_was_done_and_says_how_to_resume(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C: the results so far are checkpointed, the summary says interrupted, exit 130."""
    from flext_api.cli import _batch_cmd
    from flext_api.client.batch._models import BatchResult

    async def interrupted_run(
        config: Any,
        base_url: Any,
        reader: Any,
        writer: Any,
        summary: Any,
        *rest: Any,
        **options: Any,
    ) -> float:
        next(iter(reader))
        result = BatchResult(1, True, 200, attempts=1, index=0)
        writer.write(_batch_cmd.output_record(result, reader.line_of(0)), 1)
        summary.add(result)
        raise KeyboardInterrupt

    monkeypatch.setattr(_batch_cmd, "_run", interrupted_run)
    source = _write(tmp_path / "in.jsonl", [{"id": 1, "path": "/x"}, {"id": 2, "path": "/x"}])
    journal = tmp_path / "j"
    result = runner.invoke(
        app, ["batch", str(source), "-o", str(tmp_path / "o"), "--journal", str(journal)]
    )
    assert result.exit_code == 130
    assert result.stdout.startswith("batch interrupted")
    assert "interrupted: run the same command to resume" in result.stderr
    assert [r["id"] for r in _out(tmp_path / "o")] == [1]
    assert '"lines":[1]' in journal.read_text()


def test_resume_warns_about_a_missing_earlier_output(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """An earlier output deleted since is reported as a warning; the run goes on."""
    source = _write(tmp_path / "in.jsonl", [{"id": 1, "path": "/status/200"}])
    journal = tmp_path / "j"
    args = ["--base-url", fault.url, "--journal", str(journal)]
    runner.invoke(app, ["batch", str(source), "-o", str(tmp_path / "a"), *args])
    (tmp_path / "a").unlink()
    result = runner.invoke(app, ["batch", str(source), "-o", str(tmp_path / "b"), *args])
    assert result.exit_code == 0
    assert "warning: " in result.stderr and "is gone" in result.stderr


def test_duplicate_ids_fail_unless_allowed(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """A repeated id is INVALID_REQUEST by default; --allow-duplicates sends both."""
    source = _write(tmp_path / "in.jsonl", [{"id": 1, "path": "/status/200"}] * 2)
    output = tmp_path / "out.jsonl"
    checked = runner.invoke(app, ["batch", str(source), "-o", str(output), "--base-url", fault.url])
    assert checked.exit_code == 1
    assert sorted(str(r["error_code"]) for r in _out(output)) == ["INVALID_REQUEST", "None"]
    unchecked = runner.invoke(
        app,
        ["batch", str(source), "-o", str(output), "--base-url", fault.url, "--allow-duplicates"],
    )
    assert unchecked.exit_code == 0
    assert [r["success"] for r in _out(output)] == [True, True]


@pytest.mark.parametrize(
    ("output", "journal", "message"),
    [
        ("in.jsonl", None, "the output would overwrite the input"),
        ("out.jsonl", "in.jsonl", "the journal must be its own file"),
        ("out.jsonl", "out.jsonl", "the journal must be its own file"),
    ],
)
def test_files_must_be_distinct(
    runner: CliRunner, tmp_path: Path, output: str, journal: str | None, message: str
) -> None:
    """The input is never overwritten, and the journal is never the input or the output."""
    source = _write(tmp_path / "in.jsonl", [{"id": 1, "path": "/x"}])
    before = source.read_text()
    extra = ["--journal", str(tmp_path / journal)] if journal else []
    result = runner.invoke(app, ["batch", str(source), "-o", str(tmp_path / output), *extra])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert source.read_text() == before


class _InterruptAt:
    """Answers after 50 ms; at the ``at``-th request sends this process a SIGINT."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.hits = 0

    async def __call__(self, req: Request, w: ResponseWriter) -> None:
        self.hits += 1
        if self.hits == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(0.05)
        await w.send_json({"ok": True})


def test_sigint_stops_a_running_batch(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """A real SIGINT mid-run: the batch stops early, keeps its results and exits 130."""
    path = f"/interrupt/{tmp_path.name}"
    route = fault.add_route(path, _InterruptAt(60))
    total = 2000
    source = _write(tmp_path / "in.jsonl", [{"id": i, "path": path} for i in range(total)])
    output = tmp_path / "o"
    try:
        result = runner.invoke(
            app, ["batch", str(source), "-o", str(output), "--base-url", fault.url]
        )
    finally:
        fault.remove_route(route)
    assert result.exit_code == 130, result.stderr
    assert "interrupted: --journal makes a run resumable" in result.stderr
    assert 1 <= len(_out(output)) < total


def test_sigint_is_left_to_asyncio_off_the_main_thread() -> None:
    """Outside the main thread the batch does not take SIGINT over (asyncio cannot)."""
    seen: list[bool] = []

    def attempt() -> None:
        loop = asyncio.new_event_loop()
        try:
            seen.append(_batch_cmd._watch_sigint(loop, lambda: None))
        finally:
            loop.close()

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    assert seen == [False]


def test_output_hard_linked_to_the_input_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    """An output that is the input under another name (a hard link) never truncates it."""
    source = _write(tmp_path / "in.jsonl", [{"id": 1, "path": "/x"}])
    before = source.read_text()
    os.link(source, tmp_path / "alias.jsonl")
    result = runner.invoke(app, ["batch", str(source), "-o", str(tmp_path / "alias.jsonl")])
    assert result.exit_code == 2
    assert "would overwrite the input" in result.stderr
    assert source.read_text() == before


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_one_line_and_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    """Writing the results fails (no space): one error line, exit 2, no traceback."""
    source = _write(tmp_path / "in.jsonl", [{"id": 1, "path": "/x"}])
    result = runner.invoke(app, ["batch", str(source), "-o", "/dev/full"])
    assert result.exit_code == 2
    assert "error: cannot write '/dev/full': No space left on device" in result.stderr
    assert "Traceback" not in result.stderr and result.exception is not None
    assert isinstance(result.exception, SystemExit)


def test_infinite_timeout_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    """--timeout inf passes click's range check but is refused (exit 2)."""
    source = _write(tmp_path / "in.jsonl", [{"id": 1, "path": "/x"}])
    result = runner.invoke(
        app, ["batch", str(source), "-o", str(tmp_path / "o"), "--timeout", "inf"]
    )
    assert result.exit_code == 2
    assert "not a finite number of seconds" in " ".join(result.stderr.split())


def test_a_byte_order_mark_does_not_spoil_the_first_line(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """A UTF-8 file starting with a BOM: its first line is a request like the others."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'\xef\xbb\xbf{"id": 1, "path": "/status/200"}\n')
    output = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["batch", str(source), "-o", str(output), "--base-url", fault.url])
    assert result.exit_code == 0, result.stderr
    assert [(r["id"], r["success"]) for r in _out(output)] == [(1, True)]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-pause", "inf"], "'--max-pause': inf is not a finite number of seconds"),
        (["--max-pause", "nan"], "'--max-pause'"),
        (["--rate", "9" * 400 + "/s"], "is not a rate"),
        (["--base-url", "http://["], "malformed URL"),
        (["--base-url", "service://users"], "need a discovery registry"),
    ],
)
def test_bad_values_are_usage_errors_that_keep_the_output(
    runner: CliRunner, tmp_path: Path, extra: list[str], message: str
) -> None:
    """A value the run would refuse is exit 2 before the output is opened (not replaced)."""
    source = _write(tmp_path / "in.jsonl", [{"id": 1, "path": "/x"}])
    output = tmp_path / "o.jsonl"
    output.write_text("earlier results\n")
    result = runner.invoke(app, ["batch", str(source), "-o", str(output), *extra])
    assert result.exit_code == 2, result.stderr
    assert isinstance(result.exception, SystemExit)
    assert message in " ".join(result.stderr.replace("│", " ").split())
    assert output.read_text() == "earlier results\n"


def test_journal_of_another_input_of_the_same_size_exits_2(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """Input B with A's journal (same size): exit 2 naming both, nothing sent or written."""
    first = _write(tmp_path / "a.jsonl", [{"id": "a1", "path": "/status/200"}])
    second = _write(tmp_path / "b.jsonl", [{"id": "b1", "path": "/status/201"}])
    assert first.stat().st_size == second.stat().st_size
    journal = tmp_path / "run.journal"
    common = ["--base-url", fault.url, "--journal", str(journal)]
    ran = runner.invoke(app, ["batch", str(first), "-o", str(tmp_path / "a.out"), *common])
    assert ran.exit_code == 0, ran.stderr
    fault.reset()
    result = runner.invoke(app, ["batch", str(second), "-o", str(tmp_path / "b.out"), *common])
    assert result.exit_code == 2
    assert f"belongs to '{first}'" in result.stderr and f"not to '{second}'" in result.stderr
    assert fault.hits("/status/201") == 0 and not (tmp_path / "b.out").exists()
    assert len(_out(tmp_path / "a.out")) == 1


def test_an_earlier_output_that_cannot_be_cut_back_exits_2(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """Resuming when an earlier output became a directory: one error line, no traceback."""
    source = _write(tmp_path / "in.jsonl", [{"id": 1, "path": "/status/200"}])
    journal, old = tmp_path / "run.journal", tmp_path / "old"
    common = ["--base-url", fault.url, "--journal", str(journal)]
    assert runner.invoke(app, ["batch", str(source), "-o", str(old), *common]).exit_code == 0
    with journal.open("a") as fh:  # as if killed before the next checkpoint
        fh.write(json.dumps({"output": str(old), "offset": 0, "lines": []}) + "\n")
    old.unlink()
    old.mkdir()
    (old / ("f" * 200)).write_text("")  # a directory size above the journal's offset
    result = runner.invoke(app, ["batch", str(source), "-o", str(tmp_path / "new"), *common])
    assert result.exit_code == 2
    assert f"error: cannot cut back '{old}': Is a directory" in result.stderr
    assert isinstance(result.exception, SystemExit)


def test_a_resumed_run_still_refuses_an_id_done_before(
    runner: CliRunner, fault: FaultServer, tmp_path: Path
) -> None:
    """Before: a run stopped after line 1 (id 7) and resumed sent line 2 (id 7 again): the
    duplicate check only knew the ids of this run, so a resume sent a request an
    uninterrupted run refuses. After: line 2 is INVALID_REQUEST either way."""
    from flext_api.cli._checkpoint import _Fingerprint

    source = _write(
        tmp_path / "in.jsonl",
        [{"id": 7, "path": "/status/200"}, {"id": 7, "path": "/status/201"}],
    )
    output = tmp_path / "out.jsonl"
    # What a run interrupted right after the checkpoint of line 1 leaves behind.
    done_line = json.dumps({"id": 7, "line": 1, "success": True}) + "\n"
    output.write_text(done_line)
    journal = tmp_path / "run.journal"
    records = [
        _Fingerprint(source.resolve()).header(),
        {"output": str(output.resolve()), "offset": len(done_line), "lines": [1]},
    ]
    journal.write_text("".join(json.dumps(record) + "\n" for record in records))
    resumed = runner.invoke(
        app,
        [
            "batch",
            str(source),
            "-o",
            str(output),
            "--base-url",
            fault.url,
            "--journal",
            str(journal),
        ],
    )
    assert resumed.exit_code == 1, resumed.output
    assert "resuming: 1 line(s) done before" in resumed.stderr
    second = _out(output)[1]
    assert (second["line"], second["error_code"]) == (2, "INVALID_REQUEST")
    assert "duplicate request id 7" in second["error"]
    assert fault.hits("/status/201") == 0
