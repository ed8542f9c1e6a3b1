"""``MultiBackendStorage``: several backends as one, with failover, replication and repair.

* **Writes** go to every backend with the chosen :class:`Consistency`:

  - ``PRIMARY`` (default, "primary then async"): the first backend that accepts the
    write answers the call (ordered failover), and the others are brought up to date
    in the background by streaming the object from it;
  - ``QUORUM``: a majority of the backends must accept it;
  - ``ALL``: every backend must accept it.

  A backend that misses a write (down, breaker open, failed) has the key recorded;
  :meth:`MultiBackendStorage.repair` replays it later.
* **Reads** go to healthy backends only, in order (``read="primary"``) or rotated
  (``read="spread"``) to share the load, skipping any that missed a write to the key;
  a failure or a ``NOT_FOUND`` from one replica falls through to the next.
* **Health**: a :class:`~flext_api.resilience.CircuitBreaker` per backend, fed by
  every call and by :meth:`check_health` (run periodically by
  :meth:`start_health_checks`). An open breaker skips its backend at once.
* **Repair**: :meth:`repair` makes a backend mirror a healthy source (copies what it
  lacks or missed, deletes what it should not have) and clears its missed writes.

One-shot upload bodies (async iterators, unseekable files) are spooled to a temporary
file first, so a failover or a second replica can read them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

import structlog

from .._clock import Clock, get_clock
from .._config import BreakerConfig
from .._errors import ErrorCode, FlextApiError, StorageError
from .._result import FlextResult
from ..resilience import CircuitBreaker, Reject
from ._backend import StorageBackend
from ._types import ByteStream, FileInfo, ListPage, Source, UploadBody

__all__ = ["Consistency", "MultiBackendStorage", "RepairReport"]

_log = structlog.get_logger("flext_api.storage")
T = TypeVar("T")
#: Answers that say something about the object, not about the backend's health.
_DEFINITIVE = frozenset(
    {ErrorCode.NOT_FOUND, ErrorCode.PRECONDITION_FAILED, ErrorCode.INVALID_REQUEST}
)
_FALLBACK_BREAKER = BreakerConfig(
    consecutive_failures=3, open_duration=5.0, open_duration_max=60.0, half_open_calls=1
)


class Consistency(StrEnum):
    """How many backends must accept a write before the call succeeds."""

    ALL = "all"
    QUORUM = "quorum"
    PRIMARY = "primary"


@dataclass(slots=True)
class RepairReport:
    """What :meth:`MultiBackendStorage.repair` did to one backend."""

    backend: str
    copied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class MultiBackendStorage(StorageBackend):
    """Backends in priority order behaving as one (see the module docstring)."""

    scheme = "multi"

    def __init__(
        self,
        backends: Sequence[StorageBackend],
        *,
        consistency: Consistency | str = Consistency.PRIMARY,
        read: Literal["primary", "spread"] = "primary",
        breaker: BreakerConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not backends:
            raise ValueError("MultiBackendStorage needs at least one backend")
        self.backends = list(backends)
        self.consistency = Consistency(consistency)
        self.read = read
        self._clock = get_clock(clock)
        config = breaker or _FALLBACK_BREAKER
        self.breakers = [CircuitBreaker(config, key=self.name(i)) for i in range(len(backends))]
        self.missed: list[set[str]] = [set() for _ in backends]
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._health_task: asyncio.Task[None] | None = None
        self._turn = 0

    def name(self, index: int) -> str:
        """``"0:s3"``: the backend's position and scheme, for logs and reports."""
        return f"{index}:{self.backends[index].scheme}"

    def __repr__(self) -> str:
        states = ", ".join(f"{self.name(i)} {b.state.value}" for i, b in enumerate(self.breakers))
        return f"<MultiBackendStorage {self.consistency.value} [{states}]>"

    # -- calling one backend through its breaker ---------------------------------------------
    async def _call(
        self, index: int, op: Callable[[StorageBackend], Awaitable[FlextResult[T]]]
    ) -> FlextResult[T]:
        breaker = self.breakers[index]
        now = self._clock.monotonic()
        admit = breaker.allow(now)
        if isinstance(admit, Reject):
            return FlextResult.fail(
                FlextApiError.from_code(
                    ErrorCode.CIRCUIT_OPEN,
                    f"backend {self.name(index)} is unavailable ({admit.state.value})",
                    retry_after=admit.retry_after,
                )
            )
        try:
            result = await op(self.backends[index])
        except asyncio.CancelledError:
            breaker.release(admit)
            raise
        except Exception as exc:  # noqa: BLE001 - a backend that raises counts as failed
            result = FlextResult.fail(_misbehaved(self.name(index), exc))
        answer: object = result  # a third-party backend may break its annotations
        if not isinstance(answer, FlextResult):
            result = FlextResult.fail(_misbehaved(self.name(index), answer))
        elapsed = self._clock.monotonic() - now
        if result.is_success or result.error_code in _DEFINITIVE:
            breaker.on_success(self._clock.monotonic(), elapsed, admit)
        else:
            breaker.on_failure(self._clock.monotonic(), elapsed, admit)
        return result

    def _order(self, key: str | None) -> list[int]:
        indexes = list(range(len(self.backends)))
        if self.read == "spread":
            self._turn = (self._turn + 1) % len(indexes)
            indexes = indexes[self._turn :] + indexes[: self._turn]
        fresh = [i for i in indexes if key is None or key not in self.missed[i]]
        return fresh + [i for i in indexes if i not in fresh]

    async def _read(
        self, key: str | None, op: Callable[[StorageBackend], Awaitable[FlextResult[T]]]
    ) -> FlextResult[T]:
        first: FlextResult[T] | None = None
        for index in self._order(key):
            result = await self._call(index, op)
            if result.is_success or result.error_code in {ErrorCode.INVALID_REQUEST}:
                return result
            if first is None or first.error_code is ErrorCode.CIRCUIT_OPEN:
                first = result
        assert first is not None
        return first

    # -- writes ------------------------------------------------------------------------------
    async def _write(
        self,
        key: str,
        op: Callable[[StorageBackend], Awaitable[FlextResult[T]]],
        replicate: Callable[[int, int], Awaitable[FlextResult[Any]]],
    ) -> FlextResult[T]:
        if self.consistency is Consistency.PRIMARY:
            return await self._write_primary(key, op, replicate)
        results = await asyncio.gather(*(self._call(i, op) for i in range(len(self.backends))))
        for index, result in enumerate(results):
            if result.is_failure and result.error_code not in _DEFINITIVE:
                self.missed[index].add(key)
            elif result.is_success:
                self.missed[index].discard(key)
        successes = [r for r in results if r.is_success]
        needed = len(results) if self.consistency is Consistency.ALL else len(results) // 2 + 1
        if len(successes) >= needed:
            return successes[0]
        failed = next(r for r in results if r.is_failure)
        error = StorageError(
            f"{len(successes)} of {len(results)} backends accepted the write of {key!r}, "
            f"{self.consistency.value} needs {needed}; first failure: {failed.error}",
            code=failed.error_code if failed.error_code in _DEFINITIVE else None,
            details={"path": key, "accepted": len(successes), "needed": needed},
        )
        return FlextResult.fail(error)

    async def _write_primary(
        self,
        key: str,
        op: Callable[[StorageBackend], Awaitable[FlextResult[T]]],
        replicate: Callable[[int, int], Awaitable[FlextResult[Any]]],
    ) -> FlextResult[T]:
        first: FlextResult[T] | None = None
        for index in range(len(self.backends)):
            result = await self._call(index, op)
            if result.is_success:
                self.missed[index].discard(key)
                for other in range(len(self.backends)):
                    if other != index:
                        self._spawn((other, key), self._replicate(key, index, other, replicate))
                return result
            if result.error_code in _DEFINITIVE:
                return result
            self.missed[index].add(key)
            if first is None or first.error_code is ErrorCode.CIRCUIT_OPEN:
                first = result
        assert first is not None
        return first

    async def _replicate(
        self,
        key: str,
        source: int,
        target: int,
        replicate: Callable[[int, int], Awaitable[FlextResult[Any]]],
    ) -> None:
        result = await replicate(source, target)
        if result.is_success:
            self.missed[target].discard(key)
        else:
            self.missed[target].add(key)
            _log.warning(
                "storage.replication_missed",
                path=key,
                backend=self.name(target),
                error=result.error,
            )

    def _spawn(self, slot: tuple[int, str], coro: Awaitable[None]) -> None:
        """Run ``coro`` after the previous replication of the same key to the same backend,
        so a delete never overtakes the upload it follows."""
        previous = self._last.get(slot)

        async def ordered() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            await coro

        task: asyncio.Task[None] = asyncio.ensure_future(ordered())
        self._tasks.add(task)
        self._last[slot] = task

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if self._last.get(slot) is finished:
                del self._last[slot]

        task.add_done_callback(done)

    async def flush(self) -> None:
        """Wait until every background replication has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _copy_between(self, key: str) -> Callable[[int, int], Awaitable[FlextResult[Any]]]:
        async def replicate(source: int, target: int) -> FlextResult[Any]:
            return await self._call(
                target, lambda backend: _stream_copy(self.backends[source], backend, key)
            )

        return replicate

    def _delete_on(self, key: str) -> Callable[[int, int], Awaitable[FlextResult[Any]]]:
        async def replicate(_: int, target: int) -> FlextResult[Any]:
            return await self._call(target, lambda backend: backend.delete_file(key))

        return replicate

    # -- the StorageBackend API ----------------------------------------------------------
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
        source = Source.of(file)
        if source.is_failure:
            return FlextResult.fail(source.exception or "bad body")
        async with _replayable(source.value) as spooled:
            if spooled.is_failure:
                return FlextResult.fail(spooled.exception or "reading the body failed")
            body = spooled.value
            return await self._write(
                path,
                lambda backend: backend.upload_file(
                    body,
                    path,
                    metadata,
                    content_type=content_type,
                    if_none_match=if_none_match,
                    if_match=if_match,
                ),
                self._copy_between(path),
            )

    async def download_file(self, path: str) -> FlextResult[bytes]:
        return await self._read(path, lambda backend: backend.download_file(path))

    async def download_stream(
        self, path: str, *, chunk_size: int = 1024 * 1024
    ) -> FlextResult[ByteStream]:
        return await self._read(
            path, lambda backend: backend.download_stream(path, chunk_size=chunk_size)
        )

    async def delete_file(self, path: str) -> FlextResult[None]:
        return await self._write(path, lambda b: b.delete_file(path), self._delete_on(path))

    async def list_files(self, prefix: str = "") -> FlextResult[list[FileInfo]]:
        return await self._read(None, lambda backend: backend.list_files(prefix))

    async def list_page(
        self,
        prefix: str = "",
        *,
        delimiter: str | None = None,
        start_after: str | None = None,
        limit: int = 1000,
    ) -> FlextResult[ListPage]:
        return await self._read(
            None,
            lambda backend: backend.list_page(
                prefix, delimiter=delimiter, start_after=start_after, limit=limit
            ),
        )

    async def stat(self, path: str) -> FlextResult[FileInfo]:
        return await self._read(path, lambda backend: backend.stat(path))

    async def copy_file(self, src: str, dst: str, *, overwrite: bool = True) -> FlextResult[None]:
        return await self._write(
            dst, lambda b: b.copy_file(src, dst, overwrite=overwrite), self._copy_between(dst)
        )

    async def rename_file(self, src: str, dst: str, *, overwrite: bool = True) -> FlextResult[None]:
        copied = await self.copy_file(src, dst, overwrite=overwrite)
        if copied.is_failure or src == dst:  # deleting src would delete the object itself
            return copied
        return await self.delete_file(src)

    async def presign(self, path: str, **options: Any) -> FlextResult[str]:
        return await self._read(path, lambda backend: backend.presign(path, **options))

    # -- health ------------------------------------------------------------------------------
    async def check_health(self) -> dict[str, bool]:
        """Probe every backend once (feeding its breaker); ``{name: healthy}``."""
        healthy: dict[str, bool] = {}
        for index, backend in enumerate(self.backends):
            start = self._clock.monotonic()
            result = await backend.health()
            now = self._clock.monotonic()
            breaker = self.breakers[index]
            if result.is_success:
                if breaker.state.value in {"open", "half_open"}:
                    breaker.reset(now)
                else:
                    breaker.on_success(now, now - start)
            else:
                breaker.on_failure(now, now - start)
            healthy[self.name(index)] = result.is_success
        return healthy

    def start_health_checks(self, interval: float = 5.0) -> None:
        """Probe all backends every ``interval`` seconds until :meth:`close`."""

        async def loop() -> None:
            while True:
                await self.check_health()
                await self._clock.sleep(interval)

        if self._health_task is None:
            self._health_task = asyncio.ensure_future(loop())

    async def health(self) -> FlextResult[None]:
        report = await self.check_health()
        if any(report.values()):
            return FlextResult.ok(None)
        return FlextResult.fail(StorageError(f"no backend is healthy: {report}"))

    # -- repair ------------------------------------------------------------------------------
    async def repair(
        self, target: int | StorageBackend, *, source: int | StorageBackend | None = None
    ) -> FlextResult[RepairReport]:
        """Make ``target`` mirror ``source`` (default: the first other healthy backend)."""
        await self.flush()
        t = target if isinstance(target, int) else self.backends.index(target)
        if source is None:
            candidates = [i for i in range(len(self.backends)) if i != t and not self.missed[i]]
            if not candidates:
                return FlextResult.fail(StorageError("no up-to-date backend to repair from"))
            s = candidates[0]
        else:
            s = source if isinstance(source, int) else self.backends.index(source)
        src, dst = self.backends[s], self.backends[t]
        wanted = await src.list_files()
        if wanted.is_failure:
            return FlextResult.fail(wanted.exception or "list failed")
        present = await dst.list_files()
        if present.is_failure:
            return FlextResult.fail(present.exception or "list failed")
        have = {info.path: info for info in present.value}
        report = RepairReport(self.name(t))
        missed = set(self.missed[t])
        for info in wanted.value:
            old = have.pop(info.path, None)
            if old is not None and old.size == info.size and info.path not in missed:
                continue
            copied = await _stream_copy(src, dst, info.path)
            if copied.is_success:
                report.copied.append(info.path)
            else:
                report.failed[info.path] = str(copied.error)
        for extra in sorted(have):
            deleted = await dst.delete_file(extra)
            if deleted.is_success:
                report.deleted.append(extra)
            else:
                report.failed[extra] = str(deleted.error)
        if not report.failed:
            self.missed[t].clear()
            self.breakers[t].reset(self._clock.monotonic())
        return FlextResult.ok(report)

    async def close(self) -> None:
        """Stop health checks, finish replications and close every backend."""
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
            self._health_task = None
        await self.flush()
        for backend in self.backends:
            await backend.close()


def _misbehaved(name: str, what: object) -> FlextApiError:
    """The error for a backend that raised, or answered something other than a FlextResult."""
    if isinstance(what, FlextApiError):
        return what
    shown = f"{type(what).__name__}: {what}" if isinstance(what, Exception) else repr(what)[:200]
    error = StorageError(
        f"backend {name} broke the StorageBackend contract: {shown}", details={"backend": name}
    )
    if isinstance(what, Exception):
        error.__cause__ = what
    return error


async def _stream_copy(src: StorageBackend, dst: StorageBackend, key: str) -> FlextResult[str]:
    """Stream ``key`` from ``src`` to ``dst`` with its content type and metadata."""
    stream = await src.download_stream(key)
    if stream.is_failure:
        return FlextResult.fail(stream.exception or "download failed")
    info = stream.value.info
    try:
        return await dst.upload_file(
            stream.value, key, dict(info.metadata), content_type=info.content_type
        )
    finally:
        await stream.value.aclose()


@contextlib.asynccontextmanager
async def _replayable(source: Source) -> Any:
    """The body as something every backend can read again: bytes and paths as they are,
    streams and file objects spooled to a temporary file. A file object is spooled too:
    the backends read concurrently (and a failed-over one from the start again), and a
    shared handle has one position, so each would get a different part of it.

    Yields a FlextResult: a stream that fails while it is spooled fails the upload
    before any backend is written to.
    """
    if source.kind in ("bytes", "path"):
        yield FlextResult.ok(source.value)
        return
    fd, name = tempfile.mkstemp(prefix="flext-upload-")
    os.close(fd)
    spool = Path(name)
    try:
        spooled: FlextResult[Any] = FlextResult.ok(spool)
        out = await asyncio.to_thread(spool.open, "wb")
        try:
            async for chunk in source.chunks():
                await asyncio.to_thread(out.write, chunk)
        except FlextApiError as exc:
            spooled = FlextResult.fail(exc)
        except Exception as exc:  # noqa: BLE001 - the caller's stream failed: reported, not raised
            error = StorageError(f"reading the upload body failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            spooled = FlextResult.fail(error)
        finally:
            out.close()
        yield spooled
    finally:
        await asyncio.to_thread(spool.unlink, missing_ok=True)
