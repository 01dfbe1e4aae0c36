"""The data stage: format, checksums, the real loaders on local files, and the demo."""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from langarith import LangarithError
from langarith.data import (
    DATASETS,
    NER_LABELS,
    UncoveredLanguageError,
    covered_languages,
    dataset_covers,
    demo_languages,
    iter_split,
    prepare_demo_dataset,
    prepare_real_dataset,
    read_manifest,
    read_split,
    register_cli,
    verify_dataset,
    write_dataset,
)
from langarith.data.demo import DEMO_LANGUAGES, _word_list
from langarith.data.formats import combined_checksum


def _codes(text: str) -> set[str]:
    return set(text.split())


PAPER_LANGS = sorted(_codes("ar bg de el es fr hi ru sw tr ur vi zh"))
SMALL_DEMO = {
    "task_train_rows": 30,
    "task_validation_rows": 9,
    "task_test_rows": 9,
    "wikipedia_train_docs": 12,
    "validation_docs": 4,
}


# ------------------------------------------------------------------ registry


def test_coverage_matches_the_papers() -> None:
    assert DATASETS["wikiann"].languages >= set(
        _codes("en fa it ca pt ro as uk nl pl cs") | set(PAPER_LANGS)
    )
    assert len(DATASETS["wikiann"].languages) >= 170
    assert DATASETS["xnli"].languages == _codes("ar bg de el en es fr hi ru sw th tr ur vi zh")
    assert DATASETS["xquad"].languages == _codes("ar de el en es hi ro ru th tr vi zh")
    assert DATASETS["squad"].languages == {"en"}
    assert DATASETS["indicxnli"].languages == _codes("as bn gu hi kn ml mr or pa ta te")
    assert DATASETS["wikipedia"].languages >= DATASETS["wikiann"].languages
    assert DATASETS["xquad"].splits == ("validation", "test")
    assert DATASETS["wikiann"].labels == NER_LABELS
    assert dataset_covers("xquad", "de") and not dataset_covers("xquad", "bg")


def test_unknown_dataset_lists_valid_names() -> None:
    with pytest.raises(LangarithError, match=r"Unknown dataset 'foo'.*wikiann"):
        dataset_covers("foo", "en")


def test_covered_languages_skips_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        covered, skipped = covered_languages("xquad", PAPER_LANGS)
    assert skipped == ["bg", "fr", "sw", "ur"]
    assert covered == [x for x in PAPER_LANGS if x not in skipped]
    for lang in skipped:
        assert f"'{lang}'" in caplog.text


# -------------------------------------------------------------------- format


def _write_small(out: Path) -> Path:
    rows = {
        "train": [{"id": "a", "premise": "P.", "hypothesis": "H.", "label": 0}] * 3,
        "validation": [{"id": "b", "premise": "P.", "hypothesis": "H.", "label": 1}],
        "test": iter([{"id": "c", "premise": "P.", "hypothesis": "H.", "label": 2}]),
    }
    return write_dataset(
        out, "xnli", "de", rows, source="test", revision="r", options={"x": Path("p")}
    )


def test_write_read_and_manifest(tmp_path: Path) -> None:
    out = _write_small(tmp_path / "xnli" / "de")
    manifest = read_manifest(out)
    assert manifest["source"] == "test" and manifest["options"] == {"x": "p"}
    assert manifest["labels"] == ["entailment", "neutral", "contradiction"]
    assert {s: e["rows"] for s, e in manifest["splits"].items()} == {
        "train": 3,
        "validation": 1,
        "test": 1,
    }
    sums = {s: e["sha256"] for s, e in manifest["splits"].items()}
    assert manifest["checksum"] == combined_checksum(sums)
    # the same checksums with hashlib, straight from the files and the documented format
    for split in ("train", "validation", "test"):
        digest = hashlib.sha256((out / f"{split}.jsonl").read_bytes()).hexdigest()
        assert sums[split] == digest, split
    lines = "".join(f"{split} {sums[split]}\n" for split in ("test", "train", "validation"))
    assert manifest["checksum"] == hashlib.sha256(lines.encode("utf-8")).hexdigest()
    assert read_split(out, "test") == [{"id": "c", "premise": "P.", "hypothesis": "H.", "label": 2}]
    assert len(list(iter_split(out, "train"))) == 3
    assert verify_dataset(out)["checksum"] == manifest["checksum"]
    with pytest.raises(LangarithError, match="no split 'dev'"):
        read_split(out, "dev")
    assert sorted(p.name for p in out.parent.iterdir()) == ["de"]


