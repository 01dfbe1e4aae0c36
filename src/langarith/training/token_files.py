"""Token files: a corpus tokenized once per (backbone, language), read by memory map.

Language-adapter training used to read every document into RAM and tokenize it into a
Python list, which does not fit English Wikipedia. Instead the tokens stage writes, per
split, three raw little-endian arrays into ``results/tokens/<model>/<lang>/``:

* ``<split>.ids.bin``: ``uint32`` sub-word ids, every document followed by the
  tokenizer's end token (``[SEP]``/``</s>``), so the file *is* the concatenated stream
  that MLM blocks are cut from (Hugging Face ``run_mlm``'s ``group_texts``);
* ``<split>.offsets.bin``: ``int64``, ``docs + 1`` entries, where document ``j`` starts
  (its separator is the token before ``offsets[j + 1]``);
* ``<split>.words.bin``: ``int64`` whitespace-token count of each document (the unit of
  the papers' token budgets);

and ``metadata.json`` with the tokenizer checksum, the corpus checksum, counts and the
size and sha256 of every file. A file is trusted only if all of these agree
(:func:`open_token_split`), so a token file of another tokenizer or corpus, or one cut
short, is refused with a clear error instead of being trained on.

Writing is resumable per corpus shard (:func:`write_token_files`): each source file
becomes a *part* in ``.<name>.partial/``, written under a temporary name, renamed when
complete and only then recorded with its checksums in ``progress.json``; a restarted
run keeps the recorded parts that still verify and redoes the rest. The final folder is
assembled by streaming the parts and appears atomically. Memory stays bounded: rows are
read and tokenized in batches and every array is written as it grows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from langarith import LangarithError
from langarith.io import atomic_dir, read_json, sha256_file, sha256_json, write_json

__all__ = [
    "FORMAT_VERSION",
    "SourceFile",
    "TokenSplit",
    "open_token_split",
    "read_token_metadata",
    "write_token_files",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
METADATA = "metadata.json"
PROGRESS = "progress.json"
IDS_DTYPE = np.dtype("<u4")
INT_DTYPE = np.dtype("<i8")
#: Documents tokenized per call of the (fast, batched) tokenizer.
TOKENIZE_BATCH = 256
_COPY_CHUNK = 1 << 24  # elements per streamed copy (64 MB of ids)


@dataclass(frozen=True)
class SourceFile:
    """One corpus file to tokenize: a split's jsonl or one shard of it, with the sha256
    its manifest records (checked while reading)."""

    split: str
    path: Path
    sha256: str

    @property
    def part(self) -> str:
        """Name of the part this file becomes: ``train-00003`` (its position) or ``validation``."""
        return self.path.name.removesuffix(".jsonl")


# ----------------------------------------------------------------------------- reading


@dataclass
class TokenSplit:
    """One split of a verified token folder, memory-mapped (nothing is read eagerly)."""

    ids: np.ndarray
    offsets: np.ndarray
    words: np.ndarray
    end_id: int

    @property
    def docs(self) -> int:
        return int(self.words.shape[0])

    @property
    def tokens(self) -> int:
        return int(self.ids.shape[0])

    def separators_before(self, positions: np.ndarray) -> np.ndarray:
        """How many document separators lie at stream positions ``< positions``."""
        return np.searchsorted(self.offsets[1:], np.asarray(positions), side="right")


def read_token_metadata(tokens_dir: Path | str) -> dict[str, Any]:
    """``metadata.json`` of a token folder, with a clear error when it is missing."""
    tokens_dir = Path(tokens_dir)
    meta = read_json(tokens_dir / METADATA, "Token-file metadata")
    if not isinstance(meta, dict) or meta.get("kind") != "token_file":
        raise LangarithError(
            f"{tokens_dir / METADATA} is not token-file metadata; rebuild it with "
            "`langarith train tokens`."
        )
    if meta.get("format") != FORMAT_VERSION:
        raise LangarithError(
            f"{tokens_dir} has token-file format {meta.get('format')}, this version reads "
            f"{FORMAT_VERSION}; delete it and rebuild it with `langarith train tokens`."
        )
    return meta


def open_token_split(
    tokens_dir: Path | str,
    split: str,
    *,
    tokenizer_sha256: str,
    corpus_checksum: str | None = None,
    verify_checksums: bool = True,
) -> TokenSplit:
    """Memory-map one split after checking it belongs to this tokenizer and corpus and
    is complete (sizes always; sha256 of every file unless ``verify_checksums=False``)."""
    tokens_dir = Path(tokens_dir)
    meta = read_token_metadata(tokens_dir)
    if meta["tokenizer_sha256"] != tokenizer_sha256:
        raise LangarithError(
            f"{tokens_dir} was made with another tokenizer (tokenizer_sha256 "
            f"{str(meta['tokenizer_sha256'])[:12]}… in its metadata.json, the backbone's is "
            f"{tokenizer_sha256[:12]}…); delete it and rerun the tokens step."
        )
    if corpus_checksum is not None and meta["corpus"]["checksum"] != corpus_checksum:
        raise LangarithError(
            f"{tokens_dir} was made from another corpus (checksum "
            f"{str(meta['corpus']['checksum'])[:12]}… vs {corpus_checksum[:12]}… of the data "
            "folder); delete it and rerun the tokens step."
        )
    entry = meta["splits"].get(split)
    if entry is None:
        raise LangarithError(f"{tokens_dir} has no split {split!r}; rerun the tokens step.")
    arrays = {}
    for kind, dtype, length in (
        ("ids", IDS_DTYPE, int(entry["tokens"])),
        ("offsets", INT_DTYPE, int(entry["docs"]) + 1),
        ("words", INT_DTYPE, int(entry["docs"])),
    ):
        path = tokens_dir / entry["files"][kind]["name"]
        expected = length * dtype.itemsize
        size = path.stat().st_size if path.is_file() else -1
        if size != expected:
            raise LangarithError(
                f"{path} is truncated or changed ({size} bytes, its metadata.json says "
                f"{expected}); delete {tokens_dir} and rerun the tokens step."
            )
        if verify_checksums and sha256_file(path) != entry["files"][kind]["sha256"]:
            raise LangarithError(
                f"{path} does not match the sha256 in its metadata.json; delete "
                f"{tokens_dir} and rerun the tokens step."
            )
        arrays[kind] = (
            np.memmap(path, dtype=dtype, mode="r", shape=(length,))
            if length
            else np.zeros(0, dtype)
        )
    return TokenSplit(arrays["ids"], arrays["offsets"], arrays["words"], int(meta["end_id"]))


# ----------------------------------------------------------------------------- writing


def _iter_rows(source: SourceFile) -> Iterator[dict[str, Any]]:
    """Rows of one jsonl file; its sha256 is computed on the way and checked at the end,
    so a shard that fails its checksum raises before its part is recorded."""
    digest = hashlib.sha256()
    with open(source.path, "rb") as handle:
        for line in handle:
            digest.update(line)
            if line.strip():
                yield json.loads(line)
    if digest.hexdigest() != source.sha256:
        raise LangarithError(
            f"{source.path} fails its checksum (sha256 {digest.hexdigest()[:12]}…, the "
            f"manifest records {source.sha256[:12]}…): the corpus shard was truncated or "
            "changed; rerun the data step."
        )


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[str]]:
    """Non-blank ``text`` fields in lists of ``size``."""
    batch: list[str] = []
    for row in rows:
        text = str(row.get("text") or "")
        if text.strip():
            batch.append(text)
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


def _write_part(
    work: Path, source: SourceFile, encode: Callable[[list[str]], list[list[int]]], end_id: int
) -> dict[str, Any]:
    """Tokenize one source file into ``<part>.ids/.lens/.words`` (temp names, renamed when
    complete); returns its record for ``progress.json``."""
    names = {kind: f"{source.part}.{kind}.bin" for kind in ("ids", "lens", "words")}
    tmps = {kind: work / f".{name}.tmp-{os.getpid()}" for kind, name in names.items()}
    handles = {kind: open(path, "wb") for kind, path in tmps.items()}  # noqa: SIM115
    docs = tokens = words = 0
    try:
        for texts in _batches(_iter_rows(source), TOKENIZE_BATCH):
            encoded = encode(texts)
            lens = np.fromiter((len(ids) + 1 for ids in encoded), INT_DTYPE, len(encoded))
            end = np.array([end_id], dtype=IDS_DTYPE)
            flat = np.concatenate(
                [piece for ids in encoded for piece in (np.asarray(ids, IDS_DTYPE), end)]
            )
            counts = np.fromiter((len(t.split()) for t in texts), INT_DTYPE, len(texts))
            handles["ids"].write(flat.tobytes())
            handles["lens"].write(lens.tobytes())
            handles["words"].write(counts.tobytes())
            docs += len(texts)
            tokens += int(lens.sum())
            words += int(counts.sum())
        for handle in handles.values():
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        for handle in handles.values():
            handle.close()
        for path in tmps.values():
            path.unlink(missing_ok=True)
        raise
    for handle in handles.values():
        handle.close()
    for kind in names:
        os.replace(tmps[kind], work / names[kind])
    return {
        "source": source.path.name,
        "source_sha256": source.sha256,
        "docs": docs,
        "tokens": tokens,
        "words": words,
        "files": {kind: {"name": n, "sha256": sha256_file(work / n)} for kind, n in names.items()},
    }


def _load_progress(work: Path, key: str) -> dict[str, Any]:
    """The parts recorded in ``work`` that belong to ``key`` and still verify; stray or
    damaged files are removed (they are redone)."""
    progress: dict[str, Any] = {"key": key, "parts": {}}
    path = work / PROGRESS
    if path.is_file():
        try:
            saved = read_json(path)
        except LangarithError:
            saved = None
        if isinstance(saved, dict) and saved.get("key") == key:
            for name, part in dict(saved.get("parts") or {}).items():
                files = part["files"].values()
                if all(
                    (work / f["name"]).is_file() and sha256_file(work / f["name"]) == f["sha256"]
                    for f in files
                ):
                    progress["parts"][name] = part
                else:
                    log.warning("token part %s in %s fails its checksum; redoing it", name, work)
        else:
            log.warning("%s belongs to another request or is unreadable; starting over", work)
    work.mkdir(parents=True, exist_ok=True)
    kept = {PROGRESS} | {
        f["name"] for part in progress["parts"].values() for f in part["files"].values()
    }
    for stray in work.iterdir():
        if stray.name not in kept:
            stray.unlink()
    write_json(path, progress)
    return progress


def _progress_bar(total: int, desc: str) -> Any:
    """A tqdm bar over corpus files; in a batch log it updates at most once a minute."""
    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=total, unit="shard", desc=desc, mininterval=0.5 if tty else 60.0)


def _copy_stream(sources: Sequence[Path], dtype: np.dtype, out: Path) -> str:
    """Concatenate raw arrays into ``out`` in bounded chunks; returns its sha256."""
    digest = hashlib.sha256()
    with open(out, "wb") as handle:
        for src in sources:
            with open(src, "rb") as part:
                while chunk := part.read(_COPY_CHUNK * dtype.itemsize):
                    handle.write(chunk)
                    digest.update(chunk)
    return digest.hexdigest()


def _write_offsets(lens_files: Sequence[Path], out: Path) -> str:
    """``offsets.bin`` (0, then the running sum of document lengths) from the parts'
    lengths, chunk by chunk; returns its sha256."""
    digest = hashlib.sha256()
    total = 0
    with open(out, "wb") as handle:
        first = np.zeros(1, INT_DTYPE).tobytes()
        handle.write(first)
        digest.update(first)
        for src in lens_files:
            with open(src, "rb") as part:
                while chunk := part.read(_COPY_CHUNK * INT_DTYPE.itemsize):
                    ends = np.cumsum(np.frombuffer(chunk, INT_DTYPE)) + total
                    total = int(ends[-1])
                    data = ends.astype(INT_DTYPE).tobytes()
                    handle.write(data)
                    digest.update(data)
    return digest.hexdigest()


def _assemble(work: Path, out: Path, progress: dict[str, Any], sources: Sequence[SourceFile]):
    """Per split: the parts concatenated into the three arrays; returns the split entries."""
    splits: dict[str, Any] = {}
    for split in dict.fromkeys(s.split for s in sources):
        parts = [progress["parts"][s.part] for s in sources if s.split == split]
        files = {
            "ids": {"name": f"{split}.ids.bin"},
            "offsets": {"name": f"{split}.offsets.bin"},
            "words": {"name": f"{split}.words.bin"},
        }
        part_files = {
            kind: [work / p["files"][kind]["name"] for p in parts]
            for kind in ("ids", "lens", "words")
        }
        files["ids"]["sha256"] = _copy_stream(
            part_files["ids"], IDS_DTYPE, out / files["ids"]["name"]
        )
        files["offsets"]["sha256"] = _write_offsets(
            part_files["lens"], out / files["offsets"]["name"]
        )
        files["words"]["sha256"] = _copy_stream(
            part_files["words"], INT_DTYPE, out / files["words"]["name"]
        )
        splits[split] = {
            "docs": sum(int(p["docs"]) for p in parts),
            "tokens": sum(int(p["tokens"]) for p in parts),
            "words": sum(int(p["words"]) for p in parts),
            "sources": [p["source"] for p in parts],
            "files": files,
        }
    return splits


def write_token_files(
    out_dir: Path | str,
    sources: Sequence[SourceFile],
    encode: Callable[[list[str]], list[list[int]]],
    *,
    end_id: int,
    vocab_size: int,
    identity: dict[str, Any],
    desc: str,
    stamp: dict[str, Any] | None = None,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Tokenize ``sources`` into the token folder ``out_dir``, resumably and atomically.

    Args:
        sources: the corpus files in stream order (train shards, then validation).
        encode: texts → sub-word ids without special tokens (the backbone tokenizer).
        end_id: the token appended after every document.
        vocab_size: checked to fit ``uint32``.
        identity: what makes the result (``tokenizer_sha256``, ``corpus`` with its
            ``checksum``, …); written to metadata.json; a partial run of another identity
            is discarded.
        desc: label of the progress bar.
        stamp: more metadata that does not decide the result (versions, time).
        check: called with the split entries before the folder is moved into place; it
            raises to refuse the result (nothing is then left that looks finished).
    """
    if vocab_size >= 2**32:
        raise LangarithError(f"A vocabulary of {vocab_size} ids does not fit uint32 token files.")
    out_dir = Path(out_dir)
    work = out_dir.with_name(f".{out_dir.name}.partial")
    key = sha256_json({"format": FORMAT_VERSION, "end_id": end_id, **identity})
    progress = _load_progress(work, key)
    todo = [s for s in sources if s.part not in progress["parts"]]
    if len(todo) < len(sources):
        log.info(
            "%s: resuming, %d of %d parts already done",
            out_dir,
            len(sources) - len(todo),
            len(sources),
        )
    bar = _progress_bar(len(sources), desc)
    bar.update(len(sources) - len(todo))
    try:
        for source in todo:
            progress["parts"][source.part] = _write_part(work, source, encode, end_id)
            write_json(work / PROGRESS, progress)
            bar.update(1)
    finally:
        bar.close()
    with atomic_dir(out_dir) as tmp:
        splits = _assemble(work, tmp, progress, sources)
        if check is not None:
            check(splits)
        meta = {"kind": "token_file", "format": FORMAT_VERSION, "end_id": end_id}
        meta.update(dtype="uint32", **identity, **(stamp or {}), splits=splits)
        write_json(tmp / METADATA, meta)
    shutil.rmtree(work)
    return out_dir
