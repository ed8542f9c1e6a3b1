"""The batch command's checkpointed output: what survives a crash, what a resume skips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flext_api._errors import ConfigError
from flext_api.cli._checkpoint import CheckpointedOutput, DoneLines
from flext_api.testing import FakeClock


@pytest.fixture
def input_path(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(f'{{"id": {i}, "path": "/x"}}\n' for i in range(10)))
    return path


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run(out: CheckpointedOutput, lines: list[int], *, close: bool = True) -> None:
    for line in lines:
        out.write({"id": line - 1, "line": line}, line)
    if close:
        out.close()


def _die(out: CheckpointedOutput) -> None:
    """Close the files as a killed process would: no last checkpoint, no fsync."""
    os.close(out._require_fd())
    out._fd = None
    if out._journal is not None:
        os.close(out._journal._require_fd())
        out._journal._fd = None


def test_done_lines_bitmap() -> None:
    """DoneLines is a set of line numbers counting each once."""
    done = DoneLines()
    for line in (3, 3, 1000, 8):
        done.add(line)
    assert (len(done), 3 in done, 4 in done, 1000 in done, 99999 in done) == (
        3,
        True,
        False,
        True,
        False,
    )
    assert "3" not in done


def test_without_journal_output_is_replaced_and_written(tmp_path: Path, input_path: Path) -> None:
    """No journal: the output is truncated at open and holds every line at close."""
    output = tmp_path / "out.jsonl"
    output.write_text("old\n")
    out = CheckpointedOutput(output, None, input_path=input_path)
    state = out.open()
    assert not state.resumed
    _run(out, [1, 2, 3])
    assert [r["line"] for r in _records(output)] == [1, 2, 3]
    out.close()  # idempotent


def test_checkpoints_every_n_results(tmp_path: Path, input_path: Path) -> None:
    """Lines reach the output in checkpoints of `every` results, each journaled."""
    output, journal = tmp_path / "out.jsonl", tmp_path / "j.journal"
    out = CheckpointedOutput(output, journal, input_path=input_path, every=2, interval=60)
    out.open()
    _run(out, [1, 2, 3], close=False)
    assert len(_records(output)) == 2
    header, opened, first = _records(journal)
    assert header["input_size"] == input_path.stat().st_size
    assert opened == {"output": str(output.resolve()), "offset": 0, "lines": []}
    assert first == {
        "output": str(output.resolve()),
        "offset": output.stat().st_size,
        "lines": [1, 2],
    }
    out.close()
    assert len(_records(output)) == 3


def test_checkpoint_after_the_interval(tmp_path: Path, input_path: Path) -> None:
    """A result written `interval` seconds after the last checkpoint triggers one."""
    clock = FakeClock()
    output = tmp_path / "out.jsonl"
    out = CheckpointedOutput(
        output, tmp_path / "j", input_path=input_path, every=100, interval=1.0, clock=clock
    )
    out.open()
    _run(out, [1], close=False)
    assert output.read_text() == ""
    clock.advance(1.0)
    _run(out, [2], close=False)
    assert len(_records(output)) == 2
    out.close()


def test_resume_skips_done_lines_and_cuts_the_unjournaled_tail(
    tmp_path: Path, input_path: Path
) -> None:
    """After a crash, resume skips journaled lines and drops output written after them."""
    first, journal = tmp_path / "out1.jsonl", tmp_path / "j.journal"
    crashed = CheckpointedOutput(first, journal, input_path=input_path, every=2, interval=60)
    crashed.open()
    _run(crashed, [1, 2, 3, 4], close=False)
    _die(crashed)
    # The crash: lines 5-6 reached the output (and a torn line) but no checkpoint.
    with first.open("a") as fh:
        fh.write('{"id": 4, "line": 5}\n{"id": 5, "li')
    second = tmp_path / "out2.jsonl"
    resumed = CheckpointedOutput(second, journal, input_path=input_path)
    state = resumed.open()
    assert state.resumed
    assert [line for line in range(1, 11) if line in state.done] == [1, 2, 3, 4]
    assert state.dropped_bytes == len('{"id": 4, "line": 5}\n{"id": 5, "li')
    assert [r["line"] for r in _records(first)] == [1, 2, 3, 4]
    _run(resumed, [5, 6, 7, 8, 9, 10])
    lines = [int(str(r["line"])) for r in _records(first) + _records(second)]
    assert sorted(lines) == list(range(1, 11))


def test_resume_into_the_same_output_appends(tmp_path: Path, input_path: Path) -> None:
    """Resuming with the same -o appends after the checkpointed part."""
    output, journal = tmp_path / "out.jsonl", tmp_path / "j.journal"
    crashed = CheckpointedOutput(output, journal, input_path=input_path, every=1)
    crashed.open()
    _run(crashed, [1, 2], close=False)
    _die(crashed)
    resumed = CheckpointedOutput(output, journal, input_path=input_path)
    state = resumed.open()
    assert len(state.done) == 2 and state.dropped_bytes == 0
    _run(resumed, [3])
    assert [r["line"] for r in _records(output)] == [1, 2, 3]


def test_crash_before_the_first_checkpoint_cuts_everything(
    tmp_path: Path, input_path: Path
) -> None:
    """An output named in the journal but never checkpointed is cut back to empty."""
    first, journal = tmp_path / "out1.jsonl", tmp_path / "j.journal"
    crashed = CheckpointedOutput(first, journal, input_path=input_path, every=100)
    crashed.open()
    _die(crashed)
    first.write_text('{"id": 0, "line": 1}\n')  # written, never journaled
    resumed = CheckpointedOutput(tmp_path / "out2.jsonl", journal, input_path=input_path)
    state = resumed.open()
    assert (len(state.done), first.read_text()) == (0, "")
    resumed.close()


def test_journal_of_another_input_is_refused(tmp_path: Path, input_path: Path) -> None:
    """A journal whose input had another size is not applied."""
    journal = tmp_path / "j.journal"
    out = CheckpointedOutput(tmp_path / "o", journal, input_path=input_path)
    out.open()
    out.close()
    with input_path.open("a") as fh:
        fh.write('{"id": 99, "path": "/x"}\n')
    again = CheckpointedOutput(tmp_path / "o", journal, input_path=input_path)
    with pytest.raises(ConfigError, match=r"belongs to .* bytes, sha256 \w+\), not to"):
        again.open()


def _journaled_run(tmp_path: Path, input_path: Path) -> tuple[Path, Path]:
    """A finished run of lines 1-3 of ``input_path`` with a journal: (journal, output)."""
    journal, output = tmp_path / "j.journal", tmp_path / "first.jsonl"
    out = CheckpointedOutput(output, journal, input_path=input_path, every=1)
    out.open()
    _run(out, [1, 2, 3])
    return journal, output


def test_journal_of_another_input_of_the_same_size_is_refused(
    tmp_path: Path, input_path: Path
) -> None:
    """Another file of exactly the same size is refused, naming both, outputs untouched."""
    journal, first = _journaled_run(tmp_path, input_path)
    other = tmp_path / "other.jsonl"
    other.write_bytes(input_path.read_bytes().replace(b'"id": 1,', b'"id": 7,'))
    assert other.stat().st_size == input_path.stat().st_size
    first.write_bytes(first.read_bytes() + b'{"torn')  # would be cut on a real resume
    before, new = first.read_bytes(), tmp_path / "new.jsonl"
    new.write_text("kept\n")
    resumed = CheckpointedOutput(new, journal, input_path=other)
    with pytest.raises(ConfigError) as caught:
        resumed.open()
    assert str(input_path) in caught.value.message and str(other) in caught.value.message
    assert (first.read_bytes(), new.read_text()) == (before, "kept\n")


def test_input_changed_in_place_at_the_same_size_is_refused(
    tmp_path: Path, input_path: Path
) -> None:
    """The journal's own input, rewritten with other bytes of the same length, is refused."""
    journal, _ = _journaled_run(tmp_path, input_path)
    input_path.write_bytes(input_path.read_bytes().replace(b'"id": 5,', b'"id": 6,'))
    with pytest.raises(ConfigError, match="changed since"):
        CheckpointedOutput(tmp_path / "o", journal, input_path=input_path).open()


