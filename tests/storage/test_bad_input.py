"""Bad input to the storage API: a typed, failed FlextResult, never an exception and
never a lost or corrupted object."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flext_api import ErrorCode, FlextResult
from flext_api.storage import (
    LocalStorage,
    MemoryStorage,
    MultiBackendStorage,
    StorageBackend,
    open_storage,
)
from flext_api.storage._url import split_url


async def _yielding(*chunks: object) -> AsyncIterator[Any]:
    for chunk in chunks:
        yield chunk


async def test_stream_of_ints_is_refused_not_stored_as_zero_bytes(
    store: StorageBackend,
) -> None:
    """An async iterator of ints is INVALID_REQUEST, not an object of zero bytes."""
    put = await store.upload_file(_yielding(b"ab", 5), "ints")
    assert put.error_code is ErrorCode.INVALID_REQUEST
    assert (await store.exists("ints")).value is False


async def test_stream_of_str_is_invalid_request(store: StorageBackend) -> None:
    """An async iterator of str is INVALID_REQUEST and leaves no object."""
    put = await store.upload_file(_yielding("text"), "strs")
    assert put.error_code is ErrorCode.INVALID_REQUEST
    assert (await store.exists("strs")).value is False


async def test_text_file_is_refused(tmp_path: Path) -> None:
    """A file opened in text mode is INVALID_REQUEST (bytes are expected)."""
    (tmp_path / "t.txt").write_text("hi")
    with (tmp_path / "t.txt").open() as handle:
        put = await MemoryStorage().upload_file(handle, "t")  # type: ignore[arg-type]
    assert put.error_code is ErrorCode.INVALID_REQUEST
    assert "binary" in str(put.error)


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
async def test_download_chunk_size_must_be_positive(size: Any) -> None:
    """chunk_size 0 (an empty read) or negative is INVALID_REQUEST, not an empty body."""
    store = MemoryStorage()
    await store.upload_file(b"hello", "x")
    assert (await store.download_stream("x", chunk_size=size)).error_code is (
        ErrorCode.INVALID_REQUEST
    )


@pytest.mark.parametrize(
    "options", [{"limit": "5"}, {"limit": True}, {"limit": 0}, {"start_after": 5}]
)
async def test_listing_arguments_of_the_wrong_type(options: dict[str, Any]) -> None:
    """A non-int limit or a non-str start_after is INVALID_REQUEST, never a TypeError."""
    result = await MemoryStorage().list_page("", **options)
    assert result.error_code is ErrorCode.INVALID_REQUEST


async def test_metadata_that_is_not_a_mapping() -> None:
    """Metadata given as a list of pairs is INVALID_REQUEST, never an AttributeError."""
    put = await MemoryStorage().upload_file(b"x", "m", [("a", "b")])  # type: ignore[arg-type]
    assert put.error_code is ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    "options",
    [
        {"content_type": "text/plain\r\nX-Evil: 1"},
        {"content_type": "text/\u00e9"},
        {"content_type": 5},
        {"content_type": " text/plain"},
        {"content_type": "text/plain "},
        {"if_match": '"a"\r\nX-Evil: 1'},
        {"if_match": ""},
        {"if_match": 5},
        {"if_none_match": True, "if_match": '"e"'},
        {"if_none_match": "yes"},
    ],
)
async def test_header_bound_put_options_are_checked(
    store: StorageBackend, options: dict[str, Any]
) -> None:
    """Content type and conditions with CR/LF, non-ASCII, outer spaces (a header loses
    them) or a clash are INVALID_REQUEST."""
    await store.upload_file(b"old", "k")
    put = await store.upload_file(b"new", "k", **options)
    assert put.error_code is ErrorCode.INVALID_REQUEST
    assert (await store.download_file("k")).value == b"old"


@pytest.mark.parametrize(
    "expires",
    [timedelta(0), timedelta(seconds=-5), timedelta(days=8), timedelta(microseconds=1), 60.0],
)
async def test_presign_expiry_out_of_range(expires: Any) -> None:
    """An expiry of 0, negative, sub-second, over 7 days or not a timedelta is refused."""
    s3 = open_storage(
        "s3://bkt/k",
        env={},
        endpoint="http://127.0.0.1:9",
        access_key_id="k",
        secret_access_key="s",
    ).value[0]
    try:
        assert (await s3.presign("k", expires_in=timedelta(days=7))).is_success
        assert (await s3.presign("k", expires_in=expires)).error_code is (ErrorCode.INVALID_REQUEST)
    finally:
        await s3.close()


async def test_memory_presign_says_it_cannot() -> None:
    """MemoryStorage cannot presign, and says so plainly."""
    result = await MemoryStorage().presign("k")
    assert result.error_code is ErrorCode.STORAGE_ERROR
    assert "MemoryStorage cannot presign" in str(result.error)


@pytest.mark.parametrize("operation", ["copy_file", "rename_file"])
async def test_copy_or_rename_onto_itself_keeps_the_object(
    store: StorageBackend, operation: str
) -> None:
    """Copying or renaming a key onto itself succeeds and keeps the object."""
    await store.upload_file(b"keep me", "same")
    result = await getattr(store, operation)("same", "same")
    assert result.is_success, result.error
    assert (await store.download_file("same")).value == b"keep me"
    refused = await getattr(store, operation)("same", "same", overwrite=False)
    assert refused.error_code is ErrorCode.PRECONDITION_FAILED
    missing = await getattr(store, operation)("absent", "absent")
    assert missing.error_code is ErrorCode.NOT_FOUND
    assert (await store.download_file("same")).value == b"keep me"


async def test_multi_rename_onto_itself_keeps_the_object() -> None:
    """MultiBackendStorage.rename_file(k, k) leaves k on every backend."""
    multi = MultiBackendStorage([MemoryStorage(), MemoryStorage()])
    await multi.upload_file(b"v", "k")
    await multi.flush()
    assert (await multi.rename_file("k", "k")).is_success
    await multi.flush()
    for backend in multi.backends:
        assert (await backend.download_file("k")).value == b"v"
    await multi.close()


async def test_multi_upload_from_a_failing_stream_is_a_result() -> None:
    """A stream that raises while it is read fails the upload; nothing is written."""

    async def broken() -> AsyncIterator[bytes]:
        yield b"part"
        raise RuntimeError("disk gone")

    multi = MultiBackendStorage([MemoryStorage(), MemoryStorage()])
    put = await multi.upload_file(broken(), "k")
    assert put.error_code is ErrorCode.STORAGE_ERROR and "disk gone" in str(put.error)
    for backend in multi.backends:
        assert (await backend.exists("k")).value is False
    await multi.close()


class _Raising(MemoryStorage):
    async def download_file(self, path: str) -> FlextResult[bytes]:
        raise RuntimeError("garbage")


class _Garbage(MemoryStorage):
    async def download_file(self, path: str) -> FlextResult[bytes]:
        return b"not a result"  # type: ignore[return-value]


@pytest.mark.parametrize("broken", [_Raising, _Garbage])
async def test_multi_fails_over_a_backend_that_breaks_the_contract(broken: type) -> None:
    """A backend that raises or answers garbage counts as failed; the next one answers."""
    bad, good = broken(), MemoryStorage()
    await good.upload_file(b"v", "k")
    multi = MultiBackendStorage([bad, good])
    assert (await multi.download_file("k")).value == b"v"
    alone = MultiBackendStorage([broken()])
    result = await alone.download_file("k")
    assert result.error_code is ErrorCode.STORAGE_ERROR
    assert "contract" in str(result.error)
    await multi.close()
    await alone.close()


@pytest.mark.parametrize(
    "url",
    [
        "s3://bkt/key?versionId=3",
        "s3://bkt/key#part",
        "memory://a?b=c",
        "gs://bkt/k?",
        "file://remote-host/etc/x",
        "s3://[bkt/k",
    ],
)
def test_storage_urls_with_query_fragment_or_remote_file_host(url: str) -> None:
    """Parts of a URL that would be dropped silently make it CONFIG_ERROR."""
    assert split_url(url).error_code is ErrorCode.CONFIG_ERROR
    assert open_storage(url, env={}).error_code is ErrorCode.CONFIG_ERROR


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("s3://b/k", {"bogus": 1}),
        ("gs://b/k", {"chunk_size": 5}),
        ("az://c/k", {"account_name": "a", "endpoint": "::::"}),
    ],
)
def test_open_storage_with_bad_options_is_config_error(url: str, options: dict[str, Any]) -> None:
    """Unknown options or a configuration the store refuses are CONFIG_ERROR, not raised."""
    result = open_storage(url, env={}, **options)
    assert result.error_code is ErrorCode.CONFIG_ERROR


def test_open_storage_accepts_a_localhost_file_url(tmp_path: Path) -> None:
    """file://localhost/dir/key is the same as file:///dir/key."""
    local, name = open_storage(f"file://localhost{tmp_path}/f.txt").value
    assert isinstance(local, LocalStorage) and local.root == tmp_path and name == "f.txt"


def test_io_bytes_still_uploads() -> None:
    """A binary file object is still accepted (the text-file check is narrow)."""
    from flext_api.storage._types import Source

    assert Source.of(io.BytesIO(b"x")).is_success


@pytest.mark.parametrize(
    "url",
    ["s3://user:s3cr3t@bkt/key", "gs://s3cr3t@bkt/key", "az://acct:s3cr3t@box/key"],
)
def test_storage_urls_with_credentials_are_refused_without_echoing_them(url: str) -> None:
    """Credentials in the URL are not a bucket name (the backend's repr showed them);
    the error does not repeat them."""
    result = open_storage(url, env={})
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert result.exception is not None and "s3cr3t" not in str(result.exception)
    assert split_url(url).error_code is ErrorCode.CONFIG_ERROR


@pytest.mark.parametrize("url", ["s3://bkt:9000/key", "az://box:10000/key", "gs://bkt:1/k"])
def test_storage_urls_with_a_port_are_refused(url: str) -> None:
    """A port is not part of a bucket name: the server's address is ``endpoint=``."""
    result = split_url(url)
    assert result.error_code is ErrorCode.CONFIG_ERROR
    assert result.exception is not None and "endpoint" in str(result.exception)
