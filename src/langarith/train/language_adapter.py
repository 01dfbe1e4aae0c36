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

import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adapters
import numpy as np
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
from langarith.train.tokens import tokenize_corpus, tokenizer_checksum
from langarith.training.blocks import BlockOrder, TokenBlocks, budget_prefix
from langarith.training.checkpoints import check_checkpoint_dir, remove_checkpoint
from langarith.training.hparams import hash_hparams
from langarith.training.inputs import data_checksum, read_data_manifest
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
from langarith.training.mlm import MlmObjective, mlm_loss, special_ids
from langarith.training.seeding import seed_everything
from langarith.training.token_files import open_token_split, read_token_metadata

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


@dataclass
class _Corpus:
    """One language's Wikipedia folder and its token folder (already verified to match
    the data's checksum when the blocks are opened)."""

    data_dir: Path
    manifest: dict
    lang: str
    tokens_dir: Path


@contextlib.contextmanager
def _token_folder(
    backbone_dir: Path | str, data_dir: Path, tokens_dir: Path | None
) -> Iterator[Path]:
    """The token folder of the rule, or (called without one: tests, the CLI) one built
    into a temporary folder that is removed afterwards."""
    if tokens_dir is not None:
        yield tokens_dir
        return
    with tempfile.TemporaryDirectory(prefix="langarith-tokens-") as tmp:
        yield tokenize_corpus(backbone_dir, data_dir, Path(tmp) / "tokens")


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


@dataclass
class _Blocks:
    """Training blocks (a prefix of the train token file under a budget) and the fixed
    validation blocks; ``words`` is the whitespace-token count the train blocks come from."""

    train: TokenBlocks
    valid: torch.Tensor
    words: int
    budget_hit: bool
    tokens_sha256: str


def _open_blocks(
    corpus: _Corpus, backbone_dir: Path | str, tokenizer, hp: dict[str, Any], max_pos: int
) -> _Blocks:
    """Blocks from the memory-mapped token folder after checking it was made by this
    backbone's tokenizer from this corpus and is complete.

    A budget (``max_train_tokens``, whitespace tokens as in the papers) takes a prefix of
    the train file; validation is the first ``max_eval_blocks`` blocks of the held-out
    documents, the same blocks at every evaluation.
    """
    block_size = int(hp["block_size"])
    if block_size > max_pos:
        raise LangarithError(
            f"hparam block_size={block_size} exceeds the backbone's {max_pos} positions; lower it."
        )
    start_id, end_id = special_ids(tokenizer)
    checks = {
        "tokenizer_sha256": tokenizer_checksum(backbone_dir),
        "corpus_checksum": data_checksum(corpus.data_dir),
    }
    split = open_token_split(corpus.tokens_dir, "train", **checks)
    budget = hp["max_train_tokens"]
    length = budget_prefix(split, int(budget)) if budget is not None else split.tokens
    train = TokenBlocks(split, block_size, start_id, end_id, length)
    if len(train) == 0:
        raise LangarithError(
            f"Language {corpus.lang!r} has fewer text tokens than one block (block_size="
            f"{block_size}, max_train_tokens={budget}); give more text or lower block_size."
        )
    valid_split = open_token_split(corpus.tokens_dir, "validation", **checks)
    valid_blocks = TokenBlocks(valid_split, block_size, start_id, end_id, valid_split.tokens)
    n_eval = min(int(hp["max_eval_blocks"]), len(valid_blocks))
    if n_eval == 0:
        raise LangarithError(
            f"The validation split of {corpus.lang!r} is shorter than one block of "
            f"{block_size} tokens."
        )
    meta = read_token_metadata(corpus.tokens_dir)
    words = int(budget) if budget is not None else int(meta["splits"]["train"]["words"])
    log.info(
        "Language %s: %d train blocks (%d whitespace tokens%s), %d validation blocks",
        *(corpus.lang, len(train), words, ", token budget" if budget else "", n_eval),
    )
    return _Blocks(
        train,
        valid_blocks.take(np.arange(n_eval)),
        words,
        budget is not None,
        str(meta["splits"]["train"]["files"]["ids"]["sha256"]),
    )


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
        max_nonfinite_in_row=int(hp["max_nonfinite_in_row"]),
        higher_is_better=False,
        metric="loss",
        unit="tok",
        desc=f"lang {lang} seed {seed}",
    )


def _run_mlm(
    model,
    tokenizer,
    params: dict[str, torch.nn.Parameter],
    blocks: _Blocks,
    *,
    hp: dict[str, Any],
    seed: int,
    setup: DeviceSetup,
    cfg: LoopConfig,
    checkpoint_dir: Path | None,
    config_hash: str,
) -> tuple[LoopResult, BlockOrder]:
    """MLM training of the adapter on the token-file blocks through the shared loop.

    Returns the loop result and the data order (to count the tokens actually seen).
    """
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
    stream = BlockOrder(len(blocks.train), seed)
    # Fixed validation masks: every evaluation sees the same task, so losses compare.
    evaluate = objective.evaluator(model, blocks.valid, int(hp["eval_batch_size"] or batch_size))

    def micro_batch_loss(k: int) -> tuple[torch.Tensor, int]:
        ids = blocks.train.take(stream.indices(k * batch_size, batch_size))
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


