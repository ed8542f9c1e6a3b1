"""Pagination strategies: how to ask for the first page and how to find the next one.

A strategy is a small frozen object with two methods, ``first(url, params)`` and
``next(request, page)``; it holds no state, so one instance can drive any number of
paginations. ``next`` returns None at the end of the collection:

=================  =============================================  =========================
strategy           next page                                      end
=================  =============================================  =========================
``PageNumber``     ``?page=N+1``                                  a page with no items
``Offset``         ``?offset=O+len(items)``                       a page with no items
``Cursor``         ``?cursor=<value at next_path in the body>``   no cursor (null, "", absent)
``NextUrl``        the URL at ``path`` in the body (relative ok)  no URL
``LinkHeader``     the ``Link: <...>; rel="next"`` target          no such link
=================  =============================================  =========================

Relative next URLs are resolved against the URL of the page that named them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol
from urllib.parse import urljoin

from ..._errors import DecodeError, InvalidRequestError
from .._request import header_url, is_absolute_url
from ._links import parse_link_header

if TYPE_CHECKING:
    from ._paginate import Page

__all__ = [
    "Cursor",
    "LinkHeader",
    "NextUrl",
    "Offset",
    "PageNumber",
    "PageRequest",
    "PaginationStrategy",
    "lookup",
]


class PageRequest(NamedTuple):
    """The request for one page: a URL (relative to the client's base, or absolute) and
    the query parameters to add to it (None: the URL carries its whole query)."""

    url: str
    params: Mapping[str, Any] | None = None


class PaginationStrategy(Protocol):
    """How a collection is paged; see the module docstring for the built-in ones.

    A strategy may also set a class attribute ``ends_on_empty = True``: the paginator
    then stops at a page without items and does not yield it.
    """

    def first(self, url: str, params: Mapping[str, Any] | None) -> PageRequest:
        """The request for the first page."""
        ...

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        """The request for the page after ``page`` (fetched with ``request``), or None."""
        ...


_MISSING: Any = object()


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``"meta.next"``; digits index lists), or missing.

    Returns the module's missing sentinel when a step does not exist; callers compare
    with :func:`is_missing`.
    """
    current = data
    for step in path.split("."):
        if isinstance(current, Mapping) and step in current:
            current = current[step]
        elif isinstance(current, list) and step.isdigit() and int(step) < len(current):
            current = current[int(step)]
        else:
            return _MISSING
    return current


def is_missing(value: Any) -> bool:
    """True for what :func:`lookup` returns when the path does not exist."""
    return value is _MISSING


# urljoin silently drops tabs and newlines (WHATWG rules); a next link holding a control
# character is a broken or hostile server, reported rather than "repaired".
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _next_url(page: Page, target: str, what: str, *, header: bool = False) -> PageRequest:
    """``target`` resolved against the page's URL; DecodeError when it is no URL.

    ``header``: ``target`` was read from a response header, one character per octet: its
    non-ASCII octets are percent-encoded as they came (:func:`header_url`), not each
    encoded again as UTF-8.
    """
    if _CONTROL.search(target):
        raise DecodeError(
            f"page {page.number}: the {what} {target!r} contains a control character",
            response=page.response,
        )
    try:
        resolved = urljoin(page.url, header_url(target) if header else target)
    except ValueError as exc:  # UnicodeEncodeError too: a lone surrogate
        raise DecodeError(
            f"page {page.number}: the {what} {target!r} is not a valid URL ({exc})",
            response=page.response,
        ) from exc
    if not is_absolute_url(resolved):
        # An opaque URI (mailto:, javascript:, data:), even one holding "://" in its
        # query: no page to fetch, and the client would take it for a path on its base URL.
        raise DecodeError(
            f"page {page.number}: the {what} {target!r} is not an http(s) URL",
            response=page.response,
        )
    return PageRequest(resolved)


def _check_name(kind: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{kind} must be a non-empty str, got {value!r}")


def _check_int(kind: str, value: object, least: int) -> None:
    if type(value) is not int or value < least:
        raise ValueError(f"{kind} must be >= {least} (an int), got {value!r}")


def _advanced(request: PageRequest, page: Page, param: str, step: int) -> PageRequest:
    """``request`` with its integer query parameter ``param`` moved on by ``step``.

    The parameter comes from ``first()``, or from a ``resume_from`` request made
    elsewhere: one without it (or not an integer) is an ``INVALID_REQUEST``, not a
    ``KeyError``.
    """
    query = dict(request.params or {})
    value = query.get(param)
    try:
        if isinstance(value, bool):
            raise TypeError
        current = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidRequestError(
            f"page {page.number}: the request {request.url!r} has no integer {param!r} "
            f"query parameter to advance (got {value!r})",
            details={"page": page.number + 1},
        ) from None
    query[param] = current + step
    return PageRequest(request.url, query)


@dataclass(frozen=True, slots=True)
class PageNumber:
    """``?page=1``, ``?page=2``, ... until a page has no items.

    ``size_param``/``size`` add a page size to every request (both or neither).
    """

    param: str = "page"
    start: int = 1
    size_param: str | None = None
    size: int | None = None
    ends_on_empty: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_name("param", self.param)
        _check_int("start", self.start, 0)
        if (self.size_param is None) != (self.size is None):
            raise ValueError("give both size_param and size, or neither")
        if self.size is not None:
            _check_int("size", self.size, 1)

    def first(self, url: str, params: Mapping[str, Any] | None) -> PageRequest:
        query = dict(params or {})
        query[self.param] = self.start
        if self.size_param is not None:
            query[self.size_param] = self.size
        return PageRequest(url, query)

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        if not page.items:
            return None
        return _advanced(request, page, self.param, 1)


@dataclass(frozen=True, slots=True)
class Offset:
    """``?offset=0&limit=100``, then ``offset`` grows by the items received, until none."""

    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = 100
    start: int = 0
    ends_on_empty: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_name("offset_param", self.offset_param)
        _check_name("limit_param", self.limit_param)
        _check_int("limit", self.limit, 1)
        _check_int("start", self.start, 0)

    def first(self, url: str, params: Mapping[str, Any] | None) -> PageRequest:
        query = dict(params or {})
        query[self.offset_param] = self.start
        query[self.limit_param] = self.limit
        return PageRequest(url, query)

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        if not page.items:
            return None
        return _advanced(request, page, self.offset_param, len(page.items))


@dataclass(frozen=True, slots=True)
class Cursor:
    """A cursor (next token) read from the body at ``next_path``, sent back as ``param``."""

    param: str = "cursor"
    next_path: str = "next_cursor"

    def __post_init__(self) -> None:
        _check_name("param", self.param)
        _check_name("next_path", self.next_path)

    def first(self, url: str, params: Mapping[str, Any] | None) -> PageRequest:
        return PageRequest(url, dict(params or {}))

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        value = lookup(page.data, self.next_path)
        if is_missing(value) or value is None or value == "":
            return None
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise DecodeError(
                f"page {page.number}: the cursor at {self.next_path!r} must be a string or "
                f"an integer, got {type(value).__name__}",
                response=page.response,
            )
        query = dict(request.params or {})
        query[self.param] = value
        return PageRequest(request.url, query)


@dataclass(frozen=True, slots=True)
class NextUrl:
    """The next page's URL, read from the body at ``path`` (absolute or relative)."""

    path: str = "next"

    def __post_init__(self) -> None:
        _check_name("path", self.path)

    def first(self, url: str, params: Mapping[str, Any] | None) -> PageRequest:
        return PageRequest(url, dict(params) if params else None)

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        value = lookup(page.data, self.path)
        if is_missing(value) or value is None or value == "":
            return None
        if not isinstance(value, str):
            raise DecodeError(
                f"page {page.number}: the next URL at {self.path!r} must be a string, "
                f"got {type(value).__name__}",
                response=page.response,
            )
        return _next_url(page, value, "next URL")


@dataclass(frozen=True, slots=True)
class LinkHeader:
    """The target of the RFC 8288 ``Link`` header with relation ``rel`` (``next``)."""

    rel: str = "next"

    def __post_init__(self) -> None:
        _check_name("rel", self.rel)

    def first(self, url: str, params: Mapping[str, Any] | None) -> PageRequest:
        return PageRequest(url, dict(params) if params else None)

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        wanted = self.rel.lower()
        for link in parse_link_header(page.response.headers.get_list("link")):
            if wanted in link.rels and link.url:
                return _next_url(page, link.url, f"Link rel={self.rel!r} target", header=True)
        return None
