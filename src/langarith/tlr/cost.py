"""What the TLR arm costs, for ``langarith plan`` (beside the core's lines).

A TLR task adapter costs what the core's costs whatever the number of language
adapters it cycles through (one stack per optimizer step), so its steps and tokens are
the core's formula (:mod:`langarith.cost.estimate`: steps from ``max_steps`` or epochs
over the documented training rows, at most ``steps × batch × grad_accum ×
max_length`` tokens) with the arm's settings (``tlr.training``/``per_task`` on the
core's), once per adapter the arm trains (per target for TARGET, BILINGUAL and
LEAVE-OUT-TARG). Scoring reads each target's test split once per variant; disk is the
adapter and its head (× 4 bytes) per trained adapter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langarith import LangarithError
from langarith.arm_registry import ArmCost, ArmSize, ArmWork
from langarith.cost.sizes import (
    BYTES_PER_PARAM,
    QA_WINDOWS_PER_ROW,
    adapter_params,
    backbone_shape,
    eval_rows,
    head_params,
    task_train_rows,
)
from langarith.settings import TaskAdapterSettings, language_settings
from langarith.task_kinds import TASK_MAX_LENGTH
from langarith.tlr.variants import la_family, tlr_hparams, tlr_plan, tlr_task

__all__ = ["tlr_cost"]

#: Labels of a task head as the core's cost counts them.
_LABELS = {"ner": 7, "nli": 3, "qa": 2, "dp": 37}  # dp: the UD v2 relations


def tlr_cost(config: Mapping[str, Any]) -> ArmCost:
    """The arm's training and scoring work and its adapters' disk (empty when off)."""
    plan = tlr_plan(config)
    if plan is None:
        return ArmCost()
    entries = {str(m["name"]): (i, m) for i, m in enumerate(config["models"])}
    shapes = {m: backbone_shape(entries[m][1], f"models[{entries[m][0]}]") for m in plan.models}
    train, score, disk_bytes, unknown = [0, 0, 0], [0, 0], 0, set()
    for task, targets in plan.tasks.items():
        spec = tlr_task(config, task)  # the core's task or the arm's own (tlr.datasets)
        kind = spec.kind
        test_dataset = str(spec.eval_dataset or spec.train_dataset)
        s = TaskAdapterSettings.from_mapping(tlr_hparams(config, task), where=f"tlr {task}")
        max_length = int(s.max_length or TASK_MAX_LENGTH[kind])
        windows = QA_WINDOWS_PER_ROW if kind == "qa" else 1.0
        trained = len(plan.trained(task))  # every model and seed
        train[0] += trained
        for model in {a.model for a in plan.trained(task)}:
            shape = shapes[model]
            params = adapter_params(shape, s.adapter_config.as_dict()) + head_params(
                shape, kind, _LABELS.get(kind, 3)
            )
            n = sum(1 for a in plan.trained(task) if a.model == model)
            disk_bytes += n * params * BYTES_PER_PARAM
        try:
            rows, _ = task_train_rows(config, str(spec.train_dataset))
        except LangarithError:
            unknown.add(str(spec.train_dataset))
        else:
            rows = min(rows, s.max_train_rows) if s.max_train_rows else rows
            per_step = s.batch_size * s.grad_accum
            steps = s.max_steps or s.epochs * math.ceil(math.ceil(rows * windows) / per_step)
            train[1] += trained * steps
            train[2] += trained * steps * per_step * max_length
        jobs = len(plan.models_of(task)) * len(plan.seeds)
        score[0] += jobs
        for target in targets:
            try:
                _, test_rows = eval_rows(config, test_dataset, target)
            except LangarithError:
                unknown.add(test_dataset)
                continue
            examples = math.ceil(len(plan.variants_of(task)) * test_rows * windows)
            score[1] += jobs * examples * max_length
    note = f"; no documented size for {', '.join(sorted(unknown))}: left out" if unknown else ""
    extra = _extra_language_adapters(config, plan)
    work = (
        ArmWork(
            "TLR task adapters", train[0], train[1], train[2],
            "the core's task-adapter formula per trained adapter" + note, "task",
        ),
        ArmWork(
            "TLR scoring", score[0], 0, score[1],
            "variants × test rows × max_length (at most)" + note, "evaluation",
        ),
    )  # fmt: skip
    if extra.jobs:
        work = (
            ArmWork(
                "TLR target LAs", extra.jobs, extra.steps, extra.tokens,
                "targets outside languages:, tlr.models × tlr.seeds × max_steps × batch × "
                "grad_accum × block_size", "language",
            ),
            *work,
        )  # fmt: skip
    disk = (
        ArmSize(
            "TLR task adapters",
            disk_bytes,
            "(adapter + head parameters) × 4 bytes",
            files=train[0],
        ),
    )
    return ArmCost(work, disk)


@dataclass(frozen=True)
class _Training:
    jobs: int
    steps: int
    tokens: int


def _extra_language_adapters(config: Mapping[str, Any], plan) -> _Training:
    """The core's language adapters the arm alone asks for (targets outside
    ``languages:``, or its seeds outside ``seeds:``): they are not in the core's
    language-adapter line."""
    if la_family(config) != "core":
        return _Training(0, 0, 0)
    core_langs, core_seeds = set(config["languages"]), {int(s) for s in config["seeds"]}
    jobs = steps = tokens = 0
    for lang in plan.languages():
        s = language_settings(config, lang)
        n = sum(
            1
            for model in plan.models
            if lang in plan.languages_of(model)
            for seed in plan.seeds
            if not (lang in core_langs and seed in core_seeds)
        )
        jobs += n
        steps += n * s.max_steps
        tokens += n * s.max_steps * s.batch_size * s.grad_accum * s.block_size
    return _Training(jobs, steps, tokens)
