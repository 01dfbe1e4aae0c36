"""The offline demo backbone: a tokenizer and a small BERT or XLM-R pre-trained with MLM.

The demo cannot download anything, so it trains a tokenizer on the demo Wikipedia text
and pre-trains a small model balanced over the demo languages, so that language adapters
adapt a model which already "knows" those languages (as mBERT/XLM-R do), not a random
network. A language of weight 0 in ``pretrain_weights`` is left out of both the tokenizer
and pre-training: a language the backbone never saw, for the low-resource scenario.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import BertConfig, BertForMaskedLM, XLMRobertaConfig, XLMRobertaForMaskedLM

from langarith import LangarithError
from langarith.backbone.archs import ARCHS
from langarith.backbone.folder import BACKBONE_OUTPUT
from langarith.backbone.tokenizer import train_tokenizer
from langarith.io import atomic_dir, check_replaceable, sha256_file, write_json
from langarith.provenance import utc_now, versions
from langarith.settings import DemoBackboneSettings
from langarith.training.inputs import data_checksum, read_data_manifest, read_rows
from langarith.training.loop import (
    LoopConfig,
    device_and_dtype,
    resolve_warmup,
    run_training_loop,
    trainable_parameters,
)
from langarith.training.mlm import MlmObjective, pack_blocks, special_ids, tokenize_texts
from langarith.training.seeding import EpochStream, seed_everything

__all__ = ["DEMO_SPEC", "build_demo_backbone", "pretrain_cycle"]

log = logging.getLogger(__name__)

#: Defaults of the demo backbone ``spec`` (every key may be overridden by the config): the
#: fields of :class:`~langarith.settings.DemoBackboneSettings`, documented there, but for
#: ``arch`` and ``seed`` (arguments of :func:`build_demo_backbone`).
DEMO_SPEC: dict[str, Any] = {
    k: v for k, v in DemoBackboneSettings.defaults().items() if k not in ("arch", "seed")
}


def _corpus(corpus_dir: Path) -> tuple[str, list[str], list[str], str]:
    """(language, train texts, validation texts, manifest checksum) of a wikipedia folder."""
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


def _demo_config(arch: str, spec: dict, tokenizer):
    """A small BERT/XLM-R config sized by ``spec`` and matched to the trained tokenizer."""
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


class _LanguageMix:
    """Pre-training batches that mix the languages by :func:`pretrain_cycle`.

    Example ``j`` of micro-batch ``k`` is position ``p = k*B + j`` of the repeating
    language cycle; its position in that language's own epoch stream is the count of
    earlier examples of the language (full cycles before, plus earlier slots of this
    one). So a batch is a function of ``k`` alone, as the shared loop needs for resume.
    """

    def __init__(
        self, blocks_per_lang: dict[str, torch.Tensor], weights: dict, batch_size: int, seed: int
    ) -> None:
        langs = sorted(blocks_per_lang)
        self.blocks = blocks_per_lang
        self.batch_size = batch_size
        self.streams = {
            lang: EpochStream(len(blocks_per_lang[lang]), seed, salt=f"order-{lang}")
            for lang in langs
        }
        cycle = pretrain_cycle(langs, weights)
        self.cycle_length = len(cycle)
        # (language, how many times it came earlier in the cycle) for every cycle position
        self.slots = [(lang, cycle[:i].count(lang)) for i, lang in enumerate(cycle)]
        self.per_cycle = {lang: cycle.count(lang) for lang in langs}

    def batch(self, k: int) -> torch.Tensor:
        """The blocks of micro-batch ``k``."""
        rows = []
        for j in range(self.batch_size):
            p = k * self.batch_size + j
            lang, earlier = self.slots[p % self.cycle_length]
            position = (p // self.cycle_length) * self.per_cycle[lang] + earlier
            rows.append(self.blocks[lang][self.streams[lang].indices(position, 1)[0]])
        return torch.stack(rows)


def _pretrain_stats(result, losses: list[float], has_validation: bool) -> dict:
    """The pre-training numbers of metadata.json: losses at the start and the end, a
    ~30-point loss curve, throughput. The last weights are kept (evaluation happens only
    at the end, so best == last)."""
    tail = losses[-max(1, min(20, len(losses))) :]
    return {
        "steps": result.steps,
        "final_train_loss": round(sum(tail) / len(tail), 4),
        "first_train_loss": round(losses[0], 4) if losses else None,
        "validation_loss": round(result.best_score, 4) if has_validation else None,
        "tokens_processed": result.units_processed,
        "train_seconds": round(result.train_seconds, 2),
        "loss_curve": [
            [i + 1, round(sum(losses[i : i + 10]) / len(losses[i : i + 10]), 4)]
            for i in range(0, len(losses), max(1, len(losses) // 30))
        ],
    }


def _pretrain(model, tokenizer, blocks_per_lang: dict, valid_blocks, spec: dict, seed: int) -> dict:
    """Short MLM pre-training, batches mixing the languages by :func:`pretrain_cycle`.

    Uses the shared loop and MLM objective so its randomness is derived from ``seed``
    exactly as in adapter training; returns the numbers for metadata.json.
    """
    setup = device_and_dtype(False, False)
    model.to(setup.device)
    batch_size = int(spec["batch_size"])
    # languages of weight 0 have no blocks (:func:`_split_unseen`)
    weights = {k: v for k, v in (spec.get("pretrain_weights") or {}).items() if v != 0}
    mix = _LanguageMix(blocks_per_lang, weights, batch_size, seed)
    start_id, end_id = special_ids(tokenizer)
    objective = MlmObjective(
        mask_token_id=tokenizer.mask_token_id,
        vocab_size=len(tokenizer),
        special_ids=tuple(sorted({start_id, end_id, tokenizer.pad_token_id})),
        probability=float(spec["mlm_probability"]),
        seed=seed,
        device=setup.device,
    )
    losses: list[float] = []

    def micro_batch_loss(k: int) -> tuple[torch.Tensor, int]:
        ids = mix.batch(k)
        loss = objective.batch_loss(model, ids, k)
        losses.append(float(loss.detach()))
        return loss, int(ids.numel())

    steps = int(spec["pretrain_steps"])
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
    result = run_training_loop(
        model,
        trainable_parameters(model),
        micro_batch_loss,
        objective.evaluator(model, valid_blocks, batch_size),
        cfg,
        setup=setup,
        checkpoint_dir=None,
        config_hash="",
    )
    has_validation = valid_blocks is not None and len(valid_blocks) > 0
    return _pretrain_stats(result, losses, has_validation)


def _demo_tokenizer(corpora: list, spec: dict, arch: str):
    """The tokenizer, trained on the same number of lines from each language, so small
    languages still get their share of the vocabulary (as the exponential smoothing of
    mBERT/XLM-R aims)."""
    cap = int(spec["tokenizer_max_lines_per_lang"])
    share = min(cap, min(len(c[1]) for c in corpora))
    tokenizer = train_tokenizer(
        [t for c in corpora for t in c[1][:share]],
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
    return tokenizer


def _demo_blocks(
    corpora: list, tokenizer, seq_len: int
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Packed training blocks per language and (up to 8 per language) validation blocks."""
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
    return blocks, (torch.cat(valid_parts) if valid_parts else None)


