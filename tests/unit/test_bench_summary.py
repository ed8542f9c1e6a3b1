"""bench/_summary.py: the headline rows it extracts from each bench's record shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import _summary  # noqa: E402
from _summary import Row, rows_of  # noqa: E402

DATE = "2026-12-01T10:00:00Z"


def one(rows: list[Row], needle: str) -> Row:
    """The single row whose description contains ``needle``."""
    found = [row for row in rows if needle in row.compared]
    assert len(found) == 1, [row.compared for row in rows]
    return found[0]


def test_batch_headline_is_no_plugins_against_raw_gather_with_its_target() -> None:
    """batch: client.batch (no plugins) vs raw gather, target 0.85, spreads from rounds."""
    record = {
        "time": DATE,
        "concurrency": 50,
        "rows": [
            {
                "runner": "asyncio.gather + raw aiohttp",
                "ratio_to_raw": 1.0,
                "rounds_req_s": [80, 100],
            },
            {"runner": "client.batch (no plugins)", "ratio_to_raw": 0.8, "rounds_req_s": [40, 80]},
            {
                "runner": "client.batch (default pipeline)",
                "ratio_to_raw": 0.7,
                "rounds_req_s": [70],
            },
        ],
    }
    row = one(rows_of("batch", record), "no plugins")
    assert (row.ratio, row.target, row.met) == (0.8, 0.85, "**not met**")
    assert row.spread == "ours 0.50, base 0.80"
    assert row.date == "2026-12-01"


def _cache_record(**spreads: float) -> dict[str, Any]:
    ours = {"library": "flext", "hit_ops_s": 300, "miss_ops_s": 50}
    return {
        "time": "2026-11-21T22:20:51+0000",
        "throughput": [
            ours | {f"{k}_spread": v for k, v in spreads.items()},
            {"library": "async-lru", "hit_ops_s": 200, "miss_ops_s": 100},
            {"library": "cashews", "hit_ops_s": 100, "miss_ops_s": 25},
        ],
        "hit_ratio": [{"alpha": 0.9, "exact_lru": 0.4, "flext_tinylfu": 0.5}],
    }


def test_cache_compares_each_path_with_the_fastest_other_library() -> None:
    """cache: hit and miss path ratios are against the fastest other library on that path."""
    rows = rows_of("cache", _cache_record())
    assert one(rows, "hit path").ratio == 1.5
    assert one(rows, "miss path vs async-lru").ratio == 0.5
    assert one(rows, "tinylfu vs exact LRU").ratio == 1.25


def test_cache_new_record_shape_gives_the_spreads() -> None:
    """cache: records with hit_spread/miss_spread show them; old records leave spread empty."""
    assert one(rows_of("cache", _cache_record(hit=0.9, miss=0.8)), "hit path").spread == "ours 0.90"
    assert one(rows_of("cache", _cache_record()), "hit path").spread == ""


@pytest.mark.parametrize(
    ("base", "extra"),
    [("aiohttp", {}), ("aiohttp (equal config)", {"spread": 0.75})],
    ids=["old", "new"],
)
def test_client_throughput_reads_old_and_new_base(base: str, extra: dict[str, float]) -> None:
    """client_throughput: the base is 'aiohttp' in old records, 'aiohttp (equal config)' in new."""
    record = {
        "time": DATE,
        "rows": [
            {"concurrency": 64, "client": base, "ratio_to_aiohttp": 1.0, **extra},
            {"concurrency": 64, "client": "flext (no plugins)", "ratio_to_aiohttp": 1.1, **extra},
            {"concurrency": 64, "client": "flext (default pipeline)", "ratio_to_aiohttp": 0.9},
        ],
    }
    row = one(rows_of("client_throughput", record), "no plugins")
    assert row.compared == f"client, no plugins vs {base}, 64 concurrent, req/s"
    assert row.ratio == 1.1
    assert row.spread == ("ours 0.75, base 0.75" if extra else "")


def test_server_ratio_target_and_spread_from_rounds() -> None:
    """server: the recorded ratio against 0.85, spread from the recorded rounds."""
    record = {
        "time": DATE,
        "generator": "wrk",
        "connections": 32,
        "rounds": {"bare": [90.0, 100.0], "flext": [90.0, 60.0, 80.0]},
        "ratio": 0.9,
    }
    (row,) = rows_of("server", record)
    assert (row.ratio, row.target, row.met) == (0.9, 0.85, "met")
    assert row.spread == "ours 0.67, base 0.90"
    assert "both on uvicorn" in row.compared  # records before the server was recorded
    (served,) = rows_of("server", {**record, "server": "serve"})
    assert "both on flext-api serve" in served.compared
    serve = {"rounds": {"bare": [100.0], "flext": [80.0]}, "ratio": 0.8}
    plain, on_serve = rows_of("server", {**record, "server": "uvicorn", "serve": serve})
    assert ("both on uvicorn" in plain.compared, plain.ratio) == (True, 0.9)
    assert ("both on flext-api serve" in on_serve.compared, on_serve.ratio) == (True, 0.8)
    assert (on_serve.met, on_serve.spread) == ("**not met**", "ours 1.00, base 1.00")


def test_discovery_one_row_per_concurrency() -> None:
    """discovery: service:// over base_url, one row per concurrency, 0.95 the target at 64."""
    record = {
        "time": DATE,
        "client": [{"concurrency": 1, "ratio": 0.7}, {"concurrency": 64, "ratio": 0.8}],
    }
    rows = rows_of("discovery", record)
    assert [(r.ratio, r.target, r.met) for r in rows] == [
        (0.7, None, ""),
        (0.8, 0.95, "**not met**"),
    ]


