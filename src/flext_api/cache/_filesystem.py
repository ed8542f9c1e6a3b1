"""``FilesystemBackend``: one file per entry, atomic writes, bounded by total bytes.

Why hand-written: aiocache and cashews have no filesystem backend; diskcache is
SQLite-based and synchronous. Our needs are small and specific:

* **Atomic, multi-process safe writes** (:mod:`flext_api._atomic`, shared with
  ``flext_api.storage.LocalStorage``). Data goes to a unique temporary file in the
  entry's directory, then ``os.replace`` moves it over the entry: a reader sees the old
  file or the new one, never half of either, even with two processes writing the same
  key at once (the last ``os.replace`` wins).
* **Survives a restart.** Each file carries its own absolute expiry (wall clock, since
  it must mean the same thing to the next process) and its key.
* **Damage is a miss.** A header, length or CRC-32 mismatch (a truncated or corrupted
  file) is logged with structlog, the file is removed and the caller sees a miss.
* **Bounded by bytes.** Each process keeps a running total of what it wrote since its
  last scan; past ``max_bytes`` it rescans the directory and deletes expired entries,
  then the oldest (by modification time) until the total is under 90 % of the bound -
  never the entry just written. With several writers the bound holds approximately
  (each rescans on its own tally). As in the memory backend, an entry whose file would
  be larger than ``max_bytes`` is not stored and pushes nothing out (the key's previous
  entry, replaced, is removed).

File layout: ``<root>/<sha256[:2]>/<sha256>.fxc`` containing
``b"FXC1" | expires_at: f64 | key_len: u32 | data_len: u32 | crc32: u32 | key | data``.
Blocking file I/O runs in a worker thread (``asyncio.to_thread``); an ``OSError``
(disk full, no permission) becomes a :class:`~flext_api.FlextApiError`, which the HTTP
cache and ``AsyncSmartCache`` log and treat as a miss.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog

from .._atomic import TMP_PREFIX, atomic_write
from .._clock import Clock, get_clock
from .._errors import ErrorCode, FlextApiError
from ._backend import BackendUsage, Stored
from ._durations import to_count, to_seconds

__all__ = ["FilesystemBackend"]

_log = structlog.get_logger("flext_api.cache")
T = TypeVar("T")

_MAGIC = b"FXC1"
_HEADER = struct.Struct(">4sdIII")
_SUFFIX = ".fxc"
_LOW_WATER = 0.9
_STALE_TMP_SECONDS = 300.0  # a temp file this old belongs to a writer that died


class FilesystemBackend:
    """Entries as files under ``path``, at most about ``max_bytes`` in total."""

    name = "filesystem"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = 256 * 1024 * 1024,
        fsync: bool = False,
        cleanup_interval: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        # Expired files are swept on a write at most this often (and always past max_bytes).
        self.cleanup_interval = (
            None
            if cleanup_interval is None
            else to_seconds(cleanup_interval, "cleanup_interval", allow_zero=False)
        )
        self._last_scan = -math.inf
        self.root = Path(path)
        self.max_bytes = to_count(max_bytes, "max_bytes")
        self.fsync = fsync
        self._clock = get_clock(clock)
        self._tally: int | None = None  # bytes believed on disk; None until the first scan
        self._evictions = 0
        self._corrupt = 0

    # -- paths and format ---------------------------------------------------------------
    def _path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return self.root / digest[:2] / (digest + _SUFFIX)

    def _entry_files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for sub in self.root.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                yield from sub.iterdir()

    @staticmethod
    def _pack(key: str, data: bytes, expires_at: float) -> bytes:
        key_bytes = key.encode("utf-8", "surrogatepass")
        crc = zlib.crc32(data, zlib.crc32(key_bytes))
        return _HEADER.pack(_MAGIC, expires_at, len(key_bytes), len(data), crc) + key_bytes + data

    def _unpack(self, path: Path, key: str, raw: bytes) -> tuple[bytes, float] | None:
        """``(data, expires_at)``, or None (logged, file removed) when the file is damaged."""
        reason = None
        if len(raw) < _HEADER.size:
            reason = "shorter than its header"
        else:
            magic, expires_at, key_len, data_len, crc = _HEADER.unpack_from(raw)
            body = raw[_HEADER.size :]
            if magic != _MAGIC:
                reason = "bad magic"
            elif math.isnan(expires_at):
                # The checksum covers key and data only; a NaN expiry would never expire.
                reason = "expiry is not a number"
            elif len(body) != key_len + data_len:
                reason = f"length {len(body)} != {key_len + data_len} (truncated?)"
            elif zlib.crc32(body[key_len:], zlib.crc32(body[:key_len])) != crc:
                reason = "checksum mismatch"
            elif body[:key_len] != key.encode("utf-8", "surrogatepass"):
                return None  # a SHA-256 collision: not our entry, not damaged either
            else:
                return body[key_len:], expires_at
        self._corrupt += 1
        _log.warning("cache.filesystem.corrupt_entry", path=str(path), key=key, reason=reason)
        self._unlink_quietly(path)
        return None

    @staticmethod
    def _unlink(path: Path) -> int:
        """Remove ``path``; return the bytes freed (0 when another process was first)."""
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    @classmethod
    def _unlink_quietly(cls, path: Path) -> None:
        """Remove a file a read found expired or damaged: housekeeping, so a directory that
        refuses it (a read-only cache) leaves the read a miss rather than an error."""
        with contextlib.suppress(OSError):
            cls._unlink(path)

    # -- blocking operations (run in a thread) ------------------------------------------
    def _read(self, key: str, now: float) -> Stored | None:
        path = self._path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        unpacked = self._unpack(path, key, raw)
        if unpacked is None:
            return None
        data, expires_at = unpacked
        if now >= expires_at:
            self._unlink_quietly(path)
            return None
        return data, (None if expires_at == math.inf else expires_at - now)

    def _write(self, key: str, data: bytes, ttl: float | None, now: float) -> None:
        path = self._path(key)
        blob = self._pack(key, data, now + ttl if ttl is not None else math.inf)
        if len(blob) > self.max_bytes:
            # Writing it would make the rescan delete every other entry, then this one.
            self._delete(key)
            self._evictions += 1
            return
        atomic_write(path, blob, fsync=self.fsync)
        if self._tally is None:
            self._scan(now, keep=path)
        else:
            self._tally += len(blob)
        if self._tally is not None and (
            self._tally > self.max_bytes
            or (
                self.cleanup_interval is not None and now - self._last_scan >= self.cleanup_interval
            )
        ):
            self._scan(now, keep=path)

    def _scan(self, now: float, keep: Path | None = None) -> None:
        """Recount the bytes on disk; drop expired entries, then the oldest, past the bound.

        ``keep`` (the entry just written) is never evicted for size: it is the newest.
        """
        live: list[tuple[float, int, Path]] = []
        total = 0
        wall = time.time()
        for path in self._entry_files():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if path.name.startswith(TMP_PREFIX):
                if wall - stat.st_mtime > _STALE_TMP_SECONDS:
                    self._unlink(path)
                continue
            if self._expired(path, now):
                self._unlink(path)
                continue
            total += stat.st_size
            if path != keep:
                live.append((stat.st_mtime, stat.st_size, path))
        if total > self.max_bytes:
            live.sort()
            target = self.max_bytes * _LOW_WATER
            for _, size, path in live:
                if total <= target:
                    break
                total -= size
                if self._unlink(path):
                    self._evictions += 1
        self._tally = total
        self._last_scan = now

    @staticmethod
    def _expired(path: Path, now: float) -> bool:
        try:
            with path.open("rb") as handle:
                head = handle.read(_HEADER.size)
        except FileNotFoundError:
            return False
        if len(head) < _HEADER.size:
            return False  # damaged: left for the reader to report
        return bool(now >= _HEADER.unpack(head)[1])

    def _delete(self, key: str) -> bool:
        freed = self._unlink(self._path(key))
        if freed and self._tally is not None:
            self._tally -= freed
        return bool(freed)

    def _clear(self) -> None:
        for path in list(self._entry_files()):
            if path.suffix == _SUFFIX or path.name.startswith(TMP_PREFIX):
                self._unlink(path)
        self._tally = 0

    def _usage(self) -> BackendUsage:
        entries = size = 0
        for path in self._entry_files():
            if path.suffix != _SUFFIX:
                continue
            with contextlib.suppress(FileNotFoundError):
                size += path.stat().st_size
                entries += 1
        return BackendUsage(entries, size, self._evictions, self._corrupt)

    # -- the async protocol ---------------------------------------------------------------
    def _now(self) -> float:
        return self._clock.time()

    async def _io(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking ``fn`` in a thread; an OSError (disk full, permissions) -> FlextApiError."""
        try:
            return await asyncio.to_thread(fn, *args)
        except OSError as exc:
            raise FlextApiError.from_code(
                ErrorCode.UNEXPECTED_ERROR,
                f"filesystem cache {operation} failed under {str(self.root)!r}: {exc}",
                details={"path": str(self.root), "errno": exc.errno},
            ) from exc

    async def get(self, key: str) -> Stored | None:
        return await self._io("read", self._read, key, self._now())

    async def set(self, key: str, data: bytes, ttl: float | None) -> None:
        await self._io("write", self._write, key, data, ttl, self._now())

    async def delete(self, key: str) -> bool:
        return await self._io("delete", self._delete, key)

    async def clear(self) -> None:
        await self._io("clear", self._clear)

    async def get_many(self, keys: Sequence[str]) -> dict[str, Stored]:
        now = self._now()

        def read_all() -> dict[str, Stored]:
            found = {key: self._read(key, now) for key in keys}
            return {key: item for key, item in found.items() if item is not None}

        return await self._io("read", read_all)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        now = self._now()

        def write_all() -> None:
            for key, data in items.items():
                self._write(key, data, ttl, now)

        await self._io("write", write_all)

    async def usage(self) -> BackendUsage:
        return await self._io("scan", self._usage)

    async def close(self) -> None:
        """Nothing stays open between calls."""

    def __repr__(self) -> str:
        return f"<FilesystemBackend {str(self.root)!r} max_bytes={self.max_bytes}>"
