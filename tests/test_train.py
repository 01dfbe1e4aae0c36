"""Language and task adapters: shared init, exact resume, token budget, failures, task heads.

Tiny everything (hidden 32, 2 layers, vocab ~300, a handful of steps) on synthetic data
written in the docs/interfaces.md format, so the whole file runs in well under a minute.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

import adapters
import pytest
import torch
from dataset_files import write_dataset
from safetensors.torch import load_file
from tiny import demo_spec
from transformers import AutoModelForMaskedLM

import langarith.train.language_adapter as language_adapter
import langarith.train.task_adapter as task_adapter
from langarith import LangarithError
from langarith.backbone import build_demo_backbone, load_tokenizer
from langarith.cli import main
from langarith.cli_options import load_settings
from langarith.data import read_split
from langarith.train import (
    TASK_METRIC,
    TrainingInterrupted,
    device_and_dtype,
    encode_ner,
    encode_qa,
    encode_task,
    evaluate_task,
    init_language_adapter,
    load_model_for_task,
    ner_predictions,
    qa_predictions,
    train_language_adapter,
    train_task_adapter,
)
from langarith.train.task_adapter import chance_warning
from langarith.training.mlm import mlm_loss, pack_blocks

NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
SYLLABLES = {
    "en": ["the", "ing", "er", "on", "at", "ly", "st", "an"],
    "de": ["sch", "ein", "ung", "der", "ich", "en", "ge", "au"],
    "fr": ["le", "eau", "ion", "ez", "que", "ou", "ai", "é"],
}
TINY_SPEC = demo_spec(pretrain_steps=6)
LANG_HP = {
    "max_steps": 6,
    "batch_size": 4,
    "block_size": 32,
    "eval_every": 2,
    "checkpoint_every": 0,
    "max_eval_blocks": 8,
}
TASK_HP = {
    "max_steps": 4,
    "batch_size": 4,
    "eval_every": 2,
    "checkpoint_every": 0,
    "max_eval_rows": 8,
    "max_length": 64,
    "doc_stride": 16,
    "adapter_config": {"reduction_factor": 4},
}


# ----------------------------------------------------------------------------- data


def _word(rng: random.Random, lang: str = "en") -> str:
    return "".join(rng.choice(SYLLABLES[lang]) for _ in range(rng.randint(1, 3)))


def _sentence(rng: random.Random, lang: str = "en", n: int | None = None) -> str:
    words = [_word(rng, lang) for _ in range(n or rng.randint(5, 12))]
    return " ".join(w.capitalize() if rng.random() < 0.1 else w for w in words) + "."


def make_wikipedia(root: Path, lang: str, n_train: int = 80, n_val: int = 10) -> Path:
    rng = random.Random(f"wiki-{lang}")

    def doc() -> str:
        return " ".join(_sentence(rng, lang) for _ in range(3))

    return write_dataset(
        root / "wikipedia" / lang,
        "wikipedia",
        lang,
        {
            "train": [{"id": f"{lang}-t{i}", "text": doc()} for i in range(n_train)],
            "validation": [{"id": f"{lang}-v{i}", "text": doc()} for i in range(n_val)],
        },
    )


def make_wikiann(root: Path, n: int = 40) -> Path:
    rng = random.Random("wikiann")

    def row(i: int, split: str) -> dict:
        tokens, tags = [], []
        while len(tokens) < rng.randint(6, 12):
            if rng.random() < 0.25:
                kind = rng.choice(["PER", "ORG", "LOC"])
                for j in range(rng.randint(1, 2)):
                    tokens.append(_word(rng).capitalize())
                    tags.append(("B-" if j == 0 else "I-") + kind)
            else:
                tokens.append(_word(rng))
                tags.append("O")
        return {"id": f"{split}-{i}", "tokens": tokens, "ner_tags": tags}

    splits = {s: [row(i, s) for i in range(n)] for s in ("train", "validation", "test")}
    return write_dataset(root / "wikiann" / "en", "wikiann", "en", splits, labels=NER_LABELS)


def make_xnli(root: Path, n: int = 40) -> Path:
    rng = random.Random("xnli")
    splits = {
        s: [
            {
                "id": f"{s}-{i}",
                "premise": _sentence(rng),
                "hypothesis": _sentence(rng, n=5),
                "label": rng.randint(0, 2),
            }
            for i in range(n)
        ]
        for s in ("train", "validation", "test")
    }
    labels = ["entailment", "neutral", "contradiction"]
    return write_dataset(root / "xnli" / "en", "xnli", "en", splits, labels=labels)


def qa_row(rng: random.Random, i: int, split: str, n_sentences: int = 3) -> dict:
    context = " ".join(_sentence(rng) for _ in range(n_sentences))
    words = context.replace(".", "").split()
    answer = words[rng.randrange(len(words))]
    start = context.index(answer)
    while start > 0 and context[start - 1] != " ":  # answers start at a word boundary
        start = context.index(answer, start + 1)
    return {
        "id": f"{split}-{i}",
        "title": "t",
        "context": context,
        "question": " ".join(_word(rng) for _ in range(4)) + "?",
        "answers": {"text": [answer], "answer_start": [start]},
    }


def make_squad(root: Path, n: int = 30) -> Path:
    rng = random.Random("squad")
    splits = {s: [qa_row(rng, i, s) for i in range(n)] for s in ("train", "validation")}
    return write_dataset(root / "squad" / "en", "squad", "en", splits)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and 2 shared cores are not oversubscribed."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Corpora, tiny backbones (both archs), their shared inits and English adapters."""
    root = tmp_path_factory.mktemp("world")
    wiki = {lang: make_wikipedia(root, lang) for lang in ("en", "de", "fr")}
    out = {"root": root, "wiki": wiki}
    for arch in ("bert", "xlmr"):
        bb = build_demo_backbone(
            list(wiki.values()), root / "backbones" / arch, arch=arch, spec=TINY_SPEC, seed=0
        )
        init = init_language_adapter(bb, root / "adapters" / arch / "lang" / "init", seed=0)
        en = train_language_adapter(
            bb,
            init,
            wiki["en"],
            root / "adapters" / arch / "lang" / "en" / "seed0",
            seed=0,
            hparams={**LANG_HP, "max_steps": 4},
        )
        out[arch] = {"backbone": bb, "init": init, "en": en}
    out["tasks"] = {"ner": make_wikiann(root), "nli": make_xnli(root), "qa": make_squad(root)}
    return out


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "adapter.safetensors")


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- language


