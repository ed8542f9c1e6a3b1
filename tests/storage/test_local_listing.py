"""LocalStorage: a one-level listing does not walk the tree below it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from flext_api.storage import LocalStorage


def _tree(root: Path) -> None:
    for key in ("a.txt", "docs/x.txt", "docs/deep/1.txt", "docs/deep/2.txt", "z/y/w/v.txt"):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (root / "empty" / "inner").mkdir(parents=True)  # no object under it: no prefix
    (root / "tmp-only").mkdir()
    (root / "tmp-only" / ".flext-tmp-upload").write_bytes(b"half")


async def test_a_folded_listing_reads_one_object_per_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With delimiter "/", each folder only needs one object beneath it to be listed as
    a prefix: the tree below is not walked (``storage ls`` of a big tree took seconds)."""
    _tree(tmp_path)
    for n in range(50):
        (tmp_path / "docs" / "deep" / f"more-{n}").mkdir()
        (tmp_path / "docs" / "deep" / f"more-{n}" / "f.txt").write_bytes(b"x")
    store = LocalStorage(tmp_path)
    scanned: list[str] = []
    real_scandir = os.scandir

    def counting(path: Any) -> Any:
        scanned.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    page = (await store.list_page("", delimiter="/")).unwrap()
    assert [f.path for f in page.files] == ["a.txt"]
    assert page.prefixes == ["docs/", "z/"]
    assert len(scanned) < 10, scanned  # the root and one path down each folder


async def test_a_folded_listing_under_a_prefix_matches_the_full_one(tmp_path: Path) -> None:
    """The same prefixes and files as rolling up the full listing, at every level."""
    _tree(tmp_path)
    store = LocalStorage(tmp_path)
    for prefix in ("", "docs/", "docs/d", "z/", "z/y/w/", "nothing/"):
        folded = (await store.list_page(prefix, delimiter="/")).unwrap()
        keys = [f.path for f in (await store.list_files(prefix)).unwrap()]
        rest = [k[len(prefix) :] for k in keys]
        expected_prefixes = sorted({prefix + r.split("/")[0] + "/" for r in rest if "/" in r})
        assert folded.prefixes == expected_prefixes, prefix
        assert [f.path for f in folded.files] == [k for k in keys if "/" not in k[len(prefix) :]]
