"""One markdown table of the latest headline ratios of every bench: ``bench/RESULTS.md``.

Reads the LAST JSON line of each ``bench/results/<name>.jsonl`` and writes one row per
headline ratio: what is compared, the ratio (ours over the base, as speed: > 1 = ours
faster), the target where the bench states one, met or not, the spread of the rounds
where recorded (worst round / best round, as speed: 1.00 = steady) and the date of the
run. Each known bench has its own extractor; an unknown bench is listed by the numeric
``*ratio*`` fields of its record. Not a benchmark itself: ``make bench`` runs it after
the benches.

Run: .venv/bin/python bench/_summary.py [--results DIR] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
Record = dict[str, Any]


@dataclass(frozen=True)
class Row:
    """One headline ratio of one bench run."""

    bench: str
    compared: str
    ratio: float
    target: float | None = None
    spread: str = ""
    date: str = ""

    @property
    def met(self) -> str:
        """``met`` / ``not met`` against the target, empty without one."""
        if self.target is None:
            return ""
        return "met" if self.ratio >= self.target else "**not met**"


def steadiness(rates: list[float]) -> float:
    """Worst round over best round of a list of rates (1.0 = every round alike)."""
    return min(rates) / max(rates)


def spread_of(**named: float | None) -> str:
    """``ours 0.93, base 0.88`` from worst/best figures (``None`` ones left out)."""
    return ", ".join(f"{name} {value:.2f}" for name, value in named.items() if value is not None)


def by(rows: list[Record], key: str) -> dict[Any, Record]:
    """Rows of a record indexed by one of their fields."""
    return {row[key]: row for row in rows}


# -- one extractor per known bench: record -> rows (bench and date are filled in later) --


def batch(record: Record) -> Iterator[Row]:
    """client.batch (no plugins; default pipeline) vs a hand-made gather over raw aiohttp."""
    runs = by(record["rows"], "runner")
    base = runs["asyncio.gather + raw aiohttp"]
    for name, target in (
        ("client.batch (no plugins)", 0.85),
        ("client.batch (default pipeline)", None),
    ):
        row = runs[name]
        yield Row(
            "batch",
            f"{name} vs asyncio.gather + raw aiohttp, {record['concurrency']} concurrent, req/s",
            row["ratio_to_raw"],
            target,
            spread_of(ours=steadiness(row["rounds_req_s"]), base=steadiness(base["rounds_req_s"])),
        )


def cache(record: Record) -> Iterator[Row]:
    """AsyncSmartCache hit and miss path vs the fastest other library; TinyLFU vs exact LRU."""
    ours, *others = record["throughput"]
    for path in ("hit", "miss"):
        rival = max(others, key=lambda row: row[f"{path}_ops_s"])
        yield Row(
            "cache",
            f"AsyncSmartCache {path} path vs {rival['library']} (fastest other), ops/s",
            round(ours[f"{path}_ops_s"] / rival[f"{path}_ops_s"], 3),
            spread=spread_of(ours=ours.get(f"{path}_spread"), base=rival.get(f"{path}_spread")),
        )
    for zipf in record["hit_ratio"]:
        yield Row(
            "cache",
            f"hit ratio, tinylfu vs exact LRU, Zipf alpha {zipf['alpha']}, cache 1 % of keys",
            round(zipf["flext_tinylfu"] / zipf["exact_lru"], 3),
        )


def client_throughput(record: Record) -> Iterator[Row]:
    """FlextApiClient (no plugins; default pipeline) vs raw aiohttp at each concurrency."""
    base = "aiohttp (equal config)"
    if not any(row["client"] == base for row in record["rows"]):
        base = "aiohttp"  # records before the equal-config base was added
    cells = {(row["concurrency"], row["client"]): row for row in record["rows"]}
    for conc in sorted({row["concurrency"] for row in record["rows"]}):
        for name in ("flext (default pipeline)", "flext (no plugins)"):
            row = cells[conc, name]
            yield Row(
                "client_throughput",
                f"client, {name.removeprefix('flext (').rstrip(')')} vs {base}, "
                f"{conc} concurrent, req/s",
                row["ratio_to_aiohttp"],
                spread=spread_of(ours=row.get("spread"), base=cells[conc, base].get("spread")),
            )


def server(record: Record) -> Iterator[Row]:
    """create_fastapi_app vs a bare FastAPI app, hello world on one worker: a row for the
    record's ``server`` (plain uvicorn in records that do not say) and one for ``serve``
    (flext-api serve) when the run measured it too."""
    parts = [(record.get("server", "uvicorn"), record)]
    if isinstance(record.get("serve"), dict):
        parts.append(("serve", record["serve"]))
    for server, figures in parts:
        on = "flext-api serve" if server == "serve" else "uvicorn"
        rounds = figures["rounds"]
        yield Row(
            "server",
            f"create_fastapi_app() vs bare FastAPI, both on {on}, {record['generator']} "
            f"-c{record['connections']}, req/s",
            figures["ratio"],
            0.85,
            spread_of(ours=steadiness(rounds["flext"]), base=steadiness(rounds["bare"])),
        )


def discovery(record: Record) -> Iterator[Row]:
    """Client over service:// (registry of three) vs the same client on a plain base URL."""
    for row in record["client"]:
        yield Row(
            "discovery",
            f"client, service:// vs plain base_url, {row['concurrency']} concurrent, req/s",
            row["ratio"],
            0.95 if row["concurrency"] == 64 else None,
        )


