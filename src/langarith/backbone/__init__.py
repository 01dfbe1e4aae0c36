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

from langarith.backbone.cli import register_cli
from langarith.lazy import lazy_getattr

_LAZY = {
    "ARCHS": "langarith.backbone.archs",
    "train_tokenizer": "langarith.backbone.tokenizer",
    "DEMO_SPEC": "langarith.backbone.demo",
    "build_demo_backbone": "langarith.backbone.demo",
    "pretrain_cycle": "langarith.backbone.demo",
    "fetch_hub_backbone": "langarith.backbone.hub",
    "backbone_fingerprint": "langarith.backbone.folder",
    "check_backbone_dir": "langarith.backbone.folder",
    "load_backbone": "langarith.backbone.folder",
    "load_tokenizer": "langarith.backbone.folder",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = ["register_cli", *_LAZY]
