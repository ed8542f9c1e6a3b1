"""``FlextApiSyncClient.close()`` leaves no caller waiting and no call untyped.

Work handed to the private loop that never finished when the loop stopped (a call racing
``close()`` from another thread) left its caller blocked for ever; a blocking iterator
(``batch``, ``paginate``) used after ``close()`` raised ``RuntimeError: Event loop is
closed`` and warned of a coroutine never awaited. Both now end with the typed
``INVALID_REQUEST`` "client is closed", as ``request()`` after ``close()`` does.
"""

from __future__ import annotations

import asyncio
import threading
import warnings

import pytest

from flext_api import ErrorCode, FlextApiError
from flext_api._models import HttpResponse
from flext_api.client import FlextApiSyncClient
from flext_api.transports import MockTransport


def _client() -> FlextApiSyncClient:
    return FlextApiSyncClient(
        "http://127.0.0.1:9", transport=MockTransport(lambda request: HttpResponse(200))
    )


def test_a_call_still_on_the_loop_when_it_stops_fails_instead_of_hanging() -> None:
    client = _client()
    started = threading.Event()
    outcome: list[BaseException | object] = []

    async def never_ends() -> None:
        started.set()
        await asyncio.Event().wait()

    def call() -> None:
        try:
            outcome.append(client._run(never_ends()))
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    assert started.wait(30)
    client.close()
    caller.join(30)  # a hang guard only: the caller is woken by close()
    assert not caller.is_alive()
    assert len(outcome) == 1
    error = outcome[0]
    assert isinstance(error, FlextApiError)
    assert error.code is ErrorCode.INVALID_REQUEST
    assert "closed" in str(error)


@pytest.mark.parametrize("face", ["batch", "paginate", "request"])
def test_every_face_after_close_is_a_typed_failure(face: str) -> None:
    client = _client()
    client.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine ... was never awaited"
        if face == "request":
            result = client.get("/x")
            assert result.error_code is ErrorCode.INVALID_REQUEST
            return
        face_iter = client.batch(["/x"]) if face == "batch" else client.paginate("/x")
        with pytest.raises(FlextApiError) as caught:
            list(face_iter)
    assert caught.value.code is ErrorCode.INVALID_REQUEST


def test_close_is_idempotent_and_joins_the_loop_thread() -> None:
    client = _client()
    assert client.get("/x").is_success
    client.close()
    client.close()
    assert not client._thread.is_alive()
    assert client._loop.is_closed()


async def test_close_works_where_the_calling_thread_runs_a_loop() -> None:
    """Inside async code or a notebook (a loop running in the calling thread), close()
    raised ``RuntimeError: Cannot run the event loop while another loop is running``:
    it finished the private loop in the caller's thread. It finishes it in its own."""
    with _client() as client:
        assert client.get("/x").is_success
    assert not client._thread.is_alive()
    assert client._loop.is_closed()
