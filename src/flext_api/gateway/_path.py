"""Request targets made unambiguous before routing: dot segments, absolute forms, Host.

A gateway decides (route, auth, limits) on the path it sees, and the upstream serves the
path it interprets. When the two differ, a client reaches a protected route through a
public one: ``/public/../admin`` matches the prefix ``/public`` here, and an upstream that
resolves dot segments (most frameworks, nginx) serves ``/admin``. So, as nginx does
before it matches a location:

- ``.`` and ``..`` segments (also written ``%2e``) are removed as RFC 3986 §5.2.4 says,
  and the request is routed AND forwarded with the result;
- a ``..`` that would climb above the root is refused;
- a dot segment hidden from that step is refused: behind an encoded slash or backslash
  (``..%2fadmin``, ``..%5cadmin``), behind a literal backslash (``..\\admin``, which
  some servers take as a separator), or with path parameters (``..;/admin``, which
  Tomcat and Jetty resolve as ``..``).

Empty segments (``//``) are kept as sent, as Envoy does by default: an upstream that merges
slashes should sit behind routes that do not depend on it.

The host is the other half of a route's decision, so it gets the same care (RFC 9112
§3.2): an absolute-form target (``GET http://a.example/x``) is routed and forwarded to
its own authority, whatever ``Host`` says; a userinfo in it (``http://u@a.example/``)
is refused (RFC 9110 §4.2.4), and so are two ``Host`` lines, none on HTTP/1.1, or one
that is not a host (``a.example, b.example``, or ``a.example,b.example`` without the
space), which upstreams read in different ways.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, unquote_to_bytes

from .._syntax import split_target, with_host

__all__ = [
    "PLAIN_PATHS",
    "normalize_path",
    "remember_plain",
    "routing_path",
    "split_target",
    "valid_host",
    "with_host",
]

#: Raw paths seen with nothing to resolve: most traffic repeats a few paths, and a set
#: lookup costs a fraction of scanning the bytes again (``in`` on bytes is slow).
PLAIN_PATHS: set[bytes] = set()
_PLAIN_PATHS_MAX = 4096

# RFC 3986 host (an IP literal or a reg-name: unreserved, pct-encoded, sub-delims) and port,
# but for the comma: a sub-delim no DNS name has, and HTTP's list separator, so that
# "a.example,b.example" is two hosts to an upstream that reads Host or X-Forwarded-Host
# as a list (Express takes the first) while the router saw one it matched no route to.
_HOST = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+;=]*)(?::[0-9]*)?")
_GOOD_HOSTS: set[bytes] = set()
_GOOD_HOSTS_MAX = 1024

_DOTS = (b".", b"..")


def _segment_dots(segment: bytes) -> bytes:
    """``segment`` with each ``%2e``/``%2E`` decoded (an unreserved character)."""
    return segment.replace(b"%2e", b".").replace(b"%2E", b".") if 37 in segment else segment


def _hides_dots(segment: bytes) -> bool:
    """Whether decoding ``segment`` reveals a dot segment (see the module doc)."""
    decoded = unquote_to_bytes(segment) if 37 in segment else segment
    parts = decoded.replace(b"\\", b"/").split(b"/")
    return any(part.split(b";", 1)[0] in _DOTS for part in parts)


def normalize_path(raw: bytes) -> bytes | None:
    """``raw`` (a request's path, without its query) with its dot segments resolved.

    Returns ``raw`` itself when it has none, the resolved path otherwise, and None when
    the path must be refused (see the module doc). Other escapes are kept as sent.
    """
    # "/.", "%" or "\\": find() and byte values, not ``b"%" in raw`` (bytes.__contains__
    # tries the operand as an int first and clears the TypeError: five times slower).
    if not raw.startswith(b"/") or (raw.find(b"/.") < 0 and 37 not in raw and 92 not in raw):
        return raw  # the usual path, and ``*`` (OPTIONS) or an absolute form
    out: list[bytes] = []
    dot_last = False
    for segment in raw[1:].split(b"/"):
        plain = _segment_dots(segment)
        dot_last = plain in _DOTS
        if dot_last:
            if plain == b"..":
                if not out:
                    return None  # above the root
                out.pop()
        elif _hides_dots(segment):
            return None
        else:
            out.append(segment)
    if dot_last:
        out.append(b"")  # "/a/b/.." is "/a/", as RFC 3986 resolves it
    normalized = b"/" + b"/".join(out)
    return raw if normalized == raw else normalized


def remember_plain(raw: bytes) -> None:
    """Add ``raw`` (an origin-form path :func:`normalize_path` left as it is) to
    :data:`PLAIN_PATHS`, which is emptied when full."""
    if len(PLAIN_PATHS) >= _PLAIN_PATHS_MAX:
        PLAIN_PATHS.clear()
    PLAIN_PATHS.add(bytes(raw))


def routing_path(raw: bytes) -> str:
    """The decoded path of ``raw``, as uvicorn computes ``scope["path"]`` from its
    ``raw_path`` (which is ASCII: it refuses other bytes in a request target)."""
    text = raw.decode("utf-8", "replace")
    return unquote(text) if "%" in text else text


def valid_host(host: bytes) -> bool:
    """Whether ``host`` is a ``Host`` value (RFC 9110 §7.2: uri-host and optional port)."""
    if host in _GOOD_HOSTS:
        return True  # the usual case: a host seen before
    if _HOST.fullmatch(host) is None:
        return False
    if len(_GOOD_HOSTS) >= _GOOD_HOSTS_MAX:
        _GOOD_HOSTS.clear()
    _GOOD_HOSTS.add(bytes(host))
    return True