def test_shared_init_and_distinct_languages(world, tmp_path):
    bb, init = world["bert"]["backbone"], world["bert"]["init"]
    init_meta = json.loads((init / "metadata.json").read_text())
    outs = {
        lang: train_language_adapter(
            bb, init, world["wiki"][lang], tmp_path / lang, seed=0, hparams=LANG_HP
        )
        for lang in ("de", "fr")
    }
    theta_init = _weights(init)
    assert any("invertible_adapters" in k for k in theta_init)
    assert (
        init_meta["init_sha256"]
        == hashlib.sha256((init / "adapter.safetensors").read_bytes()).hexdigest()
    )
    for lang, out in outs.items():
        meta = json.loads((out / "metadata.json").read_text())
        assert meta["init_sha256"] == init_meta["init_sha256"]
        assert meta["language"] == lang and meta["steps"] == LANG_HP["max_steps"]
        assert meta["best_step"] in (2, 4, 6) and meta["best_val_loss"] > 0
        assert {"torch", "transformers", "adapters"} <= set(meta["versions"])
        assert meta["backbone"]["config_sha256"] == init_meta["backbone"]["config_sha256"]
    # loading θ_init twice onto fresh models gives the identical weights
    loaded = []
    for _ in range(2):
        model = AutoModelForMaskedLM.from_pretrained(bb)
        adapters.init(model)
        model.load_adapter(str(init), load_as="lang", use_safetensors=True, with_head=False)
        loaded.append({n: p.detach().clone() for n, p in model.named_parameters() if ".lang." in n})
    assert _equal(loaded[0], loaded[1]) and _equal(loaded[0], theta_init)
    de, fr = _weights(outs["de"]), _weights(outs["fr"])
    assert de.keys() == fr.keys() == theta_init.keys()
    assert not any(torch.equal(de[k], fr[k]) for k in de if "adapter_up.weight" in k)
    assert not _equal(de, theta_init) and not _equal(fr, theta_init)
    # the same init with another seed writes another θ_init
    other = init_language_adapter(bb, tmp_path / "init2", seed=1)
    assert not _equal(_weights(other), theta_init)