def test_gateway_ratios_from_best_rounds() -> None:
    """gateway: flext vs minimal proxy, and each cache-hit path vs the uncached proxy
    path (target 2x), from the best req/s."""
    names = {
        "uvicorn+aiohttp minimal": 200.0,
        "flext gateway": 100.0,
        "gateway JWT+limit+cache hit": 120.0,
        "gateway cache hit only": 300.0,
    }
    record = {
        "time": DATE,
        "connections": 64,
        "best": {name: {"rps": rps} for name, rps in names.items()},
        "rounds": {name: [{"rps": rps / 2}, {"rps": rps}] for name, rps in names.items()},
    }
    rows = rows_of("gateway", record)
    assert one(rows, "minimal").ratio == 0.5
    assert one(rows, "minimal").spread == "ours 0.50, base 0.50"
    hit = one(rows, "gateway cache hit vs")
    assert (hit.ratio, hit.target, hit.met) == (3.0, 2.0, "met")
    full = one(rows, "JWT")
    assert (full.ratio, full.target, full.met) == (1.2, 2.0, "**not met**")


def test_gateway_record_without_the_edge_targets() -> None:
    """An older gateway record (no edge targets) still gives its proxy row, alone."""
    names = {"uvicorn+aiohttp minimal": 200.0, "flext gateway": 100.0}
    record = {
        "time": DATE,
        "connections": 64,
        "best": {name: {"rps": rps} for name, rps in names.items()},
        "rounds": {name: [{"rps": rps}] for name, rps in names.items()},
    }
    assert [row.ratio for row in rows_of("gateway", record)] == [0.5]


