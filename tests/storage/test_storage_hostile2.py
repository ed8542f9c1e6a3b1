"""Storage under races, second pass: a local read racing a new version, local calls
cancelled while their worker thread is still writing, an S3 upload cancelled halfway,
and what a repr may show.

A gate holds one call inside its worker thread until the test has done what it needs
meanwhile, so each race happens in the same order on every run (no sleeps, no timing).
"""

from __future__ import annotations

import asyncio
import re
import threading
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from flext_api.storage import GCSStorage, LocalStorage


class _Gate:
    """Holds the first call of a wrapped method in its thread until :attr:`release`."""

    def __init__(self) -> None:
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def held(*args: Any) -> Any:
            if self.armed:
                self.armed = False
                self.entered.set()
                self.release.wait(30)
            return method(*args)

        return held

    async def reached(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 30)


async def _yield_a_while() -> None:
    """Let every ready task run a few steps (event-loop turns, not time)."""
    for _ in range(20):
        await asyncio.sleep(0)


def _left_behind(root: Path) -> list[str]:
    """Temporary files under ``root``, and the copy's target if it was made."""
    return sorted(p.name for p in root.rglob("*") if p.name.startswith(".flext-tmp-")) + [
        name for name in ("copy",) if (root / name).exists()
    ]


@pytest.fixture
async def local(tmp_path: Path) -> LocalStorage:
    store = LocalStorage(tmp_path)
    assert (await store.upload_file(b"one", "k", {"v": "1"}, content_type="text/one")).is_success
    return store


