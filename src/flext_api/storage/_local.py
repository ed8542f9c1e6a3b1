"""``LocalStorage``: objects as files under a root directory.

* **Atomic writes** through :class:`flext_api._atomic.AtomicFile` (the code the
  filesystem cache uses): the body streams into a temporary file beside the target,
  which is renamed over it only when complete. A failed or cancelled upload leaves the
  old content and no temporary file. ``fsync=True`` makes a finished write durable.
* **Metadata in a sidecar** per version, ``<root>/.flext-meta/<h>/<sha256 of the
  key>/<etag>.json``, holding the key, the content type and the user metadata. It is
  written *before* the content is published (a failed write leaves the old object and
  its metadata as they were) and the sidecars of older versions are removed after it;
  the one read is the one named by the file's current ETag, so concurrent writers never
  pair one's content with another's metadata. Names are fixed-length hashes: no key
  can clash with another's sidecar or make its name too long.
* **ETag** ``"<inode>-<mtime_ns>-<size>"`` in hex: the inode tells two versions of the
  same size apart even within one tick of the file clock (a few milliseconds).
* **Conditional writes.** ``if_none_match`` publishes with ``link(2)``, atomic across
  processes. ``if_match`` compares the ETag just before the rename: atomic within one
  process, best effort between processes.
* **Confined to the root.** Keys are validated, and the resolved path must stay under
  the resolved root, so a symlink inside the root cannot lead a write out of it, and a
  listing does not show what a symlink points to outside it. A key with a segment
  longer than a file name can be (255 bytes on most file systems) is absent for
  reads, listings and deletes, and INVALID_REQUEST for writes.
* **Folders are not objects.** Reading or renaming ``a`` beside ``a/b`` is NOT_FOUND,
  deleting it deletes nothing, and the empty folders left by deletes, renames and
  failed uploads are removed when a write needs their name.

Blocking file calls run in worker threads (``asyncio.to_thread``). Writes, copies,
renames and deletes are serialised per store (one lock), so the metadata always
describes the content beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import IO, Any, Final, TypeVar

from .._atomic import PUBLIC_MODE, TMP_PREFIX, AtomicFile, atomic_write
from .._clock import Clock
from .._config import RetryConfig
from .._errors import ErrorCode, FlextApiError, NotFoundError, PreconditionFailedError
from ..resilience import RetryPolicy
from ._backend import paginate
from ._driver import PutMode, StoreBackend
from ._paths import META_DIR, InvalidPathError
from ._types import CHUNK_SIZE, ByteStream, FileInfo, ListPage, Source

__all__ = ["LocalStorage"]

T = TypeVar("T")
#: Reads of an object and its sidecar tried again when a new version lands in between.
_READ_TRIES: Final = 8


def _etag(stat: os.stat_result) -> str:
    return f'"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"'


def _current_etag(path: Path) -> str | None:
    """The ETag of what ``path`` holds now (None when it is gone)."""
    try:
        return _etag(path.stat())
    except (FileNotFoundError, NotADirectoryError):
        return None


async def _settled(call: Callable[[], T], cleanup: Callable[[T], object] | None = None) -> T:
    """``call()`` in a worker thread, seen through to its end even when cancelled.

    ``asyncio.to_thread`` returns at a cancel while its thread runs on: a publish would
    then finish outside the store's lock (and prune the sidecar of the next writer), and
    a temporary copy or an open file made meanwhile would be left behind. Here a cancel
    waits for the thread, hands what it made to ``cleanup``, then propagates.
    """
    future = asyncio.ensure_future(asyncio.to_thread(call))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({future})
        if cleanup is not None and not future.cancelled() and future.exception() is None:
            cleanup(future.result())
        raise


class LocalStorage(StoreBackend):
    """Objects as files under ``root`` (created when missing).

    >>> import asyncio, tempfile
    >>> store = LocalStorage(tempfile.mkdtemp())
    >>> asyncio.run(store.upload_file(b"hi", "a/b.txt")).is_success
    True
    """

    scheme = "file"

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync: bool = False,
        retry: RetryConfig | RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(retry=retry, clock=clock)
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self._real_root = self.root.resolve()
        self._name_max = _name_max(self.root)
        self.fsync = fsync
        self._lock = asyncio.Lock()  # serialises if_match check-and-rename in this process

    def url(self, path: str) -> str:
        return (self.root / path).as_uri()

    def __repr__(self) -> str:
        return f"<LocalStorage {str(self.root)!r} fsync={self.fsync}>"

    # -- paths -----------------------------------------------------------------------------
    def _file(self, key: str, *, write: bool = False) -> Path:
        """Where ``key`` lives under the root; a key no file here can have is refused
        for a write (INVALID_REQUEST) and absent for a read (FileNotFoundError)."""
        if not self._fits(key):
            if not write:
                raise FileNotFoundError(errno.ENOENT, "no file can have this name", key)
            raise InvalidPathError(
                f"storage path {key!r} has a segment longer than {self._name_max} bytes, "
                f"the longest file name under {str(self.root)!r}",
                details={"path": key, "reason": "segment too long for the file system"},
            )
        path = self.root / key
        real = path.resolve()
        if not real.is_relative_to(self._real_root):
            raise InvalidPathError(
                f"storage path {key!r} resolves outside the root", details={"path": key}
            )
        return path

    def _fits(self, key: str) -> bool:
        """Every segment of ``key`` is a file name the root's file system can hold.

        A longer one fails every file call with ENAMETOOLONG: such an object cannot
        exist, so reading it is NOT_FOUND and deleting it succeeds, as on a store.
        """
        return all(len(os.fsencode(segment)) <= self._name_max for segment in key.split("/"))

    def _meta_dir(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / META_DIR / digest[:2] / digest

    def _sidecar(self, key: str, etag: str) -> Path:
        return self._meta_dir(key) / f"{etag.strip(chr(34))}.json"

    def _read_meta(self, key: str, etag: str) -> dict[str, Any] | None:
        """The metadata of version ``etag`` of ``key``; None when it has no sidecar."""
        try:
            meta = json.loads(self._sidecar(key, etag).read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except ValueError:
            return {}  # a damaged record
        return meta if isinstance(meta, dict) and meta.get("key") == key else {}

    def _open_version(
        self, key: str, path: Path
    ) -> tuple[IO[bytes], os.stat_result, dict[str, Any]]:
        """``path`` opened, with its stat and the metadata of that very version.

        A writer publishing meanwhile removes the sidecar of the version just opened:
        reading again then gives the new version with its own metadata, instead of the
        old content paired with none.
        """
        attempt = 1
        while True:
            handle = _open_object(path)
            try:
                stat = os.fstat(handle.fileno())
                meta = self._read_meta(key, _etag(stat))
                settled = (
                    meta is not None
                    or attempt == _READ_TRIES
                    or _current_etag(path) == _etag(stat)  # a file put there by hand
                )
            except BaseException:
                handle.close()
                raise
            if settled:
                return handle, stat, meta or {}
            handle.close()
            attempt += 1

    def _write_meta(self, key: str, etag: str, meta: dict[str, Any]) -> None:
        record = {"key": key, "content_type": meta.get("content_type"),
                  "metadata": meta.get("metadata", {})}  # fmt: skip
        atomic_write(self._sidecar(key, etag), json.dumps(record).encode(), fsync=self.fsync)

    def _prune_meta(self, key: str, keep: str | None) -> None:
        """Remove ``key``'s sidecars except the one of version ``keep`` (all when None)."""
        folder = self._meta_dir(key)
        kept = None if keep is None else self._sidecar(key, keep).name
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            if name != kept:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(folder / name)
        if keep is None:
            try:
                folder.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:  # a writer in another process added one meanwhile
                if exc.errno != errno.ENOTEMPTY:
                    raise

    def _info(self, key: str, stat: os.stat_result, meta: dict[str, Any] | None = None) -> FileInfo:
        meta = meta or {}
        return FileInfo(
            path=key,
            size=stat.st_size,
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            etag=_etag(stat),
            content_type=meta.get("content_type"),
            metadata=meta.get("metadata", {}),
        )

    # -- primitives ------------------------------------------------------------------------
    async def _put(
        self,
        key: str,
        source: Source,
        metadata: dict[str, str],
        content_type: str | None,
        mode: PutMode,
    ) -> None:
        target = self._file(key, write=True)
        handle = await _settled(
            functools.partial(AtomicFile, target, fsync=self.fsync, mode=PUBLIC_MODE),
            AtomicFile.abort,
        )
        try:
            if source.kind == "bytes":
                await asyncio.to_thread(handle.write, source.value)  # type: ignore[arg-type]
            else:
                async for chunk in source.chunks():
                    await asyncio.to_thread(handle.write, chunk)
            etag = _etag(await asyncio.to_thread(handle.seal))
            meta = {"content_type": content_type, "metadata": metadata}
            async with self._lock:
                await _settled(functools.partial(self._publish, key, handle, mode, etag, meta))
        finally:
            handle.abort()  # a no-op once published

    def _publish(
        self, key: str, handle: AtomicFile, mode: PutMode, etag: str, meta: dict[str, Any]
    ) -> None:
        """Check ``mode``, write the new version's metadata, publish it, drop older ones."""
        if mode is not None and mode != "create":
            try:
                current = _etag(handle.path.stat())
            except FileNotFoundError:
                current = None
            if current != mode:
                raise PreconditionFailedError(
                    f"{key!r} has ETag {current}, not {mode}", details={"etag": current}
                )
        _clear_empty_folder(handle.path)
        self._write_meta(key, etag, meta)
        try:
            handle.commit(exclusive=mode == "create")
        except FileExistsError:
            self._sidecar(key, etag).unlink(missing_ok=True)
            raise PreconditionFailedError(f"{key!r} already exists") from None
        except BaseException:
            self._sidecar(key, etag).unlink(missing_ok=True)
            raise
        self._prune_meta(key, etag)

    async def _open(self, key: str, chunk_size: int) -> ByteStream:
        path = self._file(key)

        def opener() -> tuple[IO[bytes], FileInfo]:
            handle, stat, meta = self._open_version(key, path)
            return handle, self._info(key, stat, meta)

        handle, info = await _settled(opener, lambda opened: opened[0].close())
        return ByteStream(info, _read_chunks(handle, chunk_size))

    async def _head(self, key: str) -> FileInfo:
        path = self._file(key)

        def head() -> FileInfo:
            attempt = 1
            while True:
                stat = path.stat()
                if not S_ISREG(stat.st_mode):
                    raise FileNotFoundError(key)
                meta = self._read_meta(key, _etag(stat))
                # No sidecar: fine for a file put there by hand, but if a new version
                # replaced this one meanwhile (its sidecar went with it), read again.
                if meta is not None or attempt == _READ_TRIES or _current_etag(path) == _etag(stat):
                    return self._info(key, stat, meta)
                attempt += 1

        return await asyncio.to_thread(head)

    async def _delete(self, key: str) -> None:
        if not self._fits(key):
            return  # no such object can exist: absent is fine
        path = self._file(key)

        def delete() -> None:
            # A folder ("a" beside "a/b") is no object: deleting it deletes nothing.
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                path.unlink()
            self._prune_meta(key, None)

        async with self._lock:
            await _settled(delete)

    async def _list(
        self, prefix: str, delimiter: str | None, start_after: str | None, limit: int
    ) -> ListPage:
        files = await asyncio.to_thread(self._scan, prefix, delimiter == "/")
        return paginate(files, prefix, delimiter, start_after, limit)

    def _scan(self, prefix: str, folded: bool = False) -> list[FileInfo]:
        """Every object whose key starts with ``prefix``; what resolves outside the root
        (a symlink leading out of it) is not listed, as it cannot be read either.

        ``folded`` (a listing with the ``/`` delimiter): a folder under the prefix rolls
        up into one common prefix, which only needs one object beneath it to exist, so
        only the first one found is listed, not the whole tree below.
        """
        folder = prefix.rpartition("/")[0]
        if not self._fits(folder):
            return []  # no folder can have that name
        start = self.root / folder
        if not start.resolve().is_relative_to(self._real_root):
            return []
        found: list[FileInfo] = []
        pending = [(start, folder + "/" if folder else "")]
        while pending:
            directory, rel = pending.pop()
            for entry in _entries(directory):
                key = rel + entry.name
                if entry.is_dir(follow_symlinks=False):
                    # Only the folders the prefix can reach; never metadata (this
                    # store's, or a store's rooted in a sub-folder: file:///d/2024/).
                    if entry.name == META_DIR:
                        continue
                    if folded and key.startswith(prefix):
                        first = self._first_object(Path(entry.path), key + "/")
                        if first is not None:
                            found.append(first)
                    elif key.startswith(prefix) or prefix.startswith(key + "/"):
                        pending.append((Path(entry.path), key + "/"))
                    continue
                if key.startswith(prefix) and (info := self._object(entry, key)) is not None:
                    found.append(info)
        return found

    def _first_object(self, directory: Path, rel: str) -> FileInfo | None:
        """The first object found under ``directory`` (depth first), or None."""
        pending = [(directory, rel)]
        while pending:
            folder, prefix = pending.pop()
            for entry in _entries(folder):
                key = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != META_DIR:
                        pending.append((Path(entry.path), key + "/"))
                elif (info := self._object(entry, key)) is not None:
                    return info
        return None

    def _object(self, entry: os.DirEntry[str], key: str) -> FileInfo | None:
        """The object a directory entry holds, or None (a temporary file, a socket or
        device, a symlink out of the root, an entry deleted while listed)."""
        if entry.name.startswith(TMP_PREFIX):
            return None
        try:
            if entry.is_symlink():
                real = Path(entry.path).resolve()
                if not real.is_relative_to(self._real_root) or not real.is_file():
                    return None
            elif not entry.is_file(follow_symlinks=False):
                return None  # a socket, FIFO or device is not an object
            stat = entry.stat()
        except FileNotFoundError:
            return None  # deleted while listed
        return self._info(key, stat)

    async def _copy(self, src: str, dst: str, overwrite: bool) -> None:
        source, target = self._file(src), self._file(dst, write=True)

        def copy() -> tuple[AtomicFile, str, dict[str, Any]]:
            reader, _, meta = self._open_version(src, source)
            with reader:
                _make_parent(target)
                out = AtomicFile(target, fsync=self.fsync, mode=PUBLIC_MODE)
                try:
                    while chunk := reader.read(CHUNK_SIZE):
                        out.write(chunk)
                    return out, _etag(out.seal()), meta
                except BaseException:
                    out.abort()
                    raise

        out, etag, meta = await _settled(copy, lambda made: made[0].abort())
        try:
            async with self._lock:
                mode = None if overwrite else "create"
                await _settled(functools.partial(self._publish, dst, out, mode, etag, meta))
        finally:
            out.abort()

    async def _rename(self, src: str, dst: str, overwrite: bool) -> None:
        source, target = self._file(src), self._file(dst, write=True)

        def move() -> None:
            stat = source.stat()
            if not S_ISREG(stat.st_mode):  # a folder would move every object below it
                raise FileNotFoundError(src)
            etag = _etag(stat)  # a rename or link keeps the inode, mtime and size
            self._write_meta(dst, etag, self._read_meta(src, etag) or {})
            try:
                _make_parent(target)
                _clear_empty_folder(target)
                if overwrite:
                    os.replace(source, target)
                else:
                    try:
                        os.link(source, target)
                    except FileExistsError:
                        raise PreconditionFailedError(f"{dst!r} already exists") from None
                    source.unlink()
            except BaseException:
                self._sidecar(dst, etag).unlink(missing_ok=True)
                raise
            self._prune_meta(dst, etag)
            self._prune_meta(src, None)

        async with self._lock:
            await _settled(move)

    def _translate(self, exc: Exception, operation: str, key: str) -> FlextApiError:
        if isinstance(exc, FileNotFoundError | NotADirectoryError) and operation != "upload":
            return NotFoundError(
                f"{key!r} not found under {str(self.root)!r}", details={"path": key}
            )
        permission = isinstance(exc, PermissionError)
        code = ErrorCode.AUTH_ERROR if permission else ErrorCode.STORAGE_ERROR
        error = FlextApiError.from_code(
            code,
            f"local {operation} of {key!r} failed: {exc}",
            details={"path": key, "errno": getattr(exc, "errno", None)},
        )
        error.__cause__ = exc
        return error


