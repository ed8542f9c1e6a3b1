"""The FLEXT guide's batch shapes on top of :class:`BatchProcessor` and :class:`BatchRequest`.

The guide writes ``progress_callback(completed, total)``; :func:`adapt_progress` detects
that shape once, from the callback's signature, and turns the batch's
:class:`BatchProgress` snapshots into those calls: one per finished request, ``total``
being the number of requests (a sync iterable is read into a list to count them; an
async one cannot be counted up front and is refused with a ``TypeError``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sized
from typing import Any, TypeVar

from ._models import BatchProgress

__all__ = ["adapt_progress", "takes_counts"]

T = TypeVar("T")

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def takes_counts(callback: Callable[..., Any]) -> bool:
    """True for a ``(completed, total)`` callback, False for one taking a BatchProgress.

    The shape is the number of positional arguments the callback *needs*: two is
    ``(completed, total)`` (``def cb(done, total, *extra)`` too); anything else is the
    :class:`BatchProgress` shape, so ``def cb(progress, verbose=False)``,
    ``def cb(*args)``, a ``Mock`` and ``logger.info`` get the snapshot.
    """
    try:
        params = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: the modern shape
        return False
    # Optional parameters and *args take a second argument but do not ask for one:
    # counting them took "def cb(progress, verbose=False)" for (completed, total).
    required = sum(1 for p in params if p.kind in _POSITIONAL and p.default is p.empty)
    return required == 2


def adapt_progress(
    callback: Callable[..., Any], requests: T
) -> tuple[T | list[Any], Callable[[BatchProgress], object], dict[str, Any]]:
    """The requests, the progress callback to hand to ``run_batch`` and its options."""
    if not takes_counts(callback):
        return requests, callback, {}
    items: T | list[Any] = requests
    if not isinstance(requests, Sized):
        if not isinstance(requests, Iterable):
            raise TypeError("a (completed, total) progress callback needs the requests as a list")
        items = list(requests)
    total = len(items)  # type: ignore[arg-type]  # Sized by now
    reported = 0

    def report(progress: BatchProgress) -> None:
        nonlocal reported
        # Snapshots come per result (interval 0) and once more at the end: one call per
        # newly finished request.
        while reported < progress.done:
            reported += 1
            callback(reported, total)

    return items, report, {"progress_interval": 0.0}
