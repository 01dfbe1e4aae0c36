"""Training of language adapters (MLM, shared init) and task adapters (NER, NLI, QA).

Modules:

* :mod:`~langarith.train.language` — :func:`init_language_adapter`,
  :func:`train_language_adapter`;
* :mod:`~langarith.train.task` — :func:`train_task_adapter`;
* :mod:`~langarith.train.tasks` — features, predictions, metrics and
  :func:`load_model_for_task`, shared with ``langarith.evaluate``;
* :mod:`~langarith.train.common` — reproducible, resumable training loop and helpers
  (:func:`device_and_dtype`);
* :mod:`~langarith.train.mlm` — packing text into MLM blocks;
* :mod:`~langarith.train.cli` — ``langarith train init|language|task``.

The public names below are imported lazily, so that building the command line parser
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from langarith.train.cli import register_cli

_LAZY = {
    "init_language_adapter": "language",
    "train_language_adapter": "language",
    "load_language_adapter": "language",
    "save_language_adapter": "language",
    "build_adapter_config": "language",
    "LANGUAGE_HPARAMS": "language",
    "LANG_ADAPTER_CONFIG": "language",
    "LANG_ADAPTER_NAME": "language",
    "train_task_adapter": "task",
    "TASK_HPARAMS": "task",
    "TASK_ADAPTER_CONFIG": "task",
    "load_model_for_task": "tasks",
    "load_adapter_model": "tasks",
    "activate_task_stack": "tasks",
    "encode_ner": "tasks",
    "encode_nli": "tasks",
    "encode_qa": "tasks",
    "encode_task": "tasks",
    "ner_predictions": "tasks",
    "qa_predictions": "tasks",
    "predict_task": "tasks",
    "evaluate_task": "tasks",
    "EncodedTask": "tasks",
    "TASKS": "tasks",
    "TASK_METRIC": "tasks",
    "device_and_dtype": "common",
    "DeviceSetup": "common",
    "TrainingInterrupted": "common",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'langarith.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"langarith.train.{module}"), name)
    globals()[name] = value
    return value


__all__ = ["register_cli", *_LAZY]
