"""Storage pieces without a server: key rules, LocalStorage details, URLs, error mapping."""

from __future__ import annotations

import array
import asyncio
import gc
import io
import os
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest

import flext_api
from flext_api import ErrorCode, FlextResult, RetryConfig
from flext_api._atomic import AtomicFile, atomic_write
from flext_api.storage import (
    GCSStorage,
    LocalStorage,
    MemoryStorage,
    S3Storage,
    open_storage,
)
from flext_api.storage._obstore import AzureStorage, translate
from flext_api.storage._obstore import _chunks as _obstore_chunks
from flext_api.storage._paths import validate_key, validate_prefix
from flext_api.storage._types import Source
from flext_api.storage._url import split_url


def test_storage_reexports_the_cache_class() -> None:
    """flext_api.storage.FlextApiCache is flext_api.FlextApiCache (the guide's import)."""
    from flext_api.storage import FlextApiCache

    assert FlextApiCache is flext_api.FlextApiCache


@pytest.mark.parametrize("key", ["a", "a/b/c.txt", "ünï/cödé", "x..y", ".hidden/f"])
def test_valid_keys_pass(key: str) -> None:
    """Ordinary keys, dots inside names and non-ASCII letters are accepted."""
    assert validate_key(key).value == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("a/", "empty segment"),
        ("a" * 1025, "longer than 1024"),
        (".flext-meta/x", "reserved"),
        ("a/./b", "'.' segment"),
        ("a\x7fb", "forbidden character"),
        ("a/.flext-tmp-x", "reserved '.flext-tmp-'"),
        ("lone\ud800", "lone surrogate"),
    ],
)
def test_invalid_keys_say_why(key: str, reason: str) -> None:
    """Each broken rule is named in the INVALID_REQUEST message."""
    result = validate_key(key)
    assert result.error_code is ErrorCode.INVALID_REQUEST and reason in (result.error or "")


def test_non_str_key_is_refused() -> None:
    """A key that is not a str fails instead of raising."""
    assert validate_key(b"k").error_code is ErrorCode.INVALID_REQUEST  # type: ignore[arg-type]


def test_prefixes_allow_empty_and_trailing_slash() -> None:
    """'' and 'a/b/' are valid prefixes; '../' is not."""
    assert validate_prefix("").is_success and validate_prefix("a/b/").is_success
    assert validate_prefix("../").error_code is ErrorCode.INVALID_REQUEST


async def test_listing_refuses_other_delimiters() -> None:
    """Only '/' is a delimiter, and limit must be positive."""
    store = MemoryStorage()
    assert (await store.list_page("", delimiter=",")).error_code is ErrorCode.INVALID_REQUEST
    assert (await store.list_page("", limit=0)).error_code is ErrorCode.INVALID_REQUEST
    assert (await store.list_page("../")).error_code is ErrorCode.INVALID_REQUEST


async def test_every_call_validates_its_keys() -> None:
    """stat, delete, stream, copy, rename and presign refuse a bad key."""
    store = MemoryStorage()
    calls: list[Awaitable[FlextResult[Any]]] = [
        store.download_file("../x"),
        store.download_stream("../x"),
        store.delete_file("../x"),
        store.stat("../x"),
        store.copy_file("../x", "y"),
        store.rename_file("y", "../x"),
        store.presign("../x"),
    ]
    for call in calls:
        assert (await call).error_code is ErrorCode.INVALID_REQUEST


async def test_presign_refuses_other_methods() -> None:
    """presign accepts GET and PUT only."""
    result = await MemoryStorage().presign("k", method="DELETE")  # type: ignore[arg-type]
    assert result.error_code is ErrorCode.INVALID_REQUEST


