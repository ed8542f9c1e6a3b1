"""``CachedError``: how :class:`~flext_api.cache.AsyncSmartCache` reports a failed computation.

fapilog's ``AsyncSmartCache`` raises ``RuntimeError("Cached error for <key>")`` for a
cached failure and drops the original exception. We keep the message prefix (code and
tests written against fapilog match it) and the ``RuntimeError`` base, and chain the
original as ``__cause__`` (also on :attr:`CachedError.error`), so nothing is lost.

The caller whose computation failed gets the original exception (fapilog's "fresh
error", so ``except ConnectionError:`` runs its fallback); the callers served that failure
- coalesced onto the same computation, or arriving within ``retry_interval`` - get a
``CachedError`` (``except RuntimeError`` + ``"Cached error" in str(e)`` in fapilog's guide).
"""

from __future__ import annotations

__all__ = ["CachedError"]


class CachedError(RuntimeError):
    """A computation for ``key`` failed; ``__cause__`` (and ``error``) is the original exception.

    Attributes:
        key: the cache key.
        error: the exception the computation raised (the same object for every caller served it).
        retry_in: seconds until the cache will try the computation again (0 when the
            failure was not cached).
    """

    def __init__(self, key: str, error: BaseException, *, retry_in: float = 0.0) -> None:
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        super().__init__(f"Cached error for {key}: {detail}")
        self.key = key
        self.error = error
        self.retry_in = retry_in
        self.__cause__ = error

    def __reduce__(self) -> tuple[type[CachedError], tuple[str, BaseException]]:
        # Keep pickling (multiprocessing, logging handlers) working with the keyword-only field.
        return (type(self), (self.key, self.error))
