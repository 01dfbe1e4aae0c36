"""Sharded, resumable writing of a long download (the real Wikipedia corpus).

A Wikipedia dump streams for hours; one dropped connection must not start it over. The
train split is therefore written in shards of ``shard_docs`` documents
(``train-00000.jsonl``, ``train-00001.jsonl``, …) inside a work folder next to the
output, ``.<name>.partial/``, whose ``progress.json`` records, for every finished shard,
its sha256, document and token counts, and how many source rows had been read when it
was closed. The held-out validation documents go to ``validation.jsonl`` in the same
folder; the progress file records its committed length and checksum.

Resume rule (see ``docs/interfaces.md``): finished shards are kept when they still
match their recorded checksum; the first one that does not (and every one after it,
because the source is read in order) is rewritten; the validation file is cut back to
its committed length; the source is skipped by the recorded row count. A shard is
written under a hidden temporary name and renamed only when complete, so nothing
half-written ever looks finished. Only when every shard is done is the output folder
built (hard links to the shards, a manifest) and swapped into place atomically.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from langarith import LangarithError
from langarith.io import OutputKind, atomic_dir, read_json, sha256_file, write_json

log = logging.getLogger(__name__)

#: Documents per train shard when the option ``shard_docs`` is not given: about 150 MB
#: of English Wikipedia text, so a resume loses at most a few minutes of download.
#: A dataset folder as an output: recognised by its manifest.json and holding nothing
#: but that and ``.jsonl`` split files (see :func:`langarith.io.check_replaceable`).
DATASET_OUTPUT = OutputKind(
    "dataset folder",
    record="manifest.json",
    allowed=lambda name: name == "manifest.json" or name.endswith(".jsonl"),
)

DEFAULT_SHARD_DOCS = 50_000
PROGRESS = "progress.json"
_PROGRESS_VERSION = 1


def shard_name(split: str, index: int) -> str:
    """File name of shard ``index`` of ``split``: ``train-00003.jsonl``."""
    return f"{split}-{index:05d}.jsonl"


def shards_checksum(shards: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 over lines ``"<file> <sha256>\\n"`` in shard order.

    A sharded split's ``sha256`` in the manifest, so that
    :func:`~langarith.data.formats.combined_checksum` covers shards exactly as it
    covers single files, and reordering shards changes it.
    """
    text = "".join(f"{s['file']} {s['sha256']}\n" for s in shards)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def work_dir_for(out_dir: Path) -> Path:
    """The persistent work folder of ``out_dir`` (survives a kill, unlike a temp dir)."""
    return out_dir.with_name(f".{out_dir.name}.partial")


@dataclass
class ResumePoint:
    """Where a restarted stream picks up: what the committed shards already hold."""

    source_rows: int = 0
    train_rows: int = 0
    train_tokens: int = 0
    validation_rows: int = 0


@dataclass
class _Progress:
    """The content of ``progress.json``; ``key`` identifies the request it belongs to."""

    key: str
    shards: list[dict[str, Any]] = field(default_factory=list)
    source_rows: int = 0
    validation: dict[str, Any] = field(
        default_factory=lambda: {"rows": 0, "bytes": 0, "tokens": 0, "sha256": _EMPTY_SHA}
    )
    complete: bool = False
    version: int = _PROGRESS_VERSION

    def resume_point(self) -> ResumePoint:
        return ResumePoint(
            source_rows=self.source_rows,
            train_rows=sum(int(s["rows"]) for s in self.shards),
            train_tokens=sum(int(s["tokens"]) for s in self.shards),
            validation_rows=int(self.validation["rows"]),
        )


_EMPTY_SHA = hashlib.sha256(b"").hexdigest()

#: One event of a source stream: (split, row, source rows read so far).
Event = tuple[str, Mapping[str, Any], int]


