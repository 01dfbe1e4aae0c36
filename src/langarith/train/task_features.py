"""Task features, predictions and metrics, shared by task training and the evaluation engine.

Training (``langarith.train.task_adapter``) and evaluation (``langarith.evaluate``) must turn
rows into model inputs and logits into answers in exactly the same way, or the English
validation score that picks the best checkpoint would not be the score reported later.
So both use these functions:

* feature builders :func:`encode_ner`, :func:`encode_nli`, :func:`encode_qa` →
  :class:`EncodedTask` (unpadded lists; :meth:`EncodedTask.batch` pads per batch);
  :func:`iter_encoded` runs them on :data:`FEATURE_CHUNK_ROWS` rows at a time, so no
  step holds a whole dataset's features (SQuAD's 88k questions make ~89k windows of
  384 tokens with their offsets: gigabytes as Python lists); :func:`encode_task`
  concatenates the chunks for the small evaluation splits, and
  :func:`evaluate_chunks` scores a split chunk by chunk;
* post-processing :func:`ner_predictions` (first sub-token → word tags) and
  :func:`qa_predictions` (best span within ``max_answer_len`` over all windows);
* :func:`predict_task` / :func:`evaluate_task` (metrics of :mod:`langarith.metrics`:
  NER seqeval entity F1, NLI accuracy, QA SQuAD F1/EM — all on the 0–100 scale of the
  papers).

The model these run on is assembled by :func:`langarith.modeling.load_model_for_task`.

Feature conventions: NER labels only the FIRST sub-token of each word (others -100),
max_length 128; NLI encodes (premise, hypothesis) pairs, max_length 128; QA encodes
(question, context) with ``truncation="only_second"``, max_length 384, stride 128, and
marks an answer that is not fully inside a window with the [CLS] position.
"""

from __future__ import annotations

import collections
import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from langarith import LangarithError, metrics
from langarith.data import UD_RELATIONS
from langarith.task_kinds import DP_PAD, FEATURE_KINDS, TASK_MAX_LENGTH

log = logging.getLogger(__name__)

#: Metric that selects checkpoints and is reported per task (higher is better).
TASK_METRIC = {"ner": "f1", "nli": "accuracy", "qa": "f1", "dp": "las", "sentiment": "accuracy"}
#: Rows encoded at once by :func:`iter_encoded`. A chunk of SQuAD (about 1.03 windows a
#: question) is ~1,000 features of 384 tokens: tens of MB as Python lists, against
#: gigabytes for the whole training split; large enough that the tokenizer's batching
#: keeps its speed.
FEATURE_CHUNK_ROWS = 1000
#: WikiANN IOB2 tags, XNLI classes and UD relations, used when a manifest has no ``labels``.
DEFAULT_LABELS = {
    "ner": ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"],
    "nli": ["entailment", "neutral", "contradiction"],
    "dp": list(UD_RELATIONS),
}


def check_task(task: str) -> str:
    """Validate a task name early with a message listing the allowed ones."""
    if task not in FEATURE_KINDS:
        raise LangarithError(f"Task {task!r} is unknown; allowed: {', '.join(FEATURE_KINDS)}.")
    return task


# ----------------------------------------------------------------------------- features


