"""Tiny model shapes shared by the tests (hidden 32, 2 layers), as the adapters library's
own tests use: small enough that a whole training run takes a second."""

from __future__ import annotations

from typing import Any

#: ``transformers.BertConfig`` arguments.
TINY_BERT: dict[str, int] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 100,
}

#: ``langarith.backbone.build_demo_backbone`` spec of the same shape.
_DEMO_SPEC: dict[str, Any] = {
    "vocab_size": 300,
    "hidden_size": 32,
    "num_layers": 2,
    "num_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
    "pretrain_steps": 8,
    "batch_size": 8,
    "seq_len": 64,
}


def demo_spec(**overrides: Any) -> dict[str, Any]:
    """The tiny demo-backbone spec with ``overrides`` applied (a fresh dict)."""
    return {**_DEMO_SPEC, **overrides}