def request_key(identity: Mapping[str, Any]) -> str:
    """A digest of what makes the output (dataset, source, revision, options).

    A partial download made with other options (another dump, budget or shard size) is
    discarded instead of being continued with rows that do not belong together.
    """
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _load_progress(work: Path, key: str) -> _Progress:
    """The progress recorded in ``work``, or a fresh one (the folder is then emptied)."""
    path = work / PROGRESS
    if path.is_file():
        try:
            data = read_json(path)
            progress = _Progress(**data) if isinstance(data, dict) else None
        except (LangarithError, TypeError):
            progress = None
        if progress is not None and progress.key == key and progress.version == _PROGRESS_VERSION:
            return progress
        log.warning("%s belongs to another request or is unreadable; starting over", work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    progress = _Progress(key=key)
    write_json(path, asdict(progress))
    return progress


def _keep_verified_prefix(work: Path, progress: _Progress) -> None:
    """Drop every shard from the first one that fails its checksum, and stray files.

    The source is read in order and skipped by count, so a shard can only be rebuilt
    together with all shards after it; the rewind goes to the last good shard.
    """
    good: list[dict[str, Any]] = []
    for shard in progress.shards:
        path = work / str(shard["file"])
        if not path.is_file() or sha256_file(path) != shard["sha256"]:
            log.warning("%s is missing or fails its checksum; rewriting from it", path)
            break
        good.append(shard)
    if len(good) < len(progress.shards):
        progress.complete = False
        progress.source_rows = int(good[-1]["source_rows"]) if good else 0
        progress.validation = dict(good[-1]["validation"]) if good else _Progress(key="").validation
        progress.shards = good
    if not _restore_validation(work / "validation.jsonl", progress.validation):
        # Validation documents are spread over the whole stream (validation_fraction):
        # a damaged file can only be rebuilt by reading everything again.
        log.warning("%s fails its checksum; starting the download over", work / "validation.jsonl")
        progress.shards, progress.source_rows, progress.complete = [], 0, False
        progress.validation = _Progress(key="").validation
        (work / "validation.jsonl").unlink()
    kept = {str(s["file"]) for s in progress.shards} | {PROGRESS, "validation.jsonl"}
    for path in work.iterdir():
        if path.name not in kept:  # temp files of a killed run, unrecorded shards
            path.unlink()
    write_json(work / PROGRESS, asdict(progress))


def _restore_validation(path: Path, committed: Mapping[str, Any]) -> bool:
    """Cut the validation file back to its committed length; whether that prefix is
    intact (a missing file counts as empty)."""
    size = int(committed["bytes"])
    if not path.exists():
        path.touch()
    if path.stat().st_size < size:
        return False
    with open(path, "r+b") as handle:
        handle.truncate(size)
    return sha256_file(path) == committed["sha256"]


def _progress_bar(done: int, desc: str) -> Any:
    """A tqdm bar over documents; in a batch log it updates once a minute, not per doc."""
    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    return tqdm(initial=done, unit="doc", desc=desc, mininterval=0.5 if tty else 60.0)


class _ShardWriter:
    """Writes train shards and the validation file of one work folder, committing each."""

    def __init__(self, work: Path, progress: _Progress, shard_docs: int, split: str) -> None:
        self.work = work
        self.progress = progress
        self.shard_docs = shard_docs
        self.split = split
        self._handle: IO[bytes] | None = None
        self._tmp: Path | None = None
        self._digest = hashlib.sha256()
        self._rows = self._tokens = 0
        self._validation = open(work / "validation.jsonl", "ab")  # noqa: SIM115
        self._val = dict(progress.validation)

    def add_validation(self, line: bytes, tokens: int) -> None:
        self._validation.write(line)
        self._val["rows"] += 1
        self._val["tokens"] += tokens

    def add_train(self, line: bytes, tokens: int, source_rows: int) -> None:
        if self._handle is None:
            name = shard_name(self.split, len(self.progress.shards))
            self._tmp = self.work / f".{name}.tmp-{os.getpid()}"
            self._handle = open(self._tmp, "wb")  # noqa: SIM115
            self._digest = hashlib.sha256()
            self._rows = self._tokens = 0
        self._handle.write(line)
        self._digest.update(line)
        self._rows += 1
        self._tokens += tokens
        if self._rows >= self.shard_docs:
            self.commit(source_rows)

    def commit(self, source_rows: int) -> None:
        """Close the open shard, rename it into place, then record it in progress.json.

        The order matters: a kill before the rename leaves a hidden temp file (removed
        on resume); a kill between the rename and the record leaves an unrecorded shard
        (also removed and rewritten); only a recorded shard is ever kept.
        """
        if self._handle is None or self._tmp is None:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._handle = None
        name = shard_name(self.split, len(self.progress.shards))
        os.replace(self._tmp, self.work / name)
        self._validation.flush()
        os.fsync(self._validation.fileno())
        self._val["bytes"] = self._validation.tell()
        self._val["sha256"] = sha256_file(self.work / "validation.jsonl")
        self.progress.validation = dict(self._val)
        self.progress.source_rows = source_rows
        self.progress.shards.append(
            {
                "file": name,
                "rows": self._rows,
                "tokens": self._tokens,
                "sha256": self._digest.hexdigest(),
                "source_rows": source_rows,
                "validation": dict(self._val),
            }
        )
        write_json(self.work / PROGRESS, asdict(self.progress))

    def close(self) -> None:
        """Release the files without committing (on an error the temp shard stays behind
        and is removed by the next run)."""
        if self._handle is not None:
            self._handle.close()
        self._validation.close()


def write_sharded_corpus(
    out_dir: Path | str,
    events: Callable[[ResumePoint], Iterator[Event]],
    *,
    key: str,
    shard_docs: int,
    check: Callable[[str, Mapping[str, Any], int], dict[str, Any]],
    manifest: Callable[[dict[str, dict[str, Any]]], dict[str, Any]],
    desc: str,
) -> Path:
    """Stream ``events`` into a sharded train split and a validation file, resumably.

    Args:
        out_dir: the final folder; it appears (atomically) only once everything is done.
        events: called with the :class:`ResumePoint` of the committed shards; yields
            ``(split, row, source_rows_read)`` from that point on (the caller skips the
            source by ``source_rows`` and carries on its own counters).
        key: :func:`request_key` of the request; another key discards the partial work.
        shard_docs: train documents per shard.
        check: validates a row and returns it in file order (``check(split, row, n)``).
        manifest: builds the manifest from the split entries.
        desc: label of the progress bar.
    """
    out_dir = Path(out_dir)
    work = work_dir_for(out_dir)
    progress = _load_progress(work, key)
    _keep_verified_prefix(work, progress)
    if progress.complete:
        log.info("%s: all %d shards already written", out_dir, len(progress.shards))
    else:
        _stream(work, progress, events, shard_docs, check, desc)
    entries = _split_entries(progress)
    with atomic_dir(out_dir, DATASET_OUTPUT) as tmp:
        for shard in progress.shards:
            _link_or_copy(work / str(shard["file"]), tmp / str(shard["file"]))
        _link_or_copy(work / "validation.jsonl", tmp / "validation.jsonl")
        write_json(tmp / "manifest.json", manifest(entries))
    shutil.rmtree(work)
    return out_dir


def _stream(
    work: Path,
    progress: _Progress,
    events: Callable[[ResumePoint], Iterator[Event]],
    shard_docs: int,
    check: Callable[[str, Mapping[str, Any], int], dict[str, Any]],
    desc: str,
) -> None:
    start = progress.resume_point()
    if start.source_rows:
        log.info(
            "resuming %s after %d shards (%d documents, %d source rows)",
            desc,
            len(progress.shards),
            start.train_rows,
            start.source_rows,
        )
    writer = _ShardWriter(work, progress, shard_docs, "train")
    counts = {"train": start.train_rows, "validation": start.validation_rows}
    source_rows = start.source_rows
    bar = _progress_bar(start.train_rows, desc)
    try:
        for split, row, source_rows in events(start):
            clean = check(split, row, counts[split])
            counts[split] += 1
            line = (json.dumps(clean, ensure_ascii=False) + "\n").encode("utf-8")
            tokens = len(str(clean.get("text", "")).split())
            if split == "validation":
                writer.add_validation(line, tokens)
            else:
                writer.add_train(line, tokens, source_rows)
                bar.update(1)
        writer.commit(source_rows)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise LangarithError(
                f"No space left while writing the shards in {work} ({err}); the "
                f"{len(progress.shards)} finished shards are kept: free space and rerun "
                "to resume"
            ) from err
        raise
    finally:
        writer.close()
        bar.close()
    progress.complete = True
    write_json(work / PROGRESS, asdict(progress))


def _split_entries(progress: _Progress) -> dict[str, dict[str, Any]]:
    """Manifest entries: train lists its shards; validation is one file."""
    shards = [{k: s[k] for k in ("file", "rows", "tokens", "sha256")} for s in progress.shards]
    val = progress.validation
    return {
        "train": {
            "rows": sum(int(s["rows"]) for s in shards),
            "tokens": sum(int(s["tokens"]) for s in shards),
            "sha256": shards_checksum(shards),
            "shards": shards,
        },
        "validation": {"rows": val["rows"], "tokens": val["tokens"], "sha256": val["sha256"]},
    }


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link (no copy of gigabytes, same inode) or copy where links are refused."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
