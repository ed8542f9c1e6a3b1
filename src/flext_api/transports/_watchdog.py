"""One timer for all in-flight requests: read timeouts and deadlines without per-request timers.

Why: arming an asyncio timer per request (aiohttp's ``total`` and ``sock_read``) costs
about 4 µs each at high request rates, because cancelled far-future handles pile up in
the event loop's heap (measured on this project's benchmark: ~12 µs per request for
the two). The watchdog keeps one ``loop.call_at`` handle set to the earliest expiry of
the requests it watches. Moving an expiry later (a body chunk arrived, the next read
starts) is a field write; the handle is rescheduled only when an expiry moves earlier
than it, and when it fires it re-arms itself for the next earliest.

An expired request's task is cancelled, and the transport turns that cancellation into
``READ_TIMEOUT`` or ``DEADLINE_EXCEEDED`` with ``Task.uncancel()`` (the same protocol as
``asyncio.timeout``), so a cancellation from anywhere else still propagates.
"""

from __future__ import annotations

import asyncio
import math

from .._errors import ErrorCode

__all__ = ["Watch", "Watchdog"]

_INF = math.inf


class Watch:
    """The timing state of one request (one task), on the event loop's clock."""

    __slots__ = ("cancelling", "deadline", "read", "read_expiry", "reason", "task")

    def __init__(self, task: asyncio.Task[object], deadline: float, read: float | None) -> None:
        self.task = task
        self.deadline = deadline
        #: Seconds allowed between reads (None: no read timeout).
        self.read = read
        self.read_expiry = _INF
        self.reason: ErrorCode | None = None
        self.cancelling = task.cancelling()

    def expiry(self) -> float:
        """The earlier of the deadline and the current read expiry."""
        return self.deadline if self.deadline < self.read_expiry else self.read_expiry


class Watchdog:
    """Expires watched requests with one timer handle."""

    __slots__ = ("_handle", "_loop", "_watches", "_when")

    def __init__(self) -> None:
        self._watches: dict[asyncio.Task[object], Watch] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._when = _INF
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._watches)

    def start(
        self, deadline: float | None, read: float | None, now: float | None = None
    ) -> Watch | None:
        """Watch the current task; ``deadline`` is on the loop's clock (None: none).

        ``now`` (the loop's time, read by the caller) also starts the read clock, as
        :meth:`reading` would, without reading the time again. Returns None when there
        is nothing to watch (no deadline and no read timeout).
        """
        if deadline is None and read is None:
            return None
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        # Given the loop, current_task() skips get_running_loop(), which on Python 3.11
        # costs a getpid() system call per request.
        task = asyncio.current_task(loop)
        if task is None:  # pragma: no cover - send() always runs inside a task
            return None
        watch = Watch(task, _INF if deadline is None else deadline, read)
        if now is not None and read is not None:
            watch.read_expiry = now + read
        self._watches[task] = watch
        self._arm(watch.expiry())
        return watch

    def reading(self, watch: Watch | None) -> None:
        """A read is about to wait: its read timeout starts now."""
        if watch is not None and watch.read is not None:
            assert self._loop is not None
            watch.read_expiry = self._loop.time() + watch.read
            if watch.read_expiry < self._when:
                self._arm(watch.read_expiry)

    def current(self) -> Watch | None:
        """The watch of the current task, if it has one."""
        task = asyncio.current_task(self._loop)
        return None if task is None else self._watches.get(task)

    @staticmethod
    def pause(watch: Watch | None) -> None:
        """Stop the read clock (while connecting, or while a stream's reader is away)."""
        if watch is not None:
            watch.read_expiry = _INF

    def stop(self, watch: Watch | None) -> None:
        """Stop watching (always call it, in a ``finally``)."""
        if watch is not None and self._watches.get(watch.task) is watch:
            del self._watches[watch.task]

    def _arm(self, when: float) -> None:
        if when >= self._when:
            return
        assert self._loop is not None
        if self._handle is not None:
            self._handle.cancel()
        self._when = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        assert self._loop is not None
        self._handle, self._when = None, _INF
        now = self._loop.time()
        earliest = _INF
        for task, watch in list(self._watches.items()):
            expiry = watch.expiry()
            if expiry <= now:
                watch.reason = (
                    ErrorCode.DEADLINE_EXCEEDED if watch.deadline <= now else ErrorCode.READ_TIMEOUT
                )
                del self._watches[task]
                task.cancel()
            elif expiry < earliest:
                earliest = expiry
        if earliest < _INF:
            self._arm(earliest)

    @staticmethod
    def expired(watch: Watch | None) -> ErrorCode | None:
        """After a CancelledError: the timeout that caused it, or None (a real cancel)."""
        if watch is None or watch.reason is None:
            return None
        if watch.task.uncancel() > watch.cancelling:
            return None  # someone else cancelled the task too: let it propagate
        return watch.reason

    def close(self) -> None:
        """Drop the timer (the transport is closing)."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._when = None, _INF