def test_adapterhub_round_trip(world):
    bb, out = world["xlmr"]["backbone"], world["xlmr"]["en"]
    saved = _weights(out)
    assert any("invertible_adapters" in k for k in saved)
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter.safetensors",
        "adapter_config.json",
        "metadata.json",
        "pytorch_adapter.bin",
    ]
    for use_safetensors in (True, False):
        model = AutoModelForMaskedLM.from_pretrained(bb)
        adapters.init(model)
        if use_safetensors:
            name = model.load_adapter(str(out), load_as="xx", use_safetensors=True)
        else:  # the call the adapters docs show: default arguments read the .bin twin
            name = model.load_adapter(str(out), load_as="xx")
        assert name == "xx"
        params = dict(model.named_parameters())
        for key, tensor in saved.items():
            assert torch.equal(params[key.replace(".lang.", ".xx.")], tensor)
    config = json.loads((out / "adapter_config.json").read_text())["config"]
    assert config["inv_adapter"] == "nice" and config["reduction_factor"] == 2
    assert config["non_linearity"] == "gelu_new"


def test_resume_after_kill_gives_identical_weights(world, tmp_path, caplog):
    bb, init, data = world["bert"]["backbone"], world["bert"]["init"], world["wiki"]["de"]
    hp = {**LANG_HP, "grad_accum": 2, "checkpoint_every": 2}
    straight = train_language_adapter(
        bb, init, data, tmp_path / "straight", seed=3, hparams=hp, checkpoint_dir=tmp_path / "ck1"
    )
    assert not (tmp_path / "ck1").exists()

    ck = tmp_path / ".checkpoints" / "resumed"
    with pytest.raises(TrainingInterrupted):
        train_language_adapter(
            bb,
            init,
            data,
            tmp_path / "resumed",
            seed=3,
            hparams={**hp, "stop_after_steps": 3},
            checkpoint_dir=ck,
        )
    assert not (tmp_path / "resumed").exists()
    state = json.loads((ck / "state.json").read_text())
    assert state["step"] == 2 and {p.name for p in ck.iterdir()} >= {
        "weights.safetensors",
        "best.safetensors",
        "optim.pt",
        "state.json",
    }
    resumed = train_language_adapter(
        bb, init, data, tmp_path / "resumed", seed=3, hparams=hp, checkpoint_dir=ck
    )
    assert _equal(_weights(straight), _weights(resumed))
    meta_a = json.loads((straight / "metadata.json").read_text())
    meta_b = json.loads((resumed / "metadata.json").read_text())
    assert meta_b["resumed_from_step"] == 2 and meta_a["resumed_from_step"] is None
    assert meta_a["eval_history"] == meta_b["eval_history"]
    assert meta_a["tokens_processed"] == meta_b["tokens_processed"]
    assert not ck.exists() and (tmp_path / ".checkpoints").is_dir()

    # a checkpoint made with other hparams is not resumed
    with pytest.raises(TrainingInterrupted):
        train_language_adapter(
            bb,
            init,
            data,
            tmp_path / "again",
            seed=3,
            hparams={**hp, "stop_after_steps": 3},
            checkpoint_dir=ck,
        )
    with caplog.at_level(logging.WARNING):
        again = train_language_adapter(
            bb,
            init,
            data,
            tmp_path / "again",
            seed=3,
            hparams={**hp, "lr": 2e-4},
            checkpoint_dir=ck,
        )
    assert "starting fresh" in caplog.text
    assert json.loads((again / "metadata.json").read_text())["resumed_from_step"] is None


