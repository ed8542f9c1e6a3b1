"""Redaction and escaping for log records: secrets out, one request = one line.

Used by the server's access log and by the client's LoggingPlugin, so both hide the same
secrets the same way. Stdlib only on purpose: the client imports it without the
``server`` extra.

- :func:`redact_headers` replaces the value of credential-bearing headers (the list
  fapilog and Litestar ship, research/server.md §2.8) with ``[REDACTED]``, and redacts
  the URL in ``Location``, ``Content-Location`` and ``Referer`` like any URL.
- :func:`redact_query` and :func:`redact_url` do the same for query parameters such as
  ``access_token`` and for the userinfo in ``user:password@host``.
- :func:`truncate` cuts what a record shows of a URL (path, query, ``Location``...) to
  :data:`MAX_LOGGED_URL` characters, after redaction and escaping: a 100 kB URL is
  not a 100 kB log line, and a secret the cut falls in was already masked whole.
- :func:`escape_control` turns CR, LF, ESC and every other non-printable character into a
  visible ``\\xNN`` escape, so text an attacker controls (path, User-Agent, request ID)
  cannot forge a second log line or recolour a terminal (uvicorn CVE-2020-7694).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus, urlsplit, urlunsplit

__all__ = [
    "DEFAULT_SENSITIVE_HEADERS",
    "DEFAULT_SENSITIVE_QUERY_PARAMS",
    "MAX_LOGGED_URL",
    "REDACTED",
    "escape_control",
    "fold_name",
    "folded_names",
    "redact_headers",
    "redact_query",
    "redact_url",
    "secret_name",
    "sensitive_names",
    "strip_url",
    "truncate",
    "userinfo_of",
]

REDACTED = "[REDACTED]"

DEFAULT_SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "cookie",
        # Azure API Management's subscription key.
        "ocp-apim-subscription-key",
        "proxy-authorization",
        "set-cookie",
        # AWS STS session token, sent beside a SigV4 Authorization (botocore).
        "x-amz-security-token",
        "x-api-key",
        "x-auth-token",
        "x-csrf-token",
        "x-forwarded-authorization",
        # Google Cloud API key (the header form of ?key=).
        "x-goog-api-key",
    }
)
"""Header names (lower case) whose values never reach a log."""

DEFAULT_SENSITIVE_QUERY_PARAMS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        # S3 query-string auth (SigV2); with Signature, sig and X-Goog-Signature, the
        # OpenTelemetry semantic conventions' default list for url.query.
        "awsaccesskeyid",
        "client_secret",
        "id_token",
        "password",
        "refresh_token",
        "secret",
        "sig",
        "signature",
        "token",
        "x-amz-credential",
        "x-amz-security-token",
        "x-amz-signature",
        # The API-key headers' own names: the likeliest way to put a key in a query.
        "x-api-key",
        "x-goog-api-key",
        # Google Cloud Storage signed URLs (V4), the X-Amz-* names' counterparts.
        "x-goog-credential",
        "x-goog-signature",
    }
)
"""Query parameter names (lower case) whose values never reach a log."""


MAX_LOGGED_URL = 8192
"""Characters of a URL (or of a path, a query) a log record keeps: Apache's request-line
limit (8190), nginx's default header buffer (8k); uvicorn with h11 refuses request
heads past 16 kB, httptools and other servers need not."""


def truncate(text: str, limit: int = MAX_LOGGED_URL) -> str:
    """``text`` cut to ``limit`` characters, ``...[N more]`` saying how many went.

    Run it last, on redacted and escaped text: cut first, a secret could lose the part
    that lets it be recognised (the ``@`` ending a userinfo) and show the rest.

    >>> truncate("https://example.com/" + "a" * 10, 22)
    'https://example.com/aa...[8 more]'
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more]"


#: Parts of a setting's name that say its value is a credential (``api_token``,
#: ``secret_key``, ``db_password``...), beside the exact header and query names.
_SECRET_NAME_PARTS = (
    "password", "passwd", "secret", "token", "credential", "private",
    "api_key", "apikey", "authorization", "cookie",
)  # fmt: skip


def secret_name(name: object) -> bool:
    """True when a setting or field called ``name`` holds a credential: a sensitive
    header or query name, ``auth``, or a name holding ``password``, ``secret``,
    ``token``... (config errors hide such inputs; ``describe()`` redacts them)."""
    text = str(name).lower()
    return (
        text == "auth"
        or text in DEFAULT_SENSITIVE_HEADERS
        or text in DEFAULT_SENSITIVE_QUERY_PARAMS
        or any(part in text for part in _SECRET_NAME_PARTS)
    )


