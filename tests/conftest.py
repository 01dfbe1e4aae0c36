"""Shared test set-up: offline hub, deterministic tokenizers, tiny model shapes.

Setting the environment here, before any test module is imported, is what lets the
test modules import ``transformers`` and ``langarith`` at the top like any module
(without it a missing model hangs on the network for tens of seconds).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from tiny import TINY_BERT, demo_spec  # noqa: E402


@pytest.fixture
def tiny_bert() -> dict[str, int]:
    """``transformers.BertConfig`` arguments of the tests' tiny backbone (a fresh copy)."""
    return dict(TINY_BERT)


@pytest.fixture
def tiny_demo_spec() -> dict[str, int]:
    """A ``build_demo_backbone`` spec of the tests' tiny backbone (a fresh copy)."""
    return demo_spec()
