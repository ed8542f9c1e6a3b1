"""Hot-path value objects: :class:`Headers`, :class:`HttpRequest`, :class:`HttpResponse`.

These are plain slotted classes, not pydantic models: one request costs a handful of
attribute writes. Validation of user input (header names and values, URLs) happens
once, in :func:`validate_header` and the client's request builder, before anything is
sent.
"""

from __future__ import annotations

import codecs
import ipaddress
import re
import sys
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from collections.abc import Mapping as MappingABC
from typing import TYPE_CHECKING, Any, TypeAlias

import orjson

from ._errors import DecodeError, ErrorCode, FlextApiError
from ._exactjson import loads as exact_json
from ._redact import DEFAULT_SENSITIVE_HEADERS, REDACTED, strip_url
from ._syntax import validate_header as validate_header

if TYPE_CHECKING:
    from ._config import TimeoutConfig

__all__ = [
    "HeaderTypes",
    "Headers",
    "HttpRequest",
    "HttpResponse",
    "validate_header",
]

HeaderTypes: TypeAlias = "Headers | MappingABC[str, str] | Iterable[tuple[str, str]] | None"

# What str.splitlines() ends a line at.
_LINE_ENDS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


class Headers(MappingABC[str, str]):
    """Case-insensitive, order-keeping, multi-valued HTTP headers.

    ``headers["content-type"]`` and ``headers["Content-Type"]`` are the same; repeated
    fields are joined with ``", "`` on lookup and kept apart in :meth:`get_list` and
    :meth:`multi_items`.
    """

    __slots__ = ("_index", "_items")

    def __init__(self, headers: HeaderTypes = None) -> None:
        items: list[tuple[str, str]]
        if headers is None:
            items = []
        elif isinstance(headers, Headers):
            items = list(headers._items)
        elif isinstance(headers, MappingABC):
            items = [(str(k), str(v)) for k, v in headers.items()]
        else:
            items = [(str(k), str(v)) for k, v in headers]
        self._items: list[tuple[str, str]] = items
        self._index: dict[str, list[str]] | None = None

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str]]) -> Headers:
        """Wrap a list of ``(str, str)`` pairs without copying or checking (hot path)."""
        self = cls.__new__(cls)
        self._items = pairs
        self._index = None
        return self

    def _idx(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for k, v in self._items:
                index.setdefault(k.lower(), []).append(v)
            self._index = index
        return index

    def __getitem__(self, key: str) -> str:
        values = self._idx()[key.lower()]
        return values[0] if len(values) == 1 else ", ".join(values)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._idx()

    def __iter__(self) -> Iterator[str]:
        return iter(self._idx())

    def __len__(self) -> int:
        return len(self._idx())

    def get_list(self, key: str) -> list[str]:
        """Every value of ``key``, in order (empty when absent)."""
        return list(self._idx().get(key.lower(), ()))

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair as received or set, names in original case."""
        return list(self._items)

    def raw(self) -> list[tuple[str, str]]:
        """The internal pair list (do not mutate); for transports on the hot path."""
        return self._items

    def set(self, key: str, value: str) -> None:
        """Replace every value of ``key`` by ``value``."""
        low = key.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != low]
        self._items.append((key, value))
        self._index = None

    def add(self, key: str, value: str) -> None:
        """Append one more value of ``key``."""
        self._items.append((key, value))
        self._index = None

    def remove(self, key: str) -> None:
        """Drop every value of ``key`` (no error when absent)."""
        low = key.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != low]
        self._index = None

    def copy(self) -> Headers:
        """An independent copy."""
        return Headers(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return sorted((k.lower(), v) for k, v in self._items) == sorted(
                (k.lower(), v) for k, v in other._items
            )
        if isinstance(other, MappingABC):
            return dict(self.items()) == {str(k).lower(): v for k, v in other.items()}
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        # A repr ends up in tracebacks with locals, error reports and test diffs: no
        # credential in it (the header names of flext_api._redact).
        items = [
            (k, REDACTED if k.lower() in DEFAULT_SENSITIVE_HEADERS else v) for k, v in self._items
        ]
        return f"Headers({items!r})"


class HttpRequest:
    """One outgoing request as it travels through the plugin pipeline.

    ``url`` is absolute and already carries the query string. ``content`` is a replayable
    body; ``stream`` a one-shot async byte source (never replayed by retries).
    ``extensions`` carries per-request settings for plugins (``retry``,
    ``fail_on_http_error``...).
    """

    __slots__ = (
        "_host",
        "content",
        "deadline",
        "extensions",
        "headers",
        "method",
        "stream",
        "timeout",
        "url",
    )

    def __init__(
        self,
        method: str,
        url: str,
        *,
        headers: HeaderTypes = None,
        content: bytes | None = None,
        stream: AsyncIterable[bytes] | None = None,
        timeout: TimeoutConfig | None = None,
        deadline: float | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.content = content
        self.stream = stream
        self.timeout = timeout
        # Absolute time on the client's monotonic clock after which the call must stop.
        self.deadline = deadline
        self.extensions: dict[str, Any] = extensions if extensions is not None else {}
        self._host: tuple[str, str] | None = None

    @property
    def is_replayable(self) -> bool:
        """False when the body is a one-shot stream that cannot be sent twice."""
        return self.stream is None

    @property
    def host(self) -> str:
        """``host[:port]`` of the URL, lower-cased (the key of per-host policies)."""
        # Several per-host stages ask for it on every request; parse once per URL.
        cached = self._host
        if cached is not None and cached[0] is self.url:
            return cached[1]
        host = host_of(self.url)
        self._host = (self.url, host)
        return host

    def host_hint(self, host: str) -> None:
        """Record the URL's known ``host`` (the client knows its base URL's)."""
        self._host = (self.url, host)

    def copy(self) -> HttpRequest:
        """A shallow copy with its own headers and extensions (for one attempt)."""
        return HttpRequest(
            self.method,
            self.url,
            headers=self.headers.copy(),
            content=self.content,
            stream=self.stream,
            timeout=self.timeout,
            deadline=self.deadline,
            extensions=dict(self.extensions),
        )

    def __repr__(self) -> str:
        return f"<HttpRequest [{self.method} {strip_url(self.url)}]>"


# After an optional "scheme://": skip any userinfo ("...@"), take up to the path,
# query or fragment. One C-level match per URL.
_HOST_RE = re.compile(r"(?:[^:/?#]*://)?(?:[^/?#]*@)?([^/?#]*)")


#: URL -> host: clients send many requests to the same few URLs, and a dict hit costs a
#: fraction of the match and the lower(). Bounded: emptied when it reaches the limit.
_HOSTS: dict[str, str] = {}
_HOSTS_MAX = 1024


def host_of(url: str) -> str:
    """``host[:port]`` of ``url``, without credentials, one spelling per host
    (:func:`canonical_host`); memoized per URL."""
    host = _HOSTS.get(url)
    if host is None:
        match = _HOST_RE.match(url)
        assert match is not None  # every part of the pattern is optional
        host = canonical_host(url.partition(":")[0], match.group(1).lower())
        if len(_HOSTS) >= _HOSTS_MAX:
            _HOSTS.clear()
        _HOSTS[url] = host
    return host


_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def canonical_host(scheme: str, host: str) -> str:
    """One spelling per host: ``host[:port]`` without a trailing dot or a default port.

    ``host`` is lower-case, without userinfo. ``Example.COM.``, ``example.com:80`` and
    ``example.com:080`` on ``http`` all give ``example.com``; an IPv6 literal is written
    compressed (``[0:0::1]`` -> ``[::1]``). Per-host policies key on it, so two spellings
    of one host share one breaker, limiter, bulkhead, budget and metrics series.
    """
    name, port = host, ""
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            name, rest = host[: end + 1], host[end + 1 :]
            if rest.startswith(":"):
                port = rest[1:]
            try:
                name = f"[{ipaddress.IPv6Address(name[1:-1]).compressed}]"
            except ValueError:
                pass  # not an address: keep the URL's spelling
    else:
        head, sep, tail = host.rpartition(":")
        if sep and (tail.isdigit() or not tail):
            name, port = head, tail
    if name.endswith(".") and name.strip("."):
        name = name.rstrip(".")
    if not name.isascii():
        name = _ascii_host(name)
    if port.isascii() and port.isdigit():
        port = str(int(port))
    if not port or port == _DEFAULT_PORTS.get(scheme.lower()):
        return name
    return f"{name}:{port}"


def _ascii_host(name: str) -> str:
    """An internationalised host name in its ``xn--`` form, the one sent on the wire (so
    ``bücher.example`` and ``xn--bcher-kva.example`` share per-host policies); as it is
    when it has none (then no request can be sent to it either)."""
    try:
        import idna  # httpx's dependency: IDNA 2008 with UTS 46 mapping, as yarl does
    except ImportError:  # pragma: no cover - idna comes with httpx
        try:
            return name.encode("idna").decode("ascii")
        except UnicodeError:
            return name
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError:
        return name


_CHARSET_RE = re.compile(r"charset\s*=\s*\"?([\w.:-]+)", re.IGNORECASE)


class HttpResponse:
    """A response, fully read (``content``) or streaming (``aiter_bytes``).

    ``elapsed`` is in seconds from sending the request to receiving the headers (for a
    read response, to the end of the body). ``attempts`` is how many attempts the client
    made; ``from_cache`` tells whether the cache answered, ``cache_status`` how
    (``"hit"``, ``"revalidated"``, ``"stale"``) when it did.
    """

    __slots__ = (
        "_close",
        "_content",
        "_stream",
        "attempts",
        "cache_status",
        "elapsed",
        "extensions",
        "from_cache",
        "headers",
        "http_version",
        "reason",
        "request",
        "status_code",
        "url",
    )

    def __init__(
        self,
        status_code: int,
        *,
        headers: HeaderTypes = None,
        content: bytes | None = None,
        url: str = "",
        http_version: str = "HTTP/1.1",
        reason: str = "",
        elapsed: float = 0.0,
        request: HttpRequest | None = None,
        stream: AsyncIterator[bytes] | None = None,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self._content = content if content is not None or stream is not None else b""
        self._stream = stream
        self._close = close
        self.url = url or (request.url if request is not None else "")
        self.http_version = http_version
        self.reason = reason
        self.elapsed = elapsed
        self.request = request
        self.attempts = 1
        self.from_cache = False
        self.cache_status: str | None = None
        self.extensions: dict[str, Any] = {}

    # -- status ---------------------------------------------------------------------------
    @property
    def is_success(self) -> bool:
        """2xx."""
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        """3xx with a Location header."""
        return 300 <= self.status_code < 400 and "location" in self.headers

    @property
    def is_error(self) -> bool:
        """4xx or 5xx."""
        return self.status_code >= 400

    def error_for_status(self) -> FlextApiError | None:
        """The ``HTTP_STATUS`` error this response stands for, or None below 400."""
        if self.status_code < 400:
            return None
        return FlextApiError.from_code(
            ErrorCode.HTTP_STATUS,
            f"HTTP {self.status_code} {self.reason}".rstrip()
            + f" from {self.request.method if self.request else 'GET'} {strip_url(self.url)}",
            request=self.request,
            response=self,
        )

    def raise_for_status(self) -> HttpResponse:
        """Raise the ``HTTP_STATUS`` error for a status >= 400; return self otherwise."""
        err = self.error_for_status()
        if err is not None:
            raise err
        return self

    # -- body -----------------------------------------------------------------------------
    @property
    def content(self) -> bytes:
        """The whole body; for a streaming response, call ``await aread()`` first."""
        if self._content is None:
            raise _unread_body(self)
        return self._content

    @property
    def encoding(self) -> str:
        """The charset from Content-Type, else utf-8."""
        ctype = self.headers.get("content-type", "")
        match = _CHARSET_RE.search(ctype)
        return match.group(1) if match else "utf-8"

    @property
    def text(self) -> str:
        """The body decoded with :attr:`encoding` (undecodable bytes replaced); as utf-8
        when that charset cannot decode text (unknown, ``base64``, ``idna``...)."""
        try:
            return self.content.decode(self.encoding, errors="replace")
        except (LookupError, UnicodeError):  # errors are replaced: the codec is unfit
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises :class:`DecodeError` when it is not JSON."""
        encoding = self.encoding.lower().replace("_", "-")
        try:
            if encoding in {"utf-8", "utf8", "ascii", "us-ascii"}:
                content = self.content
                # A UTF-8 byte order mark (.NET and Windows servers send one) may be
                # ignored (RFC 8259 §8.1); orjson refuses it.
                if content[:3] == b"\xef\xbb\xbf":
                    content = content[3:]
                return exact_json(content)
            text = self.text
            # The same BOM once decoded: a utf-16 body's, or a utf-8 one under a charset
            # that fell back to utf-8.
            return exact_json(text[1:] if text[:1] == "\ufeff" else text)
        except orjson.JSONDecodeError as exc:
            # What came, not the body itself: a body that is not JSON is often a
            # credential in another form (``access_token=...``) and this message ends
            # up in logs. ``exc.response`` keeps the body for whoever needs it.
            ctype = self.headers.get("content-type")
            what = f"Content-Type {ctype!r}" if ctype is not None else "no Content-Type"
            raise DecodeError(
                f"response body is not valid JSON ({exc}); {len(self.content)} bytes, {what}",
                request=self.request,
                response=self,
            ) from exc

    @property
    def is_stream_consumed(self) -> bool:
        """True when no stream is left to read: the body was read in full (always so for a
        non-streaming response), or the stream was closed or failed before its end (then
        :attr:`content` raises ``INVALID_REQUEST``: the body is gone)."""
        return self._stream is None

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Yield the body in chunks as they arrive (or the stored body at once)."""
        if self._stream is None:
            if self._content is None:  # iterated before, or closed unread
                raise _unread_body(self)
            if self._content:
                yield self._content
            return
        stream, self._stream = self._stream, None
        try:
            async for chunk in stream:
                if chunk:
                    yield chunk
        finally:
            await self.aclose()

    async def aiter_lines(self) -> AsyncIterator[str]:
        """Yield decoded text lines (without line endings) as they arrive.

        Lines end where :meth:`str.splitlines` ends them. A character or a CRLF cut
        between two chunks is put back together.
        """
        decoder = _text_decoder(self.encoding)
        pending = ""
        async for chunk in self.aiter_bytes():
            text = decoder.decode(chunk)
            if not text:
                continue
            lines = (pending + text).splitlines(keepends=True)
            last = lines[-1]
            # Unfinished, or a CR whose LF may come in the next chunk: kept for it.
            pending = lines.pop() if last[-1] not in _LINE_ENDS or last[-1] == "\r" else ""
            for line in lines:
                yield line[:-2] if line[-2:] == "\r\n" else line[:-1]
        for line in (pending + decoder.decode(b"", final=True)).splitlines():
            yield line

    async def aread(self) -> bytes:
        """Read the rest of a streaming body into :attr:`content` and return it."""
        if self._stream is not None:
            chunks = [chunk async for chunk in self.aiter_bytes()]
            self._content = b"".join(chunks)
        return self.content

    async def aclose(self) -> None:
        """Release the connection behind a streaming response (idempotent)."""
        close, self._close = self._close, None
        self._stream = None
        if close is not None:
            await close()

    def __repr__(self) -> str:
        return f"<HttpResponse [{self.status_code} {self.reason}]>".replace(" ]", "]")


_Decode: TypeAlias = Callable[[bytes, str, bool], tuple[str, int]]


class _BomDecoder(codecs.BufferedIncrementalDecoder):
    """utf-16 or utf-32 read as ``bytes.decode`` reads them: in the byte order of a BOM
    (dropped), else in the machine's. The stdlib's incremental decoders refuse a body
    without a BOM, which RFC 2781 allows."""

    def __init__(self, width: int, orders: dict[bytes, _Decode], native: _Decode) -> None:
        super().__init__("replace")
        self._width = width
        self._orders = orders
        self._native = native
        self._decode: _Decode | None = None

    def _buffer_decode(self, input: Any, errors: str, final: bool) -> tuple[str, int]:
        decode = self._decode
        if decode is not None:
            return decode(input, errors, final)
        if len(input) < self._width and not final:
            return "", 0  # too short to tell: kept until more comes
        bom = bytes(input[: self._width])
        self._decode = self._orders.get(bom, self._native)
        skip = self._width if bom in self._orders else 0
        text, used = self._decode(input[skip:], errors, final)
        return text, used + skip

    def reset(self) -> None:
        super().reset()
        self._decode = None


_LITTLE = sys.byteorder == "little"
_BOM_CODECS: dict[str, Callable[[], codecs.IncrementalDecoder]] = {
    "utf-16": lambda: _BomDecoder(
        2,
        {
            codecs.BOM_UTF16_LE: codecs.utf_16_le_decode,
            codecs.BOM_UTF16_BE: codecs.utf_16_be_decode,
        },
        codecs.utf_16_le_decode if _LITTLE else codecs.utf_16_be_decode,
    ),
    "utf-32": lambda: _BomDecoder(
        4,
        {
            codecs.BOM_UTF32_LE: codecs.utf_32_le_decode,
            codecs.BOM_UTF32_BE: codecs.utf_32_be_decode,
        },
        codecs.utf_32_le_decode if _LITTLE else codecs.utf_32_be_decode,
    ),
}
# Bytes a text codec decodes with errors replaced; a charset that fails on them
# cannot decode text that way ("idna", "punycode", "undefined").
_CHARSET_PROBE = b"\x80\xff\x00a"


def _text_decoder(encoding: str) -> codecs.IncrementalDecoder:
    """An incremental decoder reading a body as :attr:`HttpResponse.text` reads it."""
    try:
        info = codecs.lookup(encoding)
        _CHARSET_PROBE.decode(info.name, "replace")  # LookupError: not a text codec
    except (LookupError, UnicodeError):
        info = codecs.lookup("utf-8")
    bom_codec = _BOM_CODECS.get(info.name)
    return bom_codec() if bom_codec is not None else info.incrementaldecoder("replace")


def _unread_body(response: HttpResponse) -> FlextApiError:
    """The error for a body that is not in memory: still to read, or gone (a stream is
    read once; iterating it again yielded nothing, as if the body were empty)."""
    if response._stream is not None:
        message = "streaming response body not read: use 'await response.aread()' first"
    else:
        message = (
            "the streamed response body is gone: it was iterated already (a stream is read "
            "once; 'await response.aread()' keeps it) or the response was closed before "
            "it was read"
        )
    return FlextApiError.from_code(ErrorCode.INVALID_REQUEST, message)
