"""The ``flext-api`` command line: ``request``, ``batch`` and ``serve``.

It needs the ``cli`` extra (typer + rich). :func:`main` is the console script; without
the extra it prints how to install it and exits with status 1, so ``import flext_api``
and this package import with no extras at all.
"""

from __future__ import annotations

import io
import os
import sys

__all__ = ["INSTALL_HINT", "main"]

INSTALL_HINT = "flext-api's command line needs the 'cli' extra: pip install 'flext-api[cli]'"
_EXTRA_MODULES = frozenset({"typer", "rich", "click"})


def main(argv: list[str] | None = None) -> None:
    """Run the ``flext-api`` command (``argv`` defaults to ``sys.argv[1:]``)."""
    try:
        from ._app import app
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in _EXTRA_MODULES:
            raise
        print(f"{INSTALL_HINT} (missing module: {missing})", file=sys.stderr)
        raise SystemExit(1) from None
    from ._console import reader_may_go
    from ._storage_cmd import native_clients

    _log_to_stderr()
    _escape_unencodable()
    native_clients.clear()
    try:
        # A reader that goes away (`flext-api --help | head -1`) is no error: the rest
        # of the output is dropped and the status is the command's own (_console).
        with reader_may_go():
            app(args=argv, prog_name="flext-api")
    except SystemExit as exc:
        if argv is None and native_clients:
            _exit_now(exc.code)
        raise


def _exit_now(code: object) -> None:
    """End a command-line process that used ``obstore`` without interpreter finalization.

    ``obstore``'s Rust runtime keeps worker threads; when the interpreter finalizes
    while one of them still holds a reference into Python, the process aborts
    (SIGABRT) - seen in about 1 run in 20 of a short command, even with every store
    freed beforehand. The command's work is done by now: run the ``atexit`` handlers
    (logging, coverage), flush the standard streams and leave with the same status.
    Only a console-script run (``argv`` None) whose command opened an obstore backend
    does this; ``main(argv)`` called from Python returns normally.
    """
    import atexit

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _escape_unencodable() -> None:
    """A stdout that cannot encode every character (an ASCII or cp1252 locale) shows the
    others escaped (``\\xe9``), as stderr does: strict, it failed with a
    ``UnicodeEncodeError`` traceback once the work was done."""
    if isinstance(sys.stdout, io.TextIOWrapper) and sys.stdout.errors == "strict":
        sys.stdout.reconfigure(errors="backslashreplace")


def _log_to_stderr() -> None:
    """Library logs go to stderr, warnings and up: stdout is the command's output."""
    import logging

    import structlog

    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
