"""The BAD-X baseline of the TLR seed: one bilingual language adapter per (source, target).

BAD-X (Parović et al. 2022) trains a language adapter with MLM on the text of both
languages of a transfer pair, without an invertible adapter, puts the task adapter on
it and keeps the same adapter at inference in the target language. Here the bilingual
corpus is a Wikipedia data folder whose documents alternate between the two languages'
folders (source first; the longer one's rest at the end), for the train and the
validation split, and the adapter is trained by the core's language-adapter trainer from
a θ_init of its own: the core's bottleneck without the invertible adapter. The seed
does not give BAD-X's own training settings, so the core's are used
(``language_adapter.training``, then ``tlr.badx.training``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langarith import LangarithError
from langarith.data import get_spec, iter_split, read_manifest, write_dataset
from langarith.tlr.variants import pair_name
from langarith.train.language_adapter import train_language_adapter

__all__ = ["BADX_REVISION", "train_badx_language_adapter", "write_bilingual_corpus"]

#: Revision recorded in a bilingual corpus's manifest (bump when the interleave changes).
BADX_REVISION = "tlr-badx/1"


def _interleaved(first: Path, second: Path, split: str) -> Iterator[dict[str, Any]]:
    """Documents of ``first`` and ``second`` in turn; the longer one's rest at the end."""
    for pair in itertools.zip_longest(iter_split(first, split), iter_split(second, split)):
        for row in pair:
            if row is not None:
                yield row


def write_bilingual_corpus(
    source_dir: Path | str, target_dir: Path | str, out_dir: Path | str
) -> Path:
    """Write the bilingual Wikipedia folder of two languages' folders (data format of
    :mod:`langarith.data`, so the core's tokenizer and trainer read it)."""
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    manifests = [read_manifest(source_dir), read_manifest(target_dir)]
    for folder, manifest in zip((source_dir, target_dir), manifests, strict=True):
        if manifest.get("dataset") != "wikipedia":
            raise LangarithError(f"BAD-X reads Wikipedia folders; {folder} is not one")
    source, target = (str(m["language"]) for m in manifests)
    if source == target:
        raise LangarithError(f"BAD-X needs two languages; both folders are {source}")
    splits = {
        split: _interleaved(source_dir, target_dir, split) for split in get_spec("wikipedia").splits
    }
    return write_dataset(
        out_dir,
        "wikipedia",
        pair_name(source, target),
        splits,
        source=f"local:{source_dir}+{target_dir}",
        revision=BADX_REVISION,
        options={
            "languages": [source, target],
            "order": "documents alternate, source first",
            "checksums": [m.get("checksum") for m in manifests],
        },
    )


def train_badx_language_adapter(
    backbone_dir: Path | str,
    init_dir: Path | str,
    corpus_dir: Path | str,
    out_dir: Path | str,
    *,
    seed: int,
    hparams: dict[str, Any] | None = None,
    checkpoint_dir: Path | str | None = None,
) -> Path:
    """The core's language-adapter trainer on a bilingual corpus (its token files are
    built into a temporary folder: no other stage reads them)."""
    return train_language_adapter(
        backbone_dir,
        init_dir,
        corpus_dir,
        out_dir,
        seed=seed,
        hparams=hparams,
        checkpoint_dir=checkpoint_dir,
        tokens_dir=None,
    )
