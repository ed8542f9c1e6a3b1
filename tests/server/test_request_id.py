"""Request-ID middleware: validation, generation, propagation, echo on every response."""

from __future__ import annotations

import io
import os
import re

import pytest
import structlog
from fastapi import Depends
from starlette.types import Message, Receive, Scope, Send

from flext_api import ServerConfig
from flext_api._context import get_request_id, get_traceparent, propagation_headers
from flext_api._server_config import ServerRateLimitConfig
from flext_api.server import rate_limit
from flext_api.server.middleware import RequestIdMiddleware
from flext_api.server.middleware._request_id import _RequestIds, new_request_id
from tests.server.conftest import Build
from tests.server.helpers import problem, records, serve

UUID4_HEX = re.compile(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_new_request_id_is_uuid4_hex() -> None:
    """Generated IDs are 32 hex digits with the UUID4 version and variant bits."""
    assert all(UUID4_HEX.fullmatch(new_request_id()) for _ in range(200))


def test_new_request_ids_are_unique_across_blocks() -> None:
    """IDs drawn past several blocks of pre-made UUID4s are all different."""
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)


def test_reset_starts_a_new_block() -> None:
    """After a reset the next ID comes from a new block, not the rest of the old one."""
    ids = _RequestIds()
    ids()
    upcoming = ids._block[32:64]  # what the next call would give without the reset
    ids.reset()
    assert ids() != upcoming


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_does_not_repeat_the_parent_ids() -> None:
    """A child forked mid-block draws a fresh block instead of the parent's next IDs."""
    new_request_id()  # a block is in use
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        os.write(write_end, new_request_id().encode())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert UUID4_HEX.fullmatch(child_id)
    assert child_id != new_request_id()


async def test_valid_inbound_id_is_kept(build: Build) -> None:
    """A well-formed inbound X-Request-ID is echoed unchanged."""
    app = build()
    async with serve(app) as client:
        response = await client.get("/health", headers={"X-Request-ID": "req-1.2:abc_X"})
    assert response.headers["x-request-id"] == "req-1.2:abc_X"


@pytest.mark.parametrize(
    "inbound",
    ["a" * 129, "has space", 'quote"d', "semi;colon", "é-accent", "", "tab\tchar"],
)
async def test_invalid_inbound_id_is_replaced(build: Build, inbound: str) -> None:
    """Overlong, empty or out-of-alphabet IDs are replaced by a fresh UUID4."""
    app = build()
    async with serve(app) as client:
        response = await client.get("/health", headers=[(b"x-request-id", inbound.encode("utf-8"))])
    assert UUID4_HEX.fullmatch(response.headers["x-request-id"])


async def test_two_inbound_ids_are_both_distrusted(build: Build) -> None:
    """A request carrying two X-Request-ID headers gets a generated ID."""
    app = build()
    async with serve(app) as client:
        response = await client.get(
            "/health", headers=[(b"x-request-id", b"one"), (b"x-request-id", b"two")]
        )
    assert UUID4_HEX.fullmatch(response.headers["x-request-id"])


async def test_missing_id_is_generated(build: Build) -> None:
    """Without an inbound ID each response gets a distinct generated one."""
    app = build()
    async with serve(app) as client:
        first = await client.get("/health")
        second = await client.get("/health")
    assert UUID4_HEX.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_id_is_in_contextvar_during_handler_and_reset_after(build: Build) -> None:
    """Handlers see the ID and the propagation headers; nothing leaks after the request."""
    app = build()
    seen: dict[str, object] = {}

    @app.get("/ctx")
    async def ctx() -> dict[str, str]:
        seen["id"] = get_request_id()
        seen["headers"] = propagation_headers()
        return {}

    async with serve(app) as client:
        await client.get("/ctx", headers={"X-Request-ID": "abc", "traceparent": TRACEPARENT})
    assert seen == {"id": "abc", "headers": {"X-Request-ID": "abc", "traceparent": TRACEPARENT}}
    assert get_request_id() is None
    assert get_traceparent() is None


