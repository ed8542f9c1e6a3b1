"""Decoding a response body's ``Content-Encoding`` (gzip, deflate, br, zstd), and
checking that the compressed stream was complete.

Why not the HTTP library's own decoder: aiohttp (3.14) and httpx2 both return a gzip body
cut short inside the compressed stream as a success, holding whatever the cut decoded to
(aiohttp checks completeness for ``deflate`` only; httpx2 for none), when the
``Content-Length`` or the chunked framing matched the cut. That is silent data loss. The
aiohttp and httpx2 transports read the body as it came on the wire and decode it here:
a compressed stream that stops before its end is ``PROTOCOL_ERROR``, as on pyreqwest.

Only a single known coding is decoded (``gzip``/``x-gzip``, ``deflate``, ``br`` with
the Brotli package, ``zstd`` with ``compression.zstd``/``backports.zstd``); any other
value (``identity``, a list, an unknown or unavailable coding) leaves the body as it came.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ._base import too_large

if TYPE_CHECKING:
    from .._models import HttpRequest

__all__ = [
    "ACCEPT_ENCODING",
    "BodyDecodeError",
    "BodyDecoder",
    "body_decoder",
    "decode_all",
    "decode_into",
]

#: The most bytes one decoding step hands out: a small compressed chunk can inflate a
#: thousandfold, so a chunk is decoded in pieces (a capped read stops at the first piece
#: past its cap).
PIECE = 256 * 1024


def _first_module(*names: str) -> Any:
    """The first of the modules ``names`` that imports, or None (optional packages)."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None  # pragma: no cover - depends on the packages installed


_brotli: Any = _first_module("brotlicffi", "brotli")
_Zstd: Any = getattr(_first_module("compression.zstd", "backports.zstd"), "ZstdDecompressor", None)


class BodyDecodeError(Exception):
    """The body is not valid for its ``Content-Encoding``, or stopped mid-stream."""


class BodyDecoder:
    """Decodes one body: :meth:`feed` each chunk as it arrives, then :meth:`finish` (or
    :meth:`step` each chunk, then None).

    gzip, deflate and zstd allow several members (frames) back to back, as aiohttp does;
    bytes after a member that do not start another one are an error.
    """

    __slots__ = ("_coding", "_make", "_obj")

    def __init__(self, coding: str, make: Callable[[bytes], Any]) -> None:
        self._coding = coding
        self._make = make
        self._obj: Any = None  # the decompressor of the member being read; None between

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, in pieces of at most :data:`PIECE` bytes."""
        try:
            if self._coding == "br":
                if data:
                    if self._obj is None:
                        self._obj = self._make(data)
                    obj = self._obj
                    out = obj.process(data) if hasattr(obj, "process") else obj.decompress(data)
                    for start in range(0, len(out), PIECE):
                        yield out[start : start + PIECE]
                return
            while data:
                obj = self._obj
                if obj is None:
                    obj = self._obj = self._make(data)
                out = obj.decompress(data, PIECE)
                if out:
                    yield out
                if obj.eof:
                    # The member ended; what follows it, if anything, starts the next one.
                    data = obj.unused_data
                    self._obj = None
                else:
                    data = obj.unconsumed_tail if self._coding != "zstd" else b""
                    if self._coding == "zstd" and not obj.needs_input:
                        while not obj.needs_input and not obj.eof:
                            more = obj.decompress(b"", PIECE)
                            if not more:
                                break
                            yield more
                        if obj.eof:
                            data = obj.unused_data
                            self._obj = None
        except Exception as exc:  # zlib.error, ValueError, OSError, brotli's and zstd's
            raise BodyDecodeError(f"cannot decode content-encoding {self._coding}: {exc}") from exc

    def step(self, data: bytes | None) -> Iterable[bytes]:
        """The decoded pieces of ``data`` (each non-empty, at most :data:`PIECE` bytes),
        or with None (the end of the body) those of :meth:`finish`."""
        if data is not None:
            return self.feed(data)
        rest = self.finish()
        return (rest,) if rest else ()

    def finish(self) -> bytes:
        """The last decoded bytes; raises :class:`BodyDecodeError` when the compressed
        stream stopped before its end (an empty body is complete)."""
        obj = self._obj
        if obj is None:
            return b""
        if self._coding == "br":
            done = obj.is_finished()
            rest = b""
        else:
            done = obj.eof
            rest = obj.flush() if self._coding != "zstd" else b""
        if not done:
            raise BodyDecodeError(
                f"the {self._coding} body ends before its compressed stream does (truncated)"
            )
        return rest


def _zlib(wbits: int) -> Callable[[bytes], Any]:
    return lambda _first: zlib.decompressobj(wbits)


def _deflate(first: bytes) -> Any:
    # RFC 9110 says zlib-wrapped; some servers send raw deflate: told apart by the first
    # byte (compression method 8 in its low bits), as aiohttp and browsers do.
    return zlib.decompressobj(zlib.MAX_WBITS if first[0] & 0x0F == 8 else -zlib.MAX_WBITS)


_MAKERS: dict[str, Callable[[bytes], Any]] = {
    "gzip": _zlib(16 + zlib.MAX_WBITS),
    "x-gzip": _zlib(16 + zlib.MAX_WBITS),
    "deflate": _deflate,
}
if _brotli is not None:  # pragma: no branch
    _MAKERS["br"] = lambda _first: _brotli.Decompressor()
if _Zstd is not None:  # pragma: no cover
    _MAKERS["zstd"] = lambda _first: _Zstd()


def body_decoder(content_encoding: str | None) -> BodyDecoder | None:
    """A decoder for a ``Content-Encoding`` value, or None to keep the body as it is."""
    if not content_encoding:
        return None
    coding = content_encoding.strip().lower()
    make = _MAKERS.get(coding)
    if make is None:
        return None
    return BodyDecoder("gzip" if coding == "x-gzip" else coding, make)


def decode_into(
    chunks: list[bytes],
    size: int,
    decoder: BodyDecoder | None,
    data: bytes,
    request: HttpRequest,
    limit: int | None,
) -> int:
    """Append ``data`` decoded to ``chunks`` (``b""``: the end of the body) and return the
    decoded size so far; RESPONSE_TOO_LARGE as soon as it passes ``limit``.

    With no ``decoder`` the body is kept as it came: ``data`` is counted and appended.
    """
    if decoder is None:
        if data:
            size += len(data)
            if limit is not None and size > limit:
                raise too_large(request, limit)
            chunks.append(data)
        return size
    for piece in decoder.step(data or None):
        size += len(piece)
        if limit is not None and size > limit:
            raise too_large(request, limit)
        chunks.append(piece)
    return size


def decode_all(decoder: BodyDecoder, body: bytes, request: HttpRequest, limit: int | None) -> bytes:
    """``body`` (the whole of it) decoded, or RESPONSE_TOO_LARGE once the decoded bytes
    pass ``limit``."""
    chunks: list[bytes] = []
    size = decode_into(chunks, 0, decoder, body, request, limit) if body else 0
    decode_into(chunks, size, decoder, b"", request, limit)
    return b"".join(chunks)


#: The codings decoded here, for a request's ``Accept-Encoding`` when it has none.
ACCEPT_ENCODING = ", ".join(c for c in ("gzip", "deflate", "br", "zstd") if c in _MAKERS)
