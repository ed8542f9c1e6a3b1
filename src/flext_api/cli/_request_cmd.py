"""``flext-api request METHOD URL``: one request, shown like curl -i but readable.

Exit status: 0 when the request succeeded, 1 when it failed (one line on stderr:
``error: [CODE] message``; a response that came back is still printed), 2 for a usage
error.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from .._config import ClientConfig
from .._models import HttpResponse
from .._result import FlextResult
from ..client._client import FlextApiClient
from ..client.batch._batch import last_response
from ._console import OutputError, make_console
from ._options import (
    check_text,
    check_url_text,
    client_config,
    parse_body,
    parse_headers,
    parse_json,
)
from ._render import print_request, print_response

__all__ = ["request_command"]


def request_command(
    method: Annotated[
        str, typer.Argument(metavar="METHOD", help="HTTP method: GET, POST, PUT, DELETE...")
    ],
    url: Annotated[
        str, typer.Argument(metavar="URL", help="Absolute URL, e.g. https://api.example/items.")
    ],
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="Request header 'Name: value' (repeatable)."),
    ] = None,
    json_body: Annotated[
        str | None,
        typer.Option("--json", help="JSON body: the text, or @FILE. Sets Content-Type."),
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Raw body: the text, or @FILE.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds for each phase (connect, read, write, pool).", min=0.001),
    ] = None,
    retries: Annotated[
        int | None, typer.Option(help="Retries of failed attempts (default 3).", min=0)
    ] = None,
    http2: Annotated[bool, typer.Option("--http2", help="Use HTTP/2 (httpx2 transport).")] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Also show the request and the timing."),
    ] = False,
) -> None:
    """Send one request and print the status, the headers and a highlighted body."""
    if json_body is not None and data is not None:
        raise typer.BadParameter("use --json or --data, not both", param_hint="'--json'")
    check_text(method, "'METHOD'")
    check_url_text(url, "'URL'")
    options: dict[str, Any] = {"headers": parse_headers(header)}
    if json_body is not None:
        options["json"] = parse_json(json_body)
    if data is not None:
        options["content"] = parse_body(data, "'--data'")
    config = client_config(retries=retries, timeout=timeout, http2=http2)
    result = asyncio.run(_send(config, method, url, options))
    out = make_console()
    err = make_console(stderr=True)
    error = result.exception
    response = last_response(result)
    request = response.request if response is not None else error.request if error else None
    lost: OutputError | None = None
    try:
        if verbose and request is not None:
            print_request(out, request)
        if response is not None:
            print_response(out, response)
    except OutputError as exc:
        lost = exc  # lost output is a failure; the request's own error is still told
    if lost is not None:
        err.print(f"error: {lost}", markup=False, style="red")
    elif verbose and response is not None:
        err.print(
            f"* {response.status_code} in {response.elapsed * 1000:.1f} ms, "
            f"{response.attempts} attempt(s), {response.http_version}",
            style="dim",
        )
    if error is not None:
        err.print(f"error: {error}", markup=False, style="red")
    if error is not None or lost is not None:
        raise typer.Exit(1)


async def _send(
    config: ClientConfig, method: str, url: str, options: dict[str, Any]
) -> FlextResult[HttpResponse]:
    async with FlextApiClient(config=config) as client:
        return await client.request(method, url, **options)
