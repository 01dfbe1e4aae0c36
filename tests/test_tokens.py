"""The tokens stage: token files written once, resumable, verified before training.

The corpus is a real-shaped sharded Wikipedia folder (the hub mirror streamed through
the real data path, shards of 8 documents); backbones are tiny demo backbones.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hub_mirror import build_hub_mirror
from tiny import demo_spec

import langarith.training.token_files as token_files
from langarith import LangarithError
from langarith.backbone import build_demo_backbone, load_tokenizer
from langarith.cli import main
from langarith.data import prepare_real_dataset, read_manifest, read_split
from langarith.train import init_language_adapter, train_language_adapter
from langarith.train.tokens import corpus_sources, tokenize_corpus, tokenizer_checksum
from langarith.training.blocks import BlockOrder, TokenBlocks, budget_prefix
from langarith.training.token_files import TokenSplit, open_token_split, read_token_metadata


class Killed(BaseException):
    """The process dying (not an ``Exception``: nothing under test catches it)."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hub")
    repos = build_hub_mirror(root)
    options = {
        "hub_path": str(repos["wikipedia"]),
        "cache_dir": str(root / "cache"),
        "validation_docs": 4,
        "shard_docs": 8,
    }
    return prepare_real_dataset("wikipedia", "de", root / "wikipedia" / "de", options=options)


