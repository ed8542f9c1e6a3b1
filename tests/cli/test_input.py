"""Reading the batch input: line numbers, blank lines, done lines, malformed lines."""

from __future__ import annotations

from pathlib import Path

from flext_api import FlextApiError
from flext_api.cli._checkpoint import DoneLines
from flext_api.cli._input import InputReader, count_lines
from flext_api.client.batch._models import BatchRequest


def test_reader_keeps_line_numbers_and_skips_blank_and_done_lines(tmp_path: Path) -> None:
    """Items come with their line numbers; blank and done lines are not items."""
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"id": 1, "path": "/a"}\n\n{"id": 2, "path": "/b"}\nnope\n{"id": 4, "path": "/d"}'
    )
    done = DoneLines()
    done.add(3)
    reader = InputReader(path, base_url="http://api.test", done=done)
    items = list(reader)
    assert isinstance(items[0], BatchRequest) and isinstance(items[1], FlextApiError)
    assert isinstance(items[2], BatchRequest) and items[2].id == 4
    assert [reader.line_of(i) for i in range(3)] == [1, 4, 5]
    assert (reader.blank, reader.skipped, reader.malformed) == (1, 1, 1)
    assert items[1].details == {"line": 4, "request_id": None}
    assert count_lines(path) == 4
