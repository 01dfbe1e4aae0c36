"""Backbones: the frozen multilingual MLM every adapter is trained on.

Output: ``resources/backbones/<model>/`` = a ``save_pretrained`` folder of an
``AutoModelForMaskedLM`` + its tokenizer + ``metadata.json``.

* :mod:`~langarith.backbone.hub` — real runs fetch ``bert-base-multilingual-cased`` /
  ``xlm-roberta-base`` from the hub (:func:`fetch_hub_backbone`);
* :mod:`~langarith.backbone.demo` — the offline demo trains a tokenizer and pre-trains a
  small BERT or XLM-R on the demo Wikipedia text (:func:`build_demo_backbone`);
* :mod:`~langarith.backbone.tokenizer` — deterministic tokenizer training;
* :mod:`~langarith.backbone.folder` — checking, fingerprinting and loading a backbone;
* :mod:`~langarith.backbone.cli` — ``langarith backbone demo|fetch``.

The public names below are imported lazily, so that building the command line parser
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from langarith.backbone.cli import register_cli

_LAZY = {
    "ARCHS": "archs",
    "train_tokenizer": "tokenizer",
    "DEMO_SPEC": "demo",
    "build_demo_backbone": "demo",
    "pretrain_cycle": "demo",
    "fetch_hub_backbone": "hub",
    "backbone_fingerprint": "folder",
    "check_backbone_dir": "folder",
    "load_backbone": "folder",
    "load_tokenizer": "folder",
}


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'langarith.backbone' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"langarith.backbone.{module}"), name)
    globals()[name] = value
    return value


__all__ = ["register_cli", *_LAZY]
