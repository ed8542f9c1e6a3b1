"""The batch command's output file and its journal: resumable, each line exactly once.

The output holds one JSON line per result. With ``--journal``, the output is written
in **checkpoints**: every ``every`` results (1000) or ``interval`` seconds (1 s, checked
at each result), and at the end, the buffered lines are written to the output and
fsynced, *then* one journal record names them::

    {"output": "/abs/out.jsonl", "offset": 123456, "lines": [12, 9, 10, ...]}

meaning "the first 123456 bytes of that output are durable and hold the results of
these input lines". The journal's first record describes the input
(``{"flext_api_batch_journal": 1, "input": ..., "input_size": ..., "input_sha256": ...}``:
its path, size and a SHA-256 of its whole content) so a journal is never applied to
another file, nor to its input changed since: line numbers only mean something for the
same bytes. The same content under another path (a moved or copied input) resumes.
Journals written before the hash was recorded are matched by path and size.

**Resuming** (the journal file exists): the input lines of every checkpoint are
skipped, and every output named in the journal is cut back to its last checkpointed
offset: lines written after it (possibly torn by kill -9) are dropped and their
requests run again. So, whatever the moment of the crash, the outputs of all the runs
together hold every input line exactly once. What a crash costs is at most one
checkpoint's worth of requests sent again (**at-least-once sending**: use
idempotent requests or an ``Idempotency-Key`` header for writes). Both files are
fsynced at each checkpoint, so this holds across a power loss too.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from .._clock import Clock, get_clock
from .._errors import ConfigError
from .._numbers import is_int
from ..client.batch._journal import JsonlLog, scan_jsonl, write_all

__all__ = ["CheckpointedOutput", "DoneLines", "ResumeState"]

_log = structlog.get_logger("flext_api.cli.batch")
_VERSION = 1
# How every journal starts (orjson keeps the header's key order).
_HEADER_START = b'{"flext_api_batch_journal":'
# How every result line starts (``output_record`` puts the id first).
_RESULT_START = b'{"id":'
_SCAN_CHUNK = 1 << 16


def _io_error(action: str, path: object, exc: OSError) -> ConfigError:
    """``cannot <action> '<path>': <reason>`` for a file the batch reads or writes."""
    return ConfigError(f"cannot {action} {str(path)!r}: {exc.strerror}")


def _clip(record: object) -> str:
    text = repr(record)
    return text if len(text) <= 120 else text[:117] + "..."


class DoneLines:
    """A set of input line numbers as a bitmap: 1 bit a line, whatever the input size."""

    __slots__ = ("_bits", "count")

    def __init__(self) -> None:
        self._bits = bytearray()
        self.count = 0

    def add(self, line: int) -> None:
        """Mark ``line`` (>= 1) done."""
        byte, bit = divmod(line, 8)
        if byte >= len(self._bits):
            self._bits.extend(bytes(byte + 1 - len(self._bits)))
        mask = 1 << bit
        if not self._bits[byte] & mask:
            self._bits[byte] |= mask
            self.count += 1

    def __contains__(self, line: object) -> bool:
        if not isinstance(line, int):
            return False
        byte, bit = divmod(line, 8)
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << bit))

    def __len__(self) -> int:
        return self.count


class _Fingerprint:
    """What identifies an input: its path, size and the SHA-256 of its content."""

    __slots__ = ("path", "sha256", "size")

    def __init__(self, path: Path) -> None:
        self.path = path
        # One more streaming read of the input (SHA-256 runs at about 1 GB/s): small
        # next to sending its requests, and it catches a change anywhere in it.
        try:
            with path.open("rb") as fh:
                self.size = os.fstat(fh.fileno()).st_size
                self.sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError as exc:
            raise _io_error("read", path, exc) from exc

    def header(self) -> dict[str, Any]:
        """The journal's first record."""
        return {
            "flext_api_batch_journal": _VERSION,
            "input": str(self.path),
            "input_size": self.size,
            "input_sha256": self.sha256,
        }

    def matches(self, recorded: dict[str, Any]) -> bool:
        """Whether a journal header describes this input."""
        if "input_sha256" in recorded:
            return bool(
                recorded["input_sha256"] == self.sha256 and recorded.get("input_size") == self.size
            )
        # A journal from before the hash: the same file, by path, of the same size.
        return bool(
            recorded.get("input") == str(self.path) and recorded.get("input_size") == self.size
        )

    def mismatch(self, journal: Path, recorded: dict[str, Any]) -> ConfigError:
        """The error for a journal whose header does not describe this input."""
        digest = recorded.get("input_sha256")
        theirs = f"{recorded.get('input_size')} bytes" + (
            f", sha256 {str(digest)[:12]}" if digest is not None else ""
        )
        return ConfigError(
            f"{journal} belongs to {str(recorded.get('input'))!r} ({theirs}), not to "
            f"{str(self.path)!r} ({self.size} bytes, sha256 {self.sha256[:12]}): the input "
            "is another file or changed since; use another --journal, or delete it to "
            "start over"
        )