async def test_malformed_traceparent_is_ignored(build: Build) -> None:
    """A traceparent that is not W3C version 00 is not exposed."""
    app = build()
    seen: list[str | None] = []

    @app.get("/ctx")
    def ctx() -> dict[str, str]:  # sync handler: runs in a thread with the context copied
        seen.append(get_traceparent())
        return {}

    async with serve(app) as client:
        await client.get("/ctx", headers={"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"})
    assert seen == [None]


_IDS = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("sent", "exposed"),
    [
        (f"00-{_IDS}-01", f"00-{_IDS}-01"),
        # A later version is read with version 00's layout (W3C Trace Context §4.3),
        # with or without fields after the flags, and passed on as version 00.
        (f"01-{_IDS}-01", f"00-{_IDS}-01"),
        (f"cc-{_IDS}-01-what-the-future-adds", f"00-{_IDS}-01"),
        # Invalid whatever the version: ff, fields after version 00's flags, no dash
        # after a later version's flags, upper case, zero ids, too short.
        (f"ff-{_IDS}-01", None),
        (f"00-{_IDS}-01-extra", None),
        (f"01-{_IDS}-01x", None),
        (f"01-{_IDS.upper()}-01", None),
        ("01-" + "0" * 32 + "-00f067aa0ba902b7-01", None),
        (f"01-{_IDS}", None),
    ],
)
async def test_traceparent_versions(build: Build, sent: str, exposed: str | None) -> None:
    """Version 00 is taken as is; a later one as the spec asks; anything else not at all."""
    app = build()
    seen: list[str | None] = []

    @app.get("/ctx")
    def ctx() -> dict[str, str]:
        seen.append(get_traceparent())
        return {}

    async with serve(app) as client:
        await client.get("/ctx", headers={"traceparent": sent})
    assert seen == [exposed]


async def test_handler_log_lines_carry_request_id(build: Build) -> None:
    """structlog contextvars put request_id into the handler's own log records."""
    app = build()
    stream = io.StringIO()
    handler_log = structlog.wrap_logger(
        structlog.WriteLogger(stream),
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.JSONRenderer()],
    )

    @app.get("/work")
    async def work() -> dict[str, str]:
        handler_log.info("working")
        return {}

    async with serve(app) as client:
        await client.get("/work", headers={"X-Request-ID": "trace-me"})
    assert records(stream) == [{"request_id": "trace-me", "event": "working"}]


@pytest.mark.parametrize("path", ["/missing", "/boom"])
async def test_id_is_on_error_responses(build: Build, path: str) -> None:
    """404 and 500 responses echo the ID in the header and the problem body."""
    app = build()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    async with serve(app) as client:
        response = await client.get(path, headers={"X-Request-ID": "err-1"})
    assert response.headers["x-request-id"] == "err-1"
    assert problem(response)["request_id"] == "err-1"


async def test_id_is_on_413_and_429(build: Build) -> None:
    """Refusals from the body limit and the rate limiter carry the ID too."""
    # The moving window counts exactly (the default counter rounds at a window edge).
    limits = ServerRateLimitConfig(strategy="moving-window")
    app = build(ServerConfig(max_body_size=4, rate_limit=limits))

    @app.post("/login", dependencies=[Depends(rate_limit("login", "1/minute"))])
    async def login() -> dict[str, str]:
        return {}

    async with serve(app) as client:
        too_big = await client.post("/login", content=b"12345", headers={"X-Request-ID": "big"})
        await client.post("/login", headers={"X-Request-ID": "first"})
        limited = await client.post("/login", headers={"X-Request-ID": "second"})
    assert (too_big.status_code, too_big.headers["x-request-id"]) == (413, "big")
    assert (limited.status_code, limited.headers["x-request-id"]) == (429, "second")


async def test_custom_header_name(build: Build) -> None:
    """request_id_header renames the header read and echoed."""
    app = build(ServerConfig(request_id_header="X-Correlation-ID"))
    async with serve(app) as client:
        response = await client.get("/health", headers={"X-Correlation-ID": "corr"})
    assert response.headers["x-correlation-id"] == "corr"
    assert "x-request-id" not in response.headers


async def test_non_http_scope_passes_through() -> None:
    """Lifespan (and websocket) scopes reach the app untouched."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(str(scope["type"]))

    async def receive() -> Message:
        return {}

    async def send(message: Message) -> None:
        return None

    await RequestIdMiddleware(app)({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]
