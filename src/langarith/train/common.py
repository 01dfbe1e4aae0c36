"""Pieces shared by backbone pre-training, language-adapter and task-adapter training.

Everything that decides *reproducibility* lives here, in one place:

* Randomness is derived, not carried: the data order of epoch ``e`` comes from
  ``derive_seed(seed, "order", e)``, the masks and dropout of micro-batch ``k`` from
  ``derive_seed(seed, ..., k)``. A run therefore needs nothing but the step counter to
  continue exactly where it stopped, which is what makes a resumed run end with
  bit-identical weights (on the same machine and device).
* :func:`run_training_loop` is the one plain PyTorch loop (gradient accumulation,
  AdamW, linear warm-up/decay, autocast + GradScaler on CUDA, evaluation, best-weights
  tracking, NaN guard and resumable checkpoints) that both adapter kinds use.
* Small I/O helpers fall back to private versions while the sibling modules
  (``langarith.io``, ``langarith.data``) are not there yet.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import random
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from langarith import LangarithError, __version__
from langarith.io import discarded_on_failure

log = logging.getLogger(__name__)

#: hparam keys that only steer *how* a run is executed, not *what* it computes; they are
#: left out of the checkpoint's config hash so that, e.g., a killed run restarted without
#: the test hook ``stop_after_steps`` still resumes.
VOLATILE_HPARAMS = frozenset({"stop_after_steps", "checkpoint_every", "eval_batch_size"})


class TrainingInterrupted(RuntimeError):
    """Raised by the ``stop_after_steps`` hook: simulates a run killed after a checkpoint."""


# ----------------------------------------------------------------------------- hashing


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    """Checksum of a file, used to tie every artifact to the exact inputs it was made from."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """Checksum of a JSON-able object in canonical form (sorted keys), for config hashes."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def derive_seed(seed: int, *parts: Any) -> int:
    """A 63-bit seed derived from ``seed`` and a purpose/counter.

    Deriving instead of drawing from one running generator means any micro-batch's
    randomness can be recreated from its index alone (exact resume), and changing how
    often something else draws random numbers cannot shift it.
    """
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1


