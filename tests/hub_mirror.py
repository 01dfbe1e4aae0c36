"""Local folders laid out exactly like the papers' hub repositories (a "hub mirror").

Each mirror holds the repository's ``README.md`` configs and its files at the same
paths, written by ``datasets`` with the real features (class labels with their names,
the SQuAD ``answers`` struct), so ``datasets.load_dataset(<mirror folder>, <config>)``
resolves them exactly as it resolves the repository on the hub. The data code is
pointed at a mirror through its ``hub_path`` option: the code under test is the code
that runs against the hub, only the network is left out.

Layouts (as on the hub, November 2026):

* ``unimelb-nlp/wikiann``: ``<lang>/{train,validation,test}-00000-of-00001.parquet``.
* ``facebook/xnli``: ``<lang>/{train,validation,test}-00000-of-00001.parquet``.
* ``rajpurkar/squad``: ``plain_text/{train,validation}-00000-of-00001.parquet``.
* ``google/xquad``: ``xquad.<lang>/validation-00000-of-00001.parquet`` (one split).
* ``wikimedia/wikipedia``: ``<dump>.<lang>/train-0000i-of-0000n.parquet``.
* ``Divyanshu/indicxnli``: three branches, each its own mirror: the parquet export
  in the converter's current layout (``<lang>/<split>/0000.parquet``), in its older
  one (``<lang>/indicxnli-<split>.parquet``), and ``main`` (a loading script and the
  raw json, ``forward/{train,dev,test}/xnli_<lang>.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets

NER_NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
NLI_NAMES = ["entailment", "neutral", "contradiction"]
DUMP = "20231101"
#: Languages mirrored per dataset (a small subset of the real configs).
LANGS = {
    "wikiann": ("de", "en"),
    "xnli": ("de", "en"),
    "xquad": ("de", "en"),
    "wikipedia": ("de",),
    "indicxnli": ("as",),
}
#: Wikipedia documents in the mirror and parquet files they are spread over.
WIKI_DOCS = 40
WIKI_FILES = 3

NER_FEATURES = datasets.Features(
    {
        "tokens": datasets.List(datasets.Value("string")),
        "ner_tags": datasets.List(datasets.ClassLabel(names=NER_NAMES)),
        "langs": datasets.List(datasets.Value("string")),
        "spans": datasets.List(datasets.Value("string")),
    }
)
NLI_FEATURES = datasets.Features(
    {
        "premise": datasets.Value("string"),
        "hypothesis": datasets.Value("string"),
        "label": datasets.ClassLabel(names=NLI_NAMES),
    }
)
QA_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "title": datasets.Value("string"),
        "context": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answers": {
            "text": datasets.List(datasets.Value("string")),
            "answer_start": datasets.List(datasets.Value("int32")),
        },
    }
)
WIKI_FEATURES = datasets.Features(
    {name: datasets.Value("string") for name in ("id", "url", "title", "text")}
)


def _parquet(path: Path, rows: list[dict[str, Any]], features: datasets.Features) -> None:
    """Write rows as the hub's converter does: parquet with the features embedded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))


def _readme(repo: Path, configs: dict[str, dict[str, str]], default: str | None = None) -> None:
    """``README.md`` with the ``configs:`` block the hub reads (split -> file pattern)."""
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines.append(f"- config_name: {name}")
        lines.append("  data_files:")
        for split, pattern in splits.items():
            lines += [f"  - split: {split}", f"    path: {pattern}"]
        if name == default:
            lines.append("  default: true")
    lines += ["---", "", f"# Mirror of {repo.parent.name}/{repo.name} for the tests", ""]
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "README.md").write_text("\n".join(lines), encoding="utf-8")


def ner_rows(lang: str, split: str) -> list[dict[str, Any]]:
    """WikiANN rows: int tags of the class label, plus ``langs`` and ``spans``."""
    return [
        {
            "tokens": ["Anna", "lebt", "in", "Bern", split],
            "ner_tags": [1, 0, 0, 5, 0],
            "langs": [lang] * 5,
            "spans": ["PER: Anna", "LOC: Bern"],
        },
        {
            "tokens": ["ACME", "AG", "wächst"],
            "ner_tags": [3, 4, 0],
            "langs": [lang] * 3,
            "spans": ["ORG: ACME AG"],
        },
    ]


def nli_rows(lang: str, split: str, n: int = 6) -> list[dict[str, Any]]:
    """XNLI rows with int labels 0, 1, 2, 0, … of the class label."""
    return [
        {"premise": f"{lang} {split} P{i}.", "hypothesis": f"H{i}.", "label": i % 3}
        for i in range(n)
    ]


def qa_rows(prefix: str, n: int) -> list[dict[str, Any]]:
    """SQuAD-style rows whose answer ``Bern`` sits at a known offset."""
    rows = []
    for i in range(n):
        context = f"Satz {i}. Die Stadt Bern liegt an der Aare."
        rows.append(
            {
                "id": f"{prefix}{i}",
                "title": "Bern",
                "context": context,
                "question": f"Welche Stadt ({i})?",
                "answers": {"text": ["Bern"], "answer_start": [context.index("Bern")]},
            }
        )
    return rows


