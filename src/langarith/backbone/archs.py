"""The backbone architectures the demo can build (torch-free, for the CLI's choices)."""

from __future__ import annotations

#: ``bert``: a small mBERT-like model; ``xlmr``: a small XLM-R-like model.
ARCHS = ("bert", "xlmr")
