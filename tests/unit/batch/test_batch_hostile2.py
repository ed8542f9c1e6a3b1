"""Batch inputs and callbacks that used to lose a result, crash the journal or be taken
without a word: a raising progress callback, ids and data past 64 bits in the journal,
data JSON cannot hold, a shared idempotency key, non-int sizes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from flext_api import ErrorCode, HttpRequest, HttpResponse
from flext_api._errors import ConfigError
from flext_api.client.batch._batch import run_batch
from flext_api.client.batch._journal import BatchJournal
from flext_api.client.batch._models import BatchProgress, BatchRequest, BatchResult
from flext_api.client.batch._processor import BatchProcessor

from ._helpers import collect, json_response, make_client, other_tasks

BIG = 123456789012345678901234567890  # past 64 bits: orjson refuses to write it


async def _take_into(batch: AsyncIterator[BatchResult], into: list[BatchResult]) -> None:
    """Take results into ``into`` (kept when the batch raises)."""
    async for result in batch:
        into.append(result)


async def test_a_raising_progress_callback_does_not_take_a_result_with_it(
    tmp_path: Path,
) -> None:
    """Before: the callback ran before the result was handed out, so its error lost that
    result (never yielded, never journaled). After: the result is delivered and
    journaled first, then the callback's error ends the batch."""

    def broken(progress: BatchProgress) -> None:
        raise RuntimeError("display died")

    journal = tmp_path / "run.journal"
    got: list[BatchResult] = []
    async with make_client() as client:
        items = [BatchRequest(i, f"/x/{i}") for i in range(5)]
        batch = client.batch(
            items, concurrency=1, progress=broken, progress_interval=0, journal=journal
        )
        with pytest.raises(RuntimeError, match="display died"):
            await _take_into(batch, got)
        assert other_tasks() == []
    assert [r.request_id for r in got] == [0]
    assert journal.read_text() == '{"id":0}\n'


async def test_progress_is_reported_once_each_result_is_taken() -> None:
    """With interval 0 a snapshot follows each handed-out result (then a final one):
    when the callback runs, the consumer already holds that result."""
    taken: list[BatchResult] = []
    taken_at_report: list[int] = []
    snapshots: list[BatchProgress] = []

    def report(progress: BatchProgress) -> None:
        taken_at_report.append(len(taken))
        snapshots.append(progress)

    async with make_client() as client:
        items = [BatchRequest(i, f"/x/{i}") for i in range(4)]
        async for result in client.batch(
            items, concurrency=1, progress=report, progress_interval=0
        ):
            taken.append(result)
    assert taken_at_report == [1, 2, 3, 4, 4]
    assert (snapshots[-1].done, snapshots[-1].in_flight) == (4, 0)


async def test_a_journal_keeps_ids_past_64_bits(tmp_path: Path) -> None:
    """Before: recording the id raised TypeError (orjson), ending the batch. After: it is
    written exactly, and a re-run skips it."""
    journal = tmp_path / "run.journal"
    async with make_client() as client:
        first = await collect(client.batch([BatchRequest(BIG, "/big")], journal=journal))
        again = await collect(
            client.batch([BatchRequest(BIG, "/big"), BatchRequest(1, "/one")], journal=journal)
        )
    assert [r.request_id for r in first] == [BIG]
    assert journal.read_text() == f'{{"id":{BIG}}}\n{{"id":1}}\n'
    assert [r.request_id for r in again] == [1]


def test_a_journal_written_elsewhere_with_a_big_id_is_read_exactly(tmp_path: Path) -> None:
    """Before: the id was read as a float and the file refused as "not a batch journal".
    After: the id is the int that was written."""
    path = tmp_path / "run.journal"
    path.write_text(f'{{"id": {BIG}}}\n')
    with BatchJournal(path) as journal:
        assert BIG in journal
        assert journal.done == frozenset({BIG})