async def test_unknown_body_type_is_refused() -> None:
    """An int body is INVALID_REQUEST, and so is a Path that is not a file."""
    store = MemoryStorage()
    assert (await store.upload_file(3, "k")).error_code is ErrorCode.INVALID_REQUEST  # type: ignore[arg-type]
    missing = Path("/nonexistent/file")
    assert (await store.upload_file(missing, "k")).error_code is ErrorCode.INVALID_REQUEST


def test_source_kinds_and_replay() -> None:
    """Bytes, paths and seekable files are replayable; an unseekable reader is not."""

    class Pipe(io.RawIOBase):
        def readable(self) -> bool:
            return True

    handle = io.BytesIO(b"abc")
    handle.read(1)
    source = Source.of(handle).value
    assert source.replayable and source.kind == "file"
    handle.read()
    source.rewind()
    assert handle.read() == b"bc"
    assert not Source.of(Pipe()).value.replayable


async def test_unseekable_file_upload_is_not_retried() -> None:
    """An upload from an unseekable file still works once (read as a stream)."""

    class Reader:
        def __init__(self) -> None:
            self.data = io.BytesIO(b"stream-file")

        def read(self, size: int = -1) -> bytes:
            return self.data.read(size)

    store = LocalStorage(Path(os.environ.get("TMPDIR", "/tmp")) / f"u-{os.getpid()}")
    assert (await store.upload_file(Reader(), "r.bin")).is_success  # type: ignore[arg-type]
    assert (await store.download_file("r.bin")).value == b"stream-file"


# -- LocalStorage ----------------------------------------------------------------------
async def test_local_symlink_cannot_lead_out_of_the_root(tmp_path: Path) -> None:
    """A symlink inside the root pointing outside is refused for writes and reads."""
    outside = tmp_path / "outside"
    outside.mkdir()
    store = LocalStorage(tmp_path / "root")
    (tmp_path / "root" / "link").symlink_to(outside)
    result = await store.upload_file(b"x", "link/evil.txt")
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert list(outside.iterdir()) == []
    assert (await store.download_file("link/evil.txt")).error_code is ErrorCode.INVALID_REQUEST


async def test_local_failed_stream_leaves_nothing(tmp_path: Path) -> None:
    """A producer failing mid-upload is a failed result; no object, no temporary file."""

    async def broken() -> object:
        yield b"partial"
        raise RuntimeError("producer died")

    store = LocalStorage(tmp_path)
    result = await store.upload_file(broken(), "x/y.bin")  # type: ignore[arg-type]
    assert result.error_code is ErrorCode.STORAGE_ERROR
    assert isinstance(result.exception and result.exception.__cause__, RuntimeError)
    assert [p.name for p in (tmp_path / "x").iterdir()] == []


async def test_local_stale_sidecar_is_ignored(tmp_path: Path) -> None:
    """Metadata whose ETag no longer matches the file is not reported."""
    store = LocalStorage(tmp_path)
    await store.upload_file(b"v1", "k", {"a": "1"})
    await asyncio.sleep(0.01)
    (tmp_path / "k").write_bytes(b"changed behind our back")
    info = (await store.stat("k")).value
    assert dict(info.metadata) == {} and info.content_type is None


async def test_local_metadata_of_keys_that_look_like_sidecars(tmp_path: Path) -> None:
    """Keys whose names could clash with another's metadata file, or are near the file
    name limit, keep their own metadata."""
    store = LocalStorage(tmp_path)
    long = "k" * 250
    for key in ("a.json/x", "a", long):
        assert (await store.upload_file(key.encode(), key, {"key": key[:10]})).is_success
    for key in ("a.json/x", "a", long):
        info = (await store.stat(key)).value
        assert dict(info.metadata) == {"key": key[:10]}
        assert (await store.download_file(key)).value == key.encode()


