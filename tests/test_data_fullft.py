"""The datasets of the full-model arm (task-arithmetic-crosslingual) on tiny local files.

AmericasNLI (through a local mirror of the hub's parquet export, Aymara's hub code),
MARC binarised, SMSA with the NusaX test texts left out, NusaX-senti's label names, and a
language's own text (a ``sha256sum`` manifest) instead of its Wikipedia.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import datasets
import pytest

from langarith import LangarithError
from langarith.data import DATASETS, prepare_real_dataset, read_manifest, read_split, verify_dataset
from langarith.data.real import _hub_attempts, normalise_text


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _splits(folder: Path, rows: dict[str, list[dict[str, Any]]]) -> Path:
    for split, part in rows.items():
        _jsonl(folder / f"{split}.jsonl", part)
    return folder


# ----------------------------------------------------------------------------- AmericasNLI


def test_americasnli_reads_the_parquet_export_under_the_hubs_code(tmp_path: Path) -> None:
    features = datasets.Features(
        {
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            # another order than ours: names, not positions, decide
            "label": datasets.ClassLabel(names=["neutral", "contradiction", "entailment"]),
        }
    )
    repo = tmp_path / "americas_nli"
    for split, n in (("validation", 3), ("test", 4)):
        rows = [{"premise": f"p{i}", "hypothesis": f"h{i}", "label": i % 3} for i in range(n)]
        folder = repo / "aym" / split
        folder.mkdir(parents=True)
        datasets.Dataset.from_list(rows, features=features).to_parquet(str(folder / "0.parquet"))
    out = prepare_real_dataset(
        "americasnli",
        "ay",
        tmp_path / "out",
        options={"hub_path": str(repo), "cache_dir": str(tmp_path / "cache")},
    )
    manifest = verify_dataset(out)
    assert manifest["language"] == "ay" and set(manifest["splits"]) == {"validation", "test"}
    # hub 0 neutral, 1 contradiction, 2 entailment -> ours 1, 2, 0
    assert [r["label"] for r in read_split(out, "test")] == [1, 2, 0, 1]


def test_americasnli_hub_files_and_codes() -> None:
    spec = DATASETS["americasnli"]
    assert spec.languages == frozenset("ay bzd cni gn hch nah oto quy shp tar".split())
    attempts = _hub_attempts(spec, "ay", None, spec.hub_path, {})
    assert attempts[0].data_files == {
        "validation": ["aym/validation/*.parquet"],
        "test": ["aym/test/*.parquet"],
    }
    assert _hub_attempts(spec, "quy", None, spec.hub_path, {})[1].data_files["test"] == [
        "quy/*-test.parquet"
    ]


# ----------------------------------------------------------------------------- MARC


def _review(i: int, stars: int, title: str = "Title", body: str = "Body") -> dict[str, Any]:
    return {
        "review_id": f"r{i}",
        "product_id": "p",
        "reviewer_id": "u",
        "stars": stars,
        "review_body": body,
        "review_title": title,
        "language": "de",
        "product_category": "home",
    }


def test_marc_is_binarised_and_the_dropped_reviews_counted(tmp_path: Path) -> None:
    train = [_review(i, stars) for i, stars in enumerate([1, 2, 3, 4, 5, 3])]
    train[0] = _review(0, 1, title="Schlecht", body="Ging kaputt.")
    train[4] = _review(4, 5, title="", body="Super.")
    local = _splits(
        tmp_path / "marc",
        {"train": train, "validation": [_review(9, 3), _review(10, 4)], "test": [_review(11, 2)]},
    )
    out = prepare_real_dataset("marc", "de", tmp_path / "out", options={"local_path": str(local)})
    rows = read_split(out, "train")
    assert [r["id"] for r in rows] == ["r0", "r1", "r3", "r4"]
    assert [r["label"] for r in rows] == [0, 0, 1, 1]
    assert rows[0]["text"] == "Schlecht\n\nGing kaputt." and rows[3]["text"] == "Super."
    manifest = read_manifest(out)
    assert manifest["labels"] == ["negative", "positive"]
    assert manifest["dropped"] == {"neutral_3_stars": {"train": 2, "validation": 1}}
    assert {s: e["rows"] for s, e in manifest["splits"].items()} == {
        "train": 4,
        "validation": 1,
        "test": 1,
    }


def test_marc_bad_stars_and_missing_files_are_clear(tmp_path: Path) -> None:
    local = _splits(
        tmp_path / "marc",
        {"train": [_review(0, 7)], "validation": [_review(1, 1)], "test": [_review(2, 1)]},
    )
    with pytest.raises(LangarithError, match="stars 7 is not a whole number from 1 to 5"):
        prepare_real_dataset("marc", "fr", tmp_path / "out", options={"local_path": str(local)})
    (local / "test.jsonl").unlink()
    with pytest.raises(LangarithError, match=r"no files for the hub split\(s\) \['test'\]"):
        prepare_real_dataset("marc", "fr", tmp_path / "out", options={"local_path": str(local)})
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- SMSA / NusaX


def _nusax_id(tmp_path: Path) -> Path:
    """NusaX Indonesian with labels by name (the hub's ClassLabel order is by name)."""
    test = [
        {"id": "1", "text": "Makanannya enak sekali!", "lang": "ind", "label": "positive"},
        {"id": "2", "text": "Pelayanan lambat, kecewa.", "lang": "ind", "label": "negative"},
        {"id": "3", "text": "Biasa saja", "lang": "ind", "label": "neutral"},
    ]
    other = [{"id": "9", "text": "Tempatnya bersih", "lang": "ind", "label": "positive"}]
    local = _splits(tmp_path / "nusax", {"train": other, "validation": other, "test": test})
    return prepare_real_dataset(
        "nusax", "id", tmp_path / "data/nusax/id", options={"local_path": str(local)}
    )


def test_nusax_labels_by_name(tmp_path: Path) -> None:
    out = _nusax_id(tmp_path)
    assert [r["label"] for r in read_split(out, "test")] == [2, 0, 1]
    assert read_manifest(out)["labels"] == ["negative", "neutral", "positive"]


def test_normalisation_is_case_space_and_punctuation() -> None:
    assert normalise_text("  Makanannya ENAK,sekali !! ") == "makanannya enak sekali"
    assert normalise_text("Pelayanan  lambat , kecewa") == normalise_text(
        "pelayanan lambat, kecewa."
    )
    assert normalise_text("enak sekali") != normalise_text("enak sekalii")


def test_smsa_leaves_out_the_nusax_test_texts_and_counts_them(tmp_path: Path) -> None:
    nusax = _nusax_id(tmp_path)
    # IndoNLU's int labels: 0 positive, 1 neutral, 2 negative (its documented order)
    train = [
        {"text": "Makanannya enak sekali!", "label": 0},  # exact copy
        {"text": "makanannya enak  sekali", "label": 0},  # normalised copy
        {"text": "Pelayanan lambat , kecewa", "label": 2},  # normalised copy
        {"text": "Tempatnya bersih", "label": 0},  # in NusaX train only: kept
        {"text": "Harganya mahal", "label": 2},
    ]
    validation = [{"text": "Biasa saja", "label": 1}, {"text": "Lumayan", "label": 1}]
    test = [{"text": "Tidak enak", "label": 2}]
    local = _splits(tmp_path / "smsa", {"train": train, "validation": validation, "test": test})
    out = prepare_real_dataset(
        "smsa",
        "id",
        tmp_path / "data/smsa/id",
        options={"local_path": str(local), "exclude_texts_of": str(nusax)},
    )
    rows = read_split(out, "train")
    assert [r["text"] for r in rows] == ["Tempatnya bersih", "Harganya mahal"]
    assert [r["label"] for r in rows] == [2, 0]  # positive, negative in our order
    assert [r["label"] for r in read_split(out, "validation")] == [1]
    excluded = read_manifest(out)["excluded"]
    assert excluded["removed"] == {"train": 3, "validation": 1}
    assert excluded["exact"] == 2 and excluded["normalised_only"] == 2
    assert excluded["against"].startswith("nusax/id test")
    assert "lower-cased" in excluded["normalisation"]
    verify_dataset(out)


def test_smsa_exclusion_needs_a_prepared_folder(tmp_path: Path) -> None:
    local = _splits(
        tmp_path / "smsa", {s: [{"text": "a", "label": 0}] for s in ("train", "validation", "test")}
    )
    with pytest.raises(LangarithError, match="exclude_texts_of .* is not a prepared data folder"):
        prepare_real_dataset(
            "smsa",
            "id",
            tmp_path / "out",
            options={"local_path": str(local), "exclude_texts_of": str(tmp_path / "none")},
        )
    with pytest.raises(LangarithError, match="Unknown option"):
        prepare_real_dataset(
            "nusax", "ace", tmp_path / "out", options={"exclude_texts_of": str(tmp_path)}
        )


def test_sentiment_label_outside_the_names_is_refused(tmp_path: Path) -> None:
    rows = {s: [{"text": "a", "label": "happy"}] for s in ("train", "validation", "test")}
    local = _splits(tmp_path / "nusax", rows)
    with pytest.raises(LangarithError, match="label 'happy' is neither 0..2 nor one of"):
        prepare_real_dataset("nusax", "bbc", tmp_path / "out", options={"local_path": str(local)})


def test_nusax_hub_codes() -> None:
    spec = DATASETS["nusax"]
    assert spec.hub_lang("jv") == "jav" and spec.hub_lang("ace") == "ace"
    attempts = _hub_attempts(spec, "su", None, spec.hub_path, {})
    assert attempts[1].data_files["test"] == ["sun/*-test.parquet"]


# ----------------------------------------------------------------------------- local text


def _text_corpus(folder: Path, lines: int = 30) -> Path:
    folder.mkdir(parents=True)
    names = []
    for k in range(2):
        text = "".join(f"kay {k} arupa {i} jach'a\n\n" for i in range(lines))
        (folder / f"part{k}.txt").write_text(text, encoding="utf-8")
        names.append(f"part{k}.txt")
    listing = "".join(
        f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in names
    )
    (folder / "SHA256SUMS").write_text("# sha256sum part*.txt\n" + listing, encoding="utf-8")
    return folder / "SHA256SUMS"


def test_text_of_local_files_replaces_wikipedia(tmp_path: Path) -> None:
    manifest = _text_corpus(tmp_path / "text" / "bzd")
    out = prepare_real_dataset(
        "wikipedia",
        "bzd",  # no Wikipedia: the coverage check does not apply to own text
        tmp_path / "data/wikipedia/bzd",
        options={"text_manifest": str(manifest), "validation_docs": 5},
    )
    found = verify_dataset(out)
    assert found["source"] == f"text:{manifest}" and found["revision"].startswith("sha256:")
    assert found["splits"]["validation"]["rows"] == 5
    assert found["splits"]["train"]["rows"] == 55  # 60 non-empty lines
    first = read_split(out, "validation")[0]
    assert first == {"id": "part0.txt:1", "text": "kay 0 arupa 0 jach'a"}


def test_text_manifest_errors(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(LangarithError, match=r"data\.text\.tar.*manifest .* does not exist"):
        prepare_real_dataset("wikipedia", "tar", out, options={"text_manifest": str(tmp_path)})
    manifest = _text_corpus(tmp_path / "text")
    (tmp_path / "text" / "part1.txt").write_text("changed\n", encoding="utf-8")
    with pytest.raises(LangarithError, match=r"part1\.txt has sha256 .* restore the file"):
        prepare_real_dataset("wikipedia", "tar", out, options={"text_manifest": str(manifest)})
    (tmp_path / "text" / "part1.txt").unlink()
    with pytest.raises(LangarithError, match=r"file\(s\) .*part1\.txt.* are missing"):
        prepare_real_dataset("wikipedia", "tar", out, options={"text_manifest": str(manifest)})
    manifest.write_text("not a checksum line\n", encoding="utf-8")
    with pytest.raises(LangarithError, match="expected '<sha256>  <file>'"):
        prepare_real_dataset("wikipedia", "tar", out, options={"text_manifest": str(manifest)})
    assert not out.exists()
