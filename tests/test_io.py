"""Atomic writes and JSON helpers: a failed step must leave nothing that looks finished."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from langarith import LangarithError
from langarith.io import (
    OutputKind,
    atomic_dir,
    atomic_file,
    read_json,
    sha256_file,
    sha256_json,
    write_json,
)
from langarith.provenance import versions


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_atomic_dir_moves_complete_folder_into_place(tmp_path: Path) -> None:
    final = tmp_path / "out" / "data"
    with atomic_dir(final) as tmp:
        assert tmp.parent == final.parent and tmp.name.startswith(".data.tmp-")
        assert not final.exists()
        (tmp / "a.txt").write_text("x")
    assert (final / "a.txt").read_text() == "x"
    assert _siblings(final) == ["data"]


#: An output kind for these tests: marked by meta.json, holding only .txt files.
TXT_KIND = OutputKind(
    "text folder", record="meta.json", allowed=lambda n: n == "meta.json" or n.endswith(".txt")
)


def test_atomic_dir_replaces_an_earlier_output_of_its_kind(tmp_path: Path) -> None:
    final = tmp_path / "data"
    final.mkdir()
    (final / "old.txt").write_text("old")
    (final / "meta.json").write_text("{}")
    with atomic_dir(final, TXT_KIND) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]


def test_atomic_dir_without_a_kind_replaces_only_an_empty_folder(tmp_path: Path) -> None:
    final = tmp_path / "data"
    final.mkdir()
    with atomic_dir(final) as tmp:
        (tmp / "new.txt").write_text("new")
    assert (final / "new.txt").read_text() == "new"
    refusal = r"Refusing to write .*data: it is a folder that is not"
    with pytest.raises(LangarithError, match=refusal), atomic_dir(final) as tmp:
        (tmp / "other.txt").write_text("x")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert _siblings(final) == ["data"]


def test_atomic_dir_failure_leaves_nothing_and_keeps_old(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError, match="boom"), atomic_dir(fresh) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert not fresh.exists()
    assert list(tmp_path.iterdir()) == []

    old = tmp_path / "old"
    old.mkdir()
    (old / "keep.txt").write_text("keep")
    (old / "meta.json").write_text("{}")
    with pytest.raises(KeyError), atomic_dir(old, TXT_KIND) as tmp:
        raise KeyError("x")
    assert (old / "keep.txt").read_text() == "keep"
    assert _siblings(old) == ["old"]


def test_atomic_file_text_and_binary(tmp_path: Path) -> None:
    text = tmp_path / "sub" / "a.txt"
    with atomic_file(text) as handle:
        handle.write("héllo\n")
        assert not text.exists()
    assert text.read_text(encoding="utf-8") == "héllo\n"
    binary = tmp_path / "b.bin"
    with atomic_file(binary, "wb") as handle:
        handle.write(b"\x00\x01")
    assert binary.read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError, match="mode"), atomic_file(tmp_path / "c", "a"):
        pass


def test_atomic_file_failure_keeps_old_content(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(path) as handle:
        handle.write("partial")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert _siblings(path) == ["a.txt"]
    new = tmp_path / "new.txt"
    with pytest.raises(RuntimeError), atomic_file(new) as handle:
        raise RuntimeError("x")
    assert not new.exists()


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "x"
    data = b"abc" * 500_000
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_write_json_is_sorted_indented_and_round_trips(tmp_path: Path) -> None:
    path = write_json(tmp_path / "m.json", {"b": 1, "a": ["ü", 2]})
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps({"a": ["ü", 2], "b": 1}, indent=2, ensure_ascii=False) + "\n"
    assert read_json(path) == {"a": ["ü", 2], "b": 1}
    assert _siblings(path) == ["m.json"]


def test_read_json_missing_or_corrupt_raises_langarith_error(tmp_path: Path) -> None:
    with pytest.raises(LangarithError, match="does not exist"):
        read_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": [1, 2')
    with pytest.raises(LangarithError, match="corrupt or truncated"):
        read_json(bad)
    with pytest.raises(LangarithError, match="folder"):
        read_json(tmp_path)


def test_read_json_names_the_role_of_the_file(tmp_path: Path) -> None:
    with pytest.raises(LangarithError, match=r"^Checkpoint state .*missing\.json does not exist"):
        read_json(tmp_path / "missing.json", "Checkpoint state")


def test_sha256_json_ignores_key_order() -> None:
    assert sha256_json({"a": 1, "b": [1, 2]}) == sha256_json({"b": [1, 2], "a": 1})
    assert sha256_json({"a": 1}) != sha256_json({"a": 2})


def test_versions_name_every_library_that_shapes_the_numbers() -> None:
    found = versions()
    assert {"python", "langarith", "torch", "transformers", "adapters", "safetensors"} <= set(found)