def test_same_seed_same_weights_other_seed_differs(world, tmp_path):
    bb, init, data = world["bert"]["backbone"], world["bert"]["init"], world["wiki"]["fr"]
    hp = {**LANG_HP, "max_steps": 3, "eval_every": 0}
    a = train_language_adapter(bb, init, data, tmp_path / "a", seed=1, hparams=hp)
    b = train_language_adapter(bb, init, data, tmp_path / "b", seed=1, hparams=hp)
    c = train_language_adapter(bb, init, data, tmp_path / "c", seed=2, hparams=hp)
    assert _equal(_weights(a), _weights(b))
    assert not _equal(_weights(a), _weights(c))


@pytest.mark.parametrize("arch", ["bert", "xlmr"])
def test_fast_mlm_loss_equals_model_loss(world, arch):
    model = AutoModelForMaskedLM.from_pretrained(world[arch]["backbone"])
    adapters.init(model)
    model.load_adapter(str(world[arch]["en"]), load_as="lang", use_safetensors=True)
    model.set_active_adapters("lang")
    with torch.no_grad():  # make the invertible adapter far from identity
        for name, param in model.named_parameters():
            if "invertible_adapters" in name:
                param.add_(torch.randn_like(param))
    model.eval()
    ids = torch.randint(5, model.config.vocab_size, (4, 32))
    labels = ids.clone()
    labels[torch.rand(labels.shape) > 0.3] = -100
    with torch.no_grad():
        expected = model(input_ids=ids, labels=labels).loss
        assert torch.allclose(mlm_loss(model, ids, labels), expected, atol=1e-5)
        model.set_active_adapters(None)  # without the adapter the loss changes
        assert not torch.allclose(model(input_ids=ids, labels=labels).loss, expected, atol=1e-3)


def test_pack_blocks_respects_budget():
    docs = [[5] * 10, [6] * 10, [7] * 10]
    packed = pack_blocks(docs, block_size=8, start_id=1, end_id=2, max_tokens=25)
    # stream: 10 fives, sep, 10 sixes, sep, 5 sevens = 27 -> 4 blocks of 6, tail dropped
    assert packed.budget_hit and len(packed) == 4
    assert packed.blocks[:, 0].eq(1).all() and packed.blocks[:, -1].eq(2).all()
    assert packed.text_tokens == 22 <= 25
    assert packed.blocks[0, 1:-1].tolist() == [5] * 6
    unlimited = pack_blocks(docs, block_size=8, start_id=1, end_id=2)
    assert not unlimited.budget_hit and len(unlimited) == 5


def test_token_budget_is_respected(world, tmp_path):
    """A budget is a prefix of the token file measured in whitespace tokens."""
    bb, init, data = world["bert"]["backbone"], world["bert"]["init"], world["wiki"]["de"]
    hp = {**LANG_HP, "max_steps": 20, "eval_every": 0, "max_train_tokens": 200}
    out = train_language_adapter(bb, init, data, tmp_path / "budget", seed=0, hparams=hp)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["token_budget_reached"] and meta["train_words"] == 200
    assert meta["tokens_seen"] <= meta["train_tokens"]
    # 200 words are a few hundred sub-words: a handful of 30-token blocks
    assert 1 <= meta["train_blocks"] <= meta["train_tokens"] // 30 + 1 < 40
    assert meta["epochs"] > 1  # 20 steps x 4 blocks cycle through the few budget blocks
    full = train_language_adapter(
        bb, init, data, tmp_path / "full", seed=0, hparams={**hp, "max_train_tokens": None}
    )
    full_meta = json.loads((full / "metadata.json").read_text())
    words = sum(len(r["text"].split()) for r in read_split(data, "train") if r["text"].strip())
    assert full_meta["train_words"] == words > 200 and not full_meta["token_budget_reached"]
    assert full_meta["train_tokens"] > meta["train_tokens"]
    assert full_meta["tokens_seen"] <= full_meta["train_tokens"]
    with pytest.raises(LangarithError, match=f"max_train_tokens={words + 1} .*larger than"):
        train_language_adapter(
            bb, init, data, tmp_path / "big", seed=0, hparams={**hp, "max_train_tokens": words + 1}
        )
    assert not (tmp_path / "big").exists()