def test_verify_detects_corruption_and_truncation(tmp_path: Path) -> None:
    out = _write_small(tmp_path / "d")
    path = out / "train.jsonl"
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"label": 0', b'"label": 1', 1))
    with pytest.raises(LangarithError, match="truncated or changed"):
        verify_dataset(out)
    path.write_bytes(data[:-5])
    with pytest.raises(LangarithError, match="truncated or changed"):
        verify_dataset(out)
    with pytest.raises(LangarithError, match="line 3 is not valid JSON"):
        read_split(out, "train")
    path.unlink()
    with pytest.raises(LangarithError, match="missing"):
        verify_dataset(out)
    (out / "manifest.json").write_text("{")
    with pytest.raises(LangarithError, match="corrupt"):
        read_manifest(out)


def test_bad_rows_or_splits_leave_nothing(tmp_path: Path) -> None:
    out = tmp_path / "x"
    bad_rows = {
        "train": [{"id": "a", "tokens": ["A", "b"], "ner_tags": ["B-PER"]}],
        "validation": [],
        "test": [],
    }
    with pytest.raises(LangarithError, match="1 tags"):
        write_dataset(out, "wikiann", "de", bad_rows, source="t", revision="r", options={})
    with pytest.raises(LangarithError, match="expected exactly"):
        write_dataset(out, "wikiann", "de", {"train": []}, source="t", revision="r", options={})
    bad_label = {
        "train": [{"id": "a", "tokens": ["A"], "ner_tags": ["B-MISC"]}],
        "validation": [],
        "test": [],
    }
    with pytest.raises(LangarithError, match="unknown tags"):
        write_dataset(out, "wikiann", "de", bad_label, source="t", revision="r", options={})
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------- real, local files


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def _squad_rows(prefix: str, n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        context = f"Doc {i}: the city of Bern lies on the Aare."
        rows.append(
            {
                "id": f"{prefix}{i}",
                "title": "Bern",
                "context": context,
                "question": "Which city lies on the Aare?",
                "answers": {"text": ["Bern"], "answer_start": [context.index("Bern")]},
            }
        )
    return rows


def _nli_rows(n: int) -> list[dict[str, Any]]:
    return [{"premise": f"P {i}.", "hypothesis": f"H {i}.", "label": i % 3} for i in range(n)]


@pytest.fixture(scope="module")
def local_hub(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, dict[str, Any]]]:
    """Tiny local copies of every dataset with the hub's column names and layouts."""
    root = tmp_path_factory.mktemp("hub")
    wiki = root / "wikipedia" / "20231101.de"
    wiki.mkdir(parents=True)
    pd.DataFrame(
        {
            "id": [str(100 + i) for i in range(12)],
            "url": ["https://de.wikipedia.org/wiki/X"] * 12,
            "title": [f"T{i}" for i in range(12)],
            "text": [" ".join(f"w{i}_{j}" for j in range(5 + i)) + "\n\nEnde." for i in range(12)],
        }
    ).to_parquet(wiki / "train-00000-of-00001.parquet")
    for split in ("train", "validation", "test"):
        (root / "wikiann" / "de").mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {
                "tokens": [["Anna", "wohnt", "in", "Bern"], ["ACME", "AG", "."]],
                "ner_tags": [[1, 0, 0, 5], [3, 4, 0]],
                "langs": [["de"] * 4, ["de"] * 3],
                "spans": [["PER: Anna", "LOC: Bern"], ["ORG: ACME AG"]],
            }
        ).to_parquet(root / "wikiann" / "de" / f"{split}-00000-of-00001.parquet")
        _jsonl(root / "xnli" / f"{split}.jsonl", _nli_rows(6))
        (root / "americasnli" / "aym").mkdir(parents=True, exist_ok=True)
        pd.DataFrame(_nli_rows(3)).to_parquet(root / "americasnli" / "aym" / f"{split}.parquet")
        marc = [
            {"review_id": f"{split}{i}", "stars": i + 1, "review_title": "T", "review_body": "B"}
            for i in range(5)
        ]
        _jsonl(root / "marc" / f"{split}.jsonl", marc)
        sentiment = [{"text": f"kalimat {i}", "label": i % 3} for i in range(4)]
        _jsonl(root / "smsa" / f"{split}.jsonl", sentiment)
        _jsonl(
            root / "nusax" / f"{split}.jsonl",
            [{**r, "id": str(i)} for i, r in enumerate(sentiment)],
        )
        (root / "indicxnli" / "as").mkdir(parents=True, exist_ok=True)  # the parquet export
        pd.DataFrame(_nli_rows(3)).to_parquet(
            root / "indicxnli" / "as" / f"indicxnli-{split}.parquet"
        )
    for split in ("train", "validation"):
        _jsonl(root / "squad" / f"{split}_v1.json", _squad_rows(split, 4))
    _jsonl(
        root / "xquad.jsonl",
        [{k: v for k, v in r.items() if k != "title"} for r in _squad_rows("q", 7)],
    )
    return {
        "wikipedia": (
            "de",
            {"local_path": str(root / "wikipedia"), "validation_docs": 2, "max_train_tokens": 40},
        ),
        "wikiann": ("de", {"local_path": str(root / "wikiann")}),
        "xnli": ("de", {"local_path": str(root / "xnli")}),
        "indicxnli": ("as", {"local_path": str(root / "indicxnli")}),
        "squad": (
            "en",
            {
                "local_path": {
                    s: str(root / "squad" / f"{s}_v1.json") for s in ("train", "validation")
                }
            },
        ),
        "xquad": ("de", {"local_path": str(root / "xquad.jsonl")}),
        "americasnli": ("ay", {"local_path": str(root / "americasnli")}),
        "marc": ("de", {"local_path": str(root / "marc")}),
        "smsa": ("id", {"local_path": str(root / "smsa")}),
        "nusax": ("jv", {"local_path": str(root / "nusax")}),
    }