def test_the_same_content_moved_elsewhere_resumes(tmp_path: Path, input_path: Path) -> None:
    """The journal matches content, not the name: a moved input resumes where it was."""
    journal, _ = _journaled_run(tmp_path, input_path)
    moved = input_path.rename(tmp_path / "moved.jsonl")
    resumed = CheckpointedOutput(tmp_path / "o", journal, input_path=moved)
    state = resumed.open()
    resumed.close()
    assert (state.resumed, sorted(n for n in range(1, 11) if n in state.done)) == (
        True,
        [1, 2, 3],
    )


def test_journal_without_a_hash_is_matched_by_path_and_size(
    tmp_path: Path, input_path: Path
) -> None:
    """A journal written before the hash was recorded applies to its own path only."""
    size = input_path.stat().st_size
    header = {"flext_api_batch_journal": 1, "input": str(input_path), "input_size": size}
    record = {"output": str(tmp_path / "o"), "offset": 0, "lines": [2]}
    journal = tmp_path / "j.journal"
    journal.write_text(json.dumps(header) + "\n" + json.dumps(record) + "\n")
    resumed = CheckpointedOutput(tmp_path / "o", journal, input_path=input_path)
    assert 2 in resumed.open().done
    resumed.close()
    twin = tmp_path / "twin.jsonl"
    twin.write_bytes(input_path.read_bytes())
    with pytest.raises(ConfigError, match="belongs to"):
        CheckpointedOutput(tmp_path / "o2", journal, input_path=twin).open()


