"""The client layer: ``FlextApiClient``, ``FlextApiSyncClient``, the plugin pipeline."""

from __future__ import annotations

from ._batch import decode_body as decode_body
from ._batch import run_batch as run_batch
from ._batch_models import BatchProgress as BatchProgress
from ._batch_models import BatchRequest as BatchRequest
from ._batch_models import BatchResult as BatchResult
from ._batch_processor import BatchProcessor as BatchProcessor
from ._batch_processor import batch_sync as batch_sync
from ._client import FlextApiClient as FlextApiClient
from ._client import RequestOptions as RequestOptions
from ._dict_client import FlextDictClient as FlextDictClient
from ._dict_client import ResponseDict as ResponseDict
from ._journal import BatchJournal as BatchJournal
from ._links import Link as Link
from ._links import parse_link_header as parse_link_header
from ._manager import PluginManager as PluginManager
from ._paginate import Page as Page
from ._paginate import PaginationError as PaginationError
from ._paginate import Paginator as Paginator
from ._paginate import SyncPaginator as SyncPaginator
from ._paginate import paginate_sync as paginate_sync
from ._pagination import Cursor as Cursor
from ._pagination import LinkHeader as LinkHeader
from ._pagination import NextUrl as NextUrl
from ._pagination import Offset as Offset
from ._pagination import PageNumber as PageNumber
from ._pagination import PageRequest as PageRequest
from ._pagination import PaginationStrategy as PaginationStrategy
from ._plugin import CallNext as CallNext
from ._plugin import FlextApiPlugin as FlextApiPlugin
from ._plugin import Middleware as Middleware
from ._request import USE_CLIENT_DEFAULT as USE_CLIENT_DEFAULT
from ._request import UseClientDefault as UseClientDefault
from ._sync import FlextApiSyncClient as FlextApiSyncClient
from ._sync import SyncStream as SyncStream

__all__ = [
    "BatchJournal",
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