def _check_tail_is_results(path: Path, offset: int) -> None:
    """Raise :class:`ConfigError` unless what ``path`` holds after ``offset`` is what a
    batch run leaves there: result lines (each starting ``{"id":``, the last one maybe
    torn), from a line boundary on.

    The journal names the outputs to cut by path; a journal damaged, written by hand or
    from another machine could name any file (``/etc/passwd`` with offset 0), and
    cutting it would destroy it. Memory stays bounded: only the start of each line is
    looked at.
    """
    try:
        with path.open("rb") as fh:
            fh.seek(max(offset - 1, 0))
            ok = offset == 0 or fh.read(1) == b"\n"
            while ok:
                head = fh.readline(len(_RESULT_START))
                if not head:
                    break
                if head != _RESULT_START:
                    # Only a line torn at the very end may be shorter than the marker.
                    ok = _RESULT_START.startswith(head) and not fh.read(1)
                    break
                rest = fh.readline(_SCAN_CHUNK)
                while rest and not rest.endswith(b"\n"):
                    rest = fh.readline(_SCAN_CHUNK)
    except OSError as exc:
        raise _io_error("cut back", path, exc) from exc
    if not ok:
        raise ConfigError(
            f"{path}: what follows its checkpoint (byte {offset}) is not results of this "
            "command, so it is not cut back (left untouched): the journal names another "
            "file, or the file was changed after the run; repair or delete the journal"
        )


@dataclass
class ResumeState:
    """What opening the output found: lines already done and output bytes dropped."""

    done: DoneLines = field(default_factory=DoneLines)
    resumed: bool = False
    dropped_bytes: int = 0
    warnings: list[str] = field(default_factory=list)


