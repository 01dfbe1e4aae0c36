"""Shared test set-up: offline hub and deterministic tokenizers, before any test imports.

Setting the environment here, before any test module is imported, is what lets the
test modules import ``transformers`` and ``langarith`` at the top like any module
(without it a missing model hangs on the network for tens of seconds). Tiny model
shapes shared by the tests are in ``tests/tiny.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
