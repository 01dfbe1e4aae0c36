"""The tokens stage: a Wikipedia corpus tokenized once per (backbone, language).

Every seed of a language adapter and every token-budget adapter of that language reads
the same token folder (``results/tokens/<model>/<lang>/``, format in
:mod:`langarith.training.token_files`) instead of tokenizing the corpus again, and reads
it by memory map, so training memory does not grow with the corpus. The folder records
the checksum of the tokenizer files and of the corpus manifest; training refuses a
folder whose checksums do not match its backbone and data.

Command line::

    langarith train tokens --backbone resources/backbones/mbert \\
        --data resources/data/wikipedia/de --out results/tokens/mbert/de
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from langarith import LangarithError
from langarith.backbone.folder import backbone_fingerprint, check_backbone_dir, load_tokenizer
from langarith.data import read_manifest, split_files
from langarith.io import sha256_file
from langarith.provenance import utc_now, versions
from langarith.training.inputs import data_checksum
from langarith.training.mlm import special_ids
from langarith.training.token_files import SourceFile, read_token_metadata, write_token_files

__all__ = ["TOKENIZER_FILES", "corpus_sources", "tokenize_corpus", "tokenizer_checksum"]

log = logging.getLogger(__name__)

#: Files of a backbone folder that decide how text becomes ids.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
)

SPLITS = ("train", "validation")


def tokenizer_checksum(backbone_dir: Path | str) -> str:
    """SHA-256 over ``"<file> <sha256>"`` lines of the backbone's tokenizer files."""
    backbone_dir = Path(backbone_dir)
    check_backbone_dir(backbone_dir)
    lines = [
        f"{name} {sha256_file(backbone_dir / name)}\n"
        for name in TOKENIZER_FILES
        if (backbone_dir / name).is_file()
    ]
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def corpus_sources(data_dir: Path | str) -> list[SourceFile]:
    """The files of the train and validation splits in stream order, with the sha256
    their manifest records (each shard's own, or the split file's)."""
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    sources = []
    for split in SPLITS:
        entry = manifest["splits"].get(split)
        if entry is None:
            raise LangarithError(
                f"{data_dir} has no {split!r} split; a language adapter needs train and "
                "validation text. Rerun the data step."
            )
        files = split_files(data_dir, split)
        sums = [s["sha256"] for s in entry["shards"]] if entry.get("shards") else [entry["sha256"]]
        for path, digest in zip(files, sums, strict=True):
            if not path.is_file():
                raise LangarithError(f"{path} is missing; rerun the data step.")
            sources.append(SourceFile(split, path, str(digest)))
    return sources


def tokenize_corpus(backbone_dir: Path | str, data_dir: Path | str, out_dir: Path | str) -> Path:
    """Write the token folder of one corpus for one backbone (resumable, atomic).

    Either split being empty (no non-blank text) is an error: the validation split picks
    the best checkpoint.
    """
    backbone_dir, data_dir, out_dir = Path(backbone_dir), Path(data_dir), Path(out_dir)
    tokenizer = load_tokenizer(backbone_dir)
    _, end_id = special_ids(tokenizer)
    manifest = read_manifest(data_dir)
    lang = str(manifest.get("language", data_dir.name))

    def encode(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]

    def require_text(splits: dict) -> None:
        for split, file, why in (
            ("train", "train.jsonl", "a language adapter needs a non-empty train split"),
            (
                "validation",
                "validation.jsonl",
                "the best checkpoint is chosen by validation loss, so the split must not be empty",
            ),
        ):
            if not splits[split]["docs"]:
                raise LangarithError(f"Language {lang!r} has no text in {data_dir / file}; {why}.")

    write_token_files(
        out_dir,
        corpus_sources(data_dir),
        encode,
        end_id=end_id,
        vocab_size=len(tokenizer),
        identity={
            "tokenizer_sha256": tokenizer_checksum(backbone_dir),
            "backbone": backbone_fingerprint(backbone_dir),
            "corpus": {
                "dir": str(data_dir),
                "checksum": data_checksum(data_dir),
                "dataset": manifest.get("dataset"),
                "language": lang,
            },
        },
        desc=f"tokens {lang}",
        stamp={"versions": versions(), "created_utc": utc_now()},
        check=require_text,
    )
    train = read_token_metadata(out_dir)["splits"]["train"]
    log.info(
        "Tokens of %s: %d train documents (%d ids, %d whitespace tokens) -> %s",
        *(lang, train["docs"], train["tokens"], train["words"], out_dir),
    )
    return out_dir
