"""The typer application behind ``flext-api``: its commands, ``--version``, and how a
usage error is shown (:class:`_Root`)."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.text import Text
from typer.core import TyperGroup

from .._version import __version__
from ._batch_cmd import batch_command
from ._console import make_console
from ._gateway_cmd import gateway_app
from ._request_cmd import request_command
from ._serve_cmd import serve_command
from ._storage_cmd import storage_app

__all__ = ["app"]

# C0 and C1 controls, CR and LF included: an error is one line, whatever was typed.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _error_line(exc: typer.TyperException) -> str:
    """``error: MESSAGE. See 'flext-api COMMAND --help'``: how a usage error is shown."""
    message = _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", exc.format_message())
    message = message.removesuffix(".")
    ctx = getattr(exc, "ctx", None)  # the command whose arguments were wrong, if known
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        end = " " if message.endswith("?") else ". "  # "Did you mean 'request'?"
        message = f"{message}{end}See '{ctx.command_path} {ctx.help_option_names[0]}'"
    return f"error: {message}"


class _Root(TyperGroup):
    """The ``flext-api`` group: its ``main`` shows a usage error (an unknown option or
    command, a missing argument, a bad value) as one line on stderr, like every other
    error of the command, with click's usage status 2.

    typer draws it as the usage line, a hint and a rich panel wrapped to the terminal's
    width: five lines or more where a script or a log expects one. ``--help`` is typer's.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(
                args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        try:
            status = super().main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )
        except typer.TyperException as exc:  # click's ClickException and UsageError
            # A missing command's help is shown while the error is made (typer does
            # the same check by name: the class is not exported).
            if type(exc).__name__ != "NoArgsIsHelpError":
                line = Text(_error_line(exc), style="red")
                make_console(stderr=True).print(line)
            sys.exit(exc.exit_code)
        except typer.Abort:  # end of input at a prompt
            make_console(stderr=True).print(Text("error: aborted", style="red"))
            sys.exit(1)
        # Not standalone, click returns the status of a typer.Exit, else what the command
        # returned: None for every flext-api command.
        sys.exit(status if isinstance(status, int) else 0)


app = typer.Typer(
    name="flext-api",
    cls=_Root,
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
