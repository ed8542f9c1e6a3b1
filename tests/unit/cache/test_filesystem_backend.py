"""FilesystemBackend: atomic files with expiry, damage as a logged miss, a byte bound."""

from __future__ import annotations

import math
import os
import struct
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from flext_api import ErrorCode, FlextApiError
from flext_api._atomic import TMP_PREFIX
from flext_api.cache import FilesystemBackend
from flext_api.testing import FakeClock


def entry_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.fxc"))


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(f"{TMP_PREFIX}*"))


async def test_round_trip_with_remaining_ttl(tmp_path: Path) -> None:
    """set then get returns the bytes and the seconds left."""
    clock = FakeClock()
    backend = FilesystemBackend(tmp_path, clock=clock)
    await backend.set("k", b"data", 60)
    await backend.set("forever", b"x", None)
    clock.advance(10)
    data, ttl = await backend.get("k") or (b"", None)
    assert (data, ttl) == (b"data", 50.0)
    assert await backend.get("forever") == (b"x", None)
    assert await backend.get("missing") is None


async def test_expired_entry_is_a_miss_and_removed(tmp_path: Path) -> None:
    """An expired file reads as a miss and is deleted."""
    clock = FakeClock()
    backend = FilesystemBackend(tmp_path, clock=clock)
    await backend.set("k", b"data", 1)
    clock.advance(1)
    assert await backend.get("k") is None
    assert entry_files(tmp_path) == []


async def test_entries_survive_a_new_backend_instance(tmp_path: Path) -> None:
    """A second backend on the same directory (a restarted process) reads the entries."""
    await FilesystemBackend(tmp_path).set("k", b"persisted", 3600)
    assert (await FilesystemBackend(tmp_path).get("k"))[0] == b"persisted"  # type: ignore[index]


async def test_truncated_file_is_a_logged_miss(tmp_path: Path) -> None:
    """A file cut short reads as a miss, is logged with structlog and removed."""
    backend = FilesystemBackend(tmp_path)
    await backend.set("k", b"0123456789", None)
    (path,) = entry_files(tmp_path)
    path.write_bytes(path.read_bytes()[:-3])
    with capture_logs() as logs:
        assert await backend.get("k") is None
    assert logs[0]["event"] == "cache.filesystem.corrupt_entry"
    assert "truncated" in logs[0]["reason"]
    assert not path.exists()
    assert (await backend.usage()).corrupt_entries == 1


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda raw: raw[:10], "shorter than its header"),
        (lambda raw: b"XXXX" + raw[4:], "bad magic"),
        (lambda raw: raw[:-1] + bytes([raw[-1] ^ 0xFF]), "checksum mismatch"),
    ],
)
async def test_damaged_file_is_a_miss(tmp_path: Path, damage: object, reason: str) -> None:
    """Short, foreign or bit-flipped files are misses with the reason logged."""
    backend = FilesystemBackend(tmp_path)
    await backend.set("k", b"payload", None)
    (path,) = entry_files(tmp_path)
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with capture_logs() as logs:
        assert await backend.get("k") is None
    assert logs[0]["reason"] == reason


async def test_hash_collision_is_a_miss_not_damage(tmp_path: Path) -> None:
    """A file holding another key (a SHA-256 collision) is a miss and is left alone."""
    backend = FilesystemBackend(tmp_path)
    await backend.set("a", b"A", None)
    (path,) = entry_files(tmp_path)
    backend._path("b").parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, backend._path("b"))
    assert await backend.get("b") is None
    assert backend._path("b").exists()


async def test_byte_bound_evicts_oldest_files(tmp_path: Path) -> None:
    """Past max_bytes the oldest entries are deleted until under 90 % of the bound."""
    backend = FilesystemBackend(tmp_path, max_bytes=1000)
    for i in range(10):
        await backend.set(f"k{i}", b"x" * 150, None)
        path = backend._path(f"k{i}")
        os.utime(path, (time.time() - 100 + i, time.time() - 100 + i))  # strictly ordered
    usage = await backend.usage()
    assert usage.size_bytes is not None
    assert usage.size_bytes <= 1000
    assert usage.evictions > 0
    assert await backend.get("k9") is not None
    assert await backend.get("k0") is None


