"""Batch progress snapshots and the ids journal of run_batch."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from flext_api import ErrorCode, HttpRequest, HttpResponse
from flext_api._errors import InvalidRequestError
from flext_api.client.batch._batch import run_batch
from flext_api.client.batch._journal import BatchJournal
from flext_api.client.batch._models import BatchProgress, BatchRequest
from flext_api.testing import FakeClock

from ._helpers import collect, json_response, make_client, other_tasks


async def test_progress_is_throttled_and_ends_with_a_final_snapshot() -> None:
    """Snapshots come at most every progress_interval, plus one at the end."""
    clock = FakeClock(auto_advance=False)

    def slow(request: HttpRequest) -> HttpResponse:
        clock.advance(0.3)
        return json_response(500 if request.url.endswith("/3") else 200)

    snapshots: list[BatchProgress] = []
    items = [BatchRequest(i, f"/{i}") for i in range(10)]
    async with make_client(slow) as client:
        await collect(
            client.batch(
                items, concurrency=1, clock=clock, progress=snapshots.append, progress_interval=1.0
            )
        )
    assert 2 <= len(snapshots) <= 4
    gaps = [b.elapsed - a.elapsed for a, b in itertools.pairwise(snapshots[:-1])]
    assert all(gap >= 1.0 for gap in gaps)
    final = snapshots[-1]
    assert (final.done, final.failed, final.in_flight, final.retries) == (10, 1, 0, 0)
    assert final.elapsed == pytest.approx(3.0)
    assert final.rate == pytest.approx(10 / 3.0)


async def test_progress_callback_error_stops_the_batch() -> None:
    """A progress callback that raises ends the batch with its error, leaving no task."""

    def broken(progress: BatchProgress) -> None:
        raise RuntimeError("display died")

    async with make_client() as client:
        items = [BatchRequest(i, "/x") for i in range(20)]
        with pytest.raises(RuntimeError, match="display died"):
            await collect(client.batch(items, progress=broken, progress_interval=0))
        assert other_tasks() == []


def _write_journal(path: Path, ids: list[object]) -> None:
    path.write_text("".join(json.dumps({"id": i}) + "\n" for i in ids))


def _journal_ids(path: Path) -> list[object]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


async def test_journal_skips_ids_done_before(tmp_path: Path) -> None:
    """Ids in the journal are not sent again and are counted as skipped."""
    journal = tmp_path / "run.journal"
    _write_journal(journal, ["a"])
    snapshots: list[BatchProgress] = []
    items = [BatchRequest("a", "/1"), BatchRequest("b", "/2"), BatchRequest("c", "/3")]
    async with make_client() as client:
        results = await collect(client.batch(items, journal=journal, progress=snapshots.append))
    assert sorted(str(r.request_id) for r in results) == ["b", "c"]
    assert snapshots[-1].skipped == 1
    assert sorted(map(str, _journal_ids(journal))) == ["a", "b", "c"]


async def test_journal_records_a_result_once_the_consumer_took_it(tmp_path: Path) -> None:
    """A result is recorded when the next one is asked for: the one in hand is not."""
    journal = tmp_path / "run.journal"
    async with make_client() as client:
        batch = run_batch(
            client, [BatchRequest(i, "/x") for i in range(10)], journal=str(journal), ordered=True
        )
        await anext(batch)
        await anext(batch)
        await batch.aclose()
    assert _journal_ids(journal) == [0]


async def test_journal_can_store_results(tmp_path: Path) -> None:
    """store_results=True keeps each result next to its id."""
    journal = BatchJournal(tmp_path / "run.journal", store_results=True)
    async with make_client(lambda r: json_response(404)) as client:
        await collect(client.batch([BatchRequest("a", "/x")], journal=journal))
    [record] = [json.loads(line) for line in journal.path.read_text().splitlines()]
    assert record["id"] == "a"
    assert record["result"]["error_code"] == "HTTP_STATUS"


async def test_results_without_an_id_are_not_journaled(tmp_path: Path) -> None:
    """A pre-failed item with no usable id cannot be recorded, and is not."""
    journal = tmp_path / "run.journal"
    async with make_client() as client:
        results = await collect(
            client.batch(
                [InvalidRequestError("line 1: bad"), BatchRequest("b", "/x")], journal=journal
            )
        )
    assert {r.error_code for r in results} == {ErrorCode.INVALID_REQUEST, None}
    assert _journal_ids(journal) == ["b"]


async def test_corrupt_journal_is_reported_on_first_iteration(tmp_path: Path) -> None:
    """A journal that is not one raises ConfigError when the batch starts."""
    journal = tmp_path / "run.journal"
    journal.write_text('{"not": "a journal"}\n')
    async with make_client() as client:
        with pytest.raises(Exception, match="not a batch journal"):
            await collect(client.batch([BatchRequest("a", "/x")], journal=journal))
