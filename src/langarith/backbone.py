"""Backbones: the frozen multilingual MLM every adapter is trained on.

Output: ``resources/backbones/<model>/`` = a ``save_pretrained`` folder of an
``AutoModelForMaskedLM`` + its tokenizer + ``metadata.json``.

* Real runs fetch ``bert-base-multilingual-cased`` / ``xlm-roberta-base`` from the hub
  (:func:`fetch_hub_backbone`).
* The offline demo cannot download anything, so :func:`build_demo_backbone` trains a
  tokenizer on the demo Wikipedia text and pre-trains a small BERT or XLM-R with MLM,
  balanced over the demo languages, so that language adapters adapt a model which
  already "knows" those languages (as mBERT/XLM-R do), not a random network.

Heavy libraries are imported inside the functions so that ``langarith --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langarith import LangarithError

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

ARCHS = ("bert", "xlmr")

#: Defaults of the demo backbone ``spec`` (every key may be overridden by the config).
DEMO_SPEC: dict[str, Any] = {
    "vocab_size": 4000,  # target; the trained tokenizer may end up slightly smaller
    "min_frequency": 2,  # tokenizer trainer: ignore rarer pairs/pieces
    "tokenizer_max_lines_per_lang": 20000,  # equal share of each language in the vocab
    "hidden_size": 64,
    "num_layers": 2,
    "num_heads": 4,
    "intermediate_size": 128,
    "max_position_embeddings": 512,  # usable positions (XLM-R's config adds pad_id+1)
    "dropout": 0.1,
    # Tiny models sit on the unigram plateau (MLM loss ~7.1 on the demo text) for their
    # first ~300-400 steps at lr 2e-3, and for well over 1000 at 5e-4; a backbone that
    # stops there gives task adapters nothing beyond word frequencies to learn from.
    "pretrain_steps": 1000,
    "batch_size": 16,
    "seq_len": 128,
    "lr": 2e-3,
    "warmup_ratio": 0.06,  # fraction of pretrain_steps used for linear warm-up
    "weight_decay": 0.01,
    "mlm_probability": 0.15,
    # Relative share of each language in the pre-training batches (integers; languages
    # not named get 1). mBERT and XLM-R saw far more English than anything else, which is
    # what leaves language adapters something to add; an equal mix makes them redundant.
    "pretrain_weights": {},
}


# ----------------------------------------------------------------------------- helpers


def _hub_help(hub_name: str) -> str:
    return (
        f"Backbone {hub_name!r} could not be loaded from the Hugging Face hub (offline or "
        "not found). Run this step on a machine with internet access, or pre-populate the "
        "HF cache (e.g. `huggingface-cli download "
        f"{hub_name}` and copy ~/.cache/huggingface), or set `path:` of this model in the "
        "config to a local folder holding the save_pretrained files."
    )


def backbone_fingerprint(backbone_dir: Path | str) -> dict[str, str]:
    """Name and config checksum of a backbone, recorded in every adapter's metadata.

    Adapters are only meaningful on the exact backbone they were trained on; the checksum
    lets later stages refuse mismatching pairs.
    """
    from langarith.train.common import read_json, sha256_file

    backbone_dir = Path(backbone_dir)
    _check_backbone_dir(backbone_dir)
    meta_path = backbone_dir / "metadata.json"
    meta = read_json(meta_path, "Backbone metadata") if meta_path.exists() else {}
    return {
        "name": str(meta.get("name", backbone_dir.name)),
        "dir": str(backbone_dir),
        "config_sha256": sha256_file(backbone_dir / "config.json"),
    }


def _check_backbone_dir(backbone_dir: Path) -> None:
    if not backbone_dir.is_dir():
        raise LangarithError(
            f"Backbone folder {backbone_dir} does not exist; build it first "
            "(`langarith backbone demo ...` or `langarith backbone fetch ...`)."
        )
    missing = [name for name in ("config.json",) if not (backbone_dir / name).exists()]
    has_weights = any(
        (backbone_dir / name).exists()
        for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
    )
    has_tokenizer = any(
        (backbone_dir / name).exists()
        for name in (
            "tokenizer.json",
            "vocab.txt",
            "sentencepiece.bpe.model",
            "tokenizer_config.json",
        )
    )
    if missing or not has_weights or not has_tokenizer:
        what = (
            missing
            + ([] if has_weights else ["model weights"])
            + ([] if has_tokenizer else ["tokenizer files"])
        )
        raise LangarithError(
            f"Backbone folder {backbone_dir} is incomplete (missing {', '.join(what)}); "
            "delete it and build it again."
        )


def load_tokenizer(backbone_dir: Path | str) -> PreTrainedTokenizerBase:
    """The backbone's (fast) tokenizer from its folder, never from the network."""
    from transformers import AutoTokenizer

    backbone_dir = Path(backbone_dir)
    _check_backbone_dir(backbone_dir)
    try:
        return AutoTokenizer.from_pretrained(str(backbone_dir), local_files_only=True)
    except (OSError, ValueError) as err:
        raise LangarithError(f"The tokenizer in {backbone_dir} cannot be loaded: {err}") from err