async def test_an_entry_larger_than_the_bound_is_not_stored_and_pushes_nothing_out(
    tmp_path: Path,
) -> None:
    """As in the memory backend: one oversized entry is refused and the others all stay
    (it used to be written, and the rescan then deleted every entry, itself included)."""
    backend = FilesystemBackend(tmp_path, max_bytes=2000)
    for i in range(5):
        await backend.set(f"k{i}", b"x" * 100, None)
    await backend.set("k0", b"y" * 5000, None)  # replaces k0: its old value is gone too
    await backend.set("huge", b"z" * 5000, None)
    assert await backend.get("huge") is None
    assert await backend.get("k0") is None
    assert [await backend.get(f"k{i}") for i in range(1, 5)] == [(b"x" * 100, None)] * 4
    usage = await backend.usage()
    assert (usage.entries, usage.evictions) == (4, 2)
    assert temp_files(tmp_path) == []


async def test_an_entry_near_the_bound_pushes_the_others_out_but_is_kept(tmp_path: Path) -> None:
    """An entry above the 90 % low-water mark evicts older ones, never itself."""
    backend = FilesystemBackend(tmp_path, max_bytes=1000)
    for i in range(3):
        await backend.set(f"k{i}", b"x" * 100, None)
    big = b"b" * 900  # with its header and key, a file of about 930 bytes
    await backend.set("big", big, None)
    assert await backend.get("big") == (big, None)
    assert [await backend.get(f"k{i}") for i in range(3)] == [None] * 3


async def test_scan_drops_expired_entries_and_stale_temp_files(tmp_path: Path) -> None:
    """A rescan removes expired entries and temp files left by a dead writer."""
    clock = FakeClock(wall_start=time.time())
    backend = FilesystemBackend(tmp_path, max_bytes=10_000, clock=clock)
    await backend.set("old", b"x", 1)
    orphan = backend._path("old").parent / f"{TMP_PREFIX}orphan"
    orphan.write_bytes(b"partial")
    os.utime(orphan, (time.time() - 3600, time.time() - 3600))
    clock.advance(5)
    backend._scan(clock.time())
    assert not backend._path("old").exists()
    assert not orphan.exists()


async def test_clear_removes_only_cache_files(tmp_path: Path) -> None:
    """clear() deletes entry and temp files and leaves other files alone."""
    backend = FilesystemBackend(tmp_path)
    await backend.set_many({"a": b"1", "b": b"2"}, None)
    keep = tmp_path / "README"
    keep.write_text("mine")
    await backend.clear()
    assert entry_files(tmp_path) == []
    assert keep.exists()


async def test_many_and_delete(tmp_path: Path) -> None:
    """get_many returns the found keys; delete reports whether a file was removed."""
    backend = FilesystemBackend(tmp_path)
    await backend.set_many({"a": b"1", "b": b"2"}, 60)
    found = await backend.get_many(["a", "b", "c"])
    assert sorted(found) == ["a", "b"]
    assert await backend.delete("a") is True
    assert await backend.delete("a") is False
    usage = await backend.usage()
    assert usage.entries == 1
    await backend.close()


async def test_usage_of_missing_directory(tmp_path: Path) -> None:
    """A backend whose directory does not exist yet reports zero entries."""
    usage = await FilesystemBackend(tmp_path / "nope").usage()
    assert (usage.entries, usage.size_bytes) == (0, 0)


async def test_fsync_option_writes_durably(tmp_path: Path) -> None:
    """fsync=True still round-trips (and flushes to disk before the rename)."""
    backend = FilesystemBackend(tmp_path, fsync=True)
    await backend.set("k", b"v", None)
    assert await backend.get("k") == (b"v", None)
    assert repr(backend).startswith("<FilesystemBackend ")


def test_bad_bound() -> None:
    """max_bytes below 1 is a ValueError."""
    with pytest.raises(ValueError, match="max_bytes"):
        FilesystemBackend("/tmp/x", max_bytes=0)


