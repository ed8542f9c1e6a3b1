"""``flext-api storage ls|cp|rm URL``: objects in S3, Azure Blob, GCS or local files.

URLs are ``s3://bucket/key``, ``az://container/key``, ``gs://bucket/key``,
``file:///dir/key`` (``memory://`` too); a ``cp`` argument without ``://`` is a local
path. Endpoints and credentials come from the options or the environment variables
:func:`flext_api.storage.open_storage` reads (``AWS_*``, ``AZURE_STORAGE_*``,
``STORAGE_EMULATOR_HOST``, ``GCS_TOKEN``). Transfers stream in constant memory; from
8 MiB up a progress bar (bytes, speed, ETA) is drawn on stderr unless ``--quiet``.
Failures print one ``error: [CODE] message`` line on stderr and exit with status 1; a
malformed ``--endpoint`` is a usage error (status 2), found before any client is made.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich import filesize
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from .._atomic import PUBLIC_MODE, AtomicFile
from .._errors import ConfigError, FlextApiError
from .._result import FlextResult
from ..storage import ByteStream, StorageBackend, open_storage
from ..storage._url import check_endpoint
from ._console import make_console
from ._render import terminal_safe

__all__ = ["native_clients", "storage_app"]

#: Schemes of the obstore-backed (Rust) clients this command run opened; ``main``
#: ends such a run without interpreter finalization (see ``flext_api.cli._exit_now``).
native_clients: set[str] = set()

PROGRESS_FROM = 8 * 1024 * 1024
_UNLIMITED = 1 << 30  # a width no table reaches
CHUNK = 1024 * 1024

storage_app = typer.Typer(
    name="storage",
    help="List, copy and remove objects: s3://, az://, gs://, file:// URLs.",
    no_args_is_help=True,
)


@storage_app.callback()
def _options(
    ctx: typer.Context,
    endpoint: Annotated[
        str | None, typer.Option(help="Server URL (S3-compatible, Azurite, GCS emulator).")
    ] = None,
    access_key_id: Annotated[str | None, typer.Option(help="S3 access key id.")] = None,
    secret_access_key: Annotated[str | None, typer.Option(help="S3 secret key.")] = None,
    region: Annotated[str | None, typer.Option(help="S3 region.")] = None,
    account_name: Annotated[str | None, typer.Option(help="Azure storage account.")] = None,
    account_key: Annotated[str | None, typer.Option(help="Azure account key.")] = None,
    token: Annotated[str | None, typer.Option(help="GCS OAuth2 access token.")] = None,
) -> None:
    """List, copy and remove objects: s3://, az://, gs://, file:// URLs."""
    if endpoint is not None:
        try:
            check_endpoint(endpoint)
        except ConfigError as exc:
            raise typer.BadParameter(exc.message, param_hint="'--endpoint'") from None
    ctx.obj = {
        "endpoint": endpoint,
        "access_key_id": access_key_id,
        "secret_access_key": secret_access_key,
        "region": region,
        "account_name": account_name,
        "account_key": account_key,
        "token": token,
    }


def _options_for(url: str, given: dict[str, Any]) -> dict[str, Any]:
    allowed = {
        "s3": {"endpoint", "access_key_id", "secret_access_key", "region"},
        "az": {"endpoint", "account_name", "account_key"},
        "gs": {"endpoint", "token"},
    }.get(url.partition("://")[0].lower(), set())
    return {k: v for k, v in given.items() if k in allowed and v is not None}


class _Session:
    """Opens backends for URLs and closes them all at the end."""

    def __init__(self, stack: AsyncExitStack, options: dict[str, Any]) -> None:
        self._stack = stack
        self._options = options

    async def open(self, url: str) -> tuple[StorageBackend, str]:
        opened = open_storage(url, **_options_for(url, self._options))
        backend, key = opened.value
        if type(backend).__module__.endswith("._obstore"):
            native_clients.add(backend.scheme)
        await self._stack.enter_async_context(backend)
        return backend, key


def _run(ctx: typer.Context, work: Callable[[_Session], Awaitable[None]]) -> None:
    err = make_console(stderr=True)

    async def main() -> None:
        async with AsyncExitStack() as stack:
            await work(_Session(stack, ctx.obj or {}))

    try:
        asyncio.run(main())
    except FlextApiError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    finally:
        # Free the object-store clients while the interpreter is whole: a Rust client
        # dropped during interpreter shutdown could abort the process.
        gc.collect()


def _check(result: FlextResult[Any]) -> Any:
    return result.value  # a failure raises its FlextApiError, reported by _run


