"""HeldHeadTransport: a response head leaves with the body's first write, never later."""

from __future__ import annotations

import asyncio
from typing import Any

from flext_api.server._protocol import HeldHeadTransport


class _Recorder:
    """Records writes the way a socket transport would receive them."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, parts: Any) -> None:
        self.writes.append(b"".join(parts))

    def close(self) -> None:
        self.closed = True


def _held() -> tuple[HeldHeadTransport, _Recorder]:
    recorder = _Recorder()
    return HeldHeadTransport(recorder, asyncio.get_running_loop()), recorder  # type: ignore[arg-type]


async def test_head_and_body_leave_in_one_write() -> None:
    """A head followed by a body in the same step is one write."""
    held, recorder = _held()
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    held.write(b"body")
    held.write(b"more")
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"more"]


async def test_lone_head_is_written_at_the_next_iteration() -> None:
    """A head with no body yet (a stream) is written at the next loop iteration."""
    held, recorder = _held()
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert recorder.writes == []
    await asyncio.sleep(0)
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\n\r\n"]


async def test_interim_answer_is_not_held() -> None:
    """A 100 Continue is written at once."""
    held, recorder = _held()
    held.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert recorder.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


async def test_other_calls_flush_the_head_first() -> None:
    """Closing (any other transport call) writes a held head before it."""
    held, recorder = _held()
    held.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    held.close()
    assert (recorder.writes, recorder.closed) == ([b"HTTP/1.1 204 No Content\r\n\r\n"], True)
