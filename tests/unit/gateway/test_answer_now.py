"""``answer_now``: the httptools protocol answers a request without the app's task."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from flext_api.server._protocol import protocol_with_header_timeout
from tests.unit.gateway._recorder import Recorder

pytest.importorskip("httptools")

_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-by: now\r\n\r\nnow"


class _Server:
    """A protocol on a fake transport; the app answers ``app:<path>``, ``answer_now``
    answers ``/now`` with :data:`_OK` (or what ``respond_with`` says)."""

    def __init__(self, answer: Any = None) -> None:
        import uvicorn.server
        from uvicorn.config import Config

        self.app_calls: list[str] = []
        self.offered: list[str] = []
        self.respond_with: tuple[int, list[tuple[bytes, bytes]], bytes] = (
            200,
            [(b"content-length", b"3"), (b"x-by", b"now")],
            b"now",
        )
        config = Config(
            self.app,
            http=protocol_with_header_timeout(
                10.0, parser="httptools", answer_now=answer or self.answer_now
            ),
            lifespan="off",
            interface="asgi3",
            proxy_headers=False,
            log_config=None,
            server_header=False,
            date_header=False,
            access_log=False,
        )
        config.load()
        self.transport = Recorder()
        protocol_class: Any = config.http_protocol_class
        self.protocol: Any = protocol_class(
            config=config,
            server_state=uvicorn.server.ServerState(),
            app_state={},
            _loop=asyncio.get_running_loop(),
        )
        self.protocol.connection_made(self.transport)

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        self.app_calls.append(scope["path"])
        if scope["path"] == "/slow":
            await asyncio.sleep(0.05)
        body = f"app:{scope['path']}".encode()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def answer_now(self, scope: Any, respond: Any) -> bool:
        self.offered.append(scope["path"])
        return scope["path"] == "/now" and bool(respond(*self.respond_with))

    async def settle(self) -> None:
        """Let the app's tasks finish."""
        for _ in range(50):
            await asyncio.sleep(0.01)
            if not self.protocol.tasks:
                return