def wiki_rows(lang: str, n: int = WIKI_DOCS) -> list[dict[str, Any]]:
    """Wikipedia articles of 3..9 words (one empty, which the data step skips)."""
    rows = []
    for i in range(n):
        text = "" if i == 5 else " ".join(f"{lang}{i}w{j}" for j in range(3 + i % 7))
        rows.append(
            {
                "id": str(1000 + i),
                "url": f"https://{lang}.wikipedia.org/wiki?curid={1000 + i}",
                "title": f"T{i}",
                "text": text,
            }
        )
    return rows


def _split_configs(langs: tuple[str, ...], splits: tuple[str, ...], prefix: str = "") -> dict:
    return {f"{prefix}{lang}": {s: f"{prefix}{lang}/{s}-*" for s in splits} for lang in langs}


def build_hub_mirror(root: Path) -> dict[str, Path]:
    """Write every mirror under ``root``; returns ``{name: repository folder}``.

    Names are the dataset keys, plus ``indicxnli-old`` and ``indicxnli-main`` for the
    other two IndicXNLI layouts.
    """
    three = ("train", "validation", "test")
    repos = {
        "wikiann": root / "main" / "unimelb-nlp" / "wikiann",
        "xnli": root / "main" / "facebook" / "xnli",
        "squad": root / "main" / "rajpurkar" / "squad",
        "xquad": root / "main" / "google" / "xquad",
        "wikipedia": root / "main" / "wikimedia" / "wikipedia",
        "indicxnli": root / "refs-convert-parquet" / "Divyanshu" / "indicxnli",
        "indicxnli-old": root / "old-parquet-export" / "Divyanshu" / "indicxnli",
        "indicxnli-main": root / "main" / "Divyanshu" / "indicxnli",
    }
    shard = "00000-of-00001.parquet"
    for lang in LANGS["wikiann"]:
        for split in three:
            _parquet(
                repos["wikiann"] / lang / f"{split}-{shard}", ner_rows(lang, split), NER_FEATURES
            )
    _readme(repos["wikiann"], _split_configs(LANGS["wikiann"], three))
    for lang in LANGS["xnli"]:
        for split in three:
            _parquet(repos["xnli"] / lang / f"{split}-{shard}", nli_rows(lang, split), NLI_FEATURES)
    _readme(repos["xnli"], _split_configs(LANGS["xnli"], three))
    for split, n in (("train", 5), ("validation", 3)):
        _parquet(repos["squad"] / "plain_text" / f"{split}-{shard}", qa_rows(split, n), QA_FEATURES)
    _readme(
        repos["squad"],
        {"plain_text": {s: f"plain_text/{s}-*" for s in ("train", "validation")}},
        default="plain_text",
    )
    for lang in LANGS["xquad"]:
        rows = qa_rows(f"xq-{lang}-", 7)
        _parquet(repos["xquad"] / f"xquad.{lang}" / f"validation-{shard}", rows, QA_FEATURES)
    _readme(repos["xquad"], _split_configs(LANGS["xquad"], ("validation",), "xquad."))
    for lang in LANGS["wikipedia"]:
        rows = wiki_rows(lang)
        per_file = -(-len(rows) // WIKI_FILES)
        for k in range(WIKI_FILES):
            name = f"train-{k:05d}-of-{WIKI_FILES:05d}.parquet"
            part = rows[k * per_file : (k + 1) * per_file]
            _parquet(repos["wikipedia"] / f"{DUMP}.{lang}" / name, part, WIKI_FEATURES)
    _readme(repos["wikipedia"], _split_configs(LANGS["wikipedia"], ("train",), f"{DUMP}."))
    _indicxnli(repos["indicxnli"], repos["indicxnli-old"], repos["indicxnli-main"])
    return repos


def _indicxnli(current: Path, old: Path, main: Path) -> None:
    """The same IndicXNLI rows in the three layouts the repository has had."""
    for lang in LANGS["indicxnli"]:
        for split, hub_split in (("train", "train"), ("validation", "dev"), ("test", "test")):
            rows = nli_rows(lang, split, n=4)
            _parquet(current / lang / split / "0000.parquet", rows, NLI_FEATURES)
            _parquet(old / lang / f"indicxnli-{split}.parquet", rows, NLI_FEATURES)
            # The raw json of main: labels by name, one JSON array per file.
            named = [{**r, "label": NLI_NAMES[r["label"]]} for r in rows]
            path = main / "forward" / hub_split / f"xnli_{lang}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(named, ensure_ascii=False), encoding="utf-8")
    # The loading script that makes datasets refuse the repository itself.
    (main / "indicxnli.py").write_text("# loading script (not run)\n", encoding="utf-8")
