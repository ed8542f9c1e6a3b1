"""Value types of the storage API: :class:`FileInfo`, :class:`ListPage`, bodies and streams."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Final, TypeAlias, cast

from .._errors import ErrorCode, InvalidRequestError
from .._result import FlextResult

__all__ = ["CHUNK_SIZE", "ByteStream", "FileInfo", "ListPage", "Source", "UploadBody"]

#: Size of the pieces streamed bodies are read and written in.
CHUNK_SIZE: Final = 1024 * 1024

#: What ``upload_file`` accepts: bytes, a binary file object, a local file path, or an
#: async iterator of bytes (read once, in order, never held whole in memory).
UploadBody: TypeAlias = (
    bytes | bytearray | memoryview | IO[bytes] | os.PathLike[str] | AsyncIterable[bytes]
)


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What a store knows about one object (``stat``, listings and downloads)."""

    path: str
    size: int
    last_modified: datetime | None = None
    etag: str | None = None
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing: objects, "directories" (with a delimiter) and the next token.

    ``next_token`` is None on the last page; pass it back as ``start_after``.
    """

    files: list[FileInfo]
    prefixes: list[str] = field(default_factory=list)
    next_token: str | None = None


class ByteStream:
    """An object's content as an async iterator of chunks, with its :class:`FileInfo`.

    Iterate it once (``async for chunk in stream``), or call :meth:`aclose` to stop early.
    A failure in the middle raises the :class:`~flext_api.FlextApiError` the store gave.
    """

    __slots__ = ("_chunks", "info")

    def __init__(self, info: FileInfo, chunks: AsyncIterator[bytes]) -> None:
        self.info = info
        self._chunks = chunks

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def read(self) -> bytes:
        """The rest of the content, in memory (small objects only)."""
        return b"".join([chunk async for chunk in self._chunks])

    async def aclose(self) -> None:
        """Stop reading and release the connection or file."""
        closer = getattr(self._chunks, "aclose", None)
        if closer is not None:
            await closer()

    def __repr__(self) -> str:
        return f"<ByteStream {self.info.path!r} size={self.info.size}>"


class Source:
    """A normalised upload body: knows whether it can be replayed (for retries) and its size."""

    __slots__ = ("_start", "kind", "size", "value")

    def __init__(self, value: object, kind: str, size: int | None) -> None:
        self.value = value
        self.kind = kind  # "bytes", "path", "file" or "stream"
        self.size = size
        self._start = value.tell() if kind == "file" else 0  # type: ignore[attr-defined]

    @classmethod
    def of(cls, body: object) -> FlextResult[Source]:
        """Classify ``body``; a ``str`` or anything else unknown is INVALID_REQUEST."""
        if isinstance(body, bytes):
            return FlextResult.ok(cls(body, "bytes", len(body)))
        if isinstance(body, bytearray | memoryview):
            # Kept as a flat byte view, not copied: the stores read the caller's buffer,
            # which must not change until the upload returns. A strided view is copied once.
            view = memoryview(body)
            view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
            return FlextResult.ok(cls(view, "bytes", view.nbytes))
        if isinstance(body, os.PathLike):
            path = Path(body)
            if not path.is_file():
                return _bad(f"upload source {str(path)!r} is not a readable file")
            return FlextResult.ok(cls(path, "path", path.stat().st_size))
        if isinstance(body, AsyncIterable):
            return FlextResult.ok(cls(body, "stream", None))
        if isinstance(body, io.TextIOBase):
            return _bad("cannot upload a text file: open it in binary mode ('rb')")
        if isinstance(body, io.IOBase) or (hasattr(body, "read") and not isinstance(body, str)):
            if getattr(body, "closed", False):  # seekable() and tell() would raise ValueError
                return _bad("cannot upload a closed file")
            if not getattr(body, "readable", lambda: True)():
                return _bad("cannot upload a file not opened for reading: open it with 'rb'")
            seekable = bool(getattr(body, "seekable", lambda: False)())
            return FlextResult.ok(cls(body, "file" if seekable else "stream-file", None))
        hint = (
            " (pass Path(...) for a file name, or .encode() text)" if isinstance(body, str) else ""
        )
        return _bad(f"cannot upload a {type(body).__name__}{hint}")

    @property
    def replayable(self) -> bool:
        """True when a failed attempt can be retried with the same body."""
        return self.kind in {"bytes", "path", "file"}

    def rewind(self) -> None:
        """Get ready for another attempt (seekable files go back to where they started)."""
        if self.kind == "file":
            self.value.seek(self._start)  # type: ignore[attr-defined]

    async def chunks(self, size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """The body in pieces of at most ``size`` bytes (blocking reads in a thread)."""
        if self.kind == "bytes":
            data: bytes | memoryview = self.value  # type: ignore[assignment]
            for start in range(0, len(data), size):
                yield bytes(data[start : start + size])  # a slice of bytes is not copied again
            return
        if self.kind == "stream":
            async for chunk in self.value:  # type: ignore[attr-defined]
                # bytes(5) is five zero bytes and bytes("x") a TypeError: only buffers pass.
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise InvalidRequestError(
                        f"an upload stream must yield bytes, got {type(chunk).__name__}",
                        code=ErrorCode.INVALID_REQUEST,
                    )
                if chunk:
                    yield bytes(chunk)
            return
        if self.kind == "path":
            handle = cast("IO[bytes]", await asyncio.to_thread(Path(self.value).open, "rb"))  # type: ignore[arg-type]
        else:
            handle = cast("IO[bytes]", self.value)
        try:
            while chunk := await asyncio.to_thread(handle.read, size):
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise InvalidRequestError(
                        f"an upload file must read bytes, got {type(chunk).__name__}",
                        code=ErrorCode.INVALID_REQUEST,
                    )
                yield bytes(chunk)
        finally:
            if self.kind == "path":
                handle.close()


def _bad(message: str) -> FlextResult[Source]:
    return FlextResult.fail(InvalidRequestError(message, code=ErrorCode.INVALID_REQUEST))