async def test_stat_racing_a_new_version_reports_that_version_with_its_metadata(
    local: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stat that read the old version's file just before a new version replaced it
    (and its sidecar went) reports the new version's metadata, never none."""
    gate = _Gate()
    monkeypatch.setattr(local, "_read_meta", gate.wrap(local._read_meta))
    gate.armed = True
    stat = asyncio.create_task(local.stat("k"))
    await gate.reached()
    assert (await local.upload_file(b"two", "k", {"v": "2"}, content_type="text/two")).is_success
    gate.release.set()
    info = (await stat).value
    assert (dict(info.metadata), info.content_type) == ({"v": "2"}, "text/two")
    assert info.etag == (await local.stat("k")).value.etag


async def test_stream_racing_a_new_version_pairs_content_and_metadata(
    local: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download opened as a new version lands gets one version's content together
    with that same version's metadata."""
    gate = _Gate()
    monkeypatch.setattr(local, "_read_meta", gate.wrap(local._read_meta))
    gate.armed = True
    opening = asyncio.create_task(local.download_stream("k"))
    await gate.reached()
    assert (await local.upload_file(b"two", "k", {"v": "2"}, content_type="text/two")).is_success
    gate.release.set()
    stream = (await opening).value
    content = await stream.read()
    expected = {b"one": ({"v": "1"}, "text/one"), b"two": ({"v": "2"}, "text/two")}[content]
    assert (dict(stream.info.metadata), stream.info.content_type) == expected


async def test_copy_racing_a_new_source_version_keeps_the_metadata(
    local: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy whose source is replaced while it starts stores one version's content with
    that version's metadata (it used to local the old content with none, for good)."""
    gate = _Gate()
    monkeypatch.setattr(local, "_read_meta", gate.wrap(local._read_meta))
    gate.armed = True
    copy = asyncio.create_task(local.copy_file("k", "copy"))
    await gate.reached()
    assert (await local.upload_file(b"two", "k", {"v": "2"}, content_type="text/two")).is_success
    gate.release.set()
    assert (await copy).is_success
    content = (await local.download_file("copy")).value
    info = (await local.stat("copy")).value
    expected = {b"one": ({"v": "1"}, "text/one"), b"two": ({"v": "2"}, "text/two")}[content]
    assert (dict(info.metadata), info.content_type) == expected


async def test_cancelled_upload_returns_only_after_its_publish_has_finished(
    local: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload cancelled while its worker thread publishes waits for that thread, so
    the local's lock still covers the publish (a writer let in meanwhile had its sidecar
    pruned by the old publish) and the object ends with its own metadata."""
    gate = _Gate()
    monkeypatch.setattr(local, "_prune_meta", gate.wrap(local._prune_meta))
    gate.armed = True
    upload = asyncio.create_task(local.upload_file(b"two", "k", {"v": "2"}))
    await gate.reached()  # published; the old version's sidecar is being removed
    upload.cancel()
    await _yield_a_while()
    returned_early = upload.done()
    lock_held = local._lock.locked()
    gate.release.set()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert not returned_early and lock_held
    info = (await local.stat("k")).value
    assert (await local.download_file("k")).value == b"two"
    assert dict(info.metadata) == {"v": "2"}


async def test_cancelled_copy_leaves_no_temporary_copy(
    local: LocalStorage, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A copy cancelled while its thread runs leaves neither the target nor the
    temporary file the thread went on to write."""
    gate = _Gate()
    monkeypatch.setattr(local, "_read_meta", gate.wrap(local._read_meta))
    gate.armed = True
    copy = asyncio.create_task(local.copy_file("k", "copy"))
    await gate.reached()  # the source is open, the temporary copy not made yet
    copy.cancel()
    await _yield_a_while()
    gate.release.set()
    with pytest.raises(asyncio.CancelledError):
        await copy
    # Every worker thread has ended: nothing is still on its way to the disk.
    await asyncio.get_running_loop().shutdown_default_executor()
    assert _left_behind(tmp_path) == []


async def test_gcs_repr_keeps_the_endpoint_user_info_out() -> None:
    """repr() of a GCS backend names its endpoint without the user info it may carry."""
    store = GCSStorage("bkt", endpoint="http://user:s3cr3t@127.0.0.1:9023/gcs")
    try:
        assert repr(store) == "<GCSStorage gs://bkt endpoint='http://127.0.0.1:9023/gcs'>"
    finally:
        await store.close()


def _multipart_uploads(endpoint: str, bucket: str) -> str:
    """moto's list of the bucket's multipart uploads in progress (S3 XML)."""
    with urllib.request.urlopen(f"{endpoint}/{bucket}?uploads", timeout=10) as response:
        return str(response.read().decode())


def _parts_stored(endpoint: str, bucket: str, key: str) -> int:
    """How many parts the multipart upload of ``key`` holds (0 while there is none)."""
    found = re.search(r"<UploadId>([^<]+)</UploadId>", _multipart_uploads(endpoint, bucket))
    if found is None:
        return 0
    url = f"{endpoint}/{bucket}/{key}?uploadId={found.group(1)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return int(response.read().decode().count("<PartNumber>"))


async def test_s3_cancelled_streamed_upload_leaves_no_parts_behind(
    request: pytest.FixtureRequest,
) -> None:
    """A streamed upload cancelled halfway (its producer stalled, the caller gave up) is
    aborted: no multipart upload is left holding the parts sent so far."""
    from tests.storage.conftest import s3_store

    endpoint = request.getfixturevalue("moto").endpoint
    store = s3_store(endpoint)
    stall = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"\1" * (5 * 1024 * 1024)  # one part each
        await stall.wait()  # never set: the producer stalls for good
        yield b"end"

    try:
        upload = asyncio.create_task(store.upload_file(body(), "stalled.bin"))
        # The three parts are stored (none in flight) before the caller gives up.
        while await asyncio.to_thread(_parts_stored, endpoint, store.bucket, "stalled.bin") < 3:
            assert not upload.done(), upload.result()
            await asyncio.sleep(0.05)
        upload.cancel()
        with pytest.raises(asyncio.CancelledError):
            await upload
        left = await asyncio.to_thread(_multipart_uploads, endpoint, store.bucket)
    finally:
        await store.close()
    assert "<UploadId>" not in left
