"""``flext-api serve MODULE:APP``: run an ASGI app (e.g. one from ``create_fastapi_app``).

The app is imported here first, with the current directory on ``sys.path`` as uvicorn
does, so a wrong name fails with one clear line (exit status 2) instead of a traceback.
uvicorn comes with the ``server`` extra; without it the command says how to install it.

It runs on uvicorn with the gateway's HTTP/1.1 protocol
(:mod:`flext_api.server._protocol`): a request head must arrive whole within
``--header-timeout`` seconds (408 otherwise) and within ``--max-header-bytes`` (431),
which uvicorn alone does not bound (a client dripping one header line at a time holds
a connection for ever).

An app made by ``create_fastapi_app`` (``app.state.flext``) is drained as the gateway is:
on SIGTERM/SIGINT it is marked draining first (``/ready`` answers 503 from then on), then
uvicorn stops accepting, closes idle connections and gives open requests up to the app's
``health.drain_timeout`` (``timeout_graceful_shutdown``) before cancelling them and
running the lifespan shutdown. Plain uvicorn runs that shutdown only after the open
requests end, however long they take, so the app was never seen draining. Any other app
is served as ``uvicorn.run`` serves it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._console import make_console

if TYPE_CHECKING:
    from ..server._state import FlextServerState

__all__ = ["flext_state", "load_app", "serve_command", "serve_draining"]

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


def flext_state(app: Any) -> FlextServerState | None:
    """The ``FlextServerState`` of an app made by ``create_fastapi_app``, else None."""
    from ..server._state import FlextServerState

    state = getattr(getattr(app, "state", None), "flext", None)
    return state if isinstance(state, FlextServerState) else None


def serve_draining(app: Any, state: FlextServerState, **options: Any) -> None:
    """``uvicorn.run(app, **options)``, draining ``state`` first on SIGTERM/SIGINT and
    bounding the wait for open requests by its ``health.drain_timeout``."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            state.begin_drain()  # before uvicorn closes anything: /ready is 503 now
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        # Seconds as given: uvicorn hands it to asyncio.timeout, which takes a float (as
        # the gateway's uvicorn_config does).
        timeout_graceful_shutdown=state.config.health.drain_timeout,  # type: ignore[arg-type]
        **options,
    )
    server = DrainingServer(config)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises a handled Ctrl-C
        server.run()
    if not server.started:  # start-up failed (uvicorn said why): uvicorn.run's exit
        sys.exit(STARTUP_FAILURE)


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
    state = flext_state(asgi_app)
    run: Any = uvicorn.run if state is None else functools.partial(serve_draining, state=state)
    run(
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
