"""Benchmark: flext_api.storage's S3Storage against raw obstore on the same S3 server.

Run from the repository root::

    .venv/bin/python bench/storage.py             # 100 MB and 10,000 small objects, 3 rounds
    .venv/bin/python bench/storage.py --quick     # 20 MB and 1,000 objects, for a smoke check

A moto S3 server is started on 127.0.0.1 (a free port) and both contenders talk to it
in the same run, in interleaved rounds (the order alternates each round), so the
server and the machine's load are shared fairly. Workloads:

* **put 100 MB** - a local file uploaded (``upload_file(Path)`` vs ``obstore.put_async``
  with the path; both end in obstore's multipart upload);
* **get 100 MB** - the object streamed back and discarded chunk by chunk
  (``download_stream`` vs ``get_async(...).stream()``);
* **put N small** - N objects of 1 KiB, 64 in flight;
* **get N small** - the same N objects read back whole, 64 in flight.

Reported: seconds (best of the rounds and the spread best..worst) and the ratio
raw/ours of the best times (1.0 = as fast as raw obstore; the target is >= 0.9).
Prints a table and appends one JSON line to ``bench/results/storage.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
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

    async def ours_put_big() -> None:
        assert (await ours.upload_file(big, "big/ours")).is_success

    async def raw_put_big() -> None:
        await obstore.put_async(raw, "big/raw", big)

    async def ours_get_big() -> None:
        stream = (await ours.download_stream("big/ours")).value
        async for _ in stream:
            pass

    async def raw_get_big() -> None:
        result = await obstore.get_async(raw, "big/raw")
        async for _ in result.stream(min_chunk_size=1024 * 1024):
            pass

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
            assert (await ours.download_file("o/" + key)).is_success

        await gather_limited([lambda k=k: get(k) for k in keys])  # type: ignore[misc]

    async def raw_get_small() -> None:
        async def get(key: str) -> None:
            await (await obstore.get_async(raw, "r/" + key)).bytes_async()

        await gather_limited([lambda k=k: get(k) for k in keys])  # type: ignore[misc]

    return {
        f"put {big.stat().st_size // 2**20} MB": (ours_put_big, raw_put_big),
        f"get {big.stat().st_size // 2**20} MB": (ours_get_big, raw_get_big),
        f"put {small} x 1 KiB": (ours_put_small, raw_put_small),
        f"get {small} x 1 KiB": (ours_get_small, raw_get_small),
    }


async def timed(work: Work) -> float:
    start = time.perf_counter()
    await work()
    return time.perf_counter() - start


async def run(endpoint: str, big_mb: int, small: int, rounds: int) -> dict[str, Any]:
    create_s3_bucket(endpoint, "bench")
    ours = S3Storage("bench", endpoint=endpoint, access_key_id="t", secret_access_key="t")
    raw = raw_store(endpoint, "bench")
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.bin"
        with big.open("wb") as out:
            for _ in range(big_mb):
                out.write(os.urandom(2**20))
        table = workloads(ours, raw, big, small)
        times: dict[str, dict[str, list[float]]] = {name: {"ours": [], "raw": []} for name in table}
        for round_no in range(rounds):
            for name, (ours_work, raw_work) in table.items():
                pair = [("ours", ours_work), ("raw", raw_work)]
                for who, work in pair if round_no % 2 == 0 else pair[::-1]:
                    times[name][who].append(await timed(work))
    await ours.close()
    del raw
    return times


def report(times: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    rows = []
    print(f"{'workload':<22} {'ours best (spread)':>24} {'raw best (spread)':>24} {'raw/ours':>9}")
    for name, by in times.items():
        ours, raw = by["ours"], by["raw"]
        ratio = min(raw) / min(ours)
        print(
            f"{name:<22} {min(ours):>9.3f}s ({min(ours):.2f}-{max(ours):.2f}) "
            f"{min(raw):>9.3f}s ({min(raw):.2f}-{max(raw):.2f}) {ratio:>9.2f}"
        )
        rows.append(
            {"workload": name, "ours": ours, "raw": raw, "ratio_raw_over_ours": round(ratio, 3)}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 MB and 1,000 small objects")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big-mb", type=int, default=None, help="size of the big object")
    parser.add_argument("--small", type=int, default=None, help="number of small objects")
    parser.add_argument("--no-save", action="store_true", help="do not append to the results file")
    args = parser.parse_args()
    big_mb, small = (20, 1000) if args.quick else (100, 10_000)
    big_mb, small = args.big_mb or big_mb, args.small or small
    server = moto_server().start()
    try:
        times = asyncio.run(run(server.endpoint, big_mb, small, args.rounds))
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
            "results": rows,
        }
        with RESULTS.open("a") as out:
            out.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # obstore's runtime threads can abort a normal interpreter exit


if __name__ == "__main__":
    main()