async def test_local_concurrent_writes_keep_content_and_metadata_together(
    tmp_path: Path,
) -> None:
    """Concurrent uploads of equal-sized bodies to one key: whichever wins, the metadata
    read with it is its own, and one sidecar is left."""
    store = LocalStorage(tmp_path)
    for _ in range(5):
        await asyncio.gather(
            *(
                store.upload_file(b"v%02d" % i, "k", {"v": str(i)}, content_type=f"text/v{i}")
                for i in range(16)
            )
        )
        stream = (await store.download_stream("k")).value
        winner = int((await stream.read())[1:])
        assert dict(stream.info.metadata) == {"v": str(winner)}
        assert stream.info.content_type == f"text/v{winner}"
    assert len(list((tmp_path / ".flext-meta").rglob("*.json"))) == 1


async def test_local_failed_metadata_write_keeps_the_old_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The metadata is written before the content is published: when it cannot be, the
    upload fails and the old content and metadata stay."""
    store = LocalStorage(tmp_path)
    await store.upload_file(b"old", "k", {"v": "old"})

    def refuse(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_write_meta", refuse)
    result = await store.upload_file(b"new", "k", {"v": "new"})
    assert result.error_code is ErrorCode.STORAGE_ERROR
    monkeypatch.undo()
    assert (await store.download_file("k")).value == b"old"
    assert dict((await store.stat("k")).value.metadata) == {"v": "old"}
    assert sorted(os.listdir(tmp_path)) == [".flext-meta", "k"]


async def test_local_delete_and_rename_take_the_metadata_along(tmp_path: Path) -> None:
    """A renamed object keeps its metadata under the new key; a deleted one leaves none."""
    store = LocalStorage(tmp_path)
    await store.upload_file(b"x", "a", {"m": "1"})
    assert (await store.rename_file("a", "b")).is_success
    assert dict((await store.stat("b")).value.metadata) == {"m": "1"}
    assert (await store.delete_file("b")).is_success
    assert list((tmp_path / ".flext-meta").rglob("*.json")) == []


async def test_local_listing_stays_inside_the_root(tmp_path: Path) -> None:
    """Symlinks leading out of the root are not listed (they cannot be read either);
    one to a file inside the root is."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    store = LocalStorage(root)
    await store.upload_file(b"in", "real/file")
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "filelink").symlink_to(outside / "secret.txt")
    (root / "alias").symlink_to(root / "real" / "file")
    assert [f.path for f in (await store.list_files()).value] == ["alias", "real/file"]
    assert (await store.list_files("link/")).value == []
    assert (await store.download_file("alias")).value == b"in"


async def test_local_fsync_writes_are_durable_and_readable(tmp_path: Path) -> None:
    """fsync=True writes the same content (flushed before the rename)."""
    store = LocalStorage(tmp_path, fsync=True)
    assert (await store.upload_file(b"durable", "d.txt")).is_success
    assert (tmp_path / "d.txt").read_bytes() == b"durable"
    assert "fsync=True" in repr(store)


async def test_local_directory_is_not_an_object(tmp_path: Path) -> None:
    """stat of a directory is NOT_FOUND; writing over a directory is STORAGE_ERROR."""
    store = LocalStorage(tmp_path)
    await store.upload_file(b"x", "dir/file")
    assert (await store.stat("dir")).error_code is ErrorCode.NOT_FOUND
    assert (await store.upload_file(b"x", "dir")).error_code is ErrorCode.STORAGE_ERROR


async def test_local_permission_error_is_auth_error(tmp_path: Path) -> None:
    """A PermissionError maps to AUTH_ERROR."""
    store = LocalStorage(tmp_path)
    error = store._translate(PermissionError(13, "denied"), "upload", "k")
    assert error.code is ErrorCode.AUTH_ERROR


async def test_local_rename_without_overwrite(tmp_path: Path) -> None:
    """rename_file(overwrite=False) onto an existing key is PRECONDITION_FAILED."""
    store = LocalStorage(tmp_path)
    await store.upload_file(b"a", "a")
    await store.upload_file(b"b", "b")
    assert (await store.rename_file("a", "b", overwrite=False)).error_code is (
        ErrorCode.PRECONDITION_FAILED
    )
    assert (await store.rename_file("a", "c", overwrite=False)).is_success
    assert (await store.download_file("c")).value == b"a"


