"""What the full-model arm costs, for ``langarith plan`` (beside the core's lines).

Computed from the config and the arm's planner, with the core's sizes and formulas
(:mod:`langarith.cost.sizes`):

* **work**: MLM per (model, language, seed): ``max_steps × batch × grad_accum ×
  block_size`` tokens; a task model per (model, dataset, seed): steps from ``max_steps``
  or epochs over the documented training rows, at most ``steps × batch × grad_accum ×
  max_length`` tokens (early stopping can only shorten it); evaluation per target:
  validation of MODEL and every searched variant at every λ, test of every variant and
  of every sparsity point, at most ``rows × max_length`` tokens each. GPU-hours use the
  language, task and evaluation throughputs the user gives (full fine-tuning updates
  every weight, so a measured full-model rate is the one to give).
* **disk**: a language vector or task model is the encoder (the MLM head is not
  stored; the task head is) × 4 bytes: about 1.1 GB per XLM-R base vector, 2.2 GB per
  XLM-R large one; a running job's checkpoint holds weights, best weights and two AdamW
  moments.
* **memory**: all weights trainable (16 bytes each) + activations; the scoring job
  keeps θ0, the task model, both language vectors and the live weights resident.

Datasets without a documented size (AmericasNLI, NusaX, MARC until their loaders
document one) are named in the line's note instead of guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from langarith import LangarithError
from langarith.arm_registry import ArmCost, ArmSize, ArmWork
from langarith.config import grid
from langarith.cost.sizes import (
    BYTES_PER_PARAM,
    BackboneShape,
    activation_bytes,
    backbone_shape,
    eval_rows,
    head_params,
    task_train_rows,
)
from langarith.fullft.plan import (
    ALL_VARIANTS,
    DEFAULT_GRID,
    fullft_datasets,
    fullft_languages,
    fullft_models,
    fullft_section,
    fullft_seeds,
    fullft_targets,
)
from langarith.settings import fullft_language_settings, fullft_task_settings
from langarith.task_kinds import TASK_MAX_LENGTH

__all__ = ["fullft_cost", "vector_bytes"]

#: Labels of a task head (NLI: 3 classes; NER: the core's 7 tags).
_LABELS = {"nli": 3, "ner": 7}
#: Models the scoring job keeps resident: θ0, θ_T, τ^src, τ^tgt and the live weights.
_RESIDENT_MODELS = 5


def vector_bytes(shape: BackboneShape) -> int:
    """Disk of one language vector (a fully fine-tuned encoder, fp32 safetensors)."""
    return shape.encoder_params() * BYTES_PER_PARAM


def _shapes(config: Mapping[str, Any], models: list[str]) -> dict[str, BackboneShape]:
    entries = {str(m["name"]): (i, m) for i, m in enumerate(config["models"])}
    return {m: backbone_shape(entries[m][1], f"models[{entries[m][0]}]") for m in models}


def _gb_or_mb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _size_note(unknown: set[str]) -> str:
    return f"; no documented size for {', '.join(sorted(unknown))}: left out" if unknown else ""


def fullft_cost(config: Mapping[str, Any]) -> ArmCost:
    """The arm's work, disk and memory for ``config`` (empty when the arm is off)."""
    models, datasets = fullft_models(config), fullft_datasets(config)
    if not models or not datasets:
        return ArmCost()
    seeds, langs = len(fullft_seeds(config)), fullft_languages(config)
    shapes = _shapes(config, models)
    section = fullft_section(config)
    variants = [str(v) for v in section.get("variants") or ALL_VARIANTS]
    sparsity = section.get("sparsity") or {}
    keep = list(sparsity.get("keep") or [])
    sparse = [v for v in sparsity.get("variants") or ("tgt", "src-tgt") if keep]
    lambdas = len(grid(section.get("lambda_grid") or DEFAULT_GRID))
    unknown: set[str] = set()

    mlm = [0, 0, 0]  # jobs, steps, tokens
    mlm_peak = 0
    for model, shape in shapes.items():
        for lang in langs:
            s = fullft_language_settings(config, lang, model)
            mlm[0] += seeds
            mlm[1] += seeds * s.max_steps
            mlm[2] += seeds * s.max_steps * s.batch_size * s.grad_accum * s.block_size
            logits = int(s.batch_size * s.block_size * s.mlm_probability * shape.vocab * 6)
            half = s.fp16 or s.bf16
            peak = shape.params() * 16 + activation_bytes(shape, s.batch_size, s.block_size, half)
            mlm_peak = max(mlm_peak, peak + logits)

    task = [0, 0, 0]
    evaluation = [0, 0]  # jobs, tokens
    task_peak, task_bytes, eval_peak = 0, 0, 0
    for model, shape in shapes.items():
        for dataset, spec in datasets.items():
            kind = str(spec.get("kind", "nli"))
            s = fullft_task_settings(config, dataset, model)
            max_length = int(s.max_length or TASK_MAX_LENGTH[kind])
            head = head_params(shape, kind, _LABELS.get(kind, 3))
            task_bytes += (shape.encoder_params() + head) * BYTES_PER_PARAM * seeds
            task[0] += seeds
            evaluation[0] += seeds
            half = s.fp16 or s.bf16
            peak = shape.params() * 16 + activation_bytes(shape, s.batch_size, max_length, half)
            task_peak = max(task_peak, peak)
            eval_peak = max(eval_peak, _RESIDENT_MODELS * shape.params() * BYTES_PER_PARAM)
            try:
                rows, _ = task_train_rows(config, str(spec["train_dataset"]))
            except LangarithError:
                unknown.add(str(spec["train_dataset"]))
            else:
                rows = min(rows, s.max_train_rows) if s.max_train_rows else rows
                per_step = s.batch_size * s.grad_accum
                steps = s.max_steps or s.epochs * math.ceil(rows / per_step)
                task[1] += seeds * steps
                task[2] += seeds * steps * per_step * max_length
            eval_dataset = str(spec.get("eval_dataset") or spec["train_dataset"])
            searched = sum(1 for v in variants if v != "model")
            val_points = (1 if "model" in variants else 0) + searched * lambdas
            test_points = len(variants) + len(sparse) * 2 * len(keep)
            for target in fullft_targets(config, dataset)[0]:
                try:
                    val_rows, test_rows = eval_rows(config, eval_dataset, target)
                except LangarithError:
                    unknown.add(eval_dataset)
                    continue
                examples = val_points * val_rows + test_points * test_rows
                evaluation[1] += seeds * examples * max_length

    n_vectors = len(langs) * seeds
    each = "/".join(_gb_or_mb(vector_bytes(s)) for s in shapes.values())
    biggest = max(shape.params() for shape in shapes.values())
    work = (
        ArmWork(
            "fullft language vectors", mlm[0], mlm[1], mlm[2],
            "full-model MLM: max_steps × batch × grad_accum × block_size", "language",
        ),
        ArmWork(
            "fullft task models", task[0], task[1], task[2],
            "full fine-tuning: steps × batch × grad_accum × max_length (at most)"
            + _size_note(unknown),
            "task",
        ),
        ArmWork(
            "fullft evaluation", evaluation[0], 0, evaluation[1],
            "validation: MODEL + variants × λ grid; test: variants + sparsity points"
            + _size_note(unknown),
            "evaluation",
        ),
    )  # fmt: skip
    disk = (
        ArmSize(
            "fullft language vectors",
            sum(vector_bytes(shape) * n_vectors for shape in shapes.values()),
            f"encoder parameters × 4 bytes: {each} a vector per model",
            files=len(shapes) * n_vectors,
        ),
        ArmSize(
            "fullft task models",
            task_bytes,
            "(encoder + head parameters) × 4 bytes",
            files=task[0],
        ),
        ArmSize(
            "fullft checkpoints (per job)",
            4 * biggest * BYTES_PER_PARAM,
            "weights + best weights + 2 AdamW moments; removed when the job ends",
            files=1,
        ),
    )
    memory = (
        ArmSize("fullft_language", mlm_peak, "all weights trainable×16 + activations + logits"),
        ArmSize("fullft_task", task_peak, "all weights trainable×16 + activations"),
        ArmSize(
            "fullft_evaluate",
            eval_peak,
            f"{_RESIDENT_MODELS} resident models × 4 bytes (θ0, θ_T, τ^src, τ^tgt, live)",
        ),
    )
    return ArmCost(work, disk, memory)