def test_nan_loss_stops_without_output(world, tmp_path, monkeypatch):
    def nan_loss(model, input_ids, labels):
        return model(input_ids=input_ids, labels=labels).loss * float("nan")

    monkeypatch.setattr(language_adapter, "mlm_loss", nan_loss)
    bb, init = world["bert"]["backbone"], world["bert"]["init"]
    with pytest.raises(LangarithError, match="nan"):
        train_language_adapter(
            bb,
            init,
            world["wiki"]["de"],
            tmp_path / "nan",
            seed=0,
            hparams=LANG_HP,
            checkpoint_dir=tmp_path / "ck",
        )
    assert not (tmp_path / "nan").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".nan")]


def test_language_errors(world, tmp_path):
    bb, init = world["bert"]["backbone"], world["bert"]["init"]
    empty = write_dataset(
        tmp_path / "wikipedia" / "xx",
        "wikipedia",
        "xx",
        {"train": [{"id": "1", "text": ""}, {"id": "2", "text": "  "}], "validation": []},
    )
    with pytest.raises(LangarithError, match="'xx' has no text"):
        train_language_adapter(bb, init, empty, tmp_path / "out", seed=0, hparams=LANG_HP)
    with pytest.raises(LangarithError, match="unknown key 'maxsteps'.*did you mean 'max_steps'"):
        train_language_adapter(
            bb, init, world["wiki"]["de"], tmp_path / "out", seed=0, hparams={"maxsteps": 3}
        )
    for bad in ({"max_steps": 0}, {"lr": -1.0}, {"lr": float("nan")}, {"batch_size": True}):
        with pytest.raises(LangarithError, match=f"language-adapter hparams.{next(iter(bad))}"):
            train_language_adapter(
                bb, init, world["wiki"]["de"], tmp_path / "out", seed=0, hparams=bad
            )
    with pytest.raises(LangarithError, match="another backbone"):
        train_language_adapter(
            world["xlmr"]["backbone"],
            init,
            world["wiki"]["de"],
            tmp_path / "out",
            seed=0,
            hparams=LANG_HP,
        )
    with pytest.raises(LangarithError, match="architecture 'seq_bn_invv'"):
        init_language_adapter(bb, tmp_path / "i", adapter_config={"architecture": "seq_bn_invv"})
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- tasks


