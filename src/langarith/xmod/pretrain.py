"""Pre-training X-MOD and SHARED: one language per batch, drawn with p_i ∝ n_i^α.

X-MOD samples languages as XLM-R does (α = 0.7 over the languages' corpus sizes); we
draw one language per batch (each batch then runs one module, as the paper's
per-language batching needs). Batch ``k``'s language is a function of ``(seed, k)``
alone, so a resumed run draws the same languages. The MLM head runs on the masked
positions only, as the core's :func:`~langarith.training.mlm.mlm_loss` does (3× faster
on 2 cores), with the batch's ``lang_ids`` passed through.

The demo pre-trains tiny models with the sizes and the tokenizer of the demo's XLM-R
shaped backbone on the core's demo Wikipedia; real X-MOD rows start from the released
checkpoints (:func:`fetch_hub_checkpoint`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, XLMRobertaForMaskedLM, XmodForMaskedLM

from langarith import LangarithError
from langarith.backbone.folder import load_tokenizer
from langarith.io import OutputKind, atomic_dir, check_replaceable, read_json, write_json
from langarith.provenance import utc_now, versions
from langarith.settings import XmodPretrainSettings
from langarith.training.inputs import data_checksum, read_data_manifest, read_rows
from langarith.training.loop import LoopConfig, device_and_dtype, run_training_loop
from langarith.training.loop import trainable_parameters as trainable
from langarith.training.mlm import mask_tokens, pack_blocks, special_ids, tokenize_texts
from langarith.training.seeding import EpochStream, seed_everything, seeded_generator
from langarith.xmod.model import build_config, check_xmod_folder, lang_ids, module_keys

__all__ = [
    "XMOD_OUTPUT",
    "LanguageSampler",
    "MlmBatches",
    "corpus_blocks",
    "fetch_hub_checkpoint",
    "masked_lm_loss",
    "pretrain_xmod",
    "sampling_shares",
]

log = logging.getLogger(__name__)

#: An X-MOD or SHARED backbone folder (replaced only by another one).
XMOD_OUTPUT = OutputKind(
    "X-MOD backbone folder", record="metadata.json", record_kinds=("xmod", "shared")
)


def sampling_shares(sizes: Mapping[str, float], alpha: float) -> dict[str, float]:
    """p_i = n_i^α / Σ_j n_j^α (XLM-R's exponential smoothing; α = 0.7 in X-MOD)."""
    if not sizes or any(n <= 0 for n in sizes.values()):
        raise LangarithError(f"Language sizes must be positive, got {dict(sizes)}.")
    powered = {lang: float(n) ** alpha for lang, n in sizes.items()}
    total = sum(powered.values())
    return {lang: value / total for lang, value in sorted(powered.items())}


class LanguageSampler:
    """The language of batch ``k``: drawn from :func:`sampling_shares` with a generator
    seeded by ``(seed, "xmod-language", k)``."""

    def __init__(self, sizes: Mapping[str, float], alpha: float, seed: int) -> None:
        self.shares = sampling_shares(sizes, alpha)
        self.langs = list(self.shares)
        self.probs = torch.tensor([self.shares[lang] for lang in self.langs], dtype=torch.float64)
        self.seed = seed

    def language(self, k: int) -> str:
        generator = seeded_generator(self.seed, "xmod-language", k)
        return self.langs[int(torch.multinomial(self.probs, 1, generator=generator))]


def masked_lm_loss(model, input_ids: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor):
    """Mean cross-entropy over the masked positions, the LM head run only there."""
    hidden = model.roberta(input_ids=input_ids, lang_ids=ids)[0]
    selected = labels != -100
    logits = model.lm_head(hidden[selected])
    return F.cross_entropy(logits.float(), labels[selected])


def corpus_blocks(
    corpus: Path, tokenizer, seq_len: int, split: str, max_blocks: int | None
) -> torch.Tensor:
    """Packed ``<s> … </s>`` MLM blocks of a corpus split, tokenized with ``tokenizer``."""
    start_id, end_id = special_ids(tokenizer)
    texts = [str(r.get("text", "")) for r in read_rows(corpus, split)]
    packed = pack_blocks(
        tokenize_texts(tokenizer, [t for t in texts if t.strip()]),
        block_size=seq_len,
        start_id=start_id,
        end_id=end_id,
        max_blocks=max_blocks,
    )
    return packed.blocks


class MlmBatches:
    """Training batches of one language each and their loss.

    The languages of all ``n_batches`` batches are drawn up front, so batch ``k``'s
    position in its language's epoch stream (the batches of that language before it)
    is known without replaying the draws.
    """

    def __init__(
        self,
        model,
        tokenizer,
        blocks: dict[str, torch.Tensor],
        sampler: LanguageSampler,
        n_batches: int,
        *,
        batch_size: int,
        probability: float,
        seed: int,
        keys: Mapping[str, str] | None = None,
    ) -> None:
        self.model, self.blocks, self.batch_size, self.seed = model, blocks, batch_size, seed
        self.keys = dict(keys) if keys is not None else module_keys(model.config)
        self.streams = {
            lang: EpochStream(len(b), seed, salt=f"xmod-{lang}") for lang, b in blocks.items()
        }
        self.schedule = [sampler.language(k) for k in range(n_batches)]
        seen: dict[str, int] = dict.fromkeys(blocks, 0)
        self.position = []
        for lang in self.schedule:
            self.position.append(seen[lang])
            seen[lang] += 1
        self.counts = seen
        start_id, end_id = special_ids(tokenizer)
        self.mask: dict[str, Any] = {
            "mask_token_id": tokenizer.mask_token_id,
            "vocab_size": len(tokenizer),
            "special_ids": sorted({start_id, end_id, tokenizer.pad_token_id}),
            "probability": probability,
        }

    def loss(self, k: int) -> tuple[torch.Tensor, int]:
        """The MLM loss of batch ``k`` (masks from ``(seed, "mask", k)``) and its tokens."""
        lang = self.schedule[k]
        rows = self.streams[lang].indices(self.position[k] * self.batch_size, self.batch_size)
        ids = self.blocks[lang][rows]
        generator = seeded_generator(self.seed, "mask", k)
        inputs, labels = mask_tokens(ids, generator=generator, **self.mask)
        langs = lang_ids(self.model, [self.keys[lang]] * len(ids))
        return masked_lm_loss(self.model, inputs, labels, langs), int(ids.numel())


def _warm_start(model, base_dir: Path | str) -> list[str]:
    """Copy every shared weight of the XLM-R-shaped base model into ``model`` (the
    modules stay fresh); returns the tensor names that were not copied.

    The demo's short runs cannot take a tiny model off the MLM's unigram plateau from
    scratch; starting X-MOD and SHARED alike from the core's demo backbone keeps the
    comparison fair. The paper pre-trains from scratch (the released checkpoints).
    """
    base = XLMRobertaForMaskedLM.from_pretrained(str(base_dir), use_safetensors=True)
    state = {k: v for k, v in base.state_dict().items() if k in model.state_dict()}
    shapes = model.state_dict()
    state = {k: v for k, v in state.items() if v.shape == shapes[k].shape}
    model.load_state_dict(state, strict=False)
    return sorted(k for k in shapes if k not in state)


def pretrain_xmod(
    base_dir: Path | str,
    corpus_dirs: Sequence[Path | str],
    out_dir: Path | str,
    *,
    shared: bool,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Pre-train a tiny X-MOD (or SHARED) MLM with the sizes and tokenizer of ``base_dir``.

    ``corpus_dirs`` are the pre-trained languages' ``resources/data/wikipedia/<lang>``
    folders; each batch is one language drawn with p ∝ (blocks)^α. Written atomically
    with the tokenizer and a metadata.json (languages, sampling shares, batches drawn per
    language, losses, wall time).
    """
    hp = XmodPretrainSettings.from_mapping(settings or {}, where="xmod pre-training")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    check_replaceable(out_dir, XMOD_OUTPUT, corpus_dirs)
    tokenizer = load_tokenizer(base_dir)
    base = read_json(Path(base_dir) / "config.json", "backbone config")
    if base.get("model_type") not in ("xlm-roberta", "roberta", "xmod"):
        raise LangarithError(
            f"X-MOD demo backbones take the sizes of an XLM-R-shaped backbone; {base_dir} is "
            f"a {base.get('model_type')!r} model. Point xmod.models[].demo.like at an xlmr model."
        )
    langs = [str(read_data_manifest(d).get("language", Path(d).name)) for d in corpus_dirs]
    blocks = {
        lang: corpus_blocks(Path(d), tokenizer, hp.seq_len, "train", None)
        for lang, d in zip(langs, corpus_dirs, strict=True)
    }
    empty = [lang for lang, b in blocks.items() if len(b) == 0]
    if empty:
        raise LangarithError(f"Corpora of {empty} hold less than one block of {hp.seq_len} tokens.")
    seed_everything(hp.seed)
    config = build_config(base, langs, shared=shared)
    model = XmodForMaskedLM(config)
    warm = _warm_start(model, base_dir) if hp.init_from_base else []
    model.train()
    sampler = LanguageSampler({k: len(b) for k, b in blocks.items()}, hp.alpha, hp.seed)
    batches = MlmBatches(
        model,
        tokenizer,
        blocks,
        sampler,
        hp.steps,
        batch_size=hp.batch_size,
        probability=hp.mlm_probability,
        seed=hp.seed,
    )
    cfg = LoopConfig(
        seed=hp.seed,
        max_steps=hp.steps,
        lr=hp.lr,
        warmup_steps=int(hp.warmup_ratio * hp.steps),
        weight_decay=hp.weight_decay,
        desc=f"pretrain {'SHARED' if shared else 'X-MOD'}",
    )
    result = run_training_loop(
        model,
        trainable(model),
        batches.loss,
        lambda: {"loss": 0.0},
        cfg,
        setup=device_and_dtype(False, False),
        checkpoint_dir=None,
        config_hash="",
    )
    model.eval()
    with atomic_dir(out_dir, XMOD_OUTPUT, corpus_dirs) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(
            tmp / "metadata.json",
            {
                "name": out_dir.name,
                "kind": "shared" if shared else "xmod",
                "languages": langs,
                "module_keys": module_keys(config),
                "settings": hp.as_dict(),
                "sampling_shares": sampler.shares,
                "batches_per_language": batches.counts,
                "blocks_per_language": {k: int(len(b)) for k, b in blocks.items()},
                "corpora": {
                    lang: data_checksum(d) for lang, d in zip(langs, corpus_dirs, strict=True)
                },
                "num_parameters": int(model.num_parameters()),
                "warm_started": warm,
                "steps": result.steps,
                "train_seconds": round(result.train_seconds, 2),
                "wall_time_s": round(time.perf_counter() - started, 2),
                "versions": versions(),
                "created_utc": utc_now(),
            },
        )
    return out_dir


def fetch_hub_checkpoint(hub_name: str, tokenizer_name: str, out_dir: Path | str) -> Path:
    """A released X-MOD checkpoint (``facebook/xmod-base-60-265k``) and its XLM-R tokenizer
    as a local folder, through ``from_pretrained`` (the hub cache, or a local folder with
    ``HF_HUB_OFFLINE=1``). A checkpoint that is not X-MOD is refused before loading."""
    out_dir = Path(out_dir)
    check_replaceable(out_dir, XMOD_OUTPUT, [])
    local = Path(hub_name)
    if local.is_dir():
        check_xmod_folder(local, "X-MOD checkpoint")
    model = XmodForMaskedLM.from_pretrained(hub_name)
    if model.config.model_type != "xmod":
        raise LangarithError(f"{hub_name} is not an X-MOD checkpoint.")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_name)
    with atomic_dir(out_dir, XMOD_OUTPUT, []) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(
            tmp / "metadata.json",
            {
                "name": out_dir.name,
                "kind": "xmod",
                "hub": hub_name,
                "tokenizer": tokenizer_name,
                "module_keys": module_keys(model.config),
                "versions": versions(),
                "created_utc": utc_now(),
            },
        )
    return out_dir
