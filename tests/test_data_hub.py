"""The hub code path on local mirrors of the repositories (everything but the network)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import datasets
import pytest
from hub_mirror import DUMP, NLI_NAMES, WIKI_DOCS, build_hub_mirror, nli_rows

from langarith import LangarithError
from langarith.data import (
    DATASETS,
    NER_LABELS,
    UncoveredLanguageError,
    prepare_real_dataset,
    read_manifest,
    read_split,
    split_files,
    verify_dataset,
)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_hub_mirror(tmp_path_factory.mktemp("hub"))


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple, dict]]:
    """Every ``datasets.load_dataset`` call, passed on to the real function."""
    calls: list[tuple[tuple, dict]] = []
    real = datasets.load_dataset

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    return calls


def _prepare(name: str, lang: str, repo: Path, out: Path, **options: Any) -> Path:
    """The hub path on a mirror; the datasets cache stays in the test's folder."""
    options = {"hub_path": str(repo), "cache_dir": str(out.parent / "cache"), **options}
    return prepare_real_dataset(name, lang, out, options=options)


def test_wikiann_class_label_names_become_iob2(
    mirror: dict[str, Path], tmp_path: Path, load_calls: list
) -> None:
    out = _prepare("wikiann", "de", mirror["wikiann"], tmp_path / "out")
    ((args, kwargs),) = load_calls
    assert args == (str(mirror["wikiann"]), "de")  # the hub call: repository and config
    assert kwargs["streaming"] is False and kwargs["data_files"] is None
    manifest = verify_dataset(out)
    assert manifest["source"] == f"hub:{mirror['wikiann']}/de"
    assert manifest["labels"] == list(NER_LABELS)
    assert {s: e["rows"] for s, e in manifest["splits"].items()} == {
        "train": 2,
        "validation": 2,
        "test": 2,
    }
    row = read_split(out, "test")[0]
    assert row == {
        "id": "de-test-0",
        "tokens": ["Anna", "lebt", "in", "Bern", "test"],
        "ner_tags": ["B-PER", "O", "O", "B-LOC", "O"],
    }  # langs and spans are dropped


def test_xnli_labels_follow_the_class_label(mirror: dict[str, Path], tmp_path: Path) -> None:
    out = _prepare("xnli", "en", mirror["xnli"], tmp_path / "out")
    rows = read_split(out, "validation")
    assert [r["label"] for r in rows] == [0, 1, 2, 0, 1, 2]
    assert rows[1]["premise"] == "en validation P1."
    assert read_manifest(out)["labels"] == NLI_NAMES


def test_nli_class_label_in_another_order(tmp_path: Path) -> None:
    features = datasets.Features(
        {
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["contradiction", "entailment", "neutral"]),
        }
    )
    ds = datasets.Dataset.from_list(nli_rows("de", "x", 3), features=features)
    datasets.DatasetDict({s: ds for s in ("train", "validation", "test")}).save_to_disk(
        str(tmp_path / "disk")
    )
    out = prepare_real_dataset(
        "xnli", "de", tmp_path / "out", options={"local_path": str(tmp_path / "disk")}
    )
    # Stored 0, 1, 2 mean contradiction, entailment, neutral: ours are 2, 0, 1.
    assert [r["label"] for r in read_split(out, "train")] == [2, 0, 1]


def test_squad_answers_struct(mirror: dict[str, Path], tmp_path: Path, load_calls: list) -> None:
    out = _prepare("squad", "en", mirror["squad"], tmp_path / "out")
    assert load_calls[0][0] == (str(mirror["squad"]), None)  # the default config
    manifest = verify_dataset(out)
    assert manifest["source"] == f"hub:{mirror['squad']}"
    assert {s: e["rows"] for s, e in manifest["splits"].items()} == {"train": 5, "validation": 3}
    row = read_split(out, "validation")[2]
    assert row["id"] == "validation2" and row["title"] == "Bern"
    start = row["answers"]["answer_start"][0]
    assert row["answers"]["text"] == ["Bern"]
    assert row["context"][start : start + 4] == "Bern"


def test_xquad_one_split_cut_in_half(mirror: dict[str, Path], tmp_path: Path) -> None:
    out = _prepare("xquad", "de", mirror["xquad"], tmp_path / "out")
    manifest = verify_dataset(out)
    assert manifest["source"] == f"hub:{mirror['xquad']}/xquad.de"
    assert [r["id"] for r in read_split(out, "validation")] == [f"xq-de-{i}" for i in range(4)]
    assert [r["id"] for r in read_split(out, "test")] == [f"xq-de-{i}" for i in range(4, 7)]


