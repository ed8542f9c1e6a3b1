"""Durable append-only JSON-lines files, and :class:`BatchJournal` built on them.

Hand-written because the standard library has no "append with an fsync policy, recover
a torn tail on reopen" file, and the few lines needed do not justify a dependency.

Durability rules (also in ``docs/batch.md``):

* **kill -9 / a crash of the process** loses nothing appended: each record is handed to
  the kernel (``os.write``) as it is appended, and the kernel keeps it. Only a record
  being written at that instant can be torn.
* **power loss / kernel crash** loses at most the records appended since the last
  ``fsync``, which runs every ``fsync_every`` records, when ``fsync_interval`` seconds
  have passed since the previous one (checked at each append), and at close.
* **reopening** cuts a torn tail off (a last line without its newline, or unparsable
  lines up to the end of the file); an unparsable line *followed by valid ones* is
  damage of another kind and raises :class:`~flext_api.ConfigError`, and so does a
  file with no valid record that is more than a torn first record (another file named
  by mistake: it is left untouched).
* :class:`BatchJournal` reports a journal it cannot open, write or close (a directory,
  a missing folder, no permission, a full disk) as a ``ConfigError`` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import structlog

from ..._clock import Clock, get_clock
from ..._errors import ConfigError
from ..._exactjson import dumps as exact_dumps
from ..._exactjson import loads as exact_loads
from ._models import BatchId, BatchResult, valid_id

__all__ = ["BatchJournal", "JsonlLog", "scan_jsonl"]

_log = structlog.get_logger("flext_api.client.journal")


def scan_jsonl(path: str | os.PathLike[str], on_record: Callable[[Any], None]) -> int:
    """Feed every record of a JSON-lines file to ``on_record``; cut off a torn tail.

    Returns the size of the valid part (the file is truncated to it). A missing file
    counts as empty. Raises :class:`ConfigError` when a corrupt line is followed by a
    valid one, and when the file holds no valid record and more than a torn first
    record: that is some other file named by mistake, and it is left untouched.
    """
    file = Path(path)
    if not file.exists():
        return 0
    valid_end = 0
    bad: tuple[int, int] | None = None  # (line number, offset) of the first bad line
    # Whether the bad tail could be a first record cut short (a record starts with "{",
    # and its newline is written last) or blocks zeroed by a power loss.
    torn_record = zeroed = True
    offset = 0
    with file.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            start, offset = offset, offset + len(line)
            record: Any = None
            ok = line.endswith(b"\n")
            if ok:
                try:
                    # Exact: an id (or a stored result) past 64 bits comes back an int,
                    # not a float that no longer names it.
                    record = exact_loads(line)
                except orjson.JSONDecodeError:
                    ok = False
            if not ok:
                if bad is None:
                    bad = (number, start)
                    torn_record = line.startswith(b"{")
                torn_record = torn_record and not line.endswith(b"\n")
                zeroed = zeroed and not line.rstrip(b"\n").strip(b"\x00")
                continue
            if bad is not None:
                raise ConfigError(
                    f"{file}: line {bad[0]} is corrupt but later lines are valid; the file "
                    "was damaged (not just cut short): repair or delete it"
                )
            on_record(record)
            valid_end = offset
    if valid_end < offset:
        if valid_end == 0 and not (torn_record or zeroed):
            raise ConfigError(
                f"{file}: not a JSON-lines journal (no valid record; left untouched): "
                "name a new file, or delete this one"
            )
        _log.warning("cutting a torn tail off", path=str(file), dropped=offset - valid_end)
        os.truncate(file, valid_end)
    return valid_end


class JsonlLog:
    """An append-only JSON-lines file with the durability rules of this module.

    ``append`` writes the record to the kernel at once; ``sync`` (also run by the
    policy and by ``close``) makes everything appended so far survive a power loss.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync_every: int = 1000,
        fsync_interval: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        if fsync_every < 1:
            raise ValueError(f"fsync_every must be >= 1, got {fsync_every!r}")
        if fsync_interval < 0:
            raise ValueError(f"fsync_interval must be >= 0, got {fsync_interval!r}")
        self.path = Path(path)
        self.fsync_every = fsync_every
        self.fsync_interval = fsync_interval
        self._clock = get_clock(clock)
        self._fd: int | None = None
        self._unsynced = 0
        self._last_sync = 0.0

    @property
    def is_open(self) -> bool:
        """True between :meth:`open` and :meth:`close`."""
        return self._fd is not None

    def open(self) -> None:
        """Open for appending (creating the file); call :func:`scan_jsonl` first."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._last_sync = self._clock.monotonic()

    def append(self, record: Any) -> None:
        """Write one record (a line) to the kernel; fsync when the policy says so."""
        write_all(self._require_fd(), exact_dumps(record) + b"\n")
        self._unsynced += 1
        if (
            self._unsynced >= self.fsync_every
            or self._clock.monotonic() - self._last_sync >= self.fsync_interval
        ):
            self.sync()

    def sync(self) -> None:
        """fsync everything appended so far."""
        os.fsync(self._require_fd())
        self._unsynced = 0
        self._last_sync = self._clock.monotonic()

    def close(self) -> None:
        """fsync what is pending and close; idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._unsynced:
                os.fsync(fd)
                self._unsynced = 0
        finally:
            os.close(fd)

    def _require_fd(self) -> int:
        if self._fd is None:
            raise ValueError(f"journal {self.path} is not open")
        return self._fd

    def __repr__(self) -> str:
        state = "open" if self._fd is not None else "closed"
        return f"<JsonlLog {str(self.path)!r} {state}, {self._unsynced} unsynced>"


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a write may be short)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class BatchJournal:
    """The ids a batch has completed, kept durably so that a re-run skips them.

    Pass it (or just a path) as ``client.batch(..., journal=...)``. The batch records a
    result's id once the consumer has taken it (when it asks for the next one, or when
    the batch ends), so a result is never marked done before the caller handled it:
    delivery is **at least once**. After a crash, the results handed out since the last
    record (at most the one being handled, plus a torn line) are produced again; a
    consumer writing them somewhere durable must dedupe by id on resume (the
    ``flext-api batch`` command does this exactly; see ``docs/batch.md``).

    With ``store_results=True`` each record also holds the result (``to_dict()``).

    >>> journal = BatchJournal("run.journal")        # doctest: +SKIP
    >>> async for result in client.batch(requests, journal=journal): ...
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync_every: int = 1000,
        fsync_interval: float = 1.0,
        store_results: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self._log = JsonlLog(
            path, fsync_every=fsync_every, fsync_interval=fsync_interval, clock=clock
        )
        self.store_results = store_results
        self._done: set[BatchId] = set()

    @property
    def path(self) -> Path:
        """The journal file."""
        return self._log.path

    @property
    def done(self) -> frozenset[BatchId]:
        """Ids recorded before the last :meth:`open` (what a run skips)."""
        return frozenset(self._done)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._done

    def open(self) -> None:
        """Read the ids recorded so far (cutting a torn tail) and open for appending.

        Opening an open journal does nothing; reopening a closed one reads it again.
        """
        if self._log.is_open:
            return
        self._done.clear()
        try:
            scan_jsonl(self.path, self._load)
            self._log.open()
        except OSError as exc:  # unreadable, not writable, a directory, no such folder
            raise self._io_error("open", exc) from exc

    def _load(self, record: Any) -> None:
        if not isinstance(record, dict) or not valid_id(record.get("id")):
            raise ConfigError(f"{self.path}: not a batch journal (record {record!r})")
        self._done.add(record["id"])

    def record(self, result: BatchResult) -> None:
        """Mark ``result`` done (results without an id cannot be, and are not, recorded)."""
        if result.request_id is None:
            return
        entry: dict[str, Any] = {"id": result.request_id}
        if self.store_results:
            entry["result"] = result.to_dict()
        try:
            self._log.append(entry)
        except TypeError as exc:  # nothing was written: encoding comes first
            raise ConfigError(
                f"{self.path}: the result of {result.request_id!r} cannot be stored as JSON "
                f"({exc}): make the batch's decode= return JSON values, or "
                "store_results=False"
            ) from exc
        except OSError as exc:  # disk full, I/O error: this id is not recorded
            raise self._io_error(f"record {result.request_id!r} in", exc) from exc

    def close(self) -> None:
        """fsync and close; idempotent."""
        try:
            self._log.close()
        except OSError as exc:
            raise self._io_error("close", exc) from exc

    def _io_error(self, action: str, exc: OSError) -> ConfigError:
        return ConfigError(
            f"cannot {action} the batch journal {str(self.path)!r}: {exc.strerror or exc}"
        )

    def __enter__(self) -> BatchJournal:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BatchJournal {str(self.path)!r} [{len(self._done)} done]>"
