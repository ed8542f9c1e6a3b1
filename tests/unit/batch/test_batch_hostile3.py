"""Third hostile pass over batches: journals that are not journals or cannot be
written, and input items that raise when read."""

from __future__ import annotations

import errno
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from flext_api import ErrorCode
from flext_api._errors import ConfigError
from flext_api.client import BatchJournal, BatchRequest, FlextApiClient
from flext_api.client.batch import _journal
from flext_api.client.batch._journal import scan_jsonl

from ._helpers import collect, make_client


def _requests(n: int) -> list[BatchRequest]:
    return [BatchRequest(i, f"/{i}") for i in range(n)]


@pytest.mark.parametrize(
    "content",
    [b"buy milk\ncall bob\n", b'{\n  "name": "settings"\n}\n', b"hello"],
    ids=["notes", "pretty-json", "one-line"],
)
async def test_a_file_that_is_not_a_journal_is_refused_and_left_untouched(
    tmp_path: Path, content: bytes
) -> None:
    """A file named as the journal by mistake is a ConfigError, not cut to nothing."""
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    async with make_client() as client:
        with pytest.raises(ConfigError, match="not a JSON-lines journal"):
            await collect(client.batch(_requests(2), journal=path))
    assert path.read_bytes() == content


@pytest.mark.parametrize("content", [b'{"id": 1', b"\x00\x00\x00\x00"], ids=["torn", "zeroed"])
def test_a_torn_or_zeroed_first_record_is_still_cut(tmp_path: Path, content: bytes) -> None:
    """A journal whose only record was cut short (or zeroed by a power loss) is empty."""
    path = tmp_path / "j.jsonl"
    path.write_bytes(content)
    assert scan_jsonl(path, lambda record: None) == 0
    assert path.read_bytes() == b""


@pytest.mark.parametrize("where", ["a-directory", "under-a-file"])
async def test_a_journal_that_cannot_be_opened_is_a_config_error(
    tmp_path: Path, where: str
) -> None:
    """A journal path that cannot be opened for appending is a ConfigError naming it."""
    if where == "a-directory":
        path = tmp_path
    else:
        (tmp_path / "file").write_bytes(b"")
        path = tmp_path / "file" / "journal"
    async with make_client() as client:
        with pytest.raises(ConfigError, match="cannot open the batch journal"):
            await collect(client.batch(_requests(2), journal=path))


async def test_a_journal_that_cannot_be_written_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record the disk refuses (ENOSPC) ends the batch with a ConfigError naming the id."""

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_journal, "write_all", full)
    journal = BatchJournal(tmp_path / "j.jsonl")
    taken: list[Any] = []

    async def consume(client: FlextApiClient) -> None:
        async for result in client.batch(_requests(3), journal=journal, concurrency=1):
            taken.append(result.request_id)

    async with make_client() as client:
        with pytest.raises(ConfigError, match=r"cannot record 0 in .*No space left"):
            await consume(client)
    assert taken == [0]
    assert not journal.path.read_bytes()


class _BrokenMapping(Mapping[str, Any]):
    """A mapping item whose every read raises (a lazy record over a broken source)."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("source broke")

    def __iter__(self) -> Iterator[str]:
        return iter(["id", "path"])

    def __len__(self) -> int:
        return 2


async def test_a_mapping_that_raises_when_read_fails_only_its_item() -> None:
    """An item that raises while it is read gets INVALID_REQUEST; the others still run."""
    items: list[Any] = [BatchRequest("a", "/a"), _BrokenMapping(), BatchRequest("b", "/b")]
    async with make_client() as client:
        results = await collect(client.batch(items, ordered=True))
    assert [(r.request_id, r.success) for r in results] == [("a", True), (None, False), ("b", True)]
    assert results[1].error_code is ErrorCode.INVALID_REQUEST
    assert results[1].error is not None and "RuntimeError: source broke" in results[1].error