@pytest.fixture(scope="module")
def real_dirs(
    local_hub: dict[str, tuple[str, dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("real")
    return {
        name: prepare_real_dataset(name, lang, out / name / lang, options=options)
        for name, (lang, options) in local_hub.items()
    }


def test_real_local_every_dataset(real_dirs: dict[str, Path]) -> None:
    for name, path in real_dirs.items():
        manifest = verify_dataset(path)
        assert manifest["dataset"] == name
        assert manifest["source"].startswith("local:")
        assert manifest["revision"].startswith(
            "20231101@sha256:" if name == "wikipedia" else "sha256:"
        )
        assert sorted(manifest["splits"]) == sorted(DATASETS[name].splits)


def test_real_wikiann_int_tags_become_iob2(real_dirs: dict[str, Path]) -> None:
    rows = read_split(real_dirs["wikiann"], "test")
    assert rows[0]["ner_tags"] == ["B-PER", "O", "O", "B-LOC"]
    assert rows[1]["ner_tags"] == ["B-ORG", "I-ORG", "O"]
    assert rows[0]["id"] == "de-test-0"


def test_real_wikiann_uses_class_label_names(tmp_path: Path) -> None:
    import datasets

    names = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-ORG", "I-ORG"]  # another order
    features = datasets.Features(
        {
            "tokens": datasets.List(datasets.Value("string")),
            "ner_tags": datasets.List(datasets.ClassLabel(names=names)),
        }
    )
    ds = datasets.Dataset.from_dict(
        {"tokens": [["Bern", "x"]], "ner_tags": [[1, 0]]}, features=features
    )
    datasets.DatasetDict({s: ds for s in ("train", "validation", "test")}).save_to_disk(
        str(tmp_path / "disk")
    )
    out = prepare_real_dataset(
        "wikiann", "de", tmp_path / "out", options={"local_path": str(tmp_path / "disk")}
    )
    assert read_split(out, "train")[0]["ner_tags"] == ["B-LOC", "O"]
    assert read_manifest(out)["revision"].startswith("fingerprint:")


def test_real_xquad_split_half_by_order(real_dirs: dict[str, Path]) -> None:
    validation = read_split(real_dirs["xquad"], "validation")
    test = read_split(real_dirs["xquad"], "test")
    assert [r["id"] for r in validation] == ["q0", "q1", "q2", "q3"]
    assert [r["id"] for r in test] == ["q4", "q5", "q6"]
    row = test[0]
    assert row["title"] == ""
    start = row["answers"]["answer_start"][0]
    assert row["context"][start : start + 4] == "Bern"


def test_real_wikipedia_budget_and_holdout(real_dirs: dict[str, Path]) -> None:
    path = real_dirs["wikipedia"]
    manifest = read_manifest(path)
    train, validation = read_split(path, "train"), read_split(path, "validation")
    assert [r["id"] for r in validation] == ["100", "101"]
    assert not {r["id"] for r in train} & {r["id"] for r in validation}
    tokens = sum(len(r["text"].split()) for r in train)
    assert tokens == manifest["splits"]["train"]["tokens"] == 40
    # Documents of 8, 9, 10 and 11 tokens, then the next one cut to the 2 tokens left.
    assert [r["id"] for r in train] == ["102", "103", "104", "105", "106"]
    assert train[-1]["text"] == "w6_0 w6_1"
    assert train[0]["text"].endswith("\n\nEnde.")  # documents keep their own spacing
    assert manifest["revision"].startswith("20231101@sha256:")


def test_real_wikipedia_fraction_holdout_is_stable(
    local_hub: dict[str, Any], tmp_path: Path
) -> None:
    _, options = local_hub["wikipedia"]
    base = {"local_path": options["local_path"], "validation_fraction": 0.4}
    small = prepare_real_dataset(
        "wikipedia", "de", tmp_path / "a", options={**base, "max_train_tokens": 30}
    )
    full = prepare_real_dataset("wikipedia", "de", tmp_path / "b", options=base)
    val_small = {r["id"] for r in read_split(small, "validation")}
    val_full = {r["id"] for r in read_split(full, "validation")}
    assert val_small <= val_full
    assert not val_full & {r["id"] for r in read_split(full, "train")}
    with pytest.raises(LangarithError, match="not both"):
        prepare_real_dataset(
            "wikipedia", "de", tmp_path / "c", options={**base, "validation_docs": 3}
        )


def test_real_nli_and_qa_fields(real_dirs: dict[str, Path]) -> None:
    assert read_split(real_dirs["xnli"], "train")[1] == {
        "id": "de-train-1",
        "premise": "P 1.",
        "hypothesis": "H 1.",
        "label": 1,
    }
    assert len(read_split(real_dirs["indicxnli"], "test")) == 3
    squad = read_split(real_dirs["squad"], "validation")[0]
    assert squad["id"] == "validation0" and squad["title"] == "Bern"


def test_real_bad_options_and_missing_columns(local_hub: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(LangarithError, match=r"Unknown option.*max_train_tokens"):
        prepare_real_dataset("xnli", "de", tmp_path / "a", options={"max_train_tokens": 5})
    bad = _jsonl(tmp_path / "xq.jsonl", [{"id": "1", "context": "c", "question": "q"}])
    with pytest.raises(LangarithError, match="no column 'answers'"):
        prepare_real_dataset("xquad", "de", tmp_path / "b", options={"local_path": str(bad)})
    with pytest.raises(LangarithError, match="no files for the hub split"):
        prepare_real_dataset("xnli", "de", tmp_path / "c", options={"local_path": str(tmp_path)})
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "1", "context"\n')
    with pytest.raises(LangarithError, match="hub's format"):
        prepare_real_dataset("xquad", "de", tmp_path / "d", options={"local_path": str(broken)})
    assert not (tmp_path / "b").exists() and not (tmp_path / "d").exists()


HUB_CALLS = {
    "wikipedia": (
        "en",
        ("wikimedia/wikipedia", "20231101.en"),
        "hub:wikimedia/wikipedia/20231101.en",
    ),
    "wikiann": ("de", ("unimelb-nlp/wikiann", "de"), "hub:unimelb-nlp/wikiann/de"),
    "xnli": ("de", ("facebook/xnli", "de"), "hub:facebook/xnli/de"),
    "indicxnli": ("as", ("Divyanshu/indicxnli", None), "hub:Divyanshu/indicxnli/as"),
    "squad": ("en", ("rajpurkar/squad", None), "hub:rajpurkar/squad"),
    "xquad": ("de", ("google/xquad", "xquad.de"), "hub:google/xquad/xquad.de"),
}


@pytest.mark.parametrize("name", sorted(HUB_CALLS))
def test_real_hub_call(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The hub path and config asked of ``datasets``, and the conversion of its rows."""
    import datasets

    lang, expected_args, source = HUB_CALLS[name]
    rows = {
        "mlm": [{"id": str(i), "url": "u", "title": "t", "text": f"a b c {i}"} for i in range(4)],
        "ner": [{"tokens": ["Bern"], "ner_tags": [5], "langs": ["de"], "spans": ["LOC: Bern"]}],
        "nli": _nli_rows(3),
        "qa": _squad_rows("q", 2),
    }[DATASETS[name].task]
    calls = []

    def fake_load_dataset(*args: Any, **kwargs: Any) -> datasets.DatasetDict:
        calls.append((args, kwargs))
        return datasets.DatasetDict(
            {s: datasets.Dataset.from_list(rows) for s in DATASETS[name].hub_splits}
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    options = {"validation_docs": 1} if name == "wikipedia" else {}
    out = prepare_real_dataset(name, lang, tmp_path / "out", options=options)
    ((args, kwargs),) = calls
    assert args == expected_args
    manifest = verify_dataset(out)
    assert manifest["source"] == source
    if name == "indicxnli":
        assert kwargs["revision"] == "refs/convert/parquet"
        assert kwargs["data_files"]["train"] == ["as/train/*.parquet"]
    if name == "wikipedia":
        assert manifest["revision"] == "20231101"
    else:
        assert manifest["revision"]
    if name == "wikiann":
        assert read_split(out, "train")[0]["ner_tags"] == ["B-LOC"]


@pytest.mark.parametrize("lang", ["bg", "fr", "sw", "ur"])
def test_uncovered_language_raises(lang: str, tmp_path: Path) -> None:
    with pytest.raises(UncoveredLanguageError, match=f"does not cover language '{lang}'"):
        prepare_real_dataset("xquad", lang, tmp_path / "x", options={})
    with pytest.raises(UncoveredLanguageError):
        prepare_demo_dataset("xquad", lang, tmp_path / "y", options={})
    assert not any(tmp_path.iterdir())


def test_offline_missing_dataset_fails_fast(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import datasets.config
    import huggingface_hub.constants

    # As if the libraries had been imported before the variables were set.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(LangarithError) as info:
        prepare_real_dataset(
            "xnli",
            "de",
            tmp_path / "out",
            options={
                "hub_path": "langarith-tests/no-such-dataset",
                "cache_dir": str(tmp_path / "cache"),
            },
        )
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "langarith-tests/no-such-dataset" in message
    assert "HF_DATASETS_OFFLINE" in message and "local_path" in message
    assert "internet" in message
    assert not (tmp_path / "out").exists()
    assert datasets.config.HF_HUB_OFFLINE is False  # restored afterwards


# ---------------------------------------------------------------------- demo


@pytest.fixture(scope="module")
def demo_dirs(
    local_hub: dict[str, tuple[str, dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("demo")
    langs = {
        "wikipedia": "de",
        "wikiann": "de",
        "xnli": "de",
        "indicxnli": "hi",
        "squad": "en",
        "xquad": "de",
        "mlqa": "de",
        "americasnli": "es",  # demo languages are no AmericasNLI or NusaX ones
        "marc": "de",
        "smsa": "en",
        "nusax": "en",
    }
    own = {"respect_coverage": False}
    return {
        name: prepare_demo_dataset(
            name,
            lang,
            out / name / lang,
            options={**SMALL_DEMO, **(own if name in ("americasnli", "smsa") else {})},
        )
        for name, lang in langs.items()
    }


def _signature(value: Any) -> Any:
    """The type shape of a JSON value: field names and element types, not contents."""
    if isinstance(value, dict):
        return {k: _signature(v) for k, v in value.items()}
    if isinstance(value, list):
        return ["list", *sorted({json.dumps(_signature(v)) for v in value})]
    return type(value).__name__


def test_demo_format_equals_real_format(
    demo_dirs: dict[str, Path], real_dirs: dict[str, Path]
) -> None:
    # MLQA's real loader is tested on its own parquet mirror (test_xmod); its rows have
    # XQuAD's format, which the real XQuAD stands in for here. The TLR arm's datasets are
    # compared with their demo in test_data_tlr; UD has no demo generator (parsing runs
    # on CoNLL-U fixtures): test_data_ud.py.
    assert set(DATASETS) - set(real_dirs) == {"mlqa", "conll2003", "masakhaner", "tydiqa", "ud"}
    real_dirs = {**real_dirs, "mlqa": real_dirs["xquad"]}
    for name in demo_dirs:
        demo, real = read_manifest(demo_dirs[name]), read_manifest(real_dirs[name])
        assert demo["source"] == "demo"
        assert sorted(demo["splits"]) == sorted(real["splits"])
        # counts of what the real conversion left out (MARC's 3-star reviews)
        assert set(demo) == set(real) - {"dropped", "excluded"}
        assert set(demo["splits"]["validation"]) == set(real["splits"]["validation"])
        for split in demo["splits"]:
            demo_rows, real_rows = (
                read_split(demo_dirs[name], split),
                read_split(real_dirs[name], split),
            )
            assert demo_rows and real_rows
            assert {json.dumps(_signature(r)) for r in demo_rows} == {
                json.dumps(_signature(r)) for r in real_rows
            }
        verify_dataset(demo_dirs[name])


def test_demo_is_deterministic(tmp_path: Path) -> None:
    a = prepare_demo_dataset("wikiann", "ru", tmp_path / "a", options={**SMALL_DEMO, "seed": 3})
    b = prepare_demo_dataset("wikiann", "ru", tmp_path / "b", options={**SMALL_DEMO, "seed": 3})
    c = prepare_demo_dataset("wikiann", "ru", tmp_path / "c", options={**SMALL_DEMO, "seed": 4})
    assert (
        read_manifest(a)["checksum"] == read_manifest(b)["checksum"] != read_manifest(c)["checksum"]
    )


def test_demo_ner_labels(tmp_path: Path) -> None:
    for lang in ("en", "ru", "el"):
        out = prepare_demo_dataset("wikiann", lang, tmp_path / lang, options=SMALL_DEMO)
        vocab = set(_word_list(lang, 3000)[0])
        spec = DEMO_LANGUAGES[lang]
        kinds: collections.Counter[str] = collections.Counter()
        for row in read_split(out, "train"):
            tokens, tags = row["tokens"], row["ner_tags"]
            assert len(tokens) == len(tags) and any(t != "O" for t in tags)
            for i, (token, tag) in enumerate(zip(tokens, tags, strict=True)):
                if tag == "O":
                    assert token in vocab
                    assert token != spec.negation
                elif tag.startswith("I-"):
                    assert tags[i - 1][2:] == tag[2:] and tags[i - 1] != "O"
                else:
                    kinds[tag] += 1
                    assert token[0].isupper(), (lang, token)  # faker names are capitalised
                    if i and tokens[i - 1] in (spec.person_cue, spec.city_cue):
                        expected = "B-PER" if tokens[i - 1] == spec.person_cue else "B-LOC"
                        assert tag == expected
        assert set(kinds) == {"B-PER", "B-LOC", "B-ORG"}


def test_demo_ner_entities_are_one_word_with_a_typed_source(tmp_path: Path) -> None:
    # One-word entities whose type shows in the word: the frozen tiny demo backbones see
    # little word order, so multi-word spans (B/I) were not learnable (English F1 0.0).
    rows_by_lang = {}
    for lang in ("en", "es", "bg"):
        out = prepare_demo_dataset("wikiann", lang, tmp_path / lang, options=SMALL_DEMO)
        rows_by_lang[lang] = read_split(out, "train")
        for row in rows_by_lang[lang]:
            assert not any(tag.startswith("I-") for tag in row["ner_tags"])
            assert all(" " not in token for token in row["tokens"])
    # English cities come from a fixed list: faker's are made of person names.
    cities = {
        token
        for row in rows_by_lang["en"]
        for token, tag in zip(row["tokens"], row["ner_tags"], strict=True)
        if tag == "B-LOC"
    }
    assert cities and cities <= set(DEMO_LANGUAGES["en"].cities)
    en_words = set(_word_list("en", 3000)[0])
    assert not {city.lower() for city in DEMO_LANGUAGES["en"].cities} & en_words


def test_demo_nli_pairs_are_short(tmp_path: Path) -> None:
    out = prepare_demo_dataset("xnli", "en", tmp_path / "en", options=SMALL_DEMO)
    for row in read_split(out, "train"):
        premise = row["premise"].rstrip(".").split()
        hypothesis = [w for w in row["hypothesis"].rstrip(".").lower().split() if w != "not"]
        assert 5 <= len(premise) <= 10 and 2 <= len(hypothesis) <= 4


def test_demo_qa_offsets_exact(tmp_path: Path) -> None:
    for dataset, lang in (("squad", "en"), ("xquad", "hi"), ("xquad", "ru")):
        out = prepare_demo_dataset(
            dataset, lang, tmp_path / f"{dataset}-{lang}", options=SMALL_DEMO
        )
        spec = DEMO_LANGUAGES[lang]
        for split in DATASETS[dataset].splits:
            for row in read_split(out, split):
                (text,), (start,) = row["answers"]["text"], row["answers"]["answer_start"]
                context = row["context"]
                assert context[start : start + len(text)] == text
                assert context.count(text) == 1
                cue = context[:start].split()[-1]
                assert cue in (spec.person_cue, spec.city_cue)
                assert row["question"].lower().startswith((spec.who, spec.where))
                assert cue in row["question"]


def test_demo_nli_rule_and_balance(tmp_path: Path) -> None:
    for lang in ("es", "bg"):
        out = prepare_demo_dataset("xnli", lang, tmp_path / lang, options=SMALL_DEMO)
        neg = DEMO_LANGUAGES[lang].negation
        for split in ("train", "validation", "test"):
            rows = read_split(out, split)
            counts = collections.Counter(r["label"] for r in rows)
            assert set(counts) == {0, 1, 2} and max(counts.values()) - min(counts.values()) <= 1
            for row in rows:
                premise = row["premise"].rstrip(".").lower().split()
                hyp = row["hypothesis"].rstrip(".").lower().split()
                assert neg not in premise

                def inside(part: list[str], whole: list[str] = premise) -> bool:
                    return any(whole[i : i + len(part)] == part for i in range(len(whole)))

                if row["label"] == 0:
                    assert neg not in hyp and inside(hyp)
                elif row["label"] == 2:
                    assert hyp.count(neg) == 1
                    assert inside([w for w in hyp if w != neg])
                else:
                    assert not set(hyp) & set(premise) and neg not in hyp


def test_demo_wikipedia_budget(tmp_path: Path) -> None:
    out = prepare_demo_dataset(
        "wikipedia", "pl", tmp_path / "pl", options={**SMALL_DEMO, "max_train_tokens": 150}
    )
    manifest = read_manifest(out)
    assert manifest["splits"]["train"]["tokens"] == 150
    assert manifest["splits"]["validation"]["rows"] == 4
    # The real Wikipedia options of a shared config are accepted.
    assert sum(len(r["text"].split()) for r in read_split(out, "train")) == 150
    # The real Wikipedia options of a shared config are accepted.
    shared = {"dump": "20231101", "validation_fraction": 0.5, "wikipedia_train_docs": 6}
    other = prepare_demo_dataset("wikipedia", "pl", tmp_path / "shared", options=shared)
    assert read_manifest(other)["splits"]["validation"]["rows"] == 3


def _trigrams(path: Path) -> set[str]:
    grams = set()
    for row in read_split(path, "train"):
        for word in row["text"].lower().split():
            word = f" {word.strip('.,')} "
            grams.update(word[i : i + 3] for i in range(len(word) - 2))
    return grams


def _words(path: Path) -> set[str]:
    return {w.strip(".").lower() for row in read_split(path, "train") for w in row["text"].split()}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b)


def test_demo_languages_relate_like_real_ones(tmp_path: Path) -> None:
    options = {**SMALL_DEMO, "wikipedia_train_docs": 40}
    dirs = {
        lang: prepare_demo_dataset("wikipedia", lang, tmp_path / lang, options=options)
        for lang in ("es", "pt", "it", "ru", "bg", "en")
    }
    grams = {lang: _trigrams(path) for lang, path in dirs.items()}
    words = {lang: _words(path) for lang, path in dirs.items()}
    for close in ("pt", "it"):
        assert _jaccard(grams["es"], grams[close]) > 2 * _jaccard(grams["es"], grams["ru"])
        assert _jaccard(words["es"], words[close]) > 5 * _jaccard(words["es"], words["ru"]) + 0.02
    assert _jaccard(grams["ru"], grams["bg"]) > 3 * _jaccard(grams["ru"], grams["en"])

    def cyrillic_share(lang: str) -> float:
        letters = [c for w in words[lang] for c in w if c.isalpha()]
        return sum("\u0400" <= c <= "\u04ff" for c in letters) / len(letters)

    assert cyrillic_share("ru") > 0.97 and cyrillic_share("bg") > 0.97
    assert cyrillic_share("es") < 0.01


def test_demo_rejects_unsupported_language_and_options(tmp_path: Path) -> None:
    assert {"en", "de", "es", "it", "pt", "fr", "ru", "bg", "uk", "pl"} <= set(demo_languages())
    with pytest.raises(LangarithError, match=r"does not support language 'sw'.*'bg'"):
        prepare_demo_dataset("wikiann", "sw", tmp_path / "a", options={})
    with pytest.raises(LangarithError, match="Unknown demo option"):
        prepare_demo_dataset("wikiann", "de", tmp_path / "b", options={"sizes": 3})
    with pytest.raises(LangarithError, match="task_train_rows"):
        prepare_demo_dataset("wikiann", "de", tmp_path / "c", options={"task_train_rows": 0})
    out = prepare_demo_dataset(
        "indicxnli", "pl", tmp_path / "d", options={**SMALL_DEMO, "respect_coverage": False}
    )
    assert read_manifest(out)["language"] == "pl"


# ----------------------------------------------------------------------- CLI


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_prepare_and_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "xnli" / "fr"
    argv = ["data", "prepare", "--dataset", "xnli", "--lang", "fr", "--out", str(out), "--demo"]
    options = [
        "--option",
        "task_train_rows=6",
        "--option",
        "task_validation_rows=3",
        "--option",
        "task_test_rows=3",
    ]
    assert _cli(argv + options + ["--option", "seed=2"]) == 0
    assert read_manifest(out)["options"]["seed"] == 2
    assert _cli(["data", "verify", str(out)]) == 0
    assert "OK" in capsys.readouterr().out
    (out / "test.jsonl").write_text("")
    with pytest.raises(LangarithError, match="truncated"):
        _cli(["data", "verify", str(out)])
    with pytest.raises(LangarithError, match="key=value"):
        _cli(argv + ["--option", "seed"])
