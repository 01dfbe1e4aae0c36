"""Language adapters: one shared initialisation per backbone, then MLM training per language.

Language arithmetic adds and scales *weights* of adapters trained for different
languages. That only makes sense when all of them start from the same point θ_init
(the paper trains them "with the same initialisation"), so :func:`init_language_adapter`
writes θ_init once per backbone and :func:`train_language_adapter` always loads it from
that folder instead of drawing a fresh random init.

The adapter is the MAD-X invertible bottleneck (``seq_bn_inv``: Pfeiffer bottleneck after
each FFN + an invertible NICE adapter on the embeddings, reduction factor 2). The
backbone, including its MLM head, stays frozen: only adapter weights change, so the
difference between two language adapters is purely "language".
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adapters
import torch

from langarith import LangarithError
from langarith.adapter_io import (
    INIT_OUTPUT,
    LANGUAGE_OUTPUT,
    SAFE_WEIGHTS_NAME,
    finish_adapter_folder,
)
from langarith.backbone.folder import backbone_fingerprint, load_backbone
from langarith.io import atomic_dir, check_replaceable, read_json, sha256_file, sha256_json
from langarith.modeling import (
    LANG_ADAPTER_NAME,
    build_adapter_config,
    check_adapter_dir,
    check_same_backbone,
    load_language_adapter,
    save_language_adapter,
)
from langarith.provenance import utc_now, versions
from langarith.settings import LanguageAdapterConfig, LanguageAdapterSettings
from langarith.training.checkpoints import check_checkpoint_dir, remove_checkpoint
from langarith.training.hparams import hash_hparams
from langarith.training.inputs import data_checksum, read_data_manifest, read_rows
from langarith.training.loop import (
    DeviceSetup,
    LoopConfig,
    LoopResult,
    device_and_dtype,
    load_state_into,
    resolve_warmup,
    run_training_loop,
    trainable_parameters,
)
from langarith.training.mlm import (
    MlmObjective,
    PackedBlocks,
    mlm_loss,
    pack_blocks,
    special_ids,
    tokenize_texts,
)
from langarith.training.seeding import EpochStream, seed_everything

__all__ = [
    "LANGUAGE_HPARAMS",
    "LANG_ADAPTER_CONFIG",
    "init_language_adapter",
    "train_language_adapter",
]

log = logging.getLogger(__name__)

#: Defaults of ``adapter_config`` for :func:`init_language_adapter` (MAD-X language adapter),
#: from :class:`~langarith.settings.LanguageAdapterConfig` (``init_seed`` is an argument).
LANG_ADAPTER_CONFIG: dict[str, Any] = {
    k: v for k, v in LanguageAdapterConfig.defaults().items() if k != "init_seed"
}

#: Defaults of the ``hparams`` of :func:`train_language_adapter`: the fields of
#: :class:`~langarith.settings.LanguageAdapterSettings`, documented there.
LANGUAGE_HPARAMS: dict[str, Any] = LanguageAdapterSettings.defaults()


# ----------------------------------------------------------------------------- init


def init_language_adapter(
    backbone_dir: Path | str,
    out_dir: Path | str,
    *,
    adapter_config: dict[str, Any] | None = None,
    seed: int = 0,
) -> Path:
    """Write θ_init, the one shared starting point of all language adapters of a backbone.

    Saved as an AdapterHub folder (``adapter_config.json`` + ``adapter.safetensors``) with
    metadata.json whose ``init_sha256`` (sha256 of the weights file) every trained
    language adapter records, so a shared init can be verified later.
    """
    out_dir = Path(out_dir)
    check_replaceable(out_dir, INIT_OUTPUT, [backbone_dir])
    backbone = backbone_fingerprint(backbone_dir)
    config = build_adapter_config(adapter_config, LANG_ADAPTER_CONFIG)
    model, _ = load_backbone(backbone_dir)
    adapters.init(model)
    seed_everything(seed)
    model.add_adapter(LANG_ADAPTER_NAME, config=config)
    with atomic_dir(out_dir, INIT_OUTPUT, [backbone_dir]) as tmp:
        save_language_adapter(model, tmp)
        finish_adapter_folder(
            tmp,
            {
                "kind": "language_adapter_init",
                "adapter_name": LANG_ADAPTER_NAME,
                "backbone": backbone,
                "seed": seed,
                "adapter_config": {**LANG_ADAPTER_CONFIG, **(adapter_config or {})},
                "num_parameters": int(
                    sum(
                        p.numel()
                        for n, p in model.named_parameters()
                        if f".{LANG_ADAPTER_NAME}." in n
                    )
                ),
                "init_sha256": sha256_file(tmp / SAFE_WEIGHTS_NAME),
                "versions": versions(),
                "created_utc": utc_now(),
            },
        )
    log.info("Wrote shared language-adapter init to %s", out_dir)
    return out_dir


# ----------------------------------------------------------------------------- training


def _language_hparams(hparams: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults + ``hparams``, validated before anything expensive is loaded.

    The typed settings refuse unknown keys and out-of-range values with a sentence that
    names them, the same check the config gets when it loads.
    """
    return LanguageAdapterSettings.from_mapping(hparams, where="language-adapter hparams").as_dict()


