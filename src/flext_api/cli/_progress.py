"""The batch command's progress on stderr: a rich bar on a terminal, plain lines otherwise.

On a terminal: done/total, failed, retries, req/s and ETA in one live bar. When stderr
is not a terminal (a log file, CI), one plain line every ``plain_every`` seconds, so
logs stay readable and small.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from .._clock import Clock, get_clock
from ..client.batch._models import BatchProgress

__all__ = ["BatchDisplay", "format_eta"]


def format_eta(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``12s`` or ``?``."""
    if seconds is None:
        return "?"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class BatchDisplay:
    """Progress of a batch of ``total`` items, drawn on ``console`` (stderr).

    ``total`` is None when it is not known (an input read from a pipe): done counts
    are shown as ``N/?``, without an ETA.
    """

    def __init__(
        self,
        console: Console,
        total: int | None,
        *,
        plain_every: float = 2.0,
        clock: Clock | None = None,
    ) -> None:
        self.console = console
        self.total = total
        self.plain_every = plain_every
        self._clock = get_clock(clock)
        self._last_plain = self._clock.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self.last: BatchProgress | None = None

    def __enter__(self) -> BatchDisplay:
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("failed {task.fields[failed]}"),
                TextColumn("retries {task.fields[retries]}"),
                TextColumn("{task.fields[rate]:.0f} req/s"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._task = self._progress.add_task(
                "batch", total=self.total, failed=0, retries=0, rate=0.0
            )
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
        elif self.last is not None:
            self._plain(self.last)

    def update(self, progress: BatchProgress) -> None:
        """Show a new snapshot (plain lines are throttled to ``plain_every``)."""
        self.last = progress
        if self._progress is not None:
            assert self._task is not None
            self._progress.update(
                self._task,
                completed=progress.done,
                failed=progress.failed,
                retries=progress.retries,
                rate=progress.rate,
            )
            return
        now = self._clock.monotonic()
        if now - self._last_plain >= self.plain_every:
            self._last_plain = now
            self._plain(progress)

    def _plain(self, p: BatchProgress) -> None:
        total = self.total
        eta = (total - p.done) / p.rate if total is not None and p.rate > 0 else None
        paused = f", {p.paused_hosts} host(s) paused" if p.paused_hosts else ""
        self.console.print(
            f"batch: {p.done}/{'?' if total is None else total} done, {p.failed} failed, "
            f"{p.retries} retries, "
            f"{p.rate:.0f} req/s, ETA {format_eta(eta)}{paused}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def note(self, message: str) -> None:
        """Print a line above the bar (or as a plain line)."""
        self.console.print(message, markup=False, highlight=False, soft_wrap=True)
