"""The adapter stage: language adapters (MLM, shared init) and task adapters (NER, NLI, QA).

Modules:

* :mod:`~langarith.train.language_adapter` — :func:`init_language_adapter`,
  :func:`train_language_adapter`;
* :mod:`~langarith.train.task_adapter` — :func:`train_task_adapter`;
* :mod:`~langarith.train.task_features` — features, predictions and metrics of the
  tasks, shared with ``langarith.evaluate``;
* :mod:`~langarith.train.cli` / :mod:`~langarith.train.commands` — ``langarith train
  init|language|task`` (parser, handlers).

The loop, seeding, checkpoints and the MLM objective they run on live one layer below,
in :mod:`langarith.training`; assembling models from folders in
:mod:`langarith.modeling`. The public names below are imported lazily, so that building
the command line parser does not import torch.
"""

from __future__ import annotations

from langarith.lazy import lazy_getattr
from langarith.train.cli import register_cli

_LAZY = {
    "init_language_adapter": "langarith.train.language_adapter",
    "train_language_adapter": "langarith.train.language_adapter",
    "LANGUAGE_HPARAMS": "langarith.train.language_adapter",
    "LANG_ADAPTER_CONFIG": "langarith.train.language_adapter",
    "train_task_adapter": "langarith.train.task_adapter",
    "TASK_HPARAMS": "langarith.train.task_adapter",
    "TASK_ADAPTER_CONFIG": "langarith.train.task_adapter",
    "encode_ner": "langarith.train.task_features",
    "encode_nli": "langarith.train.task_features",
    "encode_qa": "langarith.train.task_features",
    "encode_task": "langarith.train.task_features",
    "ner_predictions": "langarith.train.task_features",
    "qa_predictions": "langarith.train.task_features",
    "predict_task": "langarith.train.task_features",
    "evaluate_task": "langarith.train.task_features",
    "EncodedTask": "langarith.train.task_features",
    "TASK_METRIC": "langarith.train.task_features",
    "LANG_ADAPTER_NAME": "langarith.modeling",
    "build_adapter_config": "langarith.modeling",
    "load_language_adapter": "langarith.modeling",
    "save_language_adapter": "langarith.modeling",
    "load_model_for_task": "langarith.modeling",
    "load_adapter_model": "langarith.modeling",
    "activate_task_stack": "langarith.modeling",
    "device_and_dtype": "langarith.training.loop",
    "DeviceSetup": "langarith.training.loop",
    "TrainingInterrupted": "langarith.training.loop",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = ["register_cli", *_LAZY]
