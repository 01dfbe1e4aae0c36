"""A language added to a pre-trained X-MOD (or SHARED) model after pre-training.

X-MOD §3.3: the new language gets its own SentencePiece vocabulary; the rows of tokens
the old vocabulary also has are copied, the others drawn fresh; word and position
embeddings and a fresh module per layer are trained by MLM on the language, everything
else frozen. SHARED has no module to add and learns the new embeddings only. The
checkpoint itself is not changed: the added language is a folder of its own
(``results/xmod/<model>/added/<lang>/``: tokenizer, ``embeddings.safetensors``,
``modules.safetensors``) swapped in at test time, so every pre-trained language's
outputs stay bit-identical.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer

from langarith import LangarithError
from langarith.backbone.folder import load_tokenizer
from langarith.backbone.tokenizer import train_tokenizer
from langarith.io import OutputKind, atomic_dir, check_replaceable, read_json, write_json
from langarith.provenance import utc_now, versions
from langarith.settings import XmodAddSettings
from langarith.training.inputs import data_checksum, read_rows
from langarith.training.loop import LoopConfig, device_and_dtype, run_training_loop
from langarith.training.loop import trainable_parameters as trainable
from langarith.training.seeding import seed_everything
from langarith.xmod.model import (
    SHARED_KEY,
    add_module,
    copied_embeddings,
    demo_key,
    embedding_state,
    install_embeddings,
    is_shared,
    layers,
    load_module_state,
    load_xmod,
    module_keys,
    module_state,
)
from langarith.xmod.pretrain import LanguageSampler, MlmBatches, corpus_blocks

__all__ = ["ADDED_OUTPUT", "add_language", "install_added", "prepare_added_model"]

#: An added language's folder (replaced only by another one).
ADDED_OUTPUT = OutputKind("added X-MOD language", record="metadata.json", record_kinds=("added",))
EMBEDDINGS_FILE = "embeddings.safetensors"
MODULES_FILE = "modules.safetensors"
#: The LM head's output bias, resized with the vocabulary (copied rows, kept frozen).
HEAD_BIAS = "lm_head.bias"


def _check_new(config: Any, iso: str, where: str) -> str:
    """The module key the added language will use; a language with a module is refused."""
    keys = module_keys(config)
    if iso in keys:
        raise LangarithError(
            f"{where}: language {iso!r} already has a module ({keys[iso]!r}) in this "
            f"checkpoint (languages: {', '.join(sorted(keys))}); remove it from xmod.added."
        )
    return SHARED_KEY if is_shared(config) else demo_key(iso)


def _resize_head(model, old_vocab: Mapping[str, int], new_vocab: Mapping[str, int]) -> None:
    """The MLM head over the new vocabulary: decoder tied to the new word embeddings,
    bias rows copied for shared tokens (zero otherwise)."""
    head = model.lm_head
    old_bias = head.bias.detach().cpu()
    bias = torch.zeros(len(new_vocab))
    for token, new_id in new_vocab.items():
        old_id = old_vocab.get(token)
        if old_id is not None and old_id < len(old_bias):
            bias[new_id] = old_bias[old_id]
    words = model.base_model.embeddings.word_embeddings
    decoder = torch.nn.Linear(words.weight.shape[1], len(new_vocab))
    decoder.weight = words.weight
    head.bias = torch.nn.Parameter(bias)
    decoder.bias = head.bias
    head.decoder = decoder


def prepare_added_model(model, tokenizer, new_tokenizer, iso: str, *, seed: int, where: str):
    """Install a new language's vocabulary (copied rows) and fresh module in ``model``.

    Returns the module key and the number of copied embedding rows. Only the word and
    position embeddings and (X-MOD) the new module are left trainable.
    """
    key = _check_new(model.config, iso, where)
    old = embedding_state(model)
    old_vocab, new_vocab = tokenizer.get_vocab(), new_tokenizer.get_vocab()
    words, copied = copied_embeddings(
        old_vocab,
        new_vocab,
        old["word_embeddings.weight"],
        std=float(model.config.initializer_range),
        seed=seed,
    )
    state = {
        "word_embeddings.weight": words,
        "position_embeddings.weight": old["position_embeddings.weight"],
    }
    install_embeddings(model, state, len(new_tokenizer), where)
    _resize_head(model, old_vocab, new_vocab)
    for param in model.parameters():
        param.requires_grad = False
    embeddings = model.base_model.embeddings
    for module in (embeddings.word_embeddings, embeddings.position_embeddings):
        module.weight.requires_grad = True
    if key != SHARED_KEY:
        add_module(model, key, seed)
        for layer in layers(model):
            for param in layer.output.adapter_modules[key].parameters():
                param.requires_grad = True
    return key, copied


def add_language(
    backbone_dir: Path | str,
    corpus_dir: Path | str,
    out_dir: Path | str,
    *,
    language: str,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Add ``language`` to the checkpoint in ``backbone_dir``; write its folder to ``out_dir``."""
    hp = XmodAddSettings.from_mapping(settings or {}, where="xmod.adding")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    where = f"adding {language!r} to {backbone_dir}"
    check_replaceable(out_dir, ADDED_OUTPUT, [backbone_dir, corpus_dir])
    model = load_xmod(backbone_dir)
    tokenizer = load_tokenizer(backbone_dir)
    _check_new(model.config, language, where)
    texts = [str(r.get("text", "")) for r in read_rows(corpus_dir, "train")]
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise LangarithError(f"{where}: corpus {corpus_dir} has no training text.")
    new_tokenizer = train_tokenizer(
        texts[: hp.tokenizer_max_lines], arch="xlmr", vocab_size=hp.vocab_size
    )
    new_tokenizer.model_max_length = tokenizer.model_max_length
    seed_everything(hp.seed)
    key, copied = prepare_added_model(
        model, tokenizer, new_tokenizer, language, seed=hp.seed, where=where
    )
    blocks = {language: corpus_blocks(Path(corpus_dir), new_tokenizer, hp.seq_len, "train", None)}
    if len(blocks[language]) == 0:
        raise LangarithError(f"{where}: the corpus holds less than one block of {hp.seq_len}.")
    batches = MlmBatches(
        model,
        new_tokenizer,
        blocks,
        LanguageSampler({language: 1.0}, 1.0, hp.seed),
        hp.steps * hp.grad_accum,
        batch_size=hp.batch_size,
        probability=hp.mlm_probability,
        seed=hp.seed,
        keys={language: key},
    )
    losses: list[float] = []

    def loss(k: int) -> tuple[torch.Tensor, int]:
        value, units = batches.loss(k)
        losses.append(float(value.detach()))
        return value, units

    params = trainable(model)
    cfg = LoopConfig(
        seed=hp.seed,
        max_steps=hp.steps,
        grad_accum=hp.grad_accum,
        lr=hp.lr,
        desc=f"add {language}",
    )
    result = run_training_loop(
        model,
        params,
        loss,
        lambda: {"loss": 0.0},
        cfg,
        setup=device_and_dtype(False, False),
        checkpoint_dir=None,
        config_hash="",
    )
    model.eval()
    embeddings = embedding_state(model)
    embeddings[HEAD_BIAS] = model.lm_head.bias.detach().cpu().clone()
    with atomic_dir(out_dir, ADDED_OUTPUT, [backbone_dir, corpus_dir]) as tmp:
        new_tokenizer.save_pretrained(tmp)
        save_file({k: v.contiguous() for k, v in embeddings.items()}, tmp / EMBEDDINGS_FILE)
        if key != SHARED_KEY:
            save_file(module_state(model, key), tmp / MODULES_FILE)
        tail = losses[-min(10, len(losses)) :]
        write_json(
            tmp / "metadata.json",
            {
                "kind": "added",
                "language": language,
                "module_key": key,
                "shared": key == SHARED_KEY,
                "vocab_size": len(new_tokenizer),
                "copied_rows": copied,
                "trained_parameters": int(sum(p.numel() for p in params.values())),
                "settings": hp.as_dict(),
                "backbone": str(backbone_dir),
                "backbone_config": read_json(Path(backbone_dir) / "config.json", "config"),
                "corpus_checksum": data_checksum(corpus_dir),
                "steps": result.steps,
                "first_train_loss": round(losses[0], 4) if losses else None,
                "final_train_loss": round(sum(tail) / len(tail), 4) if tail else None,
                "train_seconds": round(result.train_seconds, 2),
                "wall_time_s": round(time.perf_counter() - started, 2),
                "versions": versions(),
                "created_utc": utc_now(),
            },
        )
    return out_dir


def install_added(model, added_dir: Path | str, where: str):
    """Swap an added language's embeddings (and, X-MOD, its module) into ``model``.

    Returns ``(tokenizer, module key)``. A tokenizer whose size differs from the
    embedding rows, or a language the model already has a module for, is refused.
    """
    added_dir = Path(added_dir)
    meta = read_json(added_dir / "metadata.json", "added language metadata")
    if meta.get("kind") != "added":
        raise LangarithError(f"{where}: {added_dir} is not an added language's folder.")
    tokenizer = AutoTokenizer.from_pretrained(str(added_dir))
    state = load_file(str(added_dir / EMBEDDINGS_FILE))
    install_embeddings(model, state, len(tokenizer), f"{where} ({added_dir})")
    key = str(meta["module_key"])
    if key != SHARED_KEY:
        _check_new(model.config, str(meta["language"]), where)
        add_module(model, key, 0)
        load_module_state(model, key, load_file(str(added_dir / MODULES_FILE)))
    return tokenizer, key