def sensitive_names(base: Iterable[str], extra: Iterable[str] = ()) -> frozenset[str]:
    """``base`` plus ``extra``, lower-cased: the set the redact functions expect."""
    return frozenset(name.lower() for name in (*base, *extra))


def fold_name(name: str) -> str:
    """``name`` as secret names are compared: lower case, without ``-`` and ``_``, so
    ``accessToken``, ``access_token``, ``ACCESS-TOKEN`` and ``AccessToken`` are one name.

    >>> fold_name("X-Api_Key") == fold_name("xApiKey") == "xapikey"
    True
    """
    return name.lower().replace("-", "").replace("_", "")


@functools.lru_cache(maxsize=64)
def folded_names(names: frozenset[str]) -> frozenset[str]:
    """Every name of ``names`` through :func:`fold_name` (cached: the sets are few)."""
    return frozenset(fold_name(name) for name in names)


def _escape_char(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_control(text: str) -> str:
    """``text`` with every non-printable character (CR, LF, TAB, ESC, U+2028...) escaped.

    >>> escape_control("a\\r\\nb")
    'a\\\\x0d\\\\x0ab'
    """
    if text.isprintable():  # the common case costs one C-level scan
        return text
    return "".join(char if char.isprintable() else _escape_char(char) for char in text)


def _text(value: str | bytes) -> str:
    # Header bytes are latin-1 on the wire (RFC 9110 §5.5); decoding never fails.
    return value.decode("latin-1") if isinstance(value, bytes) else value


# Headers whose value is a URL (RFC 9110): a redirect to a presigned URL, a Referer
# from an OAuth callback carry query secrets.
_URL_HEADERS = frozenset({"content-location", "location", "referer"})


def redact_headers(
    headers: Iterable[tuple[str | bytes, str | bytes]],
    sensitive: frozenset[str] = DEFAULT_SENSITIVE_HEADERS,
    params: frozenset[str] = DEFAULT_SENSITIVE_QUERY_PARAMS,
) -> dict[str, str]:
    """Headers as a ``{lower-case name: value}`` dict, secrets replaced, text escaped.

    The value of a ``sensitive`` header is replaced whole; a URL in ``Location``,
    ``Content-Location`` or ``Referer`` goes through :func:`redact_url` with ``params``,
    then :func:`truncate`.
    Repeated headers are joined with ``", "``. ``sensitive`` and ``params`` must be
    lower case (see :func:`sensitive_names`).
    """
    result: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = _text(raw_name).lower()
        if name in sensitive:
            value = REDACTED
        elif name in _URL_HEADERS:
            value = truncate(redact_url(_text(raw_value), params))
        else:
            value = escape_control(_text(raw_value))
        key = escape_control(name)
        previous = result.get(key)
        result[key] = value if previous is None else f"{previous}, {value}"
    return result


#: What splits a query string into parameters; kept (capturing group) so the rest of the
#: query is shown byte for byte.
_QUERY_SEPARATOR = re.compile(r"([&;])")


def redact_query(
    query: str | bytes, sensitive: frozenset[str] = DEFAULT_SENSITIVE_QUERY_PARAMS
) -> str:
    """A query string with the values of sensitive parameters replaced, text escaped.

    The rest is kept byte for byte (still percent-encoded), so the log shows what was
    sent. Names are compared after percent-decoding, through :func:`fold_name` (case,
    ``-`` and ``_`` ignored: ``accessToken`` is ``access_token``); ``&`` and ``;`` both
    separate parameters.

    >>> redact_query("q=1&access_token=abc")
    'q=1&access_token=[REDACTED]'
    """
    text = _text(query)
    if not text:
        return ""
    # ';' separates parameters too for many servers (W3C's old advice, Python's
    # parse_qs before 3.9.2, Tomcat...): "q=1;token=t" must not show its token.
    parts = _QUERY_SEPARATOR.split(text)
    folded = folded_names(sensitive)
    for index in range(0, len(parts), 2):
        name, sep, _value = parts[index].partition("=")
        if sep and fold_name(unquote_plus(name)) in folded:
            parts[index] = f"{name}={REDACTED}"
    return escape_control("".join(parts))


# What an authority holds when it has no userinfo: a host (or an IP literal), a port.
_HOST_PORT = re.compile(r"^(?:\[[0-9A-Fa-f:.]*\]|[^:@\[\]]*)(?::[0-9]*)?$")


def _userinfo_end(rest: str) -> int:
    """The index in ``rest`` (a URL after ``://``) of the ``@`` ending its userinfo, -1
    when it has none.

    A userinfo may hold an unencoded ``/``, ``?`` or ``#`` (base64 secrets and cloud keys
    do): ``user:pa/ss@host`` then reads as host ``user``, port ``pa`` and path
    ``/ss@host``. When what comes before the first such character is no host[:port] and
    an ``@`` follows, that ``@`` ends the userinfo.
    """
    end = len(rest)
    for delimiter in "/?#":
        at = rest.find(delimiter)
        if 0 <= at < end:
            end = at
    at = rest.rfind("@", 0, end)
    if at != -1 or end == len(rest) or _HOST_PORT.match(rest[:end]):
        return at
    return rest.find("@", end)


def userinfo_of(url: str) -> str | None:
    """The userinfo of ``url`` as written (still percent-encoded), None when it has none;
    found as :func:`strip_url` finds it, ``/`` or ``?`` in a password included.

    >>> userinfo_of("https://ak:s/k@example.com/p")
    'ak:s/k'
    """
    _scheme, sep, rest = url.partition("://")
    if not sep:
        rest = url[2:] if url.startswith("//") else url
    end = _userinfo_end(rest)
    return None if end == -1 else rest[:end]


_URL_IN_TEXT = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)(\S*)")