async def test_local_if_match_on_absent_object_fails(tmp_path: Path) -> None:
    """if_match on a key that does not exist is PRECONDITION_FAILED."""
    store = LocalStorage(tmp_path)
    result = await store.upload_file(b"x", "none", if_match='"1-1"')
    assert result.error_code is ErrorCode.PRECONDITION_FAILED


def test_atomic_file_abort_and_exception(tmp_path: Path) -> None:
    """An exception inside the block leaves the old content; abort is idempotent."""
    target = tmp_path / "t"
    atomic_write(target, b"old")
    handle = AtomicFile(target)

    def fail_inside() -> None:
        with handle:
            handle.write(b"new")
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fail_inside()
    handle.abort()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["t"]


def test_atomic_file_exclusive_commit(tmp_path: Path) -> None:
    """commit(exclusive=True) refuses an existing target and cleans up."""
    target = tmp_path / "t"
    atomic_write(target, b"old", fsync=True)
    handle = AtomicFile(target)
    handle.write(b"new")
    with pytest.raises(FileExistsError):
        handle.commit(exclusive=True)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["t"]


# -- URLs --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bkt/a/b", ("s3", "bkt", "a/b")),
        ("az://box/k%20x", ("az", "box", "k x")),
        ("gs://bkt/", ("gs", "bkt", "")),
        ("memory://a/b", ("memory", "", "a/b")),
        ("file:///tmp/x", ("file", "/", "tmp/x")),
    ],
)
def test_split_url(url: str, expected: tuple[str, str, str]) -> None:
    """Each scheme splits into (scheme, bucket, key)."""
    assert split_url(url).value == expected


def test_split_url_refuses_unknown_or_bucketless() -> None:
    """An unknown scheme or an s3 URL without a bucket is CONFIG_ERROR."""
    assert split_url("http://x/y").error_code is ErrorCode.CONFIG_ERROR
    assert split_url("s3:///key").error_code is ErrorCode.CONFIG_ERROR
    assert open_storage("ftp://x").error_code is ErrorCode.CONFIG_ERROR


def test_open_storage_reads_the_environment(tmp_path: Path) -> None:
    """Endpoints and credentials come from the environment, options overriding them."""
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "k"}
    s3, key = open_storage("s3://bkt/a/b", env=env).value
    assert isinstance(s3, S3Storage) and key == "a/b" and s3.url(key) == "s3://bkt/a/b"
    gcs, _ = open_storage("gs://b/k", env={"STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"}).value
    assert isinstance(gcs, GCSStorage) and gcs.endpoint == "http://127.0.0.1:9"
    az, _ = open_storage("az://c/k", env={}, account_name="acct", account_key="a2V5").value
    assert isinstance(az, AzureStorage) and az.url("k") == "az://c/k"
    assert open_storage("az://c/k", env={}).error_code is ErrorCode.CONFIG_ERROR
    local, name = open_storage(f"file://{tmp_path}/f.txt").value
    assert isinstance(local, LocalStorage) and local.root == tmp_path and name == "f.txt"
    folder, empty = open_storage(f"file://{tmp_path}/").value
    assert isinstance(folder, LocalStorage) and empty == ""
    memory, mkey = open_storage("memory://x/y").value
    assert isinstance(memory, MemoryStorage) and mkey == "x/y"


def test_anonymous_s3_and_azure_skip_signing() -> None:
    """Without credentials S3 and Azure stores are built unsigned (public buckets)."""
    assert "s3://pub/" in repr(S3Storage("pub", endpoint="http://127.0.0.1:9"))
    assert AzureStorage("c", account_name="a", sas_token="sv=1").container == "c"
    assert AzureStorage("c", account_name="a").url("x") == "az://c/x"


