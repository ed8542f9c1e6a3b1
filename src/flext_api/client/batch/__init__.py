"""Batches: many requests with bounded concurrency, a result per item, resumable.

``FlextApiClient.batch`` runs on :func:`run_batch`; :class:`BatchProcessor` is the
seed's list-in, list-out shape; :class:`BatchJournal` makes a run resumable.
"""

from __future__ import annotations

from ._batch import decode_body as decode_body
from ._batch import run_batch as run_batch
from ._journal import BatchJournal as BatchJournal
from ._models import BatchProgress as BatchProgress
from ._models import BatchRequest as BatchRequest
from ._models import BatchResult as BatchResult
from ._processor import BatchProcessor as BatchProcessor
from ._processor import batch_sync as batch_sync

__all__ = [
    "BatchJournal",
    "BatchProcessor",
    "BatchProgress",
    "BatchRequest",
    "BatchResult",
    "batch_sync",
    "decode_body",
    "run_batch",
]