@dataclass
class EncodedTask:
    """Model features of a list of rows (one feature per row, several per row for QA).

    Lists are unpadded; :meth:`batch` pads a selection to the longest feature in it, so
    short NER/NLI inputs do not pay for ``max_length``.
    """

    task: str
    input_ids: list[list[int]]
    attention_mask: list[list[int]]
    token_type_ids: list[list[int]] | None
    example_index: list[int]  # feature -> index of its row
    labels: list[Any] | None = None  # NER: per-token ids (-100 masked); NLI: class id
    word_ids: list[list[int | None]] | None = None  # NER: token -> word
    num_words: list[int] | None = None  # NER: words per row
    start_positions: list[int] | None = None  # QA: answer token span (CLS if outside)
    end_positions: list[int] | None = None
    offset_mapping: list[list[tuple[int, int] | None]] | None = None  # QA: None off-context
    # DP, each as long as the feature's input_ids and padded with DP_PAD: the first
    # sub-token of each kept word then the end of the last (the biaffine head's
    # ``word_starts``), and per kept word its gold head (0 root, else 1-based word) and
    # relation id (DP_PAD where the head word was cut by max_length)
    word_starts: list[list[int]] | None = None
    arc_labels: list[list[int]] | None = None
    rel_labels: list[list[int]] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    def batch(
        self, indices: Sequence[int], pad_id: int, *, with_labels: bool = True
    ) -> dict[str, torch.Tensor]:
        """Padded tensors for the features ``indices`` (labels included if ``with_labels``)."""
        width = max(len(self.input_ids[i]) for i in indices)

        def pad(rows: list[list[int]], value: int) -> torch.Tensor:
            return torch.tensor(
                [rows[i] + [value] * (width - len(rows[i])) for i in indices], dtype=torch.long
            )

        out = {
            "input_ids": pad(self.input_ids, pad_id),
            "attention_mask": pad(self.attention_mask, 0),
        }
        if self.token_type_ids is not None:
            out["token_type_ids"] = pad(self.token_type_ids, 0)
        if self.task == "dp" and self.word_starts is not None:
            out["word_starts"] = pad(self.word_starts, DP_PAD)
        if with_labels:
            if self.task == "ner" and self.labels is not None:
                out["labels"] = pad(self.labels, -100)
            elif self.task in ("nli", "sentiment") and self.labels is not None:
                out["labels"] = torch.tensor([self.labels[i] for i in indices], dtype=torch.long)
            elif self.task == "qa" and self.start_positions is not None:
                out["start_positions"] = torch.tensor([self.start_positions[i] for i in indices])
                out["end_positions"] = torch.tensor([self.end_positions[i] for i in indices])
            elif self.task == "dp" and self.arc_labels is not None:
                out["labels_arcs"] = pad(self.arc_labels, DP_PAD)
                out["labels_rels"] = pad(self.rel_labels, DP_PAD)
        return out


def _require_fast(tokenizer) -> None:
    """Word ids and offsets exist only in fast tokenizers; refuse a slow one early."""
    if not getattr(tokenizer, "is_fast", False):
        raise LangarithError("Task features need a fast tokenizer (word ids and offsets).")


def _type_ids(encoding, tokenizer) -> list[list[int]] | None:
    """Segment ids when the model takes them (BERT), ``None`` otherwise (XLM-R)."""
    if "token_type_ids" in tokenizer.model_input_names and "token_type_ids" in encoding:
        return [list(x) for x in encoding["token_type_ids"]]
    return None


def _tag_ids(
    tags: Sequence[Any], label2id: dict[str, int], labels: Sequence[str], row_id: Any
) -> list[int]:
    """Tag ids of one row; tags may be names or ids, anything else is a clear error."""
    ids = []
    for tag in tags:
        if isinstance(tag, int) and not isinstance(tag, bool):
            if not 0 <= tag < len(labels):
                raise LangarithError(f"Row {row_id}: tag id {tag} is outside 0..{len(labels) - 1}.")
            ids.append(tag)
        elif tag in label2id:
            ids.append(label2id[tag])
        else:
            raise LangarithError(
                f"Row {row_id}: NER tag {tag!r} is not one of the labels {list(labels)}."
            )
    return ids


def encode_ner(
    rows: Sequence[dict], tokenizer, labels: Sequence[str], max_length: int = 128
) -> EncodedTask:
    """Tokenize pre-split words; label the first sub-token of each word, -100 elsewhere.

    Rows: ``{"id", "tokens": [str], "ner_tags": [str]}`` (tag ids are accepted too). Words
    cut off by ``max_length`` get no label here and are predicted "O" later.
    """
    _require_fast(tokenizer)
    label2id = {label: i for i, label in enumerate(labels)}
    enc = tokenizer(
        [list(r["tokens"]) for r in rows],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
    )
    label_rows, word_rows = [], []
    for i, row in enumerate(rows):
        words = enc.word_ids(i)
        tags = row.get("ner_tags")
        tag_ids = _tag_ids(tags, label2id, labels, row.get("id")) if tags is not None else None
        if tag_ids is not None and len(tag_ids) != len(row["tokens"]):
            raise LangarithError(
                f"Row {row.get('id')}: {len(row['tokens'])} tokens but {len(tag_ids)} ner_tags."
            )
        ids, previous = [], None
        for word in words:
            if word is None or word == previous or tag_ids is None:
                ids.append(-100)
            else:
                ids.append(tag_ids[word])
            previous = word
        label_rows.append(ids)
        word_rows.append(list(words))
    return EncodedTask(
        task="ner",
        input_ids=[list(x) for x in enc["input_ids"]],
        attention_mask=[list(x) for x in enc["attention_mask"]],
        token_type_ids=_type_ids(enc, tokenizer),
        example_index=list(range(len(rows))),
        labels=label_rows,
        word_ids=word_rows,
        num_words=[len(r["tokens"]) for r in rows],
    )


