"""Universal Dependencies 2.7 treebanks (dataset ``ud``), from CoNLL-U files or the hub.

The TLR arm's dependency parsing (the seed's Table 2) trains on English EWT and tests on
af bm eu kpv mr mt myv te ug wo. A row of ``resources/data/ud/<lang>/<split>.jsonl`` is
``{"id", "tokens": [str], "heads": [int], "deprels": [str]}``: the sentence's syntactic
words, each word's head (its 1-based position, 0 for the root) and relation.

Choices, each fixed here once for every treebank:

* **Words, not tokens.** Multiword-token lines (``1-2 don't``) and empty nodes (``8.1``,
  enhanced dependencies only) are skipped: the basic tree is over the integer-ID words,
  which is what LAS is computed on (as the CoNLL 2018 scorer does).
* **Universal relations.** A subtype is cut to its universal part (``nsubj:pass`` →
  ``nsubj``, ``obl:tmod`` → ``obl``): the label sets of the source and target treebanks
  then agree (subtypes are treebank-specific, so a head trained on EWT's could not
  predict Basque's), and every relation is one of the 37 of
  :data:`~langarith.data.formats.UD_RELATIONS`; anything else is refused.
* **Splits.** The hub and UD call the development set ``dev``/``validation``; ours is
  ``validation``. A treebank without a split (bm_crb, kpv_lattice and myv_jr are
  test-only) gets that split written empty, so every folder has the same files.

Sources (:func:`langarith.data.real.prepare_real_dataset` dispatches here): the option
``local_path`` (a folder of a UD release's ``*-ud-{train,dev,test}.conllu``, also under
a ``UD_*`` subfolder, or ``{split: file}``), read line by line; otherwise the hub's
``universal_dependencies`` (config = treebank, read from its parquet export, as the
repository holds a loading script), whose rows carry multiword tokens with head
``None`` and are reduced the same way. Rows are streamed: nothing holds a treebank.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from langarith import LangarithError
from langarith.data.formats import UD_RELATIONS

__all__ = [
    "UD_HUB_PATH",
    "UD_SPLIT_FILES",
    "UD_TREEBANKS",
    "iter_conllu",
    "local_conllu_files",
    "rows_from_hub",
    "rows_from_local",
    "universal_relation",
]

log = logging.getLogger(__name__)

#: The hub repository of UD 2.7 (one config per treebank).
UD_HUB_PATH = "universal-dependencies/universal_dependencies"
#: Language → (treebank, its splits in UD 2.7). English EWT is the source; the others
#: are the seed's Table 2 targets (Komi-Zyrian: Lattice, the larger of its treebanks).
UD_TREEBANKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "en": ("en_ewt", ("train", "validation", "test")),
    "af": ("af_afribooms", ("train", "validation", "test")),
    "bm": ("bm_crb", ("test",)),
    "eu": ("eu_bdt", ("train", "validation", "test")),
    "kpv": ("kpv_lattice", ("test",)),
    "mr": ("mr_ufal", ("train", "validation", "test")),
    "mt": ("mt_mudt", ("train", "validation", "test")),
    "myv": ("myv_jr", ("test",)),
    "te": ("te_mtg", ("train", "validation", "test")),
    "ug": ("ug_udt", ("train", "validation", "test")),
    "wo": ("wo_wtb", ("train", "validation", "test")),
}
#: Our split → the name UD release files use (``en_ewt-ud-dev.conllu``).
UD_SPLIT_FILES: dict[str, str] = {"train": "train", "validation": "dev", "test": "test"}

_RELATIONS = frozenset(UD_RELATIONS)


def universal_relation(deprel: str, where: str) -> str:
    """``deprel`` without its subtype; one that is not a universal relation is an error."""
    rel = str(deprel).split(":", 1)[0]
    if rel not in _RELATIONS:
        raise LangarithError(
            f"{where}: relation {deprel!r} is not a UD v2 universal relation (or a subtype "
            "of one); check that the file is CoNLL-U of UD version 2"
        )
    return rel


def _sentence(words: list[tuple[str, str, str]], sent_id: str | None, fallback: str, where: str):
    tokens, heads, rels = [], [], []
    for form, head, deprel in words:
        try:
            head_index = int(head)
        except ValueError:
            raise LangarithError(f"{where}: head {head!r} of {form!r} is not a number") from None
        tokens.append(form)
        heads.append(head_index)
        rels.append(universal_relation(deprel, where))
    return {"id": sent_id or fallback, "tokens": tokens, "heads": heads, "deprels": rels}


def iter_conllu(lines: Iterable[str], prefix: str, where: str) -> Iterator[dict[str, Any]]:
    """Sentences of CoNLL-U ``lines`` as rows, one at a time.

    ``# sent_id = …`` comments name rows (else ``<prefix>-<i>``); lines whose ID is a
    range (``1-2``) or decimal (``1.1``) are skipped; a line without ten tab-separated
    columns is an error naming ``where`` and the line number.
    """
    words: list[tuple[str, str, str]] = []
    sent_id: str | None = None
    count = 0
    number = 0
    for number, raw in enumerate(lines, start=1):  # noqa: B007 (number names the last line)
        line = raw.rstrip("\r\n")
        if not line.strip():
            if words:
                yield _sentence(words, sent_id, f"{prefix}-{count}", f"{where}:{number}")
                count += 1
            words, sent_id = [], None
            continue
        if line.startswith("#"):
            key, sep, value = line[1:].partition("=")
            if sep and key.strip() == "sent_id":
                sent_id = value.strip()
            continue
        columns = line.split("\t")
        if len(columns) != 10:
            raise LangarithError(
                f"{where}:{number}: {len(columns)} tab-separated columns, CoNLL-U has 10"
            )
        if "-" in columns[0] or "." in columns[0]:
            continue  # multiword token or empty node: not a word of the basic tree
        words.append((columns[1], columns[6], columns[7]))
    if words:
        yield _sentence(words, sent_id, f"{prefix}-{count}", f"{where}:{number}")


def _read_conllu(path: Path, prefix: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        yield from iter_conllu(handle, prefix, str(path))


def local_conllu_files(local_path: Any, treebank: str | None) -> dict[str, list[Path]]:
    """Our split → CoNLL-U files, from a folder (a UD release's treebank folder, or a
    folder holding ``UD_*`` treebank folders) or a ``{split: file(s)}`` mapping."""
    if isinstance(local_path, Mapping):
        files = {
            str(s): [Path(p) for p in ([v] if isinstance(v, str | Path) else v)]
            for s, v in local_path.items()
        }
        unknown = sorted(set(files) - set(UD_SPLIT_FILES))
        if unknown:
            raise LangarithError(
                f"ud local_path names split(s) {unknown}; use {sorted(UD_SPLIT_FILES)}"
            )
    else:
        root = Path(local_path)
        if root.is_file():
            raise LangarithError(
                f"ud local_path {root} is one file; give the treebank's folder or a mapping "
                "{split: file} (train, validation, test)"
            )
        if not root.is_dir():
            raise LangarithError(f"ud local_path {root} does not exist")
        files = {}
        for split, name in UD_SPLIT_FILES.items():
            stem = f"{treebank}-ud-{name}" if treebank else f"*-ud-{name}"
            found = sorted(root.glob(f"{stem}.conllu")) or sorted(root.glob(f"UD_*/{stem}.conllu"))
            if len(found) > 1:
                raise LangarithError(
                    f"ud local_path {root} holds several {name} files {[str(p) for p in found]}; "
                    "give the treebank's own folder or a mapping {split: file}"
                )
            if found:
                files[split] = found
    for paths in files.values():
        for path in paths:
            if path.suffix != ".conllu" or not path.is_file():
                raise LangarithError(f"ud local file {path} must exist and end in .conllu")
    if not files:
        raise LangarithError(
            f"ud local_path {local_path} has no *-ud-train/dev/test.conllu files"
            + (f" of {treebank}" if treebank else "")
        )
    return files


def rows_from_local(files: Mapping[str, list[Path]], lang: str) -> dict[str, Iterator[dict]]:
    """Our three splits as row streams (a split without files is empty)."""

    def stream(split: str) -> Iterator[dict[str, Any]]:
        for path in files.get(split, []):
            yield from _read_conllu(path, f"{lang}-{split}")

    return {split: stream(split) for split in UD_SPLIT_FILES}


def rows_from_hub(
    rows: Iterable[Mapping[str, Any]], prefix: str, where: str
) -> Iterator[dict[str, Any]]:
    """Rows of the hub's ``universal_dependencies`` (``tokens``, ``head``, ``deprel``
    lists, heads as strings) as ours: positions whose head is not a number (multiword
    tokens: ``None``; empty nodes: ``_``) are dropped."""
    for i, row in enumerate(rows):
        words = [
            (str(form), str(head), str(rel))
            for form, head, rel in zip(row["tokens"], row["head"], row["deprel"], strict=True)
            if head is not None and str(head).isdigit()
        ]
        if words:
            sent_id = str(row.get("idx") or "") or None
            yield _sentence(words, sent_id, f"{prefix}-{i}", f"{where} row {i}")