@pytest.mark.parametrize(
    "arch,task",
    [("bert", "ner"), ("bert", "nli"), ("bert", "qa"), ("xlmr", "ner"), ("xlmr", "qa")],
)
def test_task_adapter_trains_saves_and_reloads(world, tmp_path, arch, task):
    bb, en = world[arch]["backbone"], world[arch]["en"]
    out = train_task_adapter(
        bb, en, world["tasks"][task], task, tmp_path / task, seed=0, hparams=TASK_HP
    )
    names = {p.name for p in out.iterdir()}
    assert names == {
        "adapter.safetensors",
        "adapter_config.json",
        "head_config.json",
        "model_head.safetensors",
        "metadata.json",
        "pytorch_adapter.bin",
        "pytorch_model_head.bin",
    }
    plain = adapters.AutoAdapterModel.from_pretrained(bb)  # the adapters docs' default call
    assert plain.load_adapter(str(out)) == task and task in plain.heads
    loaded = dict(plain.named_parameters())
    for key, tensor in _weights(out).items():
        assert torch.equal(loaded[key], tensor)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["task"] == task and meta["steps"] == 4 and meta["metric"] == TASK_METRIC[task]
    assert meta["lang_adapter"]["language"] == "en"
    assert (
        meta["labels"]
        == {"ner": NER_LABELS, "nli": ["entailment", "neutral", "contradiction"], "qa": []}[task]
    )
    head = json.loads((out / "head_config.json").read_text())
    assert head["name"] == task

    model = load_model_for_task(bb, out, en)
    assert str(model.active_adapters) == f"Stack[lang, {task}]" and model.active_head == task
    assert not model.training
    params = dict(model.named_parameters())
    for key, tensor in _weights(en).items():  # the language adapter stayed frozen
        assert torch.equal(params[key], tensor)
    for key, tensor in _weights(out).items():
        assert torch.equal(params[key], tensor)

    tokenizer = load_tokenizer(bb)
    rows = [json.loads(line) for line in (world["tasks"][task] / "validation.jsonl").open()][:8]
    encoded = encode_task(
        task, rows, tokenizer, labels=meta["labels"], max_length=64, doc_stride=16
    )
    metrics = evaluate_task(model, task, encoded, rows=rows, labels=meta["labels"])
    assert metrics[TASK_METRIC[task]] == pytest.approx(meta["best_metric"])
    assert 0 <= metrics[TASK_METRIC[task]] <= 100


def test_task_adapter_from_chunked_features_is_the_same(world, tmp_path, monkeypatch):
    """QA rows streamed and encoded 7 at a time (features on disk, validation scored
    chunk by chunk) train the adapter that one chunk of all rows trains; the feature
    store is gone afterwards."""
    bb, en, data = world["bert"]["backbone"], world["bert"]["en"], world["tasks"]["qa"]
    hp = {**TASK_HP, "max_length": 32, "doc_stride": 8}  # contexts overflow into windows
    monkeypatch.setattr(task_adapter, "FEATURE_CHUNK_ROWS", 10**6)
    whole = train_task_adapter(bb, en, data, "qa", tmp_path / "whole", seed=0, hparams=hp)
    monkeypatch.setattr(task_adapter, "FEATURE_CHUNK_ROWS", 7)
    chunked = train_task_adapter(bb, en, data, "qa", tmp_path / "chunked", seed=0, hparams=hp)
    assert _equal(_weights(whole), _weights(chunked))
    metas = [json.loads((d / "metadata.json").read_text()) for d in (whole, chunked)]
    for key in ("eval_history", "train_features", "validation_features", "data"):
        assert metas[0][key] == metas[1][key]
    assert metas[1]["train_features"] > metas[1]["data"]["train"]["rows"] == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked", "whole"]


def test_task_resume_is_exact(world, tmp_path):
    bb, en, data = world["bert"]["backbone"], world["bert"]["en"], world["tasks"]["nli"]
    hp = {**TASK_HP, "max_steps": 5, "checkpoint_every": 2}
    a = train_task_adapter(bb, en, data, "nli", tmp_path / "a", seed=1, hparams=hp)
    with pytest.raises(TrainingInterrupted):
        train_task_adapter(
            bb,
            en,
            data,
            "nli",
            tmp_path / "b",
            seed=1,
            hparams={**hp, "stop_after_steps": 3},
            checkpoint_dir=tmp_path / "ck",
        )
    b = train_task_adapter(
        bb,
        en,
        {"train": data, "validation": data},
        "nli",
        tmp_path / "b",
        seed=1,
        hparams=hp,
        checkpoint_dir=tmp_path / "ck",
    )
    assert json.loads((b / "metadata.json").read_text())["resumed_from_step"] == 2
    assert _equal(_weights(a), _weights(b))
    assert _equal(load_file(a / "model_head.safetensors"), load_file(b / "model_head.safetensors"))


