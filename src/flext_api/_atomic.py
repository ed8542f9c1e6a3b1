"""Atomic file replacement: write a temporary file beside the target, then rename it.

Shared by the filesystem cache backend and :class:`flext_api.storage.LocalStorage`, so
both get the same guarantees from one piece of code:

* a reader sees the old file or the new one, never half of either (``os.replace`` is
  atomic within one filesystem, which is why the temporary file lives in the target's
  own directory);
* a writer that fails (disk full, a cancelled upload, an exception in the producer)
  leaves no partial target and removes its temporary file;
* ``fsync=True`` flushes the data to disk before the rename and the directory entry
  after it, so the new content survives a power cut once ``commit`` returns;
* ``mode=`` sets the permissions (``PUBLIC_MODE``: what ``open()`` would give); by
  default the file stays private (0600), as ``mkstemp`` makes it;
* ``commit(exclusive=True)`` publishes with ``os.link``, which fails when the target
  already exists: an atomic "create only if absent" for conditional writes.

Blocking by design: callers in async code run it in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from types import TracebackType

__all__ = ["PUBLIC_MODE", "TMP_PREFIX", "AtomicFile", "atomic_write"]

#: Name prefix of in-progress temporary files (scanners skip or reap them; storage keys
#: may not use it, see :mod:`flext_api.storage._paths`).
TMP_PREFIX = ".flext-tmp-"


def _public_mode() -> int:
    mask = os.umask(0o022)  # read the umask (set back at once, at import time)
    os.umask(mask)
    return 0o666 & ~mask


#: The mode ``open()`` would give a new file (0666 less the umask) for ``mode=``.
PUBLIC_MODE = _public_mode()


class AtomicFile:
    """A temporary file that becomes ``path`` on :meth:`commit`, or vanishes on :meth:`abort`.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a" / "b.txt"
    >>> with AtomicFile(target) as f:
    ...     _ = f.write(b"hello")
    >>> target.read_bytes()
    b'hello'
    """

    __slots__ = ("_done", "_handle", "_tmp", "fsync", "path", "written")

    def __init__(
        self, path: str | os.PathLike[str], *, fsync: bool = False, mode: int | None = None
    ) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=TMP_PREFIX)
        if mode is not None:  # mkstemp makes the file private (0600)
            os.fchmod(fd, mode)
        self._tmp = tmp
        self._handle = os.fdopen(fd, "wb")
        self._done = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data``; returns the bytes written."""
        count = self._handle.write(data)
        self.written += count
        return count

    def seal(self) -> os.stat_result:
        """Finish the content (flushed; fsynced with ``fsync``; closed) and return its stat.

        What :meth:`commit` publishes then has this stat's size, inode and mtime (a
        rename or link keeps them): a caller can record it before publishing.
        """
        self._finish()
        try:
            return os.stat(self._tmp)
        except BaseException:
            self.abort()
            raise

    def _finish(self) -> None:
        try:
            if not self._handle.closed:
                if self.fsync:
                    self._handle.flush()
                    os.fsync(self._handle.fileno())
                self._handle.close()
        except BaseException:
            self.abort()
            raise

    def commit(self, *, exclusive: bool = False) -> None:
        """Publish the file at ``path``; ``exclusive`` raises FileExistsError if it exists."""
        self._finish()
        try:
            if exclusive:
                os.link(self._tmp, self.path)
                os.unlink(self._tmp)
            else:
                os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._done = True
        if self.fsync:
            _fsync_dir(self.path.parent)

    def abort(self) -> None:
        """Drop the temporary file; the target is left as it was."""
        if self._done:
            return
        self._done = True
        self._handle.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def atomic_write(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring)."""
    with AtomicFile(path, fsync=fsync) as handle:
        handle.write(data)


def _fsync_dir(directory: Path) -> None:
    """Persist a rename: fsync the directory that holds the entry (POSIX only)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
