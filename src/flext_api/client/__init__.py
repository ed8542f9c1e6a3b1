"""The client layer: ``FlextApiClient``, ``FlextApiSyncClient``, the plugin pipeline."""

from __future__ import annotations

from ._client import FlextApiClient as FlextApiClient
from ._client import RequestOptions as RequestOptions
from ._dict_client import FlextDictClient as FlextDictClient
from ._dict_client import ResponseDict as ResponseDict
from ._manager import PluginManager as PluginManager
from ._plugin import CallNext as CallNext
from ._plugin import FlextApiPlugin as FlextApiPlugin
from ._plugin import Middleware as Middleware
from ._request import USE_CLIENT_DEFAULT as USE_CLIENT_DEFAULT
from ._request import UseClientDefault as UseClientDefault
from ._sync import FlextApiSyncClient as FlextApiSyncClient
from ._sync import SyncStream as SyncStream
from .batch import BatchJournal as BatchJournal
from .batch import BatchProcessor as BatchProcessor
from .batch import BatchProgress as BatchProgress
from .batch import BatchRequest as BatchRequest
from .batch import BatchResult as BatchResult
from .batch import batch_sync as batch_sync
from .batch import decode_body as decode_body
from .batch import run_batch as run_batch
from .batch._batch import BatchOptions as BatchOptions
from .pagination import Cursor as Cursor
from .pagination import Link as Link
from .pagination import LinkHeader as LinkHeader
from .pagination import NextUrl as NextUrl
from .pagination import Offset as Offset
from .pagination import Page as Page
from .pagination import PageNumber as PageNumber
from .pagination import PageRequest as PageRequest
from .pagination import PaginationError as PaginationError
from .pagination import PaginationStrategy as PaginationStrategy
from .pagination import Paginator as Paginator
from .pagination import SyncPaginator as SyncPaginator
from .pagination import paginate_sync as paginate_sync
from .pagination import parse_link_header as parse_link_header
from .pagination._paginate import PaginateOptions as PaginateOptions

__all__ = [
    "BatchJournal",
    "BatchOptions",
    "BatchProcessor",
    "BatchProgress",
    "BatchRequest",
    "BatchResult",
    "CallNext",
    "Cursor",
    "FlextApiClient",
    "FlextApiPlugin",
    "FlextApiSyncClient",
    "FlextDictClient",
    "Link",
    "LinkHeader",
    "Middleware",
    "NextUrl",
    "Offset",
    "Page",
    "PageNumber",
    "PageRequest",
    "PaginateOptions",
    "PaginationError",
    "PaginationStrategy",
    "Paginator",
    "PluginManager",
    "RequestOptions",
    "ResponseDict",
    "SyncPaginator",
    "SyncStream",
    "USE_CLIENT_DEFAULT",
    "UseClientDefault",
    "batch_sync",
    "decode_body",
    "paginate_sync",
    "parse_link_header",
    "run_batch",
]
