"""Turning a caller's arguments into a validated :class:`HttpRequest`.

Everything here runs before a byte is sent, and every problem becomes an
``INVALID_REQUEST`` error: a malformed or relative-without-base URL, an unsupported
scheme, CR/LF/NUL in a URL or a header, a ``json=`` value that cannot be serialized,
conflicting body arguments.
"""

from __future__ import annotations

import functools
import mimetypes
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from typing import IO, Any, Final, TypeAlias
from urllib.parse import quote, urlencode, urljoin, urlsplit

from .._errors import InvalidRequestError
from .._models import Headers, validate_header
from .._numbers import finite_json
from .._redact import strip_url
from ..discovery._instance import is_service_name

__all__ = [
    "USE_CLIENT_DEFAULT",
    "FileTypes",
    "ParamTypes",
    "UseClientDefault",
    "build_url",
    "check_framing",
    "encode_body",
    "header_url",
    "is_absolute_url",
    "shared_request_options",
    "merge_headers",
    "normalize_base_url",
    "remove_dot_segments",
]


class UseClientDefault:
    """Sentinel type: "not passed, use the client's setting" (so ``None`` can mean off)."""

    _instance: UseClientDefault | None = None

    def __new__(cls) -> UseClientDefault:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"

    def __bool__(self) -> bool:
        return False


USE_CLIENT_DEFAULT: Final = UseClientDefault()

_Scalar: TypeAlias = "str | int | float | bool"
ParamValue: TypeAlias = "_Scalar | Sequence[_Scalar | None] | None"
ParamTypes: TypeAlias = "Mapping[str, ParamValue] | Sequence[tuple[str, ParamValue]] | str | None"
FileContent: TypeAlias = "bytes | str | IO[bytes] | IO[str]"
FileTypes: TypeAlias = (
    "FileContent | tuple[str | None, FileContent] | tuple[str | None, FileContent, str]"
)