def gateway(record: Record) -> Iterator[Row]:
    """flext gateway vs a minimal uvicorn proxy; each cache-hit path (the cache alone, and
    behind JWT + a Redis limit) vs the uncached proxy path (target 2x)."""
    best, rounds = record["best"], record["rounds"]

    def pair(ours: str, base: str, compared: str, target: float | None = None) -> Row | None:
        if ours not in best or base not in best:
            return None  # an older record without this target
        return Row(
            "gateway",
            f"{compared}, wrk -c{record['connections']}, req/s",
            round(best[ours]["rps"] / best[base]["rps"], 3),
            target,
            spread=spread_of(
                ours=steadiness([r["rps"] for r in rounds[ours]]),
                base=steadiness([r["rps"] for r in rounds[base]]),
            ),
        )

    rows = (
        pair(
            "flext gateway",
            "uvicorn+aiohttp minimal",
            "flext gateway vs minimal uvicorn+aiohttp proxy",
        ),
        pair(
            "gateway cache hit only",
            "flext gateway",
            "gateway cache hit vs gateway uncached",
            2.0,
        ),
        pair(
            "gateway JWT+limit+cache hit",
            "flext gateway",
            "gateway JWT+Redis limit+cache hit vs gateway uncached",
            2.0,
        ),
    )
    yield from (row for row in rows if row is not None)


def protocols(record: Record) -> Iterator[Row]:
    """WebSocket, SSE and GraphQL clients vs the libraries they are measured against."""
    for kind, ours, target in (
        ("websocket", "FlextApiClient.websocket", 0.9),
        ("sse", "FlextApiClient.sse", 1.0),
        ("graphql", "GraphQLClient", None),
    ):
        rows = by(record[kind], "client")
        mine = rows.pop(ours)
        rival = max(rows.values(), key=lambda row: row["per_s"])  # the faster of the others
        yield Row(
            "protocols",
            f"{ours} vs {rival['client']}"
            + (" (faster other)" if len(rows) > 1 else "")
            + ", per s",
            round(mine["per_s"] / rival["per_s"], 3),
            target,
            spread_of(ours=steadiness(mine["rounds"]), base=steadiness(rival["rounds"])),
        )


def storage(record: Record) -> Iterator[Row]:
    """S3Storage vs raw obstore on one moto S3 server, per workload (best times)."""
    for row in record["results"]:
        yield Row(
            "storage",
            f"S3Storage vs raw obstore, {row['workload']}, time",
            row["ratio_raw_over_ours"],
            0.9,
            # Times: the slowest round over the fastest, turned into speed (best/worst).
            spread_of(
                ours=min(row["ours"]) / max(row["ours"]), base=min(row["raw"]) / max(row["raw"])
            ),
        )


def container(record: Record) -> Iterator[Row]:
    """FlextContainer vs the fastest of svcs and dishka, per scenario (time per resolve)."""
    for scenario in dict.fromkeys(row["scenario"] for row in record["rows"]):
        rows = by([r for r in record["rows"] if r["scenario"] == scenario], "contender")
        mine = rows.pop("flext")
        rival = min(rows.values(), key=lambda row: row["best_us"])
        yield Row(
            "container",
            f"FlextContainer vs {rival['contender']} (fastest other), {scenario} resolve, time",
            round(rival["best_us"] / mine["best_us"], 3),
            # spread recorded as (worst - best) / best of the times
            spread=spread_of(ours=1 / (1 + mine["spread"]), base=1 / (1 + rival["spread"])),
        )


