"""Task features in bounded chunks (issue 12): the same features, batches and scores as
encoding a whole split at once, with at most one chunk in memory.

A SQuAD-shaped split with contexts that overflow into several doc-stride windows, a
WikiANN-shaped and an XNLI-shaped one; chunks smaller than the data. The model is a
stand-in (embeddings read off as logits): what is tested is the bookkeeping around it.
"""

from __future__ import annotations

import gc
import random
import weakref
from types import SimpleNamespace

import pytest
import torch

from langarith import LangarithError
from langarith.backbone.tokenizer import train_tokenizer
from langarith.train.feature_store import FeatureStore
from langarith.train.task_features import (
    DEFAULT_LABELS,
    EncodedTask,
    concat_encoded,
    encode_dp,
    encode_ner,
    encode_nli,
    encode_qa,
    encode_task,
    evaluate_chunks,
    evaluate_task,
    iter_encoded,
)

SYLLABLES = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "xe", "zo", "an", "el"]
CHUNK = 3
MAX_LENGTH, STRIDE = 48, 16  # QA: a context of 100+ sub-tokens makes several windows


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))


def _sentence(rng: random.Random, n: int | None = None) -> str:
    return " ".join(_word(rng) for _ in range(n or rng.randint(5, 12))) + "."


def _qa_row(rng: random.Random, i: int) -> dict:
    # every third context is long: its answer may sit in any window, or in none fully
    context = " ".join(_sentence(rng) for _ in range(12 if i % 3 == 0 else 2))
    words = context.replace(".", "").split()
    answer = " ".join(words[(k := rng.randrange(len(words) - 1)) : k + 2])
    start = context.index(answer)
    return {
        "id": f"q{i}",
        "context": context,
        "question": " ".join(_word(rng) for _ in range(4)) + "?",
        "answers": {"text": [answer], "answer_start": [start]},
    }


def _ner_row(rng: random.Random, i: int) -> dict:
    tokens = [_word(rng) for _ in range(rng.randint(3, 30))]
    tags = [rng.choice(DEFAULT_LABELS["ner"]) for _ in tokens]
    return {"id": f"n{i}", "tokens": tokens, "ner_tags": tags}


def _nli_row(rng: random.Random, i: int) -> dict:
    return {
        "id": f"x{i}",
        "premise": _sentence(rng),
        "hypothesis": _sentence(rng, 4),
        "label": i % 3,
    }


def _dp_row(rng: random.Random, i: int) -> dict:
    # up to 70 words of 1-3 syllables: the longer sentences are cut at MAX_LENGTH, and
    # some kept words then have their head among the cut ones (``rng`` is seeded alike
    # for every row, so each row draws from its own)
    rng = random.Random(f"dp-{i}")
    tokens = [_word(rng) for _ in range(rng.randint(3, 70))]
    heads = [rng.randint(0, len(tokens)) for _ in tokens]
    rels = [rng.choice(DEFAULT_LABELS["dp"]) for _ in tokens]
    return {"id": f"d{i}", "tokens": tokens, "heads": heads, "deprels": rels}


ROWS = {
    task: [make(random.Random(task), i) for i in range(11)]
    for task, make in (("qa", _qa_row), ("ner", _ner_row), ("nli", _nli_row), ("dp", _dp_row))
}


@pytest.fixture(scope="module", params=["bert", "xlmr"])
def tokenizer(request):
    rng = random.Random("tokenizer")
    texts = [_sentence(rng) for _ in range(400)]
    return train_tokenizer(texts, arch=request.param, vocab_size=200, min_frequency=1)


def _whole(task: str, tokenizer) -> EncodedTask:
    """The unchunked reference: the feature builder on all rows in one call."""
    rows = ROWS[task]
    if task == "qa":
        return encode_qa(rows, tokenizer, MAX_LENGTH, STRIDE)
    if task == "ner":
        return encode_ner(rows, tokenizer, DEFAULT_LABELS["ner"], MAX_LENGTH)
    if task == "dp":
        return encode_dp(rows, tokenizer, DEFAULT_LABELS["dp"], MAX_LENGTH)
    return encode_nli(rows, tokenizer, MAX_LENGTH)


def _chunks(task: str, tokenizer, rows=None):
    return iter_encoded(
        task,
        ROWS[task] if rows is None else rows,
        tokenizer,
        labels=DEFAULT_LABELS.get(task),
        max_length=MAX_LENGTH,
        doc_stride=STRIDE,
        chunk_rows=CHUNK,
    )


@pytest.mark.parametrize("task", ["qa", "ner", "nli", "dp"])
def test_chunked_features_equal_the_whole_split(tokenizer, task):
    whole = _whole(task, tokenizer)
    parts = list(_chunks(task, tokenizer))
    assert len(parts) == 4  # 11 rows in chunks of 3
    assert concat_encoded(features for _, features in parts) == whole
    kwargs = {"labels": DEFAULT_LABELS.get(task), "max_length": MAX_LENGTH, "doc_stride": STRIDE}
    assert encode_task(task, ROWS[task], tokenizer, chunk_rows=CHUNK, **kwargs) == whole
    if task == "qa":
        windows = [whole.example_index.count(i) for i in range(len(ROWS["qa"]))]
        assert max(windows) >= 3 and min(windows) == 1  # long contexts overflow
        # answers are found in later windows too, and left out ([CLS]) where cut
        later = [
            start
            for i, (row, start) in enumerate(
                zip(whole.example_index, whole.start_positions, strict=True)
            )
            if i > 0 and whole.example_index[i - 1] == row
        ]
        assert any(start > 0 for start in later) and any(start == 0 for start in later)


