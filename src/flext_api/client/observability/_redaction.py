"""Masking secrets in everything the observability plugins record.

Built on :mod:`flext_api._redact` (shared with the server's access log) and adds what
a client needs:

* the names an auth plugin marked on the request (an API key in ``X-Tenant-Key``);
* the whole userinfo of a URL masked, not only its password (``https://TOKEN@host``
  puts the secret in the user part);
* **scrubbing by value**: error messages are free text (a transport's, a plugin's), so
  the values of the request's secret headers, query parameters and userinfo are
  replaced wherever they appear in them;
* bodies: form fields and JSON keys with sensitive names masked, then truncated.

Every string leaves here with CR, LF and other control characters escaped, so a
record stays one line whatever renderer the application configured.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, unquote_plus

import orjson

from ..._models import Headers, HttpRequest
from ..._redact import (
    DEFAULT_SENSITIVE_HEADERS,
    DEFAULT_SENSITIVE_QUERY_PARAMS,
    REDACTED,
    escape_control,
    fold_name,
    folded_names,
    redact_headers,
    redact_query,
    redact_url,
    sensitive_names,
    truncate,
    userinfo_of,
)
from .._sensitive import SENSITIVE_EXTENSION, SensitiveNames

__all__ = ["Redactor"]

# '&' and ';' both separate query parameters (see flext_api._redact.redact_query).
_QUERY_SEPARATOR = re.compile(r"[&;]")
# Shorter values would be scrubbed out of unrelated text ("1", "on").
_MIN_SECRET = 4
# JSON bodies larger than this are not parsed to be redacted, only summarized.
_MAX_JSON_PARSE = 1 << 20
# One ``"name": value`` member of JSON text that could not be parsed (the value may be
# cut short: an unterminated string runs to the end).
_JSON_MEMBER = re.compile(r'("((?:[^"\\]|\\.)*)"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^\s,{}\[\]"]*)')


def _json_key(raw: str) -> str:
    """A JSON string's content (``raw``, between its quotes) with its escapes decoded:
    ``"\\u0070assword"`` is the key ``password``."""
    if "\\" not in raw:
        return raw
    try:
        key = orjson.loads(f'"{raw}"')
    except orjson.JSONDecodeError:  # a bad escape: compare the text as written
        return raw
    return key if isinstance(key, str) else raw


class Redactor:
    """Masks secret headers, query parameters, userinfo and body fields.

    ``headers`` and ``params`` are added to the defaults of :mod:`flext_api._redact`
    (``Authorization``, ``Cookie``, ``X-API-Key``...; ``access_token``, ``api_key``,
    ``token``, ``client_secret``, ``password``...), compared case-insensitively. Query
    parameters, form fields and JSON keys (at any depth) are compared through
    :func:`~flext_api._redact.fold_name`: ``accessToken``, ``ACCESS-TOKEN`` and
    ``access_token`` are one name.
    """

    __slots__ = ("headers", "params")

    def __init__(self, headers: Iterable[str] = (), params: Iterable[str] = ()) -> None:
        self.headers = sensitive_names(DEFAULT_SENSITIVE_HEADERS, headers)
        self.params = sensitive_names(DEFAULT_SENSITIVE_QUERY_PARAMS, params)

    def for_request(self, *requests: HttpRequest) -> Redactor:
        """This redactor, widened by the names auth plugins marked on ``requests``."""
        headers, params = self.headers, self.params
        for request in requests:
            marked = request.extensions.get(SENSITIVE_EXTENSION)
            if isinstance(marked, SensitiveNames):
                headers, params = headers | marked.headers, params | marked.params
        if headers == self.headers and params == self.params:
            return self
        return Redactor(headers, params)

    # -- structured parts ------------------------------------------------------------------
    def url(self, url: str) -> str:
        """``url`` with its userinfo and sensitive query values masked, escaped."""
        return redact_url(url, self.params)

    def header_map(self, headers: Headers) -> dict[str, str]:
        """Headers as ``{lower-case name: value}``, sensitive values masked, escaped; the
        URL of a ``Location``, ``Content-Location`` or ``Referer`` as :meth:`url` shows it."""
        return redact_headers(headers.raw(), self.headers, self.params)

    # -- free text -------------------------------------------------------------------------
    def secrets(self, *requests: HttpRequest) -> list[str]:
        """The secret values ``requests`` carry, longest first (to scrub text with)."""
        found: set[str] = set()
        for request in requests:
            self._collect(request, found)
        return sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True)

    def _collect(self, request: HttpRequest, found: set[str]) -> None:
        for name, value in request.headers.raw():
            if name.lower() in self.headers:
                found.add(value)
                found.add(value.partition(" ")[2])  # "Bearer <token>": the token alone
        # Found as redact_url finds it: a password may hold '/' or '?' (AWS keys do).
        userinfo = userinfo_of(request.url)
        if userinfo is not None:
            parts = userinfo.split(":", 1)
            # Decoded too: "wJalr%2FK7" is echoed by libraries as "wJalr/K7".
            found.update((userinfo, unquote(userinfo), *parts, *map(unquote, parts)))
            # Past the userinfo: a '?' inside it starts no query.
            rest = request.url[request.url.find(userinfo) + len(userinfo) :]
        else:
            rest = request.url
        query = rest.partition("?")[2].partition("#")[0]
        for pair in _QUERY_SEPARATOR.split(query):
            name, sep, value = pair.partition("=")
            if sep and fold_name(unquote_plus(name)) in folded_names(self.params):
                found.update((value, unquote_plus(value)))

    def text(self, text: str, secrets: Iterable[str] = ()) -> str:
        """``text`` with every value in ``secrets`` masked, control characters escaped."""
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return escape_control(text)

    # -- bodies ----------------------------------------------------------------------------
    def body(self, content: bytes, content_type: str | None, limit: int) -> str:
        """A loggable rendering of ``content``: secrets masked, at most ``limit`` chars."""
        ctype = (content_type or "").split(";", 1)[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            text = redact_query(content.decode("latin-1"), self.params)
        elif ctype == "application/json" or ctype.endswith("+json"):
            if len(content) > _MAX_JSON_PARSE:
                return f"<{len(content)} bytes of JSON, too large to redact>"
            try:
                text = orjson.dumps(self._mask_json(orjson.loads(content))).decode()
            except (orjson.JSONDecodeError, orjson.JSONEncodeError, RecursionError):
                # Not JSON orjson round-trips (cut short, NaN, nested past its limits):
                # mask the sensitive members in the text itself.
                text = self._mask_json_text(content.decode("utf-8", errors="replace"))
        else:
            # Any other type: a token endpoint answering text/plain still sends JSON, so
            # "access_token": ... members are masked wherever they appear.
            text = self._mask_json_text(content.decode("utf-8", errors="replace"))
        return escape_control(truncate(text, limit))

    def _json_keys(self) -> frozenset[str]:
        """The folded names a JSON key is masked by (see :func:`fold_name`)."""
        return folded_names(self.params | self.headers)

    def _mask_json_text(self, text: str) -> str:
        keys = self._json_keys()

        def mask(match: re.Match[str]) -> str:
            if fold_name(_json_key(match.group(2))) in keys:
                return f'{match.group(1)}"{REDACTED}"'
            return match.group(0)

        return _JSON_MEMBER.sub(mask, text)

    def _mask_json(self, data: Any) -> Any:
        keys = self._json_keys()

        def mask(data: Any) -> Any:
            if isinstance(data, dict):
                return {
                    k: REDACTED if fold_name(str(k)) in keys else mask(v) for k, v in data.items()
                }
            if isinstance(data, list):
                return [mask(item) for item in data]
            return data

        return mask(data)

    def __repr__(self) -> str:
        return f"<Redactor headers={len(self.headers)} params={len(self.params)}>"
