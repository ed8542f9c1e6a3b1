"""The router: maps a request (method, host, path, headers, query) to one route. Pure.

Order of precedence, first match wins:

1. higher ``priority`` first (default 0);
2. then the more specific path form: exact ``path``, then ``path_template`` (more literal
   segments first), then ``path_prefix`` (longer first), then ``path_regex``, then routes
   with no path condition;
3. then the route with more conditions (host, methods, headers, query parameters);
4. then the order of the routes in the file.

Host, method, header and query conditions must all hold too. The table is built once per
config (:class:`Router` is immutable), so a reload swaps it whole.

Path conditions see the path without its segments' ``;`` parameters: ``/admin;x/data``
is matched as ``/admin/data``, the path Tomcat, Jetty and Spring serve for it. Matched as
sent, it slipped past a protected ``/admin`` prefix to a catch-all route, and such an
upstream served the protected resource under the catch-all's policies. The request is
forwarded as sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl

from ._config import MatchConfig, RouteConfig

__all__ = ["RouteMatch", "Router", "compile_template"]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def compile_template(template: str) -> re.Pattern[str]:
    """``/orders/{id}`` -> a regex where each ``{name}`` is one non-empty path segment."""
    out, last = [], 0
    for found in _PARAM.finditer(template):
        out.append(re.escape(template[last : found.start()]))
        out.append(f"(?P<{found.group(1)}>[^/]+)")
        last = found.end()
    out.append(re.escape(template[last:]))
    return re.compile("".join(out))


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The route a request matched and the template parameters it bound."""

    route: RouteConfig
    params: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Entry:
    route: RouteConfig
    sort_key: tuple[int, int, int, int, int]
    regex: re.Pattern[str] | None


def _specificity(match: MatchConfig) -> tuple[int, int, re.Pattern[str] | None]:
    """(kind rank, tie-break within the kind, compiled regex)."""
    if match.path is not None:
        return 0, 0, None
    if match.path_template is not None:
        literal = len(_PARAM.sub("", match.path_template))
        return 1, -literal, compile_template(match.path_template)
    if match.path_prefix is not None:
        return 2, -len(match.path_prefix), None
    if match.path_regex is not None:
        return 3, 0, re.compile(match.path_regex)
    return 4, 0, None


class Router:
    """An immutable route table.

    >>> from flext_api.gateway import RouteConfig
    >>> r = Router([RouteConfig.model_validate(
    ...     {"name": "o", "match": {"path_template": "/orders/{id}"}, "cluster": "c"})])
    >>> m = r.match("GET", "example.com", "/orders/7", {}, "")
    >>> (m.route.name, dict(m.params)) if m else None
    ('o', {'id': '7'})
    """

    __slots__ = ("_entries", "_memo", "uses_headers", "uses_query")

    def __init__(self, routes: Sequence[RouteConfig]) -> None:
        entries = []
        for index, route in enumerate(routes):
            rank, tie, regex = _specificity(route.match)
            m = route.match
            conditions = (
                (m.host is not None) + (m.methods is not None) + len(m.headers) + len(m.query)
            )
            key = (-route.priority, rank, tie, -conditions, index)
            entries.append(_Entry(route, key, regex))
        entries.sort(key=lambda e: e.sort_key)
        self._entries = tuple(entries)
        #: False when no route matches on headers: callers may then pass only ``host``.
        self.uses_headers = any(route.match.headers for route in routes)
        #: False when no route matches on the query: callers may then pass ``""``.
        self.uses_query = any(route.match.query for route in routes)
        # (method, host, path) -> the match, when neither headers nor the query take part:
        # most traffic repeats a few paths. Bounded: emptied when full, long paths and
        # hosts (over 256 characters) not kept.
        self._memo: dict[tuple[str, str, str], RouteMatch | None] | None = (
            None if self.uses_headers or self.uses_query else {}
        )

    @property
    def routes(self) -> tuple[RouteConfig, ...]:
        """The routes in the order they are tried."""
        return tuple(e.route for e in self._entries)

    def match(
        self,
        method: str,
        host: str,
        path: str,
        headers: Mapping[str, str],
        query: str,
    ) -> RouteMatch | None:
        """The first route that matches, or None. ``headers`` keys are lower-case."""
        memo = self._memo
        if memo is None or len(path) > _MEMO_PATH or len(host) > _MEMO_PATH:
            return self._match(method, host, path, headers, query)
        key = (method, host, path)
        found: RouteMatch | None = memo.get(key, _MISS)
        if found is _MISS:
            found = self._match(method, host, path, headers, query)
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[key] = found
        return found

    def _match(
        self,
        method: str,
        host: str,
        path: str,
        headers: Mapping[str, str],
        query: str,
    ) -> RouteMatch | None:
        # "a.example." names the same host as "a.example" (nginx and most servers agree).
        hostname = _strip_port(host.lower()).removesuffix(".")
        if ";" in path:
            path = _without_params(path)
        parsed_query: dict[str, str] | None = None
        for entry in self._entries:
            m = entry.route.match
            if m.host is not None and m.host != hostname:
                continue
            if m.methods is not None and method not in m.methods:
                continue
            params = _match_path(entry, m, path)
            if params is None:
                continue
            if m.headers and not _all_hold(m.headers, headers):
                continue
            if m.query:
                if parsed_query is None:
                    parsed_query = dict(parse_qsl(query, keep_blank_values=True))
                if not _all_hold(m.query, parsed_query):
                    continue
            return RouteMatch(entry.route, params)
        return None


_NO_PARAMS: Mapping[str, str] = {}
_MISS: Any = object()
_MEMO_SIZE = 1024
_MEMO_PATH = 256


def _match_path(entry: _Entry, m: MatchConfig, path: str) -> Mapping[str, str] | None:
    if m.path is not None:
        return _NO_PARAMS if path == m.path else None
    if m.path_prefix is not None:
        prefix = m.path_prefix.rstrip("/")
        if path == prefix or path.startswith(prefix + "/") or (prefix == "" and path):
            return _NO_PARAMS
        return None
    if entry.regex is not None:
        found = entry.regex.fullmatch(path)
        # Read-only: a remembered match is shared by the requests of the same path.
        return None if found is None else MappingProxyType(found.groupdict())
    return _NO_PARAMS


def _all_hold(required: Mapping[str, str], present: Mapping[str, str]) -> bool:
    for name, value in required.items():
        got = present.get(name)
        if got is None or (value != "*" and got != value):
            return False
    return True


def _without_params(path: str) -> str:
    """``path`` without each segment's ``;`` parameters (``/a;v=1/b;x`` -> ``/a/b``)."""
    return "/".join(segment.partition(";")[0] for segment in path.split("/"))


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
