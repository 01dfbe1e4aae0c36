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
from pathlib import Path
from typing import Any

import torch

from langarith import LangarithError
from langarith.backbone import backbone_fingerprint, load_backbone
from langarith.train.common import (
    EpochStream,
    LoopConfig,
    atomic_output_dir,
    data_checksum,
    device_and_dtype,
    hash_hparams,
    load_state_into,
    mask_tokens,
    read_data_manifest,
    read_json,
    read_rows,
    remove_checkpoint,
    require_positive_int,
    resolve_hparams,
    resolve_warmup,
    run_training_loop,
    seed_everything,
    seeded_generator,
    sha256_file,
    sha256_json,
    trainable_parameters,
    utc_now,
    versions,
    write_json,
)
from langarith.train.mlm import mlm_loss, pack_blocks, special_ids, tokenize_texts

log = logging.getLogger(__name__)

#: Name under which language adapters live inside a model (and in Stack(lang, task)).
LANG_ADAPTER_NAME = "lang"
#: AdapterHub file names of a saved adapter (safetensors variant).
ADAPTER_WEIGHTS = "adapter.safetensors"
ADAPTER_CONFIG = "adapter_config.json"

#: Defaults of ``adapter_config`` for :func:`init_language_adapter` (MAD-X language adapter).
#: ``architecture`` is a key of ``adapters.ADAPTER_CONFIG_MAP``; other keys are fields of
#: that config class (e.g. ``reduction_factor``, ``non_linearity``, ``inv_adapter``).
LANG_ADAPTER_CONFIG: dict[str, Any] = {
    "architecture": "seq_bn_inv",
    "reduction_factor": 2,
    "non_linearity": "gelu_new",
}

#: Defaults of the ``hparams`` of :func:`train_language_adapter`.
LANGUAGE_HPARAMS: dict[str, Any] = {
    "max_steps": 1000,  # optimizer steps
    "batch_size": 16,  # blocks per micro-batch
    "grad_accum": 1,  # effective batch = batch_size * grad_accum (paper: 64)
    "lr": 1e-4,
    "warmup_steps": 0,  # linear warm-up steps ...
    "warmup_ratio": 0.0,  # ... or a fraction of max_steps (not both)
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,  # null disables clipping
    "block_size": 128,  # tokens per packed block incl. [CLS] and [SEP]
    "mlm_probability": 0.15,
    "max_train_tokens": None,  # token budget: text sub-words packed for training
    "eval_every": 100,  # steps between validation runs (0: only at the end)
    "max_eval_blocks": 64,  # validation blocks used (from the start of the split)
    "eval_batch_size": None,  # default: batch_size
    "checkpoint_every": 100,  # steps between checkpoints (0: none)
    "fp16": False,  # CUDA only (autocast + GradScaler); ignored on CPU
    "bf16": False,  # CUDA only
    "stop_after_steps": None,  # test hook: raise TrainingInterrupted after N steps
}


# ----------------------------------------------------------------------------- config


def build_adapter_config(adapter_config: dict[str, Any] | None, defaults: dict[str, Any]):
    """An ``adapters`` config object from ``{"architecture": ..., **fields}``.

    Only names of ``adapters.ADAPTER_CONFIG_MAP`` are accepted, so a typo can never
    trigger a download attempt from AdapterHub.
    """
    from adapters import ADAPTER_CONFIG_MAP, AdapterConfig

    merged = {**defaults, **(adapter_config or {})}
    architecture = merged.pop("architecture")
    if architecture not in ADAPTER_CONFIG_MAP:
        raise LangarithError(
            f"Adapter architecture {architecture!r} is unknown; allowed: "
            f"{', '.join(sorted(ADAPTER_CONFIG_MAP))}."
        )
    try:
        return AdapterConfig.load(architecture, **merged)
    except TypeError as err:
        raise LangarithError(
            f"Adapter config {merged} does not fit architecture {architecture!r} ({err})."
        ) from err


def _check_adapter_dir(adapter_dir: Path, what: str) -> None:
    if not adapter_dir.is_dir():
        raise LangarithError(f"{what} folder {adapter_dir} does not exist; create it first.")
    missing = [n for n in (ADAPTER_CONFIG, ADAPTER_WEIGHTS) if not (adapter_dir / n).exists()]
    if missing:
        raise LangarithError(
            f"{what} folder {adapter_dir} is incomplete (missing {', '.join(missing)}); "
            "it must be an AdapterHub folder saved with safetensors."
        )


def save_language_adapter(model, out_dir: Path, name: str = LANG_ADAPTER_NAME) -> None:
    """``model.save_adapter`` without a head (safetensors).

    ``adapters`` also writes a ``head_config.json`` with ``config: null`` for models with a
    static head; it is removed because language adapters have no head of their own.
    """
    model.save_adapter(str(out_dir), name, with_head=False, use_safetensors=True)
    head_cfg = Path(out_dir) / "head_config.json"
    if head_cfg.exists() and read_json(head_cfg, "Head config").get("config") is None:
        head_cfg.unlink()


