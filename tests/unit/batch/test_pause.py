"""The circuit-open pause rule: a host whose breaker is open is paused, not failed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from flext_api import ErrorCode, FlextResult, HttpRequest, HttpResponse
from flext_api._errors import CircuitOpenError
from flext_api.client._plugin import CallNext
from flext_api.client.batch._batch import run_batch
from flext_api.client.batch._models import BatchProgress, BatchRequest, BatchResult
from flext_api.testing import FakeClock

from ._helpers import collect, make_client, ok_handler, other_tasks


class FakeBreaker:
    """Refuses requests to the hosts in ``open_until`` until the clock reaches that time.

    ``hints`` are the ``retry_after`` values given, one per refusal (the last repeats);
    None gives no hint.
    """

    def __init__(self, clock: FakeClock, hints: list[float | None]) -> None:
        self.clock = clock
        self.hints = hints
        self.open_until: dict[str, float] = {}
        self.refusals = 0

    def middleware(self) -> Any:
        async def fake_breaker(
            request: HttpRequest, call_next: CallNext
        ) -> FlextResult[HttpResponse]:
            await asyncio.sleep(0)  # let concurrent requests in before deciding
            until = self.open_until.get(request.host)
            if until is not None and self.clock.monotonic() < until:
                hint = self.hints[min(self.refusals, len(self.hints) - 1)]
                self.refusals += 1
                return FlextResult.fail(CircuitOpenError("open", retry_after=hint))
            return await call_next(request)

        return fake_breaker


def _items(n: int, host: str = "svc") -> Iterator[BatchRequest]:
    return (BatchRequest(f"{host}-{i}", f"http://{host}/item/{i}") for i in range(n))


async def test_open_circuit_pauses_the_host_then_runs_its_items() -> None:
    """Items refused while the breaker is open run again after retry_after, and succeed."""
    clock = FakeClock()
    breaker = FakeBreaker(clock, [10.0])
    breaker.open_until["svc"] = clock.monotonic() + 10
    async with make_client(ok_handler, breaker.middleware()) as client:
        results = await collect(client.batch(_items(5), concurrency=2, clock=clock))
    assert all(r.success for r in results)
    assert len(results) == 5
    assert 10.0 in clock.sleeps
    refused_then_ok = next(r for r in results if r.request_id == "svc-0")
    assert refused_then_ok.attempts == 1


async def test_a_batch_pauses_on_its_clients_clock_by_default() -> None:
    """Without clock=, a batch waits out retry_after on the client's one clock."""
    clock = FakeClock()
    breaker = FakeBreaker(clock, [10.0])
    breaker.open_until["svc"] = clock.monotonic() + 10
    async with make_client(ok_handler, breaker.middleware(), clock=clock) as client:
        results = await collect(client.batch(_items(2), concurrency=1))
    assert all(r.success for r in results)
    assert 10.0 in clock.sleeps


async def test_wait_longer_than_max_pause_fails_fast() -> None:
    """A retry_after beyond max_pause is not waited for: CIRCUIT_OPEN is final."""
    clock = FakeClock()
    breaker = FakeBreaker(clock, [200.0])
    breaker.open_until["svc"] = clock.monotonic() + 200
    async with make_client(ok_handler, breaker.middleware()) as client:
        results = await collect(client.batch(_items(3), max_pause=120, clock=clock))
    assert [r.error_code for r in results] == [ErrorCode.CIRCUIT_OPEN] * 3
    assert clock.sleeps == []


async def test_pauses_of_a_host_add_up_to_max_pause() -> None:
    """Repeated pauses stop once their total would pass max_pause; then failures are final."""
    clock = FakeClock()
    breaker = FakeBreaker(clock, [50.0])
    breaker.open_until["svc"] = clock.monotonic() + 10_000
    async with make_client(ok_handler, breaker.middleware()) as client:
        results = await collect(client.batch(_items(4), concurrency=1, max_pause=120, clock=clock))
    assert clock.sleeps == [50.0, 50.0]
    assert [r.error_code for r in results] == [ErrorCode.CIRCUIT_OPEN] * 4


async def test_max_pause_zero_turns_pausing_off() -> None:
    """max_pause=0: an open circuit fails the item at once."""
    clock = FakeClock()
    breaker = FakeBreaker(clock, [1.0])
    breaker.open_until["svc"] = clock.monotonic() + 1
    async with make_client(ok_handler, breaker.middleware()) as client:
        [result] = await collect(client.batch(_items(1), max_pause=0, clock=clock))
    assert result.error_code is ErrorCode.CIRCUIT_OPEN
    assert (result.attempts, clock.sleeps) == (0, [])


async def test_open_circuit_without_hint_pauses_half_a_second() -> None:
    """No retry_after (half-open, trials busy): the host pauses 0.5 s."""
    clock = FakeClock()
    breaker = FakeBreaker(clock, [None])
    breaker.open_until["svc"] = clock.monotonic() + 0.4
    async with make_client(ok_handler, breaker.middleware()) as client:
        [result] = await collect(client.batch(_items(1), clock=clock))
    assert result.success
    assert clock.sleeps == [0.5]


async def test_other_hosts_keep_going_while_one_is_paused() -> None:
    """A paused host holds back only its own items; progress shows it paused."""
    clock = FakeClock(auto_advance=False)
    breaker = FakeBreaker(clock, [5.0])
    breaker.open_until["a"] = clock.monotonic() + 5
    snapshots: list[BatchProgress] = []
    items = [*_items(1, "a"), *_items(3, "b")]
    async with make_client(ok_handler, breaker.middleware()) as client:
        batch = run_batch(
            client,
            items,
            concurrency=2,
            clock=clock,
            progress=snapshots.append,
            progress_interval=0,
        )
        first = [await anext(batch) for _ in range(3)]
        assert {r.request_id for r in first} == {"b-0", "b-1", "b-2"}
        assert snapshots[-1].paused_hosts == 1
        clock.advance(5)
        last = await anext(batch)
        assert (last.request_id, last.success) == ("a-0", True)
        assert await collect(batch) == []
    assert snapshots[-1].paused_hosts == 0


async def test_a_longer_pause_replaces_a_shorter_one() -> None:
    """When a host's pause is extended, the earlier, shorter timer does not end it."""
    clock = FakeClock(auto_advance=False)
    breaker = FakeBreaker(clock, [5.0, 10.0])
    breaker.open_until["svc"] = clock.monotonic() + 10
    async with make_client(ok_handler, breaker.middleware()) as client:
        task = asyncio.ensure_future(collect(client.batch(_items(2), concurrency=2, clock=clock)))
        for _ in range(20):
            await asyncio.sleep(0)
        assert breaker.refusals == 2
        clock.advance(5)
        for _ in range(20):
            await asyncio.sleep(0)
        assert breaker.refusals == 2 and not task.done()
        clock.advance(5)
        results: list[BatchResult] = await task
    assert all(r.success for r in results)


async def test_stopping_during_a_pause_cancels_the_timer() -> None:
    """Closing a batch while a host is paused leaves no timer task behind."""
    clock = FakeClock(auto_advance=False)
    breaker = FakeBreaker(clock, [30.0])
    breaker.open_until["a"] = clock.monotonic() + 30
    async with make_client(ok_handler, breaker.middleware()) as client:
        batch = run_batch(client, [*_items(1, "a"), *_items(1, "b")], concurrency=2, clock=clock)
        assert (await anext(batch)).request_id == "b-0"
        await batch.aclose()
        assert other_tasks() == []
