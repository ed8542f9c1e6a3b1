"""``client.paginate(...)``: iterate over the pages of a collection, or over its items.

:class:`Paginator` is an async iterator of :class:`Page` objects, and ``.items()`` is an
async iterator of the records across pages. Each page is fetched with
``client.request``, so retries, breakers and rate limits apply per page.

Rules (``docs/batch.md`` has the long form):

* **Failure ends the iteration by raising.** A page that fails (after the client's
  retries), whose body is not JSON, or whose items cannot be found raises its
  :class:`~flext_api.FlextApiError` (with ``details["page"]``) after the pages already
  yielded. The paginator keeps its place: iterating it again resumes at the failed
  page. :meth:`Paginator.collect` gives the railway version (a ``FlextResult``).
* **Loops are errors.** Before a page is fetched, its full URL (query included) is
  compared with those already fetched; a repeat (a next link or cursor pointing back)
  raises :class:`PaginationError` (``PROTOCOL_ERROR``, ``details["reason"] == "loop"``).
  With the page-number and offset strategies the URL always changes, so a server that
  ignores the page or offset parameter would be paged forever: there a page whose items
  are the previous page's (compared as JSON, whatever else the body holds: an echoed
  ``page``, a timestamp) raises :class:`PaginationError` (``PROTOCOL_ERROR``,
  ``details["reason"] == "repeated_page"``) before it is yielded.
* **Next links stay on the origin.** An absolute next URL on another scheme, host or
  port raises :class:`PaginationError` (``INVALID_REQUEST``) unless
  ``allow_cross_origin=True``: the client's headers and auth would go with it.
* ``max_pages`` stops quietly after that many pages; ``truncated`` then tells whether
  there was a next page to fetch.
* With the page-number and offset strategies (``ends_on_empty``), the empty page that
  marks the end is not yielded.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlsplit

from ..._errors import DecodeError, ErrorCode, FlextApiError, InvalidRequestError
from ..._exactjson import dumps as exact_json_dumps
from ..._models import HttpResponse, host_of
from ..._result import FlextResult
from .._client import _OPTION_KEYS
from .._request import build_url, shared_request_options
from .._sync_iter import drain_sync
from ._strategies import LinkHeader, PageRequest, PaginationStrategy, is_missing, lookup

if TYPE_CHECKING:
    from .._client import FlextApiClient
    from .._sync import FlextApiSyncClient

__all__ = [
    "Page",
    "PaginateOptions",
    "PaginationError",
    "Paginator",
    "SyncPaginator",
    "paginate_sync",
]

# Where items are looked for when ``items_path`` is not given and the body is an object.
_ITEM_KEYS = ("items", "data", "results")


def _origin(url: str) -> tuple[str, str, str]:
    """``(scheme, host, userinfo)``: one spelling per origin, so ``http://api:80`` and
    ``http://API.`` are the page's own origin (:func:`host_of` drops default ports,
    trailing dots and case), while credentials a link adds still make it another."""
    parts = urlsplit(url)
    return parts.scheme.lower(), host_of(url), parts.netloc.rpartition("@")[0]


# ``client.request`` options a paginator sets itself on every page.
_OWN_OPTIONS = frozenset({"params", "headers"})


def _request_options(given: Mapping[str, Any] | None) -> dict[str, Any]:
    """``request_options`` checked at once: a misspelt or duplicated option would
    otherwise surface only at the first page, as a ``TypeError`` out of ``collect()``."""
    options = dict(given or {})
    own = sorted(map(str, _OWN_OPTIONS.intersection(options)))
    if own:
        raise TypeError(
            f"request_options does not take {', '.join(own)}: pass "
            f"{', '.join(f'{name}=' for name in own)} to paginate() itself"
        )
    return shared_request_options(options, _OPTION_KEYS - _OWN_OPTIONS, each="page")


class PaginateOptions(TypedDict, total=False):
    """The keyword arguments of :class:`Paginator`, for ``client.paginate(path, **options)``.

    Kept equal to ``Paginator.__init__``'s keyword-only parameters by
    ``tests/unit/client/test_forwarded_options.py``.
    """

    strategy: PaginationStrategy | None
    params: Mapping[str, Any] | None
    max_pages: int | None
    items_path: str | None
    headers: Mapping[str, str] | None
    method: str
    allow_cross_origin: bool
    resume_from: PageRequest | None
    request_options: Mapping[str, Any] | None


class PaginationError(FlextApiError):
    """The server's pagination is inconsistent (a loop) or unsafe (a cross-origin link).

    ``details["reason"]`` is ``"loop"`` or ``"repeated_page"`` (code ``PROTOCOL_ERROR``)
    or ``"cross_origin"`` (code ``INVALID_REQUEST``); ``details["page"]`` is the page
    that would have come next.
    """

    default_code = ErrorCode.PROTOCOL_ERROR


@dataclass(frozen=True, slots=True)
class Page:
    """One fetched page.

    Attributes:
        number: 1 for the first page fetched by this paginator, then 2, 3...
        url: the page's absolute URL (after redirects).
        response: the response, body read.
        data: the body parsed as JSON.
        items: the records of this page (``items_path`` in ``data``).
    """

    number: int
    url: str
    response: HttpResponse
    data: Any
    items: list[Any]


class Paginator:
    """Pages of ``path``, fetched lazily; see the module docstring for the rules.

    >>> async for page in client.paginate("/items", strategy=PageNumber(size=50,   # doctest: +SKIP
    ...                                   size_param="per_page")):
    ...     handle(page.items)
    >>> async for item in client.paginate("/events", strategy=Cursor()).items():  # doctest: +SKIP
    ...     handle(item)

    Args:
        client: sends every page request.
        path: the first page's URL (relative to the client's base, or absolute).
        strategy: a :class:`~flext_api.client.PaginationStrategy` (default
            :class:`~flext_api.client.LinkHeader`, the standard one).
        params: query parameters of the first request (and, for page, offset and
            cursor strategies, of every request).
        max_pages: stop after this many pages (None: no limit).
        items_path: dotted path of the records in the body (default: the body when it
            is a list, else the first of ``items``, ``data``, ``results`` that is one).
        headers: extra headers sent with every page request.
        method: the HTTP method (GET, or POST for search-style APIs).
        allow_cross_origin: follow next links to another origin.
        resume_from: start with this request (a :attr:`next_request` kept from an
            earlier run) instead of the first page.
        request_options: more keyword arguments for ``client.request`` (``timeout``...);
            checked here: ``params``/``headers`` (arguments of their own), unknown
            names and a str ``idempotency_key`` (one key for every page) are refused.

    Raises ``TypeError``/``ValueError`` at once for bad arguments.
    """

    def __init__(
        self,
        client: FlextApiClient,
        path: str,
        *,
        strategy: PaginationStrategy | None = None,
        params: Mapping[str, Any] | None = None,
        max_pages: int | None = None,
        items_path: str | None = None,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
        allow_cross_origin: bool = False,
        resume_from: PageRequest | None = None,
        request_options: Mapping[str, Any] | None = None,
    ) -> None:
        pages: object = max_pages
        if pages is not None and (type(pages) is not int or pages < 1):
            raise ValueError(f"max_pages must be an int >= 1 or None, got {max_pages!r}")
        if items_path is not None and not items_path:
            raise ValueError("items_path must be a non-empty dotted path or None")
        self._client = client
        self.strategy: PaginationStrategy = strategy if strategy is not None else LinkHeader()
        self.max_pages = max_pages
        self.items_path = items_path
        self._headers = dict(headers) if headers else None
        self._method = method
        self._allow_cross_origin = allow_cross_origin
        self._options = _request_options(request_options)
        self._next: PageRequest | None = (
            resume_from if resume_from is not None else self.strategy.first(path, params)
        )
        self._last: tuple[PageRequest, Page] | None = None
        self._seen: set[str] = set()
        self._previous_items: bytes | None = None  # ends_on_empty strategies only
        self._partial: list[Any] = []  # records of a failed collect(), for the next one
        self._origin: tuple[str, str, str] | None = None
        self.pages_fetched = 0
        self.truncated = False

    @property
    def next_request(self) -> PageRequest | None:
        """The request of the next page (None at the end): keep it to resume later."""
        self._advance()
        return self._next

    def __aiter__(self) -> AsyncGenerator[Page, None]:
        return self._pages()

    async def _pages(self) -> AsyncGenerator[Page, None]:
        while True:
            self._advance()
            request = self._next
            if request is None:
                return
            if self.max_pages is not None and self.pages_fetched >= self.max_pages:
                self.truncated = True
                return
            number = self.pages_fetched + 1
            key = self._check(request, number)
            page = await self._fetch(request, number)
            if getattr(self.strategy, "ends_on_empty", False):
                if not page.items:
                    self._seen.add(key)
                    self._next = None  # an empty page marks the end; not a page of results
                    return
                self._check_repeat(page)
            self._seen.add(key)
            self.pages_fetched = number
            self._last = (request, page)
            yield page

    def _advance(self) -> None:
        """Derive the next request from the last page, once (it may raise)."""
        if self._last is not None:
            request, page = self._last
            self._next = self.strategy.next(request, page)
            self._last = None

    def _check(self, request: PageRequest, number: int) -> str:
        """The page's full URL (its identity); raise on a loop or a cross-origin link."""
        try:
            full = build_url(self._client.base_url, request.url, request.params)
        except FlextApiError as exc:
            exc.details.setdefault("page", number)
            raise
        except ValueError as exc:  # e.g. text that cannot be encoded into a URL
            raise InvalidRequestError(
                f"page {number}: cannot build a URL from {request.url!r}: {exc}",
                details={"page": number},
            ) from exc
        full = full.split("#", 1)[0]
        if full in self._seen:
            raise PaginationError(
                f"pagination loop: page {number} would fetch {full!r} again",
                details={"reason": "loop", "page": number, "url": full},
            )
        origin = self._origin
        if origin is not None and not self._allow_cross_origin and _origin(full) != origin:
            raise PaginationError(
                f"page {number}: next link {full!r} leaves the origin "
                f"{origin[0]}://{origin[1]} (allow_cross_origin=True to follow)",
                code=ErrorCode.INVALID_REQUEST,
                details={"reason": "cross_origin", "page": number, "url": full},
            )
        return full

    def _check_repeat(self, page: Page) -> None:
        """A page-number or offset page with the same items as the one before: the server
        ignores (or clamps) the parameter, and would serve that page forever.

        The items are compared, not the bodies: a body echoing the page asked for, or
        stamped with the time, differs on every request while the records repeat. They
        are compared as JSON text, so ``1``, ``1.0`` and ``true`` stay different.
        """
        try:
            items = exact_json_dumps(page.items)
        except TypeError:  # nested deeper than orjson writes (it reads deeper): the body
            items = b"\0" + page.response.content
        if items == self._previous_items:
            raise PaginationError(
                f"pagination loop: page {page.number} ({page.url}) has the same content "
                f"(items) as page {page.number - 1}: the server ignores (or clamps) the "
                f"{type(self.strategy).__name__} parameter and would serve it forever",
                details={"reason": "repeated_page", "page": page.number, "url": page.url},
                response=page.response,
            )
        self._previous_items = items

    async def _fetch(self, request: PageRequest, number: int) -> Page:
        result = await self._client.request(
            self._method,
            request.url,
            params=request.params,
            headers=self._headers,
            **self._options,
        )
        error = result.exception
        if error is not None:
            error.details.setdefault("page", number)
            raise error
        response = result.value
        if self._origin is None:
            self._origin = _origin(response.url)
        try:
            data = response.json() if response.content else None
            items = self._items(data, number)
        except DecodeError as exc:
            exc.details.setdefault("page", number)
            exc.response = exc.response or response
            raise
        return Page(number, response.url, response, data, items)

    def _items(self, data: Any, number: int) -> list[Any]:
        if self.items_path is not None:
            found = lookup(data, self.items_path)
            if is_missing(found) or not isinstance(found, list):
                what = "missing" if is_missing(found) else f"a {type(found).__name__}"
                raise DecodeError(
                    f"page {number}: the items at {self.items_path!r} are {what}, not a list"
                )
            return found
        if isinstance(data, list):
            return data
        if isinstance(data, Mapping):
            for key in _ITEM_KEYS:
                if isinstance(data.get(key), list):
                    return list(data[key])
        raise DecodeError(
            f"page {number}: cannot find the items (the body is "
            f"{type(data).__name__ if data is not None else 'empty'}, with no list under "
            f"{', '.join(_ITEM_KEYS)}): pass items_path="
        )

    async def items(self) -> AsyncGenerator[Any, None]:
        """Every record, page after page (same failure rules as the pages)."""
        async for page in self:
            for item in page.items:
                yield item

    async def collect(self) -> FlextResult[list[Any]]:
        """Every remaining record in a list, or the failure that stopped the iteration.

        A failed ``collect()`` keeps the records of the pages it had fetched, and the
        next ``collect()`` (which resumes at the failed page) returns them first: retrying
        a failed ``collect()`` loses no page.
        """
        records, self._partial = self._partial, []
        try:
            async for item in self.items():
                records.append(item)
        except FlextApiError as exc:
            self._partial = records
            return FlextResult(error=exc)
        return FlextResult.ok(records)

    def __repr__(self) -> str:
        state = "done" if self._next is None and self._last is None else "open"
        return (
            f"<Paginator {type(self.strategy).__name__} [{self.pages_fetched} pages, {state}"
            f"{', truncated' if self.truncated else ''}]>"
        )


class SyncPaginator:
    """Blocking twin of :class:`Paginator`, for :class:`FlextApiSyncClient`."""

    def __init__(self, client: FlextApiSyncClient, paginator: Paginator) -> None:
        self._client = client
        self.paginator = paginator

    def __iter__(self) -> Iterator[Page]:
        return self._drain(self.paginator.__aiter__())

    def items(self) -> Iterator[Any]:
        """Every record, page after page."""
        return self._drain(self.paginator.items())

    def collect(self) -> FlextResult[list[Any]]:
        """See :meth:`Paginator.collect`."""
        return self._client._run(self.paginator.collect())

    def _drain(self, agen: AsyncGenerator[Any, None]) -> Iterator[Any]:
        return drain_sync(self._client, agen)


def paginate_sync(client: FlextApiSyncClient, path: str, **options: Any) -> SyncPaginator:
    """``FlextApiSyncClient.paginate``: a :class:`SyncPaginator` over ``path``."""
    return SyncPaginator(client, Paginator(client.async_client, path, **options))
