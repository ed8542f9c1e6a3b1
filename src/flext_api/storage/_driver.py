"""The shared engine of the built-in backends: validation, retries and error translation.

Each built-in backend implements a handful of primitives (``_put``, ``_open``, ``_head``,
``_delete``, ``_list``, ``_copy``...) that either return or raise; this class turns
them into the :class:`StorageBackend` API:

* every key and prefix is validated first (a bad one never reaches the store);
* an exception is translated once, by the backend's ``_translate``, into the most
  specific :class:`~flext_api.FlextApiError` (``NOT_FOUND``, ``PRECONDITION_FAILED``,
  ``AUTH_ERROR``, ``RATE_LIMITED``, ``CONNECT_ERROR``, ``STORAGE_ERROR``...);
* transient failures (connection errors, timeouts, throttling, 5xx) are retried with
  the client's :class:`~flext_api.resilience.RetryPolicy` (``RetryConfig``: attempts,
  backoff with jitter, ``set_testing`` caps; ``enabled=False`` tries once). Every
  storage operation is idempotent, so the policy treats it like a ``PUT``/``GET``/
  ``DELETE``; an upload from a one-shot stream (an async iterator or an unseekable
  file) is never replayed.
"""

from __future__ import annotations

import mimetypes
import re
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Final, Literal, TypeVar

from .._clock import Clock, get_clock
from .._config import RetryConfig
from .._errors import ErrorCode, FlextApiError, InvalidRequestError, PreconditionFailedError
from .._numbers import is_int
from .._result import FlextResult
from ..resilience import GiveUp, Outcome, RetryPolicy, RetryState
from ._backend import StorageBackend
from ._paths import validate_key, validate_prefix
from ._types import ByteStream, FileInfo, ListPage, Source, UploadBody

__all__ = ["PutMode", "StoreBackend"]

T = TypeVar("T")
#: ``None`` overwrites, ``"create"`` only if absent, any other string is the ETag to match.
PutMode = str | None


