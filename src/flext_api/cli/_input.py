"""Reading the batch command's input: JSON lines to batch items, line numbers kept.

Each non-blank line becomes a :class:`BatchRequest`; a line that is not a JSON object
with the right fields, or whose ``path`` (joined to the base URL, with its ``params``) is
a URL the client would refuse, becomes an :class:`InvalidRequestError` item (message
prefixed ``line N:``), which the batch turns into a failed result: malformed lines are
reported and written to the output, never dropped. Blank lines are not requests and are
skipped.

Lines done in an earlier run (resuming) are not sent again, but with ``check_duplicates``
their ids are still read: a later line repeating one of them fails as a duplicate, as it
does in a run that was never interrupted (the batch only knows the ids it is sent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import orjson

from .._errors import ConfigError, FlextApiError, InvalidRequestError
from ..client._request import build_url, normalize_base_url
from ..client.batch._models import BatchId, BatchRequest, duplicate_id_error, valid_id
from ._checkpoint import DoneLines
from ._options import NO_REGISTRY

__all__ = ["InputReader", "count_lines"]

_BOM = b"\xef\xbb\xbf"


def count_lines(path: Path) -> int:
    """Non-blank lines in ``path`` (what the reader will turn into items)."""
    with path.open("rb") as fh:
        return sum(1 for line in fh if not line.isspace())


class InputReader:
    """Iterates the items of a JSONL file, skipping ``done`` lines; see the module doc.

    ``base_url`` is the client's (a checked ``--base-url``, or None): the paths are
    joined to it as the client will. ``line_of(index)`` gives the line number of the
    ``index``-th item yielded (the batch's ``BatchResult.index``) and forgets it, so the
    map stays as small as the batch's buffer.
    """

    def __init__(
        self,
        path: Path,
        *,
        base_url: str | None = None,
        done: DoneLines | None = None,
        on_malformed: Callable[[int, str], None] | None = None,
        check_duplicates: bool = False,
    ) -> None:
        self.path = path
        self._base_url = normalize_base_url(base_url)
        self._done = done if done is not None else DoneLines()
        self._on_malformed = on_malformed
        # The ids of the lines done before (only when there are some to check against).
        self._done_ids: set[BatchId] | None = set() if check_duplicates else None
        self._lines: dict[int, int] = {}
        self._count = 0
        self.malformed = 0
        self.blank = 0
        self.skipped = 0

    def __iter__(self) -> Iterator[BatchRequest | FlextApiError]:
        try:
            yield from self._items()
        except OSError as exc:
            raise ConfigError(f"cannot read {str(self.path)!r}: {exc.strerror}") from exc

    def _items(self) -> Iterator[BatchRequest | FlextApiError]:
        done = self._done
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if number == 1 and raw.startswith(_BOM):
                    # Some editors start a UTF-8 file with a byte order mark.
                    raw = raw[len(_BOM) :]
                if done.count and number in done:
                    self.skipped += 1
                    self._remember_done(raw)
                    continue
                if raw.isspace():
                    self.blank += 1
                    continue
                item = self._parse(raw, number)
                if self._done_ids and isinstance(item, BatchRequest):
                    item = self._unless_done_before(item)
                self._lines[self._count] = number
                self._count += 1
                yield item

    def _remember_done(self, raw: bytes) -> None:
        if self._done_ids is None:
            return
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        request_id = data.get("id") if isinstance(data, dict) else None
        if valid_id(request_id):
            self._done_ids.add(cast("BatchId", request_id))

    def _unless_done_before(self, item: BatchRequest) -> BatchRequest | FlextApiError:
        """``item``, or the batch's duplicate failure when a line done before had its id."""
        assert self._done_ids is not None
        if item.id not in self._done_ids:
            return item
        return duplicate_id_error(item.id)

    def _parse(self, raw: bytes, number: int) -> BatchRequest | FlextApiError:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return self._malformed(number, f"invalid JSON ({exc})", None)
        if not isinstance(data, dict):
            return self._malformed(
                number, f"expected a JSON object, got {type(data).__name__}", None
            )
        try:
            request = BatchRequest.from_dict(data)
        except InvalidRequestError as exc:
            return self._malformed(number, exc.message, exc.details.get("request_id"))
        # The client's own URL check, so a URL it would refuse ("http://[::1", a port
        # above 65535, CR/LF, a relative path without --base-url) is a malformed line
        # with its number, not a failure found only when the line's turn comes.
        try:
            url = build_url(self._base_url, request.path, request.params)
        except InvalidRequestError as exc:
            return self._malformed(number, exc.message, request.id)
        if url.startswith("service://"):
            return self._malformed(number, NO_REGISTRY, request.id)
        return request

    def _malformed(self, number: int, reason: str, request_id: object) -> FlextApiError:
        self.malformed += 1
        if self._on_malformed is not None:
            self._on_malformed(number, reason)
        return InvalidRequestError(
            f"line {number}: {reason}", details={"line": number, "request_id": request_id}
        )

    def line_of(self, index: int) -> int:
        """The line number of item ``index`` (each index can be asked once)."""
        return self._lines.pop(index)