def load_language_adapter(model, adapter_dir: Path | str, name: str = LANG_ADAPTER_NAME) -> str:
    """Load a saved language adapter (incl. its invertible adapter) into ``model`` as ``name``."""
    adapter_dir = Path(adapter_dir)
    _check_adapter_dir(adapter_dir, "Language adapter")
    return model.load_adapter(str(adapter_dir), load_as=name, with_head=False, use_safetensors=True)


def _check_same_backbone(meta: dict, backbone: dict, what: str, path: Path) -> None:
    made_on = (meta.get("backbone") or {}).get("config_sha256")
    if made_on and made_on != backbone["config_sha256"]:
        raise LangarithError(
            f"{what} {path} was made for another backbone ({meta['backbone'].get('name')}, "
            f"config {made_on[:12]}) than {backbone['dir']} (config "
            f"{backbone['config_sha256'][:12]}); use adapters of the same backbone."
        )


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
    import adapters

    out_dir = Path(out_dir)
    backbone = backbone_fingerprint(backbone_dir)
    config = build_adapter_config(adapter_config, LANG_ADAPTER_CONFIG)
    model, _ = load_backbone(backbone_dir)
    adapters.init(model)
    seed_everything(seed)
    model.add_adapter(LANG_ADAPTER_NAME, config=config)
    with atomic_output_dir(out_dir) as tmp:
        save_language_adapter(model, tmp)
        write_json(
            tmp / "metadata.json",
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
                "init_sha256": sha256_file(tmp / ADAPTER_WEIGHTS),
                "versions": versions(),
                "created_utc": utc_now(),
            },
        )
    log.info("Wrote shared language-adapter init to %s", out_dir)
    return out_dir


# ----------------------------------------------------------------------------- training