class StoreBackend(StorageBackend):
    """Base of the built-in backends (see the module docstring)."""

    def __init__(
        self, *, retry: RetryConfig | RetryPolicy | None = None, clock: Clock | None = None
    ) -> None:
        self.retry_policy = retry if isinstance(retry, RetryPolicy) else RetryPolicy(retry)
        self._clock = get_clock(clock)

    # -- primitives ------------------------------------------------------------------------
    @abstractmethod
    def url(self, path: str) -> str:
        """The object's URL (``s3://bucket/key``, ``file:///root/key``...)."""

    @abstractmethod
    async def _put(
        self,
        key: str,
        source: Source,
        metadata: dict[str, str],
        content_type: str | None,
        mode: PutMode,
    ) -> None: ...

    @abstractmethod
    async def _open(self, key: str, chunk_size: int) -> ByteStream: ...

    async def _read(self, key: str) -> bytes:
        return await (await self._open(key, 1024 * 1024)).read()

    @abstractmethod
    async def _head(self, key: str) -> FileInfo: ...

    @abstractmethod
    async def _delete(self, key: str) -> None: ...

    @abstractmethod
    async def _list(
        self, prefix: str, delimiter: str | None, start_after: str | None, limit: int
    ) -> ListPage: ...

    @abstractmethod
    async def _copy(self, src: str, dst: str, overwrite: bool) -> None: ...

    async def _rename(self, src: str, dst: str, overwrite: bool) -> None:
        await self._copy(src, dst, overwrite)
        await self._delete(src)

    async def _sign(self, method: str, key: str, expires_in: timedelta) -> str:
        raise FlextApiError.from_code(
            ErrorCode.STORAGE_ERROR, f"{type(self).__name__} cannot presign URLs"
        )

    @abstractmethod
    def _translate(self, exc: Exception, operation: str, key: str) -> FlextApiError:
        """The FlextApiError for a store exception (called only for non-FlextApiErrors)."""

    # -- the engine ------------------------------------------------------------------------
    async def _run(
        self,
        operation: str,
        key: str,
        call: Callable[[], Awaitable[T]],
        *,
        method: str = "GET",
        source: Source | None = None,
    ) -> FlextResult[T]:
        state = RetryState()
        while True:
            try:
                return FlextResult.ok(await call())
            except FlextApiError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - translated into the error tree here
                error = self._translate(exc, operation, key)
            error.details.setdefault("operation", operation)
            error.details.setdefault("path", key)
            if not self.retry_policy.config.enabled:  # RetryConfig(enabled=False): one try
                return FlextResult.fail(error)
            outcome = Outcome(error.details.get("status"), error, error.retry_after)
            verdict = self.retry_policy.decide(
                state,
                outcome,
                method=method,
                replayable=source is None or source.replayable,
                now=self._clock.monotonic(),
            )
            if isinstance(verdict, GiveUp):
                return FlextResult.fail(verdict.error or error)
            await self._clock.sleep(verdict.delay)
            state = verdict.state
            if source is not None:
                source.rewind()

    # -- the public API --------------------------------------------------------------------
    async def upload_file(
        self,
        file: UploadBody,
        path: str,
        metadata: Mapping[str, str] | None = None,
        *,
        content_type: str | None = None,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> FlextResult[str]:
        key = validate_key(path)
        if key.is_failure:
            return key
        meta = _check_metadata(metadata)
        if meta.is_failure:
            return FlextResult.fail(meta.exception or "bad metadata")
        conditions = _check_put_options(content_type, if_none_match, if_match)
        if conditions.is_failure:
            return FlextResult.fail(conditions.exception or "bad put options")
        source = Source.of(file)
        if source.is_failure:
            return FlextResult.fail(source.exception or "bad body")
        mode: PutMode = "create" if if_none_match else if_match
        content_type = content_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
        src = source.value

        async def put() -> str:
            await self._put(path, src, meta.value, content_type, mode)
            return self.url(path)

        return await self._run("upload", path, put, method="PUT", source=src)

    async def download_file(self, path: str) -> FlextResult[bytes]:
        key = validate_key(path)
        if key.is_failure:
            return FlextResult.fail(key.exception or "bad path")

        return await self._run("download", path, lambda: self._read(path))

    async def download_stream(
        self, path: str, *, chunk_size: int = 1024 * 1024
    ) -> FlextResult[ByteStream]:
        key = validate_key(path)
        if key.is_failure:
            return FlextResult.fail(key.exception or "bad path")
        if not is_int(chunk_size) or chunk_size < 1:
            return FlextResult.fail(
                InvalidRequestError(f"chunk_size must be an int >= 1, got {chunk_size!r}")
            )
        return await self._run("download", path, lambda: self._open(path, chunk_size))

    async def delete_file(self, path: str) -> FlextResult[None]:
        key = validate_key(path)
        if key.is_failure:
            return FlextResult.fail(key.exception or "bad path")
        return await self._run("delete", path, lambda: self._delete(path), method="DELETE")

    async def stat(self, path: str) -> FlextResult[FileInfo]:
        key = validate_key(path)
        if key.is_failure:
            return FlextResult.fail(key.exception or "bad path")
        return await self._run("stat", path, lambda: self._head(path), method="HEAD")

    async def list_page(
        self,
        prefix: str = "",
        *,
        delimiter: str | None = None,
        start_after: str | None = None,
        limit: int = 1000,
    ) -> FlextResult[ListPage]:
        checked = validate_prefix(prefix)
        if checked.is_failure:
            return FlextResult.fail(checked.exception or "bad prefix")
        if (
            delimiter not in {None, "/"}
            or not is_int(limit)
            or limit < 1
            or not (start_after is None or isinstance(start_after, str))
        ):
            return FlextResult.fail(
                InvalidRequestError(
                    "listing needs delimiter None or '/', an int limit >= 1 and a str or "
                    f"None start_after, got delimiter={delimiter!r} limit={limit!r} "
                    f"start_after={start_after!r}"
                )
            )
        return await self._run(
            "list", prefix, lambda: self._list(prefix, delimiter, start_after, limit)
        )

    async def list_files(self, prefix: str = "") -> FlextResult[list[FileInfo]]:
        files: list[FileInfo] = []
        token: str | None = None
        while True:
            page = await self.list_page(prefix, start_after=token)
            if page.is_failure:
                return FlextResult.fail(page.exception or "list failed")
            files.extend(page.value.files)
            token = page.value.next_token
            if token is None:
                return FlextResult.ok(files)

    async def copy_file(self, src: str, dst: str, *, overwrite: bool = True) -> FlextResult[None]:
        for key in (src, dst):
            checked = validate_key(key)
            if checked.is_failure:
                return FlextResult.fail(checked.exception or "bad path")
        if src == dst:
            return await self._onto_itself("copy", src, overwrite)
        return await self._run("copy", src, lambda: self._copy(src, dst, overwrite), method="PUT")

    async def rename_file(self, src: str, dst: str, *, overwrite: bool = True) -> FlextResult[None]:
        for key in (src, dst):
            checked = validate_key(key)
            if checked.is_failure:
                return FlextResult.fail(checked.exception or "bad path")
        if src == dst:
            return await self._onto_itself("rename", src, overwrite)
        return await self._run(
            "rename", src, lambda: self._rename(src, dst, overwrite), method="PUT"
        )

    async def _onto_itself(self, operation: str, key: str, overwrite: bool) -> FlextResult[None]:
        """A copy or rename of ``key`` onto itself: nothing moves, and nothing is lost.

        Stores implement rename as copy then delete, which would remove the object; the
        call succeeds when the object exists (``NOT_FOUND`` otherwise) and, like any
        existing target, fails with ``PRECONDITION_FAILED`` without ``overwrite``.
        """
        found = await self.stat(key)
        if found.is_failure:
            return FlextResult.fail(found.exception or "stat failed")
        if not overwrite:
            return FlextResult.fail(
                PreconditionFailedError(
                    f"{operation} of {key!r} onto itself: the target exists",
                    details={"path": key, "operation": operation},
                )
            )
        return FlextResult.ok(None)

    async def presign(
        self,
        path: str,
        *,
        method: Literal["GET", "PUT"] = "GET",
        expires_in: timedelta = timedelta(hours=1),
    ) -> FlextResult[str]:
        key = validate_key(path)
        if key.is_failure:
            return key
        if method not in {"GET", "PUT"}:
            return FlextResult.fail(
                InvalidRequestError(f"presign method must be GET or PUT, got {method!r}")
            )
        expires: object = expires_in  # callers without a type checker pass seconds
        if not (isinstance(expires, timedelta) and MIN_EXPIRY <= expires <= MAX_EXPIRY):
            return FlextResult.fail(
                InvalidRequestError(
                    f"presign expires_in must be a timedelta from {MIN_EXPIRY} to "
                    f"{MAX_EXPIRY.days} days (the limits of S3 and GCS), got {expires_in!r}",
                    details={"path": path, "expires_in": str(expires_in)},
                )
            )
        return await self._run("presign", path, lambda: self._sign(method, path, expires_in))


#: The shortest and longest lifetimes of a presigned URL (S3 and GCS accept 1 s to 7 days).
MIN_EXPIRY: Final = timedelta(seconds=1)
MAX_EXPIRY: Final = timedelta(days=7)


def _header_safe(value: object) -> bool:
    """Printable ASCII: what can travel in an HTTP header without being refused or split.

    Outer spaces are refused too: a header loses them (S3 strips them, Azure's signature
    no longer matches and the write is refused as unauthorised).
    """
    return (
        isinstance(value, str)
        and value != ""
        and value.isascii()
        and value.isprintable()
        and value == value.strip(" ")
    )


def _check_put_options(
    content_type: object, if_none_match: object, if_match: object
) -> FlextResult[None]:
    """Content type and conditions travel as headers: CR/LF, NUL or non-ASCII are refused."""
    problem: str | None = None
    if content_type is not None and not _header_safe(content_type):
        problem = f"content_type must be printable ASCII without outer spaces, got {content_type!r}"
    elif not isinstance(if_none_match, bool):
        problem = f"if_none_match must be a bool, got {if_none_match!r}"
    elif if_match is not None and not _header_safe(if_match):
        problem = f"if_match must be an ETag in printable ASCII, got {if_match!r}"
    elif if_none_match and if_match is not None:
        problem = "if_none_match and if_match exclude each other"
    if problem is None:
        return FlextResult.ok(None)
    return FlextResult.fail(InvalidRequestError(problem, details={"reason": problem}))


_RESERVED_META = frozenset({"content_type", "content_length", "etag"})
# Azure wants C# identifiers; the same rule everywhere keeps backends interchangeable.
_META_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")


def _check_metadata(metadata: Mapping[str, str] | None) -> FlextResult[dict[str, str]]:
    """User metadata: identifier names (lower-cased, as the stores return them), ASCII values."""
    checked: dict[str, str] = {}
    given_meta: object = metadata  # runtime types vary
    if given_meta is not None and not isinstance(given_meta, Mapping):
        return FlextResult.fail(
            InvalidRequestError(
                f"metadata must be a mapping of str to str, got {type(given_meta).__name__}"
            )
        )
    given: list[tuple[object, object]] = list((metadata or {}).items())  # runtime types vary
    for name, value in given:
        ok_name = (
            isinstance(name, str)
            and _META_NAME.fullmatch(name) is not None
            and name.lower() not in _RESERVED_META
        )
        # A header loses a value's outer spaces: S3 strips them, Azure refuses the signature.
        ok_value = (
            isinstance(value, str)
            and value.isascii()
            and value.isprintable()
            and value == value.strip(" ")
        )
        if not (ok_name and ok_value):
            return FlextResult.fail(
                InvalidRequestError(
                    f"metadata {name!r}={value!r}: a name is a letter then letters, digits or "
                    "'_' (the rule Azure sets for all), a value printable ASCII with no "
                    "leading or trailing space",
                    details={"metadata": str(name)},
                )
            )
        lowered = str(name).lower()
        if lowered in checked:
            # Stored lower-cased (as every store returns them): one of the two would be
            # lost without a word.
            return FlextResult.fail(
                InvalidRequestError(
                    f"metadata names {name!r} and another differ only in case: a store "
                    "keeps one of them",
                    details={"metadata": str(name)},
                )
            )
        checked[lowered] = str(value)
    return FlextResult.ok(checked)