async def test_os_errors_become_flext_api_errors(tmp_path: Path) -> None:
    """A directory that cannot be written (here: a file in its place) gives a FlextApiError."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    backend = FilesystemBackend(blocker)
    with pytest.raises(FlextApiError, match="filesystem cache write failed") as info:
        await backend.set("k", b"v", None)
    assert info.value.code is ErrorCode.UNEXPECTED_ERROR
    assert isinstance(info.value.__cause__, OSError)


async def test_failed_write_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the final rename fails, the temporary file is removed and the error reported."""
    backend = FilesystemBackend(tmp_path)

    def refuse(src: str, dst: object) -> None:
        raise PermissionError(13, "refused")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(FlextApiError, match="refused"):
        await backend.set("k", b"v", None)
    assert temp_files(tmp_path) == []


async def test_delete_keeps_the_byte_tally(tmp_path: Path) -> None:
    """Deleting an entry lowers the running byte total used for the bound."""
    backend = FilesystemBackend(tmp_path, max_bytes=10_000)
    await backend.set("a", b"x" * 100, None)
    before = backend._tally
    assert before is not None
    await backend.delete("a")
    assert backend._tally == 0


async def test_scan_skips_damaged_headers_and_vanished_files(tmp_path: Path) -> None:
    """A short file is left for the reader to report; the scan still finishes."""
    backend = FilesystemBackend(tmp_path, max_bytes=10_000)
    await backend.set("a", b"x", None)
    (path,) = entry_files(tmp_path)
    path.write_bytes(b"FXC")
    backend._scan(time.time())
    assert path.exists()
    assert FilesystemBackend._expired(tmp_path / "gone.fxc", time.time()) is False


def test_bounds_are_checked(tmp_path: Path) -> None:
    """max_bytes must be an int >= 1 and cleanup_interval a duration > 0; NaN is neither."""
    with pytest.raises(TypeError, match="max_bytes must be an int"):
        FilesystemBackend(tmp_path, max_bytes=float("nan"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cleanup_interval"):
        FilesystemBackend(tmp_path, cleanup_interval=float("nan"))
    with pytest.raises(ValueError, match="cleanup_interval"):
        FilesystemBackend(tmp_path, cleanup_interval=0)


async def test_nan_expiry_is_a_logged_miss(tmp_path: Path) -> None:
    """A header whose expiry reads as NaN (never expiring) is damage: a logged miss."""
    backend = FilesystemBackend(tmp_path)
    await backend.set("k", b"value", 60)
    (path,) = entry_files(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[4:12] = struct.pack(">d", math.nan)
    path.write_bytes(bytes(raw))
    with capture_logs() as logs:
        assert await backend.get("k") is None
    assert logs[0]["reason"] == "expiry is not a number"
    assert not path.exists()
    assert (await backend.usage()).corrupt_entries == 1


async def test_traversal_and_separator_keys_stay_inside_the_root(tmp_path: Path) -> None:
    """Keys with .., /, : or NUL are hashed to a file under the root and come back intact."""
    root = tmp_path / "root"
    backend = FilesystemBackend(root)
    keys = ["../../escape", "/abs/path", "a:b", "nul\x00key", "\ud800"]
    for i, key in enumerate(keys):
        await backend.set(key, str(i).encode(), None)
    assert [(await backend.get(key) or (b"",))[0] for key in keys] == [b"0", b"1", b"2", b"3", b"4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]  # noqa: ASYNC240
    assert all(p.resolve().is_relative_to(root.resolve()) for p in entry_files(root))


async def test_expired_or_damaged_entry_in_a_read_only_directory_is_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the file cannot be removed (a read-only cache), an expired or damaged entry is
    still a miss, not an error: the removal is housekeeping."""
    clock = FakeClock()
    backend = FilesystemBackend(tmp_path, clock=clock)
    await backend.set("old", b"data", 1)
    await backend.set("cut", b"0123456789", None)
    backend._path("cut").write_bytes(backend._path("cut").read_bytes()[:-3])
    clock.advance(1)

    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(13, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    assert await backend.get("old") is None
    with capture_logs() as logs:
        assert await backend.get("cut") is None
    assert [e["event"] for e in logs] == ["cache.filesystem.corrupt_entry"]
    assert await backend.get_many(["old", "cut"]) == {}
