"""FilesystemBackend across processes: restarts, concurrent writers, damaged files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from flext_api._atomic import TMP_PREFIX
from flext_api.cache import FlextApiCache

from ._subprocess import run_python, start_python

pytestmark = pytest.mark.integration


def files(root: Path, pattern: str) -> list[Path]:
    return list(root.rglob(pattern))


WRITE = """
import asyncio, sys
from flext_api.cache import FlextApiCache

async def main():
    cache = FlextApiCache("filesystem", {"path": sys.argv[1]})
    await cache.set("persisted", {"written_by": "a process that has exited"}, ttl=3600)

asyncio.run(main())
"""


async def test_entries_survive_a_process_restart(tmp_path: Path) -> None:
    """What a process wrote before exiting is read by a new process."""
    await asyncio.to_thread(run_python, WRITE, str(tmp_path))
    cache = FlextApiCache("filesystem", {"path": tmp_path})
    assert await cache.get("persisted") == {"written_by": "a process that has exited"}


HAMMER = """
import asyncio, sys
from flext_api.cache import FlextApiCache

async def main():
    cache = FlextApiCache("filesystem", {"path": sys.argv[1], "max_bytes": 50_000_000})
    tag = sys.argv[2]
    for i in range(150):
        await cache.set("contended", {"writer": tag, "i": i, "pad": tag * 4000})
        got = await cache.get("contended")
        assert got is None or len(got["pad"]) == 4000, got

asyncio.run(main())
"""


async def test_two_processes_writing_one_key_never_tear_it(tmp_path: Path) -> None:
    """Two processes writing the same key at once: every read is one whole value."""
    children = [start_python(HAMMER, str(tmp_path), tag) for tag in ("a", "b")]
    cache = FlextApiCache("filesystem", {"path": tmp_path})
    with capture_logs() as logs:
        reads = []
        while any(child.poll() is None for child in children):
            got = await cache.get("contended")
            if got is not None:
                reads.append(got)
                assert got["pad"] == got["writer"] * 4000
            await asyncio.sleep(0.001)
    for child in children:
        _, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
    assert not [e for e in logs if e["event"] == "cache.filesystem.corrupt_entry"]
    final = await cache.get("contended")
    assert final["i"] == 149
    assert not files(tmp_path, f"{TMP_PREFIX}*")


async def test_truncated_file_after_restart_is_a_miss(tmp_path: Path) -> None:
    """A file cut short (a crash mid-copy) reads as a logged miss in the next process."""
    await asyncio.to_thread(run_python, WRITE, str(tmp_path))
    (path,) = files(tmp_path, "*.fxc")
    path.write_bytes(path.read_bytes()[:-5])
    cache = FlextApiCache("filesystem", {"path": tmp_path})
    with capture_logs() as logs:
        assert await cache.get("persisted") is None
    assert logs[0]["event"] == "cache.filesystem.corrupt_entry"
    assert (await cache.stats()).corrupt_entries == 1
