"""``flext-api batch INPUT.jsonl -o OUT.jsonl``: run a file of requests, resumably.

Input: one JSON object per line, ``{"id", "path", "method"?, "params"?, "json"?,
"headers"?}``. Output: one JSON object per result, ``{"id", "line", "success",
"status_code", "data", "error", "error_code", "duration_ms", "attempts"}``, in
completion order. ``--journal`` makes the run resumable (see ``_checkpoint``).

Exit status: 0 every request succeeded; 1 the batch ran but some results are failures
(see the output); 2 bad usage, an unreadable input, an unwritable output or a journal
that does not match the input; 130 interrupted (resume with the same command).
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
from contextlib import aclosing, suppress
from pathlib import Path
from typing import Annotated, Any

import typer

from .._config import ClientConfig
from .._errors import ConfigError
from ..client._client import FlextApiClient
from ..client.batch._batch import run_batch
from ..client.batch._models import BatchResult
from ._checkpoint import CheckpointedOutput
from ._console import OutputError, make_console
from ._input import InputReader, count_lines
from ._options import client_config, parse_base_url, parse_rate, parse_timeout
from ._progress import BatchDisplay
from ._summary import BatchSummary

__all__ = ["batch_command", "output_record"]

_MAX_MALFORMED_SHOWN = 20


def output_record(result: BatchResult, line: int) -> dict[str, Any]:
    """The output line of a result: ``to_dict()`` with the input line instead of the index."""
    record = result.to_dict()
    del record["index"]
    return {"id": record.pop("id"), "line": line, **record}


def batch_command(
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT.jsonl",
            help='Requests, one JSON object a line: {"id", "path", "method", "params", '
            '"json", "headers"}.',
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="OUT.jsonl",
            dir_okay=False,
            help="Results, one JSON object a line (replaced, unless resuming into it).",
        ),
    ],
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Base URL the paths are relative to.")
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=10_000, help="Requests in flight at once.")
    ] = 50,
    rate: Annotated[
        str | None, typer.Option(help="Per-host rate limit: 100/s, 600/min, 2/h.")
    ] = None,
    retries: Annotated[
        int | None, typer.Option(min=0, help="Retries of a failed attempt (default 3).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0.001, help="Seconds for each phase of an attempt.")
    ] = None,
    journal: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="Journal file making the run resumable: when it exists, lines done "
            "before are skipped (delete it to start over).",
        ),
    ] = None,
    max_pause: Annotated[
        float,
        typer.Option(min=0, help="Seconds a host may be paused in total on an open circuit."),
    ] = 120.0,
    allow_duplicates: Annotated[
        bool,
        typer.Option(
            "--allow-duplicates",
            help="Send repeated ids too. By default a repeated id fails as "
            "INVALID_REQUEST, which remembers every id (about 100 bytes each).",
        ),
    ] = False,
) -> None:
    """Run every request of INPUT.jsonl, write one result a line to OUT.jsonl, summarize."""
    # Every value is checked before the output is opened: opening replaces it.
    _check_distinct(input_path, output, journal)
    # A pipe (/dev/stdin, <(...)) can be read once: no line count first, and no journal
    # (it fingerprints the input, then resuming reads it again).
    regular = _is_regular(input_path)
    if journal is not None and not regular:
        raise typer.BadParameter(
            f"{str(input_path)!r} is not a regular file (a pipe or a device can be read "
            "only once; a journal needs to read the input again): save it to a file first",
            param_hint="'--journal'",
        )
    config = client_config(
        retries=retries,
        timeout=timeout,
        rate=parse_rate(rate) if rate is not None else None,
        concurrency=concurrency,
    )
    parse_timeout(max_pause, "'--max-pause'")
    parse_base_url(base_url)
    err = make_console(stderr=True)
    writer = CheckpointedOutput(output, journal, input_path=input_path)
    try:
        state = writer.open()
    except ConfigError as exc:
        err.print(f"error: {exc.message}", markup=False, style="red")
        raise typer.Exit(2) from None
    for warning in state.warnings:
        err.print(f"warning: {warning}", markup=False, style="yellow")
    if state.resumed:
        err.print(
            f"resuming: {len(state.done)} line(s) done before; "
            f"{state.dropped_bytes} byte(s) of unfinished output dropped",
            markup=False,
        )
    total = max(0, count_lines(input_path) - len(state.done)) if regular else None
    display = BatchDisplay(err, total)
    shown = 0

    def report(line: int, reason: str) -> None:
        nonlocal shown
        shown += 1
        if shown <= _MAX_MALFORMED_SHOWN:
            display.note(f"line {line}: {reason}")

    reader = InputReader(
        input_path,
        base_url=base_url,
        done=state.done,
        on_malformed=report,
        check_duplicates=not allow_duplicates,
    )
    summary = BatchSummary()
    interrupted = False
    failure: ConfigError | None = None
    loop_time = 0.0
    try:
        with display:
            loop_time = asyncio.run(
                _run(
                    config,
                    base_url,
                    reader,
                    writer,
                    summary,
                    display,
                    concurrency=concurrency,
                    max_pause=max_pause,
                    check_duplicates=not allow_duplicates,
                )
            )
    except KeyboardInterrupt:
        interrupted = True
    except ConfigError as exc:
        failure = exc
    except BaseException:
        with suppress(ConfigError):
            writer.close()
        raise
    try:
        writer.close()
    except ConfigError as exc:
        failure = failure or exc
    if failure is not None:
        # The results written so far stay in the output (and, with a journal, resume
        # from its last checkpoint).
        err.print(f"error: {failure.message}", markup=False, style="red")
        raise typer.Exit(2)
    if reader.malformed > _MAX_MALFORMED_SHOWN:
        err.print(f"... and {reader.malformed - _MAX_MALFORMED_SHOWN} more malformed line(s)")
    elapsed = loop_time or (display.last.elapsed if display.last else 0.0)
    try:
        make_console().print(
            summary.table(
                elapsed=elapsed,
                skipped=reader.skipped,
                malformed=reader.malformed,
                interrupted=interrupted,
            )
        )
    except OutputError as exc:
        # The results are in the output file; the summary is lost: status 2, as for
        # an output that cannot be written (1 would read as "some requests failed").
        err.print(f"error: {exc}", markup=False, style="red")
        raise typer.Exit(2) from None
    if interrupted:
        hint = "run the same command to resume" if journal else "--journal makes a run resumable"
        err.print(f"interrupted: {hint}", markup=False)
        raise typer.Exit(130)
    raise typer.Exit(0 if summary.ok == summary.total else 1)


def _check_distinct(input_path: Path, output: Path, journal: Path | None) -> None:
    """Refuse to overwrite the input, or to use one file as two things (also through a
    symbolic or hard link)."""
    if _same_file(output, input_path):
        raise typer.BadParameter("the output would overwrite the input", param_hint="'-o'")
    if journal is not None and (_same_file(journal, input_path) or _same_file(journal, output)):
        raise typer.BadParameter(
            "the journal must be its own file (not the input or the output)",
            param_hint="'--journal'",
        )


def _is_regular(path: Path) -> bool:
    """Whether ``path`` is a regular file, which can be read more than once."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True  # reading it reports the problem (exit 2)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): not the same file
        return False