def _name_max(root: Path) -> int:
    """The longest file name, in bytes, the file system of ``root`` takes (255 if unknown)."""
    try:
        return os.pathconf(root, "PC_NAME_MAX")
    except (OSError, ValueError):  # no pathconf here, or the name is unknown
        return 255


def _open_object(path: Path) -> IO[bytes]:
    """``path`` opened for reading; a folder is no object (FileNotFoundError, NOT_FOUND)."""
    try:
        return path.open("rb")
    except IsADirectoryError:
        raise FileNotFoundError(errno.ENOENT, "not an object", str(path)) from None


def _make_parent(target: Path) -> None:
    """Create the folders of a copy's or rename's ``target``. An object in the way ("a"
    for "a/b/c") is a conflict, as for an upload, not a missing source: the error says
    FileExistsError (STORAGE_ERROR), not NotADirectoryError (NOT_FOUND)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except NotADirectoryError as exc:
        raise FileExistsError(errno.EEXIST, "an object is in the way", exc.filename) from None


def _clear_empty_folder(path: Path) -> None:
    """Remove ``path`` if it is a folder with nothing but empty folders below it.

    Deleting or renaming ``p/q/r`` (or a failed upload to it) leaves the folders ``p/q``
    behind. They hold no object, so, as on an object store, they must not keep the key
    ``p`` from being written. A folder with anything in it stays: writing over it fails.
    Called under the store's lock, when a write is about to be published.
    """
    if path.is_symlink() or not path.is_dir():
        return
    for folder, _, _ in os.walk(path, topdown=False):  # the deepest first
        try:
            os.rmdir(folder)
        except OSError:  # not empty: nor is any folder above it
            return


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    """The entries of ``directory``; none when it is gone (deleted while listed)."""
    try:
        return list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []


async def _read_chunks(handle: IO[bytes], size: int) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(handle.read, size):
            yield chunk
    finally:
        handle.close()
