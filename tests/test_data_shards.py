"""The Wikipedia download in shards: killed part-way, it resumes where it stopped.

The source is the Wikipedia hub mirror (streamed like the hub); a kill is simulated by a
source that raises a ``BaseException`` after K rows (nothing in the data code catches
it, as nothing runs after a SIGKILL) and, once, by a real SIGKILL in a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hub_mirror import WIKI_DOCS, build_hub_mirror

from langarith import LangarithError
from langarith.data import (
    prepare_demo_dataset,
    prepare_real_dataset,
    read_manifest,
    read_split,
    real,
    shards,
    verify_dataset,
)
from langarith.io import read_json, sha256_file
from langarith.training.inputs import read_rows

#: 40 articles (one empty), 4 held out, shards of 8: the first shard closes after
#: source row 12, so a kill after 13 rows lands exactly on a shard boundary.
SHARD_DOCS = 8
FIRST_SHARD_ROWS = 13


_SKIP_ROWS = real._skip_rows


class Killed(BaseException):
    """The process dying: not an ``Exception``, so no handler in the code under test
    turns it into a clean failure."""


@pytest.fixture(scope="module")
def options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("hub")
    repos = build_hub_mirror(root)
    return {
        "hub_path": str(repos["wikipedia"]),
        "cache_dir": str(root / "cache"),
        "validation_docs": 4,
        "shard_docs": SHARD_DOCS,
    }


@pytest.fixture(scope="module")
def reference(options: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run."""
    return prepare_real_dataset(
        "wikipedia", "de", tmp_path_factory.mktemp("ref") / "de", options=options
    )


def _source(monkeypatch: pytest.MonkeyPatch, kill_after: int | None = None) -> list[int]:
    """Wrap the source rows: count those read, and die after ``kill_after`` of them."""
    read: list[int] = []

    def wrapped(rows: Iterable[Any], n: int) -> Iterable[Any]:
        def rows_then_kill() -> Iterable[Any]:
            for k, row in enumerate(_SKIP_ROWS(rows, n)):
                if kill_after is not None and k == kill_after:
                    raise Killed
                read.append(int(row["id"]))
                yield row

        return rows_then_kill()

    monkeypatch.setattr(real, "_skip_rows", wrapped)
    return read


