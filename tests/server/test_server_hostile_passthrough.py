"""Which BaseExceptions the error handling of the stack answers, and which it passes on."""

from __future__ import annotations

import asyncio

import pytest

from flext_api.server.middleware._errors import passes_through


class _Halt(BaseException):
    """A library's own control-flow exception, not an ``Exception``."""


@pytest.mark.parametrize(
    "exc",
    [
        asyncio.CancelledError(),
        KeyboardInterrupt(),
        SystemExit(0),
        GeneratorExit(),
        BaseExceptionGroup("g", [asyncio.CancelledError()]),
    ],
)
async def test_cancellation_and_exits_pass_through_unanswered(exc: BaseException) -> None:
    """Cancellation, exits and a group holding one are never answered as a 500."""
    assert passes_through(exc)


async def test_an_ordinary_base_exception_does_not_pass_through() -> None:
    """A library's own BaseException (and an Exception) is answered, not passed on."""
    assert not passes_through(_Halt())
    assert not passes_through(RuntimeError())
