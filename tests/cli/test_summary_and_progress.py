"""The batch summary (histogram, table) and the progress display."""

from __future__ import annotations

import io
import random

import pytest
from rich.console import Console

from flext_api import ErrorCode
from flext_api.cli._progress import BatchDisplay, format_eta
from flext_api.cli._summary import BatchSummary, LatencyHistogram
from flext_api.client.batch._models import BatchProgress, BatchResult
from flext_api.testing import FakeClock


def test_histogram_percentiles_are_within_one_percent() -> None:
    """p50/p95/p99 of 10,000 random durations are within 1 % of the exact values."""
    rng = random.Random(7)
    values = sorted(rng.lognormvariate(2, 1) for _ in range(10_000))
    histogram = LatencyHistogram()
    for value in values:
        histogram.add(value)
    for q in (50, 95, 99):
        exact = values[int(len(values) * q / 100) - 1]
        assert histogram.percentile(q) == pytest.approx(exact, rel=0.01)


def test_histogram_edges() -> None:
    """Nothing recorded gives None; tiny and huge durations land in the end buckets."""
    histogram = LatencyHistogram()
    assert histogram.percentile(50) is None
    histogram.add(0.0)
    assert histogram.percentile(50) == 0.001
    histogram.add(1e12)
    assert histogram.percentile(100) == pytest.approx(0.001 * 1.01**2399.5)


def _table_text(summary: BatchSummary, **kwargs: object) -> str:
    out = io.StringIO()
    Console(file=out, width=60, color_system=None, _environ={}).print(
        summary.table(**kwargs)  # type: ignore[arg-type]
    )
    return out.getvalue()


def test_summary_table() -> None:
    """The table lists outcomes by code (most frequent first) and latency percentiles."""
    summary = BatchSummary()
    for i in range(8):
        summary.add(BatchResult(i, True, 200, duration_ms=10.0, attempts=1))
    summary.add(
        BatchResult(8, False, 500, error_code=ErrorCode.HTTP_STATUS, duration_ms=10.0, attempts=3)
    )
    summary.add(BatchResult(None, False, error_code=ErrorCode.INVALID_REQUEST))
    summary.add(
        BatchResult(10, False, error_code=ErrorCode.HTTP_STATUS, duration_ms=10.0, attempts=1)
    )
    text = _table_text(summary, elapsed=2.0, skipped=4, malformed=1)
    assert [line.rstrip() for line in text.splitlines()] == [
        "batch summary",
        "",
        "  results                      11",
        "  ok                            8",
        "  failed                        3",
        "    HTTP_STATUS                 2",
        "    INVALID_REQUEST             1",
        "  malformed lines               1",
        "  skipped (done before)         4",
        "  retries                       2",
        "  p50 latency             10.0 ms",
        "  p95 latency             10.0 ms",
        "  p99 latency             10.0 ms",
        "  elapsed                   2.0 s",
        "  throughput              6 req/s",
        "",
    ]


def test_empty_summary_table_marks_missing_latency() -> None:
    """With no result, percentiles are '-' and the throughput 0."""
    text = _table_text(BatchSummary(), elapsed=0.0, interrupted=True)
    assert text.startswith("batch interrupted")
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert "p50 latency -" in lines
    assert "throughput 0 req/s" in lines


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "?"), (4.4, "4s"), (185, "3m05s"), (3720, "1h02m")]
)
def test_format_eta(seconds: float | None, text: str) -> None:
    """ETAs read like 12s, 3m05s or 1h02m."""
    assert format_eta(seconds) == text


def _snapshot(done: int, failed: int = 0, paused: int = 0) -> BatchProgress:
    return BatchProgress(
        done=done,
        failed=failed,
        in_flight=2,
        retries=1,
        elapsed=done / 10,
        rate=10.0,
        paused_hosts=paused,
    )


def test_plain_progress_lines_are_throttled() -> None:
    """Without a terminal, a line is printed at most every plain_every seconds, and at exit."""
    out = io.StringIO()
    clock = FakeClock()
    console = Console(file=out, width=200, color_system=None, _environ={})
    with BatchDisplay(console, 100, plain_every=2.0, clock=clock) as display:
        display.update(_snapshot(10))
        clock.advance(2.0)
        display.update(_snapshot(20, failed=1, paused=1))
        display.update(_snapshot(30))
        display.note("line 3: invalid JSON")
    assert out.getvalue() == (
        "batch: 20/100 done, 1 failed, 1 retries, 10 req/s, ETA 8s, 1 host(s) paused\n"
        "line 3: invalid JSON\n"
        "batch: 30/100 done, 0 failed, 1 retries, 10 req/s, ETA 7s\n"
    )


def test_terminal_progress_is_a_live_bar() -> None:
    """On a terminal, a rich bar shows done/total, failures, retries and the rate."""
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None, _environ={})
    with BatchDisplay(console, 50) as display:
        display.update(_snapshot(50, failed=3))
    text = out.getvalue()
    assert "50/50" in text
    assert "failed 3" in text and "retries 1" in text and "10 req/s" in text
