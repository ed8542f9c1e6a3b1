"""The :class:`StorageBackend` interface: the seed's four calls plus what object stores need.

A custom backend subclasses :class:`StorageBackend` and implements the four abstract
methods, exactly as the architecture guide's ``S3StorageBackend`` example does; every
other call has a working default built on those four (``stat`` from a listing,
``copy_file`` as download + upload, ...), which the built-in backends replace with
the store's native operation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Literal

from .._errors import ErrorCode, NotFoundError, PreconditionFailedError, StorageError
from .._result import FlextResult
from ._types import ByteStream, FileInfo, ListPage, UploadBody

__all__ = ["StorageBackend"]


class StorageBackend(ABC):
    """One place to put, get, list and delete objects; every call returns a FlextResult.

    Paths are object keys (``"reports/2024/q1.csv"``), validated by every built-in
    backend (see :mod:`flext_api.storage._paths`).
    """

    #: Short name used in URLs, logs and reprs (``"s3"``, ``"local"``...).
    scheme: str = "custom"

    # -- the four calls of the architecture guide ------------------------------------------
    @abstractmethod
    async def upload_file(
        self,
        file: UploadBody,
        path: str,
        metadata: Mapping[str, str] | None = None,
        *,
        content_type: str | None = None,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> FlextResult[str]:
        """Store ``file`` at ``path``; the value is the object's URL (``s3://bkt/path``).

        ``file`` is bytes, a binary file object, a local ``Path`` or an async iterator of
        bytes (streamed, constant memory). ``if_none_match=True`` fails with
        ``PRECONDITION_FAILED`` when the object exists; ``if_match=etag`` fails the same
        way unless the current ETag is ``etag``.
        """

    @abstractmethod
    async def download_file(self, path: str) -> FlextResult[bytes]:
        """The whole content of ``path`` in memory (``NOT_FOUND`` when absent)."""

    @abstractmethod
    async def delete_file(self, path: str) -> FlextResult[None]:
        """Remove ``path``; removing an absent object succeeds (as on S3)."""

    @abstractmethod
    async def list_files(self, prefix: str = "") -> FlextResult[list[FileInfo]]:
        """Every object whose key starts with ``prefix``, sorted by key."""

    # -- what object-store users need, with defaults built on the four ---------------------
    async def stat(self, path: str) -> FlextResult[FileInfo]:
        """Size, ETag, content type and metadata of ``path`` (``NOT_FOUND`` when absent)."""
        listed = await self.list_files(path)
        if listed.is_failure:
            return FlextResult.fail(listed.exception or listed.error or "list failed")
        for info in listed.value:
            if info.path == path:
                return FlextResult.ok(info)
        return FlextResult.fail(NotFoundError(f"{path!r} not found", details={"path": path}))

    async def exists(self, path: str) -> FlextResult[bool]:
        """True when ``path`` exists; a failure only when the store could not tell."""
        found = await self.stat(path)
        if found.is_success:
            return FlextResult.ok(True)
        if found.error_code is ErrorCode.NOT_FOUND:
            return FlextResult.ok(False)
        return FlextResult.fail(found.exception or "stat failed")

    async def download_stream(
        self, path: str, *, chunk_size: int = 1024 * 1024
    ) -> FlextResult[ByteStream]:
        """The content of ``path`` as a :class:`ByteStream` (constant memory when native)."""
        info = await self.stat(path)
        if info.is_failure:
            return FlextResult.fail(info.exception or "stat failed")
        data = await self.download_file(path)
        if data.is_failure:
            return FlextResult.fail(data.exception or "download failed")
        return FlextResult.ok(ByteStream(info.value, _pieces(data.value, chunk_size)))

    async def copy_file(self, src: str, dst: str, *, overwrite: bool = True) -> FlextResult[None]:
        """Copy ``src`` to ``dst``; an existing ``dst`` fails unless ``overwrite``."""
        info = await self.stat(src)
        if info.is_failure:
            return FlextResult.fail(info.exception or "stat failed")
        if src == dst:  # reading and rewriting one object at once could truncate it
            return _onto_itself("copy", src, overwrite)
        stream = await self.download_stream(src)
        if stream.is_failure:
            return FlextResult.fail(stream.exception or "download failed")
        put = await self.upload_file(
            stream.value,
            dst,
            dict(info.value.metadata),
            content_type=info.value.content_type,
            if_none_match=not overwrite,
        )
        return put.map(lambda _: None)

    async def rename_file(self, src: str, dst: str, *, overwrite: bool = True) -> FlextResult[None]:
        """Move ``src`` to ``dst`` (copy then delete where the store has no rename)."""
        copied = await self.copy_file(src, dst, overwrite=overwrite)
        if copied.is_failure or src == dst:  # deleting src would delete the object itself
            return copied
        return await self.delete_file(src)

    async def list_page(
        self,
        prefix: str = "",
        *,
        delimiter: str | None = None,
        start_after: str | None = None,
        limit: int = 1000,
    ) -> FlextResult[ListPage]:
        """One page of at most ``limit`` entries after ``start_after``, sorted by key.

        With ``delimiter="/"`` keys below the next ``/`` are rolled up into ``prefixes``
        (one "directory" level); ``next_token`` continues the listing.
        """
        listed = await self.list_files(prefix)
        if listed.is_failure:
            return FlextResult.fail(listed.exception or "list failed")
        return FlextResult.ok(paginate(listed.value, prefix, delimiter, start_after, limit))

    async def iter_files(
        self, prefix: str = "", *, page_size: int = 1000
    ) -> AsyncIterator[FileInfo]:
        """Every object under ``prefix``, one page at a time; a failure raises its error."""
        token: str | None = None
        while True:
            page = (await self.list_page(prefix, start_after=token, limit=page_size)).value
            for info in page.files:
                yield info
            if page.next_token is None:
                return
            token = page.next_token

    async def presign(
        self,
        path: str,
        *,
        method: Literal["GET", "PUT"] = "GET",
        expires_in: timedelta = timedelta(hours=1),
    ) -> FlextResult[str]:
        """A URL that lets anyone holding it ``GET`` (or ``PUT``) ``path`` until it expires."""
        return FlextResult.fail(
            StorageError(
                f"{type(self).__name__} cannot presign URLs",
                code=ErrorCode.STORAGE_ERROR,
                details={"path": path, "method": method, "expires_in": expires_in.total_seconds()},
            )
        )

    async def health(self) -> FlextResult[None]:
        """Succeeds when the store answers a one-entry listing."""
        page = await self.list_page("", limit=1)
        return page.map(lambda _: None)

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; the backend is not used afterwards."""

    async def __aenter__(self) -> StorageBackend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _onto_itself(operation: str, key: str, overwrite: bool) -> FlextResult[None]:
    """An existing object copied or renamed onto itself: kept as it is, or refused."""
    if overwrite:
        return FlextResult.ok(None)
    return FlextResult.fail(
        PreconditionFailedError(
            f"{operation} of {key!r} onto itself: the target exists",
            details={"path": key, "operation": operation},
        )
    )


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def paginate(
    files: list[FileInfo],
    prefix: str,
    delimiter: str | None,
    start_after: str | None,
    limit: int,
) -> ListPage:
    """Cut a full, sorted listing into one :class:`ListPage` (delimiter roll-up included)."""
    entries: list[tuple[str, FileInfo | None]] = []
    seen: set[str] = set()
    for info in sorted(files, key=lambda f: f.path):
        rest = info.path[len(prefix) :]
        if delimiter and delimiter in rest:
            folder = prefix + rest.split(delimiter, 1)[0] + delimiter
            if folder not in seen:
                seen.add(folder)
                entries.append((folder, None))
            continue
        entries.append((info.path, info))
    entries.sort(key=lambda e: e[0])
    if start_after is not None:
        entries = [e for e in entries if e[0] > start_after]
    page, more = entries[:limit], len(entries) > limit
    return ListPage(
        files=[info for _, info in page if info is not None],
        prefixes=[key for key, info in page if info is None],
        next_token=page[-1][0] if more and page else None,
    )