def encode_nli(rows: Sequence[dict], tokenizer, max_length: int = 128) -> EncodedTask:
    """Encode (premise, hypothesis) pairs; ``label`` 0/1/2 = entailment/neutral/contradiction."""
    _require_fast(tokenizer)
    enc = tokenizer(
        [str(r["premise"]) for r in rows],
        [str(r["hypothesis"]) for r in rows],
        truncation=True,
        max_length=max_length,
    )
    labels = []
    for row in rows:
        label = row.get("label")
        if label is not None and label not in (0, 1, 2):
            raise LangarithError(f"Row {row.get('id')}: NLI label {label!r} is not 0, 1 or 2.")
        labels.append(-100 if label is None else int(label))
    return EncodedTask(
        task="nli",
        input_ids=[list(x) for x in enc["input_ids"]],
        attention_mask=[list(x) for x in enc["attention_mask"]],
        token_type_ids=_type_ids(enc, tokenizer),
        example_index=list(range(len(rows))),
        labels=labels,
    )


def _word_positions(words: Sequence[int | None]) -> tuple[list[int], int]:
    """(first position of each word present, position after the last word's last token)."""
    starts: list[int] = []
    end, previous = 0, None
    for position, word in enumerate(words):
        if word is None:
            continue
        if word != previous:
            starts.append(position)
        end, previous = position + 1, word
    return starts, end


def _dp_tokenize(words: list[list[str]], tokenizer, max_length: int):
    """Tokenize pre-split words; a word that yields no sub-token (a stray control
    character) is read as the unknown token, so that every kept word has a span."""
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    empty = []
    for i in range(len(words)):
        present = [w for w in enc.word_ids(i) if w is not None]
        if present and len(set(present)) != max(present) + 1:
            empty.append(i)
    if not empty:
        return enc, words
    fixed = [list(w) for w in words]
    for i in empty:
        for j, word in enumerate(fixed[i]):
            if not tokenizer(word, add_special_tokens=False)["input_ids"]:
                fixed[i][j] = tokenizer.unk_token
    return tokenizer(fixed, is_split_into_words=True, truncation=True, max_length=max_length), fixed


def encode_dp(
    rows: Sequence[dict], tokenizer, labels: Sequence[str], max_length: int = 256
) -> EncodedTask:
    """Tokenize a treebank's words for the biaffine parsing head of ``adapters``.

    Rows: ``{"id", "tokens": [str], "heads": [int], "deprels": [str]}`` (heads 1-based,
    0 the root). Every gold label is word-level and sits on the word's FIRST sub-token's
    slot in the head's ``word_starts`` (the head pools each word's sub-tokens from its
    start to the next word's). Words cut off by ``max_length`` get no slot: they are
    scored as wrong; a kept word whose gold head was cut is left out of the loss.
    """
    _require_fast(tokenizer)
    label2id = {label: i for i, label in enumerate(labels)}
    enc, _ = _dp_tokenize([list(r["tokens"]) for r in rows], tokenizer, max_length)
    starts_rows, arc_rows, rel_rows = [], [], []
    for i, row in enumerate(rows):
        width = len(enc["input_ids"][i])
        starts, end = _word_positions(enc.word_ids(i))
        kept = len(starts)
        heads, rels = row.get("heads"), row.get("deprels")
        arcs, rel_ids = [], []
        if heads is not None and rels is not None:
            if not len(heads) == len(rels) == len(row["tokens"]):
                raise LangarithError(
                    f"Row {row.get('id')}: {len(row['tokens'])} tokens, {len(heads)} heads "
                    f"and {len(rels)} deprels."
                )
            for head, rel in zip(heads[:kept], rels[:kept], strict=True):
                if rel not in label2id:
                    raise LangarithError(
                        f"Row {row.get('id')}: relation {rel!r} is not one of the labels "
                        f"{list(labels)}."
                    )
                inside = 0 <= int(head) <= kept
                arcs.append(int(head) if inside else DP_PAD)
                rel_ids.append(label2id[rel] if inside else DP_PAD)
        word_starts = [*starts, end] if kept else []
        starts_rows.append(word_starts + [DP_PAD] * (width - len(word_starts)))
        arc_rows.append(arcs + [DP_PAD] * (width - len(arcs)))
        rel_rows.append(rel_ids + [DP_PAD] * (width - len(rel_ids)))
    return EncodedTask(
        task="dp",
        input_ids=[list(x) for x in enc["input_ids"]],
        attention_mask=[list(x) for x in enc["attention_mask"]],
        token_type_ids=_type_ids(enc, tokenizer),
        example_index=list(range(len(rows))),
        num_words=[len(r["tokens"]) for r in rows],
        word_starts=starts_rows,
        arc_labels=arc_rows,
        rel_labels=rel_rows,
    )