def _snapshot(out: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Manifest (without its time stamp) and the bytes of every data file."""
    manifest = read_manifest(out)
    manifest.pop("created_utc")
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "manifest.json"}
    return manifest, files


def _finished_shards(work: Path) -> dict[str, tuple[int, int, str]]:
    """Visible shards of a work folder: (inode, mtime, sha256); each must be recorded."""
    progress = read_json(work / shards.PROGRESS)
    recorded = {s["file"]: s["sha256"] for s in progress["shards"]}
    found = {}
    for path in sorted(work.glob("train-*.jsonl")):
        assert recorded.get(path.name) == sha256_file(path), f"{path.name} looks finished"
        stat = path.stat()
        found[path.name] = (stat.st_ino, stat.st_mtime_ns, sha256_file(path))
    return found


@pytest.mark.parametrize(
    ("kill_after", "kept"),
    # During the held-out documents, inside the first shard, on its boundary, later.
    [(2, 0), (9, 0), (FIRST_SHARD_ROWS, 1), (22, 2), (38, 4)],
)
def test_killed_download_resumes(
    kill_after: int,
    kept: int,
    options: dict[str, Any],
    reference: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "de"
    _source(monkeypatch, kill_after)
    with pytest.raises(Killed):
        prepare_real_dataset("wikipedia", "de", out, options=options)
    assert not out.exists()  # nothing that looks finished
    work = shards.work_dir_for(out)
    before = _finished_shards(work)
    assert len(before) == kept
    committed = read_json(work / shards.PROGRESS)["source_rows"] if before else 0

    read = _source(monkeypatch)
    prepare_real_dataset("wikipedia", "de", out, options=options)
    assert len(read) == WIKI_DOCS - committed  # skipped by count, not read again
    assert _snapshot(out) == _snapshot(reference)
    for name, (inode, mtime, digest) in before.items():
        stat = (out / name).stat()
        assert (stat.st_ino, stat.st_mtime_ns, sha256_file(out / name)) == (inode, mtime, digest)
    assert not work.exists()
    verify_dataset(out)


def test_corrupt_shard_is_rewritten(
    options: dict[str, Any], reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "de"
    _source(monkeypatch, 30)
    with pytest.raises(Killed):
        prepare_real_dataset("wikipedia", "de", out, options=options)
    work = shards.work_dir_for(out)
    kept, flipped = sorted(_finished_shards(work))[:2]
    data = bytearray((work / flipped).read_bytes())
    data[5] ^= 0x20  # one flipped bit: same length, different checksum
    (work / flipped).write_bytes(bytes(data))
    kept_inode = (work / kept).stat().st_ino

    read = _source(monkeypatch)
    prepare_real_dataset("wikipedia", "de", out, options=options)
    assert len(read) == WIKI_DOCS - FIRST_SHARD_ROWS  # rewound to the last good shard
    assert _snapshot(out) == _snapshot(reference)
    assert (out / kept).stat().st_ino == kept_inode


def test_kill_while_finishing(
    options: dict[str, Any], reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed while the output folder is assembled: the work folder is complete, so the
    rerun reads nothing from the source."""
    out = tmp_path / "de"
    calls = []
    original = shards._link_or_copy

    def link_then_die(src: Path, dst: Path) -> None:
        calls.append(src)
        if len(calls) == 3:
            raise Killed
        original(src, dst)

    monkeypatch.setattr(shards, "_link_or_copy", link_then_die)
    with pytest.raises(Killed):
        prepare_real_dataset("wikipedia", "de", out, options=options)
    assert not out.exists()
    monkeypatch.setattr(shards, "_link_or_copy", original)
    read = _source(monkeypatch)
    prepare_real_dataset("wikipedia", "de", out, options=options)
    assert read == []
    assert _snapshot(out) == _snapshot(reference)


def test_dropped_connection_is_one_sentence_and_resumes(
    options: dict[str, Any], reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "de"

    def drop(rows: Iterable[Any], n: int) -> Iterable[Any]:
        for k, row in enumerate(_SKIP_ROWS(rows, n)):
            if k == 25:
                raise ConnectionError("Connection reset by peer")
            yield row

    monkeypatch.setattr(real, "_skip_rows", drop)
    with pytest.raises(
        LangarithError, match="Connection reset.*rerunning the same command resumes"
    ):
        prepare_real_dataset("wikipedia", "de", out, options=options)
    read = _source(monkeypatch)
    prepare_real_dataset("wikipedia", "de", out, options=options)
    assert len(read) == WIKI_DOCS - 21  # two shards of 8 were kept (source rows 0..20)
    assert _snapshot(out) == _snapshot(reference)


def test_corrupt_validation_file_starts_over(
    options: dict[str, Any], reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "de"
    _source(monkeypatch, 30)
    with pytest.raises(Killed):
        prepare_real_dataset("wikipedia", "de", out, options=options)
    validation = shards.work_dir_for(out) / "validation.jsonl"
    validation.write_bytes(validation.read_bytes().replace(b"1001", b"1009"))
    read = _source(monkeypatch)
    prepare_real_dataset("wikipedia", "de", out, options=options)
    assert len(read) == WIKI_DOCS
    assert _snapshot(out) == _snapshot(reference)


def test_other_options_start_over(
    options: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "de"
    _source(monkeypatch, 30)
    with pytest.raises(Killed):
        prepare_real_dataset("wikipedia", "de", out, options=options)
    read = _source(monkeypatch)
    prepare_real_dataset("wikipedia", "de", out, options={**options, "shard_docs": 5})
    assert len(read) == WIKI_DOCS
    assert [s["rows"] for s in verify_dataset(out)["splits"]["train"]["shards"]] == [5] * 7


_SIGKILL_SCRIPT = """
import os, signal, sys
from langarith.data import real, prepare_real_dataset
original = real._skip_rows
def rows_then_sigkill(rows, n):
    for k, row in enumerate(original(rows, n)):
        if k == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
        yield row
real._skip_rows = rows_then_sigkill
prepare_real_dataset("wikipedia", "de", sys.argv[1], options=__import__("json").loads(sys.argv[2]))
"""


def test_sigkill_then_resume(
    options: dict[str, Any], reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "de"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, "-c", _SIGKILL_SCRIPT, str(out), json.dumps(options), "25"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert not out.exists()
    work = shards.work_dir_for(out)
    before = _finished_shards(work)
    assert len(before) == 2
    assert any(p.name.startswith(".train-") for p in work.iterdir())  # the open shard
    read = _source(monkeypatch)
    prepare_real_dataset("wikipedia", "de", out, options=options)
    assert len(read) < WIKI_DOCS
    assert _snapshot(out) == _snapshot(reference)
    assert all((out / name).stat().st_ino == before[name][0] for name in before)


def test_corrupt_shard_in_a_finished_folder(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    out.mkdir()
    for path in reference.iterdir():
        (out / path.name).write_bytes(path.read_bytes())
    shard = out / "train-00001.jsonl"
    shard.write_bytes(shard.read_bytes()[:-10])  # truncated
    with pytest.raises(LangarithError, match=r"Shard .*train-00001\.jsonl fails its checksum"):
        read_split(out, "train")
    with pytest.raises(LangarithError, match=r"train-00001\.jsonl does not match its manifest"):
        verify_dataset(out)
    shard.unlink()
    with pytest.raises(LangarithError, match=r"Shard .*train-00001\.jsonl is missing"):
        read_split(out, "train")


def test_progress_bar_counts_documents(
    options: dict[str, Any], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    prepare_real_dataset("wikipedia", "de", tmp_path / "de", options=options)
    err = capfd.readouterr().err
    assert "wikipedia/de train" in err and "35doc" in err.replace(" ", "")


def test_demo_wikipedia_stays_one_file(tmp_path: Path) -> None:
    """The demo never downloads: its corpus keeps the single-file layout it always had."""
    out = prepare_demo_dataset(
        "wikipedia",
        "de",
        tmp_path / "de",
        options={"wikipedia_train_docs": 12, "validation_docs": 4},
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "train.jsonl",
        "validation.jsonl",
    ]
    assert "shards" not in read_manifest(out)["splits"]["train"]


def test_training_reads_a_sharded_split(reference: Path) -> None:
    """The training layer's reader takes the shards in order, as the data layer wrote them."""
    shards = sorted(reference.glob("train-*.jsonl"))
    assert len(shards) > 1 and not (reference / "train.jsonl").exists()
    expected = [
        json.loads(line)["id"]
        for shard in shards
        for line in shard.read_text(encoding="utf-8").splitlines()
    ]
    assert [row["id"] for row in read_rows(reference, "train")] == expected