def test_gcs_chunk_size_must_be_a_multiple_of_256_kib() -> None:
    """A resumable piece size that GCS would refuse is refused at construction."""
    with pytest.raises(ValueError, match="multiple of 262144"):
        GCSStorage("b", chunk_size=1000)
    assert repr(GCSStorage("b", token="t")).startswith("<GCSStorage gs://b")


# -- error mapping ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("message", "code", "status"),
    [
        (
            "Server returned non-2xx status code: 503 Service Unavailable: SlowDown",
            ErrorCode.RATE_LIMITED,
            503,
        ),
        ("Server returned non-2xx status code: 429 Too Many Requests", ErrorCode.RATE_LIMITED, 429),
        ("Server returned non-2xx status code: 403 Forbidden", ErrorCode.AUTH_ERROR, 403),
        ("Server returned non-2xx status code: 500 Internal", ErrorCode.STORAGE_ERROR, 500),
        ("HTTP error: error sending request", ErrorCode.CONNECT_ERROR, None),
        ("operation timed out", ErrorCode.READ_TIMEOUT, None),
        ("", ErrorCode.STORAGE_ERROR, None),
    ],
)
def test_translate_generic_obstore_errors(
    message: str, code: ErrorCode, status: int | None
) -> None:
    """obstore's generic errors map to codes the retry policy understands."""
    from obstore.exceptions import GenericError

    error = translate(GenericError(message), "s3 get", "k")
    assert error.code is code and error.details.get("status") == status
    assert isinstance(error.__cause__, GenericError)


def test_translate_typed_obstore_errors() -> None:
    """Permission, path and not-supported errors keep their meaning."""
    from obstore import exceptions as e

    assert translate(e.PermissionDeniedError("no"), "x", "k").code is ErrorCode.AUTH_ERROR
    assert translate(e.InvalidPathError("bad"), "x", "k").code is ErrorCode.INVALID_REQUEST
    assert translate(e.NotSupportedError("no"), "x", "k").code is ErrorCode.STORAGE_ERROR


async def test_closed_store_fails_cleanly() -> None:
    """After close(), calls fail with STORAGE_ERROR instead of crashing."""
    store = MemoryStorage()
    await store.close()
    assert (await store.download_file("k")).error_code is ErrorCode.STORAGE_ERROR


async def test_conditional_write_from_a_stream() -> None:
    """A conditional write takes an async-iterator body too (gathered for the single PUT)."""

    async def body() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    store = MemoryStorage()
    assert (await store.upload_file(body(), "k", if_none_match=True)).value == "memory://k"
    assert (await store.download_file("k")).value == b"ab"


async def test_source_chunks_of_bytes() -> None:
    """A bytes body is cut into pieces of the size asked."""
    pieces = [p async for p in Source.of(b"abcde").value.chunks(2)]
    assert pieces == [b"ab", b"cd", b"e"]


def test_buffer_bodies_are_not_copied() -> None:
    """A bytearray body is kept as a flat view of the caller's buffer, not a copy."""
    buffer = bytearray(b"abcdef")
    source = Source.of(buffer).value
    assert isinstance(source.value, memoryview) and source.value.obj is buffer
    assert source.size == 6 and source.replayable


def test_typed_memoryview_body_counts_bytes() -> None:
    """A memoryview of 4-byte items has the size of its bytes, not of its items."""
    source = Source.of(memoryview(array.array("i", [1, 2, 3]))).value
    assert isinstance(source.value, memoryview) and source.size == 12
    assert source.value.tobytes() == array.array("i", [1, 2, 3]).tobytes()


async def test_source_chunks_of_a_buffer_are_bytes() -> None:
    """A bytearray body is cut into bytes pieces."""
    pieces = [p async for p in Source.of(bytearray(b"abcde")).value.chunks(2)]
    assert pieces == [b"ab", b"cd", b"e"] and all(type(p) is bytes for p in pieces)