def events(record: Record) -> Iterator[Row]:
    """EventBus vs blinker, publish to 1 and to 3 sync handlers (events/s)."""
    cells = {(row["handlers"], row["contender"]): row for row in record["rows"]}
    for handlers in sorted({row["handlers"] for row in record["rows"]}):
        mine, rival = cells[handlers, "flext EventBus"], cells[handlers, "blinker"]
        yield Row(
            "events",
            f"EventBus vs blinker, {handlers} sync handler(s), events/s",
            round(mine["events_per_s"] / rival["events_per_s"], 3),
            # spread recorded as (best - worst) / best of the rates
            spread=spread_of(ours=1 - mine["spread"], base=1 - rival["spread"]),
        )


EXTRACTORS: dict[str, Callable[[Record], Iterator[Row]]] = {
    "batch": batch,
    "cache": cache,
    "client_throughput": client_throughput,
    "container": container,
    "discovery": discovery,
    "events": events,
    "gateway": gateway,
    "protocols": protocols,
    "server": server,
    "storage": storage,
}


def generic(name: str, record: Record) -> Iterator[Row]:
    """Every numeric field whose key contains ``ratio``, named by its path in the record."""

    def walk(value: Any, path: str) -> Iterator[Row]:
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if (
                    "ratio" in str(key)
                    and isinstance(item, int | float)
                    and not isinstance(item, bool)
                ):
                    yield Row(name, where, float(item))
                else:
                    yield from walk(item, where)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(item, f"{path}[{index}]")

    yield from walk(record, "")


def rows_of(name: str, record: Record) -> list[Row]:
    """The headline rows of one record, dated; unknown benches listed generically."""
    date = str(record.get("time", record.get("when", "")))[:10]
    extractor = EXTRACTORS.get(name)
    rows = list(extractor(record) if extractor else generic(name, record))
    return [Row(name, r.compared, r.ratio, r.target, r.spread, date) for r in rows]


def last_record(path: Path) -> Record | None:
    """The last non-empty JSON line of a results file (``None`` when it has none)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        return None
    record = json.loads(lines[-1])
    if not isinstance(record, dict):
        raise ValueError(f"{path.name}: the last line is not a JSON object")
    return record


HEADER = """# Benchmark results

The latest run of each `bench/*.py`, regenerated by `make bench` (which runs every bench,
appends one JSON line per bench to `bench/results/<name>.jsonl`, then writes this file
from the last line of each; `python bench/_summary.py` rewrites it alone). Every ratio is
measured within one run: ours and the base on the same machine, in interleaved rounds,
best round of each. **Ratio** is ours over the base as speed (> 1 = ours faster; for
times, the base's time over ours). **Spread** is the worst round over the best round of
each side (1.00 = steady rounds), where the bench records its rounds. A target is shown
where the bench states one.
"""


def render(rows: list[Row]) -> str:
    """The markdown page: header and one table."""
    lines = [
        HEADER,
        "| bench | compared | ratio | target | met | spread (worst/best) | date |",
        "|---|---|--:|--:|---|---|---|",
    ]
    for row in rows:
        target = f">= {row.target:g}" if row.target is not None else ""
        lines.append(
            f"| {row.bench} | {row.compared} | {row.ratio:.2f} | {target} | {row.met} "
            f"| {row.spread} | {row.date} |"
        )
    return "\n".join(lines) + "\n"


def summarize(results: Path) -> str:
    """The page for every ``*.jsonl`` under ``results`` (sorted by bench name)."""
    rows: list[Row] = []
    for path in sorted(results.glob("*.jsonl")):
        try:
            record = last_record(path)
            if record is not None:
                rows.extend(rows_of(path.stem, record))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{path.name}: {exc!r}") from exc
    return render(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    try:
        page = summarize(args.results)
    except ValueError as exc:
        sys.exit(f"bench summary: a last record is not in the shape its extractor reads: {exc}")
    args.output.write_text(page, encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
