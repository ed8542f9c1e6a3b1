"""process_batch's progress callback: the shape is read from the positional arguments the
callback needs - two is the guide's ``(completed, total)``, anything else a
``BatchProgress`` snapshot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest.mock import Mock

import pytest

from flext_api.client.batch._compat import takes_counts
from flext_api.client.batch._models import BatchProgress, BatchRequest
from flext_api.client.batch._processor import BatchProcessor
from tests.servers.httpbin_server import HttpbinServer


def progress_only(progress: BatchProgress) -> None:
    """The modern shape."""


def progress_and_option(progress: BatchProgress, verbose: bool = False) -> None:
    """The modern shape with an optional flag."""


def all_optional(progress: BatchProgress | None = None, verbose: bool = False) -> None:
    """Nothing required: the modern shape."""


def star_args(*args: Any) -> None:
    """Nothing required: the modern shape."""


def one_then_star_args(progress: BatchProgress, *args: Any) -> None:
    """One required (as logger.info's msg): the modern shape."""


def counts(completed: int, total: int) -> None:
    """The FLEXT guide's shape."""


def counts_and_option(completed: int, total: int, label: str = "") -> None:
    """The guide's shape with an optional extra."""


def counts_then_star_args(completed: int, total: int, *extra: Any) -> None:
    """The guide's shape with a *args."""


def counts_positional_only(completed: int, total: int, /) -> None:
    """The guide's shape, positional-only."""


class Printer:
    def counts(self, completed: int, total: int) -> None:
        """A bound method: ``self`` is not an argument the batch passes."""

    def __call__(self, progress: BatchProgress) -> None:
        """A callable object taking a snapshot."""


@pytest.mark.parametrize(
    "callback",
    [progress_only, progress_and_option, all_optional, star_args, one_then_star_args, Printer()],
)
def test_a_callback_not_needing_two_arguments_takes_snapshots(callback: Callable[..., Any]) -> None:
    """A callback needing one positional argument, or none, gets BatchProgress snapshots."""
    assert not takes_counts(callback)


@pytest.mark.parametrize(
    "callback",
    [counts, counts_and_option, counts_then_star_args, counts_positional_only, Printer().counts],
)
def test_a_callback_needing_two_arguments_takes_counts(callback: Callable[..., Any]) -> None:
    """A callback needing exactly two positional arguments gets (completed, total)."""
    assert takes_counts(callback)


def test_a_mock_takes_snapshots() -> None:
    """A Mock, whose signature is (*args, **kwargs), gets BatchProgress snapshots."""
    assert not takes_counts(Mock())


def _requests(n: int) -> list[BatchRequest]:
    return [BatchRequest(f"r{i}", "/get", params={"i": i}) for i in range(n)]


@pytest.mark.integration
async def test_a_callback_with_an_optional_flag_gets_snapshots(
    httpbin_server: HttpbinServer,
) -> None:
    """def cb(progress, verbose=False) is called with BatchProgress, not (completed, total)."""
    calls: list[tuple[Any, bool]] = []

    def on_progress(progress: BatchProgress, verbose: bool = False) -> None:
        calls.append((progress, verbose))

    async with BatchProcessor(httpbin_server.url, default_plugins=False) as processor:
        results = await processor.process_batch(_requests(3), on_progress)
    assert all(r.success for r in results)
    assert calls, "the callback was not called"
    assert all(isinstance(p, BatchProgress) and v is False for p, v in calls)
    assert calls[-1][0].done == 3


@pytest.mark.integration
async def test_the_guides_callback_gets_one_call_per_finished_request(
    httpbin_server: HttpbinServer,
) -> None:
    """def cb(completed, total) is called (1, n) ... (n, n), once per finished request."""
    calls: list[tuple[int, int]] = []

    def progress_callback(completed: int, total: int) -> None:
        calls.append((completed, total))

    async with BatchProcessor(httpbin_server.url, default_plugins=False) as processor:
        results = await processor.process_batch(_requests(3), progress_callback)
    assert all(r.success for r in results)
    assert calls == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.integration
async def test_a_snapshot_callback_gets_snapshots(httpbin_server: HttpbinServer) -> None:
    """def cb(progress) is called with BatchProgress snapshots, the last one complete."""
    snapshots: list[BatchProgress] = []

    def on_progress(progress: BatchProgress) -> None:
        snapshots.append(progress)

    async with BatchProcessor(httpbin_server.url, default_plugins=False) as processor:
        await processor.process_batch(_requests(2), progress_callback=on_progress)
    assert snapshots and all(isinstance(s, BatchProgress) for s in snapshots)
    assert (snapshots[-1].done, snapshots[-1].failed) == (2, 0)


@pytest.mark.integration
async def test_a_star_args_callback_gets_snapshots(httpbin_server: HttpbinServer) -> None:
    """def cb(*args) is called with one BatchProgress per call."""
    calls: list[tuple[Any, ...]] = []

    def on_progress(*args: Any) -> None:
        calls.append(args)

    async with BatchProcessor(httpbin_server.url, default_plugins=False) as processor:
        await processor.process_batch(_requests(2), progress_callback=on_progress)
    assert calls and all(len(a) == 1 and isinstance(a[0], BatchProgress) for a in calls)
    assert calls[-1][0].done == 2