def load_backbone(backbone_dir: Path | str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """``(AutoModelForMaskedLM, tokenizer)`` from a backbone folder, with a clear error if
    the folder is missing or corrupt (the usual cause: an interrupted manual copy)."""
    from transformers import AutoModelForMaskedLM

    backbone_dir = Path(backbone_dir)
    tokenizer = load_tokenizer(backbone_dir)
    try:
        model = AutoModelForMaskedLM.from_pretrained(str(backbone_dir), local_files_only=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise LangarithError(
            f"The model in {backbone_dir} cannot be loaded ({err}); delete the folder and "
            "build it again."
        ) from err
    return model, tokenizer


# ----------------------------------------------------------------------------- hub


def fetch_hub_backbone(
    hub_name: str,
    out_dir: Path | str,
    *,
    revision: str | None = None,
    path: Path | str | None = None,
) -> Path:
    """Download ``hub_name`` (or read the local folder ``path``) and save it to ``out_dir``.

    Offline or unknown names fail at once with a LangarithError that says how to get the
    files (internet machine, pre-populated HF cache, or ``path:`` to a local folder).
    """
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from langarith.train.common import atomic_output_dir, sha256_file, utc_now, versions, write_json

    out_dir = Path(out_dir)
    source = str(path) if path is not None else hub_name
    if path is not None and not Path(path).is_dir():
        raise LangarithError(
            f"Local backbone path {path} is not a folder; fix `path:` in the config."
        )
    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
        model = AutoModelForMaskedLM.from_pretrained(source, revision=revision)
    except (OSError, ValueError) as err:
        if path is not None:
            raise LangarithError(
                f"The local backbone folder {path} cannot be loaded ({err}); it must hold "
                "save_pretrained files of a masked-LM model and its tokenizer."
            ) from err
        raise LangarithError(_hub_help(hub_name)) from err
    if not getattr(tokenizer, "is_fast", False):
        raise LangarithError(
            f"Backbone {hub_name!r} has no fast tokenizer; the NER and QA feature builders "
            "need offsets/word ids from a fast tokenizer."
        )
    with atomic_output_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(
            tmp / "metadata.json",
            {
                "name": out_dir.name,
                "kind": "hub",
                "hub_name": hub_name,
                "revision": revision,
                "local_path": str(path) if path is not None else None,
                "commit_hash": getattr(model.config, "_commit_hash", None),
                "model_type": model.config.model_type,
                "vocab_size": len(tokenizer),
                "num_parameters": int(model.num_parameters()),
                "config_sha256": sha256_file(tmp / "config.json"),
                "wall_time_s": round(time.perf_counter() - started, 2),
                "versions": versions(),
                "created_utc": utc_now(),
            },
        )
    log.info("Saved backbone %s to %s", hub_name, out_dir)
    return out_dir


# ----------------------------------------------------------------------------- demo


def _corpus(corpus_dir: Path) -> tuple[str, list[str], list[str], str]:
    """(language, train texts, validation texts, manifest checksum) of a wikipedia folder."""
    from langarith.train.common import data_checksum, read_data_manifest, read_rows

    manifest = read_data_manifest(corpus_dir)
    lang = str(manifest.get("language", corpus_dir.name))
    train = [str(r.get("text", "")) for r in read_rows(corpus_dir, "train")]
    train = [t for t in train if t.strip()]
    if not train:
        raise LangarithError(
            f"Corpus {corpus_dir} (language {lang!r}) has no text in its train split; "
            "the demo backbone needs text for every language."
        )
    valid: list[str] = []
    if (corpus_dir / "validation.jsonl").exists():
        valid = [str(r.get("text", "")) for r in read_rows(corpus_dir, "validation")]
        valid = [t for t in valid if t.strip()]
    return lang, train, valid, data_checksum(corpus_dir)


def _word_counts(texts: Sequence[str], normalizer, pre_tokenizer) -> dict[str, int]:
    """How often each pre-tokenized word occurs in ``texts``, exactly as the tokenizer splits.

    ``pre_tokenize_str`` is slow on millions of words (it builds offsets), so the normalized
    text is first cut on spaces and only the distinct chunks are pre-tokenized. This is exact
    because ``BertNormalizer(clean_text=True)`` turns every whitespace character into a space
    and ``BertPreTokenizer`` splits on whitespace first.
    """
    from collections import Counter

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
    import heapq
    from collections import defaultdict

    words = sorted(w for w in counts if w)
    freqs = [counts[w] for w in words]
    symbols = [[w[0], *(prefix + c for c in w[1:])] for w in words]
    # token -> age (order of entry), the tie-breaker
    vocab: dict[str, int] = {}
    for token in [
        *specials,
        *sorted({c for w in words for c in w}),  # as the Rust trainer: all plain characters,
        *sorted({s for syms in symbols for s in syms[1:]}),  # and the inner ones it saw
    ]:
        vocab.setdefault(token, len(vocab))

    pair_counts: dict[tuple[str, str], int] = defaultdict(int)
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, syms in enumerate(symbols):
        for pair in zip(syms, syms[1:], strict=False):
            pair_counts[pair] += freqs[i]
            where[pair].add(i)
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
        a, b = pair
        merged = a + b[len(prefix) :]
        vocab.setdefault(merged, len(vocab))
        delta: dict[tuple[str, str], int] = defaultdict(int)
        for i in where.pop(pair):
            syms = symbols[i]
            out: list[str] = []
            j = 0
            while j < len(syms):
                if j + 1 < len(syms) and syms[j] == a and syms[j + 1] == b:
                    out.append(merged)
                    j += 2
                else:
                    out.append(syms[j])
                    j += 1
            if len(out) == len(syms):
                continue  # index entries are never removed, so some are out of date
            for old in zip(syms, syms[1:], strict=False):
                delta[old] -= freqs[i]
            for new in zip(out, out[1:], strict=False):
                delta[new] += freqs[i]
                where[new].add(i)
            symbols[i] = out
        for other, d in delta.items():
            if d:
                pair_counts[other] += d
                if d > 0:
                    entry = (-pair_counts[other], vocab[other[0]], vocab[other[1]], other)
                    heapq.heappush(heap, entry)
                elif pair_counts[other] <= 0:
                    del pair_counts[other]
        pair_counts.pop(pair, None)

    rest = sorted(t for t in vocab if t not in specials)
    return [*specials, *rest]


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
    import json as _json

    from tokenizers import models

    state = _json.loads(tok.to_str())["model"]
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


def train_tokenizer(texts: Sequence[str], *, arch: str, vocab_size: int, min_frequency: int = 2):
    """Train a fast tokenizer in the style of the real backbone.

    ``bert``: cased WordPiece with [PAD] [UNK] [CLS] [SEP] [MASK] (like mBERT);
    ``xlmr``: SentencePiece-style Unigram (Metaspace ▁) with <s> <pad> </s> <unk> <mask>
    (like XLM-R). Returned wrapped as ``BertTokenizerFast`` / ``XLMRobertaTokenizerFast``
    so ``save_pretrained``/``AutoTokenizer.from_pretrained`` round-trip. The same texts give
    a byte-identical tokenizer.json in every process (the demo backbone and the test
    fixtures depend on it), although the Rust trainers iterate hash maps in random order.
    """
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

    if arch == "bert":
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
    if arch == "xlmr":
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.Sequence(
            [normalizers.NFKC(), normalizers.Replace(" {2,}", " ")]
        )
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
    raise LangarithError(f"Backbone arch {arch!r} is unknown; allowed: {', '.join(ARCHS)}.")


def _demo_config(arch: str, spec: dict, tokenizer):
    """A small BERT/XLM-R config sized by ``spec`` and matched to the trained tokenizer."""
    from transformers import BertConfig, XLMRobertaConfig

    common = {
        "vocab_size": len(tokenizer),
        "hidden_size": int(spec["hidden_size"]),
        "num_hidden_layers": int(spec["num_layers"]),
        "num_attention_heads": int(spec["num_heads"]),
        "intermediate_size": int(spec["intermediate_size"]),
        "hidden_dropout_prob": float(spec["dropout"]),
        "attention_probs_dropout_prob": float(spec["dropout"]),
        "pad_token_id": tokenizer.pad_token_id,
    }
    if common["hidden_size"] % common["num_attention_heads"]:
        raise LangarithError(
            f"Demo spec hidden_size={common['hidden_size']} is not divisible by "
            f"num_heads={common['num_attention_heads']}; choose values that divide."
        )
    if arch == "bert":
        return BertConfig(
            **common,
            max_position_embeddings=int(spec["max_position_embeddings"]),
            type_vocab_size=2,
        )
    # RoBERTa-style positions start after the padding index (514 = 512 + pad_id + 1).
    return XLMRobertaConfig(
        **common,
        max_position_embeddings=int(spec["max_position_embeddings"]) + tokenizer.pad_token_id + 1,
        type_vocab_size=1,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def pretrain_cycle(langs: list[str], weights: dict[str, Any]) -> list[str]:
    """The repeating order of languages in pre-training batches.

    Each language appears ``weights.get(lang, 1)`` times per cycle, spread out rather than
    in runs (the cycle interleaves the languages round by round), so every batch of a
    cycle's length sees the intended mix.
    """
    unknown = sorted(set(weights) - set(langs))
    if unknown:
        raise LangarithError(
            f"pretrain_weights names {unknown}, which have no demo corpus; corpora: {langs}"
        )
    counts = {}
    for lang in langs:
        value = weights.get(lang, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise LangarithError(
                f"pretrain_weights[{lang!r}] must be an integer >= 0, got {value!r}"
            )
        counts[lang] = value
    if not any(counts.values()):
        raise LangarithError("pretrain_weights leave no language to pre-train on")
    cycle = []
    for round_ in range(max(counts.values())):
        cycle += [lang for lang in langs if counts[lang] > round_]
    return cycle


def _pretrain(model, tokenizer, blocks_per_lang: dict, valid_blocks, spec: dict, seed: int) -> dict:
    """Short MLM pre-training, batches mixing the languages by :func:`pretrain_cycle`.

    Uses the shared loop so its randomness is derived from ``seed`` exactly as in adapter
    training; returns the numbers for metadata.json.
    """
    import torch

    from langarith.train.common import (
        EpochStream,
        LoopConfig,
        device_and_dtype,
        mask_tokens,
        resolve_warmup,
        run_training_loop,
        seeded_generator,
    )
    from langarith.train.mlm import mlm_loss, special_ids

    setup = device_and_dtype(False, False)
    model.to(setup.device)
    langs = sorted(blocks_per_lang)
    streams = {
        lang: EpochStream(len(blocks_per_lang[lang]), seed, salt=f"order-{lang}") for lang in langs
    }
    cycle = pretrain_cycle(langs, spec.get("pretrain_weights") or {})
    # (language, how many times it came earlier in the cycle) for every cycle position
    cycle_slots = [(lang, cycle[:i].count(lang)) for i, lang in enumerate(cycle)]
    per_cycle = {lang: cycle.count(lang) for lang in langs}
    batch_size = int(spec["batch_size"])
    start_id, end_id = special_ids(tokenizer)
    specials = sorted({start_id, end_id, tokenizer.pad_token_id})
    vocab = len(tokenizer)

    def batch_for(k: int) -> torch.Tensor:
        # Example j of micro-batch k is position p = k*B + j of the repeating language
        # cycle; its position in that language's own epoch stream is the count of earlier
        # examples of the language (full cycles before, plus earlier slots of this one).
        rows = []
        for j in range(batch_size):
            p = k * batch_size + j
            lang, earlier = cycle_slots[p % len(cycle)]
            index = streams[lang].indices((p // len(cycle)) * per_cycle[lang] + earlier, 1)[0]
            rows.append(blocks_per_lang[lang][index])
        return torch.stack(rows)

    def micro_batch_loss(k: int):
        ids = batch_for(k)
        inputs, labels = mask_tokens(
            ids,
            mask_token_id=tokenizer.mask_token_id,
            vocab_size=vocab,
            special_ids=specials,
            probability=float(spec["mlm_probability"]),
            generator=seeded_generator(seed, "mask", k),
        )
        loss = mlm_loss(model, inputs.to(setup.device), labels.to(setup.device))
        return loss, int(ids.numel())

    eval_inputs = eval_labels = None
    if valid_blocks is not None and len(valid_blocks):
        eval_inputs, eval_labels = mask_tokens(
            valid_blocks,
            mask_token_id=tokenizer.mask_token_id,
            vocab_size=vocab,
            special_ids=specials,
            probability=float(spec["mlm_probability"]),
            generator=seeded_generator(seed, "eval-mask"),
        )

    def evaluate() -> dict[str, float]:
        if eval_inputs is None:
            return {"loss": 0.0}
        total, count = 0.0, 0
        for i in range(0, len(eval_inputs), batch_size):
            labels = eval_labels[i : i + batch_size]
            n = int((labels != -100).sum())
            if n == 0:
                continue
            loss = mlm_loss(
                model, eval_inputs[i : i + batch_size].to(setup.device), labels.to(setup.device)
            )
            total += float(loss) * n
            count += n
        return {"loss": total / max(count, 1)}

    steps = int(spec["pretrain_steps"])
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    cfg = LoopConfig(
        seed=seed,
        max_steps=steps,
        lr=float(spec["lr"]),
        warmup_steps=resolve_warmup({"warmup_ratio": spec["warmup_ratio"]}, steps),
        weight_decay=float(spec["weight_decay"]),
        eval_every=0,
        higher_is_better=False,
        metric="loss",
        desc="pretrain backbone",
    )
    losses: list[float] = []
    original = micro_batch_loss

    def tracked(k: int):
        loss, units = original(k)
        losses.append(float(loss.detach()))
        return loss, units

    result = run_training_loop(
        model, params, tracked, evaluate, cfg, setup=setup, checkpoint_dir=None, config_hash=""
    )
    # The last weights are kept (eval happens only at the end, so best == last).
    tail = losses[-max(1, min(20, len(losses))) :]
    return {
        "steps": result.steps,
        "final_train_loss": round(sum(tail) / len(tail), 4),
        "first_train_loss": round(losses[0], 4) if losses else None,
        "validation_loss": round(result.best_score, 4) if eval_inputs is not None else None,
        "tokens_processed": result.units_processed,
        "train_seconds": round(result.train_seconds, 2),
        "loss_curve": [
            [i + 1, round(sum(losses[i : i + 10]) / len(losses[i : i + 10]), 4)]
            for i in range(0, len(losses), max(1, len(losses) // 30))
        ],
    }


def build_demo_backbone(
    corpus_dirs: Sequence[Path | str],
    out_dir: Path | str,
    *,
    arch: str,
    spec: dict | None = None,
    seed: int = 0,
) -> Path:
    """Train a tokenizer and pre-train a small ``arch`` MLM on the demo Wikipedia corpora.

    ``corpus_dirs`` are ``resources/data/wikipedia/<lang>/`` folders. ``spec`` overrides
    :data:`DEMO_SPEC`. Deterministic given ``seed`` (on the same machine); written
    atomically with a metadata.json (vocab size, steps, losses, wall time, corpus checksums).
    """
    import torch
    from transformers import BertForMaskedLM, XLMRobertaForMaskedLM

    from langarith.train.common import (
        atomic_output_dir,
        resolve_hparams,
        seed_everything,
        sha256_file,
        utc_now,
        versions,
        write_json,
    )
    from langarith.train.mlm import pack_blocks, special_ids, tokenize_texts

    if arch not in ARCHS:
        raise LangarithError(f"Backbone arch {arch!r} is unknown; allowed: {', '.join(ARCHS)}.")
    spec = resolve_hparams(DEMO_SPEC, spec, "demo backbone spec")
    if not corpus_dirs:
        raise LangarithError("build_demo_backbone needs at least one corpus folder.")
    out_dir = Path(out_dir)
    started = time.perf_counter()
    corpora = [_corpus(Path(d)) for d in corpus_dirs]
    langs = [c[0] for c in corpora]
    if len(set(langs)) != len(langs):
        raise LangarithError(f"Demo corpora repeat a language: {langs}; give each language once.")

    # Tokenizer: the same number of lines from each language, so small languages still
    # get their share of the vocabulary (as the exponential smoothing of mBERT/XLM-R aims).
    cap = int(spec["tokenizer_max_lines_per_lang"])
    share = min(cap, min(len(c[1]) for c in corpora))
    tok_texts = [t for c in corpora for t in c[1][:share]]
    tokenizer = train_tokenizer(
        tok_texts,
        arch=arch,
        vocab_size=int(spec["vocab_size"]),
        min_frequency=int(spec["min_frequency"]),
    )
    seq_len = int(spec["seq_len"])
    if seq_len > int(spec["max_position_embeddings"]):
        raise LangarithError(
            f"Demo spec seq_len={seq_len} exceeds max_position_embeddings="
            f"{spec['max_position_embeddings']}; lower seq_len or raise the maximum."
        )
    tokenizer.model_max_length = int(spec["max_position_embeddings"])
    start_id, end_id = special_ids(tokenizer)

    blocks: dict[str, torch.Tensor] = {}
    valid_parts = []
    for lang, train, valid, _ in corpora:
        packed = pack_blocks(
            tokenize_texts(tokenizer, train), block_size=seq_len, start_id=start_id, end_id=end_id
        )
        if len(packed) == 0:
            raise LangarithError(
                f"Corpus of {lang!r} is shorter than one block of seq_len={seq_len} tokens; "
                "give it more text or lower seq_len."
            )
        blocks[lang] = packed.blocks
        if valid:
            vpacked = pack_blocks(
                tokenize_texts(tokenizer, valid),
                block_size=seq_len,
                start_id=start_id,
                end_id=end_id,
                max_blocks=8,
            )
            valid_parts.append(vpacked.blocks)
    valid_blocks = torch.cat(valid_parts) if valid_parts else None

    seed_everything(seed)
    config = _demo_config(arch, spec, tokenizer)
    model = (BertForMaskedLM if arch == "bert" else XLMRobertaForMaskedLM)(config)
    model.train()
    stats = _pretrain(model, tokenizer, blocks, valid_blocks, spec, seed)
    model.to("cpu").eval()

    with atomic_output_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(
            tmp / "metadata.json",
            {
                "name": out_dir.name,
                "kind": "demo",
                "arch": arch,
                "model_type": config.model_type,
                "seed": seed,
                "spec": spec,
                "vocab_size": len(tokenizer),
                "num_parameters": int(model.num_parameters()),
                "languages": langs,
                "blocks_per_language": {lang: int(len(b)) for lang, b in blocks.items()},
                "corpora": {
                    lang: {"dir": str(Path(d)), "checksum": checksum}
                    for (lang, _, _, checksum), d in zip(corpora, corpus_dirs, strict=True)
                },
                "pretrain": stats,
                "config_sha256": sha256_file(tmp / "config.json"),
                "wall_time_s": round(time.perf_counter() - started, 2),
                "versions": versions(),
                "created_utc": utc_now(),
            },
        )
    log.info(
        "Demo backbone %s: vocab %d, %d steps, final MLM loss %s",
        out_dir,
        len(tokenizer),
        stats["steps"],
        stats["final_train_loss"],
    )
    return out_dir


# ----------------------------------------------------------------------------- CLI


def _cli_demo(args: argparse.Namespace) -> int:
    from langarith.train.cli import load_settings

    spec = load_settings(args.spec, args.set)
    build_demo_backbone(args.corpus, args.out, arch=args.arch, spec=spec, seed=args.seed)
    return 0


def _cli_fetch(args: argparse.Namespace) -> int:
    fetch_hub_backbone(args.hub_name, args.out, revision=args.revision, path=args.path)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``langarith backbone demo|fetch``."""
    parser = subparsers.add_parser("backbone", help="build (demo) or fetch (hub) a backbone")
    sub = parser.add_subparsers(dest="backbone_command", metavar="ACTION", required=True)

    demo = sub.add_parser("demo", help="train a tokenizer + small MLM on demo corpora")
    demo.add_argument(
        "--corpus", nargs="+", required=True, type=Path, help="wikipedia/<lang> folders"
    )
    demo.add_argument("--out", required=True, type=Path)
    demo.add_argument("--arch", choices=ARCHS, default="bert")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--spec", type=Path, help="YAML/JSON file with spec keys")
    demo.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key"
    )
    demo.set_defaults(func=_cli_demo)

    fetch = sub.add_parser(
        "fetch", help="download a backbone from the HF hub (or copy a local folder)"
    )
    fetch.add_argument("--hub-name", required=True)
    fetch.add_argument("--out", required=True, type=Path)
    fetch.add_argument("--revision")
    fetch.add_argument(
        "--path", type=Path, help="local save_pretrained folder to use instead of the hub"
    )
    fetch.set_defaults(func=_cli_fetch)


__all__ = [
    "ARCHS",
    "DEMO_SPEC",
    "backbone_fingerprint",
    "build_demo_backbone",
    "fetch_hub_backbone",
    "load_backbone",
    "load_tokenizer",
    "register_cli",
    "train_tokenizer",
]
