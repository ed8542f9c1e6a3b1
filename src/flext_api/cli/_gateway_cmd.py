"""``flext-api gateway --config FILE [--port N]`` and ``flext-api gateway check FILE``.

``check`` validates a config the way a reload does and prints every error with its path
and line (exit status 1 when invalid). Serving runs the gateway on uvicorn (h11 parser,
see docs/gateway.md for why), reloads on SIGHUP and on a change of the file, and drains
on SIGTERM.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._console import make_console

if TYPE_CHECKING:
    from ..gateway import GatewayConfig

__all__ = ["gateway_app"]

GATEWAY_HINT = "flext-api gateway needs the 'gateway' extra: pip install 'flext-api[gateway]'"

gateway_app = typer.Typer(
    name="gateway",
    help="Run the API gateway from a YAML config, or check a config.",
    add_completion=False,
    invoke_without_command=True,
)

_ConfigPath = Annotated[
    Path, typer.Argument(metavar="FILE", help="The gateway's YAML config.", show_default=False)
]


def _load(path: Path) -> GatewayConfig:
    """The validated config at ``path``; prints the errors and exits 1 otherwise."""
    try:
        from ..gateway import load_config
    except ImportError:
        make_console(stderr=True).print(GATEWAY_HINT, markup=False, style="red")
        raise typer.Exit(1) from None
    result = load_config(path)
    if result.is_failure:
        make_console(stderr=True).print(result.error or "", markup=False)
        raise typer.Exit(1)
    return result.value


# What serving needs beyond what ``check`` does (the gateway extra): uvicorn imports the
# WebSocket implementation when it starts, and the file watch imports watchfiles, so a
# missing one was a traceback from inside the server instead of this hint.
_SERVING_MODULES = ("wsproto", "watchfiles")


def _require_serving_extra() -> None:
    missing = []
    for name in _SERVING_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        make_console(stderr=True).print(
            f"{GATEWAY_HINT} (missing: {', '.join(missing)})", markup=False, style="red"
        )
        raise typer.Exit(1)


@gateway_app.command("check")
def check_command(file: _ConfigPath) -> None:
    """Validate FILE: print 'ok' and a summary, or every error with its line (exit 1)."""
    config = _load(file)
    typer.echo(
        f"ok: {file} ({len(config.routes)} routes, {len(config.clusters)} clusters, "
        f"{sum(len(c.instances) for c in config.clusters)} instances)"
    )


@gateway_app.callback()
def gateway_command(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The gateway's YAML config.")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Listen on this port instead of the config's."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Listen on this interface.")] = None,
) -> None:
    """Serve the gateway described by --config (Ctrl-C or SIGTERM drains and stops)."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(2)
    loaded = _load(config)
    _require_serving_extra()
    from ..gateway._serve import serve

    listener = loaded.listeners[0]
    typer.echo(
        f"flext-api gateway on http://{host or listener.host}:"
        f"{listener.port if port is None else port} (config {config})"
    )
    try:
        serve(loaded, config_path=config, port=port, host=host)
    except OSError as exc:  # a listener that cannot be bound (a port in use)
        typer.echo(f"flext-api gateway: {exc.strerror or exc}", err=True)
        raise typer.Exit(3) from None