async def _run(
    config: ClientConfig,
    base_url: str | None,
    reader: InputReader,
    writer: CheckpointedOutput,
    summary: BatchSummary,
    display: BatchDisplay,
    *,
    concurrency: int,
    max_pause: float,
    check_duplicates: bool,
) -> float:
    """Run the batch; returns its duration in seconds.

    Ctrl-C stops it: the first SIGINT cancels this task and, should a cancellation be
    absorbed on its way up, the loop below stops at the next result anyway; the
    results so far stay written and ``KeyboardInterrupt`` reports the stop. A second
    SIGINT stops at once.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    main = asyncio.current_task()
    stopping = False

    def on_sigint() -> None:
        nonlocal stopping
        if stopping:
            raise KeyboardInterrupt
        stopping = True
        if main is not None:
            main.cancel()

    watching = _watch_sigint(loop, on_sigint)
    try:
        async with FlextApiClient(base_url, config=config) as client:
            batch = run_batch(
                client,
                reader,
                concurrency=concurrency,
                progress=display.update,
                max_pause=max_pause,
                check_duplicates=check_duplicates,
            )
            async with aclosing(batch) as results:
                async for result in results:
                    line = reader.line_of(result.index if result.index is not None else -1)
                    writer.write(output_record(result, line), line)
                    summary.add(result)
                    if stopping:
                        break
    except asyncio.CancelledError:
        if not stopping:
            raise
    finally:
        if watching:
            loop.remove_signal_handler(signal.SIGINT)
    if stopping:
        raise KeyboardInterrupt
    return loop.time() - start


def _watch_sigint(loop: asyncio.AbstractEventLoop, callback: Any) -> bool:
    """Route SIGINT to ``callback`` on ``loop``; False where the loop cannot (not the
    main thread, no Unix signals): asyncio's own Ctrl-C handling applies there."""
    try:
        loop.add_signal_handler(signal.SIGINT, callback)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True
