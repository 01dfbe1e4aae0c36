"""The TLR arm's datasets (issue 17): CoNLL-2003, MasakhaNER and TyDiQA-GoldP.

Each runs the real loader on tiny local files: the hub code path on a folder laid out
as the repository's parquet export (``hub_path``), and the local-file path
(``local_path``); nothing reaches the hub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import pytest
from hub_mirror import QA_FEATURES

from langarith import LangarithError, languages
from langarith.data import (
    DATASETS,
    UncoveredLanguageError,
    dataset_covers,
    prepare_demo_dataset,
    prepare_real_dataset,
    read_manifest,
    read_split,
    verify_dataset,
)
from langarith.data.formats import CONLL2003_LABELS, MASAKHANER_LABELS

MASAKHANER_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=list(MASAKHANER_LABELS))),
    }
)


def _write_parquet(path: Path, rows: list[dict[str, Any]], features: datasets.Features) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))


def _options(repo: Path, tmp_path: Path) -> dict[str, str]:
    return {"hub_path": str(repo), "cache_dir": str(tmp_path / "cache")}


def test_registry_and_codes() -> None:
    assert DATASETS["conll2003"].languages == {"en"}
    assert DATASETS["masakhaner"].languages >= set("ha ig rw lg luo pcm sw wo yo".split())
    assert DATASETS["tydiqa"].languages >= set("ar bn sw te th".split())
    assert DATASETS["tydiqa"].splits == ("test",)  # GoldP has no test split
    assert not dataset_covers("masakhaner", "en") and not dataset_covers("tydiqa", "hi")
    # ISO 639-3 codes of languages without a two-letter one pass the config check
    assert languages.code_problem("luo") is None and languages.code_problem("pcm") is None
    assert "'sw'" in str(languages.code_problem("swa"))
    # after CoNLL MISC and MasakhaNER DATE go to O, the two tag sets are the same
    drop = {"B-MISC", "I-MISC", "B-DATE", "I-DATE"}
    assert set(CONLL2003_LABELS) - drop == set(MASAKHANER_LABELS) - drop


def test_masakhaner_from_a_mirror_of_its_parquet_export(tmp_path: Path) -> None:
    """Configs are ISO 639-3 (``hau``) while our code is ``ha``; tag names come from the
    class label, DATE kept (the TLR arm maps it to O through ``tlr.o_labels``)."""
    repo = tmp_path / "masakhane" / "masakhaner"
    for split, n in (("train", 3), ("validation", 2), ("test", 2)):
        rows = [
            {
                "id": str(i),
                "tokens": ["Audu", "ya", "je", "Kano", "jiya"],
                "ner_tags": [1, 0, 0, 5, 7],
            }
            for i in range(n)
        ]
        _write_parquet(repo / "hau" / split / "0000.parquet", rows, MASAKHANER_FEATURES)
    out = prepare_real_dataset(
        "masakhaner", "ha", tmp_path / "ha", options=_options(repo, tmp_path)
    )
    manifest = verify_dataset(out)
    assert manifest["revision"] == "refs/convert/parquet"
    assert manifest["labels"] == list(MASAKHANER_LABELS)
    assert {s: e["rows"] for s, e in manifest["splits"].items()} == {
        "train": 3,
        "validation": 2,
        "test": 2,
    }
    assert read_split(out, "test")[0]["ner_tags"] == ["B-PER", "O", "O", "B-LOC", "B-DATE"]
    with pytest.raises(UncoveredLanguageError, match="does not cover language 'de'"):
        prepare_real_dataset("masakhaner", "de", tmp_path / "de", options=_options(repo, tmp_path))


def test_masakhaner_local_files_in_an_iso639_3_folder(tmp_path: Path) -> None:
    """A local copy laid out like the hub (``luo/<split>.jsonl``) with int tags and no
    class label: MasakhaNER's own tag order, not WikiANN's."""
    root = tmp_path / "local"
    for split in ("train", "validation", "test"):
        path = root / "luo" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        row = {"id": "0", "tokens": ["Odinga", "e", "Kisumu", "2021"], "ner_tags": [1, 0, 5, 7]}
        path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    out = prepare_real_dataset(
        "masakhaner", "luo", tmp_path / "luo", options={"local_path": str(root)}
    )
    assert read_split(out, "train")[0]["ner_tags"] == ["B-PER", "O", "B-LOC", "B-DATE"]
    assert read_manifest(out)["language"] == "luo"


def test_conll2003_keeps_misc_in_its_own_tag_order(tmp_path: Path) -> None:
    root = tmp_path / "local"
    root.mkdir()
    for split in ("train", "validation", "test"):
        rows = [
            {
                "id": "0",
                "tokens": ["EU", "rejects", "German", "call"],
                "pos_tags": [22, 42, 16, 21],
                "chunk_tags": [11, 21, 11, 12],
                "ner_tags": [3, 0, 7, 0],
            }
        ]
        (root / f"{split}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
        )
    out = prepare_real_dataset(
        "conll2003", "en", tmp_path / "en", options={"local_path": str(root)}
    )
    assert read_split(out, "validation")[0] == {
        "id": "0",
        "tokens": ["EU", "rejects", "German", "call"],
        "ner_tags": ["B-ORG", "O", "B-MISC", "O"],
    }  # POS and chunk tags are dropped
    assert read_manifest(out)["labels"] == list(CONLL2003_LABELS)


def _tydiqa_rows() -> list[dict[str, Any]]:
    rows = []
    for lang, n in (("swahili", 3), ("arabic", 2), ("english", 1)):
        for i in range(n):
            context = f"{lang} {i}: Nairobi ni mji mkuu wa Kenya."
            rows.append(
                {
                    "id": f"{lang}-{1000 + i}-0",
                    "title": "Kenya",
                    "context": context,
                    "question": f"Mji mkuu ({i})?",
                    "answers": {"text": ["Nairobi"], "answer_start": [context.index("Nairobi")]},
                }
            )
    return rows


def test_tydiqa_language_rows_of_validation_become_test(tmp_path: Path) -> None:
    """One validation file for every language: the language's rows (by id prefix), all
    of them, are the test split; another language's rows never leak in."""
    repo = tmp_path / "google-research-datasets" / "tydiqa"
    _write_parquet(
        repo / "secondary_task" / "validation" / "0000.parquet", _tydiqa_rows(), QA_FEATURES
    )
    out = prepare_real_dataset("tydiqa", "sw", tmp_path / "sw", options=_options(repo, tmp_path))
    manifest = verify_dataset(out)
    assert list(manifest["splits"]) == ["test"]
    rows = read_split(out, "test")
    assert [r["id"] for r in rows] == ["swahili-1000-0", "swahili-1001-0", "swahili-1002-0"]
    first = rows[0]
    start = first["answers"]["answer_start"][0]
    assert first["context"][start : start + len("Nairobi")] == "Nairobi"
    assert (
        len(
            read_split(
                prepare_real_dataset(
                    "tydiqa", "ar", tmp_path / "ar", options=_options(repo, tmp_path)
                ),
                "test",
            )
        )
        == 2
    )
    with pytest.raises(LangarithError, match="no validation rows of 'th'"):
        prepare_real_dataset("tydiqa", "th", tmp_path / "th", options=_options(repo, tmp_path))
    assert not (tmp_path / "th").exists()


