"""Minimal HTTP/1.1 request parser and response writer for the fault server.

Hand-written on purpose: the fault server needs raw control over the socket (closing
mid-body, lying about Content-Length, trickling bytes), which no framework allows.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tests.servers.fault import FaultServer

MAX_LINE = 16 * 1024
MAX_HEADERS = 100
MAX_BODY = 16 * 1024 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


class BadRequest(Exception):
    """The client sent something that is not valid HTTP/1.1 (answered with 400)."""


@dataclass
class Request:
    """One parsed request, as handed to route handlers."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes
    connection_id: int
    server: FaultServer
    path_params: tuple[str, ...] = ()
    raw_headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    @property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.params.get(name)
        return values[-1] if values else default

    def int_param(self, name: str, default: int) -> int:
        value = self.param(name)
        try:
            return default if value is None else int(value)
        except ValueError as exc:
            raise BadRequest(f"query parameter {name}={value!r} is not an integer") from exc

    def float_param(self, name: str, default: float) -> float:
        value = self.param(name)
        try:
            return default if value is None else float(value)
        except ValueError as exc:
            raise BadRequest(f"query parameter {name}={value!r} is not a number") from exc

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def wants_close(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" not in tokens
        return "close" in tokens

    def extra_headers(self) -> list[tuple[str, str]]:
        """Response headers requested with repeatable ``h=Name:Value`` query parameters."""
        out: list[tuple[str, str]] = []
        for item in self.params.get("h", []):
            name, sep, value = item.partition(":")
            if not sep or not name.strip():
                raise BadRequest(f"bad h= parameter {item!r}, expected Name:Value")
            out.append((name.strip(), value.strip()))
        return out


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as exc:
        raise BadRequest("line too long") from exc
    if len(line) > MAX_LINE:
        raise BadRequest("line too long")
    return line.rstrip(b"\r\n")


async def _read_header_block(reader: asyncio.StreamReader) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    while True:
        line = await _read_line(reader)
        if not line:
            return headers
        if len(headers) >= MAX_HEADERS:
            raise BadRequest("too many headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(f"malformed header line {line!r}")
        headers.append((name.lower(), value.strip()))


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = (await _read_line(reader)).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError as exc:
            raise BadRequest(f"bad chunk size {size_line!r}") from exc
        if size < 0 or len(body) + size > MAX_BODY:
            raise BadRequest("chunk too large")
        if size == 0:
            await _read_header_block(reader)  # trailers, ignored
            return bytes(body)
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest("chunk not terminated by CRLF")


async def read_request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    server: FaultServer,
    connection_id: int,
) -> Request | None:
    """Read one request; ``None`` on a clean EOF between requests.

    Raises ``asyncio.IncompleteReadError`` / ``ConnectionError`` when the client goes
    away mid-request and ``BadRequest`` on malformed input.
    """
    line = b""
    while not line:  # tolerate stray CRLFs between pipelined requests (RFC 9112 2.2)
        try:
            line = await _read_line(reader)
        except asyncio.IncompleteReadError as exc:
            if not exc.partial.strip():
                return None
            raise
    parts = line.decode("latin-1").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"malformed request line {line!r}")
    method, target, version = parts
    pairs = await _read_header_block(reader)
    headers: dict[str, str] = {}
    for name, value in pairs:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError as exc:
            raise BadRequest("bad Content-Length") from exc
        if length < 0 or length > MAX_BODY:
            raise BadRequest("bad Content-Length")
        body = await reader.readexactly(length)
    else:
        body = b""
    return Request(method, target, version, headers, body, connection_id, server, (), pairs)


class ResponseWriter:
    """Writes one response; handlers may also misbehave on purpose with the raw methods."""

    def __init__(self, writer: asyncio.StreamWriter, request_method: str) -> None:
        self._writer = writer
        self._head_only = request_method == "HEAD"
        self.headers_sent = False
        self.complete = False
        self.close_after = False
        self.aborted = False

    async def send_head(
        self, status: int, headers: Iterable[tuple[str, str]] = (), *, reason: str | None = None
    ) -> None:
        """Send the status line and headers exactly as given (plus Date if missing)."""
        if self.headers_sent:
            raise RuntimeError("headers already sent")
        header_list = list(headers)
        names = {name.lower() for name, _ in header_list}
        if "date" not in names:
            header_list.append(("Date", formatdate(usegmt=True)))
        if self.close_after and "connection" not in names:
            header_list.append(("Connection", "close"))
        if any(n.lower() == "connection" and "close" in v.lower() for n, v in header_list):
            self.close_after = True
        if reason is None:
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:
                reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{n}: {v}" for n, v in header_list]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.headers_sent = True
        await self._writer.drain()

    async def write(self, data: bytes) -> None:
        """Write raw body bytes (skipped for HEAD requests)."""
        if not self._head_only and data:
            self._writer.write(data)
            await self._writer.drain()

    async def write_chunk(self, data: bytes) -> None:
        if data:
            await self.write(b"%x\r\n%s\r\n" % (len(data), data))

    async def end_chunks(self) -> None:
        await self.write(b"0\r\n\r\n")
        self.complete = True

    def finish(self) -> None:
        """Mark a response written with the raw methods as complete (keep-alive allowed)."""
        self.complete = True

    async def send(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        *,
        content_type: str | None = None,
    ) -> None:
        """Send a complete response with a correct Content-Length."""
        items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        if status in _NO_BODY_STATUSES or 100 <= status < 200:
            body = b""
        else:
            if content_type is not None:
                items.insert(0, ("Content-Type", content_type))
            items.append(("Content-Length", str(len(body))))
        await self.send_head(status, items)
        await self.write(body)
        self.complete = True

    async def send_json(
        self,
        payload: Any,
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> None:
        body = json.dumps(payload).encode()
        await self.send(status, body, headers, content_type="application/json")

    def abort(self, *, rst: bool = False) -> None:
        """Close the connection now; with ``rst`` the peer gets a TCP reset, not a FIN."""
        sock = self._writer.get_extra_info("socket")
        if rst and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.aborted = True
        self._writer.close()
