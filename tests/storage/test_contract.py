"""The storage contract: the same behaviour from every backend (local, memory, S3 on moto,
Azure on Azurite, GCS on its emulator)."""

from __future__ import annotations

import array
import asyncio
import hashlib
import io
import os
import threading
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from flext_api import ErrorCode
from flext_api.storage import ByteStream, InvalidPathError, StorageBackend

pytestmark = pytest.mark.integration


async def _pieces(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_round_trip_bytes(store: StorageBackend) -> None:
    """Bytes uploaded to a path download unchanged."""
    assert (await store.upload_file(b"hello world", "docs/hello.txt")).is_success
    assert (await store.download_file("docs/hello.txt")).value == b"hello world"


async def test_upload_returns_the_object_url(store: StorageBackend) -> None:
    """upload_file's value is the object's URL, ending in its key."""
    url = (await store.upload_file(b"x", "a/b.bin")).value
    assert url.endswith("a/b.bin") and url.split(":", 1)[0] in {"file", "memory", "s3", "az", "gs"}


async def test_upload_from_async_iterator(store: StorageBackend) -> None:
    """An async iterator of bytes is uploaded in order."""
    assert (await store.upload_file(_pieces(b"ab", b"", b"cd"), "it.bin")).is_success
    assert (await store.download_file("it.bin")).value == b"abcd"


async def test_upload_from_file_object_and_path(store: StorageBackend, tmp_path: Path) -> None:
    """A binary file object and a local Path are both uploaded whole."""
    source = tmp_path / "src.bin"
    source.write_bytes(b"from a path")
    assert (await store.upload_file(source, "p.bin")).is_success
    assert (await store.upload_file(io.BytesIO(b"from a file"), "f.bin")).is_success
    assert (await store.download_file("p.bin")).value == b"from a path"
    assert (await store.download_file("f.bin")).value == b"from a file"


async def test_upload_from_bytearray_and_memoryviews(store: StorageBackend) -> None:
    """A bytearray, a typed memoryview and a strided memoryview upload their exact bytes."""
    words = array.array("H", [1, 2, 515])
    strided = memoryview(b"a-b-c-")[::2]
    assert (await store.upload_file(bytearray(b"from a bytearray"), "ba.bin")).is_success
    assert (await store.upload_file(memoryview(words), "mv.bin")).is_success
    assert (await store.upload_file(strided, "st.bin")).is_success
    assert (await store.download_file("ba.bin")).value == b"from a bytearray"
    assert (await store.download_file("mv.bin")).value == words.tobytes()
    assert (await store.stat("mv.bin")).value.size == 6
    assert (await store.download_file("st.bin")).value == b"abc"


async def test_conditional_write_from_path_and_file_object(
    store: StorageBackend, tmp_path: Path
) -> None:
    """if_none_match works with a Path and a file object body, as with bytes."""
    source = tmp_path / "src.bin"
    source.write_bytes(b"from a path")
    handle = io.BytesIO(b"skip:from a file")
    handle.seek(5)
    assert (await store.upload_file(source, "cp.bin", if_none_match=True)).is_success
    assert (await store.upload_file(handle, "cf.bin", if_none_match=True)).is_success
    lost = await store.upload_file(source, "cf.bin", if_none_match=True)
    assert lost.error_code is ErrorCode.PRECONDITION_FAILED
    assert (await store.download_file("cp.bin")).value == b"from a path"
    assert (await store.download_file("cf.bin")).value == b"from a file"


async def test_text_body_is_refused(store: StorageBackend) -> None:
    """A str body is INVALID_REQUEST (ambiguous: text or file name), and nothing is written."""
    result = await store.upload_file("text", "t.txt")  # type: ignore[arg-type]
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert (await store.exists("t.txt")).value is False


async def test_stat_reports_size_type_and_metadata(store: StorageBackend) -> None:
    """stat gives the size, content type, ETag and the user metadata given at upload."""
    await store.upload_file(b"{}", "m/data.json", {"owner": "team_a", "Tier": "gold"})
    info = (await store.stat("m/data.json")).value
    assert (info.path, info.size, info.content_type) == ("m/data.json", 2, "application/json")
    assert dict(info.metadata) == {"owner": "team_a", "tier": "gold"}
    assert info.etag


async def test_explicit_content_type_wins(store: StorageBackend) -> None:
    """content_type= is stored as given and returned by downloads."""
    await store.upload_file(b"<b/>", "page", content_type="text/html")
    stream = (await store.download_stream("page")).value
    assert stream.info.content_type == "text/html"
    assert await stream.read() == b"<b/>"


async def test_bad_metadata_is_refused(store: StorageBackend) -> None:
    """A metadata name with a '-' (not portable to Azure) is INVALID_REQUEST."""
    result = await store.upload_file(b"x", "k", {"x-bad": "1"})
    assert result.error_code is ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize("value", [" lead", "trail ", " "])
async def test_metadata_value_with_outer_spaces_is_refused(
    store: StorageBackend, value: str
) -> None:
    """Headers lose outer spaces (S3 strips them, Azure refuses the signature): INVALID_REQUEST."""
    result = await store.upload_file(b"x", "k", {"m": value})
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert (await store.exists("k")).value is False


async def test_metadata_names_differing_only_in_case_are_refused(store: StorageBackend) -> None:
    """Names come back lower-cased, so {"Tag": .., "tag": ..} would keep one of two
    values silently: INVALID_REQUEST, nothing written."""
    result = await store.upload_file(b"x", "k", {"Tag": "a", "tag": "b"})
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert (await store.exists("k")).value is False


async def test_list_with_prefix(store: StorageBackend) -> None:
    """list_files returns exactly the keys under the prefix, sorted."""
    for key in ["a/2", "a/1", "b/1", "ab"]:
        await store.upload_file(b"x", key)
    listed = (await store.list_files("a/")).value
    assert [f.path for f in listed] == ["a/1", "a/2"]
    assert [f.size for f in listed] == [1, 1]


async def test_list_with_delimiter(store: StorageBackend) -> None:
    """With delimiter '/', keys below the next '/' roll up into prefixes."""
    for key in ["d/x/1", "d/x/2", "d/y/1", "d/top"]:
        await store.upload_file(b"x", key)
    page = (await store.list_page("d/", delimiter="/")).value
    assert [f.path for f in page.files] == ["d/top"]
    assert page.prefixes == ["d/x/", "d/y/"]
    assert page.next_token is None


async def test_list_prefix_is_a_string_prefix(store: StorageBackend) -> None:
    """A prefix need not end at a '/': every key that starts with it is listed."""
    for key in ["2024/q1.csv", "2024/q2.csv", "2024/summary", "20245/a", "2025/x"]:
        await store.upload_file(b"x", key)
    listed = {p: [f.path for f in (await store.list_files(p)).value] for p in ("2024/q", "202")}
    assert listed["2024/q"] == ["2024/q1.csv", "2024/q2.csv"]
    assert listed["202"] == ["2024/q1.csv", "2024/q2.csv", "2024/summary", "20245/a", "2025/x"]
    page = (await store.list_page("2024", delimiter="/")).value
    assert (page.files, page.prefixes) == ([], ["2024/", "20245/"])


@pytest.mark.slow
@pytest.mark.timeout(900)  # the GCS emulator rewrites its index on each of the 1,050 writes
async def test_pagination_past_1000_keys(store: StorageBackend) -> None:
    """1,050 keys come back complete over pages of at most 1,000, in order."""
    keys = [f"many/{i:05d}" for i in range(1050)]
    gate = asyncio.Semaphore(32)

    async def put(key: str) -> None:
        async with gate:
            assert (await store.upload_file(b"", key)).is_success

    await asyncio.gather(*(put(key) for key in keys))
    first = (await store.list_page("many/")).value
    assert len(first.files) == 1000 and first.next_token == "many/00999"
    second = (await store.list_page("many/", start_after=first.next_token)).value
    assert [f.path for f in second.files] == keys[1000:] and second.next_token is None
    assert [f.path for f in (await store.list_files("many/")).value] == keys


async def test_if_none_match_refuses_an_existing_object(store: StorageBackend) -> None:
    """if_none_match on an existing key is PRECONDITION_FAILED and keeps the old content."""
    await store.upload_file(b"first", "c.txt")
    result = await store.upload_file(b"second", "c.txt", if_none_match=True)
    assert result.error_code is ErrorCode.PRECONDITION_FAILED
    assert (await store.download_file("c.txt")).value == b"first"


async def test_if_none_match_creates_an_absent_object(store: StorageBackend) -> None:
    """if_none_match on an absent key writes it."""
    assert (await store.upload_file(b"new", "n.txt", if_none_match=True)).is_success
    assert (await store.download_file("n.txt")).value == b"new"


async def test_if_match_with_a_stale_etag_fails(store: StorageBackend) -> None:
    """if_match with the ETag of an older version is PRECONDITION_FAILED."""
    await store.upload_file(b"v1", "e.txt")
    old = (await store.stat("e.txt")).value.etag
    await asyncio.sleep(0.01)  # distinct modification times on coarse filesystems
    await store.upload_file(b"v2!", "e.txt")
    result = await store.upload_file(b"v3", "e.txt", if_match=old)
    assert result.error_code is ErrorCode.PRECONDITION_FAILED
    assert (await store.download_file("e.txt")).value == b"v2!"


async def test_if_match_with_the_current_etag_writes(store: StorageBackend) -> None:
    """if_match with the current ETag replaces the object."""
    await store.upload_file(b"v1", "e2.txt")
    current = (await store.stat("e2.txt")).value.etag
    assert (await store.upload_file(b"v2", "e2.txt", if_match=current)).is_success
    assert (await store.download_file("e2.txt")).value == b"v2"


async def test_missing_object_is_not_found(store: StorageBackend) -> None:
    """download, stream and stat of an absent key fail with NOT_FOUND; exists is False."""
    assert (await store.download_file("nope")).error_code is ErrorCode.NOT_FOUND
    assert (await store.download_stream("nope")).error_code is ErrorCode.NOT_FOUND
    assert (await store.stat("nope")).error_code is ErrorCode.NOT_FOUND
    assert (await store.exists("nope")).value is False


@pytest.mark.parametrize(
    "bad", ["../escape", "/etc/passwd", "a/../../b", "a//b", "ctl\x00x", "a\\b", "", "./a"]
)
async def test_bad_paths_are_refused_and_nothing_is_written(
    store: StorageBackend, bad: str
) -> None:
    """A traversal, absolute or control-character path is INVALID_REQUEST; no write happens."""
    result = await store.upload_file(b"x", bad)
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert isinstance(result.exception, InvalidPathError)
    assert (await store.list_files()).value == []


async def test_delete_removes_and_is_idempotent(store: StorageBackend) -> None:
    """delete_file removes the object; deleting it again still succeeds."""
    await store.upload_file(b"x", "gone.txt")
    assert (await store.delete_file("gone.txt")).is_success
    assert (await store.exists("gone.txt")).value is False
    assert (await store.delete_file("gone.txt")).is_success


async def test_copy_keeps_content_and_metadata(store: StorageBackend) -> None:
    """copy_file duplicates content and metadata; the source stays."""
    await store.upload_file(b"data", "src.txt", {"k": "v"})
    assert (await store.copy_file("src.txt", "dst.txt")).is_success
    assert (await store.download_file("dst.txt")).value == b"data"
    assert dict((await store.stat("dst.txt")).value.metadata) == {"k": "v"}
    assert (await store.exists("src.txt")).value is True


async def test_copy_without_overwrite_refuses_an_existing_target(store: StorageBackend) -> None:
    """copy_file(overwrite=False) onto an existing key is PRECONDITION_FAILED."""
    await store.upload_file(b"a", "one")
    await store.upload_file(b"b", "two")
    result = await store.copy_file("one", "two", overwrite=False)
    assert result.error_code is ErrorCode.PRECONDITION_FAILED
    assert (await store.download_file("two")).value == b"b"


async def test_rename_moves_the_object(store: StorageBackend) -> None:
    """rename_file makes the object appear under the new key only."""
    await store.upload_file(b"data", "old/name")
    assert (await store.rename_file("old/name", "new/name")).is_success
    assert [f.path for f in (await store.list_files()).value] == ["new/name"]


async def test_rename_without_overwrite(store: StorageBackend) -> None:
    """rename_file(overwrite=False) moves to a free key, and refuses an existing one."""
    await store.upload_file(b"a", "src", {"m": "1"})
    await store.upload_file(b"b", "taken")
    refused = await store.rename_file("src", "taken", overwrite=False)
    assert refused.error_code is ErrorCode.PRECONDITION_FAILED
    assert (await store.download_file("taken")).value == b"b"
    assert (await store.rename_file("src", "free", overwrite=False)).is_success
    assert (await store.download_file("free")).value == b"a"
    assert dict((await store.stat("free")).value.metadata) == {"m": "1"}
    assert (await store.exists("src")).value is False


async def test_upload_from_unseekable_file_object(store: StorageBackend) -> None:
    """A binary file object that cannot seek (a pipe) is uploaded whole."""
    data = bytes(range(256)) * 1024
    read_end, write_end = os.pipe()

    def feed() -> None:
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        with os.fdopen(read_end, "rb") as pipe:
            assert (await store.upload_file(pipe, "piped.bin")).is_success
    finally:
        writer.join()
    assert (await store.download_file("piped.bin")).value == data


async def test_download_stream_yields_chunks(store: StorageBackend) -> None:
    """download_stream yields the content in chunks no bigger than asked, with its info."""
    data = bytes(range(256)) * 4096  # 1 MiB
    await store.upload_file(data, "chunks.bin")
    stream = (await store.download_stream("chunks.bin", chunk_size=64 * 1024)).value
    assert isinstance(stream, ByteStream)
    assert stream.info.size == len(data)
    assert b"".join([chunk async for chunk in stream]) == data


async def test_download_stream_stopped_early_frees_the_store(store: StorageBackend) -> None:
    """A stream closed after its first chunk leaves the store serving the object again."""
    data = bytes(range(256)) * 8192  # 2 MiB: several chunks
    await store.upload_file(data, "early.bin")
    stream = (await store.download_stream("early.bin", chunk_size=64 * 1024)).value
    first = await anext(aiter(stream))
    await stream.aclose()
    assert data.startswith(first)
    assert (await store.download_file("early.bin")).value == data


class _PeakRss:
    """Samples this process's RSS in a thread; ``growth`` is the peak over the start."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.start = self.peak = int(self._proc.memory_info().rss)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, int(self._proc.memory_info().rss))

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


BIG = 200 * 1024 * 1024
_BLOCK = hashlib.sha256(b"seed").digest() * (1024 * 1024 // 32)


async def _big_body() -> AsyncIterator[bytes]:
    for index in range(BIG // len(_BLOCK)):
        yield index.to_bytes(8, "big") + _BLOCK[8:]


@pytest.mark.slow
@pytest.mark.parametrize("store", ["local", "s3", "azure", "gcs"], indirect=True)
async def test_200_mb_streams_both_ways_in_constant_memory(store: StorageBackend) -> None:
    """200 MB go up from an async iterator and come back streamed, RSS growing < 64 MiB."""
    expected = hashlib.sha256()
    async for chunk in _big_body():
        expected.update(chunk)
    with _PeakRss() as rss:
        assert (await store.upload_file(_big_body(), "big.bin")).is_success
        stream = (await store.download_stream("big.bin")).value
        got, size = hashlib.sha256(), 0
        async for chunk in stream:
            got.update(chunk)
            size += len(chunk)
    assert size == BIG and got.digest() == expected.digest()
    assert rss.growth < 64 * 1024 * 1024, f"RSS grew {rss.growth / 2**20:.0f} MiB"


@pytest.mark.parametrize("store", ["s3", "azure"], indirect=True)
async def test_presigned_get_url_serves_the_object(store: StorageBackend) -> None:
    """A presigned GET URL fetches the object with no credentials."""
    await store.upload_file(b"signed", "s/p.txt")
    url = (await store.presign("s/p.txt")).value
    assert url.startswith("http://127.0.0.1:")
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
    assert body == b"signed"


@pytest.mark.parametrize("store", ["local", "memory"], indirect=True)
async def test_presign_is_a_typed_failure_where_unsupported(store: StorageBackend) -> None:
    """Stores without URLs answer presign with STORAGE_ERROR, not an exception."""
    assert (await store.presign("x")).error_code is ErrorCode.STORAGE_ERROR


async def test_failed_streamed_upload_leaves_no_object(store: StorageBackend) -> None:
    """A producer failing after several MiB fails the call and leaves no object behind."""

    async def broken() -> AsyncIterator[bytes]:
        for _ in range(6):
            yield b"\0" * (1024 * 1024)
        raise RuntimeError("producer died")

    result = await store.upload_file(broken(), "partial.bin")
    assert result.is_failure
    assert (await store.exists("partial.bin")).value is False


async def test_gcs_presigned_url_serves_the_object(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A GCS URL signed with a service-account key fetches the object from the emulator."""
    from tests.storage.conftest import gcs_store
    from tests.storage.test_units import _service_account

    store = gcs_store(request.getfixturevalue("gcs").endpoint)
    store.service_account = _service_account()
    async with store:
        await store.upload_file(b"signed", "s/p.txt")
        url = (await store.presign("s/p.txt")).value
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
    assert body == b"signed" and "X-Goog-Signature=" in url
