"""Fine-tuned full models as folders, and θ' = θ0 + τ^T + λ_s·τ^src + λ_t·τ^tgt.

A folder ``results/fullft/<model>/{lang/<lang>,task/<dataset>}/seed<s>/`` holds the
fine-tuned weights θ (not τ: a vector is formed against θ0 when it is used) in
``model.safetensors`` and ``metadata.json`` with ``theta0_sha256``, the checksum of the
backbone's weights file it was fine-tuned from. A language model keeps only the
encoder's tensors (its MLM head never enters a merge); a task model keeps every
parameter, its head included. Only parameters are saved: buffers never enter, and a
tied copy is saved once under its first name.

The merge is the core's ``task-arithmetic`` method (:mod:`langarith.merge`) applied one
tensor at a time with θ0 as θ_init and the weights (1, λ_s, λ_t); tensors that θ0 lacks
(the task head, BERT's pooler) are θ_T's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from langarith import LangarithError
from langarith.fullft.variants import VARIANTS, Variant, get_variant
from langarith.io import OutputKind, atomic_dir, read_json, sha256_file, write_json
from langarith.merge import get_method

__all__ = [
    "FULLFT_OUTPUT",
    "VARIANTS",
    "Variant",
    "check_vector",
    "compose",
    "encoder_state",
    "get_variant",
    "read_model_folder",
    "theta0_checksum",
    "write_model_folder",
]

WEIGHTS = "model.safetensors"
METADATA = "metadata.json"
FULLFT_OUTPUT = OutputKind(
    "fine-tuned full model",
    record=METADATA,
    record_kinds=("fullft_language", "fullft_task"),
    allowed=lambda name: name in (WEIGHTS, METADATA, "config.json", ".snakemake_timestamp"),
)


def theta0_checksum(backbone_dir: Path | str) -> str:
    """The checksum every vector of a backbone records: its weights file's sha256."""
    path = Path(backbone_dir) / WEIGHTS
    if not path.exists():
        raise LangarithError(f"Backbone {backbone_dir} has no {WEIGHTS}; build it first")
    return sha256_file(path)


def encoder_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters of a model's encoder (``base_model_prefix``), named without it.

    The MLM head of a masked LM and the head of a task model are left out; buffers are
    not parameters, and a tied parameter appears once.
    """
    prefix = f"{model.base_model_prefix}."
    return {
        name.removeprefix(prefix): param.detach().cpu().clone()
        for name, param in model.named_parameters()
        if name.startswith(prefix)
    }


def head_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter outside the encoder (a task model's head), under its full name."""
    prefix = f"{model.base_model_prefix}."
    return {
        name: param.detach().cpu().clone()
        for name, param in model.named_parameters()
        if not name.startswith(prefix)
    }


def write_model_folder(
    out_dir: Path | str,
    state: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    protect: list[Path] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``state`` (safetensors) and ``meta`` (with ``kind`` and ``theta0_sha256``)."""
    for key in ("kind", "theta0_sha256"):
        if key not in meta:
            raise LangarithError(f"metadata of {out_dir} needs {key!r}")
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, FULLFT_OUTPUT, protect or []) as tmp:
        tensors = {name: t.detach().cpu().contiguous() for name, t in state.items()}
        save_file(tensors, str(tmp / WEIGHTS))
        if config is not None:
            write_json(tmp / "config.json", dict(config))
        write_json(tmp / METADATA, {**meta, "weights_sha256": sha256_file(tmp / WEIGHTS)})
    return out_dir


def read_model_folder(folder: Path | str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors (safetensors, no pickled code) and metadata of a fine-tuned model."""
    folder = Path(folder)
    if not (folder / WEIGHTS).exists() or not (folder / METADATA).exists():
        raise LangarithError(
            f"{folder} is not a fine-tuned model folder (needs {WEIGHTS} and {METADATA}); "
            "train it with the fullft rules first"
        )
    return load_file(str(folder / WEIGHTS)), read_json(folder / METADATA, "Model metadata")


def check_vector(
    what: str,
    state: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    theta0: Mapping[str, torch.Tensor],
    theta0_sha: str,
    *,
    extra_allowed: bool = False,
) -> None:
    """Refuse a model fine-tuned from another θ0, or one whose tensors differ from θ0's.

    A language model must have exactly θ0's tensors; a task model (``extra_allowed``)
    may have more (its head), never fewer.
    """
    recorded = meta.get("theta0_sha256")
    if recorded != theta0_sha:
        raise LangarithError(
            f"{what} was fine-tuned from another θ0 (theta0_sha256 {str(recorded)[:12]}, "
            f"this backbone {theta0_sha[:12]}); retrain it from this backbone"
        )
    missing = sorted(set(theta0) - set(state))
    extra = [] if extra_allowed else sorted(set(state) - set(theta0))
    if missing or extra:
        raise LangarithError(
            f"{what} has other tensors than θ0: missing {missing[:5]}, extra {extra[:5]}; "
            "it is not a full fine-tuning of this backbone"
        )
    for name, tensor in theta0.items():
        if state[name].shape != tensor.shape:
            raise LangarithError(
                f"{what}: {name} has shape {tuple(state[name].shape)}, θ0 {tuple(tensor.shape)}"
            )


def compose(
    theta0: Mapping[str, torch.Tensor],
    task: Mapping[str, torch.Tensor],
    src: Mapping[str, torch.Tensor] | None,
    tgt: Mapping[str, torch.Tensor] | None,
    weights: tuple[float, float, float],
) -> dict[str, torch.Tensor]:
    """θ' = θ0 + w_T·τ^T + w_s·τ^src + w_t·τ^tgt, tensor by tensor, in float32.

    The core's ``task-arithmetic`` merge of each tensor θ0 has; θ_T's own tensors (the
    head) for the rest. A zero weight skips its vector (it may then be ``None``).
    """
    method = get_method("task-arithmetic")
    out: dict[str, torch.Tensor] = {}
    for name, theta_t in task.items():
        if name not in theta0:
            out[name] = theta_t.clone()
            continue
        models, used = [theta_t], [weights[0]]
        for state, weight in ((src, weights[1]), (tgt, weights[2])):
            if weight != 0:
                if state is None:
                    raise LangarithError(f"weight {weight} given for a missing vector")
                models.append(state[name].float())
                used.append(weight)
        out[name] = method.merge_tensor(theta0[name].float(), [m.float() for m in models], used)
    return out