def _config_hash(
    backbone: dict, init_sha: str, data_dir: Path, tokens_sha: str, seed: int, hp: dict
) -> str:
    """What decides the result; a checkpoint made with another hash is not resumed."""
    return sha256_json(
        {
            "kind": "language_adapter",
            "backbone": backbone["config_sha256"],
            "init_sha256": init_sha,
            "data": data_checksum(data_dir),
            "tokens": tokens_sha,
            "seed": seed,
            "hparams": hash_hparams(hp),
        }
    )


#: Stream positions per step of the coverage count (bounded memory).
_COVERAGE_CHUNK = 1 << 20


def _coverage(train: TokenBlocks, stream: BlockOrder, consumed: int) -> dict[str, Any]:
    """How much of the data ``consumed`` training blocks covered: ``epochs`` and the
    distinct text tokens seen (all after a full epoch, else those of the blocks of the
    first, partial epoch, counted chunk by chunk)."""
    if consumed >= len(train):
        tokens_seen = train.text_tokens()
    else:
        tokens_seen = sum(
            train.text_tokens(stream.indices(lo, min(_COVERAGE_CHUNK, consumed - lo)))
            for lo in range(0, consumed, _COVERAGE_CHUNK)
        )
    return {"tokens_seen": tokens_seen, "epochs": round(consumed / len(train), 3)}


def train_language_adapter(
    backbone_dir: Path | str,
    init_dir: Path | str,
    data_dir: Path | str,
    out_dir: Path | str,
    *,
    seed: int,
    hparams: dict[str, Any] | None = None,
    checkpoint_dir: Path | str | None = None,
    tokens_dir: Path | str | None = None,
) -> Path:
    """Train one language adapter with MLM on the corpus in ``data_dir``, from θ_init.

    The text comes from ``tokens_dir``, the corpus's token folder for this backbone (the
    tokens stage; without one it is built into a temporary folder first): fixed
    ``block_size`` blocks are cut from the memory-mapped stream (a whitespace-token
    prefix under ``max_train_tokens``), so memory does not grow with the corpus. The best
    weights by validation MLM loss are saved to ``out_dir`` (AdapterHub folder +
    metadata.json). ``seed`` fixes data order, masks and dropout. With ``checkpoint_dir``
    the run is resumable and a resumed run ends with exactly the weights of an
    uninterrupted one; the checkpoint is deleted on success.
    """
    hp = _language_hparams(hparams)
    init_dir, data_dir, out_dir = Path(init_dir), Path(data_dir), Path(out_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    started = time.perf_counter()
    inputs = [Path(backbone_dir), init_dir, data_dir, *[Path(d) for d in [tokens_dir] if d]]
    check_replaceable(out_dir, LANGUAGE_OUTPUT, [*inputs, *[d for d in [checkpoint_dir] if d]])
    check_checkpoint_dir(checkpoint_dir, [*inputs, out_dir])

    backbone = backbone_fingerprint(backbone_dir)
    init_sha = _verified_init(init_dir, backbone)
    manifest = read_data_manifest(data_dir)
    lang = str(manifest.get("language", data_dir.name))
    with _token_folder(backbone_dir, data_dir, Path(tokens_dir) if tokens_dir else None) as tok:
        corpus = _Corpus(data_dir, manifest, lang, tok)
        model, tokenizer, params, setup = _language_model(backbone_dir, init_dir, hp)
        blocks = _open_blocks(corpus, backbone_dir, tokenizer, hp, _usable_positions(model.config))
        cfg = _loop_config(hp, seed, corpus.lang)
        config_hash = _config_hash(backbone, init_sha, data_dir, blocks.tokens_sha256, seed, hp)
        result, stream = _run_mlm(
            model,
            tokenizer,
            params,
            blocks,
            hp=hp,
            seed=seed,
            setup=setup,
            cfg=cfg,
            checkpoint_dir=checkpoint_dir,
            config_hash=config_hash,
        )
        consumed = result.steps * cfg.grad_accum * int(hp["batch_size"])
        coverage = _coverage(blocks.train, stream, consumed)
        train_tokens = blocks.train.text_tokens()

    load_state_into(params, result.best_state)
    model.to("cpu")
    with atomic_dir(out_dir, LANGUAGE_OUTPUT, inputs) as tmp:
        save_language_adapter(model, tmp)
        meta = _metadata(corpus, backbone, seed, init_dir, init_sha, hp, result, blocks)
        meta.update(
            coverage,
            train_tokens=train_tokens,
            nonfinite_steps=result.nonfinite_steps,
            wall_time_s=round(time.perf_counter() - started, 2),
        )
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
    blocks: _Blocks,
) -> dict[str, Any]:
    """metadata.json of a language adapter: inputs with checksums, settings and the run
    (the caller adds what is known only once the weights are written).

    ``train_words`` is the training text in whitespace tokens (the budget's unit),
    ``train_tokens`` the sub-word text tokens of the train blocks.
    """
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
        "tokens": {"dir": str(corpus.tokens_dir), "ids_sha256": blocks.tokens_sha256},
        "hparams": hp,
        "steps": result.steps,
        "effective_batch_size": int(hp["batch_size"]) * int(hp["grad_accum"]),
        "train_blocks": len(blocks.train),
        "train_words": blocks.words,
        "token_budget_reached": blocks.budget_hit,
        "eval_blocks": int(blocks.valid.shape[0]),
        "tokens_processed": result.units_processed,
        "best_val_loss": result.best_score,
        "best_step": result.best_step,
        "eval_history": result.history,
        "resumed_from_step": result.resumed_from_step,
        "train_seconds": round(result.train_seconds, 2),
        "versions": versions(),
        "created_utc": utc_now(),
    }
