"""Storage, fourth pass of hostile probes against real servers on 127.0.0.1: listings
a server answers in short pages, Azure blocks left by a failed upload, concurrent
writers of one key, and keys that other tools percent-encode or normalise.

GCS caps a listing request at 1,000 entries and says "more" with ``nextPageToken``;
``gcp-storage-emulator`` ignores ``maxResults`` altogether, so the short pages come from
a small HTTP server here that pages as GCS documents it (``objects.list``).
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from flext_api import ErrorCode, RetryConfig
from flext_api.storage import GCSStorage, StorageBackend
from tests.servers.storage_servers import AZURITE_ACCOUNT, AZURITE_KEY

MIB = 1024 * 1024


def _gcs_listing(names: list[str], cap: int) -> web.Application:
    """GCS's ``objects.list``: at most ``min(maxResults, cap)`` entries (objects plus
    prefixes) a response, then a ``nextPageToken``; prefix, delimiter and startOffset."""

    async def listing(request: web.Request) -> web.Response:
        query = request.query
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter")
        start, after = query.get("startOffset"), query.get("pageToken")
        size = min(int(query.get("maxResults", "1000")), cap)
        items: list[dict[str, Any]] = []
        prefixes: list[str] = []
        last: str | None = None
        for name in sorted(names):
            if not name.startswith(prefix) or (start and name < start):
                continue
            if after is not None and name <= after:
                continue
            rest = name[len(prefix) :]
            folder = None
            if delimiter and delimiter in rest:
                folder = prefix + rest.split(delimiter, 1)[0] + delimiter
            if folder is not None and prefixes[-1:] == [folder]:
                last = name
                continue
            if len(items) + len(prefixes) == size:
                body = {"items": items, "prefixes": prefixes, "nextPageToken": last}
                return web.json_response(body)
            if folder is not None:
                prefixes.append(folder)
            else:
                items.append({"name": name, "size": "1", "generation": "1"})
            last = name
        return web.json_response({"items": items, "prefixes": prefixes})

    app = web.Application()
    app.router.add_get("/storage/v1/b/{bucket}/o", listing)
    return app


@pytest.fixture
async def paged_gcs(request: pytest.FixtureRequest) -> AsyncIterator[GCSStorage]:
    """A GCSStorage on a server holding ``request.param = (names, cap)``."""
    names, cap = request.param
    runner = web.AppRunner(_gcs_listing(names, cap))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    store = GCSStorage("bkt", endpoint=f"http://127.0.0.1:{port}", retry=RetryConfig(enabled=False))
    try:
        yield store
    finally:
        await store.close()
        await runner.cleanup()


_MANY = [f"k/{i:05d}" for i in range(1050)]
_FOLDERS = ["d/1", "d/2", "d/3", "e", "f/1", "f/2", "g", "h/1"]


@pytest.mark.parametrize("paged_gcs", [(_MANY, 1000)], indirect=True)
async def test_gcs_listing_past_the_1000_entries_of_one_answer(paged_gcs: GCSStorage) -> None:
    """A GCS listing of 1,050 keys lists all of them, though one answer holds 1,000
    (it stopped at 1,000: a full answer was taken for the end of the listing)."""
    listed = [info.path for info in (await paged_gcs.list_files("k/")).value]
    assert listed == _MANY
    page = (await paged_gcs.list_page("k/")).value
    assert (len(page.files), page.next_token) == (1000, "k/00999")


@pytest.mark.parametrize("paged_gcs", [(_FOLDERS, 2)], indirect=True)
async def test_gcs_folded_listing_in_short_answers(paged_gcs: GCSStorage) -> None:
    """With a delimiter, answers of two entries (a prefix repeated across them) give
    every object and every folder once."""
    page = (await paged_gcs.list_page("", delimiter="/")).value
    assert ([f.path for f in page.files], page.prefixes) == (
        ["e", "g"],
        ["d/", "f/", "h/"],
    )
    assert page.next_token is None
    paged: list[str] = []
    token: str | None = None
    while True:
        one = (await paged_gcs.list_page("", delimiter="/", start_after=token, limit=1)).value
        paged += [f.path for f in one.files] + one.prefixes
        token = one.next_token
        if token is None:
            break
    assert paged == ["d/", "e", "f/", "g", "h/"]


# -- Azure: blocks of a failed upload --------------------------------------------------
def _block_lists(endpoint: str, container: str, blob: str) -> tuple[list[str], list[str]]:
    """The committed and uncommitted block IDs Azurite holds for ``blob``."""
    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient(
        account_url=f"{endpoint}/{AZURITE_ACCOUNT}",
        credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY},
    )
    with client:
        blob_client = client.get_blob_client(container, blob)
        committed, uncommitted = blob_client.get_block_list("all")
    return [b.id for b in committed], [b.id for b in uncommitted]


async def test_azure_blocks_of_a_failed_upload_are_never_committed_later(
    request: pytest.FixtureRequest,
) -> None:
    """A streamed overwrite that fails after staging blocks leaves them uncommitted (Azure
    keeps them for a week); a later upload of the same name commits only its own blocks
    (block IDs are random per upload), so the blob holds the new body, whole."""
    from tests.storage.conftest import azure_store

    endpoint = request.getfixturevalue("azurite").endpoint
    store = azure_store(endpoint, retry=RetryConfig(enabled=False))
    staged = asyncio.Event()

    async def failing() -> AsyncIterator[bytes]:
        for _ in range(11):  # two 5 MiB blocks go up
            yield b"\1" * MIB
        await staged.wait()
        raise RuntimeError("the source broke")

    async def fresh() -> AsyncIterator[bytes]:
        for _ in range(11):
            yield b"\2" * MIB

    try:
        # Azurite lists the blocks of a blob only once it exists.
        assert (await store.upload_file(b"first", "blob")).is_success
        upload = asyncio.create_task(store.upload_file(failing(), "blob"))
        stale: list[str] = []
        for _ in range(600):  # bounded poll: the two blocks are staged
            stale = (await asyncio.to_thread(_block_lists, endpoint, store.container, "blob"))[1]
            if len(stale) >= 2 or upload.done():
                break
            await asyncio.sleep(0.05)
        staged.set()
        assert (await upload).error_code is ErrorCode.STORAGE_ERROR
        assert len(stale) >= 2
        assert (await store.upload_file(fresh(), "blob")).is_success
        committed, _ = await asyncio.to_thread(_block_lists, endpoint, store.container, "blob")
        assert set(committed).isdisjoint(stale)
        assert (await store.download_file("blob")).value == b"\2" * (11 * MIB)
    finally:
        await store.close()


# -- every backend ---------------------------------------------------------------------
async def test_concurrent_writers_of_one_key_leave_one_whole_body(
    store: StorageBackend,
) -> None:
    """Two streamed uploads of one key at once: the object is one of the two bodies,
    whole, never a mix of their parts."""

    async def body(fill: int) -> AsyncIterator[bytes]:
        for _ in range(12):
            yield bytes([fill]) * MIB
            await asyncio.sleep(0)

    await asyncio.gather(store.upload_file(body(3), "same"), store.upload_file(body(4), "same"))
    content = (await store.download_file("same")).value
    assert content in {b"\3" * (12 * MIB), b"\4" * (12 * MIB)}


_ODD_KEYS = ["a%2Fb", "a~b", "x*y", "q?r", "h#t", "p[1]", 'd"q', "e{f}", "sp ace", "plus+s"]
_CAFE_NFC = unicodedata.normalize("NFC", "caf\u00e9")
_CAFE_NFD = unicodedata.normalize("NFD", "caf\u00e9")


async def test_keys_are_stored_as_given_not_encoded_or_normalised(
    store: StorageBackend,
) -> None:
    """Keys with %2F, URL-reserved characters or NFC and NFD forms of one word are
    stored and listed exactly as given on every backend: no percent-encoding, no
    Unicode normalisation (NFC and NFD are two keys)."""
    odd_keys = [*_ODD_KEYS, _CAFE_NFC, _CAFE_NFD]
    for key in odd_keys:
        assert (await store.upload_file(key.encode(), key)).is_success, key
    listed = [info.path for info in (await store.list_files()).value]
    assert listed == sorted(odd_keys)
    for key in odd_keys:
        assert (await store.download_file(key)).value == key.encode()
