"""Object storage behind one interface: local files, memory, S3, GCS and Azure Blob.

* :class:`StorageBackend` - ``upload_file`` / ``download_file`` / ``delete_file`` /
  ``list_files`` (the architecture guide's four calls) plus streaming, ``stat``,
  ``exists``, copy/rename, paginated listing, conditional writes and presigned URLs.
  Every call returns a :class:`~flext_api.FlextResult`; a bad path is a failed result.
* :class:`LocalStorage` (atomic writes, metadata sidecars), :class:`MemoryStorage`,
  :class:`S3Storage` and :class:`AzureStorage` (on ``obstore``), :class:`GCSStorage`
  (GCS JSON API on flext-api's client).
* :class:`MultiBackendStorage` - failover, replicated writes, health probes, breakers
  and ``repair``.
* :func:`open_storage` - a backend from a URL (``s3://bucket``, ``az://container``,
  ``gs://bucket``, ``file:///dir``, ``memory://``).

The object-store backends need the ``storage`` extra (``pip install
'flext-api[storage]'``); :class:`LocalStorage` and :class:`GCSStorage` do not.
See ``docs/storage.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import NotFoundError as NotFoundError
from .._errors import PreconditionFailedError as PreconditionFailedError
from .._errors import StorageError as StorageError
from .._lazy import lazy_getattr as _lazy_getattr
from ..cache import FlextApiCache as FlextApiCache
from ._backend import StorageBackend as StorageBackend
from ._gcs import GCSStorage as GCSStorage
from ._local import LocalStorage as LocalStorage
from ._multi import Consistency as Consistency
from ._multi import MultiBackendStorage as MultiBackendStorage
from ._multi import RepairReport as RepairReport
from ._paths import InvalidPathError as InvalidPathError
from ._types import ByteStream as ByteStream
from ._types import FileInfo as FileInfo
from ._types import ListPage as ListPage
from ._url import open_storage as open_storage

if TYPE_CHECKING:
    from ._obstore import AzureStorage as AzureStorage
    from ._obstore import MemoryStorage as MemoryStorage
    from ._obstore import S3Storage as S3Storage

__all__ = [
    "AzureStorage",
    "ByteStream",
    "Consistency",
    "FileInfo",
    "FlextApiCache",
    "GCSStorage",
    "InvalidPathError",
    "ListPage",
    "LocalStorage",
    "MemoryStorage",
    "MultiBackendStorage",
    "NotFoundError",
    "PreconditionFailedError",
    "RepairReport",
    "S3Storage",
    "StorageBackend",
    "StorageError",
    "open_storage",
]

_LAZY = {
    "AzureStorage": ("._obstore", "storage"),
    "MemoryStorage": ("._obstore", "storage"),
    "S3Storage": ("._obstore", "storage"),
}
__getattr__ = _lazy_getattr(__name__, _LAZY)
