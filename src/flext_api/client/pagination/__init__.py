"""Pagination: ``FlextApiClient.paginate`` and its strategies (page number, offset,
cursor, next URL, RFC 8288 ``Link`` header)."""

from __future__ import annotations

from ._links import Link as Link
from ._links import parse_link_header as parse_link_header
from ._paginate import Page as Page
from ._paginate import PaginationError as PaginationError
from ._paginate import Paginator as Paginator
from ._paginate import SyncPaginator as SyncPaginator
from ._paginate import paginate_sync as paginate_sync
from ._strategies import Cursor as Cursor
from ._strategies import LinkHeader as LinkHeader
from ._strategies import NextUrl as NextUrl
from ._strategies import Offset as Offset
from ._strategies import PageNumber as PageNumber
from ._strategies import PageRequest as PageRequest
from ._strategies import PaginationStrategy as PaginationStrategy

__all__ = [
    "Cursor",
    "Link",
    "LinkHeader",
    "NextUrl",
    "Offset",
    "Page",
    "PageNumber",
    "PageRequest",
    "PaginationError",
    "PaginationStrategy",
    "Paginator",
    "SyncPaginator",
    "paginate_sync",
    "parse_link_header",
]