def kept_words(word_starts: Sequence[int]) -> int:
    """Words with a slot in a DP feature (its ``word_starts`` hold one more entry)."""
    return max(sum(1 for s in word_starts if s != DP_PAD) - 1, 0)


def dp_decode(arc_scores: torch.Tensor, rel_scores: torch.Tensor, kept: Sequence[int]):
    """Per feature (predicted heads, relation ids) of its kept words, numpy arrays.

    Each word's head is the best-scoring of the root and the sentence's kept words
    (greedy, as the ``adapters`` parsing example: the heads need not form a tree); its
    relation is the best for that head. ``arc_scores``: (batch, width, width + 1),
    ``rel_scores``: (batch, width, width + 1, relations), the head's outputs.
    """
    out = []
    for b, k in enumerate(kept):
        if k == 0:
            out.append((np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)))
            continue
        heads = arc_scores[b, :k, : k + 1].argmax(-1)
        rels = rel_scores[b, torch.arange(k), heads].argmax(-1)
        out.append((heads.cpu().numpy(), rels.cpu().numpy()))
    return out


def dp_words(
    decoded: tuple[np.ndarray, np.ndarray], n_words: int, labels: Sequence[str]
) -> tuple[list[int], list[str]]:
    """All ``n_words`` of a sentence: the decoded kept words, then the words cut by
    ``max_length`` with head -1 and relation ``_`` (never right)."""
    heads, rels = decoded
    cut = n_words - len(heads)
    return (
        [int(h) for h in heads] + [-1] * cut,
        [labels[int(r)] for r in rels] + ["_"] * cut,
    )


def encode_sentiment(rows: Sequence[dict], tokenizer, max_length: int = 128) -> EncodedTask:
    """Encode single texts (MARC, SMSA, NusaX); ``label`` is the class id of the data's
    ``labels`` (checked by the data stage)."""
    _require_fast(tokenizer)
    enc = tokenizer([str(r["text"]) for r in rows], truncation=True, max_length=max_length)
    labels = []
    for row in rows:
        label = row.get("label")
        if label is not None and (isinstance(label, bool) or not isinstance(label, int)):
            raise LangarithError(f"Row {row.get('id')}: sentiment label {label!r} is not an int.")
        labels.append(-100 if label is None else int(label))
    return EncodedTask(
        task="sentiment",
        input_ids=[list(x) for x in enc["input_ids"]],
        attention_mask=[list(x) for x in enc["attention_mask"]],
        token_type_ids=_type_ids(enc, tokenizer),
        example_index=list(range(len(rows))),
        labels=labels,
    )


def _fit_questions(questions: list[str], tokenizer, limit: int) -> list[str]:
    """Cut questions longer than ``limit`` sub-tokens at a token boundary.

    With ``truncation="only_second"`` a question that leaves no room for a context window
    (longer than max_length - doc_stride) makes the tokenizer fail; cutting the rare
    over-long question keeps every example scorable.
    """
    limit = max(limit, 1)
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    out = []
    for question, offsets in zip(questions, enc["offset_mapping"], strict=True):
        out.append(question[: offsets[limit - 1][1]] if len(offsets) > limit else question)
    return out


