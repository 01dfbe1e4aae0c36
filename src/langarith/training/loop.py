"""The one training loop, shared by backbone pre-training and both adapter kinds.

Plain PyTorch: gradient accumulation, AdamW, linear warm-up/decay, autocast + GradScaler
on CUDA, periodic evaluation, best-weights tracking, a NaN guard and resumable
checkpoints. Everything random in it is derived from the seed and the micro-batch
counter (:mod:`langarith.training.seeding`), so a resumed run is exact.

The NaN guard depends on the precision. In fp32 a non-finite loss means the run has
diverged, and the first one stops it. Under fp16/bf16 autocast an overflow in one batch
is an accident of the number format, not a verdict on the run: the step is skipped as
``torch.amp.GradScaler`` skips a step with non-finite gradients (no optimizer or
scheduler update; with a scaler, the scale is backed off), counted, logged and
recorded (``LoopResult.nonfinite_steps``, and ``nonfinite_steps`` in each evaluation's
history entry); only ``max_nonfinite_in_row`` skipped steps in a row stop the run, as
the authors' Trainer-based scripts would keep going where the first one stopped ours.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from langarith import LangarithError
from langarith.training.checkpoints import (
    LoopState,
    Optimization,
    find_checkpoint,
    read_checkpoint_state,
    restore_checkpoint,
    save_checkpoint,
)
from langarith.training.seeding import derive_seed

__all__ = [
    "DeviceSetup",
    "LoopConfig",
    "LoopResult",
    "TrainingInterrupted",
    "device_and_dtype",
    "load_state_into",
    "resolve_warmup",
    "run_training_loop",
    "trainable_parameters",
]

log = logging.getLogger(__name__)

#: Step numbers of skipped steps kept in the state (the count is always exact).
SKIPPED_STEPS_KEPT = 1000

#: ``micro_batch_loss(k)`` → (loss, units): builds micro-batch ``k`` and runs the forward pass.
MicroBatchLoss = Callable[[int], tuple[torch.Tensor, int]]
#: ``evaluate()`` → metrics, run in eval mode without gradients.
Evaluate = Callable[[], dict[str, float]]


class TrainingInterrupted(RuntimeError):
    """Raised by the ``stop_after_steps`` hook: simulates a run killed after a checkpoint."""


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


# ----------------------------------------------------------------------------- settings


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
    max_nonfinite_in_row: int = 100
    #: stop once this many validations in a row bring no better score (None: never)
    early_stopping_patience: int | None = None


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
    nonfinite_steps: int = 0
    skipped_steps: list[int] = field(default_factory=list)
    stopped_early: bool = False


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


# ----------------------------------------------------------------------------- parameters


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


def _make_optimization(
    params: Mapping[str, torch.nn.Parameter], cfg: LoopConfig, setup: DeviceSetup
) -> Optimization:
    """AdamW without weight decay on biases and layer norms, linear warm-up then decay."""
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
    scheduler = get_linear_schedule_with_warmup(optimizer, cfg.warmup_steps, cfg.max_steps)
    return Optimization(optimizer, scheduler, setup.grad_scaler())


# ----------------------------------------------------------------------------- the loop


@dataclass
class _Run:
    """One run of the loop: the live objects and the counters that change every step."""

    model: torch.nn.Module
    params: Mapping[str, torch.nn.Parameter]
    cfg: LoopConfig
    setup: DeviceSetup
    optimization: Optimization
    state: LoopState
    best_state: dict[str, torch.Tensor] | None = None
    resumed_from: int | None = None

    def resume(self, checkpoint_dir: Path | None, config_hash: str) -> None:
        """Continue from a checkpoint made with the same inputs; discard one made with others."""
        if checkpoint_dir is None:
            return
        found = find_checkpoint(Path(checkpoint_dir))
        if found is None:
            return
        saved = read_checkpoint_state(found)
        if saved.get("config_hash") != config_hash:
            log.warning(
                "Checkpoint %s was made with other inputs/hparams; starting fresh. It is kept "
                "until this run writes its first checkpoint, which replaces it",
                found,
            )
            return
        self.state, self.best_state = restore_checkpoint(
            found, saved, self.params, self.optimization
        )
        self.resumed_from = self.state.step
        log.info("Resuming %s from checkpoint at step %d", self.cfg.desc, self.state.step)

    def train_step(self, micro_batch_loss: MicroBatchLoss) -> tuple[float | None, int]:
        """One optimizer step over ``grad_accum`` micro-batches; returns (mean loss, units).

        The global torch RNG is seeded from ``(seed, "dropout", k)`` before micro-batch
        ``k``, so dropout is a function of ``k`` and survives a resume. Under mixed
        precision a non-finite loss (or, without a scaler, gradient norm) skips the step:
        the loss is ``None`` and no units count.
        """
        cfg, opt = self.cfg, self.optimization
        opt.optimizer.zero_grad(set_to_none=True)
        step_loss, step_units = 0.0, 0
        for micro in range(cfg.grad_accum):
            k = self.state.step * cfg.grad_accum + micro
            torch.manual_seed(derive_seed(cfg.seed, "dropout", k))
            with self.setup.autocast():
                loss, units = micro_batch_loss(k)
            if not _finite(loss):
                if self.setup.autocast_dtype is None:
                    _stop_diverged(loss, self.state.step + 1, cfg.desc)
                return self._skip(f"loss {float(loss.detach()):.4g}"), 0
            opt.scaler.scale(loss / cfg.grad_accum).backward()
            step_loss += float(loss.detach()) / cfg.grad_accum
            step_units += units
        if cfg.max_grad_norm:
            opt.scaler.unscale_(opt.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(list(self.params.values()), cfg.max_grad_norm)
            # with a scaler, scaler.step below skips a non-finite step itself
            mixed_unscaled = self.setup.autocast_dtype is not None and not opt.scaler.is_enabled()
            if mixed_unscaled and not _finite(norm):
                return self._skip(f"gradient norm {float(norm):.4g}"), 0
        opt.scaler.step(opt.optimizer)
        opt.scaler.update()
        opt.scheduler.step()
        self.state.step += 1
        self.state.units_processed += step_units
        self.state.nonfinite_in_row = 0
        return step_loss, step_units

    def _skip(self, what: str) -> None:
        """Skip the current step as GradScaler skips one: gradients dropped, no optimizer
        or scheduler update, the scale backed off; counted, and fatal only after
        ``max_nonfinite_in_row`` in a row."""
        cfg, state, opt = self.cfg, self.state, self.optimization
        opt.optimizer.zero_grad(set_to_none=True)
        if opt.scaler.is_enabled():
            opt.scaler.update(opt.scaler.get_scale() * opt.scaler.get_backoff_factor())
        state.step += 1
        state.nonfinite_steps += 1
        state.nonfinite_in_row += 1
        if len(state.skipped_steps) < SKIPPED_STEPS_KEPT:
            state.skipped_steps.append(state.step)
        log.warning(
            "%s step %d: non-finite %s under %s autocast; step skipped (%d in a row, %d in all)",
            cfg.desc,
            state.step,
            what,
            self.setup.autocast_dtype,
            state.nonfinite_in_row,
            state.nonfinite_steps,
        )
        if state.nonfinite_in_row >= cfg.max_nonfinite_in_row:
            raise LangarithError(
                f"{cfg.desc}: {state.nonfinite_in_row} non-finite losses in a row (steps "
                f"{state.step - state.nonfinite_in_row + 1}-{state.step}, "
                f"max_nonfinite_in_row={cfg.max_nonfinite_in_row}); training diverged (lower "
                "lr, use bf16 or fp32, or check the data). No output was written."
            )
        return None

    def evaluate(self, evaluate: Evaluate, step_loss: float | None) -> None:
        """Validate, record the metrics and keep a copy of the weights if they are the best."""
        cfg, state = self.cfg, self.state
        self.model.eval()
        with torch.no_grad(), self.setup.autocast():
            metrics = evaluate()
        self.model.train()
        score = float(metrics[cfg.metric])
        if not math.isfinite(score):
            raise LangarithError(
                f"{cfg.desc}: validation {cfg.metric} is {score} at step {state.step}; "
                "training diverged. No output was written."
            )
        state.history.append(
            {
                "step": state.step,
                "train_loss": step_loss,
                "nonfinite_steps": state.nonfinite_steps,
                **metrics,
            }
        )
        log.info("%s step %d: %s", cfg.desc, state.step, metrics)
        if state.best_score is None or _is_better(score, state.best_score, cfg.higher_is_better):
            state.best_score, state.best_step = score, state.step
            self.best_state = {n: p.detach().cpu().clone() for n, p in self.params.items()}

    def patience_used_up(self) -> bool:
        """Whether the last ``early_stopping_patience`` validations all failed to beat the
        best; counted from the history, so a resumed run stops where the original would."""
        patience, state = self.cfg.early_stopping_patience, self.state
        if not patience or state.best_step is None:
            return False
        return sum(1 for entry in state.history if entry["step"] > state.best_step) >= patience

    def save(self, checkpoint_dir: Path, config_hash: str) -> None:
        """Write the checkpoint of the current step."""
        save_checkpoint(
            checkpoint_dir,
            config_hash=config_hash,
            state=self.state,
            trainable=dict(self.params.items()),
            best=self.best_state,
            optimization=self.optimization,
        )

    def result(self) -> LoopResult:
        """The numbers the caller writes into metadata.json."""
        state = self.state
        assert self.best_state is not None
        assert state.best_score is not None and state.best_step is not None
        return LoopResult(
            best_state=self.best_state,
            best_score=state.best_score,
            best_step=state.best_step,
            steps=state.step,
            history=state.history,
            units_processed=state.units_processed,
            train_seconds=state.train_seconds,
            resumed_from_step=self.resumed_from,
            nonfinite_steps=state.nonfinite_steps,
            skipped_steps=list(state.skipped_steps),
            stopped_early=state.step < self.cfg.max_steps,
        )


class _Progress:
    """The tqdm bar: smoothed loss and throughput over a window of about ten seconds."""

    def __init__(self, cfg: LoopConfig, initial: int) -> None:
        self.unit = cfg.unit
        self.bar = tqdm(
            total=cfg.max_steps, initial=initial, desc=cfg.desc, dynamic_ncols=True, mininterval=1.0
        )
        self.running: float | None = None
        self.window_units, self.window_start = 0, time.perf_counter()

    def update(self, step_loss: float | None, units: int) -> None:
        """Show one finished (or skipped: ``step_loss`` None) step."""
        self.window_units += units
        if step_loss is not None:
            loss = step_loss if self.running is None else 0.9 * self.running + 0.1 * step_loss
            self.running = loss
        now = time.perf_counter()
        speed = self.window_units / max(now - self.window_start, 1e-9)
        shown = "nan" if self.running is None else f"{self.running:.4f}"
        self.bar.set_postfix(loss=shown, **{f"{self.unit}/s": f"{speed:.0f}"})
        self.bar.update(1)
        if now - self.window_start > 10:
            self.window_units, self.window_start = 0, now

    def close(self) -> None:
        """Close the bar (also when the run fails)."""
        self.bar.close()


def _is_better(score: float, best: float, higher_is_better: bool) -> bool:
    """Strictly better, so that among equal scores the earliest weights are kept."""
    return score > best if higher_is_better else score < best


def _finite(value: torch.Tensor) -> bool:
    return bool(torch.isfinite(value.detach()).all())


def _stop_diverged(loss: torch.Tensor, step: int, what: str) -> None:
    """In fp32 the first non-finite loss stops the run: nothing after it could be trusted."""
    if not _finite(loss):
        raise LangarithError(
            f"{what}: the loss became {float(loss.detach()):.4g} at step {step}; training "
            "diverged (lower lr, use fp32, or check the data). No output was written."
        )


def run_training_loop(
    model: torch.nn.Module,
    params: Mapping[str, torch.nn.Parameter],
    micro_batch_loss: MicroBatchLoss,
    evaluate: Evaluate,
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
    last step: the caller writes the output and then deletes the checkpoint). With
    ``early_stopping_patience`` the run ends after that many validations in a row that
    do not beat the best (the result's ``steps`` says where).
    """
    run = _Run(model, params, cfg, setup, _make_optimization(params, cfg, setup), LoopState())
    run.resume(checkpoint_dir, config_hash)
    model.train()
    progress = _Progress(cfg, run.state.step)
    started = time.perf_counter()
    try:
        while run.state.step < cfg.max_steps:
            step_loss, units = run.train_step(micro_batch_loss)
            progress.update(step_loss, units)
            step = run.state.step
            last = step == cfg.max_steps
            if last or (cfg.eval_every and step % cfg.eval_every == 0):
                run.evaluate(evaluate, step_loss)
                if not last and run.patience_used_up():
                    log.info(
                        "%s: early stop at step %d, %d validations without a better %s "
                        "than step %d's",
                        cfg.desc,
                        step,
                        cfg.early_stopping_patience,
                        cfg.metric,
                        run.state.best_step,
                    )
                    break
            if (
                checkpoint_dir is not None
                and cfg.checkpoint_every
                and not last
                and step % cfg.checkpoint_every == 0
            ):
                run.state.train_seconds += time.perf_counter() - started
                started = time.perf_counter()
                run.save(Path(checkpoint_dir), config_hash)
            if cfg.stop_after_steps is not None and step >= cfg.stop_after_steps and not last:
                raise TrainingInterrupted(f"stop_after_steps={cfg.stop_after_steps} reached")
    finally:
        progress.close()
    run.state.train_seconds += time.perf_counter() - started
    return run.result()
