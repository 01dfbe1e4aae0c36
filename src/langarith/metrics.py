"""Evaluation metrics of the three downstream tasks, on a 0-100 scale as in the papers.

* QA (SQuAD 1.1 / XQuAD): exact match and token F1 after the official SQuAD v1.1 answer
  normalisation, best over the reference answers of each question, averaged over the
  questions. Implemented here rather than through ``evaluate``/``datasets`` metrics so
  scoring needs no hub download and works offline.
* NER (WikiANN): entity-level F1 with ``seqeval`` (IOB2 tags, default, CoNLL-style
  mode), the usual WikiANN score.
* NLI (XNLI, IndicXNLI): accuracy.
* DP (UD treebanks): labelled and unlabelled attachment scores (LAS, UAS) over every
  word, punctuation included, as the CoNLL 2018 shared task's evaluation script counts
  them; relations are compared whole (the UD loader has already cut subtypes such as
  ``nsubj:pass`` to their universal part).

``TASK_METRICS`` names the main metric of each task, the one the λ search maximises on
validation data and the tables report.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Mapping, Sequence

from langarith import LangarithError

__all__ = [
    "TASK_METRICS",
    "macro_f1",
    "accuracy",
    "attachment_scores",
    "exact_match_score",
    "f1_score",
    "ner_f1",
    "normalize_answer",
    "squad_scores",
]

#: Main metric per task family (keys of the score dicts / ``metric`` column of scores).
TASK_METRICS: dict[str, str] = {
    "ner": "f1",
    "nli": "accuracy",
    "qa": "f1",
    "dp": "las",
    "sentiment": "accuracy",
}

_PUNCTUATION = frozenset(string.punctuation)  # ASCII only: other scripts' marks are kept
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower-case, drop ASCII punctuation and the English
    articles a/an/the (whole words), and collapse whitespace.

    The same rules as the official script, so scores compare with published ones; like
    it, non-ASCII punctuation (e.g. the Chinese full stop) is kept.
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction: str, reference: str) -> float:
    """1.0 when prediction and reference are equal after :func:`normalize_answer`."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def f1_score(prediction: str, reference: str) -> float:
    """Token-overlap F1 (0-1) of two answers after :func:`normalize_answer`.

    Tokens are whitespace-separated and counted with multiplicity. No shared token
    gives 0, also when both answers normalise to nothing (as in the v1.1 script, unlike
    v2.0 which scores that case 1).
    """
    pred_tokens = normalize_answer(prediction).split()
    ref_tokens = normalize_answer(reference).split()
    common = collections.Counter(pred_tokens) & collections.Counter(ref_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """``{"exact_match", "f1"}`` in 0-100 over the questions of ``references``.

    Each question scores the best over its reference answers; a question without a
    prediction counts as answered with the empty string, so dropped questions lower
    the score instead of vanishing from it. Predictions for unknown ids are ignored.
    """
    if not references:
        raise LangarithError("squad_scores: no reference questions to score")
    em_total = f1_total = 0.0
    for qid, answers in references.items():
        if isinstance(answers, str) or not answers:
            raise LangarithError(
                f"squad_scores: question {qid!r} needs a non-empty list of reference answers, "
                f"got {answers!r}"
            )
        prediction = predictions.get(qid, "")
        em_total += max(exact_match_score(prediction, ref) for ref in answers)
        f1_total += max(f1_score(prediction, ref) for ref in answers)
    n = len(references)
    return {"exact_match": 100.0 * em_total / n, "f1": 100.0 * f1_total / n}


def _check_sequences(
    true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]
) -> None:
    if len(true_tags) == 0:
        raise LangarithError("ner_f1: no sentences to score")
    if len(true_tags) != len(pred_tags):
        raise LangarithError(
            f"ner_f1: {len(true_tags)} gold sentences but {len(pred_tags)} predicted ones"
        )
    for i, (gold, pred) in enumerate(zip(true_tags, pred_tags, strict=True)):
        if len(gold) != len(pred):
            raise LangarithError(
                f"ner_f1: sentence {i} has {len(gold)} gold tags but {len(pred)} predicted tags"
            )


def ner_f1(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> float:
    """Entity-level micro F1 (0-100) with seqeval, IOB2 tags, default mode.

    An entity counts only when its type and both boundaries match. With no entity in
    either gold or predictions the F1 is 0 (seqeval's convention, silenced).
    """
    _check_sequences(true_tags, pred_tags)
    import warnings

    from seqeval.metrics import f1_score as seqeval_f1

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UndefinedMetricWarning when there are no entities
        score = seqeval_f1([list(s) for s in true_tags], [list(s) for s in pred_tags])
    return 100.0 * float(score)


def macro_f1(true: Sequence[int], pred: Sequence[int], n_classes: int) -> float:
    """F1 averaged over the ``n_classes`` classes with equal weight (0-100), as NusaX
    reports it; a class never gold nor predicted scores 0, as in scikit-learn's default."""
    if len(true) == 0:
        raise LangarithError("macro F1: no examples to score")
    if len(true) != len(pred):
        raise LangarithError(f"macro F1: {len(true)} gold labels but {len(pred)} predictions")
    total = 0.0
    for c in range(n_classes):
        tp = sum(t == c and p == c for t, p in zip(true, pred, strict=True))
        n_pred, n_true = sum(p == c for p in pred), sum(t == c for t in true)
        total += 2 * tp / (n_pred + n_true) if n_pred + n_true else 0.0
    return 100.0 * total / n_classes


def accuracy(true: Sequence[object], pred: Sequence[object]) -> float:
    """Share of equal labels (0-100)."""
    if len(true) == 0:
        raise LangarithError("accuracy: no examples to score")
    if len(true) != len(pred):
        raise LangarithError(f"accuracy: {len(true)} gold labels but {len(pred)} predictions")
    return 100.0 * sum(t == p for t, p in zip(true, pred, strict=True)) / len(true)


def attachment_scores(
    gold_heads: Sequence[Sequence[int]],
    gold_rels: Sequence[Sequence[str]],
    pred_heads: Sequence[Sequence[int]],
    pred_rels: Sequence[Sequence[str]],
) -> dict[str, float]:
    """``{"las", "uas"}`` × 100 over all words of all sentences (punctuation included).

    UAS counts words whose predicted head is right; LAS those whose head *and* relation
    are both right. Every word counts, as in the CoNLL 2018 shared task's scorer (which
    also scores punctuation); a sentence with another number of predicted words is an
    error, not a silent misalignment.
    """
    if not (len(gold_heads) == len(gold_rels) == len(pred_heads) == len(pred_rels)):
        raise LangarithError("LAS needs as many predicted as gold sentences (heads and relations)")
    labelled = unlabelled = total = 0
    for i, (gh, gr, ph, pr) in enumerate(
        zip(gold_heads, gold_rels, pred_heads, pred_rels, strict=True)
    ):
        if not (len(gh) == len(gr) == len(ph) == len(pr)):
            raise LangarithError(f"LAS: sentence {i} has predictions for another number of words")
        total += len(gh)
        for a, b, r, s in zip(gh, ph, gr, pr, strict=True):
            head_right = int(a) == int(b)
            unlabelled += head_right
            labelled += head_right and r == s
    if not total:
        raise LangarithError("LAS of an empty split is undefined; the split has no words")
    return {"las": 100.0 * labelled / total, "uas": 100.0 * unlabelled / total}