def _verified_init(init_dir: Path, backbone: dict) -> str:
    """The sha256 of θ_init's weights, after checking it is unmodified and of this backbone.

    Language vectors only add up when every adapter started from the same θ_init, so a
    modified init (its weights no longer match the checksum it recorded) is refused.
    """
    check_adapter_dir(init_dir, "Language-adapter init")
    meta_path = init_dir / "metadata.json"
    init_meta = read_json(meta_path, "Init metadata") if meta_path.exists() else {}
    init_sha = sha256_file(init_dir / SAFE_WEIGHTS_NAME)
    if init_meta.get("init_sha256") and init_meta["init_sha256"] != init_sha:
        raise LangarithError(
            f"{init_dir / SAFE_WEIGHTS_NAME} does not match the init_sha256 in its "
            "metadata.json; the shared init was modified. Recreate it with `langarith train init`."
        )
    check_same_backbone(init_meta, backbone, "Language-adapter init", init_dir)
    return init_sha


def _texts(rows: list[dict]) -> list[str]:
    """The non-blank ``text`` fields of ``rows``."""
    return [str(r.get("text") or "") for r in rows if str(r.get("text") or "").strip()]


@dataclass
class _Corpus:
    """One language's Wikipedia folder, read: its manifest and non-empty texts."""

    data_dir: Path
    manifest: dict
    lang: str
    train: list[str]
    validation: list[str]


def _read_corpus(data_dir: Path) -> _Corpus:
    """Both splits of a language; either being empty is an error (the validation split
    picks the best checkpoint)."""
    manifest = read_data_manifest(data_dir)
    lang = str(manifest.get("language", data_dir.name))
    train_texts = _texts(read_rows(data_dir, "train"))
    if not train_texts:
        raise LangarithError(
            f"Language {lang!r} has no text in {data_dir / 'train.jsonl'}; a language adapter "
            "needs a non-empty train split."
        )
    valid_texts = _texts(read_rows(data_dir, "validation"))
    if not valid_texts:
        raise LangarithError(
            f"Language {lang!r} has no text in {data_dir / 'validation.jsonl'}; the best "
            "checkpoint is chosen by validation loss, so the split must not be empty."
        )
    return _Corpus(data_dir, manifest, lang, train_texts, valid_texts)


def _freeze_all_but(model, name: str) -> dict[str, torch.nn.Parameter]:
    """Train only the adapter ``name`` (bottlenecks + invertible adapter), nothing else.

    ``train_adapter`` leaves a static MLM head trainable; it is frozen here on purpose.
    """
    model.train_adapter(name)
    for param_name, param in model.named_parameters():
        param.requires_grad = f".{name}." in param_name
    params = trainable_parameters(model)
    if not params:
        raise LangarithError(f"Adapter {name!r} has no parameters to train.")
    return params


def _language_model(
    backbone_dir: Path | str, init_dir: Path, hp: dict[str, Any]
) -> tuple[Any, Any, dict[str, torch.nn.Parameter], DeviceSetup]:
    """The backbone with θ_init loaded as the only trainable part, on its device;
    returns (model, tokenizer, trainable parameters, device setup)."""
    model, tokenizer = load_backbone(backbone_dir)
    adapters.init(model)
    load_language_adapter(model, init_dir)
    params = _freeze_all_but(model, LANG_ADAPTER_NAME)
    setup = device_and_dtype(bool(hp["fp16"]), bool(hp["bf16"]))
    model.to(setup.device)
    return model, tokenizer, params, setup


def _usable_positions(config) -> int:
    """Positions a block may use; RoBERTa-style models reserve ``pad_token_id + 1``."""
    max_pos = int(config.max_position_embeddings)
    if config.model_type in ("xlm-roberta", "roberta"):
        max_pos -= int(config.pad_token_id) + 1
    return max_pos