class _FakeChunks:
    """An obstore-like chunk stream that records when each chunk is asked for."""

    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks, self.fail_at, self.asked = chunks, fail_at, 0

    def __anext__(self) -> asyncio.Future[memoryview]:
        future: asyncio.Future[memoryview] = asyncio.get_running_loop().create_future()
        index, self.asked = self.asked, self.asked + 1
        if index == self.fail_at:
            future.set_exception(OSError("connection reset"))
        elif index < len(self.chunks):
            future.set_result(memoryview(self.chunks[index]))
        else:
            future.set_exception(StopAsyncIteration())
        return future


def _as_storage_error(exc: Exception) -> flext_api.FlextApiError:
    return translate(exc, "memory download of 'k'", "k")


async def test_obstore_chunk_failure_is_a_flext_api_error() -> None:
    """A connection lost in the middle of a download raises the translated error."""
    chunks = _obstore_chunks(_FakeChunks([b"ab", b"cd"], fail_at=1), _as_storage_error)
    assert await anext(chunks) == b"ab"
    with pytest.raises(flext_api.FlextApiError) as caught:
        await anext(chunks)
    assert caught.value.code is ErrorCode.CONNECT_ERROR
    assert isinstance(caught.value.__cause__, OSError)


async def test_obstore_chunks_are_bytes_asked_one_ahead() -> None:
    """Each chunk arrives as bytes, and the next one is already asked for when it does."""
    fake = _FakeChunks([b"ab", b"cd"])
    chunks = _obstore_chunks(fake, _as_storage_error)
    first = await anext(chunks)
    assert (type(first), first, fake.asked) == (bytes, b"ab", 2)
    assert [c async for c in chunks] == [b"cd"]


async def test_obstore_chunks_closed_early_leave_no_unretrieved_error() -> None:
    """Closing after one chunk retrieves the failed read-ahead: nothing is left unreported."""
    reported: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: reported.append(context))
    fake = _FakeChunks([b"ab", b"cd"], fail_at=1)
    chunks = _obstore_chunks(fake, _as_storage_error)
    assert await anext(chunks) == b"ab"
    await chunks.aclose()
    await asyncio.sleep(0)
    gc.collect()
    await asyncio.sleep(0)
    assert reported == [] and fake.asked == 2


async def test_local_unreadable_sidecar_is_ignored(tmp_path: Path) -> None:
    """A damaged metadata sidecar reads as no metadata, not as an error."""
    store = LocalStorage(tmp_path)
    await store.upload_file(b"x", "k", {"a": "1"})
    [sidecar] = (tmp_path / ".flext-meta").rglob("*.json")
    sidecar.write_text("{not json")
    assert dict((await store.stat("k")).value.metadata) == {}


async def test_gcs_unreachable_is_connect_error() -> None:
    """A GCS endpoint nobody listens on fails with CONNECT_ERROR after the retries."""
    from tests.servers.storage_servers import free_port

    store = GCSStorage(
        "b", endpoint=f"http://127.0.0.1:{free_port()}", retry=RetryConfig(max_retries=0)
    )
    async with store:
        assert (await store.stat("k")).error_code is ErrorCode.CONNECT_ERROR
        assert store._translate(KeyError("Location"), "upload", "k").code is ErrorCode.STORAGE_ERROR


def test_s3_session_token_and_default_endpoint() -> None:
    """Temporary credentials and the default AWS endpoint build a store."""
    store = S3Storage("b", access_key_id="k", secret_access_key="s", session_token="t")
    assert store.bucket == "b"


def _service_account() -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {"client_email": "svc@p.iam.gserviceaccount.com", "private_key": pem}


