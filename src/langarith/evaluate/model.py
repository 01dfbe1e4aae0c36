"""Loading a backbone with a task adapter, its head and a language adapter slot.

The MAD-X stack of the papers: the language adapter (here always loaded under the
name :data:`LANG_SLOT`) below the task adapter, the task's prediction head on top. The
language adapter's weights are what the λ grid rewrites in place, so the model is
built once per evaluation job and the slot is filled from θ_init (any adapter of the
right architecture would do; its weights are overwritten before every evaluation).

Task adapters are AdapterHub folders saved with their head (``head_config.json`` +
``model_head.safetensors``), as ``langarith.train`` writes them; the backbone folder is
a ``save_pretrained`` masked-LM (its MLM head is dropped).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from os import PathLike
from typing import Any

import torch

from langarith import LangarithError
from langarith.backbone.folder import load_tokenizer
from langarith.modeling import load_model_for_task, quiet_transformers

__all__ = ["HEAD_TYPES", "LANG_SLOT", "TaskModel", "load_task_model", "pick_device"]

log = logging.getLogger(__name__)

#: Name of the language adapter inside the evaluation model.
LANG_SLOT = "lang"
#: ``adapters`` head type expected for each task kind.
HEAD_TYPES = {
    "ner": "tagging",
    "nli": "classification",
    "qa": "question_answering",
    "dp": "dependency_parsing",
}


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else the first CUDA GPU when there is one, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class TaskModel:
    """A ready-to-run evaluation model.

    Attributes:
        model: an ``adapters`` flexible-head model in eval mode, gradients off, with the
            stack ``Stack(LANG_SLOT, task_name)`` active.
        tokenizer: the backbone's fast tokenizer.
        kind: ``ner``, ``nli`` or ``qa``.
        task_name: the task adapter's (and head's) name inside the model.
        labels: label names by id (NER tags, NLI classes); ``None`` for QA.
        device: where the model lives.
    """

    model: torch.nn.Module
    tokenizer: Any
    kind: str
    task_name: str
    labels: list[str] | None
    device: torch.device
    lang_slot: str = LANG_SLOT


def load_task_model(
    backbone_dir: str | PathLike[str],
    task_adapter_dir: str | PathLike[str],
    lang_adapter_dir: str | PathLike[str],
    kind: str,
    *,
    device: str | torch.device | None = None,
) -> TaskModel:
    """Backbone + language adapter (as :data:`LANG_SLOT`) + task adapter and head.

    The model is assembled by ``langarith.modeling.load_model_for_task``, as in
    task-adapter training; this adds the checks and pieces evaluation needs.

    Args:
        backbone_dir: ``resources/backbones/<model>/``.
        task_adapter_dir: ``results/adapters/<model>/task/<task>/seed<s>/`` (with head).
        lang_adapter_dir: any language adapter of the backbone (usually θ_init); it
            fixes the slot's architecture, its weights are overwritten later.
        kind: ``ner``, ``nli`` or ``qa``; the head must be of the matching type.
        device: default :func:`pick_device`.
    """
    if kind not in HEAD_TYPES:
        raise LangarithError(f"Unknown task kind {kind!r}. Must be one of {sorted(HEAD_TYPES)}")
    device = pick_device(device)
    tokenizer = load_tokenizer(backbone_dir)
    with quiet_transformers():
        model = load_model_for_task(
            backbone_dir, task_adapter_dir, lang_adapter_dir, device=device, lang_name=LANG_SLOT
        )
    task_name = str(model.active_head)
    head_type = model.heads[task_name].config.get("head_type")
    if head_type != HEAD_TYPES[kind]:
        raise LangarithError(
            f"Task adapter {task_adapter_dir} has a {head_type!r} head, but task kind "
            f"{kind!r} needs a {HEAD_TYPES[kind]!r} head"
        )
    labels = None
    if kind != "qa":
        id2label = model.get_labels_dict(task_name) or {}
        labels = [str(id2label[i]) for i in sorted(id2label)] or None
    for param in model.parameters():
        param.requires_grad_(False)
    return TaskModel(model, tokenizer, kind, task_name, labels, device)