@pytest.mark.parametrize("task", ["qa", "ner", "nli", "dp"])
def test_feature_store_batches_equal_in_memory_batches(tokenizer, task, tmp_path):
    whole = _whole(task, tokenizer)
    store = FeatureStore.write(_chunks(task, tokenizer), tmp_path / "store")
    assert len(store) == len(whole) and store.n_rows == len(ROWS[task])
    reopened = FeatureStore.open(tmp_path / "store")
    rng = random.Random(0)
    pad = int(tokenizer.pad_token_id)
    for size in (1, 4, len(whole)):
        indices = rng.sample(range(len(whole)), size)
        expected = whole.batch(indices, pad)
        for got in (store.batch(indices, pad), reopened.batch(indices, pad)):
            assert got.keys() == expected.keys()
            for key, tensor in expected.items():
                assert got[key].dtype == tensor.dtype and torch.equal(got[key], tensor), key


def test_dp_features_align_word_labels_to_first_sub_words(tokenizer):
    from langarith.task_kinds import DP_PAD

    encoded = _whole("dp", tokenizer)
    cut = truncated = 0
    for i, row in enumerate(ROWS["dp"]):
        words = [w for w in tokenizer(row["tokens"], is_split_into_words=True).word_ids()]
        starts = [s for s in encoded.word_starts[i] if s != DP_PAD]
        kept = len(starts) - 1
        truncated += kept < len(row["tokens"])
        assert kept == min(
            len(row["tokens"]), max(w for w in words[: MAX_LENGTH - 1] if w is not None) + 1
        )
        # each start is its word's first sub-token; the last entry closes the last word
        ids = encoded.input_ids[i]
        assert starts[0] == 1 and starts[-1] == len(ids) - 1 and starts == sorted(set(starts))
        arcs, rels = encoded.arc_labels[i], encoded.rel_labels[i]
        assert len(arcs) == len(rels) == len(ids) and all(a == DP_PAD for a in arcs[kept:])
        for w in range(kept):
            head = row["heads"][w]
            if head > kept:  # its head was cut: no loss on this word
                cut += 1
                assert arcs[w] == rels[w] == DP_PAD
            else:
                assert arcs[w] == head
                assert DEFAULT_LABELS["dp"][rels[w]] == row["deprels"][w]
    assert cut > 0 and truncated > 0


def test_feature_store_refuses_an_incomplete_folder(tokenizer, tmp_path):
    FeatureStore.write(_chunks("nli", tokenizer), tmp_path / "store")
    (tmp_path / "store" / "features.json").unlink()
    with pytest.raises(LangarithError, match="no complete feature store"):
        FeatureStore.open(tmp_path / "store")
    with pytest.raises(LangarithError, match="has no rows"):
        FeatureStore.write(iter([]), tmp_path / "empty")


class _Counting:
    """A tokenizer proxy recording the most texts it was given in one call."""

    def __init__(self, inner) -> None:
        self.inner, self.most = inner, 0

    def __call__(self, texts, *args, **kwargs):
        self.most = max(self.most, len(texts))
        return self.inner(texts, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _watched(chunks, peak: list[int]):
    """Pass chunks through, recording how many yielded feature sets are alive at once."""
    refs: list[weakref.ref] = []
    for rows, features in chunks:
        gc.collect()
        refs.append(weakref.ref(features))
        peak[0] = max(peak[0], sum(ref() is not None for ref in refs))
        yield rows, features
        del rows, features


def _stream(rows, pulled: list[int]):
    for row in rows:
        pulled[0] += 1
        yield row


@pytest.mark.parametrize("task", ["qa", "ner"])
def test_features_held_at_once_are_bounded_by_the_chunk(tokenizer, task, tmp_path):
    whole = _whole(task, tokenizer)
    counting = _Counting(tokenizer)
    pulled = [0]
    chunks = _chunks(task, counting, _stream(ROWS[task], pulled))
    first_rows, _ = next(chunks)
    assert pulled[0] == CHUNK == len(first_rows)  # the rows are read one chunk ahead only
    peak = [0]
    store = FeatureStore.write(_watched(_chunks(task, counting), peak), tmp_path / "s")
    assert peak[0] == 1  # the writer lets go of a chunk before it takes the next
    assert counting.most <= CHUNK  # nor does the tokenizer ever see more rows at once
    most_windows = max(whole.example_index.count(i) for i in range(len(ROWS[task])))
    assert store.max_chunk_features <= CHUNK * most_windows < len(whole)


class _StandIn(torch.nn.Module):
    """Logits read off embeddings of the input ids: deterministic, shaped like the heads."""

    def __init__(self, task: str, vocab: int) -> None:
        super().__init__()
        width = {"qa": 2, "ner": len(DEFAULT_LABELS["ner"]), "nli": 3}[task]
        torch.manual_seed(0)
        self.task, self.table = task, torch.nn.Embedding(vocab, width)
        self.config = SimpleNamespace(pad_token_id=0)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        out = self.table(input_ids)
        if self.task == "qa":
            return SimpleNamespace(start_logits=out[..., 0], end_logits=out[..., 1])
        if self.task == "nli":
            return SimpleNamespace(logits=out.mean(dim=1))
        return SimpleNamespace(logits=out)


@pytest.mark.parametrize("task", ["qa", "ner", "nli"])
def test_chunked_evaluation_equals_the_whole_split(tokenizer, task):
    model = _StandIn(task, len(tokenizer))
    labels = DEFAULT_LABELS.get(task)
    whole = evaluate_task(model, task, _whole(task, tokenizer), rows=ROWS[task], labels=labels)
    peak = [0]
    chunked = evaluate_chunks(model, task, _watched(_chunks(task, tokenizer), peak), labels=labels)
    assert chunked == whole and peak[0] == 1
