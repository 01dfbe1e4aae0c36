"""Deterministic tokenizers for the demo backbones (WordPiece like mBERT, Unigram like XLM-R)."""

from __future__ import annotations

import heapq
import json
from collections import Counter, defaultdict
from collections.abc import Sequence

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import BertTokenizerFast, XLMRobertaTokenizerFast

from langarith import LangarithError
from langarith.backbone.archs import ARCHS

__all__ = ["ARCHS", "train_tokenizer"]


def _word_counts(texts: Sequence[str], normalizer, pre_tokenizer) -> dict[str, int]:
    """How often each pre-tokenized word occurs in ``texts``, exactly as the tokenizer splits.

    ``pre_tokenize_str`` is slow on millions of words (it builds offsets), so the normalized
    text is first cut on spaces and only the distinct chunks are pre-tokenized. This is exact
    because ``BertNormalizer(clean_text=True)`` turns every whitespace character into a space
    and ``BertPreTokenizer`` splits on whitespace first.
    """
    chunks: Counter[str] = Counter()
    for text in texts:
        chunks.update(normalizer.normalize_str(text).split(" "))
    counts: Counter[str] = Counter()
    for chunk, n in chunks.items():
        for word, _ in pre_tokenizer.pre_tokenize_str(chunk):
            counts[word] += n
    return dict(counts)