class CheckpointedOutput:
    """Appends result lines to ``output``; with a ``journal``, in durable checkpoints."""

    def __init__(
        self,
        output: Path,
        journal: Path | None,
        *,
        input_path: Path,
        every: int = 1000,
        interval: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self.output = output.resolve()
        self.journal_path = journal
        self._input = input_path.resolve()
        self._every = every
        self._interval = interval
        self._clock = get_clock(clock)
        self._journal = JsonlLog(journal, fsync_every=1) if journal is not None else None
        self._fd: int | None = None
        self._offset = 0
        self._buffer: list[bytes] = []
        self._lines: list[int] = []
        self._last = 0.0
        self._failed = False
        self.written = 0

    # -- opening and resuming -------------------------------------------------------------
    def open(self) -> ResumeState:
        """Read the journal (if any), cut outputs back, and open the output for writing.

        Raises :class:`ConfigError` for a journal that is not one, or a file that cannot
        be read or written; the output is only replaced once the journal is open.
        """
        state = ResumeState()
        append = False
        offsets: dict[str, int] = {}
        fingerprint: _Fingerprint | None = None
        if self._journal is not None:
            fingerprint = _Fingerprint(self._input)
            offsets = self._read_journal(state, fingerprint)
            try:
                self._journal.open()
            except OSError as exc:
                raise _io_error("write", self.journal_path, exc) from exc
            try:
                state.dropped_bytes = self._cut_back(offsets, state)
            except ConfigError:
                self._journal_close()
                raise
            append = str(self.output) in offsets
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        try:
            self._fd = os.open(self.output, flags, 0o644)
        except OSError as exc:
            self._journal_close()
            raise _io_error("write", self.output, exc) from exc
        self._offset = os.fstat(self._fd).st_size
        if self._journal is not None and fingerprint is not None:
            try:
                if not state.resumed:
                    self._journal.append(fingerprint.header())
                # Name this output before writing to it, so that a crash before the first
                # checkpoint still gets its partial lines cut off on resume.
                self._journal.append(
                    {"output": str(self.output), "offset": self._offset, "lines": []}
                )
            except OSError as exc:
                self._failed = True
                raise _io_error("write", self.journal_path, exc) from exc
        self._last = self._clock.monotonic()
        return state

    def _journal_close(self) -> None:
        if self._journal is not None:
            self._journal.close()

    def _check_is_journal(self) -> None:
        """Refuse a file that is not a journal: reading one cuts an unparsable tail off,
        which would destroy a file named by mistake (``--journal notes.txt``)."""
        assert self.journal_path is not None
        try:
            with self.journal_path.open("rb") as fh:
                head = fh.read(len(_HEADER_START))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _io_error("read", self.journal_path, exc) from exc
        # An empty file, or a header torn while being written, is still a journal.
        if not (
            head == _HEADER_START
            or (len(head) < len(_HEADER_START) and _HEADER_START.startswith(head))
        ):
            raise ConfigError(
                f"{self.journal_path}: not a flext-api batch journal (left untouched): "
                "name a new file with --journal"
            )

    def _read_journal(self, state: ResumeState, fingerprint: _Fingerprint) -> dict[str, int]:
        assert self.journal_path is not None
        self._check_is_journal()
        offsets: dict[str, int] = {}
        header: list[dict[str, Any]] = []
        journal = self.journal_path

        def take(record: Any) -> None:
            if not header:
                if not isinstance(record, dict) or "flext_api_batch_journal" not in record:
                    raise ConfigError(f"{journal}: not a flext-api batch journal")
                header.append(record)
                return
            output = record.get("output") if isinstance(record, dict) else None
            offset = record.get("offset") if isinstance(record, dict) else None
            lines = record.get("lines") if isinstance(record, dict) else None
            if (
                not isinstance(output, str)
                or not (is_int(offset) and offset >= 0)
                or not isinstance(lines, list)
                or not all(is_int(line) and line >= 1 for line in lines)
            ):
                raise ConfigError(
                    f"{journal}: unexpected record {_clip(record)} (the journal was "
                    "changed or damaged: repair or delete it)"
                )
            offsets[output] = offset
            for line in lines:
                state.done.add(line)

        try:
            scan_jsonl(journal, take)
        except OSError as exc:
            raise _io_error("read", journal, exc) from exc
        if not header:
            return offsets
        state.resumed = True
        if not fingerprint.matches(header[0]):
            raise fingerprint.mismatch(journal, header[0])
        return offsets

    @staticmethod
    def _cut_back(offsets: dict[str, int], state: ResumeState) -> int:
        """Cut every earlier output back to its checkpoint; return the bytes dropped.

        Every output to cut is opened first, so one that cannot be (a directory, no
        write permission) is a ConfigError before any other has lost a byte.
        """
        cuts: list[tuple[int, Path, int, int]] = []
        try:
            for name, offset in offsets.items():
                path = Path(name)
                try:
                    size = path.stat().st_size
                except FileNotFoundError:
                    state.warnings.append(
                        f"{path} (an earlier output) is gone: its results are not repeated here"
                    )
                    continue
                except OSError as exc:
                    raise _io_error("cut back", path, exc) from exc
                if size < offset:
                    state.warnings.append(
                        f"{path} is shorter than the journal says ({size} < {offset} bytes): "
                        "it was changed after the run"
                    )
                elif size > offset:
                    _check_tail_is_results(path, offset)
                    try:
                        fd = os.open(path, os.O_WRONLY)
                    except OSError as exc:
                        raise _io_error("cut back", path, exc) from exc
                    cuts.append((fd, path, size, offset))
            dropped = 0
            for fd, path, size, offset in cuts:
                try:
                    os.ftruncate(fd, offset)
                except OSError as exc:
                    raise _io_error("cut back", path, exc) from exc
                _log.info("dropped un-checkpointed results", output=str(path), bytes=size - offset)
                dropped += size - offset
            return dropped
        finally:
            for fd, *_ in cuts:
                os.close(fd)

    # -- writing ----------------------------------------------------------------------------
    def write(self, record: dict[str, Any], line: int) -> None:
        """Queue one result line; checkpoint when ``every`` or ``interval`` is reached."""
        self._buffer.append(orjson.dumps(record) + b"\n")
        self._lines.append(line)
        self.written += 1
        if (
            len(self._buffer) >= self._every
            or self._clock.monotonic() - self._last >= self._interval
        ):
            self.checkpoint()

    def checkpoint(self) -> None:
        """Write what is buffered; with a journal, fsync it and record the checkpoint.

        A failed write (disk full, I/O error) raises :class:`ConfigError` and stops the
        writer: nothing more is written to either file, so the journal still describes
        the output exactly (a resumed run cuts off whatever the failed write left).
        """
        self._last = self._clock.monotonic()
        if not self._buffer:
            return
        if self._failed:
            raise ConfigError(f"cannot write {str(self.output)!r}: an earlier write failed")
        fd = self._require_fd()
        data = b"".join(self._buffer)
        try:
            write_all(fd, data)
            if self._journal is not None:
                os.fsync(fd)
        except OSError as exc:
            self._failed = True
            raise _io_error("write", self.output, exc) from exc
        self._offset += len(data)
        if self._journal is not None:
            try:
                self._journal.append(
                    {"output": str(self.output), "offset": self._offset, "lines": self._lines}
                )
            except OSError as exc:
                self._failed = True
                raise _io_error("write", self.journal_path, exc) from exc
        self._buffer = []
        self._lines = []

    def close(self) -> None:
        """Final checkpoint, fsync, close both files; idempotent.

        After a failed write only the files are closed (see :meth:`checkpoint`).
        """
        if self._fd is None:
            return
        try:
            if not self._failed:
                self.checkpoint()
                try:
                    os.fsync(self._fd)
                except OSError as exc:
                    self._failed = True
                    raise _io_error("write", self.output, exc) from exc
        finally:
            os.close(self._fd)
            self._fd = None
            if self._journal is not None:
                try:
                    self._journal.close()
                except OSError as exc:
                    if not self._failed:
                        self._failed = True
                        raise _io_error("write", self.journal_path, exc) from exc

    def _require_fd(self) -> int:
        if self._fd is None:
            raise ValueError("output is not open")
        return self._fd