@pytest.fixture(scope="module")
def backbones(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("backbones")
    spec = demo_spec(pretrain_steps=2)
    return {
        "a": build_demo_backbone([corpus], root / "a", arch="bert", spec=spec, seed=0),
        "b": build_demo_backbone([corpus], root / "b", arch="xlmr", spec=spec, seed=0),
    }


@pytest.fixture(scope="module")
def tokens(corpus: Path, backbones: dict[str, Path], tmp_path_factory) -> Path:
    return tokenize_corpus(backbones["a"], corpus, tmp_path_factory.mktemp("t") / "de")


def _checks(backbone: Path, corpus: Path) -> dict[str, Any]:
    from langarith.training.inputs import data_checksum

    return {
        "tokenizer_sha256": tokenizer_checksum(backbone),
        "corpus_checksum": data_checksum(corpus),
    }


# ----------------------------------------------------------------------------- content


def test_token_file_is_the_tokenized_corpus(corpus, backbones, tokens):
    assert len(read_manifest(corpus)["splits"]["train"]["shards"]) > 2  # really sharded
    tokenizer = load_tokenizer(backbones["a"])
    sep = tokenizer.sep_token_id
    meta = read_token_metadata(tokens)
    assert meta["tokenizer_sha256"] == tokenizer_checksum(backbones["a"])
    for split in ("train", "validation"):
        texts = [r["text"] for r in read_split(corpus, split) if r["text"].strip()]
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        data = open_token_split(tokens, split, **_checks(backbones["a"], corpus))
        assert data.ids.tolist() == [t for doc in ids for t in (*doc, sep)]
        assert np.diff(data.offsets).tolist() == [len(doc) + 1 for doc in ids]
        assert data.words.tolist() == [len(t.split()) for t in texts]
        entry = meta["splits"][split]
        assert (entry["docs"], entry["tokens"]) == (len(texts), data.tokens)
        assert entry["words"] == sum(len(t.split()) for t in texts)
    assert not tokens.with_name(f".{tokens.name}.partial").exists()


def test_command_line_writes_the_same_folder(corpus, backbones, tokens, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["train", "tokens", "--backbone", str(backbones["a"]), "--data", str(corpus),
                 "--out", str(out)]) == 0  # fmt: skip
    assert f"wrote {out}" in capsys.readouterr().out
    for split in ("train", "validation"):
        a, b = (read_token_metadata(d)["splits"][split]["files"] for d in (tokens, out))
        assert {k: v["sha256"] for k, v in a.items()} == {k: v["sha256"] for k, v in b.items()}


# ----------------------------------------------------------------------------- resume


def test_killed_tokenizing_resumes_from_the_finished_parts(
    corpus, backbones, tokens, tmp_path, monkeypatch
):
    out = tmp_path / "de"
    work = tmp_path / ".de.partial"
    real_write = token_files._write_part
    calls: list[str] = []

    def dying_write(work_dir, source, encode, end_id):
        if len(calls) == 2:
            raise Killed
        calls.append(source.part)
        return real_write(work_dir, source, encode, end_id)

    monkeypatch.setattr(token_files, "_write_part", dying_write)
    with pytest.raises(Killed):
        tokenize_corpus(backbones["a"], corpus, out)
    assert not out.exists()  # nothing that looks finished
    progress = json.loads((work / "progress.json").read_text())
    assert sorted(progress["parts"]) == calls == ["train-00000", "train-00001"]
    assert not [p for p in work.iterdir() if ".tmp-" in p.name]  # the killed part is gone

    # a recorded part damaged on disk is redone; the others are kept
    damaged = work / progress["parts"]["train-00001"]["files"]["ids"]["name"]
    damaged.write_bytes(damaged.read_bytes()[:-4])
    monkeypatch.setattr(
        token_files, "_write_part", lambda *a: calls.append(a[1].part) or real_write(*a)
    )
    calls.clear()
    tokenize_corpus(backbones["a"], corpus, out)
    every = [s.part for s in corpus_sources(corpus)]
    assert calls == [p for p in every if p != "train-00000"]
    assert not work.exists()
    for split in ("train", "validation"):
        a, b = (read_token_metadata(d)["splits"][split] for d in (tokens, out))
        assert a == b  # same bytes as the uninterrupted run


# ----------------------------------------------------------------------------- bad input


def test_token_file_of_another_tokenizer_is_refused(corpus, backbones, tokens, tmp_path):
    with pytest.raises(LangarithError, match="made with another tokenizer"):
        open_token_split(tokens, "train", **_checks(backbones["b"], corpus))
    init = init_language_adapter(backbones["b"], tmp_path / "init", seed=0)
    with pytest.raises(LangarithError, match="made with another tokenizer.*rerun the tokens step"):
        train_language_adapter(
            backbones["b"], init, corpus, tmp_path / "out", seed=0,
            hparams={"max_steps": 2, "block_size": 32}, tokens_dir=tokens,
        )  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_token_file_of_another_corpus_is_refused(corpus, backbones, tokens, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(corpus, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["checksum"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LangarithError, match="made from another corpus"):
        open_token_split(tokens, "train", **_checks(backbones["a"], other))


@pytest.mark.parametrize("damage", ["truncated", "changed"])
def test_damaged_token_file_is_refused(corpus, backbones, tokens, tmp_path, damage):
    copy = tmp_path / "de"
    shutil.copytree(tokens, copy)
    ids = copy / "train.ids.bin"
    data = bytearray(ids.read_bytes())
    if damage == "truncated":
        ids.write_bytes(bytes(data[:-4]))
        match = "truncated or changed .*rerun the tokens step"
    else:
        data[0] ^= 1
        ids.write_bytes(bytes(data))
        match = "does not match the sha256"
    with pytest.raises(LangarithError, match=match):
        open_token_split(copy, "train", **_checks(backbones["a"], corpus))


def test_corpus_shard_failing_its_checksum_is_refused(corpus, backbones, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(corpus, data)
    shard = data / "train-00001.jsonl"
    lines = shard.read_text().splitlines(keepends=True)
    shard.write_text("".join(lines[:-1]))  # a shard cut short
    out = tmp_path / "tokens"
    with pytest.raises(LangarithError, match="train-00001.jsonl fails its checksum"):
        tokenize_corpus(backbones["a"], data, out)
    assert not out.exists()
    progress = json.loads((tmp_path / ".tokens.partial" / "progress.json").read_text())
    assert sorted(progress["parts"]) == ["train-00000"]  # only the verified shard is kept


def test_budget_larger_than_the_corpus_is_refused(corpus, backbones, tokens):
    split = open_token_split(tokens, "train", **_checks(backbones["a"], corpus))
    total = int(split.words.sum())
    assert budget_prefix(split, total) == split.tokens - 1  # everything but the last separator
    with pytest.raises(
        LangarithError, match=f"max_train_tokens={total + 1}.*larger than the corpus"
    ):
        budget_prefix(split, total + 1)


# ----------------------------------------------------------------------------- blocks


def _toy_split() -> TokenSplit:
    """Three documents of 4, 6 and 2 sub-words (+ separator 9) and 2, 3, 1 words."""
    docs = [[1, 2, 3, 4], [5, 6, 7, 8, 10, 11], [12, 13]]
    ids = np.array([t for d in docs for t in (*d, 9)], dtype=np.uint32)
    offsets = np.cumsum([0] + [len(d) + 1 for d in docs]).astype(np.int64)
    return TokenSplit(ids, offsets, np.array([2, 3, 1], dtype=np.int64), end_id=9)


def test_budget_prefix_counts_whitespace_tokens():
    split = _toy_split()
    assert budget_prefix(split, 2) == 4  # the whole first document
    assert budget_prefix(split, 3) == 5 + 2  # one of three words: 2 of its 6 sub-words
    assert budget_prefix(split, 5) == 11
    assert budget_prefix(split, 6) == 14


def test_blocks_are_slices_of_the_stream():
    split = _toy_split()
    blocks = TokenBlocks(split, block_size=8, start_id=100, end_id=9, length=split.tokens)
    assert len(blocks) == 15 // 6 == 2
    assert blocks.take([1, 0]).tolist() == [
        [100, 6, 7, 8, 10, 11, 9, 9],
        [100, 1, 2, 3, 4, 9, 5, 9],
    ]
    assert blocks.text_tokens([0]) == 5 and blocks.text_tokens([1]) == 5
    assert blocks.text_tokens() == 10
    with pytest.raises(IndexError):
        blocks.take([2])


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 1025])
def test_block_order_is_a_seeded_permutation_per_epoch(n):
    order = BlockOrder(n, seed=5)
    first = order.indices(0, n)
    assert sorted(first.tolist()) == list(range(n))
    assert sorted(order.indices(n, n).tolist()) == list(range(n))
    assert order.indices(0, n).tolist() == BlockOrder(n, seed=5).indices(0, n).tolist()
    # any window is the same slice of the stream, across epoch boundaries
    both = order.indices(0, 2 * n)
    assert order.indices(n - 1, 2).tolist() == both[n - 1 : n + 1].tolist()
    if n >= 64:
        assert first.tolist() != list(range(n))
        assert first.tolist() != order.indices(n, n).tolist()
        assert first.tolist() != BlockOrder(n, seed=6).indices(0, n).tolist()


def test_block_order_of_a_paper_sized_corpus_needs_no_index():
    """16M blocks (English Wikipedia in 512-token blocks): a window of the order is
    computed from the seed alone, distinct and in range, without an array of size n."""
    n = 16_000_000
    order = BlockOrder(n, seed=42)
    window = order.indices(5_000_000, 4096)
    assert len(set(window.tolist())) == 4096
    assert window.min() >= 0 and window.max() < n
    assert window.tolist() == BlockOrder(n, seed=42).indices(5_000_000, 4096).tolist()
