"""Benchmark: flext_api.storage's S3Storage against raw obstore on the same S3 server.

Run from the repository root::

    .venv/bin/python bench/storage.py             # 100 MB x 10 rounds, 10,000 small x 3
    .venv/bin/python bench/storage.py --quick     # 20 MB and 1,000 objects, for a smoke check

A moto S3 server is started on 127.0.0.1 (a free port) and both contenders talk to it
in the same run, in interleaved rounds (the order alternates each round, so each side
goes first equally often with an even count), so the server and the machine's load are
shared fairly. Both sides use the same store settings (path-style, obstore's retries
off, 5 s connect timeout) and obstore's multipart defaults (5 MiB parts, 12 in flight).
Workloads:

* **put 100 MB** - a local file uploaded (``upload_file(Path)`` vs ``obstore.put_async``
  with the path; both end in obstore's multipart upload);
* **put 100 MB bytes** - the same content from memory (``upload_file(bytes)`` vs
  ``put_async(bytes)``);
* **get 100 MB** - the object streamed back chunk by chunk, sizes counted and checked
  (``download_stream`` vs ``get_async(...).stream()``, 1 MiB chunks);
* **put N small** - N objects of 1 KiB, 64 in flight;
* **get N small** - the same N objects read back whole and checked, 64 in flight.

moto spends about a second of its own CPU per 100 MB put, and on a loaded machine its
scheduling decides most of the spread, so the 100 MB rows run ``--big-rounds`` rounds
(10 by default; about a second each) and the small rows ``--rounds`` (3).

Reported per row: seconds (best of the rounds and the spread best..worst), the ratio
raw/ours of the best and of the median times (1.0 = as fast as raw obstore; the target is
>= 0.9), and the ratio of this process's CPU seconds (all its threads; the S3 server is
another process), which the server's noise touches much less. Prints a table and appends
one JSON line to ``bench/results/storage.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import obstore  # noqa: E402
from obstore.store import S3Store  # noqa: E402
from tests.servers.storage_servers import create_s3_bucket, moto_server  # noqa: E402

from flext_api.storage import S3Storage  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "storage.jsonl"
CONCURRENCY = 64
Work = Callable[[], Awaitable[None]]


def raw_store(endpoint: str, bucket: str) -> S3Store:
    return S3Store(
        bucket,
        endpoint=endpoint,
        access_key_id="t",
        secret_access_key="t",
        region="us-east-1",
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "connect_timeout": timedelta(seconds=5)},
        retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=30)},
    )


async def gather_limited(calls: list[Callable[[], Awaitable[Any]]]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one(call) for call in calls))


def workloads(ours: S3Storage, raw: S3Store, big: Path, small: int) -> dict[str, tuple[Work, Work]]:
    payload = os.urandom(1024)
    keys = [f"small/{i:06d}" for i in range(small)]
    size = big.stat().st_size
    data = big.read_bytes()

    async def ours_put_big() -> None:
        assert (await ours.upload_file(big, "big/ours")).is_success

    async def raw_put_big() -> None:
        await obstore.put_async(raw, "big/raw", big)

    async def ours_put_bytes() -> None:
        assert (await ours.upload_file(data, "big/ours")).is_success

    async def raw_put_bytes() -> None:
        await obstore.put_async(raw, "big/raw", data)

    async def ours_get_big() -> None:
        stream = (await ours.download_stream("big/ours")).value
        got = 0
        async for chunk in stream:
            got += len(chunk)
        assert got == size, (got, size)

    async def raw_get_big() -> None:
        result = await obstore.get_async(raw, "big/raw")
        got = 0
        async for chunk in result.stream(min_chunk_size=1024 * 1024):
            got += len(chunk)
        assert got == size, (got, size)

    async def ours_put_small() -> None:
        async def put(key: str) -> None:
            assert (await ours.upload_file(payload, "o/" + key)).is_success

        await gather_limited([lambda k=k: put(k) for k in keys])  # type: ignore[misc]

    async def raw_put_small() -> None:
        await gather_limited(
            [lambda k=k: obstore.put_async(raw, "r/" + k, payload) for k in keys]  # type: ignore[misc]
        )

    async def ours_get_small() -> None:
        async def get(key: str) -> None:
            assert (await ours.download_file("o/" + key)).value == payload

        await gather_limited([lambda k=k: get(k) for k in keys])  # type: ignore[misc]

    async def raw_get_small() -> None:
        async def get(key: str) -> None:
            assert await (await obstore.get_async(raw, "r/" + key)).bytes_async() == payload

        await gather_limited([lambda k=k: get(k) for k in keys])  # type: ignore[misc]

    mb = size // 2**20
    return {
        f"put {mb} MB": (ours_put_big, raw_put_big),
        f"put {mb} MB bytes": (ours_put_bytes, raw_put_bytes),
        f"get {mb} MB": (ours_get_big, raw_get_big),
        f"put {small} x 1 KiB": (ours_put_small, raw_put_small),
        f"get {small} x 1 KiB": (ours_get_small, raw_get_small),
    }


Sample = tuple[float, float]  # wall seconds, this process's CPU seconds


async def timed(work: Work) -> Sample:
    start, cpu = time.perf_counter(), time.process_time()
    await work()
    return time.perf_counter() - start, time.process_time() - cpu


async def run(
    endpoint: str, big_mb: int, small: int, rounds: int, big_rounds: int
) -> dict[str, dict[str, list[Sample]]]:
    create_s3_bucket(endpoint, "bench")
    ours = S3Storage("bench", endpoint=endpoint, access_key_id="t", secret_access_key="t")
    raw = raw_store(endpoint, "bench")
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.bin"
        with big.open("wb") as out:
            for _ in range(big_mb):
                out.write(os.urandom(2**20))
        table = workloads(ours, raw, big, small)
        times: dict[str, dict[str, list[Sample]]] = {n: {"ours": [], "raw": []} for n in table}
        for round_no in range(max(rounds, big_rounds)):
            for name, (ours_work, raw_work) in table.items():
                if round_no >= (big_rounds if " MB" in name else rounds):
                    continue
                pair = [("ours", ours_work), ("raw", raw_work)]
                for who, work in pair if round_no % 2 == 0 else pair[::-1]:
                    times[name][who].append(await timed(work))
    await ours.close()
    del raw
    return times


def report(times: dict[str, dict[str, list[Sample]]]) -> list[dict[str, Any]]:
    rows = []
    print(
        f"{'workload':<20} {'n':>3} {'ours best (spread)':>22} {'raw best (spread)':>22} "
        f"{'raw/ours best':>13} {'median':>7} {'cpu':>6}"
    )
    for name, by in times.items():
        ours = [wall for wall, _ in by["ours"]]
        raw = [wall for wall, _ in by["raw"]]
        ours_cpu = statistics.median(cpu for _, cpu in by["ours"])
        raw_cpu = statistics.median(cpu for _, cpu in by["raw"])
        best = min(raw) / min(ours)
        median = statistics.median(raw) / statistics.median(ours)
        cpu = raw_cpu / ours_cpu
        print(
            f"{name:<20} {len(ours):>3} {min(ours):>7.3f}s ({min(ours):.2f}-{max(ours):.2f}) "
            f"{min(raw):>7.3f}s ({min(raw):.2f}-{max(raw):.2f}) {best:>13.2f} {median:>7.2f} "
            f"{cpu:>6.2f}"
        )
        rows.append(
            {
                "workload": name,
                "ours": ours,
                "raw": raw,
                "ours_cpu": [c for _, c in by["ours"]],
                "raw_cpu": [c for _, c in by["raw"]],
                "ratio_raw_over_ours": round(best, 3),
                "ratio_median": round(median, 3),
                "ratio_cpu_median": round(cpu, 3),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 MB and 1,000 small objects")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the small-object rows")
    parser.add_argument("--big-rounds", type=int, default=10, help="rounds of the big rows")
    parser.add_argument("--big-mb", type=int, default=None, help="size of the big object")
    parser.add_argument("--small", type=int, default=None, help="number of small objects")
    parser.add_argument("--no-save", action="store_true", help="do not append to the results file")
    args = parser.parse_args()
    big_mb, small = (20, 1000) if args.quick else (100, 10_000)
    big_mb, small = args.big_mb or big_mb, args.small or small
    server = moto_server().start()
    try:
        times = asyncio.run(run(server.endpoint, big_mb, small, args.rounds, args.big_rounds))
    finally:
        server.close()
    rows = report(times)
    if not args.no_save:
        RESULTS.parent.mkdir(exist_ok=True)
        line = {
            "bench": "storage",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": platform.python_version(),
            "obstore": obstore.__version__,
            "rounds": args.rounds,
            "big_rounds": args.big_rounds,
            "results": rows,
        }
        with RESULTS.open("a") as out:
            out.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # obstore's runtime threads can abort a normal interpreter exit


if __name__ == "__main__":
    main()
