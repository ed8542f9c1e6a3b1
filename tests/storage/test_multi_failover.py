"""MultiBackendStorage against two real S3 servers: one is killed mid-run and repaired."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from flext_api import RetryConfig
from flext_api.storage import MultiBackendStorage
from tests.servers.storage_servers import ServerProcess, create_s3_bucket, moto_server
from tests.storage.conftest import s3_store

pytestmark = pytest.mark.integration
FAST_RETRY = RetryConfig(max_retries=1, backoff_initial=0.01, backoff_max=0.02)


@pytest.fixture
def servers() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two moto servers of this test's own (the first one gets killed)."""
    primary, secondary = moto_server().start(), moto_server().start()
    yield primary, secondary
    primary.close()
    secondary.close()


@pytest.fixture
async def multi(
    servers: tuple[ServerProcess, ServerProcess],
) -> AsyncIterator[MultiBackendStorage]:
    """Primary-then-async replication over the two servers."""
    backends = [s3_store(s.endpoint, "data", retry=FAST_RETRY) for s in servers]
    storage = MultiBackendStorage(backends)
    yield storage
    await storage.close()


async def _keys(storage: MultiBackendStorage, index: int) -> list[tuple[str, int]]:
    listed = (await storage.backends[index].list_files()).value
    return [(f.path, f.size) for f in listed]


async def test_calls_continue_when_the_primary_dies_and_repair_levels_it(
    servers: tuple[ServerProcess, ServerProcess], multi: MultiBackendStorage
) -> None:
    """Killing the primary fails no call; after it returns, repair makes both listings equal."""
    primary = servers[0]
    failures = []
    for i in range(30):
        if i == 10:
            await multi.flush()
            primary.kill()
        key = f"obj/{i:03d}"
        written = await multi.upload_file(f"payload {i}".encode(), key, {"n": str(i)})
        read = await multi.download_file(key)
        earlier = await multi.download_file(f"obj/{i // 2:03d}")
        for result in (written, read, earlier):
            if result.is_failure:
                failures.append((i, result.error))
        if i == 20:
            assert (await multi.delete_file("obj/005")).is_success
    assert failures == []
    assert multi.missed[0]  # the writes the primary missed are remembered

    primary.start(port=primary.port)
    create_s3_bucket(primary.endpoint, "data")  # moto keeps nothing across a restart
    report = (await multi.repair(0)).value
    assert report.failed == {} and len(report.copied) == 29
    assert await _keys(multi, 0) == await _keys(multi, 1)
    assert multi.missed[0] == set()
    meta = (await multi.backends[0].stat("obj/025")).value.metadata
    assert dict(meta) == {"n": "25"}


async def test_repair_deletes_what_the_source_no_longer_has(
    multi: MultiBackendStorage,
) -> None:
    """An object present only on the target is removed by repair."""
    await multi.backends[0].upload_file(b"stray", "stray.txt")
    await multi.upload_file(b"kept", "kept.txt")
    report = (await multi.repair(0, source=1)).value
    assert report.deleted == ["stray.txt"]
    assert await _keys(multi, 0) == await _keys(multi, 1) == [("kept.txt", 4)]
