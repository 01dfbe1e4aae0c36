"""Full fine-tuning of the backbone: MLM per language (θ_L) and once per task (θ_T).

The adapter trainers' machinery, whole models instead of adapters: the one training
loop (:func:`~langarith.training.loop.run_training_loop`: AdamW, warm-up, best
validation weights, NaN guard, resumable checkpoints), the one MLM objective on the
token files of ``rules/tokens.smk`` (blocks, budgets and block order from
:mod:`langarith.training.blocks`), and the task features and scores of
:mod:`langarith.train.task_features`. Every parameter is trained. The outputs are
folders of :mod:`langarith.fullft.vectors`, recording the θ0 they start from.

Settings are the typed ones of the adapters (``LanguageAdapterSettings`` for MLM,
``TaskAdapterSettings`` for the task; ``adapter_config`` is not read).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

from langarith import LangarithError
from langarith.backbone.folder import backbone_fingerprint, load_backbone, load_tokenizer
from langarith.fullft.vectors import (
    encoder_state,
    head_state,
    theta0_checksum,
    write_model_folder,
)
from langarith.io import check_replaceable, sha256_json
from langarith.modeling import quiet_transformers
from langarith.provenance import utc_now, versions
from langarith.settings import LanguageAdapterSettings, TaskAdapterSettings
from langarith.train.task_features import (
    DEFAULT_LABELS,
    TASK_METRIC,
    encode_task,
    evaluate_chunks,
)
from langarith.train.tokens import tokenizer_checksum
from langarith.training.blocks import BlockOrder, TokenBlocks, budget_prefix
from langarith.training.checkpoints import check_checkpoint_dir, remove_checkpoint
from langarith.training.hparams import hash_hparams
from langarith.training.inputs import data_checksum, read_data_manifest, read_rows
from langarith.training.loop import (
    LoopConfig,
    device_and_dtype,
    load_state_into,
    resolve_warmup,
    run_training_loop,
    trainable_parameters,
)
from langarith.training.mlm import MlmObjective, mlm_loss, special_ids
from langarith.training.seeding import EpochStream, seed_everything
from langarith.training.token_files import open_token_split

__all__ = ["TASK_MODEL_CLASSES", "finetune_language", "finetune_task", "load_task_classifier"]

log = logging.getLogger(__name__)

#: The ``transformers`` head per task kind (QA is not part of the paper's tasks).
TASK_MODEL_CLASSES = {
    "nli": AutoModelForSequenceClassification,
    "ner": AutoModelForTokenClassification,
    "sentiment": AutoModelForSequenceClassification,
}


def _loop(hp: dict[str, Any], seed: int, max_steps: int, eval_every: int, **kw: Any):
    return LoopConfig(
        seed=seed,
        max_steps=max_steps,
        grad_accum=int(hp["grad_accum"]),
        lr=float(hp["lr"]),
        warmup_steps=resolve_warmup(hp, max_steps),
        weight_decay=float(hp["weight_decay"]),
        max_grad_norm=hp["max_grad_norm"],
        eval_every=eval_every,
        checkpoint_every=int(hp["checkpoint_every"]),
        stop_after_steps=hp["stop_after_steps"],
        max_nonfinite_in_row=int(hp["max_nonfinite_in_row"]),
        early_stopping_patience=hp.get("early_stopping_patience"),
        **kw,
    )


# ----------------------------------------------------------------------------- languages


def _mlm_blocks(backbone_dir: Path, tokens_dir: Path, data_dir: Path, tokenizer, hp):
    """Train blocks (a budget prefix) and the fixed validation blocks of a token folder."""
    start_id, end_id = special_ids(tokenizer)
    checks = {
        "tokenizer_sha256": tokenizer_checksum(backbone_dir),
        "corpus_checksum": data_checksum(data_dir),
    }
    block_size = int(hp["block_size"])
    split = open_token_split(tokens_dir, "train", **checks)
    budget = hp["max_train_tokens"]
    length = budget_prefix(split, int(budget)) if budget is not None else split.tokens
    train = TokenBlocks(split, block_size, start_id, end_id, length)
    valid_split = open_token_split(tokens_dir, "validation", **checks)
    valid = TokenBlocks(valid_split, block_size, start_id, end_id, valid_split.tokens)
    n_eval = min(int(hp["max_eval_blocks"]), len(valid))
    if len(train) == 0 or n_eval == 0:
        raise LangarithError(
            f"{tokens_dir}: too little text for one block of {block_size} tokens "
            f"(max_train_tokens={budget}); give more text or lower block_size"
        )
    return train, valid.take(np.arange(n_eval))


def finetune_language(
    backbone_dir: Path | str,
    data_dir: Path | str,
    tokens_dir: Path | str,
    out_dir: Path | str,
    *,
    seed: int,
    hparams: dict[str, Any] | None = None,
    checkpoint_dir: Path | str | None = None,
) -> Path:
    """Full-model MLM on one language's token folder; the best weights by validation
    MLM loss (the paper's best validation perplexity) go to ``out_dir`` (encoder only)."""
    hp = LanguageAdapterSettings.from_mapping(hparams or {}, where="fullft.language").as_dict()
    backbone_dir, data_dir, tokens_dir = Path(backbone_dir), Path(data_dir), Path(tokens_dir)
    out_dir = Path(out_dir)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    inputs = [backbone_dir, data_dir, tokens_dir]
    check_replaceable(out_dir, None, inputs)
    check_checkpoint_dir(ckpt, [*inputs, out_dir])
    started = time.perf_counter()
    lang = str(read_data_manifest(data_dir).get("language", data_dir.name))
    theta0_sha = theta0_checksum(backbone_dir)
    seed_everything(seed)
    model, tokenizer = load_backbone(backbone_dir)
    train, valid = _mlm_blocks(backbone_dir, tokens_dir, data_dir, tokenizer, hp)
    setup = device_and_dtype(bool(hp["fp16"]), bool(hp["bf16"]))
    model.to(setup.device)
    params = trainable_parameters(model)
    start_id, end_id = special_ids(tokenizer)
    objective = MlmObjective(
        mask_token_id=tokenizer.mask_token_id,
        vocab_size=len(tokenizer),
        special_ids=tuple(sorted({start_id, end_id, int(tokenizer.pad_token_id or start_id)})),
        probability=float(hp["mlm_probability"]),
        seed=seed,
        device=setup.device,
        loss=mlm_loss,
    )
    batch_size = int(hp["batch_size"])
    stream = BlockOrder(len(train), seed)

    def micro_batch_loss(k: int) -> tuple[torch.Tensor, int]:
        ids = train.take(stream.indices(k * batch_size, batch_size))
        return objective.batch_loss(model, ids, k), int(ids.numel())

    evaluate = objective.evaluator(model, valid, int(hp["eval_batch_size"] or batch_size))
    cfg = _loop(hp, seed, int(hp["max_steps"]), int(hp["eval_every"]), desc=f"fullft lang {lang}")
    config_hash = sha256_json(
        {
            "kind": "fullft_language",
            "theta0": theta0_sha,
            "data": data_checksum(data_dir),
            "seed": seed,
            "hparams": hash_hparams(hp),
        }  # fmt: skip
    )
    result = run_training_loop(
        model, params, micro_batch_loss, evaluate, cfg,
        setup=setup, checkpoint_dir=ckpt, config_hash=config_hash,
    )  # fmt: skip
    load_state_into(params, result.best_state)
    meta = {
        "kind": "fullft_language",
        "language": lang,
        "seed": seed,
        "theta0_sha256": theta0_sha,
        "backbone": backbone_fingerprint(backbone_dir),
        "data_checksum": data_checksum(data_dir),
        "hparams": hp,
        "steps": result.steps,
        "best_step": result.best_step,
        "best_val_loss": result.best_score,
        "eval_history": result.history,
        "resumed_from_step": result.resumed_from_step,
        "wall_time_s": round(time.perf_counter() - started, 2),
        "versions": versions(),
        "created_utc": utc_now(),
    }
    write_model_folder(out_dir, encoder_state(model), meta, inputs)
    remove_checkpoint(ckpt, config_hash)
    log.info("fullft %s seed %d: best val loss %.4f -> %s", lang, seed, result.best_score, out_dir)
    return out_dir


# ----------------------------------------------------------------------------- tasks


def load_task_classifier(backbone_dir: Path | str, kind: str, labels: list[str]):
    """θ0 with a fresh head for ``kind`` (the MLM head dropped), in train mode."""
    if kind not in TASK_MODEL_CLASSES:
        raise LangarithError(
            f"fullft supports task kinds {sorted(TASK_MODEL_CLASSES)}, not {kind!r}"
        )
    with quiet_transformers():
        return TASK_MODEL_CLASSES[kind].from_pretrained(
            str(backbone_dir),
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            local_files_only=True,
        )


def finetune_task(
    backbone_dir: Path | str,
    data_dir: Path | str,
    out_dir: Path | str,
    *,
    kind: str,
    seed: int,
    hparams: dict[str, Any] | None = None,
    checkpoint_dir: Path | str | None = None,
    metric: str | None = None,
) -> Path:
    """Full fine-tuning on the source-language task data in ``data_dir`` (train and
    validation splits); the best weights by validation ``metric`` (default: the kind's,
    :data:`TASK_METRIC`; NusaX's SMSA model is chosen on macro F1) go to ``out_dir``.

    The head's labels are the data manifest's (sentiment has two or three classes),
    else the kind's defaults."""
    given = {k: v for k, v in (hparams or {}).items() if k != "adapter_config"}
    hp = TaskAdapterSettings.from_mapping(given, where="fullft task training").as_dict()
    backbone_dir, data_dir, out_dir = Path(backbone_dir), Path(data_dir), Path(out_dir)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    check_replaceable(out_dir, None, [backbone_dir, data_dir])
    check_checkpoint_dir(ckpt, [backbone_dir, data_dir, out_dir])
    started = time.perf_counter()
    theta0_sha = theta0_checksum(backbone_dir)
    manifest = read_data_manifest(data_dir)
    labels = [str(x) for x in manifest.get("labels") or DEFAULT_LABELS.get(kind, [])]
    if kind in ("nli", "sentiment") and not labels:
        raise LangarithError(f"{data_dir}: the data manifest names no labels for a {kind} head")
    metric = metric or TASK_METRIC[kind]
    tokenizer = load_tokenizer(backbone_dir)
    max_length = hp["max_length"] or 128
    train_rows = read_rows(data_dir, "train")
    if hp["max_train_rows"]:
        train_rows = train_rows[: int(hp["max_train_rows"])]
    valid_rows = read_rows(data_dir, "validation")
    if hp["max_eval_rows"]:
        valid_rows = valid_rows[: int(hp["max_eval_rows"])]
    train = encode_task(kind, train_rows, tokenizer, labels=labels, max_length=max_length)
    valid = encode_task(kind, valid_rows, tokenizer, labels=labels, max_length=max_length)
    seed_everything(seed)
    model = load_task_classifier(backbone_dir, kind, labels)
    setup = device_and_dtype(bool(hp["fp16"]), bool(hp["bf16"]))
    model.to(setup.device)
    params = trainable_parameters(model)
    batch_size, pad_id = int(hp["batch_size"]), int(tokenizer.pad_token_id or 0)
    per_epoch = math.ceil(len(train) / (batch_size * int(hp["grad_accum"])))
    max_steps = int(hp["max_steps"] or int(hp["epochs"]) * per_epoch)
    eval_every = int(hp["eval_every"])
    if hp["eval_every_epochs"] is not None:
        eval_every = int(hp["eval_every_epochs"]) * per_epoch
    stream = EpochStream(len(train), seed)

    def micro_batch_loss(k: int) -> tuple[torch.Tensor, int]:
        batch = train.batch(stream.indices(k * batch_size, batch_size), pad_id)
        out = model(**{key: value.to(setup.device) for key, value in batch.items()})
        return out.loss, batch_size

    def evaluate() -> dict[str, float]:
        return evaluate_chunks(
            model, kind, [(valid_rows, valid)], labels=labels, device=setup.device, pad_id=pad_id
        )

    cfg = _loop(
        hp, seed, max_steps, eval_every,
        higher_is_better=True, metric=metric, unit="ex", desc=f"fullft task {kind}",
    )  # fmt: skip
    config_hash = sha256_json(
        {
            "kind": "fullft_task",
            "theta0": theta0_sha,
            "data": data_checksum(data_dir),
            "seed": seed,
            "task": kind,
            "metric": metric,
            "hparams": hash_hparams(hp),
        }  # fmt: skip
    )
    result = run_training_loop(
        model, params, micro_batch_loss, evaluate, cfg,
        setup=setup, checkpoint_dir=ckpt, config_hash=config_hash,
    )  # fmt: skip
    load_state_into(params, result.best_state)
    meta = {
        "kind": "fullft_task",
        "task_kind": kind,
        "labels": labels,
        "metric": metric,
        "language": manifest.get("language", data_dir.name),
        "dataset": manifest.get("dataset"),
        "seed": seed,
        "theta0_sha256": theta0_sha,
        "backbone": backbone_fingerprint(backbone_dir),
        "data_checksum": data_checksum(data_dir),
        "max_length": max_length,
        "hparams": hp,
        "steps": result.steps,
        "stopped_early": result.stopped_early,
        "best_step": result.best_step,
        "best_validation": result.best_score,
        "eval_history": result.history,
        "resumed_from_step": result.resumed_from_step,
        "wall_time_s": round(time.perf_counter() - started, 2),
        "versions": versions(),
        "created_utc": utc_now(),
    }
    state = {**encoder_state(model), **head_state(model)}
    write_model_folder(out_dir, state, meta, [backbone_dir, data_dir])
    remove_checkpoint(ckpt, config_hash)
    log.info("fullft task %s seed %d: best %.2f -> %s", kind, seed, result.best_score, out_dir)
    return out_dir