def _pack_corpus(
    corpus: _Corpus, tokenizer, hp: dict[str, Any], max_pos: int
) -> tuple[PackedBlocks, PackedBlocks]:
    """Train blocks (up to ``max_train_tokens`` text tokens) and validation blocks (the
    first ``max_eval_blocks``); either being empty is an error."""
    block_size = int(hp["block_size"])
    if block_size > max_pos:
        raise LangarithError(
            f"hparam block_size={block_size} exceeds the backbone's {max_pos} positions; lower it."
        )
    start_id, end_id = special_ids(tokenizer)
    packed = pack_blocks(
        tokenize_texts(tokenizer, corpus.train),
        block_size=block_size,
        start_id=start_id,
        end_id=end_id,
        max_tokens=hp["max_train_tokens"],
    )
    if len(packed) == 0:
        raise LangarithError(
            f"Language {corpus.lang!r} has fewer text tokens than one block (block_size="
            f"{block_size}, max_train_tokens={hp['max_train_tokens']}); give more text or "
            "lower block_size."
        )
    valid = pack_blocks(
        tokenize_texts(tokenizer, corpus.validation),
        block_size=block_size,
        start_id=start_id,
        end_id=end_id,
        max_blocks=int(hp["max_eval_blocks"]),
    )
    if len(valid) == 0:
        raise LangarithError(
            f"The validation split of {corpus.lang!r} is shorter than one block of "
            f"{block_size} tokens."
        )
    log.info(
        "Language %s: %d train blocks (%d text tokens%s), %d validation blocks",
        corpus.lang,
        len(packed),
        packed.text_tokens,
        ", budget reached" if packed.budget_hit else "",
        len(valid),
    )
    return packed, valid


def _loop_config(hp: dict[str, Any], seed: int, lang: str) -> LoopConfig:
    """The loop settings of a language adapter: lowest validation MLM loss wins."""
    return LoopConfig(
        seed=seed,
        max_steps=int(hp["max_steps"]),
        grad_accum=int(hp["grad_accum"]),
        lr=float(hp["lr"]),
        warmup_steps=resolve_warmup(hp, int(hp["max_steps"])),
        weight_decay=float(hp["weight_decay"]),
        max_grad_norm=hp["max_grad_norm"],
        eval_every=int(hp["eval_every"]),
        checkpoint_every=int(hp["checkpoint_every"]),
        stop_after_steps=hp["stop_after_steps"],
        higher_is_better=False,
        metric="loss",
        unit="tok",
        desc=f"lang {lang} seed {seed}",
    )


def _run_mlm(
    model,
    tokenizer,
    params: dict[str, torch.nn.Parameter],
    blocks: tuple[PackedBlocks, PackedBlocks],
    *,
    hp: dict[str, Any],
    seed: int,
    setup: DeviceSetup,
    cfg: LoopConfig,
    checkpoint_dir: Path | None,
    config_hash: str,
) -> tuple[LoopResult, EpochStream]:
    """MLM training of the adapter on the packed blocks through the shared loop.

    Returns the loop result and the data order (to count the tokens actually seen).
    """
    packed, valid = blocks
    start_id, end_id = special_ids(tokenizer)
    batch_size = int(hp["batch_size"])
    block_size = int(hp["block_size"])
    objective = MlmObjective(
        mask_token_id=tokenizer.mask_token_id,
        vocab_size=len(tokenizer),
        special_ids=tuple(sorted({start_id, end_id, int(tokenizer.pad_token_id or start_id)})),
        probability=float(hp["mlm_probability"]),
        seed=seed,
        device=setup.device,
        loss=mlm_loss,
    )
    stream = EpochStream(len(packed), seed)
    # Fixed validation masks: every evaluation sees the same task, so losses compare.
    evaluate = objective.evaluator(model, valid.blocks, int(hp["eval_batch_size"] or batch_size))

    def micro_batch_loss(k: int) -> tuple[torch.Tensor, int]:
        ids = packed.blocks[stream.indices(k * batch_size, batch_size)]
        return objective.batch_loss(model, ids, k), int(ids.shape[0] * (block_size - 2))

    result = run_training_loop(
        model,
        params,
        micro_batch_loss,
        evaluate,
        cfg,
        setup=setup,
        checkpoint_dir=checkpoint_dir,
        config_hash=config_hash,
    )
    return result, stream


def _config_hash(backbone: dict, init_sha: str, data_dir: Path, seed: int, hp: dict) -> str:
    """What decides the result; a checkpoint made with another hash is not resumed."""
    return sha256_json(
        {
            "kind": "language_adapter",
            "backbone": backbone["config_sha256"],
            "init_sha256": init_sha,
            "data": data_checksum(data_dir),
            "seed": seed,
            "hparams": hash_hparams(hp),
        }
    )


