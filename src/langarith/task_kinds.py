"""The task kinds a task adapter can have, and their default input lengths.

Training (``langarith.train``) and evaluation (``langarith.evaluate``) must agree on
both: a task adapter evaluated with other lengths than it was trained with would see
inputs cut differently. This module is the one place they are written, below both
stages, so neither imports the other for a constant. The config schema's ``kind`` enum
is tested against :data:`TASK_KINDS`.
"""

from __future__ import annotations

__all__ = [
    "DOC_STRIDE",
    "DP_PAD",
    "FEATURE_KINDS",
    "FULLFT_KINDS",
    "TASK_KINDS",
    "TASK_MAX_LENGTH",
]

#: ``tasks.<task>.kind`` values: token tagging, sentence-pair classification, extractive
#: QA, dependency parsing (biaffine head, UD treebanks).
TASK_KINDS: tuple[str, ...] = ("ner", "nli", "qa", "dp")
#: Kinds of the full-model arm (``fullft.datasets.<d>.kind``): no QA (not a task of the
#: paper), and single-text classification (MARC, NusaX), which has no adapter head here.
FULLFT_KINDS: tuple[str, ...] = ("ner", "nli", "sentiment")
#: Every kind the feature builders and the evaluation engine know.
FEATURE_KINDS: tuple[str, ...] = (*TASK_KINDS, "sentiment")
#: Longest input in sub-tokens when ``task_adapter.per_task`` does not say (the papers'
#: MAD-X settings). DP: 256, the usual length of UD parsing with multilingual encoders
#: (the TLR seed does not say); UD sentences longer than that are rare.
TASK_MAX_LENGTH: dict[str, int] = {"ner": 128, "nli": 128, "qa": 384, "dp": 256, "sentiment": 128}
#: Overlap of QA context windows, in sub-tokens, when ``task_adapter.per_task`` does not say.
DOC_STRIDE = 128
#: Padding of the DP features (word starts, gold heads, relation ids), which the biaffine
#: parsing head must ignore (``langarith.modeling.ready_parsing_head``): not 0, the root's
#: head, and no position a word can start at.
DP_PAD = -1