def test_protocols_websocket_is_against_the_faster_other_client() -> None:
    """protocols: WebSocket vs the faster of aiohttp and websockets, SSE vs httpx-sse."""

    def row(client: str, per_s: float) -> dict[str, Any]:
        return {"client": client, "per_s": per_s, "rounds": [per_s]}

    record = {
        "time": DATE,
        "websocket": [
            row("raw aiohttp", 100),
            row("websockets", 50),
            row("FlextApiClient.websocket", 95),
        ],
        "sse": [row("httpx-sse", 100), row("FlextApiClient.sse", 90)],
        "graphql": [row("gql", 100), row("GraphQLClient", 120)],
    }
    rows = rows_of("protocols", record)
    ws, sse = one(rows, "websocket vs raw aiohttp"), one(rows, ".sse vs httpx-sse")
    assert (ws.ratio, ws.met) == (0.95, "met")
    assert (sse.ratio, sse.target, sse.met) == (0.9, 1.0, "**not met**")
    assert one(rows, "GraphQLClient").target is None


def test_storage_uses_when_and_turns_time_spread_into_speed() -> None:
    """storage: date from 'when', target 0.9, spread = best time / worst time."""
    record = {
        "when": DATE,
        "results": [
            {"workload": "put 100 MB", "ours": [2.0, 4.0], "raw": [1.0], "ratio_raw_over_ours": 0.5}
        ],
    }
    (row,) = rows_of("storage", record)
    assert (row.ratio, row.target, row.date) == (0.5, 0.9, "2026-12-01")
    assert row.spread == "ours 0.50, base 1.00"


def test_container_speed_ratio_against_the_fastest_other() -> None:
    """container: other's time over ours per scenario; (worst-best)/best spread as speed."""
    record = {
        "time": DATE,
        "rows": [
            {"scenario": "request", "contender": "flext", "best_us": 2.0, "spread": 1.0},
            {"scenario": "request", "contender": "svcs", "best_us": 3.0, "spread": 0.0},
            {"scenario": "request", "contender": "dishka", "best_us": 4.0, "spread": 0.0},
        ],
    }
    (row,) = rows_of("container", record)
    assert "vs svcs" in row.compared
    assert (row.ratio, row.spread) == (1.5, "ours 0.50, base 1.00")


def test_events_rate_ratio_against_blinker() -> None:
    """events: EventBus rate over blinker's per handler count; (best-worst)/best spread."""
    record = {
        "time": DATE,
        "rows": [
            {"handlers": 3, "contender": "flext EventBus", "events_per_s": 150, "spread": 0.25},
            {"handlers": 3, "contender": "blinker", "events_per_s": 100, "spread": 0.0},
        ],
    }
    (row,) = rows_of("events", record)
    assert (row.ratio, row.spread) == (1.5, "ours 0.75, base 1.00")


def test_unknown_bench_lists_its_numeric_ratio_fields() -> None:
    """An unknown bench: every numeric *ratio* field by its path, nothing else."""
    record = {
        "time": DATE,
        "ratio": 1.2,
        "rows": [{"x_ratio": 0.5, "ratio_name": "no", "req_s": 9}],
    }
    rows = rows_of("newbench", record)
    assert [(r.compared, r.ratio) for r in rows] == [("ratio", 1.2), ("rows[0].x_ratio", 0.5)]


def test_summarize_reads_the_last_line_of_each_file(tmp_path: Path) -> None:
    """summarize: only the last record counts, one table row per headline ratio."""
    lines = [{"time": "2026-01-01", "client": [{"concurrency": 1, "ratio": r}]} for r in (0.1, 0.7)]
    (tmp_path / "discovery.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + "\n")
    page = _summary.summarize(tmp_path)
    assert (
        "| discovery | client, service:// vs plain base_url, 1 concurrent, req/s | 0.70 |" in page
    )
    assert "0.10" not in page


def test_script_names_the_file_whose_record_does_not_fit(tmp_path: Path) -> None:
    """Running the script on a record its extractor cannot read fails naming the file."""
    (tmp_path / "server.jsonl").write_text(json.dumps({"time": DATE}) + "\n")
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "_summary.py"),
            "--results",
            str(tmp_path),
            "--output",
            str(tmp_path / "R.md"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "server.jsonl" in done.stderr
    assert not (tmp_path / "R.md").exists()
