"""The TLR arm's scores: LAS for dependency parsing, labels read as O, the paired t-test.

* **LAS** (labelled attachment score): the share of words whose predicted head *and*
  relation are both right, over every word of the split (no word is excluded,
  punctuation included, as the CoNLL 2018 scorer; relations are compared whole, and
  the UD loader has cut subtypes such as ``nmod:poss`` to ``nmod``), × 100.
* **Labels as O**: CoNLL-2003's MISC and MasakhaNER's DATE have no counterpart in the
  other dataset, so a config switch (``tlr.o_labels``) reads their B-/I- tags as ``O``
  in training and test data alike (the seed paper is silent).
* **Paired t-test** per language against MAD-X (p = 0.05), paired over test items:
  each item's score under both adapters (NLI: correct 0/100; NER: the sentence's
  entity F1; QA: the question's F1; DP: the sentence's LAS), two-sided
  ``scipy.stats.ttest_rel``. Identical scores on every item give t = 0, p = 1 (no
  difference), not NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from langarith import LangarithError
from langarith.metrics import attachment_scores

__all__ = [
    "PairedTest",
    "las",
    "map_tags_to_o",
    "o_mapped_labels",
    "paired_t_test",
    "per_item_scores",
]


def las(
    gold_heads: Sequence[Sequence[int]],
    gold_rels: Sequence[Sequence[str]],
    pred_heads: Sequence[Sequence[int]],
    pred_rels: Sequence[Sequence[str]],
) -> float:
    """Labelled attachment score × 100 over all words of all sentences (the core's
    :func:`langarith.metrics.attachment_scores`, which the DP task kind reports)."""
    return attachment_scores(gold_heads, gold_rels, pred_heads, pred_rels)["las"]


def map_tags_to_o(tags: Iterable[str], types: Iterable[str]) -> list[str]:
    """IOB2 ``tags`` with every entity of ``types`` (``MISC``, ``DATE``) read as ``O``."""
    drop = {str(t) for t in types}
    out = []
    for tag in tags:
        prefix, _, kind = str(tag).partition("-")
        out.append("O" if kind in drop and prefix in ("B", "I") else str(tag))
    return out


def o_mapped_labels(labels: Iterable[str], types: Iterable[str]) -> list[str]:
    """A tag set with the B-/I- tags of ``types`` removed (they are read as O), order kept:
    CoNLL-2003's nine tags without MISC are MasakhaNER's without DATE."""
    labels = [str(tag) for tag in labels]
    kept = map_tags_to_o(labels, types)
    return [tag for tag, original in zip(kept, labels, strict=True) if tag == original]


def per_item_scores(kind: str, stats_rows: np.ndarray) -> np.ndarray:
    """One score per test item (0-100) from the evaluator's per-row statistics
    (``EncodedSplit.example_stats``: NLI ``[correct]``; NER ``[tp, predicted, gold]``;
    QA ``[f1, exact]``, both 0-1; DP ``[labelled right, unlabelled right, words]``: the
    sentence's LAS)."""
    rows = np.asarray(stats_rows, dtype=float)
    if kind == "nli":
        return 100.0 * rows[:, 0]
    if kind == "ner":
        tp, pred, gold = rows[:, 0], rows[:, 1], rows[:, 2]
        denom = pred + gold
        f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 1.0)
        return 100.0 * f1
    if kind == "qa":
        return 100.0 * rows[:, 0]
    if kind == "dp":
        words = rows[:, 2]
        return 100.0 * rows[:, 0] / np.where(words > 0, words, 1)
    raise LangarithError(f"No per-item score for task kind {kind!r}")


@dataclass(frozen=True)
class PairedTest:
    """A paired two-sided t-test of ``b`` against ``a`` over the same items."""

    n: int
    mean_a: float
    mean_b: float
    t: float
    p: float

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p < alpha


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """``scipy.stats.ttest_rel(b, a)``; equal samples give t = 0, p = 1."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise LangarithError(
            f"A paired t-test needs two equal-length samples ({x.shape}, {y.shape})"
        )
    if len(x) < 2:
        raise LangarithError("A paired t-test needs at least two items")
    diff = y - x
    if np.all(diff == diff[0]):
        t = 0.0 if diff[0] == 0 else math.copysign(math.inf, diff[0])
        p = 1.0 if diff[0] == 0 else 0.0
    else:
        # imported here: scipy.stats takes over a second to import, and every Snakemake
        # run imports this module while it plans (through the arm's registration)
        from scipy import stats

        result = stats.ttest_rel(y, x)
        t, p = float(result.statistic), float(result.pvalue)
    return PairedTest(len(x), float(x.mean()), float(y.mean()), t, p)
