"""``flext-api serve MODULE:APP``: run an ASGI app (e.g. one from ``create_fastapi_app``).

The app is imported here first, with the current directory on ``sys.path`` as uvicorn
does, so a wrong name fails with one clear line (exit status 2) instead of a traceback.
uvicorn comes with the ``server`` extra; without it the command says how to install it.

It runs on uvicorn with the gateway's HTTP/1.1 protocol
(:mod:`flext_api.server._protocol`): a request head must arrive whole within
``--header-timeout`` seconds (408 otherwise) and within ``--max-header-bytes`` (431),
which uvicorn alone does not bound (a client dripping one header line at a time holds
a connection for ever).
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any

import typer

from ._console import make_console

__all__ = ["load_app", "serve_command"]

SERVER_HINT = "flext-api serve needs the 'server' extra: pip install 'flext-api[server]'"


_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def load_app(target: str, *, factory: bool = False) -> Any:
    """Import ``MODULE:ATTR`` (``ATTR`` may be dotted); call it when ``factory``."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise typer.BadParameter(f"{target!r} is not MODULE:APP (e.g. service:app)")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise typer.BadParameter(f"cannot import {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise typer.BadParameter(f"{module_name!r} has no attribute {attr!r}") from None
    if factory:
        if not callable(obj):
            raise typer.BadParameter(f"{target!r} is not callable (--factory)")
        try:
            obj = obj()
        except TypeError as exc:  # an app, not a factory: it wants (scope, receive, send)
            raise typer.BadParameter(
                f"{target!r} cannot be called without arguments (--factory): {exc}"
            ) from exc
    if not callable(obj):
        raise typer.BadParameter(f"{target!r} is not an ASGI app (not callable)")
    return obj


def serve_command(
    app: Annotated[
        str, typer.Argument(metavar="MODULE:APP", help="The ASGI app, e.g. service:app.")
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free).")] = 8000,
    factory: Annotated[
        bool, typer.Option("--factory", help="APP is a function returning the app.")
    ] = False,
    log_level: Annotated[
        str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")
    ] = "info",
    header_timeout: Annotated[
        float,
        typer.Option(min=0.001, help="Seconds a client has to send a request head (408 after)."),
    ] = 10.0,
    max_header_bytes: Annotated[
        int, typer.Option(min=1024, help="Bytes of a request line and headers (431 past them).")
    ] = 32768,
    access_log: Annotated[
        bool,
        typer.Option(
            help="uvicorn's access log (create_fastapi_app apps log each request already)."
        ),
    ] = True,
) -> None:
    """Serve MODULE:APP with uvicorn (Ctrl-C stops it)."""
    if log_level.lower() not in _LOG_LEVELS:
        raise typer.BadParameter(
            f"{log_level!r} is not one of {', '.join(_LOG_LEVELS)}", param_hint="--log-level"
        )
    try:
        import uvicorn

        from ..server._protocol import protocol_with_header_timeout
    except ImportError:
        make_console(stderr=True).print(SERVER_HINT, markup=False, style="red")
        raise typer.Exit(1) from None
    asgi_app = load_app(app, factory=factory)
    uvicorn.run(
        asgi_app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        access_log=access_log,
        http=protocol_with_header_timeout(
            header_timeout, parser="auto", max_head_bytes=max_header_bytes
        ),
        h11_max_incomplete_event_size=max_header_bytes,
    )
