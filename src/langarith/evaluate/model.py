"""Loading a backbone with a task adapter, its head and a language adapter slot.

The MAD-X stack of the papers: the language adapter (here always loaded under the
name :data:`LANG_SLOT`) below the task adapter, the task's prediction head on top. The
language adapter's weights are what the λ grid rewrites in place, so the model is
built once per evaluation job and the slot is filled from θ_init (any adapter of the
right architecture would do; its weights are overwritten before every evaluation).

Task adapters are AdapterHub folders saved with their head (``head_config.json`` +
``model_head.safetensors``), as ``langarith.train`` writes them; the backbone folder is
a ``save_pretrained`` masked-LM (its MLM head is not used).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from langarith import LangarithError
from langarith.adapter_io import find_adapter_files

__all__ = ["HEAD_TYPES", "LANG_SLOT", "TaskModel", "load_task_model", "pick_device"]

log = logging.getLogger(__name__)

#: Name of the language adapter inside the evaluation model.
LANG_SLOT = "lang"
#: ``adapters`` head type expected for each task kind.
HEAD_TYPES = {"ner": "tagging", "nli": "classification", "qa": "question_answering"}


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


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence "weights not initialized" notices: the MLM head is dropped on purpose."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _load(model: Any, folder: str | PathLike[str], **kwargs: Any) -> str:
    files = find_adapter_files(folder)
    return str(
        model.load_adapter(
            str(files.folder), use_safetensors=files.fmt == "safetensors", **kwargs
        )
    )


def load_task_model(
    backbone_dir: str | PathLike[str],
    task_adapter_dir: str | PathLike[str],
    lang_adapter_dir: str | PathLike[str],
    kind: str,
    *,
    device: str | torch.device | None = None,
) -> TaskModel:
    """Backbone + language adapter (as :data:`LANG_SLOT`) + task adapter and head.

    Args:
        backbone_dir: ``resources/backbones/<model>/``.
        task_adapter_dir: ``results/adapters/<model>/task/<task>/seed<s>/`` (with head).
        lang_adapter_dir: any language adapter of the backbone (usually θ_init); it
            fixes the slot's architecture, its weights are overwritten later.
        kind: ``ner``, ``nli`` or ``qa``; the head must be of the matching type.
        device: default :func:`pick_device`.
    """
    from adapters import AutoAdapterModel
    from adapters.composition import Stack

    from langarith.backbone import load_tokenizer

    if kind not in HEAD_TYPES:
        raise LangarithError(f"Unknown task kind {kind!r}. Must be one of {sorted(HEAD_TYPES)}")
    device = pick_device(device)
    backbone_dir = Path(backbone_dir)
    tokenizer = load_tokenizer(backbone_dir)
    try:
        with _quiet_transformers():
            model = AutoAdapterModel.from_pretrained(str(backbone_dir), local_files_only=True)
    except (OSError, ValueError) as err:
        raise LangarithError(f"The backbone in {backbone_dir} cannot be loaded: {err}") from err
    _load(model, lang_adapter_dir, load_as=LANG_SLOT, with_head=False)
    if not (Path(task_adapter_dir) / "head_config.json").is_file():
        raise LangarithError(
            f"Task adapter {task_adapter_dir} has no head_config.json; task adapters must be "
            "saved with their prediction head (save_adapter(..., with_head=True))"
        )
    task_name = _load(model, task_adapter_dir, with_head=True)
    heads = getattr(model, "heads", {})
    if task_name not in heads:
        raise LangarithError(
            f"Task adapter {task_adapter_dir} was loaded as {task_name!r} but brought no "
            f"prediction head of that name (heads: {sorted(heads)})"
        )
    head_type = heads[task_name].config.get("head_type")
    if head_type != HEAD_TYPES[kind]:
        raise LangarithError(
            f"Task adapter {task_adapter_dir} has a {head_type!r} head, but task kind "
            f"{kind!r} needs a {HEAD_TYPES[kind]!r} head"
        )
    labels = None
    if kind != "qa":
        id2label = model.get_labels_dict(task_name) or {}
        labels = [str(id2label[i]) for i in sorted(id2label)] or None
        if kind == "ner" and labels is None:
            from langarith.data import NER_LABELS

            labels = list(NER_LABELS)
    model.active_adapters = Stack(LANG_SLOT, task_name)
    model.active_head = task_name
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    model.to(device)
    return TaskModel(model, tokenizer, kind, task_name, labels, device)