def _get(path: str, *extra: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: t", *extra, "", ""]
    return "\r\n".join(lines).encode()


async def test_an_answer_now_is_written_whole_without_the_app() -> None:
    """``/now`` is answered in one write during ``data_received``; the app is not called."""
    server = _Server()
    server.protocol.data_received(_get("/now"))
    assert (bytes(server.transport.data), server.app_calls) == (_OK, [])
    assert not server.protocol.tasks and not server.transport.closed
    server.protocol.data_received(_get("/other"))  # the connection goes on
    await server.settle()
    assert server.app_calls == ["/other"]
    assert bytes(server.transport.data).endswith(b"app:/other")


async def test_a_task_after_an_answer_in_the_same_read_runs_without_keep_alive_timer() -> None:
    """A request answered at once arms the keep-alive timer; a slow request behind it in
    the same read must not run under that timer (it would close the connection)."""
    server = _Server()
    server.protocol.data_received(_get("/now") + _get("/slow"))
    assert server.protocol.tasks  # /slow is running
    assert server.protocol.timeout_keep_alive_task is None
    await server.settle()
    assert bytes(server.transport.data) == _OK + (
        b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\napp:/slow"
    )


async def test_pipelined_requests_behind_a_running_one_are_not_offered() -> None:
    """A request queued behind one still running is started by uvicorn once that one
    ends, in order; it is not answered ahead of it."""
    server = _Server()
    server.protocol.data_received(_get("/slow") + _get("/now"))
    await server.settle()
    assert server.offered == ["/slow"]
    assert server.app_calls == ["/slow", "/now"]
    assert bytes(server.transport.data).endswith(b"app:/now")


@pytest.mark.parametrize(
    "request_bytes",
    [
        _get("/now", "Connection: close"),
        b"GET /now HTTP/1.0\r\nHost: t\r\n\r\n",
        b"GET http://t/now HTTP/1.1\r\nHost: t\r\n\r\n",
    ],
    ids=["connection-close", "http-1.0", "absolute-form"],
)
async def test_requests_that_end_the_connection_or_name_a_host_go_to_the_app(
    request_bytes: bytes,
) -> None:
    """Closing requests and absolute-form targets are never offered."""
    server = _Server()
    server.protocol.data_received(request_bytes)
    await server.settle()
    assert (server.offered, server.app_calls) == ([], ["/now"])


async def test_an_answer_the_protocol_cannot_send_goes_to_the_app() -> None:
    """A header line with a CR/LF, or a body longer than its Content-Length: the protocol
    declines it and the app answers."""
    server = _Server()
    server.respond_with = (200, [(b"content-length", b"3"), (b"x-bad", b"a\r\nb")], b"now")
    server.protocol.data_received(_get("/now"))
    server.respond_with = (200, [(b"content-length", b"1")], b"now")
    await server.settle()
    server.protocol.data_received(_get("/now"))
    await server.settle()
    assert server.app_calls == ["/now", "/now"]
    assert b"x-bad" not in server.transport.data


async def test_a_failing_answer_now_is_logged_and_the_app_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception in ``answer_now`` before it answered: logged, then the app answers."""

    def broken(scope: Any, respond: Any) -> bool:
        raise KeyError("boom")

    server = _Server(answer=broken)
    with caplog.at_level(logging.ERROR, logger="uvicorn.error"):
        server.protocol.data_received(_get("/now"))
        await server.settle()
    assert server.app_calls == ["/now"]
    assert any("answer_now" in r.getMessage() for r in caplog.records)


async def test_a_failure_after_the_answer_does_not_answer_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception in ``answer_now`` after it answered: logged, and the app is not run."""

    def answers_then_fails(scope: Any, respond: Any) -> bool:
        respond(200, [(b"content-length", b"3"), (b"x-by", b"now")], b"now")
        raise KeyError("boom")

    server = _Server(answer=answers_then_fails)
    with caplog.at_level(logging.ERROR, logger="uvicorn.error"):
        server.protocol.data_received(_get("/now"))
        await server.settle()
    assert (bytes(server.transport.data), server.app_calls) == (_OK, [])


class _Later:
    """An ``answer_now`` that answers ``/later`` once ``gate`` is set (or declines, or
    raises, as ``outcome`` says); every other path is left to the app."""

    def __init__(self, outcome: str = "answer") -> None:
        self.gate = asyncio.Event()
        self.outcome = outcome
        self.sent: list[bool] = []

    def __call__(self, scope: Any, respond: Any) -> Any:
        if scope["path"] != "/later":
            return False
        return self._answer(respond)

    async def _answer(self, respond: Any) -> bool:
        await self.gate.wait()
        if self.outcome == "raise":
            raise KeyError("boom")
        if self.outcome == "decline":
            return False
        sent = bool(respond(200, [(b"content-length", b"5"), (b"x-by", b"later")], b"later"))
        self.sent.append(sent)
        return sent


_LATER = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-by: later\r\n\r\nlater"


async def test_a_later_answer_holds_the_requests_pipelined_behind_it() -> None:
    """An answer given after an await is written whole; the request pipelined behind it
    is answered after it, by the app, in order."""
    later = _Later()
    server = _Server(answer=later)
    server.protocol.data_received(_get("/later") + _get("/next"))
    await asyncio.sleep(0.02)
    assert (bytes(server.transport.data), server.app_calls) == (b"", [])
    later.gate.set()
    await server.settle()
    assert server.app_calls == ["/next"]
    assert bytes(server.transport.data) == _LATER + (
        b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\napp:/next"
    )
    assert not server.transport.closed


@pytest.mark.parametrize("outcome", ["decline", "raise"])
async def test_a_later_answer_that_declines_or_fails_leaves_the_request_to_the_app(
    outcome: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Declined (or raising) after its await: the app answers the request."""
    later = _Later(outcome)
    server = _Server(answer=later)
    with caplog.at_level(logging.ERROR, logger="uvicorn.error"):
        server.protocol.data_received(_get("/later"))
        later.gate.set()
        await server.settle()
    assert server.app_calls == ["/later"]
    assert bytes(server.transport.data).endswith(b"app:/later")
    logged = any("answer_now" in r.getMessage() for r in caplog.records)
    assert logged == (outcome == "raise")


async def test_a_later_answer_to_a_client_that_left_is_not_written() -> None:
    """The client went away while the answer was awaited: ``respond`` says it cannot
    send, and nothing is written."""
    later = _Later()
    server = _Server(answer=later)
    server.protocol.data_received(_get("/later"))
    server.protocol.connection_lost(None)
    later.gate.set()
    await server.settle()
    assert later.sent == [False]
    assert bytes(server.transport.data) == b""


async def test_a_later_answer_met_by_a_shutdown_closes_the_connection() -> None:
    """A graceful shutdown while the answer is awaited: the answer says
    ``connection: close`` and the connection is closed after it."""
    later = _Later()
    server = _Server(answer=later)
    server.protocol.data_received(_get("/later"))
    server.protocol.shutdown()
    assert not server.transport.closed  # the request in flight is answered first
    later.gate.set()
    await server.settle()
    assert bytes(server.transport.data) == _LATER.replace(
        b"x-by: later\r\n", b"x-by: later\r\nconnection: close\r\n"
    )
    assert server.transport.closed