def seeded_generator(seed: int, *parts: Any) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed`."""
    generator = torch.Generator()
    generator.manual_seed(derive_seed(seed, *parts))
    return generator


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- versions


def versions() -> dict[str, str]:
    """Versions of the libraries that shape the numbers, recorded in every metadata.json."""
    import adapters
    import tokenizers
    import transformers

    return {
        "python": platform.python_version(),
        "langarith": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "adapters": adapters.__version__,
        "tokenizers": tokenizers.__version__,
    }


def utc_now() -> str:
    """Current UTC time in ISO format, for ``created_utc`` fields."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def write_json(path: Path, obj: Any) -> None:
    """Write pretty, stable JSON (sorted keys) so metadata diffs are readable."""
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def read_json(path: Path, what: str) -> dict:
    """Read a JSON file, turning a missing/corrupt file into a LangarithError naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise LangarithError(f"{what} {path} does not exist.") from err
    except json.JSONDecodeError as err:
        raise LangarithError(f"{what} {path} is not valid JSON ({err}).") from err


# ----------------------------------------------------------------------------- atomic output


@contextlib.contextmanager
def _private_atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder and rename it to ``final`` on success."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def atomic_output_dir(final: Path | str) -> contextlib.AbstractContextManager[Path]:
    """``with atomic_output_dir(out) as tmp:`` write into ``tmp``; it becomes ``out`` at the end.

    Uses ``langarith.io.atomic_dir`` (the project-wide helper, same contract) when it
    exists, a private equivalent otherwise, so a failed rule never leaves a folder that
    looks finished.
    """
    try:
        from langarith.io import atomic_dir  # type: ignore[attr-defined]
    except ImportError:
        return _private_atomic_dir(Path(final))
    return atomic_dir(Path(final))


# ----------------------------------------------------------------------------- data access


def read_rows(data_dir: Path | str, split: str) -> list[dict]:
    """Rows of ``<data_dir>/<split>.jsonl`` (``langarith.data.read_split`` when available)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise LangarithError(f"Data folder {data_dir} does not exist; prepare the dataset first.")
    path = data_dir / f"{split}.jsonl"
    if not path.exists():
        present = sorted(p.stem for p in data_dir.glob("*.jsonl"))
        raise LangarithError(
            f"Split {split!r} is missing in {data_dir}: no {path.name}; "
            f"available splits: {present or 'none'}."
        )
    try:
        from langarith.data import read_split  # type: ignore[attr-defined]
    except ImportError:
        read_split = None
    if read_split is not None:
        return list(read_split(data_dir, split))
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise LangarithError(f"{path} line {number} is not valid JSON ({err}).") from err
    return rows


def read_data_manifest(data_dir: Path | str) -> dict:
    """The dataset folder's manifest.json, or ``{}`` (with a warning) when it has none."""
    data_dir = Path(data_dir)
    try:
        from langarith.data import read_manifest  # type: ignore[attr-defined]
    except ImportError:
        read_manifest = None
    path = data_dir / "manifest.json"
    if not path.exists():
        log.warning("%s has no manifest.json; checksums are computed from the files", data_dir)
        return {}
    if read_manifest is not None:
        return dict(read_manifest(data_dir))
    return read_json(path, "Dataset manifest")


def data_checksum(data_dir: Path | str, splits: tuple[str, ...] = ("train", "validation")) -> str:
    """The manifest's ``checksum`` (or a sha256 over the split files if there is none)."""
    data_dir = Path(data_dir)
    manifest = read_data_manifest(data_dir)
    if manifest.get("checksum"):
        return str(manifest["checksum"])
    parts = [
        f"{split}:{sha256_file(data_dir / f'{split}.jsonl')}"
        for split in splits
        if (data_dir / f"{split}.jsonl").exists()
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


# ----------------------------------------------------------------------------- hparams


def resolve_hparams(
    defaults: Mapping[str, Any], given: Mapping[str, Any] | None, what: str
) -> dict:
    """Defaults overlaid with ``given``; unknown keys are an error (typos must not pass)."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise LangarithError(
            f"Unknown {what} hparam(s) {unknown}; allowed keys are {sorted(defaults)}."
        )
    resolved = dict(defaults)
    for key, value in given.items():
        if isinstance(defaults[key], Mapping) and isinstance(value, Mapping):
            resolved[key] = {**defaults[key], **value}
        else:
            resolved[key] = value
    return resolved


def require_positive_int(hparams: Mapping[str, Any], key: str, *, allow_zero: bool = False) -> int:
    """Validate an integer hparam so a bad config fails before a long run starts."""
    value = hparams[key]
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise LangarithError(f"hparam {key}={value!r} must be an integer >= {low}.")
    return value


def hash_hparams(hparams: Mapping[str, Any]) -> dict:
    """The hparams that determine the result (``VOLATILE_HPARAMS`` removed)."""
    return {k: v for k, v in hparams.items() if k not in VOLATILE_HPARAMS}


# ----------------------------------------------------------------------------- devices


@dataclass(frozen=True)
class DeviceSetup:
    """Where to run and which mixed precision to use.

    ``autocast_dtype`` is ``None`` for plain fp32. ``use_scaler`` is only true for fp16
    on CUDA, where a GradScaler keeps small gradients from underflowing.
    """

    device: torch.device
    autocast_dtype: torch.dtype | None
    use_scaler: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of this setup (a no-op context for fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler that is enabled only when it is needed (fp16 on CUDA)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.use_scaler)


def device_and_dtype(fp16: bool = False, bf16: bool = False) -> DeviceSetup:
    """CUDA with autocast (fp16 + GradScaler, or bf16) when available; fp32 CPU otherwise.

    Half precision on CPU is not used even if asked for: CPU autocast is slow and changes
    the numbers, and the configs ask for fp16 because the papers trained on GPUs.
    """
    if fp16 and bf16:
        raise LangarithError("fp16 and bf16 are both true; choose at most one of them.")
    if torch.cuda.is_available():
        device = torch.device("cuda")
        if fp16:
            return DeviceSetup(device, torch.float16, True)
        if bf16:
            if not torch.cuda.is_bf16_supported():
                raise LangarithError("bf16=true but this GPU has no bf16 support; use fp16.")
            return DeviceSetup(device, torch.bfloat16, False)
        return DeviceSetup(device, None, False)
    if fp16 or bf16:
        log.info(
            "%s requested but CUDA is not available: running fp32 on CPU",
            "fp16" if fp16 else "bf16",
        )
    return DeviceSetup(torch.device("cpu"), None, False)


# ----------------------------------------------------------------------------- batches


class EpochStream:
    """Maps a global example position to an example index, epoch by epoch.

    Position ``p`` lies in epoch ``p // n``; each epoch is a permutation drawn from
    ``(seed, "order", epoch)``. Batches may straddle epochs. No state beyond the seed is
    needed, so resuming at micro-batch ``k`` reproduces the same order.
    """

    def __init__(self, n: int, seed: int, *, salt: str = "order") -> None:
        if n <= 0:
            raise LangarithError("There are no training examples to draw batches from.")
        self.n = n
        self.seed = seed
        self.salt = salt
        self._cache: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._cache:
            if len(self._cache) > 2:
                self._cache.pop(min(self._cache))
            generator = seeded_generator(self.seed, self.salt, epoch)
            self._cache[epoch] = torch.randperm(self.n, generator=generator)
        return self._cache[epoch]

    def indices(self, start: int, count: int) -> list[int]:
        """Example indices at stream positions ``start .. start + count - 1``."""
        return [int(self._perm(p // self.n)[p % self.n]) for p in range(start, start + count)]


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    special_ids: list[int],
    probability: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style masking (80% [MASK], 10% random token, 10% kept) with an explicit generator.

    An explicit generator (instead of the global RNG that DataCollatorForLanguageModeling
    uses) lets every micro-batch's masks be recreated from its seed alone.
    """
    labels = input_ids.clone()
    inputs = input_ids.clone()
    probs = torch.full(labels.shape, probability)
    special = torch.zeros_like(labels, dtype=torch.bool)
    for token_id in special_ids:
        special |= labels == token_id
    probs.masked_fill_(special, 0.0)
    masked = torch.bernoulli(probs, generator=generator).bool()
    labels[~masked] = -100
    replace = torch.bernoulli(torch.full(labels.shape, 0.8), generator=generator).bool() & masked
    inputs[replace] = mask_token_id
    randomize = (
        torch.bernoulli(torch.full(labels.shape, 0.5), generator=generator).bool()
        & masked
        & ~replace
    )
    random_words = torch.randint(vocab_size, labels.shape, generator=generator, dtype=torch.long)
    inputs[randomize] = random_words[randomize]
    return inputs, labels


# ----------------------------------------------------------------------------- checkpoints


def _rng_states() -> tuple[dict, dict[str, torch.Tensor]]:
    """(JSON-able python/numpy states, tensor states) of the global generators."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    json_part = {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [np_state[0], np_state[1].tolist(), *[float(x) for x in np_state[2:]]],
    }
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{index}"] = state
    return json_part, tensors


def _set_rng_states(json_part: dict, tensors: Mapping[str, torch.Tensor]) -> None:
    version, state, gauss = json_part["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, pos, has_gauss, cached = json_part["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), cached))
    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda")]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


@dataclass
class LoopState:
    """Everything the loop needs to continue; saved in checkpoints."""

    step: int = 0
    best_score: float | None = None
    best_step: int | None = None
    history: list[dict] = field(default_factory=list)
    units_processed: int = 0
    train_seconds: float = 0.0


def save_checkpoint(
    checkpoint_dir: Path,
    *,
    config_hash: str,
    state: LoopState,
    trainable: Mapping[str, torch.Tensor],
    best: Mapping[str, torch.Tensor] | None,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
) -> None:
    """Write a checkpoint folder atomically (temp sibling, then swap).

    Weights go to safetensors and the optimizer/scheduler/RNG tensors to a torch file
    that is read back with ``weights_only=True``, so loading never runs pickled code.
    """
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = checkpoint_dir.parent / f".{checkpoint_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    with discarded_on_failure(tmp, checkpoint_dir):
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in trainable.items()},
            tmp / "weights.safetensors",
        )
        if best is not None:
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in best.items()},
                tmp / "best.safetensors",
            )
        rng_json, rng_tensors = _rng_states()
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_tensors,
            },
            tmp / "optim.pt",
        )
        write_json(
            tmp / "state.json",
            {
                "config_hash": config_hash,
                "step": state.step,
                "best_score": state.best_score,
                "best_step": state.best_step,
                "history": state.history,
                "units_processed": state.units_processed,
                "train_seconds": state.train_seconds,
                "rng": rng_json,
                "created_utc": utc_now(),
            },
        )
    old = checkpoint_dir.parent / f".{checkpoint_dir.name}.old"
    if checkpoint_dir.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(checkpoint_dir, old)
    os.replace(tmp, checkpoint_dir)
    shutil.rmtree(old, ignore_errors=True)


def _existing_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The checkpoint folder, or its ``.old`` twin if a crash hit between the two renames."""
    for candidate in (checkpoint_dir, checkpoint_dir.parent / f".{checkpoint_dir.name}.old"):
        if (candidate / "state.json").exists():
            return candidate
    return None


def remove_checkpoint(checkpoint_dir: Path | None) -> None:
    """Delete a finished run's checkpoint (and any leftovers of an interrupted swap)."""
    if checkpoint_dir is None:
        return
    checkpoint_dir = Path(checkpoint_dir).absolute()
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    shutil.rmtree(checkpoint_dir.parent / f".{checkpoint_dir.name}.old", ignore_errors=True)
    # Half-written checkpoints of a process killed (SIGKILL, OOM) inside save_checkpoint.
    if checkpoint_dir.parent.is_dir():
        for partial in checkpoint_dir.parent.iterdir():
            if partial.name.startswith(f".{checkpoint_dir.name}.tmp-"):
                shutil.rmtree(partial, ignore_errors=True)
    # Tidy now-empty parents, but only inside a ``.checkpoints`` tree (never above it).
    roots = [p for p in checkpoint_dir.parents if p.name == ".checkpoints"]
    if not roots:
        return
    with contextlib.suppress(OSError):
        parent = checkpoint_dir.parent
        while parent != roots[0] and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


# ----------------------------------------------------------------------------- the loop


@dataclass
class LoopConfig:
    """Settings of :func:`run_training_loop` (resolved from a stage's hparams)."""

    seed: int
    max_steps: int
    grad_accum: int = 1
    lr: float = 1e-4
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    eval_every: int = 0
    checkpoint_every: int = 0
    stop_after_steps: int | None = None
    higher_is_better: bool = False
    metric: str = "loss"
    unit: str = "tok"
    desc: str = "train"


@dataclass
class LoopResult:
    """What the loop hands back: best weights and the numbers for metadata.json."""

    best_state: dict[str, torch.Tensor]
    best_score: float
    best_step: int
    steps: int
    history: list[dict]
    units_processed: int
    train_seconds: float
    resumed_from_step: int | None


def resolve_warmup(hparams: Mapping[str, Any], max_steps: int) -> int:
    """Warm-up steps from ``warmup_steps`` (a count) or ``warmup_ratio`` (of max_steps).

    Two names instead of one overloaded value, as in transformers' TrainingArguments,
    so ``1`` can never be misread as "100%".
    """
    steps = hparams.get("warmup_steps") or 0
    ratio = hparams.get("warmup_ratio") or 0.0
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise LangarithError(f"hparam warmup_steps={steps!r} must be an integer >= 0.")
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio < 1:
        raise LangarithError(f"hparam warmup_ratio={ratio!r} must be a number in [0, 1).")
    if steps and ratio:
        raise LangarithError(
            f"hparams warmup_steps={steps} and warmup_ratio={ratio} are both set; use one."
        )
    return int(steps) if steps else int(round(ratio * max_steps))


def _assert_finite(loss: torch.Tensor, step: int, what: str) -> None:
    if not torch.isfinite(loss.detach()).all():
        raise LangarithError(
            f"{what}: the loss became {float(loss.detach()):.4g} at step {step}; training "
            "diverged (lower lr, use fp32, or check the data). No output was written."
        )


def run_training_loop(
    model: torch.nn.Module,
    params: Mapping[str, torch.nn.Parameter],
    micro_batch_loss: Callable[[int], tuple[torch.Tensor, int]],
    evaluate: Callable[[], dict[str, float]],
    cfg: LoopConfig,
    *,
    setup: DeviceSetup,
    checkpoint_dir: Path | None,
    config_hash: str,
) -> LoopResult:
    """Train ``params`` for ``cfg.max_steps`` optimizer steps and return the best weights.

    ``micro_batch_loss(k)`` builds micro-batch ``k`` (a global counter; step ``s`` uses
    ``k = s*grad_accum .. s*grad_accum + grad_accum - 1``), runs the forward pass and
    returns ``(loss, units)`` (units: tokens or examples, for throughput and counting).
    It is called under autocast, after the global torch RNG was seeded from
    ``(seed, "dropout", k)``, so dropout is a function of ``k`` too.

    ``evaluate()`` runs in eval mode and returns metrics; ``cfg.metric`` picks the one
    that selects the best weights. Evaluation happens every ``eval_every`` steps and at
    the last step. Checkpoints are written every ``checkpoint_every`` steps (not at the
    last step: the caller writes the output and then deletes the checkpoint).
    """
    names = list(params)
    no_decay_names = {n for n in names if n.endswith("bias") or "LayerNorm" in n or "_ln" in n}
    decay = [params[n] for n in names if n not in no_decay_names]
    no_decay = [params[n] for n in names if n in no_decay_names]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
    )
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, cfg.warmup_steps, cfg.max_steps)
    scaler = setup.grad_scaler()
    state = LoopState()
    best_state: dict[str, torch.Tensor] | None = None
    resumed_from: int | None = None

    if checkpoint_dir is not None:
        found = _existing_checkpoint(Path(checkpoint_dir))
        if found is not None:
            saved = read_json(found / "state.json", "Checkpoint state")
            if saved.get("config_hash") != config_hash:
                log.warning(
                    "Checkpoint %s was made with other inputs/hparams; starting fresh", found
                )
                remove_checkpoint(Path(checkpoint_dir))
            else:
                weights = load_file(found / "weights.safetensors")
                with torch.no_grad():
                    for name in names:
                        params[name].copy_(weights[name].to(params[name].device))
                if (found / "best.safetensors").exists():
                    best_state = load_file(found / "best.safetensors")
                blobs = torch.load(found / "optim.pt", map_location="cpu", weights_only=True)
                optimizer.load_state_dict(blobs["optimizer"])
                scheduler.load_state_dict(blobs["scheduler"])
                scaler.load_state_dict(blobs["scaler"])
                _set_rng_states(saved["rng"], blobs["rng"])
                state = LoopState(
                    step=saved["step"],
                    best_score=saved["best_score"],
                    best_step=saved["best_step"],
                    history=saved["history"],
                    units_processed=saved["units_processed"],
                    train_seconds=saved["train_seconds"],
                )
                resumed_from = state.step
                log.info("Resuming %s from checkpoint at step %d", cfg.desc, state.step)

    better = (lambda a, b: a > b) if cfg.higher_is_better else (lambda a, b: a < b)
    model.train()
    bar = tqdm(
        total=cfg.max_steps, initial=state.step, desc=cfg.desc, dynamic_ncols=True, mininterval=1.0
    )
    running: float | None = None
    started = time.perf_counter()
    window_units, window_start = 0, time.perf_counter()
    try:
        while state.step < cfg.max_steps:
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for micro in range(cfg.grad_accum):
                k = state.step * cfg.grad_accum + micro
                torch.manual_seed(derive_seed(cfg.seed, "dropout", k))
                with setup.autocast():
                    loss, units = micro_batch_loss(k)
                _assert_finite(loss, state.step + 1, cfg.desc)
                scaler.scale(loss / cfg.grad_accum).backward()
                step_loss += float(loss.detach()) / cfg.grad_accum
                state.units_processed += units
                window_units += units
            if cfg.max_grad_norm:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            state.step += 1
            running = step_loss if running is None else 0.9 * running + 0.1 * step_loss
            now = time.perf_counter()
            speed = window_units / max(now - window_start, 1e-9)
            bar.set_postfix(loss=f"{running:.4f}", **{f"{cfg.unit}/s": f"{speed:.0f}"})
            bar.update(1)
            if now - window_start > 10:
                window_units, window_start = 0, now

            last = state.step == cfg.max_steps
            if last or (cfg.eval_every and state.step % cfg.eval_every == 0):
                model.eval()
                with torch.no_grad(), setup.autocast():
                    metrics = evaluate()
                model.train()
                score = float(metrics[cfg.metric])
                if not math.isfinite(score):
                    raise LangarithError(
                        f"{cfg.desc}: validation {cfg.metric} is {score} at step {state.step}; "
                        "training diverged. No output was written."
                    )
                state.history.append({"step": state.step, "train_loss": step_loss, **metrics})
                log.info("%s step %d: %s", cfg.desc, state.step, metrics)
                if state.best_score is None or better(score, state.best_score):
                    state.best_score, state.best_step = score, state.step
                    best_state = {n: p.detach().cpu().clone() for n, p in params.items()}
            if (
                checkpoint_dir is not None
                and cfg.checkpoint_every
                and not last
                and state.step % cfg.checkpoint_every == 0
            ):
                elapsed = time.perf_counter() - started
                state.train_seconds += elapsed
                started = time.perf_counter()
                save_checkpoint(
                    Path(checkpoint_dir),
                    config_hash=config_hash,
                    state=state,
                    trainable={n: p for n, p in params.items()},
                    best=best_state,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    scaler=scaler,
                )
            if cfg.stop_after_steps is not None and state.step >= cfg.stop_after_steps and not last:
                raise TrainingInterrupted(f"stop_after_steps={cfg.stop_after_steps} reached")
    finally:
        bar.close()
    state.train_seconds += time.perf_counter() - started
    assert best_state is not None and state.best_score is not None and state.best_step is not None
    return LoopResult(
        best_state=best_state,
        best_score=state.best_score,
        best_step=state.best_step,
        steps=state.step,
        history=state.history,
        units_processed=state.units_processed,
        train_seconds=state.train_seconds,
        resumed_from_step=resumed_from,
    )


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """Named parameters with ``requires_grad`` (what the optimizer and checkpoints cover)."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def load_state_into(
    params: Mapping[str, torch.nn.Parameter], state: Mapping[str, torch.Tensor]
) -> None:
    """Copy saved tensors into live parameters (used to install the best weights)."""
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(state[name].to(param.device))