def test_an_earlier_output_that_cannot_be_cut_back_is_config_error(
    tmp_path: Path, input_path: Path
) -> None:
    """An earlier output that became a directory: ConfigError, and no other output is cut."""
    journal = tmp_path / "j.journal"
    paths = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for n, path in enumerate(paths, start=1):
        out = CheckpointedOutput(path, journal, input_path=input_path, every=1)
        out.open()
        _run(out, [n])
    # A result line written after the last checkpoint: what a resume cuts off.
    paths[0].write_bytes(paths[0].read_bytes() + b'{"id":99,"line":99}\n')
    before = paths[0].read_bytes()
    paths[1].unlink()
    paths[1].mkdir()
    (paths[1] / ("f" * 200)).write_text("")  # a directory size above the journal's offset
    resumed = CheckpointedOutput(tmp_path / "c.jsonl", journal, input_path=input_path)
    with pytest.raises(ConfigError, match=r"cannot cut back .*b\.jsonl'"):
        resumed.open()
    assert paths[0].read_bytes() == before
    assert not (tmp_path / "c.jsonl").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": 1}\n', "not a flext-api batch journal"),
        ('{"flext_api_batch_journal": 1, "input_size": 0}\n{"what": 1}\n', "unexpected record"),
    ],
)
def test_foreign_journal_is_refused(
    tmp_path: Path, input_path: Path, content: str, message: str
) -> None:
    """A file that is not a batch journal is reported, not overwritten."""
    journal = tmp_path / "j.journal"
    journal.write_text(content)
    with pytest.raises(ConfigError, match=message):
        CheckpointedOutput(tmp_path / "o", journal, input_path=input_path).open()


def test_earlier_outputs_gone_or_shortened_are_warned_about(
    tmp_path: Path, input_path: Path
) -> None:
    """A missing or shortened earlier output gives a warning, not an error."""
    journal = tmp_path / "j.journal"
    gone, short = tmp_path / "gone.jsonl", tmp_path / "short.jsonl"
    for path in (gone, short):
        out = CheckpointedOutput(path, journal, input_path=input_path, every=1)
        out.open()
        _run(out, [1 if path is gone else 2])
    gone.unlink()
    short.write_text("")
    resumed = CheckpointedOutput(tmp_path / "new", journal, input_path=input_path)
    state = resumed.open()
    resumed.close()
    assert len(state.warnings) == 2
    assert "is gone" in state.warnings[0] and "is shorter than the journal" in state.warnings[1]


def test_unwritable_output_is_config_error(tmp_path: Path, input_path: Path) -> None:
    """An output in a missing directory is reported as ConfigError."""
    out = CheckpointedOutput(tmp_path / "no" / "out.jsonl", None, input_path=input_path)
    with pytest.raises(ConfigError, match="cannot write"):
        out.open()
    with pytest.raises(ValueError, match="not open"):
        out.write({}, 1)  # the first write is due for a checkpoint at once


