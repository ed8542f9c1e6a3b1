"""MultiBackendStorage logic over in-memory backends, one of which can be made to fail."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from flext_api import ErrorCode, FlextApiError, FlextResult
from flext_api.storage import (
    Consistency,
    FileInfo,
    MemoryStorage,
    MultiBackendStorage,
    StorageBackend,
)


class Flaky(MemoryStorage):
    """A memory backend that answers CONNECT_ERROR to everything while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    async def _run(self, operation: str, key: str, call: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.down:
            return FlextResult.fail(
                FlextApiError.from_code(ErrorCode.CONNECT_ERROR, "connection refused")
            )
        return await super()._run(operation, key, call, **kwargs)


async def _chunks() -> AsyncIterator[bytes]:
    yield b"one-"
    yield b"shot"


async def test_primary_write_is_replicated_in_the_background() -> None:
    """A PRIMARY write answers from the first backend and reaches the others after flush."""
    a, b = MemoryStorage(), MemoryStorage()
    multi = MultiBackendStorage([a, b])
    assert (await multi.upload_file(b"x", "k", {"m": "1"})).is_success
    await multi.flush()
    assert (await b.download_file("k")).value == b"x"
    assert dict((await b.stat("k")).value.metadata) == {"m": "1"}


async def test_one_shot_stream_is_spooled_for_failover() -> None:
    """An async-iterator body still reaches the secondary when the primary is down."""
    a, b = Flaky(), MemoryStorage()
    a.down = True
    multi = MultiBackendStorage([a, b])
    assert (await multi.upload_file(_chunks(), "s")).is_success
    assert (await b.download_file("s")).value == b"one-shot"
    assert "s" in multi.missed[0]


async def test_file_object_body_reaches_every_backend_whole() -> None:
    """A file object is read once (spooled): backends writing concurrently each get all
    of it, not a share of one handle's reads."""
    data = bytes(range(256)) * 24_576  # 6 MiB: several reads per backend
    backends = [MemoryStorage(), MemoryStorage(), MemoryStorage()]
    multi = MultiBackendStorage(backends, consistency="all")
    body = io.BytesIO(b"skipped" + data)
    body.seek(7)  # the upload starts where the handle is
    assert (await multi.upload_file(body, "k")).is_success
    assert [(await b.download_file("k")).value == data for b in backends] == [True] * 3


async def test_file_object_body_fails_over_whole() -> None:
    """A primary that read part of a file object and failed: the secondary gets all of it."""

    class Drops(MemoryStorage):
        async def upload_file(self, file: Any, path: str, *args: Any, **kw: Any) -> Any:
            if isinstance(file, os.PathLike):  # the spooled copy
                await asyncio.to_thread(lambda: Path(file).open("rb").close())
            else:
                file.read(1024)
            return FlextResult.fail(FlextApiError.from_code(ErrorCode.CONNECT_ERROR, "reset"))

    data = bytes(range(256)) * 64
    secondary = MemoryStorage()
    multi = MultiBackendStorage([Drops(), secondary])
    assert (await multi.upload_file(io.BytesIO(data), "k")).is_success
    assert (await secondary.download_file("k")).value == data


async def test_all_fails_when_one_backend_refuses() -> None:
    """With ALL, one backend down makes the write fail and records the miss."""
    a, b = MemoryStorage(), Flaky()
    b.down = True
    multi = MultiBackendStorage([a, b], consistency=Consistency.ALL)
    result = await multi.upload_file(b"x", "k")
    assert result.error_code is ErrorCode.STORAGE_ERROR
    assert result.exception is not None and result.exception.details["accepted"] == 1
    assert multi.missed[1] == {"k"}


async def test_quorum_succeeds_with_a_majority() -> None:
    """With QUORUM over three backends, two acceptances are enough."""
    backends = [MemoryStorage(), MemoryStorage(), Flaky()]
    backends[2].down = True  # type: ignore[attr-defined]
    multi = MultiBackendStorage(backends, consistency="quorum")
    assert (await multi.upload_file(b"x", "k")).is_success
    assert multi.missed[2] == {"k"}


async def test_conflict_is_reported_as_such_under_all() -> None:
    """A conditional write refused everywhere keeps the PRECONDITION_FAILED code."""
    a, b = MemoryStorage(), MemoryStorage()
    multi = MultiBackendStorage([a, b], consistency=Consistency.ALL)
    await multi.upload_file(b"x", "k")
    result = await multi.upload_file(b"y", "k", if_none_match=True)
    assert result.error_code is ErrorCode.PRECONDITION_FAILED


async def test_reads_skip_a_backend_that_missed_the_key() -> None:
    """A read goes past a replica that is known to have missed a write to the key."""
    a, b = MemoryStorage(), MemoryStorage()
    multi = MultiBackendStorage([a, b])
    await b.upload_file(b"fresh", "k")
    await a.upload_file(b"stale", "k")
    multi.missed[0].add("k")
    assert (await multi.download_file("k")).value == b"fresh"


async def test_not_found_falls_through_to_the_next_replica() -> None:
    """NOT_FOUND on the first backend is not the answer when another has the object."""
    a, b = MemoryStorage(), MemoryStorage()
    await b.upload_file(b"only here", "k")
    multi = MultiBackendStorage([a, b])
    assert (await multi.download_file("k")).value == b"only here"
    assert (await multi.stat("nope")).error_code is ErrorCode.NOT_FOUND


async def test_spread_reads_rotate_over_replicas() -> None:
    """read='spread' sends successive reads to different backends."""
    a, b = Flaky(), Flaky()
    for backend in (a, b):
        await backend.upload_file(b"x", "k")
    multi = MultiBackendStorage([a, b], read="spread")
    before = (a.calls, b.calls)
    for _ in range(4):
        await multi.download_file("k")
    assert (a.calls - before[0], b.calls - before[1]) == (2, 2)


async def test_breaker_opens_and_skips_a_dead_backend() -> None:
    """After repeated failures the dead backend is skipped without being called."""
    a, b = Flaky(), MemoryStorage()
    await b.upload_file(b"x", "k")
    a.down = True
    multi = MultiBackendStorage([a, b])
    for _ in range(5):
        assert (await multi.download_file("k")).is_success
    assert a.calls == 3  # the breaker opened after three consecutive failures
    assert "0:memory open" in repr(multi)


async def test_health_check_reports_and_recloses_a_breaker() -> None:
    """check_health marks the dead backend, and closes its breaker once it answers again."""
    a, b = Flaky(), MemoryStorage()
    a.down = True
    multi = MultiBackendStorage([a, b])
    for _ in range(3):
        await multi.check_health()
    assert multi.breakers[0].state.value == "open"
    a.down = False
    assert await multi.check_health() == {"0:memory": True, "1:memory": True}
    assert multi.breakers[0].state.value == "closed"
    assert (await multi.health()).is_success


async def test_health_fails_when_no_backend_answers() -> None:
    """health() is a STORAGE_ERROR when every backend is down."""
    a = Flaky()
    a.down = True
    assert (await MultiBackendStorage([a]).health()).error_code is ErrorCode.STORAGE_ERROR


async def test_background_health_checks_stop_on_close() -> None:
    """start_health_checks probes until close()."""
    a = Flaky()
    multi = MultiBackendStorage([a])
    multi.start_health_checks(interval=0.01)
    await multi.flush()
    import asyncio

    for _ in range(200):
        if a.calls:
            break
        await asyncio.sleep(0.01)
    await multi.close()
    assert a.calls >= 1 and multi._health_task is None


async def test_delete_copy_rename_reach_every_backend() -> None:
    """delete, copy and rename are replicated like uploads."""
    a, b = MemoryStorage(), MemoryStorage()
    multi = MultiBackendStorage([a, b])
    await multi.upload_file(b"x", "src")
    assert (await multi.copy_file("src", "dst")).is_success
    assert (await multi.rename_file("dst", "moved")).is_success
    await multi.flush()
    for backend in (a, b):
        assert [f.path for f in (await backend.list_files()).value] == ["moved", "src"]
    assert (await multi.delete_file("src")).is_success
    await multi.flush()
    assert (await b.exists("src")).value is False
    assert [f.path for f in (await multi.list_files()).value] == ["moved"]
    page = (await multi.list_page("", limit=1)).value
    assert [f.path for f in page.files] == ["moved"]


async def test_repair_needs_an_up_to_date_source() -> None:
    """repair fails cleanly when every other backend also missed writes."""
    a, b = MemoryStorage(), MemoryStorage()
    multi = MultiBackendStorage([a, b])
    multi.missed[0].add("k")
    multi.missed[1].add("k")
    assert (await multi.repair(b)).error_code is ErrorCode.STORAGE_ERROR


async def test_presign_uses_the_first_backend_that_can() -> None:
    """presign falls through backends; memory cannot sign, so the error is STORAGE_ERROR."""
    multi = MultiBackendStorage([MemoryStorage()])
    assert (await multi.presign("k")).error_code is ErrorCode.STORAGE_ERROR


def test_needs_a_backend() -> None:
    """An empty backend list is refused at construction."""
    with pytest.raises(ValueError, match="at least one"):
        MultiBackendStorage([])


class SeedStyle(StorageBackend):
    """A backend written the architecture guide's way: only the four abstract calls."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[bytes, dict[str, str]]] = {}

    async def upload_file(
        self, file: Any, path: str, metadata: Mapping[str, str] | None = None, **_: Any
    ) -> FlextResult[str]:
        if not isinstance(file, bytes):
            file = b"".join([chunk async for chunk in file])
        self.data[path] = (file, dict(metadata or {}))
        return FlextResult.ok(f"seed://{path}")

    async def download_file(self, path: str) -> FlextResult[bytes]:
        if path not in self.data:
            return FlextResult.fail("missing", code=ErrorCode.NOT_FOUND)
        return FlextResult.ok(self.data[path][0])

    async def delete_file(self, path: str) -> FlextResult[None]:
        self.data.pop(path, None)
        return FlextResult.ok(None)

    async def list_files(self, prefix: str = "") -> FlextResult[list[FileInfo]]:
        return FlextResult.ok(
            [
                FileInfo(path=k, size=len(v[0]), metadata=v[1])
                for k, v in sorted(self.data.items())
                if k.startswith(prefix)
            ]
        )


async def test_a_seed_style_backend_gets_every_call() -> None:
    """Implementing the four calls is enough for stat, exists, streams, copy, rename, pages."""
    store = SeedStyle()
    async with store:
        await store.upload_file(b"abc", "d/a", {"k": "v"})
        assert (await store.stat("d/a")).value.size == 3
        assert (await store.exists("d/zz")).value is False
        assert (await (await store.download_stream("d/a", chunk_size=2)).value.read()) == b"abc"
        assert (await store.copy_file("d/a", "d/b")).is_success
        assert (await store.rename_file("d/b", "e/c")).is_success
        page = (await store.list_page("", delimiter="/")).value
        assert page.prefixes == ["d/", "e/"]
        assert [f.path async for f in store.iter_files(page_size=1)] == ["d/a", "e/c"]
        assert (await store.health()).is_success
        assert (await store.presign("d/a")).error_code is ErrorCode.STORAGE_ERROR
        assert (await store.download_stream("nope")).error_code is ErrorCode.NOT_FOUND


async def test_failed_body_and_failed_source_are_reported() -> None:
    """A bad body is INVALID_REQUEST; a failed write everywhere returns the first real error."""
    a, b = Flaky(), Flaky()
    a.down = b.down = True
    multi = MultiBackendStorage([a, b])
    assert (await multi.upload_file("text", "k")).error_code is ErrorCode.INVALID_REQUEST  # type: ignore[arg-type]
    assert (await multi.upload_file(b"x", "k")).error_code is ErrorCode.CONNECT_ERROR
    assert (await multi.rename_file("k", "j")).error_code is ErrorCode.CONNECT_ERROR
    assert (await multi.list_page("")).error_code is ErrorCode.CONNECT_ERROR


async def test_replication_failure_is_recorded_as_missed() -> None:
    """A background replication that fails leaves the key in the target's missed set."""
    a, b = MemoryStorage(), Flaky()
    multi = MultiBackendStorage([a, b])
    b.down = True
    await multi.upload_file(b"x", "k")
    await multi.flush()
    assert multi.missed[1] == {"k"}


async def test_repair_reports_what_it_could_not_fix() -> None:
    """repair lists the keys it failed to copy and keeps them missed."""
    a, b = MemoryStorage(), Flaky()
    multi = MultiBackendStorage([a, b])
    await a.upload_file(b"x", "k")
    await b.upload_file(b"y", "stray")
    multi.missed[1].add("k")
    b.down = True
    assert (await multi.repair(1)).error_code is ErrorCode.CONNECT_ERROR
    b.down = False
    report = (await multi.repair(1, source=a)).value
    assert report.copied == ["k"] and report.deleted == ["stray"]
    assert (await multi.repair(b, source=0)).value.copied == []


async def test_repair_fails_when_the_source_cannot_list() -> None:
    """A source that cannot be listed makes repair fail with its error."""
    a, b = Flaky(), MemoryStorage()
    a.down = True
    multi = MultiBackendStorage([a, b])
    assert (await multi.repair(1, source=0)).error_code is ErrorCode.CONNECT_ERROR


async def test_half_open_breaker_is_reset_by_a_good_probe() -> None:
    """A probe that succeeds while the breaker is open resets it at once."""
    a = Flaky()
    multi = MultiBackendStorage([a])
    multi.breakers[0].force_open()
    multi.breakers[0].reset()
    for _ in range(3):
        multi.breakers[0].on_failure(0.0, 0.0)
    assert multi.breakers[0].state.value == "open"
    await multi.check_health()
    assert multi.breakers[0].state.value == "closed"


async def test_stream_download_through_multi() -> None:
    """download_stream reads from the first healthy replica."""
    a = MemoryStorage()
    await a.upload_file(b"streamed", "k")
    stream = (await MultiBackendStorage([a]).download_stream("k")).value
    assert await stream.read() == b"streamed"
    await stream.aclose()


class Broken(SeedStyle):
    """A seed-style backend whose listing and downloads fail."""

    async def list_files(self, prefix: str = "") -> FlextResult[list[FileInfo]]:
        return FlextResult.fail("list down", code=ErrorCode.CONNECT_ERROR)

    async def download_file(self, path: str) -> FlextResult[bytes]:
        return FlextResult.fail("read down", code=ErrorCode.CONNECT_ERROR)


async def test_default_calls_pass_failures_through() -> None:
    """The defaults built on the four calls report the underlying failure."""
    store = Broken()
    assert (await store.stat("a")).error_code is ErrorCode.CONNECT_ERROR
    assert (await store.exists("a")).error_code is ErrorCode.CONNECT_ERROR
    assert (await store.list_page("")).error_code is ErrorCode.CONNECT_ERROR
    assert (await store.copy_file("a", "b")).error_code is ErrorCode.CONNECT_ERROR


async def test_default_stream_and_copy_fail_with_the_download() -> None:
    """download_stream and copy_file fail when the download does."""

    class NoRead(SeedStyle):
        async def download_file(self, path: str) -> FlextResult[bytes]:
            return FlextResult.fail("read down", code=ErrorCode.CONNECT_ERROR)

    store = NoRead()
    await store.upload_file(b"x", "a")
    assert (await store.download_stream("a")).error_code is ErrorCode.CONNECT_ERROR
    assert (await store.copy_file("a", "b")).error_code is ErrorCode.CONNECT_ERROR
    assert (await store.rename_file("a", "b")).error_code is ErrorCode.CONNECT_ERROR