def _wordpiece_vocab(
    counts: dict[str, int],
    *,
    vocab_size: int,
    min_frequency: int,
    specials: list[str],
    prefix: str = "##",
) -> list[str]:
    """The WordPiece vocabulary that ``tokenizers.trainers.WordPieceTrainer`` would learn.

    The Rust trainer is BPE over word counts (word-inner characters carry ``prefix``), but
    it breaks ties between equally frequent pairs in hash-map order, which is random per
    process, so the *set* of tokens differs between runs on tie-rich text. This is the same
    algorithm with deterministic ties: specials, every character seen (plus its ``prefix``
    form if seen inside a word), then merges of the most frequent adjacent pair until
    ``vocab_size`` tokens or until the best pair occurs fewer than ``min_frequency`` times.
    Among equally frequent pairs the one of the oldest tokens wins (characters by code
    point, then merges in order), as the Rust trainer does with its ids: it prefers short,
    general pieces to whole rare words, and on held-out text gives ~3% fewer tokens per
    word than breaking ties by the pairs' text (measured with ``min_frequency=1``).
    Returned in canonical order: specials, then sorted (WordPiece tokenization is greedy
    longest-match and does not depend on ids).

    Pair counts are updated incrementally and the best pair is taken from a heap with lazy
    invalidation, which keeps a few MB of text to about a second in pure Python.
    """
    words = sorted(w for w in counts if w)
    freqs = [counts[w] for w in words]
    symbols = [[w[0], *(prefix + c for c in w[1:])] for w in words]
    vocab = _initial_vocab(words, symbols, specials)
    pair_counts, where = _pair_index(symbols, freqs)
    heap = [(-n, vocab[pair[0]], vocab[pair[1]], pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)

    while len(vocab) < vocab_size and heap:
        neg, _, _, pair = heapq.heappop(heap)
        n = pair_counts.get(pair, 0)
        if n != -neg:  # stale entry: the count changed after it was pushed
            if n > 0:
                heapq.heappush(heap, (-n, vocab[pair[0]], vocab[pair[1]], pair))
            continue
        if n < max(min_frequency, 1):
            break
        merged = pair[0] + pair[1][len(prefix) :]
        vocab.setdefault(merged, len(vocab))
        delta = _apply_merge(pair, merged, symbols, freqs, where)
        _update_pair_counts(delta, pair_counts, heap, vocab)
        pair_counts.pop(pair, None)

    rest = sorted(t for t in vocab if t not in specials)
    return [*specials, *rest]


def _initial_vocab(words: list[str], symbols: list[list[str]], specials: list[str]) -> dict:
    """token -> age (order of entry, the tie-breaker): specials, then, as the Rust
    trainer, all plain characters and the word-inner (prefixed) ones it saw."""
    vocab: dict[str, int] = {}
    for token in [
        *specials,
        *sorted({c for w in words for c in w}),
        *sorted({s for syms in symbols for s in syms[1:]}),
    ]:
        vocab.setdefault(token, len(vocab))
    return vocab


def _pair_index(symbols: list[list[str]], freqs: list[int]) -> tuple[dict, dict]:
    """(pair -> weighted count, pair -> indices of the words holding it)."""
    pair_counts: dict[tuple[str, str], int] = defaultdict(int)
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, syms in enumerate(symbols):
        for pair in zip(syms, syms[1:], strict=False):
            pair_counts[pair] += freqs[i]
            where[pair].add(i)
    return pair_counts, where


def _merge_word(syms: list[str], a: str, b: str, merged: str) -> list[str]:
    """``syms`` with every adjacent ``a b`` replaced by ``merged`` (left to right)."""
    out: list[str] = []
    j = 0
    while j < len(syms):
        if j + 1 < len(syms) and syms[j] == a and syms[j + 1] == b:
            out.append(merged)
            j += 2
        else:
            out.append(syms[j])
            j += 1
    return out


def _apply_merge(
    pair: tuple[str, str],
    merged: str,
    symbols: list[list[str]],
    freqs: list[int],
    where: dict[tuple[str, str], set[int]],
) -> dict[tuple[str, str], int]:
    """Merge ``pair`` in every word that holds it; returns the change of each pair count.

    Only the words of ``pair`` are touched, which is what keeps training fast.
    """
    a, b = pair
    delta: dict[tuple[str, str], int] = defaultdict(int)
    for i in where.pop(pair):
        syms = symbols[i]
        out = _merge_word(syms, a, b, merged)
        if len(out) == len(syms):
            continue  # index entries are never removed, so some are out of date
        for old in zip(syms, syms[1:], strict=False):
            delta[old] -= freqs[i]
        for new in zip(out, out[1:], strict=False):
            delta[new] += freqs[i]
            where[new].add(i)
        symbols[i] = out
    return delta


def _update_pair_counts(
    delta: dict[tuple[str, str], int], pair_counts: dict, heap: list, vocab: dict[str, int]
) -> None:
    """Apply ``delta``; a grown count gets a fresh heap entry (old ones go stale)."""
    for other, d in delta.items():
        if d:
            pair_counts[other] += d
            if d > 0:
                entry = (-pair_counts[other], vocab[other[0]], vocab[other[1]], other)
                heapq.heappush(heap, entry)
            elif pair_counts[other] <= 0:
                del pair_counts[other]


def _canonical_unigram(tok, specials: list[str]):
    """The trained Unigram model with its hash-ordered characters put in a canonical order.

    The trainer adds the characters that no piece covers as single-character pieces with
    scores ``m, m + 1e-4, m + 2e-4, ...`` (``m`` = the lowest score) in hash-map order,
    which changes between processes, then sorts all pieces by score; so these characters
    usually form the tail, but a piece scoring within the grid can sit among or after them
    (seen on tiny corpora). The set of characters and of grid scores is stable, so every
    single-character piece whose score lies on the grid gets the grid scores in sorted
    order (highest to the smallest character), and all pieces are sorted by (score, text).
    Scores are rounded to 1e-9 to drop the float noise of the trainer's parallel sums.
    """
    state = json.loads(tok.to_str())["model"]
    pieces = [(str(p), round(float(s), 9)) for p, s in state["vocab"]]
    n_special = len(specials)
    head, rest = pieces[:n_special], pieces[n_special:]
    lowest = min((s for _, s in rest), default=0.0)

    def on_grid(piece: str, score: float) -> bool:
        steps = (score - lowest) / 1e-4
        return len(piece) == 1 and abs(steps - round(steps)) < 1e-3

    grid = [(p, s) for p, s in rest if on_grid(p, s)]
    others = [(p, s) for p, s in rest if not on_grid(p, s)]
    scores = sorted((s for _, s in grid), reverse=True)
    grid = list(zip(sorted(p for p, _ in grid), scores, strict=True))
    main = sorted([*others, *grid], key=lambda x: (-x[1], x[0]))
    return models.Unigram(
        [*head, *main], unk_id=state["unk_id"], byte_fallback=state["byte_fallback"]
    )


def _bert_tokenizer(
    texts: Sequence[str], *, vocab_size: int, min_frequency: int
) -> BertTokenizerFast:
    """Cased WordPiece with mBERT's special tokens and [CLS] A [SEP] B [SEP] templates."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # Not trainers.WordPieceTrainer: its tie-breaking (hence its vocabulary) changes from
    # process to process; _wordpiece_vocab is the same BPE with deterministic ties.
    vocab = _wordpiece_vocab(
        _word_counts(texts, normalizer, pre_tokenizer),
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        specials=specials,
    )
    tok = Tokenizer(
        models.WordPiece(
            {t: i for i, t in enumerate(vocab)},
            unk_token="[UNK]",
            max_input_chars_per_word=100,
            continuing_subword_prefix="##",
        )
    )
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.add_special_tokens(specials)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    return BertTokenizerFast(
        tokenizer_object=tok,
        do_lower_case=False,
        strip_accents=None,
        tokenize_chinese_chars=True,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
    )


def _xlmr_tokenizer(texts: Sequence[str], *, vocab_size: int) -> XLMRobertaTokenizerFast:
    """SentencePiece-style Unigram with XLM-R's special tokens and <s> A </s></s> B </s>."""
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(" {2,}", " ")])
    # As in xlm-roberta-base's tokenizer.json: split on whitespace first, so that token
    # offsets exclude the spaces (QA answer spans must not start with one).
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
        ]
    )
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        unk_token="<unk>",
        max_piece_length=16,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    tok.model = _canonical_unigram(tok, specials)
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    return XLMRobertaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )


def train_tokenizer(texts: Sequence[str], *, arch: str, vocab_size: int, min_frequency: int = 2):
    """Train a fast tokenizer in the style of the real backbone.

    ``bert``: cased WordPiece with [PAD] [UNK] [CLS] [SEP] [MASK] (like mBERT);
    ``xlmr``: SentencePiece-style Unigram (Metaspace ▁) with <s> <pad> </s> <unk> <mask>
    (like XLM-R). Returned wrapped as ``BertTokenizerFast`` / ``XLMRobertaTokenizerFast``
    so ``save_pretrained``/``AutoTokenizer.from_pretrained`` round-trip. The same texts give
    a byte-identical tokenizer.json in every process (the demo backbone and the test
    fixtures depend on it), although the Rust trainers iterate hash maps in random order.
    """
    if arch == "bert":
        return _bert_tokenizer(texts, vocab_size=vocab_size, min_frequency=min_frequency)
    if arch == "xlmr":
        return _xlmr_tokenizer(texts, vocab_size=vocab_size)
    raise LangarithError(f"Backbone arch {arch!r} is unknown; allowed: {', '.join(ARCHS)}.")