def _read_corpora(corpus_dirs: Sequence[Path | str]) -> list:
    """``(language, train texts, validation texts, checksum)`` per corpus, each language once."""
    if not corpus_dirs:
        raise LangarithError("build_demo_backbone needs at least one corpus folder.")
    corpora = [_corpus(Path(d)) for d in corpus_dirs]
    langs = [c[0] for c in corpora]
    if len(set(langs)) != len(langs):
        raise LangarithError(f"Demo corpora repeat a language: {langs}; give each language once.")
    return corpora


def _split_unseen(corpora: list, weights: dict[str, Any]) -> tuple[list, list[str]]:
    """The corpora the backbone learns from, and the languages of weight 0.

    A language of weight 0 is left out of pre-training altogether, tokenizer included,
    so the backbone has never seen it (as Assamese is unseen by XLM-R): only its language
    adapter can learn it, which is what the low-resource scenario studies.
    """
    pretrain_cycle([c[0] for c in corpora], weights)  # checks the weights, names them
    seen = [c for c in corpora if weights.get(c[0], 1) != 0]
    return seen, [c[0] for c in corpora if weights.get(c[0], 1) == 0]


def _corpora_info(corpora: list, corpus_dirs: Sequence[Path | str]) -> dict[str, dict]:
    """Folder and checksum of each language's corpus, for metadata.json."""
    return {
        lang: {"dir": str(Path(d)), "checksum": checksum}
        for (lang, _, _, checksum), d in zip(corpora, corpus_dirs, strict=True)
    }


def _demo_metadata(
    name: str, arch: str, seed: int, spec: dict, tokenizer, model, languages: list[str]
) -> dict[str, Any]:
    """metadata.json of a demo backbone (the caller adds the corpora and the run)."""
    return {
        "name": name,
        "kind": "demo",
        "arch": arch,
        "model_type": model.config.model_type,
        "seed": seed,
        "spec": spec,
        "vocab_size": len(tokenizer),
        "num_parameters": int(model.num_parameters()),
        "languages": languages,
        "versions": versions(),
        "created_utc": utc_now(),
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
    if arch not in ARCHS:
        raise LangarithError(f"Backbone arch {arch!r} is unknown; allowed: {', '.join(ARCHS)}.")
    if spec and ("arch" in spec or "seed" in spec):
        raise LangarithError("A demo backbone spec takes arch and seed as arguments, not keys.")
    spec = DemoBackboneSettings.from_mapping(
        {**(spec or {}), "arch": arch}, where="demo backbone spec"
    ).spec()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    check_replaceable(out_dir, BACKBONE_OUTPUT, corpus_dirs)
    corpora = _read_corpora(corpus_dirs)
    seen, unseen = _split_unseen(corpora, spec.get("pretrain_weights") or {})
    tokenizer = _demo_tokenizer(seen, spec, arch)
    blocks, valid_blocks = _demo_blocks(seen, tokenizer, int(spec["seq_len"]))

    seed_everything(seed)
    config = _demo_config(arch, spec, tokenizer)
    model = (BertForMaskedLM if arch == "bert" else XLMRobertaForMaskedLM)(config)
    model.train()
    stats = _pretrain(model, tokenizer, blocks, valid_blocks, spec, seed)
    model.to("cpu").eval()

    with atomic_dir(out_dir, BACKBONE_OUTPUT, corpus_dirs) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        langs = [c[0] for c in corpora]
        meta = _demo_metadata(out_dir.name, arch, seed, spec, tokenizer, model, langs)
        meta.update(
            corpora=_corpora_info(corpora, corpus_dirs),
            unseen_languages=unseen,
            blocks_per_language={lang: int(len(b)) for lang, b in blocks.items()},
            pretrain=stats,
            config_sha256=sha256_file(tmp / "config.json"),
            wall_time_s=round(time.perf_counter() - started, 2),
        )
        write_json(tmp / "metadata.json", meta)
    log.info(
        "Demo backbone %s: vocab %d, %d steps, final MLM loss %s",
        out_dir,
        len(tokenizer),
        stats["steps"],
        stats["final_train_loss"],
    )
    return out_dir