async def test_stored_results_keep_numbers_past_64_bits(tmp_path: Path) -> None:
    """Before: store_results=True raised TypeError on a body holding a big number (which
    the batch decodes exactly). After: the journal holds the number exactly."""
    body = b'{"amount": ' + str(BIG).encode() + b"}"
    journal = BatchJournal(tmp_path / "run.journal", store_results=True)
    async with make_client(lambda request: json_response(body=body)) as client:
        [result] = await collect(client.batch([BatchRequest("pay-1", "/pay")], journal=journal))
    assert result.data == {"amount": BIG}
    line = journal.path.read_text()
    assert f'"data":{{"amount":{BIG}}}' in line
    assert line.startswith('{"id":"pay-1","result":{')


async def test_a_result_json_cannot_hold_is_a_config_error_after_delivery(
    tmp_path: Path,
) -> None:
    """Before: a decode= returning a set made store_results raise a bare TypeError.
    After: a ConfigError naming the id and the way out; the result was delivered first
    and nothing half-written is left in the journal."""
    journal = BatchJournal(tmp_path / "run.journal", store_results=True)
    got: list[BatchResult] = []
    async with make_client() as client:
        batch = client.batch(
            [BatchRequest("a", "/a"), BatchRequest("b", "/b")],
            concurrency=1,
            journal=journal,
            decode=lambda response: {1, 2},
        )
        with pytest.raises(ConfigError, match=r"result of 'a' cannot be stored as JSON") as info:
            await _take_into(batch, got)
    assert [r.data for r in got] == [{1, 2}]
    assert info.value.code is ErrorCode.CONFIG_ERROR
    assert "store_results=False" in info.value.message
    assert journal.path.read_text() == ""


async def test_one_idempotency_key_for_every_item_is_refused() -> None:
    """Before: every item was sent with the same Idempotency-Key, so a server honouring
    it answers all with the first item's response. After: ValueError at once."""
    async with make_client() as client:
        with pytest.raises(ValueError, match="idempotency_key=True"):
            client.batch([BatchRequest(1, "/a")], request_options={"idempotency_key": "k"})


async def test_a_key_per_item_still_works() -> None:
    """An Idempotency-Key header per item is sent as given."""
    keys: list[str | None] = []

    def handler(request: HttpRequest) -> HttpResponse:
        keys.append(request.headers.get("idempotency-key"))
        return json_response()

    items = [
        BatchRequest(i, "/pay", method="POST", headers={"Idempotency-Key": f"k-{i}"})
        for i in range(3)
    ]
    async with make_client(handler) as client:
        results = await collect(client.batch(items, concurrency=1))
    assert all(r.success for r in results), results
    assert keys == ["k-0", "k-1", "k-2"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency": 2.5}, "concurrency must be >= 1 (an int), got 2.5"),
        ({"concurrency": True}, "concurrency must be >= 1 (an int), got True"),
        ({"concurrency": "8"}, "concurrency must be >= 1 (an int), got '8'"),
        ({"buffer": 1.5}, "buffer must be >= 1 (an int), got 1.5"),
    ],
)
async def test_sizes_must_be_ints_and_are_checked_at_once(
    options: dict[str, Any], message: str
) -> None:
    """Before: concurrency=2.5 was accepted, then failed with "'float' object cannot be
    interpreted as an integer" once iterated. After: ValueError when the batch is made."""
    async with make_client() as client:
        with pytest.raises(ValueError, match=re.escape(message)):
            run_batch(client, [BatchRequest(1, "/a")], **options)


def test_processor_max_concurrent_must_be_an_int() -> None:
    """BatchProcessor(max_concurrent=2.5) is refused when made, not at process_batch."""
    with pytest.raises(ValueError, match=r"max_concurrent must be >= 1 \(an int\), got 2.5"):
        BatchProcessor("http://svc", max_concurrent=2.5)  # type: ignore[arg-type]
