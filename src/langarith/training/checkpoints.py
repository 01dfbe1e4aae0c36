"""Resumable checkpoints of a training run.

A checkpoint holds the trainable weights, the best weights so far, the optimizer,
scheduler and scaler states, the global RNG states and the loop counters. Together with
the derived randomness of :mod:`langarith.training.seeding` that is everything a killed
run needs to end with exactly the weights of an uninterrupted one.

Checkpoints are written into a temporary sibling and swapped in with two renames, so a
crash at any moment leaves either the old or the new checkpoint (possibly under the
``.old`` name, which :func:`find_checkpoint` also accepts).

The checkpoint folder belongs to the run only as far as its files go: a run starts only
on a missing or empty folder or an earlier checkpoint (:data:`CHECKPOINT_OUTPUT`: a
``state.json`` and nothing but :data:`CHECKPOINT_FILES`), and :func:`remove_checkpoint`
deletes only those files. A checkpoint made with other inputs or settings is never
deleted before the new run has one of its own: the new run's first checkpoint replaces
it, and a run that ends (or dies) before writing one leaves it in place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from langarith.io import (
    OutputKind,
    apply_default_modes,
    check_replaceable,
    discarded_on_failure,
    read_json,
    write_json,
)
from langarith.provenance import utc_now

log = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_FILES",
    "CHECKPOINT_OUTPUT",
    "LoopState",
    "check_checkpoint_dir",
    "Optimization",
    "find_checkpoint",
    "read_checkpoint_state",
    "remove_checkpoint",
    "restore_checkpoint",
    "save_checkpoint",
]


#: The files of one checkpoint (see :func:`_write_checkpoint_files`).
CHECKPOINT_FILES = frozenset({"weights.safetensors", "best.safetensors", "optim.pt", "state.json"})

#: A checkpoint folder as an output (see :func:`langarith.io.check_replaceable`).
CHECKPOINT_OUTPUT = OutputKind(
    "training checkpoint", record="state.json", allowed=CHECKPOINT_FILES.__contains__
)


def check_checkpoint_dir(checkpoint_dir: Path | str | None, protect: Sequence[Path | str]) -> None:
    """Refuse, before training, a checkpoint folder the run must not take over.

    It must be missing, empty or an earlier checkpoint, and must neither be nor contain
    one of ``protect`` (the run's inputs and its output folder).
    """
    if checkpoint_dir is not None:
        check_replaceable(checkpoint_dir, CHECKPOINT_OUTPUT, protect)


@dataclass
class LoopState:
    """Everything the loop needs to continue; saved in checkpoints."""

    step: int = 0
    best_score: float | None = None
    best_step: int | None = None
    history: list[dict] = field(default_factory=list)
    units_processed: int = 0
    train_seconds: float = 0.0
    nonfinite_steps: int = 0  # steps skipped for a non-finite loss (mixed precision)
    nonfinite_in_row: int = 0  # consecutive skipped steps up to the current one
    skipped_steps: list[int] = field(default_factory=list)  # the first 1000 of them


@dataclass
class Optimization:
    """The optimizer, scheduler and gradient scaler of a run: the stateful objects a
    checkpoint saves and restores besides the weights, bundled to travel together."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler


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
    """Put the global generators back where :func:`_rng_states` found them."""
    version, state, gauss = json_part["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, pos, has_gauss, cached = json_part["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), cached))
    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda")]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def _write_checkpoint_files(
    folder: Path,
    *,
    config_hash: str,
    state: LoopState,
    trainable: Mapping[str, torch.Tensor],
    best: Mapping[str, torch.Tensor] | None,
    optimization: Optimization,
) -> None:
    """The files of one checkpoint; ``state.json`` last, as the mark of a complete one.

    Weights go to safetensors and the optimizer/scheduler/RNG tensors to a torch file
    that is read back with ``weights_only=True``, so loading never runs pickled code.
    """
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in trainable.items()},
        folder / "weights.safetensors",
    )
    if best is not None:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in best.items()},
            folder / "best.safetensors",
        )
    rng_json, rng_tensors = _rng_states()
    torch.save(
        {
            "optimizer": optimization.optimizer.state_dict(),
            "scheduler": optimization.scheduler.state_dict(),
            "scaler": optimization.scaler.state_dict(),
            "rng": rng_tensors,
        },
        folder / "optim.pt",
    )
    write_json(
        folder / "state.json",
        {
            "config_hash": config_hash,
            "step": state.step,
            "best_score": state.best_score,
            "best_step": state.best_step,
            "history": state.history,
            "units_processed": state.units_processed,
            "train_seconds": state.train_seconds,
            "nonfinite_steps": state.nonfinite_steps,
            "nonfinite_in_row": state.nonfinite_in_row,
            "skipped_steps": state.skipped_steps,
            "rng": rng_json,
            "created_utc": utc_now(),
        },
    )


