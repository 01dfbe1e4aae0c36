"""Encoding a split once, batching it by length, and scoring model outputs fast.

A λ grid runs the same data through the model 21 times or more, so everything that does
not depend on the adapter weights happens once per split (:func:`encode_split`), and the
split stays resident for the whole grid (evaluation splits are at most ~10k rows; the
features are built ``FEATURE_CHUNK_ROWS`` rows at a time, so the tokenizer never holds
the whole split): the
features (``langarith.train.task_features.encode_task``, the same as in task-adapter training),
the map from sub-tokens back to words or characters, the gold labels, and the batches
themselves, already padded and on the device. What is left per λ is the forward pass,
a reduction of its output on the device (argmax, best span) and a vectorised score. The
results equal ``langarith.train.task_features.evaluate_task`` (tested), only faster:

* **NLI** (XNLI, IndicXNLI): accuracy of the argmax class.
* **NER** (WikiANN): the label of each word is the prediction at its first sub-token,
  as in training; words cut off by ``max_length`` are predicted ``O``. Entity-level F1
  is computed with numpy by :func:`entity_f1`, equal to ``seqeval``'s default mode on
  IOB2 tags (``langarith.metrics.ner_f1``) but about 20 times faster, which matters
  when the forward pass of a small model takes milliseconds.
* **QA** (XQuAD, SQuAD): question and context as a pair, the context cut into windows
  of ``max_length`` with ``doc_stride`` overlap; the answer is the best span by start +
  end logit among the :data:`N_BEST` best starts and ends of each window (at most
  :data:`MAX_ANSWER_TOKENS` sub-tokens, inside the context), best over the windows of
  a question, scored as ``langarith.metrics.squad_scores`` does.
* **DP** (UD treebanks): the biaffine head's best head for each kept word (among the
  root and the sentence's words) and the best relation for that head
  (``langarith.train.task_features.dp_decode``, as in training); LAS and UAS over every
  word, punctuation included, words cut off by ``max_length`` counted wrong.

Each split can also give *per-example statistics* (``EncodedSplit.example_stats``):
additive counts per row (correct for NLI; true positives, predicted and gold entities
of each sentence for NER; exact match and F1 of each question for QA; labelled and
unlabelled right words and words of each sentence for DP) from which
``EncodedSplit.stats_metric`` recomputes the main metric of any subset or resample of
the rows, and ``EncodedSplit.stats_trend`` says which way each column moves it. The
racing λ search (:mod:`langarith.evaluate.race`) scores subsets of the rows with them.

Batches are *dynamic*: features sorted by length (longest first) and grouped up to
``max_tokens`` padded tokens, so little compute is spent on padding
(:func:`length_batches`). The unsorted fixed-size batching of a naive loop is
:func:`fixed_batches`, for reference measurements.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from langarith import LangarithError
from langarith.metrics import TASK_METRICS, exact_match_score, f1_score
from langarith.task_kinds import DP_PAD, FEATURE_KINDS
from langarith.train.task_features import (
    DEFAULT_LABELS,
    EncodedTask,
    dp_decode,
    dp_words,
    encode_task,
    kept_words,
)

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_TOKENS",
    "GPU_MAX_TOKENS",
    "EncodedSplit",
    "entity_f1",
    "entity_keys",
    "encode_split",
    "fixed_batches",
    "length_batches",
    "tag_tables",
]

#: Padded tokens per batch of :func:`length_batches` on a CPU: small enough that sorting
#: leaves little padding and activations stay in cache, large enough to keep 2 cores
#: busy. On the demo's 300-row splits (2 threads) 2048 was the fastest of 256 to 32768:
#: per λ 3-8 % faster than 4096, 30-40 % faster than 16384.
DEFAULT_MAX_TOKENS = 2048
#: The same on a GPU, which wants bigger batches (16k tokens of XLM-R base fit a T4).
GPU_MAX_TOKENS = 16384
#: Most features per batch.
DEFAULT_MAX_BATCH = 128
#: Longest answer span, in sub-tokens, considered by the QA decoder.
MAX_ANSWER_TOKENS = 30
#: Start and end candidates per window of the QA decoder (SQuAD's usual n-best).
N_BEST = 20


# ----------------------------------------------------------------------------- batching


def length_batches(
    lengths: Sequence[int],
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> list[np.ndarray]:
    """Indices of features grouped into batches of similar length, longest first.

    A batch grows while ``size × its longest feature`` stays within ``max_tokens`` and
    ``size`` within ``max_batch``; a single feature longer than ``max_tokens`` is a batch
    of its own. Sorting is stable, so the batches are the same in every process.
    """
    if max_tokens < 1 or max_batch < 1:
        raise LangarithError(
            f"max_tokens and max_batch must be positive, got {max_tokens} and {max_batch}"
        )
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    current: list[int] = []
    longest = 0
    for index in order.tolist():
        length = int(lengths[index])
        width = max(longest, length)
        if current and ((len(current) + 1) * width > max_tokens or len(current) >= max_batch):
            batches.append(np.asarray(current, dtype=np.int64))
            current, width = [], length
        current.append(index)
        longest = width
    if current:
        batches.append(np.asarray(current, dtype=np.int64))
    return batches


def fixed_batches(n: int, batch_size: int = 32) -> list[np.ndarray]:
    """Indices in dataset order, ``batch_size`` at a time (a naive loop's batches)."""
    return [np.arange(i, min(i + batch_size, n), dtype=np.int64) for i in range(0, n, batch_size)]


@dataclass
class Batch:
    """One padded batch: model inputs (on the evaluation device) and feature indices."""

    inputs: dict[str, torch.Tensor]
    index: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(self.inputs["input_ids"].shape[1])


def _pad_batch(
    features: Mapping[str, Sequence[Sequence[int]]],
    index: np.ndarray,
    pad_id: int,
    device: torch.device,
) -> Batch:
    width = max(len(features["input_ids"][i]) for i in index)
    inputs: dict[str, torch.Tensor] = {}
    for key in ("input_ids", "attention_mask", "token_type_ids", "word_starts"):
        if key not in features:
            continue
        fill = {"input_ids": pad_id, "word_starts": DP_PAD}.get(key, 0)
        array = np.full((len(index), width), fill, dtype=np.int64)
        for row, i in enumerate(index):
            values = features[key][i]
            array[row, : len(values)] = values
        inputs[key] = torch.from_numpy(array).to(device)
    return Batch(inputs, index)


# ----------------------------------------------------------------------------- NER F1


def tag_tables(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per label id: prefix code (0 O, 1 B, 2 I) and type code (0 for O)."""
    prefix = np.zeros(len(labels), dtype=np.int8)
    types: dict[str, int] = {}
    type_code = np.zeros(len(labels), dtype=np.int64)
    for i, label in enumerate(labels):
        if label == "O":
            continue
        head, sep, kind = label.partition("-")
        if not sep or head not in ("B", "I") or not kind:
            raise LangarithError(
                f"NER label {label!r} is not an IOB2 tag (O, B-<type>, I-<type>); "
                f"labels: {list(labels)}"
            )
        prefix[i] = 1 if head == "B" else 2
        type_code[i] = types.setdefault(kind, len(types) + 1)
    return prefix, type_code


def entity_keys(prefix: np.ndarray, types: np.ndarray, n_types: int) -> np.ndarray:
    """Entities of a flat IOB2 sequence (sentences separated by O) as unique int64 keys.

    ``n_types`` is one more than the largest type code of the *label table*, not of this
    sequence: gold and predicted keys are only comparable when both are packed with the
    same radix (a prediction without the table's last type would otherwise be packed
    differently and match nothing).

    A chunk starts at every non-O tag that does not continue the previous one; a tag
    continues when it is ``I-x`` after ``B-x`` or ``I-x``. This is seqeval's default
    (CoNLL, lenient) chunking restricted to IOB2 tags: an ``I-x`` after ``O`` or after
    another type starts a chunk.
    """
    n = prefix.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    prev_prefix = np.concatenate(([0], prefix[:-1]))
    prev_type = np.concatenate(([0], types[:-1]))
    entity = prefix != 0
    continues = (prefix == 2) & (prev_prefix != 0) & (prev_type == types)
    starts = np.flatnonzero(entity & ~continues)
    if starts.size == 0:
        return np.zeros(0, dtype=np.int64)
    # a chunk runs from its start over the continuing tags that follow it
    stop = np.flatnonzero(~continues)  # positions that do not continue a chunk
    nxt = np.searchsorted(stop, starts, side="right")
    ends = np.where(nxt < stop.size, stop[np.minimum(nxt, stop.size - 1)], n) - 1
    return (starts.astype(np.int64) * (n + 1) + ends) * n_types + types[starts]


def entity_f1(gold_keys: np.ndarray, pred_keys: np.ndarray) -> float:
    """Micro F1 (0-100) of two entity sets, with seqeval's arithmetic."""
    n_pred, n_true = pred_keys.size, gold_keys.size
    correct = np.intersect1d(gold_keys, pred_keys, assume_unique=True).size
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_true if n_true else 0.0
    if precision + recall == 0:
        return 0.0
    return 100.0 * float(2 * precision * recall / (precision + recall))


# ----------------------------------------------------------------------------- splits


@dataclass
class EncodedSplit:
    """A split ready for repeated evaluation: padded batches on the device and scorers.

    Attributes:
        name: split name (``validation``, ``test``).
        kind: task kind.
        n_examples: rows of the split (questions for QA, sentences for NER).
        n_features: model inputs (QA windows; otherwise one per row).
        batches: the batches, in the order they are run.
        reduce: ``reduce(model_output, batch)`` → a small tensor computed on the
            device (argmax, best span), moved to CPU.
        finish: list of reduced outputs (one per batch) → metrics.
        main_metric: the metric λ is chosen by.
        example_stats: list of reduced outputs → per-row statistics, an array of shape
            (``n_examples``, k) whose column sums over any set of rows give that set's
            main metric through ``stats_metric``.
        stats_metric: ``(column totals, rows)`` → the main metric of those rows.
        stats_trend: per statistics column, +1 when the main metric grows with it, −1
            when it falls, 0 when it does not depend on it.
        info: the encoding's by-products (``features``, ``lengths``, ``pad_id``; NER word
            positions, QA offsets and windows), for inspection and tests.
    """

    name: str
    kind: str
    n_examples: int
    n_features: int
    batches: list[Batch]
    reduce: Callable[[Any, Batch], Any]
    finish: Callable[[list[Any]], dict[str, float]]
    main_metric: str
    example_stats: Callable[[list[Any]], np.ndarray]
    stats_metric: Callable[[np.ndarray, int], float]
    info: dict[str, Any] = field(default_factory=dict)
    stats_trend: tuple[int, ...] = ()

    @property
    def tokens(self) -> int:
        """Padded tokens over all batches (the work of one pass)."""
        return sum(b.width * len(b.index) for b in self.batches)


def _features(encoded: Any) -> dict[str, list[list[int]]]:
    features = {"input_ids": encoded.input_ids, "attention_mask": encoded.attention_mask}
    if encoded.token_type_ids is not None:
        features["token_type_ids"] = encoded.token_type_ids
    return features


def _encode_nli(rows: Sequence[Mapping[str, Any]], encoded: Any, labels: Any = None) -> dict:
    gold = np.asarray([int(r["label"]) for r in rows], dtype=np.int64)
    return {"features": _features(encoded), "gold": gold}


def _encode_ner(rows: Sequence[Mapping[str, Any]], encoded: Any, labels: Sequence[str]) -> dict:
    # first sub-token of every word (the rule of langarith.train.task_features.ner_predictions):
    # (feature, position, index of the word in the flat sequence seqeval scores)
    feat, pos, flat = [], [], []
    offset = 0
    for i, words in enumerate(encoded.word_ids):
        previous = None
        for p, w in enumerate(words):
            if w is not None and w != previous:
                feat.append(i)
                pos.append(p)
                flat.append(offset + w)
            previous = w
        offset += encoded.num_words[i] + 1  # one O between sentences, as seqeval flattens
    gold = [
        [
            labels[t] if isinstance(t, int) and not isinstance(t, bool) else str(t)
            for t in r["ner_tags"]
        ]
        for r in rows
    ]
    return {
        "features": _features(encoded),
        "gold_tags": gold,
        "word_feature": np.asarray(feat, dtype=np.int64),
        "word_position": np.asarray(pos, dtype=np.int64),
        "word_flat": np.asarray(flat, dtype=np.int64),
        "n_flat": offset,
        "truncated_words": sum(encoded.num_words) - len(flat),
    }


def _encode_qa(rows: Sequence[Mapping[str, Any]], encoded: Any, labels: Any = None) -> dict:
    references = {
        str(r["id"]): [str(t) for t in (r.get("answers") or {}).get("text", [])] or [""]
        for r in rows
    }
    return {
        "features": _features(encoded),
        "example": np.asarray(encoded.example_index, dtype=np.int64),
        "offsets": encoded.offset_mapping,
        "ids": [str(r["id"]) for r in rows],
        "contexts": [str(r["context"]) for r in rows],
        "references": references,
    }


def _encode_dp(rows: Sequence[Mapping[str, Any]], encoded: Any, labels: Sequence[str]) -> dict:
    features = {**_features(encoded), "word_starts": encoded.word_starts}
    return {
        "features": features,
        "gold_heads": [[int(h) for h in r["heads"]] for r in rows],
        "gold_rels": [[str(x) for x in r["deprels"]] for r in rows],
        "num_words": list(encoded.num_words),
        "kept": [kept_words(starts) for starts in encoded.word_starts],
    }


def _context_mask(offsets: list[list[tuple[int, int] | None]], index: np.ndarray, width: int):
    mask = np.zeros((len(index), width), dtype=bool)
    for row, i in enumerate(index):
        for p, off in enumerate(offsets[i]):
            if off is not None:
                mask[row, p] = True
    return torch.from_numpy(mask)


#: Per kind: (rows, encoded features, labels) → the split's features, gold data and maps.
_ENCODERS: dict[str, Callable[..., dict]] = {
    "nli": _encode_nli,
    "ner": _encode_ner,
    "qa": _encode_qa,
    "dp": _encode_dp,
    "sentiment": _encode_nli,  # gold class ids, as NLI's
}


def encode_split(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    kind: str,
    tokenizer: Any,
    *,
    labels: Sequence[str] | None = None,
    max_length: int = 128,
    doc_stride: int = 128,
    device: str | torch.device = "cpu",
    max_tokens: int | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    sort: bool = True,
    batch_size: int = 32,
    encoded: EncodedTask | None = None,
) -> EncodedSplit:
    """Tokenise ``rows`` of a ``kind`` split once and build its batches and scorers.

    Args:
        name: split name, for messages and logs.
        rows: the split's rows in the format of docs/interfaces.md.
        kind: ``ner``, ``nli``, ``qa`` or ``dp``.
        tokenizer: the backbone's fast tokenizer.
        labels: the head's label names by id (NER tags, DP relations; unused otherwise).
        max_length: longest input in sub-tokens (the task adapter's training length).
        doc_stride: overlap of QA context windows, in sub-tokens.
        device: where the batches live.
        max_tokens, max_batch: limits of :func:`length_batches` (``max_tokens``
            default: :data:`DEFAULT_MAX_TOKENS`, :data:`GPU_MAX_TOKENS` on CUDA).
        sort: ``False`` for :func:`fixed_batches` of ``batch_size`` in dataset order.
        encoded: the rows' features when already tokenised (e.g.
            :func:`~langarith.train.task_features.select_rows` of a whole split's
            ``info["encoded"]``); by default they are tokenised here.
    """
    if kind not in FEATURE_KINDS:
        raise LangarithError(f"Unknown task kind {kind!r}. Must be one of {list(FEATURE_KINDS)}")
    if not rows:
        raise LangarithError(f"The {name} split has no rows to evaluate")
    device = torch.device(device)
    if max_tokens is None:
        max_tokens = GPU_MAX_TOKENS if device.type == "cuda" else DEFAULT_MAX_TOKENS
    if kind in ("ner", "dp"):
        labels = list(labels or DEFAULT_LABELS[kind])
    if encoded is None:
        encoded = encode_task(
            kind, rows, tokenizer, labels=labels, max_length=max_length, doc_stride=doc_stride
        )
    data = _ENCODERS[kind](rows, encoded, labels)
    lengths = [len(ids) for ids in data["features"]["input_ids"]]
    if sort:
        index_batches = length_batches(lengths, max_tokens=max_tokens, max_batch=max_batch)
    else:
        index_batches = fixed_batches(len(lengths), batch_size)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batches = [_pad_batch(data["features"], index, pad_id, device) for index in index_batches]
    reduce, finish, example_stats = _SCORERS[kind](data, labels, len(lengths))
    return EncodedSplit(
        name=name,
        kind=kind,
        n_examples=len(rows),
        n_features=len(lengths),
        batches=batches,
        reduce=reduce,
        finish=finish,
        main_metric=TASK_METRICS[kind],
        example_stats=example_stats,
        stats_metric=_STATS_METRICS[kind],
        info={**data, "pad_id": pad_id, "lengths": lengths, "encoded": encoded},
        stats_trend=_STATS_TRENDS[kind],
    )


# ----------------------------------------------------------------------------- scorers
# ``reduce`` returns ``(batch, values)``; ``finish`` keeps per-batch index arrays in
# ``batch.extra`` so that the work per λ is a few numpy gathers.


def _nli_scorer(data: dict, labels: Sequence[str] | None, n: int):
    gold = data["gold"]

    def reduce(output: Any, batch: Batch) -> tuple[Batch, torch.Tensor]:
        return batch, output.logits.argmax(dim=-1).cpu()

    def predictions(parts: list[tuple[Batch, torch.Tensor]]) -> np.ndarray:
        pred = np.empty(n, dtype=np.int64)
        for batch, values in parts:
            pred[batch.index] = values.numpy()
        return pred

    def finish(parts: list[tuple[Batch, torch.Tensor]]) -> dict[str, float]:
        return {"accuracy": 100.0 * int((predictions(parts) == gold).sum()) / n}

    def example_stats(parts: list[tuple[Batch, torch.Tensor]]) -> np.ndarray:
        return (predictions(parts) == gold).astype(np.float64)[:, None]

    return reduce, finish, example_stats


def _sentiment_scorer(data: dict, labels: Sequence[str] | None, n: int):
    """Accuracy and macro F1 over the data's classes; per-row statistics: correct."""
    if not labels:
        raise LangarithError("Sentiment evaluation needs the data's label names")
    gold, n_classes = data["gold"], len(labels)
    reduce, _, example_stats = _nli_scorer(data, labels, n)

    def finish(parts: list[tuple[Batch, torch.Tensor]]) -> dict[str, float]:
        pred = np.empty(n, dtype=np.int64)
        for batch, values in parts:
            pred[batch.index] = values.numpy()
        f1 = 0.0
        for c in range(n_classes):
            tp = int(((pred == c) & (gold == c)).sum())
            both = int((pred == c).sum() + (gold == c).sum())
            f1 += 2 * tp / both if both else 0.0
        return {
            "accuracy": 100.0 * int((pred == gold).sum()) / n,
            "f1": 100.0 * f1 / n_classes,
        }

    return reduce, finish, example_stats


def _ner_scorer(data: dict, labels: Sequence[str] | None, n: int):
    if labels is None:
        raise LangarithError("NER evaluation needs the head's label names")
    labels = list(labels)
    prefix_of, type_of = tag_tables(labels)
    label_id = {label: i for i, label in enumerate(labels)}
    outside = label_id.get("O")
    if outside is None:
        raise LangarithError(f"The NER head has no 'O' label; its labels: {labels}")
    n_flat = data["n_flat"]
    gold_flat = np.full(n_flat, outside, dtype=np.int64)
    offset = 0
    for sentence in data["gold_tags"]:
        for j, tag in enumerate(sentence):
            if tag not in label_id:
                raise LangarithError(
                    f"Gold NER tag {tag!r} is not a label of the task head {labels}"
                )
            gold_flat[offset + j] = label_id[tag]
        offset += len(sentence) + 1
    n_types = int(type_of.max()) + 1
    gold_keys = entity_keys(prefix_of[gold_flat], type_of[gold_flat], n_types)
    word_feature, word_position, word_flat = (
        data["word_feature"],
        data["word_position"],
        data["word_flat"],
    )
    order = np.argsort(word_feature, kind="stable")
    starts = np.searchsorted(word_feature[order], np.arange(n + 1))

    def gather(batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row in batch, position, flat word index) of every word of the batch."""
        if "ner_gather" not in batch.extra:
            picks = [order[starts[i] : starts[i + 1]] for i in batch.index]
            rows = np.concatenate([np.full(len(p), r, dtype=np.int64) for r, p in enumerate(picks)])
            chosen = np.concatenate(picks)
            batch.extra["ner_gather"] = (rows, word_position[chosen], word_flat[chosen])
        return batch.extra["ner_gather"]

    def reduce(output: Any, batch: Batch) -> tuple[Batch, np.ndarray]:
        return batch, output.logits.argmax(dim=-1).cpu().numpy()

    # sentence of each flat position (sentences are separated by one O: entities never
    # span two), for the per-sentence counts of example_stats
    sentence_start = np.cumsum([0] + [len(tags) + 1 for tags in data["gold_tags"]])[:-1]

    def sentence_of(keys: np.ndarray) -> np.ndarray:
        starts = keys // n_types // (n_flat + 1)  # inverse of entity_keys' packing
        return np.searchsorted(sentence_start, starts, side="right") - 1

    def predicted_keys(parts: list[tuple[Batch, np.ndarray]]) -> np.ndarray:
        pred_flat = np.full(n_flat, outside, dtype=np.int64)
        for batch, pred in parts:
            rows, positions, targets = gather(batch)
            pred_flat[targets] = pred[rows, positions]
        return entity_keys(prefix_of[pred_flat], type_of[pred_flat], n_types)

    def finish(parts: list[tuple[Batch, np.ndarray]]) -> dict[str, float]:
        return {"f1": entity_f1(gold_keys, predicted_keys(parts))}

    def example_stats(parts: list[tuple[Batch, np.ndarray]]) -> np.ndarray:
        pred_keys = predicted_keys(parts)
        correct = np.intersect1d(gold_keys, pred_keys, assume_unique=True)
        counts = [np.bincount(sentence_of(k), minlength=n) for k in (correct, pred_keys, gold_keys)]
        return np.stack(counts, axis=1).astype(np.float64)

    return reduce, finish, example_stats


def _best_spans(output: Any, real: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """Best span of each window, as ``qa_predictions`` picks it: among the ``N_BEST``
    highest start and end logits of the window, the pair in the context with end ≥
    start, at most ``MAX_ANSWER_TOKENS`` long, and the highest sum.

    Returns one row per window: (score, start position, end position), on the CPU;
    the score is −inf where a window has no valid span.
    """
    start = output.start_logits.double().masked_fill(~real, -math.inf)
    end = output.end_logits.double().masked_fill(~real, -math.inf)
    k = min(N_BEST, start.shape[1])
    s_val, s_idx = start.topk(k, dim=1)
    e_val, e_idx = end.topk(k, dim=1)
    s_ok = context.gather(1, s_idx) & torch.isfinite(s_val)
    e_ok = context.gather(1, e_idx) & torch.isfinite(e_val)
    length = e_idx[:, None, :] - s_idx[:, :, None]
    ok = s_ok[:, :, None] & e_ok[:, None, :] & (length >= 0) & (length < MAX_ANSWER_TOKENS)
    scores = (s_val[:, :, None] + e_val[:, None, :]).masked_fill(~ok, -math.inf)
    best, flat = scores.reshape(start.shape[0], -1).max(dim=1)  # first max: top ranks
    first = s_idx.gather(1, torch.div(flat, k, rounding_mode="floor")[:, None])[:, 0]
    last = e_idx.gather(1, (flat % k)[:, None])[:, 0]
    return torch.stack([best, first.double(), last.double()], dim=1).cpu()


def _squad_scorer(
    references: Mapping[str, list[str]],
) -> tuple[Callable[..., dict[str, float]], Callable[..., list[tuple[float, float]]]]:
    """``squad_scores`` with each question's (EM, F1) of an answer remembered.

    Returns the scorer and its per-question form (both share the memory).

    Along a λ grid most answers repeat, and normalising them is most of the scoring
    time. The sums run in the same order as in ``squad_scores``, so the result is the
    same float.
    """
    answered: dict[tuple[str, str], tuple[float, float]] = {}

    def per_question(predictions: Mapping[str, str]) -> list[tuple[float, float]]:
        """(EM, F1) of each question, in the order of ``references``."""
        scores = []
        for qid, answers in references.items():
            key = (qid, predictions.get(qid, ""))
            if key not in answered:
                answered[key] = (
                    max(exact_match_score(key[1], ref) for ref in answers),
                    max(f1_score(key[1], ref) for ref in answers),
                )
            scores.append(answered[key])
        return scores

    def squad(predictions: Mapping[str, str]) -> dict[str, float]:
        em_total = f1_total = 0.0
        for em, f1 in per_question(predictions):
            em_total += em
            f1_total += f1
        n_questions = len(references)
        return {"exact_match": 100.0 * em_total / n_questions, "f1": 100.0 * f1_total / n_questions}

    return squad, per_question


def _qa_scorer(data: dict, labels: Sequence[str] | None, n: int):
    offsets, example = data["offsets"], data["example"]
    ids, contexts = data["ids"], data["contexts"]
    squad, per_question = _squad_scorer(data["references"])

    def context_mask(batch: Batch, width: int, device: torch.device) -> torch.Tensor:
        if "qa_context" not in batch.extra:
            batch.extra["qa_context"] = _context_mask(offsets, batch.index, width).to(device)
        return batch.extra["qa_context"]

    def reduce(output: Any, batch: Batch) -> tuple[Batch, torch.Tensor]:
        real = batch.inputs["attention_mask"].bool()
        logits = output.start_logits
        context = context_mask(batch, logits.shape[1], logits.device)
        return batch, _best_spans(output, real, context)

    def predictions(parts: list[tuple[Batch, torch.Tensor]]) -> dict[str, str]:
        best: dict[int, tuple[float, int, int, int]] = {}  # example -> score, feature, s, e
        for batch, result in parts:
            for row, (score, s, e) in zip(batch.index.tolist(), result.tolist(), strict=True):
                if not math.isfinite(score):
                    continue  # no valid span in this window
                ex = int(example[row])
                held = best.get(ex)
                if held is None or (score, -row) > (held[0], -held[1]):  # ties: first window
                    best[ex] = (score, row, int(s), int(e))
        predictions = {}
        for ex, (_, feature, s, e) in best.items():
            start_char = offsets[feature][s][0]  # type: ignore[index]
            end_char = offsets[feature][e][1]  # type: ignore[index]
            predictions[ids[ex]] = contexts[ex][start_char:end_char]
        return predictions

    def finish(parts: list[tuple[Batch, torch.Tensor]]) -> dict[str, float]:
        return squad(predictions(parts))

    def example_stats(parts: list[tuple[Batch, torch.Tensor]]) -> np.ndarray:
        return np.asarray(per_question(predictions(parts)), dtype=np.float64)[:, ::-1]

    return reduce, finish, example_stats


def _dp_scorer(data: dict, labels: Sequence[str] | None, n: int):
    labels = list(labels or DEFAULT_LABELS["dp"])
    kept, num_words = data["kept"], data["num_words"]
    gold_heads, gold_rels = data["gold_heads"], data["gold_rels"]

    def reduce(output: Any, batch: Batch) -> tuple[Batch, list]:
        return batch, dp_decode(output.arc_preds, output.rel_preds, [kept[i] for i in batch.index])

    def counts(parts: list[tuple[Batch, list]]) -> np.ndarray:
        """Per sentence: words with head and relation right, with head right, words."""
        out = np.zeros((n, 3), dtype=np.float64)
        for batch, decoded in parts:
            for i, parse in zip(batch.index.tolist(), decoded, strict=True):
                heads, rels = dp_words(parse, num_words[i], labels)
                head_right = np.asarray(heads) == np.asarray(gold_heads[i])
                rel_right = np.asarray(rels) == np.asarray(gold_rels[i])
                out[i] = (int((head_right & rel_right).sum()), int(head_right.sum()), len(heads))
        return out

    def finish(parts: list[tuple[Batch, list]]) -> dict[str, float]:
        totals = counts(parts).sum(axis=0)
        if not totals[2]:
            raise LangarithError("LAS of an empty split is undefined; the split has no words")
        return {"las": 100.0 * totals[0] / totals[2], "uas": 100.0 * totals[1] / totals[2]}

    return reduce, finish, counts


def _las_of(totals: np.ndarray, rows: int) -> float:
    return 100.0 * float(totals[0]) / float(totals[2]) if totals[2] else 0.0


def _accuracy_of(totals: np.ndarray, rows: int) -> float:
    return 100.0 * float(totals[0]) / rows


def _entity_f1_of(totals: np.ndarray, rows: int) -> float:
    """seqeval's micro F1 from (true positives, predicted, gold) totals."""
    correct, n_pred, n_true = (float(x) for x in totals[:3])
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_true if n_true else 0.0
    if precision + recall == 0:
        return 0.0
    return 100.0 * (2 * precision * recall / (precision + recall))


def _squad_f1_of(totals: np.ndarray, rows: int) -> float:
    return 100.0 * float(totals[0]) / rows  # column 0: F1, column 1: exact match


_SCORERS = {
    "nli": _nli_scorer,
    "ner": _ner_scorer,
    "qa": _qa_scorer,
    "dp": _dp_scorer,
    "sentiment": _sentiment_scorer,
}
#: Per kind: the main metric (:data:`~langarith.metrics.TASK_METRICS`) from per-row totals.
_STATS_METRICS = {
    "nli": _accuracy_of,
    "ner": _entity_f1_of,
    "qa": _squad_f1_of,
    "dp": _las_of,
    "sentiment": _accuracy_of,
}
#: Per kind: how each statistics column moves the main metric (NER: F1 grows with true
#: positives, falls with predicted entities, gold entities are fixed; QA: F1, not EM; DP:
#: LAS grows with labelled right words, the words are fixed).
_STATS_TRENDS = {"nli": (1,), "ner": (1, -1, 0), "qa": (1, 0), "dp": (1, 0, 0), "sentiment": (1,)}