def test_demo_rows_have_the_real_format(tmp_path: Path) -> None:
    """The offline demo writes the same splits, manifest keys and row shapes."""
    repo = tmp_path / "google-research-datasets" / "tydiqa"
    _write_parquet(
        repo / "secondary_task" / "validation" / "0000.parquet", _tydiqa_rows(), QA_FEATURES
    )
    real = prepare_real_dataset("tydiqa", "sw", tmp_path / "real", options=_options(repo, tmp_path))
    small = {"task_train_rows": 4, "task_validation_rows": 3, "task_test_rows": 3}
    demo = prepare_demo_dataset("tydiqa", "ru", tmp_path / "demo", options=small)
    assert list(read_manifest(demo)["splits"]) == list(read_manifest(real)["splits"]) == ["test"]
    assert set(read_manifest(demo)) == set(read_manifest(real))
    assert set(read_split(demo, "test")[0]) == set(read_split(real, "test")[0])
    for name, lang in (("conll2003", "en"), ("masakhaner", "de")):
        out = prepare_demo_dataset(
            name, lang, tmp_path / name, options={**small, "respect_coverage": False}
        )
        assert read_manifest(out)["labels"] == list(DATASETS[name].labels)
        assert set(read_manifest(out)["splits"]) == {"train", "validation", "test"}