def _answer_tokens(
    row: dict, offsets: Sequence[Sequence[int]], sequence_ids: Sequence[int | None]
) -> tuple[int, int] | None:
    """Token span of the row's first answer in one window, or ``None`` when the row has no
    answer or the answer is not fully inside the window's context (then [CLS] is the
    target, as in the papers' SQuAD setup)."""
    answers = row.get("answers") or {}
    texts, answer_starts = answers.get("text") or [], answers.get("answer_start") or []
    if not texts or not answer_starts:
        return None
    start_char = int(answer_starts[0])
    end_char = start_char + len(texts[0])
    context_tokens = [k for k, s in enumerate(sequence_ids) if s == 1]
    if not context_tokens:
        return None
    first, last = context_tokens[0], context_tokens[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return None
    token_start = first
    while token_start <= last and offsets[token_start][0] <= start_char:
        token_start += 1
    token_end = last
    while token_end >= first and offsets[token_end][1] >= end_char:
        token_end -= 1
    return token_start - 1, token_end + 1


def encode_qa(
    rows: Sequence[dict], tokenizer, max_length: int = 384, doc_stride: int = 128
) -> EncodedTask:
    """Encode (question, context) into overlapping windows with answer token positions.

    Each window's ``offset_mapping`` keeps character offsets of context tokens only
    (``None`` elsewhere) for :func:`qa_predictions`. The start/end positions of an answer
    that is not fully inside a window point at [CLS] (index of the CLS/BOS token).
    """
    _require_fast(tokenizer)
    if tokenizer.padding_side != "right":
        raise LangarithError("encode_qa expects a tokenizer that pads on the right.")
    if doc_stride >= max_length:
        raise LangarithError(
            f"doc_stride={doc_stride} must be smaller than max_length={max_length}."
        )
    # room for the question: a window must keep more than doc_stride context tokens
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True) - doc_stride - 1
    questions = _fit_questions([str(r["question"]).lstrip() for r in rows], tokenizer, room)
    enc = tokenizer(
        questions,
        [str(r["context"]) for r in rows],
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    sample_map = enc.pop("overflow_to_sample_mapping")
    starts, ends, offsets_out = [], [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        input_ids = enc["input_ids"][i]
        cls_index = (
            input_ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in input_ids else 0
        )
        sequence_ids = enc.sequence_ids(i)
        offsets_out.append(
            [tuple(o) if sequence_ids[k] == 1 else None for k, o in enumerate(offsets)]
        )
        span = _answer_tokens(rows[sample_map[i]], offsets, sequence_ids)
        start, end = span if span is not None else (cls_index, cls_index)
        starts.append(start)
        ends.append(end)
    return EncodedTask(
        task="qa",
        input_ids=[list(x) for x in enc["input_ids"]],
        attention_mask=[list(x) for x in enc["attention_mask"]],
        token_type_ids=_type_ids(enc, tokenizer),
        example_index=[int(s) for s in sample_map],
        start_positions=starts,
        end_positions=ends,
        offset_mapping=offsets_out,
    )


def _encode_rows(
    task: str,
    rows: Sequence[dict],
    tokenizer,
    labels: Sequence[str] | None,
    max_length: int | None,
    doc_stride: int,
) -> EncodedTask:
    """The feature builder of ``task`` on ``rows``, with the task's default max_length."""
    max_length = int(max_length or TASK_MAX_LENGTH[task])
    if task == "ner":
        return encode_ner(rows, tokenizer, list(labels or DEFAULT_LABELS["ner"]), max_length)
    if task == "dp":
        return encode_dp(rows, tokenizer, list(labels or DEFAULT_LABELS["dp"]), max_length)
    if task == "nli":
        return encode_nli(rows, tokenizer, max_length)
    if task == "sentiment":
        return encode_sentiment(rows, tokenizer, max_length)
    return encode_qa(rows, tokenizer, max_length, doc_stride)


def iter_encoded(
    task: str,
    rows: Iterable[dict],
    tokenizer,
    *,
    labels: Sequence[str] | None = None,
    max_length: int | None = None,
    doc_stride: int = 128,
    chunk_rows: int = FEATURE_CHUNK_ROWS,
) -> Iterator[tuple[list[dict], EncodedTask]]:
    """``(rows, features)`` of consecutive chunks of at most ``chunk_rows`` rows.

    Every feature depends on its own row only (a QA row's windows stay in its chunk),
    so the chunks are exactly the slices of the features of all rows at once; each
    chunk's ``example_index`` counts from its own first row. ``rows`` may be a stream:
    it is read one chunk ahead, never whole.
    """
    check_task(task)
    if chunk_rows < 1:
        raise LangarithError(f"chunk_rows={chunk_rows} must be at least 1.")
    stream = iter(rows)
    while chunk := list(itertools.islice(stream, chunk_rows)):
        yield chunk, _encode_rows(task, chunk, tokenizer, labels, max_length, doc_stride)


def concat_encoded(parts: Iterable[EncodedTask]) -> EncodedTask:
    """One :class:`EncodedTask` of chunks in order (``example_index`` shifted to count
    over all their rows); what encoding all rows at once gives."""
    parts = list(parts)
    if not parts:
        raise LangarithError("No features to concatenate: the split has no rows.")
    first = parts[0]
    rows_before, example_index = 0, []
    for part in parts:
        example_index += [rows_before + i for i in part.example_index]
        rows_before += _rows_in(part)

    def joined(name: str) -> list | None:
        values = [getattr(part, name) for part in parts]
        return None if values[0] is None else list(itertools.chain.from_iterable(values))

    return EncodedTask(
        task=first.task,
        input_ids=joined("input_ids"),
        attention_mask=joined("attention_mask"),
        token_type_ids=joined("token_type_ids"),
        example_index=example_index,
        labels=joined("labels"),
        word_ids=joined("word_ids"),
        num_words=joined("num_words"),
        start_positions=joined("start_positions"),
        end_positions=joined("end_positions"),
        offset_mapping=joined("offset_mapping"),
        word_starts=joined("word_starts"),
        arc_labels=joined("arc_labels"),
        rel_labels=joined("rel_labels"),
    )


def _rows_in(part: EncodedTask) -> int:
    """Rows a chunk's features come from (every row has at least one feature)."""
    return max(part.example_index) + 1 if part.example_index else 0


def select_rows(encoded: EncodedTask, rows: Sequence[int]) -> EncodedTask:
    """The features of ``rows`` (row indices, in that order), as encoding them alone gives.

    Every feature depends on its own row only, so a subset of the rows is a selection of
    the features, not a second tokenization (the racing λ search scores many subsets).
    """
    position = {int(row): i for i, row in enumerate(rows)}
    keep = sorted(
        (f for f, row in enumerate(encoded.example_index) if row in position),
        key=lambda f: (position[encoded.example_index[f]], f),
    )

    def picked(name: str) -> list | None:
        values = getattr(encoded, name)
        return None if values is None else [values[f] for f in keep]

    return EncodedTask(
        task=encoded.task,
        input_ids=picked("input_ids"),
        attention_mask=picked("attention_mask"),
        token_type_ids=picked("token_type_ids"),
        example_index=[position[encoded.example_index[f]] for f in keep],
        labels=picked("labels"),
        word_ids=picked("word_ids"),
        num_words=picked("num_words"),
        start_positions=picked("start_positions"),
        end_positions=picked("end_positions"),
        offset_mapping=picked("offset_mapping"),
        word_starts=picked("word_starts"),
        arc_labels=picked("arc_labels"),
        rel_labels=picked("rel_labels"),
    )


def encode_task(
    task: str,
    rows: Sequence[dict],
    tokenizer,
    *,
    labels: Sequence[str] | None = None,
    max_length: int | None = None,
    doc_stride: int = 128,
    chunk_rows: int = FEATURE_CHUNK_ROWS,
) -> EncodedTask:
    """Features of all ``rows`` (for splits small enough to hold, as the λ engine's),
    built :data:`FEATURE_CHUNK_ROWS` rows at a time so the tokenizer's per-row objects
    never exist for the whole split at once."""
    chunks = iter_encoded(
        task,
        rows,
        tokenizer,
        labels=labels,
        max_length=max_length,
        doc_stride=doc_stride,
        chunk_rows=chunk_rows,
    )
    parts = [features for _, features in chunks]
    if not parts:
        return _encode_rows(task, [], tokenizer, labels, max_length, doc_stride)
    return parts[0] if len(parts) == 1 else concat_encoded(parts)


# ----------------------------------------------------------------------------- predictions


def ner_predictions(
    pred_ids: Sequence[Sequence[int]], encoded: EncodedTask, labels: Sequence[str]
) -> list[list[str]]:
    """Word-level tags from token-level predicted label ids (first sub-token of each word).

    Words without a token in the window (cut by max_length) are tagged "O".
    """
    assert encoded.word_ids is not None and encoded.num_words is not None
    out = []
    for i, words in enumerate(encoded.word_ids):
        tags = ["O"] * encoded.num_words[i]
        previous = None
        for position, word in enumerate(words):
            if word is not None and word != previous:
                tags[word] = labels[int(pred_ids[i][position])]
            previous = word
        out.append(tags)
    return out


def qa_predictions(
    start_logits: Sequence[Any],
    end_logits: Sequence[Any],
    features: EncodedTask,
    rows: Sequence[dict],
    max_answer_len: int = 30,
    n_best: int = 20,
) -> dict[str, str]:
    """``{row id: answer text}``: the best-scoring context span over all windows of a row.

    Span score = start logit + end logit; spans must lie in the context, end >= start and
    be at most ``max_answer_len`` tokens long. Rows without a valid span get "".
    """
    assert features.offset_mapping is not None
    by_row: dict[int, list[int]] = collections.defaultdict(list)
    for feature, row_index in enumerate(features.example_index):
        by_row[row_index].append(feature)
    answers: dict[str, str] = {}
    for row_index, row in enumerate(rows):
        best_score, best_text = -np.inf, ""
        context = str(row["context"])
        for feature in by_row.get(row_index, []):
            offsets = features.offset_mapping[feature]
            starts = np.asarray(start_logits[feature], dtype=np.float64)[: len(offsets)]
            ends = np.asarray(end_logits[feature], dtype=np.float64)[: len(offsets)]
            for s in np.argsort(starts)[::-1][:n_best]:
                if offsets[s] is None:
                    continue
                for e in np.argsort(ends)[::-1][:n_best]:
                    if offsets[e] is None or e < s or e - s + 1 > max_answer_len:
                        continue
                    score = starts[s] + ends[e]
                    if score > best_score:
                        best_score = score
                        best_text = context[offsets[s][0] : offsets[e][1]]
        answers[str(row["id"])] = best_text
    return answers


# ----------------------------------------------------------------------------- metrics


def score_ner(true: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """Entity-level F1 (seqeval, IOB2, micro average), in percent."""
    return {"f1": float(metrics.ner_f1(true, pred))}


def score_nli(true: Sequence[int], pred: Sequence[int]) -> dict[str, float]:
    """Accuracy in percent."""
    return {"accuracy": float(metrics.accuracy(list(true), list(pred)))}


def score_sentiment(true: Sequence[int], pred: Sequence[int], n_classes: int) -> dict[str, float]:
    """Accuracy and macro F1 in percent (MARC reports the first, NusaX the second)."""
    return {
        "accuracy": float(metrics.accuracy(list(true), list(pred))),
        "f1": float(metrics.macro_f1(list(true), list(pred), n_classes)),
    }


def score_qa(preds: dict[str, str], rows: Sequence[dict]) -> dict[str, float]:
    """SQuAD F1 and exact match in percent (max over the reference answers)."""
    return _squad(preds, _qa_references(rows))


def _qa_references(rows: Iterable[dict]) -> dict[str, list[str]]:
    return {str(r["id"]): list((r.get("answers") or {}).get("text") or []) for r in rows}


def _squad(preds: dict[str, str], refs: dict[str, list[str]]) -> dict[str, float]:
    scores = metrics.squad_scores(preds, refs)
    return {"f1": float(scores["f1"]), "exact_match": float(scores["exact_match"])}


# ----------------------------------------------------------------------------- inference


def _batches(n: int, size: int) -> Iterator[list[int]]:
    """Consecutive index batches in dataset order (the order the papers evaluate in)."""
    for start in range(0, n, size):
        yield list(range(start, min(start + size, n)))


def predict_task(
    model,
    task: str,
    encoded: EncodedTask,
    *,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    pad_id: int | None = None,
) -> Any:
    """Raw predictions: NER → per-feature token label ids; NLI → class ids;
    QA → (per-feature start logits, per-feature end logits), all unpadded numpy arrays;
    DP → per feature (heads, relation ids) of its kept words (:func:`dp_decode`)."""
    check_task(task)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if pad_id is None:
        pad_id = int(getattr(model.config, "pad_token_id", 0) or 0)
    was_training = model.training
    model.eval()
    ner, nli, starts, ends, dp = [], [], [], [], []
    with torch.no_grad():
        for indices in _batches(len(encoded), batch_size):
            batch = {
                k: v.to(device)
                for k, v in encoded.batch(indices, pad_id, with_labels=False).items()
            }
            out = model(**batch)
            lengths = [len(encoded.input_ids[i]) for i in indices]
            if task == "ner":
                ids = out.logits.argmax(-1).cpu().numpy()
                ner.extend(ids[j, :n] for j, n in enumerate(lengths))
            elif task in ("nli", "sentiment"):
                nli.extend(int(x) for x in out.logits.argmax(-1).cpu())
            elif task == "dp":
                kept = [kept_words(encoded.word_starts[i]) for i in indices]
                dp.extend(dp_decode(out.arc_preds, out.rel_preds, kept))
            else:
                s = out.start_logits.float().cpu().numpy()
                e = out.end_logits.float().cpu().numpy()
                starts.extend(s[j, :n] for j, n in enumerate(lengths))
                ends.extend(e[j, :n] for j, n in enumerate(lengths))
    if was_training:
        model.train()
    if task == "ner":
        return ner
    if task in ("nli", "sentiment"):
        return nli
    if task == "dp":
        return dp
    return starts, ends


def evaluate_task(
    model,
    task: str,
    encoded: EncodedTask,
    *,
    rows: Sequence[dict],
    labels: Sequence[str] | None = None,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    max_answer_len: int = 30,
    pad_id: int | None = None,
) -> dict[str, float]:
    """Metric dict of ``model`` on ``rows`` (encoded as ``encoded``): NER ``{"f1"}``,
    NLI ``{"accuracy"}``, QA ``{"f1", "exact_match"}``, DP ``{"las", "uas"}`` — percent,
    higher is better."""
    return evaluate_chunks(
        model,
        task,
        [(list(rows), encoded)],
        labels=labels,
        batch_size=batch_size,
        device=device,
        max_answer_len=max_answer_len,
        pad_id=pad_id,
    )


def evaluate_chunks(
    model,
    task: str,
    chunks: Iterable[tuple[Sequence[dict], EncodedTask]],
    *,
    labels: Sequence[str] | None = None,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    max_answer_len: int = 30,
    pad_id: int | None = None,
) -> dict[str, float]:
    """:func:`evaluate_task` over ``(rows, features)`` chunks (:func:`iter_encoded`),
    one chunk in memory at a time; only the per-row predictions and gold answers (words
    and strings, not features) are kept until the split's metric is computed, so the
    result equals scoring all rows at once."""
    check_task(task)
    labels = list(labels or DEFAULT_LABELS.get(task, []))
    true_tags: list[list[str]] = []
    pred_tags: list[list[str]] = []
    gold: list[int] = []
    classes: list[int] = []
    answers: dict[str, str] = {}
    references: dict[str, list[str]] = {}
    parses: list[list[Any]] = [[], [], [], []]  # DP: gold heads, gold rels, predicted ones
    seen = False
    for rows, encoded in chunks:
        seen = True
        raw = predict_task(
            model, task, encoded, batch_size=batch_size, device=device, pad_id=pad_id
        )
        if task == "ner":
            pred_tags += ner_predictions(raw, encoded, labels)
            true_tags += [
                [labels[t] if isinstance(t, int) else str(t) for t in r["ner_tags"]] for r in rows
            ]
        elif task in ("nli", "sentiment"):
            classes += raw
            gold += [int(r["label"]) for r in rows]
        elif task == "dp":
            for row, decoded, n_words in zip(rows, raw, encoded.num_words, strict=True):
                heads, rels = dp_words(decoded, n_words, labels)
                for column, value in zip(
                    parses, (row["heads"], row["deprels"], heads, rels), strict=True
                ):
                    column.append(list(value))
        else:
            starts, ends = raw
            answers.update(qa_predictions(starts, ends, encoded, rows, max_answer_len))
            references.update(_qa_references(rows))
        del raw, encoded
    if not seen:
        raise LangarithError(f"No {task} rows to evaluate.")
    if task == "ner":
        return score_ner(true_tags, pred_tags)
    if task == "nli":
        return score_nli(gold, classes)
    if task == "dp":
        return metrics.attachment_scores(*parses)
    if task == "sentiment":
        if not labels:
            raise LangarithError("Sentiment evaluation needs the data's label names")
        return score_sentiment(gold, classes, len(labels))
    return _squad(answers, references)


__all__ = [
    "DEFAULT_LABELS",
    "FEATURE_CHUNK_ROWS",
    "TASK_METRIC",
    "EncodedTask",
    "check_task",
    "concat_encoded",
    "DP_PAD",
    "dp_decode",
    "dp_words",
    "encode_dp",
    "encode_ner",
    "encode_nli",
    "encode_qa",
    "encode_sentiment",
    "encode_task",
    "evaluate_chunks",
    "evaluate_task",
    "iter_encoded",
    "kept_words",
    "ner_predictions",
    "predict_task",
    "qa_predictions",
    "score_ner",
    "score_nli",
    "score_qa",
    "score_sentiment",
]
