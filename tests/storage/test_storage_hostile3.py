"""Storage, third pass of hostile input against the real servers: keys a store lists
out of code point order, key segments no file name can hold, a server that accepts
and never answers, and a retry configuration that says no."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from flext_api import ErrorCode, RetryConfig
from flext_api._errors import ConnectError
from flext_api.storage import LocalStorage, MemoryStorage, S3Storage, StorageBackend
from flext_api.storage._obstore import translate
from flext_api.testing import FakeClock

# UTF-16 puts the astral ones (surrogates, 0xD8xx) before U+FF5E; code points do not.
_ASTRAL_AND_BMP = ["o/a\U0001f389", "o/a\U0001f38a", "o/a\uff5e", "o/a\uff5f"]
_LONG_SEGMENT = "L" * 300  # past the 255 bytes of a file name on most file systems


async def test_paging_one_key_at_a_time_lists_every_key(store: StorageBackend) -> None:
    """Pages of one key list every key once, in code point order, on every backend
    (Azurite lists astral characters first; pages cut in its order lost keys)."""
    for key in _ASTRAL_AND_BMP:
        assert (await store.upload_file(b"1", key)).is_success
    listed: list[str] = []
    token: str | None = None
    while True:
        page = (await store.list_page("o/", start_after=token, limit=1)).value
        listed += [info.path for info in page.files]
        token = page.next_token
        if token is None:
            break
    assert listed == sorted(_ASTRAL_AND_BMP)


async def test_iter_files_lists_every_key_whatever_the_store_order(
    store: StorageBackend,
) -> None:
    """iter_files with small pages yields every key, whatever order the store lists in."""
    for key in _ASTRAL_AND_BMP:
        assert (await store.upload_file(b"1", key)).is_success
    assert [info.path async for info in store.iter_files("o/", page_size=2)] == sorted(
        _ASTRAL_AND_BMP
    )


async def test_a_key_too_long_for_a_file_name_is_absent_everywhere(
    store: StorageBackend,
) -> None:
    """A key with a 300-byte segment that was never written is absent on every backend:
    stat and download NOT_FOUND, exists False, delete succeeds, its folder lists empty."""
    key = f"{_LONG_SEGMENT}/x"
    assert (await store.stat(key)).error_code is ErrorCode.NOT_FOUND
    assert (await store.download_file(key)).error_code is ErrorCode.NOT_FOUND
    assert (await store.download_stream(key)).error_code is ErrorCode.NOT_FOUND
    assert (await store.exists(key)).value is False
    assert (await store.delete_file(key)).is_success
    assert (await store.list_files(f"{_LONG_SEGMENT}/")).value == []
    assert (await store.copy_file(key, "dst")).error_code is ErrorCode.NOT_FOUND


async def test_local_key_too_long_for_a_file_name_is_refused_for_writes(
    tmp_path: Path,
) -> None:
    """On LocalStorage, writing a key with a segment no file name can hold is
    INVALID_REQUEST naming the limit (was STORAGE_ERROR with ENAMETOOLONG), and nothing
    is written; a copy or rename there keeps the source."""
    store = LocalStorage(tmp_path / "root")
    key = f"a/{_LONG_SEGMENT}"
    put = await store.upload_file(b"x", key)
    assert put.error_code is ErrorCode.INVALID_REQUEST
    assert "255 bytes" in str(put.error)
    assert (await store.upload_file(b"src", "src")).is_success
    assert (await store.copy_file("src", key)).error_code is ErrorCode.INVALID_REQUEST
    assert (await store.rename_file("src", key)).error_code is ErrorCode.INVALID_REQUEST
    assert (await store.download_file("src")).value == b"src"
    assert [info.path for info in (await store.list_files()).value] == ["src"]


async def test_retry_config_disabled_tries_once() -> None:
    """retry=RetryConfig(enabled=False) makes one attempt and returns its error as it is
    (it used to be ignored: four attempts, then RETRIES_EXHAUSTED)."""
    clock = FakeClock()
    store = MemoryStorage(retry=RetryConfig(enabled=False), clock=clock)
    calls = 0

    async def down(key: str) -> None:
        nonlocal calls
        calls += 1
        raise ConnectError(f"store down while reading {key}")

    store._head = down  # type: ignore[method-assign,assignment]
    result = await store.stat("k")
    assert (calls, result.error_code, clock.sleeps) == (1, ErrorCode.CONNECT_ERROR, [])
    await store.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An endpoint that accepts connections (the kernel does) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


async def test_s3_server_that_never_answers_is_a_read_timeout(silent_server: str) -> None:
    """A store that takes the connection and never answers is READ_TIMEOUT within the
    configured timeout, as on GCS, not CONNECT_ERROR (which says nothing was sent)."""
    store = S3Storage(
        "bkt",
        endpoint=silent_server,
        access_key_id="t",
        secret_access_key="t",
        client_options={"timeout": timedelta(seconds=1)},
        retry=RetryConfig(max_retries=0),
    )
    try:
        result = await store.download_file("k")
    finally:
        await store.close()
    assert result.error_code is ErrorCode.READ_TIMEOUT
    assert "timed out" in str(result.error)


# The Debug text obstore appends to a request that timed out (seen from a silent server
# and from one whose accept queue was full), shortened.
_READ_TIMED_OUT = (
    "Generic S3 error: Error performing GET http://127.0.0.1:9/bkt/k in 1.0s - HTTP error: "
    "error sending request\n\nDebug source:\nGeneric {\n    inner: Http(\n        HttpError "
    "{\n            kind: Timeout,\n            source: reqwest::Error {\n                "
    "kind: Request,\n                source: TimedOut,\n            },\n        },\n    ),\n}"
)
_CONNECT_TIMED_OUT = _READ_TIMED_OUT.replace(
    "source: TimedOut",
    'source: hyper_util::client::legacy::Error(Connect, ConnectError("tcp connect error", '
    "127.0.0.1:9, Custom { kind: TimedOut, error: Elapsed(()) }))",
)


@pytest.mark.parametrize(
    ("text", "code"),
    [(_READ_TIMED_OUT, ErrorCode.READ_TIMEOUT), (_CONNECT_TIMED_OUT, ErrorCode.CONNECT_TIMEOUT)],
)
def test_translate_obstore_timeouts(text: str, code: ErrorCode) -> None:
    """object_store's "kind: Timeout" is a timeout (connecting or answering), though
    its message says "error sending request" as a refused connection's does."""
    from obstore.exceptions import GenericError

    assert translate(GenericError(text), "s3 get", "k").code is code
