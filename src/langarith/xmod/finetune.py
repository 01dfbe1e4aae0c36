"""Fine-tuning X-MOD on English with embeddings and every module frozen.

X-MOD §3.4: ``freeze_embeddings_and_language_adapters``, then the shared weights and the
task head are trained on English through the en module; at test time the target's
module (and, for an added language, its tokenizer and embeddings) is swapped in
(:mod:`langarith.xmod.scoring`). Features, batching and metrics are the core's
(:mod:`langarith.train.task_features`), so X-MOD and MAD-X are scored alike.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import (
    XmodForQuestionAnswering,
    XmodForSequenceClassification,
    XmodForTokenClassification,
)

from langarith import LangarithError
from langarith.backbone.folder import load_tokenizer
from langarith.io import OutputKind, atomic_dir, check_replaceable, read_json, write_json
from langarith.provenance import utc_now, versions
from langarith.settings import XmodFinetuneSettings
from langarith.train.task_features import (
    DEFAULT_LABELS,
    TASK_METRIC,
    check_task,
    encode_task,
    evaluate_task,
)
from langarith.training.inputs import data_checksum, read_data_manifest, read_rows
from langarith.training.loop import LoopConfig, device_and_dtype, run_training_loop
from langarith.training.loop import trainable_parameters as trainable
from langarith.training.seeding import EpochStream, seed_everything
from langarith.xmod.model import embedding_state, layers, load_xmod, module_key

__all__ = [
    "TASK_MODEL_OUTPUT",
    "TASK_CLASSES",
    "choose_grid_point",
    "dev_scores",
    "finetune_xmod",
    "finetune_xmod_grid",
    "frozen_state",
    "task_labels",
]

#: A fine-tuned X-MOD task model's folder (replaced only by another one).
TASK_MODEL_OUTPUT = OutputKind(
    "X-MOD task model", record="metadata.json", record_kinds=("xmod-task",)
)
#: The transformers class of each task kind.
TASK_CLASSES = {
    "ner": XmodForTokenClassification,
    "nli": XmodForSequenceClassification,
    "qa": XmodForQuestionAnswering,
}


def task_labels(kind: str, data_dir: Path | str) -> list[str]:
    """Label names of a NER/NLI dataset (its manifest's, else the defaults); QA has none."""
    if kind == "qa":
        return []
    labels = read_data_manifest(data_dir).get("labels") or DEFAULT_LABELS[kind]
    return [str(x) for x in labels]


def frozen_state(model) -> dict[str, torch.Tensor]:
    """Copies of what fine-tuning must not change: embeddings and every module."""
    state = {f"embeddings.{k}": v for k, v in embedding_state(model).items()}
    for i, layer in enumerate(layers(model)):
        for name, param in layer.output.adapter_modules.named_parameters():
            state[f"layer.{i}.{name}"] = param.detach().cpu().clone()
    return state


def _task_model(backbone_dir: Path | str, kind: str, labels: list[str]):
    """The backbone with the task's head (fresh, seeded by the caller)."""
    cls = TASK_CLASSES[kind]
    if kind == "qa":
        return load_xmod(backbone_dir, cls)
    return load_xmod(
        backbone_dir,
        cls,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )


def finetune_xmod(
    backbone_dir: Path | str,
    data_dir: Path | str,
    out_dir: Path | str,
    *,
    kind: str,
    seed: int,
    source_language: str = "en",
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Fine-tune ``backbone_dir`` on the English ``data_dir`` (train + validation) for a
    task of ``kind``; writes the task model, its tokenizer and a metadata.json."""
    check_task(kind)
    hp = XmodFinetuneSettings.from_mapping(settings or {}, where="xmod.finetune")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    check_replaceable(out_dir, TASK_MODEL_OUTPUT, [backbone_dir, data_dir])
    labels = task_labels(kind, data_dir)
    tokenizer = load_tokenizer(backbone_dir)
    seed_everything(seed)
    model = _task_model(backbone_dir, kind, labels)
    key = module_key(model.config, source_language, f"fine-tuning {backbone_dir}")
    model.set_default_language(key)
    model.freeze_embeddings_and_language_adapters()
    rows = read_rows(data_dir, "train")[: hp.max_train_rows]
    valid_rows = read_rows(data_dir, "validation")[: hp.max_eval_rows]
    if not rows:
        raise LangarithError(f"{data_dir} has no training rows for {kind}.")
    train = encode_task(kind, rows, tokenizer, labels=labels, max_length=hp.max_length)
    valid = encode_task(kind, valid_rows, tokenizer, labels=labels, max_length=hp.max_length)
    pad_id = int(tokenizer.pad_token_id)
    steps = max(1, math.ceil(hp.epochs * len(train) / hp.batch_size))
    stream = EpochStream(len(train), seed, salt="xmod-task")

    def loss(k: int) -> tuple[torch.Tensor, int]:
        indices = stream.indices(k * hp.batch_size, hp.batch_size)
        return model(**train.batch(indices, pad_id)).loss, len(indices)

    def evaluate() -> dict[str, float]:
        if not valid_rows:
            return {TASK_METRIC[kind]: 0.0}
        return evaluate_task(model, kind, valid, rows=valid_rows, labels=labels, pad_id=pad_id)

    cfg = LoopConfig(
        seed=seed,
        max_steps=steps,
        lr=hp.lr,
        warmup_steps=int(hp.warmup_ratio * steps),
        higher_is_better=True,
        metric=TASK_METRIC[kind],
        unit="ex",
        desc=f"X-MOD fine-tune {kind}",
    )
    result = run_training_loop(
        model,
        trainable(model),
        loss,
        evaluate,
        cfg,
        setup=device_and_dtype(False, False),
        checkpoint_dir=None,
        config_hash="",
    )
    model.eval()
    with atomic_dir(out_dir, TASK_MODEL_OUTPUT, [backbone_dir, data_dir]) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(
            tmp / "metadata.json",
            {
                "kind": "xmod-task",
                "task_kind": kind,
                "labels": labels,
                "seed": seed,
                "source_module": key,
                "settings": hp.as_dict(),
                "backbone": str(backbone_dir),
                "data_checksum": data_checksum(data_dir),
                "steps": result.steps,
                "validation": result.history[-1] if result.history else None,
                "trained_parameters": int(sum(p.numel() for p in trainable(model).values())),
                "train_seconds": round(result.train_seconds, 2),
                "wall_time_s": round(time.perf_counter() - started, 2),
                "versions": versions(),
                "created_utc": utc_now(),
            },
        )
    return out_dir


# ----------------------------------------------------------------------------- the grid


def choose_grid_point(kind: str, dev: Sequence[Mapping[str, float]], source: str = "en") -> int:
    """Index of the grid point the paper's rule chooses (X-MOD §4.2).

    ``dev[i]`` maps languages to point ``i``'s validation score. NER and NLI: the best
    mean over the pre-trained languages scored; QA: the best English (``source``)
    score. Equal values go to the earlier point (the grid lists cheaper points first).
    """
    if not dev:
        raise LangarithError("xmod.grid: no grid point was scored on validation data.")
    values = []
    for i, scores in enumerate(dev):
        if kind == "qa":
            if source not in scores:
                raise LangarithError(
                    f"xmod.grid: QA is chosen on {source} validation data, which grid point "
                    f"{i} was not scored on."
                )
            value = float(scores[source])
        else:
            if not scores:
                raise LangarithError(f"xmod.grid: grid point {i} has no validation scores.")
            value = sum(float(v) for v in scores.values()) / len(scores)
        if not math.isfinite(value):
            raise LangarithError(f"xmod.grid: grid point {i} scored {value} on validation.")
        values.append(value)
    return max(range(len(values)), key=lambda i: (values[i], -i))


def dev_scores(
    task_dir: Path | str, dev: Mapping[str, Path | str], *, settings: Mapping[str, Any] | None
) -> dict[str, float]:
    """The primary validation metric of a task model on each language of ``dev``
    (language → data folder), each through its own module."""
    hp = XmodFinetuneSettings.from_mapping(settings or {}, where="xmod.finetune")
    meta = read_json(Path(task_dir) / "metadata.json", "X-MOD task model metadata")
    kind, labels = str(meta["task_kind"]), list(meta["labels"]) or None
    model = load_xmod(task_dir, TASK_CLASSES[kind]).eval()
    tokenizer = load_tokenizer(task_dir)
    scores = {}
    for lang, data_dir in dev.items():
        model.set_default_language(module_key(model.config, lang, f"xmod.grid on {task_dir}"))
        rows = read_rows(data_dir, "validation")[: hp.max_eval_rows]
        if not rows:
            raise LangarithError(f"{data_dir} has no validation rows for choosing xmod.grid.")
        encoded = encode_task(kind, rows, tokenizer, labels=labels, max_length=hp.max_length)
        metrics = evaluate_task(
            model, kind, encoded, rows=rows, labels=labels, pad_id=tokenizer.pad_token_id
        )
        scores[lang] = float(metrics[TASK_METRIC[kind]])
    return scores


def finetune_xmod_grid(
    backbone_dir: Path | str,
    data_dir: Path | str,
    out_dir: Path | str,
    *,
    kind: str,
    seed: int,
    source_language: str = "en",
    settings: Mapping[str, Any] | None = None,
    grid: Sequence[Mapping[str, Any]] = (),
    dev: Mapping[str, Path | str] | None = None,
) -> Path:
    """Fine-tune every grid point (``xmod.grid``: lr × epochs over ``settings``) and keep
    the one :func:`choose_grid_point` picks on ``dev`` as the task model; one point (or
    none) is plain :func:`finetune_xmod`. The points are trained one after the other in
    a scratch folder beside ``out_dir``, so the task model's path, and every rule that
    reads it, stay as with one point; its metadata.json lists the grid's scores."""
    base = dict(settings or {})
    points = [dict(point) for point in grid] or [{}]
    common = dict(kind=kind, seed=seed, source_language=source_language)
    if len(points) == 1:
        return finetune_xmod(
            backbone_dir, data_dir, out_dir, settings={**base, **points[0]}, **common
        )
    if not dev:
        raise LangarithError(
            f"xmod.grid for {out_dir}: {len(points)} points but no validation data to choose one."
        )
    out_dir = Path(out_dir)
    check_replaceable(out_dir, TASK_MODEL_OUTPUT, [backbone_dir, data_dir])
    scratch = out_dir.parent / f".{out_dir.name}.grid"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        scored = []
        for i, point in enumerate(points):
            merged = {**base, **point}
            folder = finetune_xmod(
                backbone_dir, data_dir, scratch / f"point{i}", settings=merged, **common
            )
            scored.append(dev_scores(folder, dev, settings=merged))
        chosen = choose_grid_point(kind, scored, source_language)
        with atomic_dir(out_dir, TASK_MODEL_OUTPUT, [backbone_dir, data_dir]) as tmp:
            for item in (scratch / f"point{chosen}").iterdir():
                shutil.move(str(item), tmp / item.name)
            meta = read_json(tmp / "metadata.json", "X-MOD task model metadata")
            meta["grid"] = [
                {"point": point, "validation": scores}
                for point, scores in zip(points, scored, strict=True)
            ]
            meta["grid_choice"] = chosen
            write_json(tmp / "metadata.json", meta)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out_dir
