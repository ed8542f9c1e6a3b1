"""The typer application behind ``flext-api``: its commands and ``--version``."""

from __future__ import annotations

from typing import Annotated

import typer

from .._version import __version__
from ._batch_cmd import batch_command
from ._gateway_cmd import gateway_app
from ._request_cmd import request_command
from ._serve_cmd import serve_command
from ._storage_cmd import storage_app

__all__ = ["app"]

app = typer.Typer(
    name="flext-api",
    help="flext-api: requests, request batches, app serving, the gateway, storage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"flext-api {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """flext-api: requests, request batches, app serving, the gateway, storage."""


app.command("request")(request_command)
app.command("batch")(batch_command)
app.command("serve")(serve_command)
app.add_typer(gateway_app, name="gateway")
app.add_typer(storage_app, name="storage")
