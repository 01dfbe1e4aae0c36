"""Backbones: the demo build (tokenizer + tiny MLM pre-training), loading, and hub fetching.

Everything is tiny (hidden 32, 2 layers, vocab ~300) so the whole file runs in seconds.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from dataset_files import write_dataset
from safetensors.torch import load_file
from tiny import demo_spec
from transformers import AutoModelForMaskedLM, AutoTokenizer

from langarith import LangarithError
from langarith.backbone import (
    backbone_fingerprint,
    build_demo_backbone,
    fetch_hub_backbone,
    load_backbone,
    pretrain_cycle,
)
from langarith.cli import main

TINY_SPEC = demo_spec()

SYLLABLES = {
    "en": ["the", "ing", "er", "on", "at", "ly", "st", "an"],
    "de": ["sch", "ein", "ung", "der", "ich", "en", "ge", "au"],
    "fr": ["le", "eau", "ion", "ez", "que", "ou", "ai", "é"],
}


def make_corpus(
    root: Path, langs=("en", "de", "fr"), n_train: int = 120, n_val: int = 12
) -> list[Path]:
    """Pseudo-languages with disjoint syllable sets, so languages are distinguishable."""
    dirs = []
    for lang in langs:
        rng = random.Random(f"corpus-{lang}")

        def word(lang=lang, rng=rng) -> str:
            w = "".join(rng.choice(SYLLABLES[lang]) for _ in range(rng.randint(1, 3)))
            return w.capitalize() if rng.random() < 0.1 else w

        def doc(rng=rng, word=word) -> str:
            return " ".join(
                " ".join(word() for _ in range(rng.randint(5, 12))) + "." for _ in range(3)
            )

        dirs.append(
            write_dataset(
                root / lang,
                "wikipedia",
                lang,
                {
                    "train": [{"id": f"{lang}-t{i}", "text": doc()} for i in range(n_train)],
                    "validation": [{"id": f"{lang}-v{i}", "text": doc()} for i in range(n_val)],
                },
            )
        )
    return dirs


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and 2 shared cores are not oversubscribed."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    return make_corpus(tmp_path_factory.mktemp("wikipedia"))


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("backbones")
    return {
        arch: build_demo_backbone(corpus, root / f"demo-{arch}", arch=arch, spec=TINY_SPEC, seed=0)
        for arch in ("bert", "xlmr")
    }


@pytest.mark.parametrize("arch", ["bert", "xlmr"])
def test_demo_backbone_round_trips_with_from_pretrained(built, arch):
    folder = built[arch]
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForMaskedLM.from_pretrained(folder, local_files_only=True)
    assert tokenizer.is_fast
    assert model.config.model_type == ("bert" if arch == "bert" else "xlm-roberta")
    assert model.config.vocab_size == len(tokenizer) <= TINY_SPEC["vocab_size"]
    if arch == "bert":
        assert [tokenizer.cls_token, tokenizer.sep_token, tokenizer.mask_token] == [
            "[CLS]",
            "[SEP]",
            "[MASK]",
        ]
        assert tokenizer.pad_token == "[PAD]" and tokenizer.unk_token == "[UNK]"
        assert "Der" in tokenizer.tokenize("Der der")  # cased, like mBERT
    else:
        assert [tokenizer.bos_token, tokenizer.eos_token, tokenizer.mask_token] == [
            "<s>",
            "</s>",
            "<mask>",
        ]
        assert tokenizer.pad_token == "<pad>" and tokenizer.unk_token == "<unk>"
        assert model.config.pad_token_id == tokenizer.pad_token_id
    pair = tokenizer("ein schung ich.", "le eau.")
    assert pair.sequence_ids().count(1) > 0
    # the saved weights are the ones that were trained (exact round trip)
    saved = load_file(folder / "model.safetensors")
    for name, tensor in model.state_dict().items():
        if name in saved:
            assert torch.equal(saved[name], tensor)
    # it runs, and tokenizer/model agree on sizes
    with torch.no_grad():
        out = model(**tokenizer("ein schung ich.", return_tensors="pt"))
    assert out.logits.shape[-1] == len(tokenizer)

    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["kind"] == "demo" and meta["arch"] == arch
    assert meta["vocab_size"] == len(tokenizer)
    assert meta["pretrain"]["steps"] == TINY_SPEC["pretrain_steps"]
    assert set(meta["corpora"]) == {"en", "de", "fr"}
    assert all(len(c["checksum"]) == 64 for c in meta["corpora"].values())
    assert meta["wall_time_s"] > 0 and meta["pretrain"]["final_train_loss"] > 0
    assert meta["config_sha256"] == backbone_fingerprint(folder)["config_sha256"]


def test_pretraining_reduces_loss(corpus, tmp_path):
    spec = {**TINY_SPEC, "pretrain_steps": 40, "lr": 2e-3}
    folder = build_demo_backbone(corpus, tmp_path / "b", arch="bert", spec=spec, seed=0)
    curve = json.loads((folder / "metadata.json").read_text())["pretrain"]
    assert curve["final_train_loss"] < curve["first_train_loss"]


@pytest.mark.parametrize("arch", ["bert", "xlmr"])
def test_demo_backbone_is_deterministic(corpus, built, tmp_path, arch):
    again = build_demo_backbone(corpus, tmp_path / "again", arch=arch, spec=TINY_SPEC, seed=0)
    assert (again / "tokenizer.json").read_text() == (built[arch] / "tokenizer.json").read_text()
    first = load_file(built[arch] / "model.safetensors")
    second = load_file(again / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    if arch == "bert":
        other = build_demo_backbone(corpus, tmp_path / "other", arch=arch, spec=TINY_SPEC, seed=1)
        third = load_file(other / "model.safetensors")
        assert not all(torch.equal(first[k], third[k]) for k in first)


# Trains a tokenizer on pseudo-words with many equally frequent pairs and prints its
# tokenizer.json. With the Rust WordPieceTrainer (hash-map tie-breaking) the bert output
# differed in 5 of 5 processes; xlmr's required characters were also in hash order.
TRAIN_IN_SUBPROCESS = """
import random, sys
from langarith.backbone import train_tokenizer
rng = random.Random(0)
syl = [a + b for a in "bkdlmnprstv" for b in "aeiouáé"] + ["Bo", "Ka", "qu"]
texts = [
    " ".join("".join(rng.choice(syl) for _ in range(rng.randint(1, 4))) for _ in range(8)) + "."
    for _ in range(80)
]
tok = train_tokenizer(texts, arch=sys.argv[1], vocab_size=1000, min_frequency=1)
sys.stdout.write(tok.backend_tokenizer.to_str())
"""


@pytest.mark.parametrize("arch", ["bert", "xlmr"])
def test_tokenizer_is_identical_across_processes(arch):
    """Hash-map order (Rust's and Python's) differs per process; the vocabulary must not."""
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "TOKENIZERS_PARALLELISM": "false"}
        result = subprocess.run(
            [sys.executable, "-c", TRAIN_IN_SUBPROCESS, arch],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=True,
        )
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    vocab = json.loads(outputs[0])["model"]["vocab"]
    if arch == "bert":
        assert list(vocab)[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        assert 50 < len(vocab) <= 1000
        # real subwords: word-initial pieces, "##" continuations, and every character
        assert "ka" in vocab and "##ka" in vocab and "##é" in vocab and "B" in vocab


def test_load_backbone_errors(built, tmp_path):
    model, tokenizer = load_backbone(built["bert"])
    assert model.config.model_type == "bert" and tokenizer.is_fast
    with pytest.raises(LangarithError, match="does not exist"):
        load_backbone(tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "tokenizer.json").write_text((built["bert"] / "tokenizer.json").read_text())
    with pytest.raises(LangarithError, match="incomplete"):
        load_backbone(broken)
    (broken / "config.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(LangarithError):
        load_backbone(broken)


def test_demo_backbone_rejects_bad_input(corpus, tmp_path):
    with pytest.raises(LangarithError, match="arch"):
        build_demo_backbone(corpus, tmp_path / "x", arch="gpt", spec=TINY_SPEC, seed=0)
    with pytest.raises(
        LangarithError,
        match="unknown key .hidden. in demo backbone spec; did you mean .hidden_size.",
    ):
        build_demo_backbone(corpus, tmp_path / "x", arch="bert", spec={"hidden": 3}, seed=0)
    empty = write_dataset(
        tmp_path / "wiki" / "xx", "wikipedia", "xx", {"train": [{"id": "1", "text": "  "}]}
    )
    with pytest.raises(LangarithError, match="no text"):
        build_demo_backbone([*corpus, empty], tmp_path / "x", arch="bert", spec=TINY_SPEC, seed=0)
    assert not (tmp_path / "x").exists()


def test_fetch_fails_fast_offline(tmp_path):
    started = time.perf_counter()
    with pytest.raises(LangarithError) as err:
        fetch_hub_backbone("bert-base-multilingual-cased", tmp_path / "mbert")
    assert time.perf_counter() - started < 60
    message = str(err.value)
    assert (
        "bert-base-multilingual-cased" in message and "internet" in message and "path:" in message
    )
    assert not (tmp_path / "mbert").exists()


def test_fetch_from_local_path(built, tmp_path):
    out = fetch_hub_backbone("demo-local", tmp_path / "copy", path=built["xlmr"])
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["kind"] == "hub" and meta["local_path"] == str(built["xlmr"])
    model, tokenizer = load_backbone(out)
    assert model.config.model_type == "xlm-roberta" and tokenizer.mask_token == "<mask>"
    with pytest.raises(LangarithError, match="not a folder"):
        fetch_hub_backbone("x", tmp_path / "y", path=tmp_path / "nowhere")


def test_cli_backbone_demo(corpus, tmp_path):
    args = ["backbone", "demo", "--corpus", *map(str, corpus), "--out", str(tmp_path / "cli")]
    for key, value in {**TINY_SPEC, "pretrain_steps": 2}.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0
    assert (tmp_path / "cli" / "metadata.json").exists()
    assert (
        main(["backbone", "fetch", "--hub-name", "xlm-roberta-base", "--out", str(tmp_path / "f")])
        == 1
    )


def test_weight_zero_leaves_a_language_unseen(corpus, tmp_path):
    """A language of weight 0 is in neither the tokenizer nor pre-training (as Assamese
    for XLM-R): the backbone is the one built without its corpus, byte for byte."""
    spec = {**TINY_SPEC, "pretrain_weights": {"fr": 0}}
    unseen = build_demo_backbone(corpus, tmp_path / "unseen", arch="bert", spec=spec, seed=0)
    without = build_demo_backbone(
        corpus[:2], tmp_path / "without", arch="bert", spec=TINY_SPEC, seed=0
    )
    assert (unseen / "tokenizer.json").read_text() == (without / "tokenizer.json").read_text()
    first, second = (
        load_file(unseen / "model.safetensors"),
        load_file(without / "model.safetensors"),
    )
    assert all(torch.equal(first[k], second[k]) for k in first)
    meta = json.loads((unseen / "metadata.json").read_text())
    assert meta["unseen_languages"] == ["fr"]
    assert set(meta["blocks_per_language"]) == {"en", "de"}
    assert set(meta["corpora"]) == {"en", "de", "fr"}


def test_pretrain_cycle_mixes_languages_by_weight():
    assert pretrain_cycle(["bg", "en", "es"], {}) == ["bg", "en", "es"]  # round-robin
    cycle = pretrain_cycle(["bg", "en", "es"], {"en": 3, "es": 0})
    assert cycle == ["bg", "en", "en", "en"]
    assert pretrain_cycle(["de", "en"], {"en": 2}) == ["de", "en", "en"]
    with pytest.raises(LangarithError, match="no demo corpus"):
        pretrain_cycle(["de", "en"], {"fr": 2})
    with pytest.raises(LangarithError, match="integer >= 0"):
        pretrain_cycle(["de", "en"], {"en": -1})
    with pytest.raises(LangarithError, match="no language"):
        pretrain_cycle(["de", "en"], {"en": 0, "de": 0})


PARSER_IN_SUBPROCESS = """
import argparse, sys
import langarith.backbone, langarith.train
parser = argparse.ArgumentParser()
sub = parser.add_subparsers()
langarith.backbone.register_cli(sub)
langarith.train.register_cli(sub)
heavy = sorted(m for m in ("torch", "transformers", "adapters") if m in sys.modules)
sys.stdout.write(",".join(heavy))
"""


def test_backbone_and_train_parsers_import_no_torch():
    """Their handlers are named "module:function" and imported only when a command runs,
    so building the parser (``langarith --help``) does not pay for torch."""
    result = subprocess.run(
        [sys.executable, "-c", PARSER_IN_SUBPROCESS],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout == ""


@pytest.mark.parametrize("arch", ["bert", "xlmr"])
def test_inference_load_copies_the_checkpoint_as_from_pretrained_does(built, arch):
    from langarith import modeling

    folder = built[arch]
    rng_before = torch.random.get_rng_state()
    direct = modeling._direct_backbone(folder)
    assert direct is not None  # the demo's checkpoints are plain: the fast path is taken
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # global generator untouched
    pretrained = modeling.load_adapter_model(folder)  # training's path
    assert str(direct) == str(pretrained) and not direct.training and not direct.heads
    ours, theirs = direct.state_dict(), pretrained.state_dict()
    assert ours.keys() == theirs.keys()
    differ = {key for key in ours if not torch.equal(ours[key], theirs[key])}
    # only the pooler, which an MLM checkpoint lacks (both initialise it at random)
    assert differ and all(".pooler." in key for key in differ)
    again = modeling.load_adapter_model(folder, for_inference=True).state_dict()
    assert all(torch.equal(again[key], ours[key]) for key in ours)  # seeded: every process
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    batch = tokenizer(["ein schung ich.", "le eau ou que ai."], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = [m(**batch).last_hidden_state for m in (direct, pretrained)]
    assert torch.equal(*hidden)


def test_inference_load_leaves_unusual_checkpoints_to_from_pretrained(built, tmp_path):
    from transformers import BertModel

    from langarith import modeling

    bare = tmp_path / "bare"  # a BertModel checkpoint: keys without the "bert." prefix
    BertModel.from_pretrained(built["bert"]).save_pretrained(bare)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (built["bert"] / name).exists():
            (bare / name).write_bytes((built["bert"] / name).read_bytes())
    assert modeling._direct_backbone(bare) is None
    model = modeling.load_adapter_model(bare, for_inference=True)
    saved = load_file(bare / "model.safetensors")
    state = model.state_dict()
    assert all(torch.equal(state[f"bert.{key}"], value) for key, value in saved.items())
    (bare / "model.safetensors").write_bytes(b"garbage")  # corrupt: from_pretrained's error
    assert modeling._direct_backbone(bare) is None
    with pytest.raises(LangarithError, match="cannot be loaded"):
        modeling.load_adapter_model(bare, for_inference=True)