def save_checkpoint(
    checkpoint_dir: Path,
    *,
    config_hash: str,
    state: LoopState,
    trainable: Mapping[str, torch.Tensor],
    best: Mapping[str, torch.Tensor] | None,
    optimization: Optimization,
) -> None:
    """Write a checkpoint folder atomically (temp sibling, then swap).

    A write that fails (e.g. a full disk) removes the temporary folder and keeps the
    previous checkpoint, so the run can still resume from there.
    """
    checkpoint_dir = Path(checkpoint_dir)
    check_replaceable(checkpoint_dir, CHECKPOINT_OUTPUT)
    checkpoint_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = checkpoint_dir.parent / f".{checkpoint_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    with discarded_on_failure(tmp, checkpoint_dir):
        _write_checkpoint_files(
            tmp,
            config_hash=config_hash,
            state=state,
            trainable=trainable,
            best=best,
            optimization=optimization,
        )
        apply_default_modes(tmp)
    old = checkpoint_dir.parent / f".{checkpoint_dir.name}.old"
    if checkpoint_dir.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(checkpoint_dir, old)
    os.replace(tmp, checkpoint_dir)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The checkpoint folder, or its ``.old`` twin if a crash hit between the two renames."""
    for candidate in (checkpoint_dir, checkpoint_dir.parent / f".{checkpoint_dir.name}.old"):
        if (candidate / "state.json").exists():
            return candidate
    return None


def restore_checkpoint(
    found: Path,
    saved: Mapping[str, Any],
    params: Mapping[str, torch.nn.Parameter],
    optimization: Optimization,
) -> tuple[LoopState, dict[str, torch.Tensor] | None]:
    """Load a checkpoint (``saved`` = its state.json) into live objects.

    Returns the loop state and the best weights so far; the trainable parameters, the
    optimizer, scheduler and scaler and the global RNGs are restored in place.
    """
    weights = load_file(found / "weights.safetensors")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(weights[name].to(param.device))
    best = load_file(found / "best.safetensors") if (found / "best.safetensors").exists() else None
    blobs = torch.load(found / "optim.pt", map_location="cpu", weights_only=True)
    optimization.optimizer.load_state_dict(blobs["optimizer"])
    optimization.scheduler.load_state_dict(blobs["scheduler"])
    optimization.scaler.load_state_dict(blobs["scaler"])
    _set_rng_states(saved["rng"], blobs["rng"])
    state = LoopState(
        step=saved["step"],
        best_score=saved["best_score"],
        best_step=saved["best_step"],
        history=saved["history"],
        units_processed=saved["units_processed"],
        train_seconds=saved["train_seconds"],
        # checkpoints written before skipped steps were counted have none
        nonfinite_steps=int(saved.get("nonfinite_steps", 0)),
        nonfinite_in_row=int(saved.get("nonfinite_in_row", 0)),
        skipped_steps=[int(x) for x in saved.get("skipped_steps", [])],
    )
    return state, best


def read_checkpoint_state(found: Path) -> dict:
    """A checkpoint's state.json (a corrupt one is a clear error, not a traceback)."""
    return read_json(found / "state.json", "Checkpoint state")


def _remove_checkpoint_files(folder: Path) -> None:
    """Delete the :data:`CHECKPOINT_FILES` in ``folder``, then the folder if it is empty."""
    if not folder.is_dir() or folder.is_symlink():
        return
    for name in CHECKPOINT_FILES:
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when nothing else is left in it


def remove_checkpoint(checkpoint_dir: Path | None, config_hash: str | None = None) -> None:
    """Delete a finished run's checkpoint files (and leftovers of an interrupted swap).

    Only the checkpoint's own files go; the folder is removed when that leaves it empty.
    With ``config_hash``, a checkpoint made with other inputs or settings (which this
    run never replaced, see the module docstring) is kept.
    """
    if checkpoint_dir is None:
        return
    checkpoint_dir = Path(checkpoint_dir).absolute()
    found = find_checkpoint(checkpoint_dir)
    if config_hash is not None and found is not None:
        saved = read_json(found / "state.json", "Checkpoint state")
        if isinstance(saved, dict) and saved.get("config_hash") != config_hash:
            log.warning(
                "Kept the checkpoint %s: it was made with other inputs or settings and this "
                "run wrote none of its own; delete it if it is no longer needed",
                found,
            )
            return
    _remove_checkpoint_files(checkpoint_dir)
    _remove_checkpoint_files(checkpoint_dir.parent / f".{checkpoint_dir.name}.old")
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