class _Meter:
    """Progress of one transfer on stderr: a live bar on a terminal, one summary line
    otherwise (logs stay small); nothing below ``PROGRESS_FROM`` bytes or with --quiet."""

    def __init__(self, total: int | None, label: str, quiet: bool) -> None:
        self.console = make_console(stderr=True)
        self.label = label
        self.shown = not quiet and total is not None and total >= PROGRESS_FROM
        self.done = 0
        self._start = time.monotonic()
        self.bar: Progress | None = None
        if self.shown and self.console.is_terminal:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.add_task(label, total=total)
            self.bar.start()

    def advance(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.advance(self.bar.task_ids[0], count)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        elif self.shown:
            took = max(time.monotonic() - self._start, 1e-6)
            self.console.print(
                f"{self.label}: {filesize.decimal(self.done)} in {took:.1f}s "
                f"({filesize.decimal(int(self.done / took))}/s)",
                markup=False,
            )


async def _counted(chunks: AsyncIterator[bytes], meter: _Meter) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        meter.advance(len(chunk))
        yield chunk


async def _read_local(path: Path) -> AsyncIterator[bytes]:
    handle: IO[bytes] = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            yield chunk
    finally:
        handle.close()


async def _write_local(stream: AsyncIterator[bytes], target: Path) -> None:
    out = await asyncio.to_thread(AtomicFile, target, mode=PUBLIC_MODE)
    try:
        async for chunk in stream:
            await asyncio.to_thread(out.write, chunk)
        await asyncio.to_thread(out.commit)
    finally:
        out.abort()


def _is_url(text: str) -> bool:
    return "://" in text


@storage_app.command("ls")
def ls_command(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Prefix to list, e.g. s3://bucket/reports/.")],
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Every key below, not one level.")
    ] = False,
) -> None:
    """List the objects (and sub-prefixes) under URL."""
    out = make_console()

    async def work(session: _Session) -> None:
        backend, prefix = await session.open(url)
        table = Table("size", "modified", "key", box=None, header_style="bold")
        token: str | None = None
        while True:
            page = _check(
                await backend.list_page(
                    prefix, delimiter=None if recursive else "/", start_after=token
                )
            )
            # Keys are data, not markup: "[red]x" is a name, and "a[/b]" would be a
            # MarkupError; on a terminal their control characters are shown escaped.
            for folder in page.prefixes:
                table.add_row("DIR", "", Text(terminal_safe(out, folder)))
            for info in page.files:
                modified = (
                    info.last_modified.strftime("%Y-%m-%d %H:%M") if info.last_modified else ""
                )
                table.add_row(str(info.size), modified, Text(terminal_safe(out, info.path)))
            token = page.next_token
            if token is None:
                break
        # A key is never cut short ("...") nor wrapped onto a second line, whatever the
        # width (80 columns when the output is not a terminal): the table is as wide as
        # its longest row.
        need = Measurement.get(out, out.options.update_width(_UNLIMITED), table).maximum
        if need > out.width:
            out.width = need
        out.print(table, crop=False)

    _run(ctx, work)


@storage_app.command("cp")
def cp_command(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="URL or local file to copy from.")],
    target: Annotated[str, typer.Argument(help="URL or local path to copy to.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Copy SOURCE to TARGET (upload, download or store to store), streaming."""
    out = make_console()
    name = source.rstrip("/").rpartition("/")[2]
    local_source = None if _is_url(source) else Path(source)
    if local_source is not None and not local_source.is_file():
        raise typer.BadParameter(f"{source!r} is not a file", param_hint="SOURCE")
    local_target = None if _is_url(target) else Path(target)
    if local_target is not None and (local_target.is_dir() or target.endswith("/")):
        local_target = local_target / name

    async def work(session: _Session) -> None:
        if local_source is None:
            src_backend, src_key = await session.open(source)
            stream: ByteStream = _check(await src_backend.download_stream(src_key))
            size: int | None = stream.info.size
            body: AsyncIterator[bytes] = aiter(stream)
            meta, content_type = dict(stream.info.metadata), stream.info.content_type
        else:
            size = await asyncio.to_thread(lambda: local_source.stat().st_size)
            body, meta, content_type = _read_local(local_source), {}, None
        meter = _Meter(size, f"{source} -> {target}", quiet)
        try:
            counted = _counted(body, meter)
            if local_target is None:
                dst_backend, dst_key = await session.open(target)
                if not dst_key or dst_key.endswith("/"):
                    dst_key += name
                url = _check(
                    await dst_backend.upload_file(counted, dst_key, meta, content_type=content_type)
                )
            else:
                await _write_local(counted, local_target)
                url = str(local_target)
        finally:
            meter.finish()
        out.print(f"copied {source} -> {url}", markup=False, soft_wrap=True)

    _run(ctx, work)


@storage_app.command("rm")
def rm_command(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Object to remove, e.g. s3://bucket/key.")],
) -> None:
    """Remove the object at URL (an absent object is not an error)."""
    out = make_console()

    async def work(session: _Session) -> None:
        backend, key = await session.open(url)
        _check(await backend.delete_file(key))
        out.print(f"removed {url}", markup=False, soft_wrap=True)

    _run(ctx, work)