def test_unreadable_journal_is_config_error(tmp_path: Path, input_path: Path) -> None:
    """A journal path that cannot be read (a directory) is reported as ConfigError."""
    with pytest.raises(ConfigError, match="cannot read"):
        CheckpointedOutput(tmp_path / "o", tmp_path, input_path=input_path).open()


@pytest.mark.parametrize(
    "content",
    [
        "my notes\nmore notes\n",
        "one line without a newline",
        '{"id": 1}\nnot json\n',
    ],
)
def test_a_file_that_is_not_a_journal_is_left_untouched(
    tmp_path: Path, input_path: Path, content: str
) -> None:
    """--journal naming some other file is refused before anything is cut off it."""
    journal = tmp_path / "notes.txt"
    journal.write_text(content)
    with pytest.raises(ConfigError, match="not a flext-api batch journal"):
        CheckpointedOutput(tmp_path / "o", journal, input_path=input_path).open()
    assert journal.read_text() == content


def test_a_torn_journal_header_is_still_a_journal(tmp_path: Path, input_path: Path) -> None:
    """A header cut short while being written is a journal's torn tail: cut, run starts over."""
    journal = tmp_path / "j.journal"
    journal.write_text('{"flext_api_bat')
    out = CheckpointedOutput(tmp_path / "o", journal, input_path=input_path)
    state = out.open()
    out.close()
    assert not state.resumed
    assert _records(journal)[0]["flext_api_batch_journal"] == 1


@pytest.mark.parametrize(
    "record",
    [
        {"lines": [1]},
        {"output": "/o", "offset": "12", "lines": []},
        {"output": "/o", "offset": -1, "lines": []},
        {"output": "/o", "offset": 0, "lines": ["x"]},
        {"output": "/o", "offset": 0, "lines": [0]},
        {"output": 5, "offset": 0, "lines": []},
        {"output": "/o", "offset": True, "lines": []},
    ],
)
def test_a_damaged_journal_record_is_config_error(
    tmp_path: Path, input_path: Path, record: dict[str, object]
) -> None:
    """A record with missing fields or fields of the wrong type is reported, not a crash."""
    journal = tmp_path / "j.journal"
    size = input_path.stat().st_size
    header = {"flext_api_batch_journal": 1, "input": str(input_path), "input_size": size}
    journal.write_text(json.dumps(header) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(ConfigError, match="unexpected record"):
        CheckpointedOutput(tmp_path / "o", journal, input_path=input_path).open()


def test_journal_that_cannot_be_created_leaves_the_output_alone(
    tmp_path: Path, input_path: Path
) -> None:
    """A journal in a missing directory is ConfigError, and the output is not truncated."""
    output = tmp_path / "o"
    output.write_text("earlier results\n")
    out = CheckpointedOutput(output, tmp_path / "no" / "j", input_path=input_path)
    with pytest.raises(ConfigError, match="cannot write"):
        out.open()
    assert output.read_text() == "earlier results\n"


def _fail_writes(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """Make the writes of ``target`` write half their data, then fail (disk full)."""
    from flext_api.cli import _checkpoint
    from flext_api.client.batch import _journal

    module = _checkpoint if target == "output" else _journal

    def write_all(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "write_all", write_all)


@pytest.mark.parametrize("target", ["output", "journal"])
def test_a_failed_write_stops_the_writer_and_resume_repeats_nothing(
    tmp_path: Path, input_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    """Disk full: ConfigError, nothing more is written, and a resume holds each line once."""
    journal, output = tmp_path / "j.journal", tmp_path / "o"
    out = CheckpointedOutput(output, journal, input_path=input_path, every=2)
    out.open()
    _run(out, [1, 2], close=False)  # a checkpoint
    _fail_writes(monkeypatch, target)
    with pytest.raises(ConfigError, match="No space left on device"):
        _run(out, [3, 4], close=False)
    with pytest.raises(ConfigError, match="an earlier write failed"):
        _run(out, [5], close=False)
    out.close()  # closes the files without writing again
    monkeypatch.undo()
    resumed = CheckpointedOutput(output, journal, input_path=input_path)
    state = resumed.open()
    _run(resumed, [n for n in range(1, 11) if n not in state.done])
    assert sorted(int(str(r["line"])) for r in _records(output)) == list(range(1, 11))
