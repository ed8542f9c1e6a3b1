"""HTTP syntax checks shared by the client, the server config, discovery and the gateway.

:func:`validate_header` refuses a header that could split a message (the client runs it
on every header a caller passes); :func:`sendable_header` is the same check for
configuration (a ``ValueError``, as pydantic validators raise); :func:`split_config_url`
reads a configured upstream or store URL after refusing what ``urlsplit`` would hide;
:func:`check_origin_form` refuses a configured request target (a probe path) that is not
an RFC 9112 origin-form; :func:`split_target` reads an absolute-form request target
(``GET http://a.example/x``), whose authority is the request's host (RFC 9112 §3.2.2),
for the server's trusted-host check and the gateway's routing alike.
Low in the core so that configuration models below :mod:`._models` can use them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

from ._errors import InvalidRequestError
from ._redact import REDACTED, secret_name

__all__ = [
    "BAD_VALUE_RE",
    "TOKEN_RE",
    "check_networks",
    "check_origin_form",
    "sendable_header",
    "split_config_url",
    "split_target",
    "validate_header",
    "with_host",
]

# RFC 9110 §5.1: a field name is a token (fullmatch: "$" would let a trailing LF through).
TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: no CTLs in a field value except HTAB (CR, LF and NUL above all).
BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# What a configured upstream URL may not hold: control characters and spaces. urlsplit()
# drops CR, LF and tab without a word, so they must be looked for before it runs.
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f]")
# RFC 9112 §3.2.1 origin-form: absolute-path [ "?" query ], of RFC 3986 pchars (unreserved,
# sub-delims, ":", "@", "%XX"), with "/" and "?" also in the query.
_PCHAR = r"[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2}"
_ORIGIN_FORM_RE = re.compile(rf"(?:/(?:{_PCHAR})*)+(?:\?(?:{_PCHAR}|[/?])*)?")
_SCHEME = re.compile(rb"https?", re.IGNORECASE)


def split_config_url(url: str) -> SplitResult:
    """``urlsplit(url)`` of a configured URL (an upstream, a store).

    Raises ValueError saying what is wrong: spaces or control characters (which
    ``urlsplit`` would drop without a word, and a request line would then carry), a
    malformed port, port 0. Callers check the scheme and show the URL with the message.
    """
    if _UNSAFE_URL_CHARS.search(url):
        raise ValueError("holds spaces or control characters")
    parts = urlsplit(url)
    if parts.port == 0:  # .port raises ValueError for a malformed one
        raise ValueError("port 0 is not a port to connect to")
    return parts


def check_origin_form(target: str) -> None:
    """Raise ValueError unless ``target`` is an origin-form request target (RFC 9112):
    ``/path`` with an optional ``?query``, ASCII, no spaces, control characters or
    fragment, ``%`` only before two hex digits.

    What a configured path (sent as is on a request line) must be; the message says
    what is wrong, the caller names the setting.
    """
    if _ORIGIN_FORM_RE.fullmatch(target):
        return
    if not target.startswith("/"):
        raise ValueError("must start with '/'")
    if _UNSAFE_URL_CHARS.search(target):
        raise ValueError("holds spaces or control characters")
    raise ValueError("is not a path and query of URL characters (ASCII, no '#', '%' only as %XX)")


def validate_header(name: str, value: str) -> None:
    """Raise :class:`InvalidRequestError` for a header that could split a message.

    A name must be an RFC 9110 token; a value must not contain CR, LF, NUL or other
    control characters (HTAB is allowed), and must be ASCII: the transports would send
    other characters each their own way (UTF-8, Latin-1, dropped or refused), so they
    are refused here, with the way to send them.
    """
    name_obj: object = name
    value_obj: object = value
    if not isinstance(name_obj, str) or not TOKEN_RE.fullmatch(name_obj):
        raise InvalidRequestError(f"invalid header name {name!r}")
    if not isinstance(value_obj, str):
        raise InvalidRequestError(f"header {name!r} value must be str, got {type(value).__name__}")
    # A credential's value is never quoted (an error message is logged and shown).
    shown = REDACTED if secret_name(name) else repr(value)
    if BAD_VALUE_RE.search(value):
        raise InvalidRequestError(
            f"header {name!r} value contains a control character (CR, LF or NUL): {shown}"
        )
    if not value.isascii():
        raise InvalidRequestError(
            f"header {name!r} value has non-ASCII characters: {shown}; percent-encode "
            "them (or use RFC 8187's name*=UTF-8''... form for parameters)"
        )


def check_networks(entries: Iterable[str]) -> None:
    """Raise ValueError naming the first of ``entries`` that is not an IP address or
    network (``10.0.0.0/8``): trusted-proxy lists, checked when configured, not when the
    first request needs them."""
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or network") from exc


def sendable_header(name: str, value: str = "x") -> None:
    """:func:`validate_header` for configuration: ValueError (what pydantic validators
    raise) for a header name or value that no message could carry."""
    try:
        validate_header(name, value)
    except InvalidRequestError as exc:
        raise ValueError(exc.message) from None


def split_target(target: bytes) -> tuple[bytes, bytes] | None:
    """The authority and the path (without query) of an absolute-form ``http(s)`` target.

    None when ``target`` is not one, or when its authority is empty or has a userinfo.
    """
    scheme, sep, rest = target.partition(b"://")
    if not sep or _SCHEME.fullmatch(scheme) is None:
        return None
    end = len(rest)
    for stop in (b"/", b"?", b"#"):
        at = rest.find(stop)
        if at != -1:
            end = min(end, at)
    authority = rest[:end]
    if not authority or b"@" in authority:
        return None
    path = rest[end:].split(b"?", 1)[0].split(b"#", 1)[0]
    return authority, path if path.startswith(b"/") else b"/" + path


def with_host(headers: list[tuple[bytes, bytes]], host: bytes) -> list[tuple[bytes, bytes]]:
    """``headers`` with every ``Host`` line replaced by one saying ``host``."""
    return [(b"host", host), *(pair for pair in headers if pair[0] != b"host")]
