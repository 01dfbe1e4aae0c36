"""The dataset folders a training run reads (written by :mod:`langarith.data`).

Training checks the folder and the split itself before reading, so that the message
says which split is missing and which ones exist; verifies the split's files against
the folder's manifest (:func:`langarith.data.verify_manifest`), so a file edited after
the manifest was written is refused rather than trained on under the manifest's clean
checksum; reads rows checked field by field (file and line of a bad one); and records
the dataset checksum in the config hash (a changed dataset never resumes an old
checkpoint).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

from langarith import LangarithError
from langarith.data import iter_split, read_manifest, verify_manifest
from langarith.data.formats import MANIFEST
from langarith.io import sha256_file

__all__ = ["data_checksum", "iter_rows", "read_data_manifest", "read_rows"]

log = logging.getLogger(__name__)


def read_rows(data_dir: Path | str, split: str) -> list[dict]:
    """Rows of ``<data_dir>/<split>.jsonl``, verified against the manifest first.

    A missing folder or split, a file that no longer matches the manifest, bytes that
    are not UTF-8 and rows without the dataset's fields are errors naming the file.
    """
    return list(iter_rows(data_dir, split))


def iter_rows(data_dir: Path | str, split: str) -> Iterator[dict]:
    """:func:`read_rows` one row at a time (the folder, split and manifest are checked at once)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise LangarithError(f"Data folder {data_dir} does not exist; prepare the dataset first.")
    path = data_dir / f"{split}.jsonl"
    if not path.exists() and not _sharded(data_dir, split):
        present = sorted(p.stem for p in data_dir.glob("*.jsonl"))
        raise LangarithError(
            f"Split {split!r} is missing in {data_dir}: no {path.name}; "
            f"available splits: {present or 'none'}."
        )
    if (data_dir / MANIFEST).exists():
        verify_manifest(data_dir, [split])
    return iter_split(data_dir, split)


def _sharded(data_dir: Path, split: str) -> bool:
    """Whether the manifest lists ``split`` as shards (a real Wikipedia train split)."""
    if not (data_dir / MANIFEST).exists():
        return False
    return bool(read_manifest(data_dir).get("splits", {}).get(split, {}).get("shards"))


def read_data_manifest(data_dir: Path | str) -> dict:
    """The dataset folder's manifest.json, or ``{}`` (with a warning) when it has none."""
    data_dir = Path(data_dir)
    if not (data_dir / "manifest.json").exists():
        log.warning("%s has no manifest.json; checksums are computed from the files", data_dir)
        return {}
    return dict(read_manifest(data_dir))


def data_checksum(data_dir: Path | str, splits: tuple[str, ...] = ("train", "validation")) -> str:
    """The manifest's ``checksum`` (or a sha256 over the split files if there is none)."""
    data_dir = Path(data_dir)
    manifest = read_data_manifest(data_dir)
    if manifest.get("checksum"):
        return str(manifest["checksum"])
    parts = [
        f"{split}:{sha256_file(data_dir / f'{split}.jsonl')}"
        for split in splits
        if (data_dir / f"{split}.jsonl").exists()
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()