def _scrub_one(match: re.Match[str]) -> str:
    rest = match.group(2)
    end = _userinfo_end(rest)
    return match.group(0) if end == -1 else f"{match.group(1)}{REDACTED}{rest[end:]}"


def scrub_userinfo(text: str) -> str:
    """``text`` (a library's error message) with the userinfo of every URL in it
    replaced: stores and servers echo the endpoint they were given, password included.
    A userinfo holding ``/`` (AWS secret keys do) is found as :func:`strip_url` finds it.

    >>> scrub_userinfo("error sending to http://ak:sk@127.0.0.1:9000/b: refused")
    'error sending to http://[REDACTED]@127.0.0.1:9000/b: refused'
    >>> scrub_userinfo("error sending to http://ak:s/k@127.0.0.1:9000/b: refused")
    'error sending to http://[REDACTED]@127.0.0.1:9000/b: refused'
    """
    return _URL_IN_TEXT.sub(_scrub_one, text) if "@" in text else text


def strip_url(url: str) -> str:
    """``url`` without userinfo, query string or fragment: enough to name a request in a
    repr or an error message, with nothing secret left to leak.

    >>> strip_url("https://u:pw@example.com/p?token=t#f")
    'https://example.com/p'
    >>> strip_url("https://key:ab/cd+ef?gh@example.com/p")
    'https://example.com/p'
    >>> strip_url("user:pw@redis.internal:6379/0")
    'redis.internal:6379/0'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        # No scheme: "//user:pw@host/p" (scheme-relative) or "user:pw@host" (a setting
        # whose scheme was forgotten) still carry a userinfo.
        scheme, sep, rest = ("", "//", url[2:]) if url.startswith("//") else ("", "", url)
    else:
        sep = "://"
    rest = rest[_userinfo_end(rest) + 1 :]
    return f"{scheme}{sep}{rest.split('?', 1)[0].split('#', 1)[0]}"


def redact_url(url: str, sensitive_params: frozenset[str] = DEFAULT_SENSITIVE_QUERY_PARAMS) -> str:
    """``url`` with its userinfo and sensitive query values redacted, text escaped.

    The whole userinfo goes, not only a password: ``https://TOKEN@host`` carries its
    secret in the user part.

    >>> redact_url("https://u:pw@example.com/p?token=t&page=2")
    'https://[REDACTED]@example.com/p?token=[REDACTED]&page=2'
    """
    # Escape first: urlsplit silently deletes CR, LF and TAB (bpo-43882), and the
    # result must show what was sent.
    url = escape_control(url)
    scheme, sep, rest = url.partition("://")
    if sep:
        end = _userinfo_end(rest)
        if end != -1:
            # Cut here, not by urlsplit: a userinfo holding '/', '?' or '#' would be read
            # as the host, a port and a path, and shown.
            url = f"{scheme}://x@{rest[end + 1 :]}"
    elif not url.startswith("//"):  # scheme-relative URLs have their netloc parsed below
        # No scheme ("user:pw@host/p", a setting whose scheme was forgotten): urlsplit
        # would read "user" as the scheme and show the password in the path.
        end = _userinfo_end(url)
        if end != -1:
            url = f"{REDACTED}@{url[end + 1 :]}"
    try:
        parts = urlsplit(url)
    except ValueError:  # unparsable (a bad IPv6 literal...): keep no userinfo or query
        return strip_url(url)
    netloc = parts.netloc
    _userinfo, at, hostinfo = netloc.rpartition("@")
    if at:
        netloc = f"{REDACTED}@{hostinfo}"
    query = redact_query(parts.query, sensitive_params) if parts.query else ""
    # No fragment: it is never sent, and OAuth's implicit flow puts tokens there.
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
