"""Durable JSON-lines files: torn tails, corruption, the fsync policy, BatchJournal."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from flext_api._errors import ConfigError
from flext_api.client.batch._journal import BatchJournal, JsonlLog, scan_jsonl, write_all
from flext_api.client.batch._models import BatchResult
from flext_api.testing import FakeClock


def _scan(path: Path) -> tuple[list[Any], int]:
    records: list[Any] = []
    size = scan_jsonl(path, records.append)
    return records, size


def test_scan_missing_file_is_empty(tmp_path: Path) -> None:
    """A journal that does not exist yet has no records."""
    assert _scan(tmp_path / "none.jsonl") == ([], 0)


def test_scan_cuts_a_torn_last_line(tmp_path: Path) -> None:
    """A last line without its newline (a crash mid-write) is cut off."""
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": 2}\n{"id": 3')
    assert _scan(path) == ([{"id": 1}, {"id": 2}], 20)
    assert path.read_bytes() == b'{"id": 1}\n{"id": 2}\n'


def test_scan_cuts_unparsable_lines_up_to_the_end(tmp_path: Path) -> None:
    """Garbage at the end (zeroed blocks after a power loss) is cut off."""
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"id": 1}\n\x00\x00\x00\n\x00\x00')
    assert _scan(path) == ([{"id": 1}], 10)
    assert path.stat().st_size == 10


def test_scan_refuses_a_corrupt_line_followed_by_valid_ones(tmp_path: Path) -> None:
    """Damage in the middle is not a torn tail: ConfigError names the line."""
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"id": 1}\nnot json\n{"id": 3}\n')
    with pytest.raises(ConfigError, match="line 2 is corrupt"):
        _scan(path)


def test_log_appends_and_fsyncs_every_n_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync runs once every fsync_every records and at close."""
    synced: list[int] = []
    real = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    clock = FakeClock()
    log = JsonlLog(tmp_path / "j.jsonl", fsync_every=3, fsync_interval=60, clock=clock)
    log.open()
    for i in range(7):
        log.append({"i": i})
    assert len(synced) == 2
    log.close()
    assert len(synced) == 3
    assert len((tmp_path / "j.jsonl").read_text().splitlines()) == 7


def test_log_fsyncs_when_the_interval_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record appended fsync_interval after the last fsync is fsynced at once."""
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    clock = FakeClock()
    log = JsonlLog(tmp_path / "j.jsonl", fsync_every=1000, fsync_interval=1.0, clock=clock)
    log.open()
    log.append({"i": 0})
    assert synced == []
    clock.advance(1.0)
    log.append({"i": 1})
    assert len(synced) == 1
    log.close()
    assert len(synced) == 1  # nothing left to sync at close
    log.close()


def test_log_records_reach_the_kernel_before_any_fsync(tmp_path: Path) -> None:
    """Appended records are in the file at once (a kill -9 does not lose them)."""
    log = JsonlLog(tmp_path / "j.jsonl", fsync_every=1000, fsync_interval=60)
    log.open()
    log.append({"i": 1})
    assert (tmp_path / "j.jsonl").read_bytes() == b'{"i":1}\n'
    log.close()


def test_log_refuses_appends_when_closed(tmp_path: Path) -> None:
    """Appending to a log that is not open is a ValueError."""
    log = JsonlLog(tmp_path / "j.jsonl")
    with pytest.raises(ValueError, match="is not open"):
        log.append({})
    assert "closed" in repr(log)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"fsync_every": 0}, "fsync_every"), ({"fsync_interval": -1}, "fsync_interval")],
)
def test_log_rejects_bad_policy(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    """The fsync policy must be positive."""
    with pytest.raises(ValueError, match=message):
        JsonlLog(tmp_path / "j.jsonl", **kwargs)


def test_write_all_retries_short_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short os.write is continued until every byte is written."""
    chunks: list[bytes] = []

    def short_write(fd: int, data: Any) -> int:
        chunk = bytes(data[:3])
        chunks.append(chunk)
        return len(chunk)

    monkeypatch.setattr(os, "write", short_write)
    write_all(5, b"abcdefgh")
    assert chunks == [b"abc", b"def", b"gh"]


def test_batch_journal_reopen_reads_what_was_recorded(tmp_path: Path) -> None:
    """Ids recorded in one run are `done` for the next one."""
    path = tmp_path / "run.journal"
    with BatchJournal(path) as journal:
        assert journal.done == frozenset()
        journal.record(BatchResult("a", True))
        journal.record(BatchResult(2, False))
        journal.record(BatchResult(None, False))
        journal.open()  # already open: nothing re-read
    again = BatchJournal(path)
    again.open()
    assert again.done == {"a", 2}
    assert "a" in again and "b" not in again
    assert repr(again).endswith("[2 done]>")
    again.close()


def test_log_open_twice_keeps_one_descriptor(tmp_path: Path) -> None:
    """Opening an open log does nothing."""
    log = JsonlLog(tmp_path / "j.jsonl")
    log.open()
    fd = log._require_fd()
    log.open()
    assert log._require_fd() == fd and log.is_open
    log.close()
    assert not log.is_open
