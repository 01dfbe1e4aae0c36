"""Which adapters the language-vector analysis of a backbone reads: planning, no torch.

The analysis stage (:func:`langarith.analysis.write_analysis`, rule
``language_vector_analysis``) compares every language adapter of one backbone, every
seed. The rules need its inputs and outputs while Snakemake builds the DAG, before any
job runs, so they come from here rather than from :mod:`langarith.analysis`, which
imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langarith import plan
from langarith.config import trained_tasks
from langarith.paths import (
    ANALYSIS_COSINE,
    ANALYSIS_SPARSITY,
    ANALYSIS_TASK_COSINE,
    BACKBONE_DIR,
    INIT_DIR,
    LANG_ADAPTER_DIR,
    TASK_ADAPTER_DIR,
)

__all__ = [
    "analysis_adapters",
    "analysis_inputs",
    "analysis_outputs",
    "has_task_vectors",
    "task_analysis_adapters",
    "task_analysis_inputs",
]


def analysis_adapters(config: Mapping[str, Any], model: str) -> dict[str, str]:
    """``<lang>/seed<s>`` → folder of every language adapter of a backbone."""
    return {
        f"{lang}/seed{seed}": LANG_ADAPTER_DIR.format(model=model, lang=lang, seed=seed)
        for lang in config["languages"]
        for seed in config["seeds"]
    }


def analysis_inputs(config: Mapping[str, Any], model: str) -> dict[str, Any]:
    """Named inputs of the analysis rule of one backbone: θ_init and every adapter."""
    return {
        "init": INIT_DIR.format(model=model),
        "adapters": list(analysis_adapters(config, model).values()),
    }


def task_analysis_adapters(config: Mapping[str, Any], model: str) -> dict[str, str]:
    """``<task>/seed<s>`` → folder of every task adapter of a backbone."""
    return {
        f"{task}/seed{seed}": TASK_ADAPTER_DIR.format(model=model, task=task, seed=seed)
        for task in trained_tasks(config)
        for seed in config["seeds"]
    }


def task_analysis_inputs(config: Mapping[str, Any], model: str) -> dict[str, Any]:
    """Named inputs of the task-vector rule: the backbone (to redraw θ_init) and adapters."""
    return {
        "backbone": BACKBONE_DIR.format(model=model),
        "adapters": list(task_analysis_adapters(config, model).values()),
    }


def has_task_vectors(config: Mapping[str, Any]) -> bool:
    """Task vectors are compared when the config trains two task adapters or more."""
    return len(trained_tasks(config)) >= 2


def analysis_outputs(config: Mapping[str, Any]) -> list[str]:
    """The cosine and sparsity tables of every backbone (for ``rule all``), and the
    task vectors' cosine where there are two tasks or more."""
    patterns = [ANALYSIS_COSINE, ANALYSIS_SPARSITY]
    if has_task_vectors(config):
        patterns.append(ANALYSIS_TASK_COSINE)
    return [path.format(model=model) for model in plan.model_names(config) for path in patterns]