# "service" names a service of a discovery registry (FlextApiClient(registry=...)).
_SCHEMES = frozenset({"http", "https", "service"})
# Characters that may stand in a URL as they are (RFC 3986 reserved + unreserved + '%').
_SAFE = "/:@!$&'()*+,;=?#[]~-._%"
_QUERY_SAFE = _SAFE.replace("#", "")
_PLAIN_PATH = re.compile(r"^[A-Za-z0-9\-._~/!$&'()*+,;=:@%]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_HOST_CHARS = frozenset(' <>\\^`{|}"')


#: What a URL read from a header may not hold as it is: a space, anything outside ASCII.
_HEADER_UNSAFE = re.compile(r"[^\x00-\x7f]+| +")
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_USUAL_SCHEMES = ("https://", "http://")


def is_absolute_url(url: str) -> bool:
    """True when ``url`` starts with a scheme and ``://`` (RFC 3986 §3.1).

    A ``://`` further on is data, not a scheme: ``/go?to=http://x`` is a path on the
    base URL.

    >>> is_absolute_url("HTTPS://api.example/x"), is_absolute_url("/go?to=http://x")
    (True, False)
    """
    # On every request's path: the usual schemes, then a URL without "://", are settled
    # without the regex.
    return url.startswith(_USUAL_SCHEMES) or ("://" in url and _ABSOLUTE.match(url) is not None)


def shared_request_options(
    given: Mapping[str, Any] | None, allowed: frozenset[str], *, each: str, hint: str = ""
) -> dict[str, Any]:
    """``request_options`` a batch or a paginator passes to every request, checked at once.

    Only names in ``allowed`` (a misspelt one would surface only at the first request);
    never one str ``idempotency_key``, which would be sent with every ``each`` (item,
    page): a server that honours it answers all of them with the first one's response.
    """
    options = dict(given or {})
    unknown = sorted(map(str, set(options) - allowed))
    if unknown:
        raise TypeError(
            f"request_options does not take {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    if isinstance(options.get("idempotency_key"), str):
        raise ValueError(
            f"request_options: a str idempotency_key would be sent with every {each}; "
            f"use idempotency_key=True (a key per request){hint}"
        )
    return options


def _octets_percent(match: re.Match[str]) -> str:
    text = match.group()
    try:
        octets = text.encode("latin-1")  # the octets the server sent (see header_url)
    except UnicodeEncodeError:  # past U+00FF: text from an in-process transport
        octets = text.encode("utf-8")
    return quote(octets, safe="")


def header_url(value: str) -> str:
    """A URL read from a response header (``Location``, ``Link``) with the spaces and
    non-ASCII octets of its path, query and fragment percent-encoded (its host is left
    to the URL checks and IDNA).

    The transports hand header values over one character per octet (ISO-8859-1): a
    UTF-8 ``café`` is encoded ``caf%C3%A9``, a Latin-1 one ``caf%E9``; a character past
    U+00FF, which only an in-process transport can give, as its UTF-8. Encoding the
    characters as UTF-8 would encode each octet of a UTF-8 one twice. Raises
    ``UnicodeEncodeError`` for a lone surrogate, which no transport produces.
    """
    value = value.strip()
    if value.isascii() and " " not in value:
        return value
    start = 2 if value.startswith("//") else 0
    if not start and (scheme := _ABSOLUTE.match(value)):
        start = scheme.end()
    end = 0
    if start:
        end = next((i for i in range(start, len(value)) if value[i] in "/?#"), len(value))
    return value[:end] + _HEADER_UNSAFE.sub(_octets_percent, value[end:])


def _shown(url: str) -> str:
    """A URL fit for an error message: no userinfo, no query string (they carry secrets)."""
    return repr(strip_url(url))


def _invalid(message: str) -> InvalidRequestError:
    return InvalidRequestError(message)


def normalize_base_url(base_url: str | None) -> str | None:
    """Check a base URL once; return it without a trailing slash."""
    if base_url is None or base_url == "":
        return None
    return _check_absolute(base_url).rstrip("/")


def _check_absolute(url: str) -> str:
    """``url`` checked, with its scheme in lower case (RFC 3986 §6.2.2.1)."""
    if _CONTROL.search(url):
        raise _invalid(f"URL contains a control character (CR, LF, NUL...): {_shown(url)}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        # urlsplit's message quotes the port it could not read, which for
        # "http://user:pass/word@host" is the password: say what, not the text.
        reason = (
            "its port is not a number from 0 to 65535"
            if "port" in str(exc).lower()
            else ("its host is not a valid IPv6 literal or name")
        )
        raise _invalid(f"malformed URL {_shown(url)}: {reason}") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise _invalid(
            f"unsupported URL scheme {parts.scheme!r} in {_shown(url)} (use http or https)"
        )
    if not url.startswith(scheme):  # urlsplit lowers the scheme it returns, not the URL
        # "HTTP://" and "Service://" are the same schemes; the stages compare lower case.
        url = scheme + url[len(scheme) :]
    hostname = parts.hostname
    if not hostname:
        raise _invalid(f"URL has no host: {_shown(url)}")
    if scheme == "service":
        # The authority is a registry's service name: nothing else can match one.
        if not is_service_name(parts.netloc):
            raise _invalid(
                f"{_shown(url)} does not name a service: a service name holds only "
                "letters, digits, '-', '_' and '.' (no port, no user info)"
            )
        return url
    if port == 0:
        raise _invalid(f"URL has port 0: {_shown(url)}")
    if not _BAD_HOST_CHARS.isdisjoint(hostname):
        raise _invalid(f"URL host contains invalid characters: {_shown(url)}")
    if not hostname.isascii():
        url = _idna_host(url, parts.netloc, hostname)
    return url


def _idna_host(url: str, netloc: str, hostname: str) -> str:
    """``url`` with its internationalised host in IDNA (``xn--``) form, as DNS, TLS and
    the ``Host`` header need it, the same for every transport."""
    try:
        ascii_host = hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise _invalid(f"URL host is not a valid domain name: {_shown(url)}") from exc
    userinfo, at, hostport = netloc.rpartition("@")
    start = hostport.lower().find(hostname)
    hostport = hostport[:start] + ascii_host + hostport[start + len(hostname) :]
    head = url.index("://") + 3
    return url[:head] + userinfo + at + hostport + url[head + len(netloc) :]


def build_url(base_url: str | None, url: str, params: ParamTypes) -> str:
    """Join ``url`` to ``base_url``, percent-encode what must be, append ``params``.

    A relative ``url`` is appended to the base path (``base/api`` + ``/items`` ->
    ``base/api/items``), as httpx does; an absolute one is used as is.
    """
    if not isinstance(url, str):
        raise _invalid(f"URL must be str, got {type(url).__name__}")
    try:
        if base_url is not None and _PLAIN_PATH.match(url) and url[:1] in ("/", ""):
            full = base_url + url if url else base_url
            if _may_hold_dot_segment(url):
                full = _within_base(base_url, full, url)
        elif is_absolute_url(url):
            full = _absolute_url(url)
        else:
            if base_url is None:
                raise _invalid(f"relative URL {_shown(url)} needs a base_url on the client")
            if _CONTROL.search(url):
                raise _invalid(f"URL contains a control character (CR, LF, NUL...): {_shown(url)}")
            if url[:1].isspace() or url[-1:].isspace():
                # " http://x/a" (a value read from a file) would become the path
                # "/%20http://x/a" on the base URL: most likely not what was meant.
                raise _invalid(f"URL starts or ends with whitespace: {_shown(url)}")
            path = "/" + quote(url.lstrip("/"), safe=_SAFE)
            full = base_url + path
            if "." in url or _may_hold_dot_segment(path):
                full = _within_base(base_url, full, url)
        if params:
            query = _query_string(params) if isinstance(params, str) else _encode_params(params)
            if query:
                # Before the fragment, if the URL has one: after it, the server never
                # sees the parameters.
                head, hash_, fragment = full.partition("#")
                full = f"{head}{'&' if '?' in head else '?'}{query}{hash_}{fragment}"
    except UnicodeEncodeError as exc:  # a lone surrogate cannot be percent-encoded
        raise _invalid(
            f"URL or params hold a character that is not valid Unicode text "
            f"({exc.object[exc.start : exc.end]!r}): {_shown(url)}"
        ) from exc
    return full


def _query_string(params: str) -> str:
    """A caller's ready-made query string, made safe for the request line.

    The transports disagreed on it: aiohttp and pyreqwest dropped a CR/LF and sent the
    rest, H1Transport and httpx2 refused it; aiohttp and H1Transport wrote a space
    raw into the request line. A control character is refused (not shown: a query may
    hold a secret); a space, a non-ASCII character (as UTF-8) and a ``#`` (which would
    turn the rest into a fragment) are percent-encoded; existing escapes are kept.
    """
    if _CONTROL.search(params):
        raise _invalid("params= string contains a control character (CR, LF, NUL...)")
    return quote(params, safe=_QUERY_SAFE)


def _split_path(url: str) -> tuple[str, str, str]:
    """``url`` as (scheme and authority, path, query and fragment)."""
    start = url.find("://")
    start = 0 if start < 0 else start + 3
    end = next((i for i in range(start, len(url)) if url[i] in "/?#"), len(url))
    stop = next((i for i in range(end, len(url)) if url[i] in "?#"), len(url))
    return url[:end], url[end:stop], url[stop:]


def _may_hold_dot_segment(path: str) -> bool:
    """Whether ``path`` may hold a ``.`` or ``..`` segment, literal or percent-encoded."""
    return "/." in path or "/%2e" in path or "/%2E" in path


def _dots(segment: str) -> str:
    """``segment`` with ``%2e`` read as ``.`` when that makes a dot segment, as WHATWG
    URL parsing (and many servers) do: ``%2e%2e``, ``.%2E`` and ``%2e.`` are ``..``."""
    if "%" in segment and len(segment) <= 6:
        decoded = segment.replace("%2e", ".").replace("%2E", ".")
        if decoded in (".", ".."):
            return decoded
    return segment


def remove_dot_segments(path: str) -> str:
    """``path`` without ``.`` and ``..`` segments (RFC 3986 §5.2.4); ``..`` stops at the
    root. A segment of dots written ``%2e`` (any case) is one too, as WHATWG URL
    parsing and many servers read it: sent as is, ``%2e%2e`` would climb on the server.

    >>> remove_dot_segments("/a/b/../c/./d"), remove_dot_segments("/a/../../x/..")
    ('/a/c/d', '/')
    >>> remove_dot_segments("/a/b/%2e%2E/.%2e/c")
    '/c'
    """
    segments = path.split("/")
    out: list[str] = []
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        segment = _dots(segment)
        if segment in (".", ".."):
            if segment == ".." and len(out) > 1:
                out.pop()
            if i == last:
                out.append("")  # "/a/b/.." is the directory "/a/"
            continue
        out.append(segment)
    return "/".join(out)


def _normalized(url: str) -> str:
    """``url`` with the dot segments of its path removed.

    Sent as they are, they reached the server raw with aiohttp and H1Transport and
    resolved with httpx2 and pyreqwest: one call, two different paths.
    """
    head, path, rest = _split_path(url)
    return head + remove_dot_segments(path) + rest


def _within_base(base_url: str, full: str, url: str) -> str:
    """``full`` (``url`` joined to ``base_url``) with its dot segments removed; refused
    when they climb above the base URL's path (``"../admin"``): an identifier put into
    a relative URL must not reach another part of the server."""
    out = _normalized(full)
    base_path = _split_path(base_url)[1]
    path = _split_path(out)[1]
    if base_path and path != base_path and not path.startswith(base_path + "/"):
        raise _invalid(
            f"relative URL {_shown(url)} climbs above the base URL's path "
            f"{base_path!r} with '..' (or '%2e%2e') segments (an absolute URL goes there "
            "on purpose)"
        )
    return out


@functools.lru_cache(maxsize=2048)
def _absolute_url(url: str) -> str:
    """Encode and check an absolute URL; cached, as services call the same URLs again.

    Only the path, query and fragment are percent-encoded: the host is checked as it is
    given (a space in it is refused, not encoded into another name) and an
    internationalised one is left to the transport's IDNA encoding, as for a base URL.
    """
    if _CONTROL.search(url):
        raise _invalid(f"URL contains a control character (CR, LF, NUL...): {_shown(url)}")
    scheme, sep, rest = url.partition("://")
    end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hostport = authority.rpartition("@")
    if at:
        authority = quote(userinfo, safe=":%!$&'()*+,;=~-._") + at + hostport
    tail = quote(tail, safe=_SAFE)
    if _may_hold_dot_segment(tail):
        tail = _normalized(tail)
    return _check_absolute(scheme + sep + authority + tail)


def _param_str(key: str, value: str | int | float | bool) -> str:
    """One query or form value as text: ``true``/``false`` for booleans.

    Anything but a str, int, float or bool is refused: ``str()`` of a dict, bytes or an
    object (``b'x'``, ``<object at 0x..>``) would reach the server as if it were data.
    """
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise _invalid(
        f"value of {key!r} must be str, int, float, bool or None (or a list of them), "
        f"got {type(value).__name__}"
    )


def _pairs(given: object, what: str) -> Iterable[tuple[Any, Any]]:
    """``given``'s (name, value) pairs: a mapping's items or a sequence of 2-tuples."""
    if isinstance(given, Mapping):
        return given.items()
    if isinstance(given, list | tuple) and all(
        isinstance(pair, tuple | list) and len(pair) == 2 for pair in given
    ):
        return given
    raise _invalid(
        f"{what} must be a mapping or a sequence of (name, value) pairs, got {type(given).__name__}"
    )


def _encode_params(params: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in _pairs(params, "params="):
        if type(key) is not str:
            raise _invalid(f"parameter names must be str, got {type(key).__name__} {key!r}")
        if value is None:
            continue
        if isinstance(value, list | tuple):
            # None inside a list is left out, as at the top level.
            pairs.extend((key, _param_str(key, v)) for v in value if v is not None)
        else:
            pairs.append((key, _param_str(key, value)))
    return urlencode(pairs)


def merge_headers(
    base: list[tuple[str, str]],
    extra: Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> Headers:
    """The client's (already valid) headers overridden by validated per-request ones."""
    if not extra:
        return Headers.from_pairs(list(base))
    pairs = extra.multi_items() if isinstance(extra, Headers) else _pairs(extra, "headers=")
    overrides: list[tuple[str, str]] = []
    for name, value in pairs:
        validate_header(name, value)
        overrides.append((name, value))
    names = {name.lower() for name, _ in overrides}
    merged = [(k, v) for k, v in base if k.lower() not in names]
    merged.extend(overrides)
    return Headers(merged)


def encode_body(
    *,
    json: Any,
    data: Mapping[str, Any] | str | bytes | None,
    content: str | bytes | AsyncIterable[bytes] | None,
    files: Mapping[str, FileTypes] | None,
) -> tuple[bytes | None, AsyncIterable[bytes] | None, str | None]:
    """Encode the body arguments; returns ``(content, stream, content_type)``."""
    if json is None and data is None and content is None and files is None:
        return None, None, None
    given = [n for n, v in (("json", json), ("content", content)) if v is not None]
    if data is not None and files is None:
        given.append("data")
    if files is not None:
        given.append("files")
    if len(given) > 1:
        raise _invalid(f"pass only one of json=, data=, content=, files= (got {', '.join(given)})")
    if json is not None:
        try:
            return finite_json(json), None, "application/json"
        except (TypeError, ValueError) as exc:
            raise _invalid(f"json= value is not JSON-serializable: {exc}") from exc
    if files is not None:
        if data is not None and not isinstance(data, Mapping):
            raise _invalid("with files=, data= must be a mapping of form fields")
        body, ctype = _encode_multipart(data or {}, files)
        return body, None, ctype
    if data is not None:
        if isinstance(data, Mapping):
            form = _encode_params(data)
            return form.encode("ascii"), None, "application/x-www-form-urlencoded"
        if isinstance(data, str):
            return _utf8(data, "data="), None, None
        if isinstance(data, bytes | bytearray | memoryview):
            return bytes(data), None, None
        # bytes(5) would send five NUL bytes, bytes(True) one.
        raise _invalid(f"data= must be a mapping, str or bytes, got {type(data).__name__}")
    if content is not None:
        if isinstance(content, str):
            return _utf8(content, "content="), None, None
        if isinstance(content, bytes | bytearray | memoryview):
            return bytes(content), None, None
        if isinstance(content, AsyncIterable):
            return None, content, None
        raise _invalid(
            "content= must be bytes, str or an async iterable of bytes, "
            f"got {type(content).__name__}"
        )
    return None, None, None


_DIGITS = re.compile(r"^[0-9]{1,19}$")


def check_framing(
    headers: Headers, content: bytes | None, stream: AsyncIterable[bytes] | None
) -> AsyncIterable[bytes] | None:
    """Refuse a caller's ``Content-Length``/``Transfer-Encoding`` that disagrees with the
    body; return the stream to send (held to a declared length).

    The transports frame the body themselves; a caller's framing header is kept only
    when it says the same (a ``Content-Length`` equal to the body's size; ``chunked``
    for a stream) or declares a stream's size, which is then enforced: a framing header
    that a body contradicts makes the server read the rest as another request.
    """
    lengths = headers.get_list("content-length")
    codings = headers.get_list("transfer-encoding")
    if codings:
        if lengths:
            raise _invalid("pass Content-Length or Transfer-Encoding, not both")
        if stream is None or [c.strip().lower() for c in codings] != ["chunked"]:
            raise _invalid(
                "Transfer-Encoding is set by the transport; only 'chunked' with a streamed "
                f"body may be given, got {', '.join(codings)!r}"
                + ("" if stream is not None else " with a body that is not a stream")
            )
        return stream
    if not lengths:
        return stream
    values = {v.strip() for v in lengths}
    declared = values.pop() if len(values) == 1 else None
    if declared is None or not _DIGITS.match(declared):
        raise _invalid(f"Content-Length must be one number of bytes, got {', '.join(lengths)!r}")
    length = int(declared)
    if stream is not None:
        return _exactly(stream, length)
    size = len(content or b"")
    if length != size:
        raise _invalid(f"Content-Length says {length} bytes but the body has {size}")
    return None


async def _exactly(stream: AsyncIterable[bytes], length: int) -> AsyncIterator[bytes]:
    """``stream``'s chunks, refusing to go past ``length`` bytes or to end short of it."""
    sent = 0
    async for chunk in stream:
        sent += len(chunk)
        if sent > length:
            raise _invalid(f"the request body stream is longer than its Content-Length {length}")
        yield chunk
    if sent != length:
        raise _invalid(f"the request body stream ended after {sent} of its Content-Length {length}")


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise _invalid(
            f"{what} holds a character that is not valid Unicode text "
            f"({exc.object[exc.start : exc.end]!r} at {exc.start})"
        ) from exc


def _quote_field(value: str) -> str:
    # WHATWG multipart/form-data encoding of names and filenames.
    return value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


def _read_file(name: str, content: FileContent) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return _utf8(content, f"files= entry {name!r}")
    read = getattr(content, "read", None)
    data = read() if callable(read) else None
    if not isinstance(data, bytes | str):
        raise _invalid(
            f"files= entry {name!r} must be bytes, str or a file object opened for reading, "
            f"got {type(content).__name__}"
        )
    return _utf8(data, f"files= entry {name!r}") if isinstance(data, str) else data


def _encode_multipart(
    fields: Mapping[str, Any], files: Mapping[str, FileTypes]
) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    out: list[bytes] = []
    for name, value in fields.items():
        if type(name) is not str:
            raise _invalid(f"form field names must be str, got {type(name).__name__} {name!r}")
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if v is None:
                continue  # as in a urlencoded form
            text = _param_str(name, v)
            out.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote_field(name)}"'
                f"\r\n\r\n".encode()
            )
            out.append(_utf8(text, f"form field {name!r}") + b"\r\n")
    if not isinstance(files, Mapping):
        raise _invalid(f"files= must be a mapping of field names, got {type(files).__name__}")
    for name, spec in files.items():
        if type(name) is not str:
            raise _invalid(f"files= field names must be str, got {type(name).__name__} {name!r}")
        filename: str | None
        ctype: str | None = None
        if isinstance(spec, tuple):
            if len(spec) not in (2, 3):
                raise _invalid(
                    f"files= entry {name!r} must be (filename, content) or "
                    f"(filename, content, content_type), got a {len(spec)}-tuple"
                )
            filename, payload = spec[0], spec[1]
            if filename is not None and not isinstance(filename, str):
                raise _invalid(
                    f"files= entry {name!r}: the filename must be str or None, "
                    f"got {type(filename).__name__}"
                )
            if len(spec) > 2:
                ctype = spec[2]
                # The part's head carries it as it is: a CR/LF would add header lines.
                validate_header("Content-Type", ctype)
        else:
            payload = spec
            filename = getattr(spec, "name", None) or name
            filename = str(filename).rsplit("/", 1)[-1]
        body = _read_file(name, payload)
        if ctype is None:
            ctype = (filename and mimetypes.guess_type(filename)[0]) or "application/octet-stream"
        disposition = f'form-data; name="{_quote_field(name)}"'
        if filename is not None:
            disposition += f'; filename="{_quote_field(filename)}"'
        out.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: {ctype}\r\n\r\n".encode()
        )
        out.append(body + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def redirect_url(current: str, location: str) -> str:
    """Resolve a Location header against the current URL and check the result."""
    target = _check_absolute(urljoin(current, location.strip()))
    if target.startswith("service://"):
        # A server cannot name a service of this client's registry.
        raise _invalid(f"redirect to {_shown(target)} refused: only http and https")
    return target


def same_origin(a: str, b: str) -> bool:
    """True when two URLs share scheme, host and port (credentials may follow)."""
    pa, pb = urlsplit(a), urlsplit(b)
    default = {"http": 80, "https": 443}
    return (
        pa.scheme == pb.scheme
        and (pa.hostname or "").lower() == (pb.hostname or "").lower()
        and (pa.port or default.get(pa.scheme)) == (pb.port or default.get(pb.scheme))
    )