@pytest.mark.parametrize("lang", ["bg", "fr", "sw", "ur"])
def test_xquad_coverage(lang: str, mirror: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UncoveredLanguageError, match=f"does not cover language '{lang}'"):
        _prepare("xquad", lang, mirror["xquad"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_config_missing_from_the_repository(mirror: dict[str, Path], tmp_path: Path) -> None:
    """A covered language whose config the repository lacks: one clear sentence."""
    with pytest.raises(LangarithError, match=r"Could not load 'xquad' for 'ro'.*xquad\.ro"):
        _prepare("xquad", "ro", mirror["xquad"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("layout", ["indicxnli", "indicxnli-old", "indicxnli-main"])
def test_indicxnli_layouts(
    layout: str, mirror: dict[str, Path], tmp_path: Path, load_calls: list
) -> None:
    """The parquet export (both layouts) and, without it, the raw json of main."""
    out = _prepare("indicxnli", "as", mirror[layout], tmp_path / "out")
    manifest = verify_dataset(out)
    assert manifest["source"] == f"hub:{mirror[layout]}/as"
    assert [r["label"] for r in read_split(out, "validation")] == [0, 1, 2, 0]
    assert read_split(out, "test")[3]["premise"] == "as test P3."
    first_args, first_kwargs = load_calls[0]
    assert first_kwargs["revision"] == "refs/convert/parquet"
    assert first_kwargs["data_files"]["train"] == ["as/train/*.parquet"]
    if layout == "indicxnli-main":
        args, kwargs = load_calls[-1]
        assert args == ("json", None) and kwargs["revision"] is None
        assert kwargs["data_files"]["validation"] == [f"{mirror[layout]}/forward/dev/xnli_as.json"]
        assert manifest["revision"] == "main"
    else:
        assert manifest["revision"] == "refs/convert/parquet"
    expected_calls = {"indicxnli": 1, "indicxnli-old": 2, "indicxnli-main": 3}[layout]
    assert len(load_calls) == expected_calls


def test_indicxnli_hub_json_fallback_reads_urls_of_main() -> None:
    from langarith.data.real import _hub_attempts

    spec = DATASETS["indicxnli"]
    assert spec.hub_path == "Divyanshu/indicxnli"
    attempts = _hub_attempts(spec, "as", None, spec.hub_path, {})
    assert [a.revision for a in attempts] == ["refs/convert/parquet"] * 2 + ["main"]
    assert attempts[-1].data_files == {
        "train": ["hf://datasets/Divyanshu/indicxnli@main/forward/train/xnli_as.json"],
        "validation": ["hf://datasets/Divyanshu/indicxnli@main/forward/dev/xnli_as.json"],
        "test": ["hf://datasets/Divyanshu/indicxnli@main/forward/test/xnli_as.json"],
    }


def test_wikipedia_streams_into_shards(
    mirror: dict[str, Path], tmp_path: Path, load_calls: list, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        out = _prepare(
            "wikipedia",
            "de",
            mirror["wikipedia"],
            tmp_path / "out",
            validation_docs=4,
            shard_docs=8,
        )
    ((args, kwargs),) = load_calls
    assert args == (str(mirror["wikipedia"]), f"{DUMP}.de")
    assert kwargs["streaming"] is True  # as on the hub, even offline: a mirror can stream
    manifest = verify_dataset(out)
    assert manifest["source"] == f"hub:{mirror['wikipedia']}/{DUMP}.de"
    assert manifest["revision"] == DUMP
    train = manifest["splits"]["train"]
    # 40 articles, one empty, 4 held out: 35 in shards of 8.
    assert [s["rows"] for s in train["shards"]] == [8, 8, 8, 8, 3]
    assert [s["file"] for s in train["shards"]] == [f"train-{i:05d}.jsonl" for i in range(5)]
    assert train["rows"] == 35 and manifest["splits"]["validation"]["rows"] == 4
    rows = read_split(out, "train")
    assert [r["id"] for r in rows] == [str(1000 + i) for i in range(4, WIKI_DOCS) if i != 5]
    assert sum(len(r["text"].split()) for r in rows) == train["tokens"]
    assert [p.name for p in split_files(out, "train")] == [s["file"] for s in train["shards"]]
    assert [r["id"] for r in read_split(out, "validation")] == ["1000", "1001", "1002", "1003"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [s["file"] for s in train["shards"]] + ["manifest.json", "validation.jsonl"]
    )
    assert not list(tmp_path.glob(".*"))  # no work folder or temp file left behind