def test_task_eval_every_epochs_and_warmup(world, tmp_path):
    bb, en, data = world["bert"]["backbone"], world["bert"]["en"], world["tasks"]["nli"]
    hp = {
        **TASK_HP,
        "max_steps": None,
        "epochs": 2,
        "batch_size": 8,
        "eval_every_epochs": 1,
        "max_train_rows": 16,
        "warmup_ratio": 0.25,
    }
    out = train_task_adapter(bb, en, data, "nli", tmp_path / "e", seed=0, hparams=hp)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["steps"] == 4 and [h["step"] for h in meta["eval_history"]] == [2, 4]
    with pytest.raises(LangarithError, match="sets both warmup_steps .1. and warmup_ratio"):
        train_task_adapter(
            bb,
            en,
            data,
            "nli",
            tmp_path / "w",
            seed=0,
            hparams={**hp, "warmup_steps": 1},
        )


def test_chance_level_task_adapter_is_reported(world, tmp_path, monkeypatch, caplog):
    # The demo's English NER F1 0.0 / NLI accuracy 33.3 passed silently; now it is logged.
    rows = [{"label": i % 3} for i in range(9)]
    assert chance_warning("nli", 100 / 3, rows) and chance_warning("nli", 60.0, rows) is None
    assert chance_warning("ner", 0.0, []) and chance_warning("ner", 12.5, []) is None
    assert chance_warning("qa", 0.0, []) is None

    monkeypatch.setattr(task_adapter, "evaluate_chunks", lambda *a, **k: {"accuracy": 100 / 3})
    bb, en, data = world["bert"]["backbone"], world["bert"]["en"], world["tasks"]["nli"]
    with caplog.at_level(logging.WARNING, logger="langarith.train.task_adapter"):
        train_task_adapter(
            bb, en, data, "nli", tmp_path / "c", seed=0, hparams={**TASK_HP, "max_steps": 2}
        )
    assert "nli seed 0 did not learn" in caplog.text


def test_task_errors(world, tmp_path):
    bb, en = world["bert"]["backbone"], world["bert"]["en"]
    with pytest.raises(LangarithError, match="Task 'pos' is unknown"):
        train_task_adapter(bb, en, world["tasks"]["ner"], "pos", tmp_path / "x", seed=0)
    with pytest.raises(LangarithError, match="lacks the split"):
        train_task_adapter(bb, en, {"train": world["tasks"]["ner"]}, "ner", tmp_path / "x", seed=0)
    bad = write_dataset(
        tmp_path / "bad",
        "wikiann",
        "en",
        {
            "train": [{"id": "1", "tokens": ["a"], "ner_tags": ["B-MISC"]}],
            "validation": [{"id": "2", "tokens": ["a"], "ner_tags": ["O"]}],
        },
        labels=NER_LABELS,
    )
    with pytest.raises(LangarithError, match="B-MISC"):
        train_task_adapter(bb, en, bad, "ner", tmp_path / "x", seed=0, hparams={"max_eval_rows": 1})


def test_ner_labels_first_subtoken_only(world):
    tokenizer = load_tokenizer(world["bert"]["backbone"])
    rows = [
        {
            "id": "1",
            "tokens": ["Schungeinichderau", "ing", "Theingly"],
            "ner_tags": ["B-PER", "O", "B-LOC"],
        },
    ]
    enc = encode_ner(rows, tokenizer, NER_LABELS, max_length=64)
    words, labels = enc.word_ids[0], enc.labels[0]
    assert words.count(0) > 1  # the long word is split into several sub-tokens
    previous = None
    for word, label in zip(words, labels, strict=True):
        if word is None or word == previous:
            assert label == -100
        else:
            assert label == NER_LABELS.index(rows[0]["ner_tags"][word])
        previous = word
    assert sum(label != -100 for label in labels) == 3
    # predictions on first sub-tokens map back to word tags
    pred = [[max(label, 0) for label in labels]]
    assert ner_predictions(pred, enc, NER_LABELS) == [["B-PER", "O", "B-LOC"]]
    # words cut off by max_length are predicted "O"
    short = encode_ner(rows, tokenizer, NER_LABELS, max_length=4)
    tags = ner_predictions([[1] * len(short.input_ids[0])], short, NER_LABELS)[0]
    assert len(tags) == 3 and tags[-1] == "O"


