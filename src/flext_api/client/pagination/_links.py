"""RFC 8288 ``Link`` header parsing, for ``rel="next"`` pagination.

Hand-written because the common helpers split on ``", <"`` and break on the cases the
RFC allows: commas inside quoted parameters (``title="a, b"``), escaped quotes,
``rel`` lists (``rel="next last"``), unquoted tokens, several ``Link`` fields, empty
list elements, spaces around ``;`` and ``=``. A malformed link-value is skipped (up to
the next top-level comma) rather than failing the whole header, as browsers do.

Grammar (RFC 8288 §3, RFC 9110 §5.6)::

    Link       = #link-value
    link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param )
    link-param = token BWS [ "=" BWS ( token / quoted-string ) ]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Link", "parse_link_header"]

_WS = " \t"


@dataclass(frozen=True, slots=True)
class Link:
    """One link-value: its target (as written, maybe relative) and its parameters.

    Parameter names are lower-cased; when a name repeats, the first value wins (the
    RFC's rule for ``rel``). A parameter without a value maps to ``""``.
    """

    url: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def rels(self) -> frozenset[str]:
        """The relation types of ``rel`` (space-separated, compared lower-case)."""
        return frozenset(self.params.get("rel", "").lower().split())


def parse_link_header(values: str | Iterable[str]) -> list[Link]:
    """Every link of one or several ``Link`` field values, in order."""
    if isinstance(values, str):
        values = [values]
    links: list[Link] = []
    for value in values:
        _parse_field(value, links)
    return links


def _parse_field(value: str, links: list[Link]) -> None:
    n = len(value)
    i = 0
    while i < n:
        i = _skip(value, i, _WS + ",")
        if i >= n:
            return
        end = value.find(">", i + 1) if value[i] == "<" else -1
        if end == -1:
            i = _skip_element(value, i)
            continue
        url = value[i + 1 : end].strip()
        params, i, ok = _parse_params(value, end + 1)
        if ok:
            links.append(Link(url, params))
        else:
            i = _skip_element(value, i)


def _parse_params(value: str, i: int) -> tuple[dict[str, str], int, bool]:
    """Parameters after ``<url>``; returns them, where parsing stopped, and validity."""
    n = len(value)
    params: dict[str, str] = {}
    while True:
        i = _skip(value, i, _WS)
        if i >= n or value[i] == ",":
            return params, i, True
        if value[i] != ";":
            return params, i, False
        i = _skip(value, i + 1, _WS)
        start = i
        while i < n and value[i] not in _WS + "=;,":
            i += 1
        name = value[start:i].lower()
        if not name:
            return params, i, False
        i = _skip(value, i, _WS)
        param_value = ""
        if i < n and value[i] == "=":
            i = _skip(value, i + 1, _WS)
            if i < n and value[i] == '"':
                param_value, i = _quoted(value, i)
            else:
                start = i
                while i < n and value[i] not in _WS + ";,":
                    i += 1
                param_value = value[start:i]
        params.setdefault(name, param_value)


def _quoted(value: str, i: int) -> tuple[str, int]:
    """A quoted-string starting at ``value[i] == '"'``; unterminated runs to the end."""
    out: list[str] = []
    i += 1
    n = len(value)
    while i < n:
        char = value[i]
        if char == "\\" and i + 1 < n:
            out.append(value[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        out.append(char)
        i += 1
    return "".join(out), i


def _skip(value: str, i: int, chars: str) -> int:
    while i < len(value) and value[i] in chars:
        i += 1
    return i


def _skip_element(value: str, i: int) -> int:
    """Index of the next comma outside quotes and ``<...>`` (or the end)."""
    n = len(value)
    while i < n:
        char = value[i]
        if char == '"':
            _, i = _quoted(value, i)
            continue
        if char == "<":
            end = value.find(">", i + 1)
            i = n if end == -1 else end + 1
            continue
        if char == ",":
            return i
        i += 1
    return i
