"""Where the command's output goes: rich consoles for stdout and stderr.

The consoles resolve ``sys.stdout``/``sys.stderr`` when they write (rich's default), so
typer's ``CliRunner`` captures them. ``CONSOLE_OPTIONS`` is the one place tests pin the
rendering (a fixed width, no colour) for exact assertions, as rich's own tests do.

**A reader that goes away** (``flext-api request ... | head -1``) is not a failure of the
command: the rest of its output is dropped without a word (the stream is pointed at
``/dev/null``, as Python's note on SIGPIPE recommends) and the command ends with the
status of what it did - 0 when the request succeeded, 1 with its ``error:`` line when it
failed. Rich's default would exit 1 at once, which reads as a failed request. Every
command prints to stdout only once its work is done, so there is nothing to stop early.
The same holds for what typer prints itself (``flext-api --help | head -1`` exits 0):
:func:`reader_may_go` guards stdout for the whole command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO, cast

from rich.console import Console

__all__ = ["CONSOLE_OPTIONS", "OutputError", "make_console", "reader_may_go"]

#: Extra keyword arguments for every Console the command creates (tests set
#: ``{"width": 100, "color_system": None, "force_terminal": False, "_environ": {}}``).
CONSOLE_OPTIONS: dict[str, Any] = {}


def _to_devnull(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at ``/dev/null``: its reader is gone."""
    try:
        fileno = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's buffer)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        # Also for what is still buffered: flushed at exit, it would fail again.
        os.dup2(devnull, fileno)
    finally:
        os.close(devnull)


class OutputError(Exception):
    """stdout could not be written (a full disk, an I/O error): not a broken pipe, so
    the output is lost, and the command fails with one ``error:`` line, never a
    traceback (``__cause__`` is the ``OSError``)."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(f"cannot write to stdout: {exc.strerror or exc}")


def _write_failed(stream: TextIO, exc: OSError) -> OutputError:
    """The error for a failed write of ``stream``; the rest of its output, buffered ones
    included, goes to ``/dev/null`` (flushed at exit, it would fail again)."""
    _to_devnull(stream)
    error = OutputError(exc)
    error.__cause__ = exc
    return error


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The stream's reader is gone: drop the rest quietly (module docstring)."""
        self.quiet = True
        _to_devnull(sys.stderr if self.stderr else sys.stdout)


class _ReaderMayGo:
    """``sys.stdout`` whose reader may go away: the first ``BrokenPipeError`` points it at
    ``/dev/null`` and the rest is dropped, whoever writes (rich, typer, ``print``).

    typer's help is printed by a rich console of typer's own, whose default on a broken
    pipe is ``SystemExit(1)``; typer's own handler exits 1 too. This proxy (click's
    ``PacifyFlushWrapper`` does the same for ``flush``) lets the command go on and end
    with its own status. Everything else is the wrapped stream's.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        #: The first failed write, kept: a caller may swallow the error (click probes
        #: the stream with ``write("")`` under ``except Exception``; ``/dev/full``
        #: refuses even that), and the rest of the output then goes to ``/dev/null``.
        self.failure: OutputError | None = None

    def _failed(self, exc: OSError) -> OutputError:
        error = _write_failed(self._stream, exc)
        if self.failure is None:
            self.failure = error
        return error

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            _to_devnull(self._stream)
            return len(text)
        except OSError as exc:
            raise self._failed(exc) from exc

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            _to_devnull(self._stream)
        except OSError as exc:
            raise self._failed(exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def reader_may_go() -> Iterator[None]:
    """Run the command with ``sys.stdout`` guarded by :class:`_ReaderMayGo`, flushed and
    put back at the end.

    A stdout that cannot be written (:class:`OutputError`) that the command did not
    report itself ends it with one ``error:`` line on stderr and status 1.
    """
    stream = sys.stdout
    if stream is None:  # pragma: no cover - pythonw: no stdout at all
        yield
        return
    guarded = _ReaderMayGo(stream)
    sys.stdout = cast("TextIO", guarded)
    try:
        try:
            yield
        except SystemExit as exc:
            if exc.code not in (None, 0) or guarded.failure is None:
                raise
            # "Succeeded" while a write failed and its error was swallowed: lost output.
            raise guarded.failure from guarded.failure.__cause__
        finally:
            guarded.flush()
        if guarded.failure is not None:
            raise guarded.failure from guarded.failure.__cause__
    except OutputError as exc:
        make_console(stderr=True).print(f"error: {exc}", markup=False, style="red")
        raise SystemExit(1) from None
    finally:
        sys.stdout = stream


def make_console(*, stderr: bool = False) -> Console:
    """A console on stdout (results) or stderr (progress, diagnostics).

    Diagnostics are never wrapped: one message is one line, whatever the width.
    """
    return _Console(stderr=stderr, highlight=False, soft_wrap=stderr, **CONSOLE_OPTIONS)