@pytest.mark.parametrize("arch", ["bert", "xlmr"])
def test_qa_offsets_map_to_answer_tokens(world, arch):
    tokenizer = load_tokenizer(world[arch]["backbone"])
    rng = random.Random("qa-offsets")
    rows = [qa_row(rng, i, "t", n_sentences=4) for i in range(12)]
    enc = encode_qa(rows, tokenizer, max_length=40, doc_stride=12)
    assert len(enc) > len(rows)  # long contexts are split into several windows
    assert enc.offset_mapping is not None
    found = set()
    for f, row_index in enumerate(enc.example_index):
        row = rows[row_index]
        start, end = enc.start_positions[f], enc.end_positions[f]
        cls = enc.input_ids[f].index(tokenizer.cls_token_id)
        if start == cls:
            assert end == cls
            continue
        offsets = enc.offset_mapping[f]
        assert offsets[start] is not None and offsets[end] is not None and start <= end
        span = row["context"][offsets[start][0] : offsets[end][1]]
        assert span == row["answers"]["text"][0]
        found.add(row_index)
    assert found == set(range(len(rows)))  # every answer lies fully in some window
    # one-hot logits at the gold positions give back the gold answers
    starts, ends = [], []
    for f in range(len(enc)):
        s = torch.full((len(enc.input_ids[f]),), -10.0)
        e = s.clone()
        if enc.start_positions[f] != enc.input_ids[f].index(tokenizer.cls_token_id):
            s[enc.start_positions[f]] = 10.0
            e[enc.end_positions[f]] = 10.0
        starts.append(s.numpy())
        ends.append(e.numpy())
    predictions = qa_predictions(starts, ends, enc, rows, max_answer_len=30)
    # an over-long question is cut instead of making the tokenizer fail
    long_question = {**rows[0], "question": " ".join(["theing"] * 200) + "?"}
    assert len(encode_qa([long_question], tokenizer, max_length=40, doc_stride=12)) >= 1
    assert predictions == {r["id"]: r["answers"]["text"][0] for r in rows}


def test_device_and_dtype_cpu_fallback():
    setup = device_and_dtype(fp16=True)
    if not torch.cuda.is_available():
        assert setup.device.type == "cpu" and setup.autocast_dtype is None and not setup.use_scaler
    with pytest.raises(LangarithError, match="both"):
        device_and_dtype(fp16=True, bf16=True)


def test_settings_and_cli(world, tmp_path):
    path = tmp_path / "hp.yaml"
    path.write_text("max_steps: 3\nadapter_config:\n  reduction_factor: 8\n")
    settings = load_settings(path, ["lr=1e-4", "adapter_config.non_linearity=gelu", "fp16=true"])
    assert settings == {
        "max_steps": 3,
        "lr": 1e-4,
        "fp16": True,
        "adapter_config": {"reduction_factor": 8, "non_linearity": "gelu"},
    }
    bb = str(world["bert"]["backbone"])
    assert (
        main(
            [
                "train",
                "init",
                "--backbone",
                bb,
                "--out",
                str(tmp_path / "init"),
                "--set",
                "reduction_factor=4",
            ]
        )
        == 0
    )
    config = json.loads((tmp_path / "init" / "adapter_config.json").read_text())["config"]
    assert config["reduction_factor"] == 4
    args = [
        "train",
        "language",
        "--backbone",
        bb,
        "--init",
        str(tmp_path / "init"),
        "--data",
        str(world["wiki"]["fr"]),
        "--out",
        str(tmp_path / "fr"),
        "--seed",
        "1",
    ]
    sets = [f"{k}={v}" for k, v in {**LANG_HP, "max_steps": 2}.items()]
    assert main(args + [x for s in sets for x in ("--set", s)]) == 0
    assert main(args + ["--set", "maxsteps=2"]) == 1
