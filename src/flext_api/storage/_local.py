"""``LocalStorage``: objects as files under a root directory.

* **Atomic writes** through :class:`flext_api._atomic.AtomicFile` (the code the
  filesystem cache uses): the body streams into a temporary file beside the target,
  which is renamed over it only when complete. A failed or cancelled upload leaves the
  old content and no temporary file. ``fsync=True`` makes a finished write durable.
* **Metadata in a sidecar** ``<root>/.flext-meta/<key>.json`` holding the content type,
  the user metadata and the ETag of the content it describes; a sidecar whose ETag does
  not match the file (a crash between the two renames) is ignored.
* **Conditional writes.** ``if_none_match`` publishes with ``link(2)``, atomic across
  processes. ``if_match`` compares the ETag (``"<mtime_ns>-<size>"`` in hex) just before
  the rename: atomic within one process, best effort between processes.
* **Confined to the root.** Keys are validated, and the resolved path must stay under
  the resolved root, so a symlink inside the root cannot lead a write out of it.

Blocking file calls run in worker threads (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

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


def _etag(stat: os.stat_result) -> str:
    return f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'


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
        self.fsync = fsync
        self._lock = asyncio.Lock()  # serialises if_match check-and-rename in this process

    def url(self, path: str) -> str:
        return (self.root / path).as_uri()

    def __repr__(self) -> str:
        return f"<LocalStorage {str(self.root)!r} fsync={self.fsync}>"

    # -- paths -----------------------------------------------------------------------------
    def _file(self, key: str) -> Path:
        path = self.root / key
        real = path.resolve()
        if not real.is_relative_to(self._real_root):
            raise InvalidPathError(
                f"storage path {key!r} resolves outside the root", details={"path": key}
            )
        return path

    def _sidecar(self, key: str) -> Path:
        return self.root / META_DIR / f"{key}.json"

    def _read_meta(self, key: str, etag: str) -> dict[str, Any]:
        try:
            meta: dict[str, Any] = json.loads(self._sidecar(key).read_bytes())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return {}
        return meta if meta.get("etag") == etag else {}

    def _info(self, key: str, stat: os.stat_result, *, with_meta: bool) -> FileInfo:
        etag = _etag(stat)
        meta = self._read_meta(key, etag) if with_meta else {}
        return FileInfo(
            path=key,
            size=stat.st_size,
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            etag=etag,
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
        target = self._file(key)
        handle = await asyncio.to_thread(AtomicFile, target, fsync=self.fsync, mode=PUBLIC_MODE)
        try:
            if source.kind == "bytes":
                await asyncio.to_thread(handle.write, source.value)  # type: ignore[arg-type]
            else:
                async for chunk in source.chunks():
                    await asyncio.to_thread(handle.write, chunk)
            async with self._lock:
                await asyncio.to_thread(self._publish, key, handle, mode)
        finally:
            handle.abort()  # a no-op once published
        meta = {"content_type": content_type, "metadata": metadata}
        await asyncio.to_thread(self._write_meta, key, target, meta)

    def _publish(self, key: str, handle: AtomicFile, mode: PutMode) -> None:
        if mode == "create":
            try:
                handle.commit(exclusive=True)
            except FileExistsError:
                raise PreconditionFailedError(f"{key!r} already exists") from None
            return
        if mode is not None:
            try:
                current = _etag(handle.path.stat())
            except FileNotFoundError:
                current = None
            if current != mode:
                raise PreconditionFailedError(
                    f"{key!r} has ETag {current}, not {mode}", details={"etag": current}
                )
        handle.commit()

    def _write_meta(self, key: str, target: Path, meta: dict[str, Any]) -> None:
        meta["etag"] = _etag(target.stat())
        atomic_write(self._sidecar(key), json.dumps(meta).encode(), fsync=self.fsync)

    async def _open(self, key: str, chunk_size: int) -> ByteStream:
        path = self._file(key)

        def opener() -> tuple[IO[bytes], FileInfo]:
            handle = path.open("rb")
            return handle, self._info(key, os.fstat(handle.fileno()), with_meta=True)

        handle, info = await asyncio.to_thread(opener)
        return ByteStream(info, _read_chunks(handle, chunk_size))

    async def _head(self, key: str) -> FileInfo:
        path = self._file(key)

        def head() -> FileInfo:
            stat = path.stat()
            if not path.is_file():
                raise FileNotFoundError(key)
            return self._info(key, stat, with_meta=True)

        return await asyncio.to_thread(head)

    async def _delete(self, key: str) -> None:
        path = self._file(key)

        def delete() -> None:
            for victim in (path, self._sidecar(key)):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    victim.unlink()

        await asyncio.to_thread(delete)

    async def _list(
        self, prefix: str, delimiter: str | None, start_after: str | None, limit: int
    ) -> ListPage:
        def scan() -> list[FileInfo]:
            base = self.root / prefix.rpartition("/")[0]
            found: list[FileInfo] = []
            for folder, dirs, files in os.walk(base):
                rel = Path(folder).relative_to(self.root).as_posix()
                rel = "" if rel == "." else rel + "/"
                dirs[:] = [d for d in dirs if not (rel == "" and d == META_DIR)]
                for name in files:
                    key = rel + name
                    if name.startswith(TMP_PREFIX) or not key.startswith(prefix):
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        stat = os.stat(os.path.join(folder, name))
                        found.append(self._info(key, stat, with_meta=False))
            return found

        files = await asyncio.to_thread(scan)
        return paginate(files, prefix, delimiter, start_after, limit)

    async def _copy(self, src: str, dst: str, overwrite: bool) -> None:
        source, target = self._file(src), self._file(dst)

        def copy() -> None:
            with source.open("rb") as reader:
                out = AtomicFile(target, fsync=self.fsync, mode=PUBLIC_MODE)
                try:
                    while chunk := reader.read(CHUNK_SIZE):
                        out.write(chunk)
                    self._publish(dst, out, None if overwrite else "create")
                finally:
                    out.abort()
            stat = source.stat()
            meta = self._read_meta(src, _etag(stat))
            self._write_meta(dst, target, {k: v for k, v in meta.items() if k != "etag"})

        await asyncio.to_thread(copy)

    async def _rename(self, src: str, dst: str, overwrite: bool) -> None:
        source, target = self._file(src), self._file(dst)

        def move() -> None:
            meta = self._read_meta(src, _etag(source.stat()))
            target.parent.mkdir(parents=True, exist_ok=True)
            if overwrite:
                os.replace(source, target)
            else:
                try:
                    os.link(source, target)
                except FileExistsError:
                    raise PreconditionFailedError(f"{dst!r} already exists") from None
                source.unlink()
            with contextlib.suppress(FileNotFoundError):
                self._sidecar(src).unlink()
            self._write_meta(dst, target, {k: v for k, v in meta.items() if k != "etag"})

        await asyncio.to_thread(move)

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


async def _read_chunks(handle: IO[bytes], size: int) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(handle.read, size):
            yield chunk
    finally:
        handle.close()