def _coverage(packed: PackedBlocks, stream: EpochStream, consumed: int) -> dict[str, Any]:
    """How much of the data ``consumed`` training blocks covered: ``epochs`` and the
    distinct text tokens seen (all after a full epoch, else those of the blocks of the
    first, partial epoch; the last column of a block is its [SEP]/</s>)."""
    if consumed >= len(packed):
        tokens_seen = packed.text_tokens
    else:
        end_id = int(packed.blocks[0, -1])
        seen = packed.blocks[stream.indices(0, consumed), 1:-1]
        tokens_seen = int((seen != end_id).sum())
    return {"tokens_seen": tokens_seen, "epochs": round(consumed / len(packed), 3)}


def train_language_adapter(
    backbone_dir: Path | str,
    init_dir: Path | str,
    data_dir: Path | str,
    out_dir: Path | str,
    *,
    seed: int,
    hparams: dict[str, Any] | None = None,
    checkpoint_dir: Path | str | None = None,
) -> Path:
    """Train one language adapter with MLM on ``<data_dir>/train.jsonl``, starting from θ_init.

    Text is tokenized, concatenated and packed into ``block_size`` blocks (up to
    ``max_train_tokens`` text tokens); the best weights by validation MLM loss are saved
    to ``out_dir`` (AdapterHub folder + metadata.json). ``seed`` fixes data order, masks
    and dropout. With ``checkpoint_dir`` the run is resumable and a resumed run ends with
    exactly the weights of an uninterrupted one; the checkpoint is deleted on success.
    """
    hp = _language_hparams(hparams)
    init_dir, data_dir, out_dir = Path(init_dir), Path(data_dir), Path(out_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    started = time.perf_counter()
    inputs = [Path(backbone_dir), init_dir, data_dir]
    check_replaceable(out_dir, LANGUAGE_OUTPUT, [*inputs, *[d for d in [checkpoint_dir] if d]])
    check_checkpoint_dir(checkpoint_dir, [*inputs, out_dir])

    backbone = backbone_fingerprint(backbone_dir)
    init_sha = _verified_init(init_dir, backbone)
    corpus = _read_corpus(data_dir)
    model, tokenizer, params, setup = _language_model(backbone_dir, init_dir, hp)
    packed, valid = _pack_corpus(corpus, tokenizer, hp, _usable_positions(model.config))

    cfg = _loop_config(hp, seed, corpus.lang)
    config_hash = _config_hash(backbone, init_sha, data_dir, seed, hp)
    result, stream = _run_mlm(
        model,
        tokenizer,
        params,
        (packed, valid),
        hp=hp,
        seed=seed,
        setup=setup,
        cfg=cfg,
        checkpoint_dir=checkpoint_dir,
        config_hash=config_hash,
    )
    coverage = _coverage(packed, stream, result.steps * cfg.grad_accum * int(hp["batch_size"]))

    load_state_into(params, result.best_state)
    model.to("cpu")
    with atomic_dir(out_dir, LANGUAGE_OUTPUT, inputs) as tmp:
        save_language_adapter(model, tmp)
        meta = _metadata(corpus, backbone, seed, init_dir, init_sha, hp, result, packed)
        meta.update(coverage, wall_time_s=round(time.perf_counter() - started, 2))
        finish_adapter_folder(tmp, meta)  # adds weights_sha256 and the .bin twin
    remove_checkpoint(checkpoint_dir, config_hash)
    log.info(
        "Language adapter %s seed %d: best val loss %.4f at step %d -> %s",
        *(corpus.lang, seed, result.best_score, result.best_step, out_dir),
    )
    return out_dir


def _metadata(
    corpus: _Corpus,
    backbone: dict,
    seed: int,
    init_dir: Path,
    init_sha: str,
    hp: dict[str, Any],
    result: LoopResult,
    packed: PackedBlocks,
) -> dict[str, Any]:
    """metadata.json of a language adapter: inputs with checksums, settings and the run
    (the caller adds what is known only once the weights are written)."""
    return {
        "kind": "language_adapter",
        "language": corpus.lang,
        "adapter_name": LANG_ADAPTER_NAME,
        "backbone": backbone,
        "seed": seed,
        "init_dir": str(init_dir),
        "init_sha256": init_sha,
        "data": {
            "dir": str(corpus.data_dir),
            "checksum": data_checksum(corpus.data_dir),
            "dataset": corpus.manifest.get("dataset"),
        },
        "hparams": hp,
        "steps": result.steps,
        "effective_batch_size": int(hp["batch_size"]) * int(hp["grad_accum"]),
        "train_blocks": len(packed),
        "train_tokens": packed.text_tokens,
        "token_budget_reached": packed.budget_hit,
        "tokens_processed": result.units_processed,
        "best_val_loss": result.best_score,
        "best_step": result.best_step,
        "eval_history": result.history,
        "resumed_from_step": result.resumed_from_step,
        "train_seconds": round(result.train_seconds, 2),
        "versions": versions(),
        "created_utc": utc_now(),
    }