def _mlm_loss(model, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MLM loss of a batch (a module-level function so tests can replace it)."""
    return mlm_loss(model, input_ids, labels)


def _texts(rows: list[dict]) -> list[str]:
    return [str(r.get("text") or "") for r in rows if str(r.get("text") or "").strip()]


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
    hp = resolve_hparams(LANGUAGE_HPARAMS, hparams, "language-adapter")
    for key in ("max_steps", "batch_size", "grad_accum", "block_size", "max_eval_blocks"):
        require_positive_int(hp, key)
    for key in ("eval_every", "checkpoint_every"):
        require_positive_int(hp, key, allow_zero=True)
    if hp["max_train_tokens"] is not None:
        require_positive_int(hp, "max_train_tokens")
    if not 0 < float(hp["mlm_probability"]) < 1:
        raise LangarithError(f"hparam mlm_probability={hp['mlm_probability']!r} must be in (0, 1).")
    init_dir, data_dir, out_dir = Path(init_dir), Path(data_dir), Path(out_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    started = time.perf_counter()

    backbone = backbone_fingerprint(backbone_dir)
    _check_adapter_dir(init_dir, "Language-adapter init")
    init_meta = (
        read_json(init_dir / "metadata.json", "Init metadata")
        if (init_dir / "metadata.json").exists()
        else {}
    )
    init_sha = sha256_file(init_dir / ADAPTER_WEIGHTS)
    if init_meta.get("init_sha256") and init_meta["init_sha256"] != init_sha:
        raise LangarithError(
            f"{init_dir / ADAPTER_WEIGHTS} does not match the init_sha256 in its metadata.json; "
            "the shared init was modified. Recreate it with `langarith train init`."
        )
    _check_same_backbone(init_meta, backbone, "Language-adapter init", init_dir)

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

    model, tokenizer = load_backbone(backbone_dir)
    import adapters

    adapters.init(model)
    load_language_adapter(model, init_dir)
    params = _freeze_all_but(model, LANG_ADAPTER_NAME)
    setup = device_and_dtype(bool(hp["fp16"]), bool(hp["bf16"]))
    model.to(setup.device)

    block_size = int(hp["block_size"])
    max_pos = int(model.config.max_position_embeddings)
    if model.config.model_type in ("xlm-roberta", "roberta"):
        max_pos -= int(model.config.pad_token_id) + 1
    if block_size > max_pos:
        raise LangarithError(
            f"hparam block_size={block_size} exceeds the backbone's {max_pos} positions; lower it."
        )
    start_id, end_id = special_ids(tokenizer)
    specials = sorted({start_id, end_id, int(tokenizer.pad_token_id or start_id)})
    packed = pack_blocks(
        tokenize_texts(tokenizer, train_texts),
        block_size=block_size,
        start_id=start_id,
        end_id=end_id,
        max_tokens=hp["max_train_tokens"],
    )
    if len(packed) == 0:
        raise LangarithError(
            f"Language {lang!r} has fewer text tokens than one block (block_size={block_size}, "
            f"max_train_tokens={hp['max_train_tokens']}); give more text or lower block_size."
        )
    valid = pack_blocks(
        tokenize_texts(tokenizer, valid_texts),
        block_size=block_size,
        start_id=start_id,
        end_id=end_id,
        max_blocks=int(hp["max_eval_blocks"]),
    )
    if len(valid) == 0:
        raise LangarithError(
            f"The validation split of {lang!r} is shorter than one block of {block_size} tokens."
        )
    log.info(
        "Language %s: %d train blocks (%d text tokens%s), %d validation blocks",
        lang,
        len(packed),
        packed.text_tokens,
        ", budget reached" if packed.budget_hit else "",
        len(valid),
    )

    mlm_p = float(hp["mlm_probability"])
    vocab = len(tokenizer)
    batch_size = int(hp["batch_size"])
    eval_bs = int(hp["eval_batch_size"] or batch_size)
    stream = EpochStream(len(packed), seed)
    # Fixed validation masks: every evaluation sees the same task, so losses compare.
    eval_inputs, eval_labels = mask_tokens(
        valid.blocks,
        mask_token_id=tokenizer.mask_token_id,
        vocab_size=vocab,
        special_ids=specials,
        probability=mlm_p,
        generator=seeded_generator(seed, "eval-mask"),
    )

    def micro_batch_loss(k: int) -> tuple[torch.Tensor, int]:
        ids = packed.blocks[stream.indices(k * batch_size, batch_size)]
        inputs, labels = mask_tokens(
            ids,
            mask_token_id=tokenizer.mask_token_id,
            vocab_size=vocab,
            special_ids=specials,
            probability=mlm_p,
            generator=seeded_generator(seed, "mask", k),
        )
        loss = _mlm_loss(model, inputs.to(setup.device), labels.to(setup.device))
        return loss, int(ids.shape[0] * (block_size - 2))

    def evaluate() -> dict[str, float]:
        total, count = 0.0, 0
        for i in range(0, len(eval_inputs), eval_bs):
            labels = eval_labels[i : i + eval_bs]
            n = int((labels != -100).sum())
            if n:
                loss = _mlm_loss(
                    model, eval_inputs[i : i + eval_bs].to(setup.device), labels.to(setup.device)
                )
                total += float(loss) * n
                count += n
        return {"loss": total / max(count, 1)}

    config_hash = sha256_json(
        {
            "kind": "language_adapter",
            "backbone": backbone["config_sha256"],
            "init_sha256": init_sha,
            "data": data_checksum(data_dir),
            "seed": seed,
            "hparams": hash_hparams(hp),
        }
    )
    cfg = LoopConfig(
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

    consumed = result.steps * cfg.grad_accum * batch_size
    if consumed >= len(packed):
        tokens_seen = packed.text_tokens
    else:  # first epoch only: the consumed blocks are distinct
        seen = packed.blocks[stream.indices(0, consumed), 1:-1]
        tokens_seen = int((seen != end_id).sum())

    load_state_into(params, result.best_state)
    model.to("cpu")
    with atomic_output_dir(out_dir) as tmp:
        save_language_adapter(model, tmp)
        write_json(
            tmp / "metadata.json",
            {
                "kind": "language_adapter",
                "language": lang,
                "adapter_name": LANG_ADAPTER_NAME,
                "backbone": backbone,
                "seed": seed,
                "init_dir": str(init_dir),
                "init_sha256": init_sha,
                "data": {
                    "dir": str(data_dir),
                    "checksum": data_checksum(data_dir),
                    "dataset": manifest.get("dataset"),
                },
                "hparams": hp,
                "steps": result.steps,
                "effective_batch_size": batch_size * cfg.grad_accum,
                "train_blocks": len(packed),
                "train_tokens": packed.text_tokens,
                "token_budget_reached": packed.budget_hit,
                "tokens_seen": tokens_seen,
                "tokens_processed": result.units_processed,
                "epochs": round(consumed / len(packed), 3),
                "best_val_loss": result.best_score,
                "best_step": result.best_step,
                "eval_history": result.history,
                "resumed_from_step": result.resumed_from_step,
                "train_seconds": round(result.train_seconds, 2),
                "wall_time_s": round(time.perf_counter() - started, 2),
                "weights_sha256": sha256_file(tmp / ADAPTER_WEIGHTS),
                "versions": versions(),
                "created_utc": utc_now(),
            },
        )
    remove_checkpoint(checkpoint_dir)
    log.info(
        "Language adapter %s seed %d: best val loss %.4f at step %d -> %s",
        lang,
        seed,
        result.best_score,
        result.best_step,
        out_dir,
    )
    return out_dir