def test_gcs_v4_signature_verifies_with_the_public_key() -> None:
    """The X-Goog-Signature is the account key's RSA-SHA256 signature of the V4 string."""
    from datetime import UTC, datetime, timedelta
    from urllib.parse import parse_qs, urlsplit

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from flext_api.storage._signing import sign_v4, string_to_sign

    account = _service_account()
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ep = "https://storage.googleapis.com"
    url = sign_v4(account, "GET", ep, "/bkt/a b.txt", timedelta(hours=1), when)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.path == "/bkt/a%20b.txt" and query["X-Goog-Date"] == ["20260102T030405Z"]
    assert query["X-Goog-Credential"] == [
        "svc@p.iam.gserviceaccount.com/20260102/auto/storage/goog4_request"
    ]
    public = serialization.load_pem_private_key(account["private_key"].encode(), None).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    text = string_to_sign(
        "GET", ep, "/bkt/a b.txt", account["client_email"], timedelta(hours=1), when
    )
    public.verify(
        bytes.fromhex(query["X-Goog-Signature"][0]),
        text.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_gcs_signing_refuses_bad_accounts_and_expiry() -> None:
    """A key without client_email, or an expiry past 7 days, is CONFIG_ERROR."""
    from datetime import UTC, datetime, timedelta

    from flext_api._errors import ConfigError
    from flext_api.storage._signing import sign_v4

    now = datetime.now(UTC)
    with pytest.raises(ConfigError, match="client_email"):
        sign_v4({"private_key": "x"}, "GET", "https://h", "/b/k", timedelta(hours=1), now)
    with pytest.raises(ConfigError, match="7 days"):
        sign_v4(_service_account(), "GET", "https://h", "/b/k", timedelta(days=8), now)


async def test_gcs_presign_needs_a_service_account() -> None:
    """Without service_account= GCS presign is a CONFIG_ERROR result."""
    async with GCSStorage("b", endpoint="http://127.0.0.1:9") as store:
        assert (await store.presign("k")).error_code is ErrorCode.CONFIG_ERROR


async def test_local_directory_key_is_absent_for_reads_and_deletes(tmp_path: Path) -> None:
    """A key that is only a folder ("a" beside "a/b") is absent, as on an object store."""
    store = LocalStorage(tmp_path)
    await store.upload_file(b"x", "a/b")
    assert (await store.download_file("a")).error_code is ErrorCode.NOT_FOUND
    assert (await store.download_stream("a")).error_code is ErrorCode.NOT_FOUND
    assert (await store.copy_file("a", "z")).error_code is ErrorCode.NOT_FOUND
    assert (await store.delete_file("a")).is_success
    assert (await store.download_file("a/b")).value == b"x"


@pytest.mark.parametrize("overwrite", [True, False])
async def test_local_rename_of_a_folder_moves_nothing(tmp_path: Path, overwrite: bool) -> None:
    """Renaming a key that is only a folder is NOT_FOUND: the objects below stay put."""
    store = LocalStorage(tmp_path)
    await store.upload_file(b"x", "a/b", {"m": "1"})
    renamed = await store.rename_file("a", "z", overwrite=overwrite)
    assert renamed.error_code is ErrorCode.NOT_FOUND
    assert [f.path for f in (await store.list_files()).value] == ["a/b"]
    assert dict((await store.stat("a/b")).value.metadata) == {"m": "1"}


async def test_local_emptied_folders_do_not_block_a_key(tmp_path: Path) -> None:
    """Once "p/q/r" is deleted, renamed or never written, "p" can be written, as on S3."""

    async def failing() -> AsyncIterator[bytes]:
        yield b"part"
        raise OSError("producer died")

    store = LocalStorage(tmp_path)
    await store.upload_file(b"x", "p/q/r")
    assert (await store.delete_file("p/q/r")).is_success
    assert (await store.upload_file(b"y", "p")).is_success
    await store.upload_file(b"x", "m/n")
    assert (await store.rename_file("m/n", "k")).is_success
    assert (await store.upload_file(b"y", "m")).is_success
    assert (await store.upload_file(failing(), "f/g")).is_failure
    assert (await store.upload_file(b"y", "f")).is_success
    assert [f.path for f in (await store.list_files()).value] == ["f", "k", "m", "p"]


@pytest.mark.parametrize("mode", ["closed", "write-only"])
async def test_unreadable_file_object_is_invalid_request(tmp_path: Path, mode: str) -> None:
    """A closed or write-only file object is a failed INVALID_REQUEST result, not a raise."""
    handle = (tmp_path / "body").open("wb")
    if mode == "closed":
        handle.close()
    try:
        for store in (LocalStorage(tmp_path / "root"), MemoryStorage()):
            put = await store.upload_file(handle, "k")
            assert put.error_code is ErrorCode.INVALID_REQUEST
            assert (await store.exists("k")).value is False
    finally:
        handle.close()


async def test_s3_body_cut_short_is_a_connect_error() -> None:
    """A server that drops the connection mid-body gives CONNECT_ERROR (retried), for a
    whole download and for a stream alike."""
    head = (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100000\r\n"
        b'ETag: "e"\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n'
    )

    async def truncate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head + b"x" * 1000)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(truncate, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = S3Storage(
        "b",
        endpoint=f"http://127.0.0.1:{port}",
        access_key_id="k",
        secret_access_key="s",
        retry=RetryConfig(max_retries=0),
    )
    async with server, store:
        assert (await store.download_file("k")).error_code is ErrorCode.CONNECT_ERROR
        stream = (await store.download_stream("k")).value
        with pytest.raises(flext_api.FlextApiError) as raised:
            await stream.read()
        assert raised.value.code is ErrorCode.CONNECT_ERROR


@pytest.mark.parametrize("operation", ["copy_file", "rename_file"])
async def test_local_copy_under_a_file_is_a_conflict_not_a_missing_source(
    tmp_path: Path, operation: str
) -> None:
    """Copying or renaming onto "a/b/c" while "a" is an object is STORAGE_ERROR (as an
    upload there is), not NOT_FOUND for a source that exists; the source stays."""
    store = LocalStorage(tmp_path)
    await store.upload_file(b"a", "a")
    await store.upload_file(b"src", "src")
    moved = await getattr(store, operation)("src", "a/b/c")
    assert moved.error_code is ErrorCode.STORAGE_ERROR
    assert (await store.download_file("src")).value == b"src"
    assert (await store.download_file("a")).value == b"a"


@pytest.mark.parametrize("key", ["a/.flext-meta/x", "a/b/.flext-meta"])
def test_a_flext_meta_segment_is_reserved_at_any_depth(key: str) -> None:
    """A store rooted in a sub-folder keeps its metadata in ``<sub>/.flext-meta``."""
    result = validate_key(key)
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "reserved '.flext-meta'" in (result.error or "")


async def test_a_store_rooted_below_another_does_not_show_its_metadata(tmp_path: Path) -> None:
    """``file:///d/2024/big.bin`` then ``ls -r file:///d/``: the sub-store's sidecar
    folder (``2024/.flext-meta/...``) is neither an object nor a folder of the outer one."""
    inner = LocalStorage(tmp_path / "2024")
    (await inner.upload_file(b"x" * 10, "big.bin", content_type="application/x-big")).unwrap()
    assert list((tmp_path / "2024" / ".flext-meta").rglob("*.json"))
    (await inner.upload_file(b"y", "only-meta/gone.bin", content_type="text/plain")).unwrap()
    (await inner.delete_file("only-meta/gone.bin")).unwrap()
    outer = LocalStorage(tmp_path)
    listed = (await outer.list_files("")).unwrap()
    assert [f.path for f in listed] == ["2024/big.bin"]
    page = (await outer.list_page("2024/", delimiter="/")).unwrap()
    assert [f.path for f in page.files] == ["2024/big.bin"]
    assert page.prefixes == []
