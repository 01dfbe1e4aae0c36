"""DARE (drop and rescale) on language vectors, alone and before TIES' sign election.

Yu et al. (2024) observe that most entries of a fine-tuning delta can be dropped at
random if the survivors are rescaled: each entry of τ = θ − θ_init is kept with
probability 1 − p and divided by 1 − p, so the expected vector is τ itself. Merging the
sparser vectors interferes less. Two methods are registered:

* ``dare``: θ_init + Σ wᵢ · DARE(τᵢ) (task arithmetic on the dropped vectors; with
  weights (λ, 1 − λ) it is language arithmetic on them).
* ``dare_ties``: DARE(τᵢ) · wᵢ replaces TIES' magnitude trim, then TIES elects a sign per
  entry and takes the disjoint mean (as in the DARE paper's combination with TIES);
  the result is θ_init + λ · τ_merged.

The masks are random but reproducible: the mask of adapter i's parameter ``name`` comes
from a generator seeded with a hash of (``seed``, i, ``name``), drawn on the CPU in
float32 whatever the dtype and device of the tensors. So a merge is a pure function of
its inputs and its parameters, the same seed gives the same adapter in ``langarith
merge``, in :func:`~langarith.merge.merge_states` (float64) and in the λ engine's
in-place form (float32 on the evaluation device), and different parameters get
independent masks. With p = 0 every entry is kept and the result is task arithmetic
(or TIES without trimming) bit for bit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch

from langarith import LangarithError
from langarith.merge.base import HeldAdapters, MergeMethod, ParamSpec, TensorWriter
from langarith.merge.ties import disjoint_merge, scaled_merge_writer

__all__ = [
    "DARE_TIES_METHOD",
    "METHOD",
    "dare",
    "dare_in_place",
    "dare_mask",
    "dare_ties",
    "dare_ties_in_place",
    "drop_and_rescale",
]

#: Largest seed accepted (torch generators take 64-bit seeds; this keeps it portable).
MAX_SEED = 2**31 - 1


def _check(drop_rate: float, seed: float) -> tuple[float, int]:
    """The drop rate and seed as used, or one clear error (also for direct calls)."""
    p = float(drop_rate)
    if not 0.0 <= p < 1.0:
        raise LangarithError(
            f"drop_rate must be in [0, 1) (the fraction of each language vector's entries "
            f"DARE drops); got {drop_rate!r}"
        )
    if float(seed) != int(seed) or not 0 <= int(seed) <= MAX_SEED:
        raise LangarithError(f"seed must be an integer in [0, {MAX_SEED}]; got {seed!r}")
    return p, int(seed)


def dare_mask(
    shape: torch.Size | Sequence[int], drop_rate: float, seed: int, index: int, name: str
) -> torch.Tensor:
    """Which entries of adapter ``index``'s tensor ``name`` DARE keeps (bool, on the CPU).

    Each entry is kept with probability 1 − ``drop_rate``, independently, from a
    generator seeded by (``seed``, ``index``, ``name``) only.
    """
    p, seed = _check(drop_rate, seed)
    digest = hashlib.sha256(f"dare:{seed}:{index}:{name}".encode()).digest()
    generator = torch.Generator(device="cpu").manual_seed(
        int.from_bytes(digest[:8], "big") & (2**63 - 1)
    )
    return torch.rand(tuple(shape), generator=generator, dtype=torch.float32) >= p


def drop_and_rescale(tau: torch.Tensor, keep: torch.Tensor, drop_rate: float) -> torch.Tensor:
    """τ with dropped entries set to 0 and kept ones divided by 1 − ``drop_rate``."""
    if drop_rate == 0:
        return tau
    keep = keep.to(tau.device)
    return torch.where(keep, tau / (1.0 - drop_rate), torch.zeros((), dtype=tau.dtype))


def _dropped_taus(
    init: torch.Tensor, thetas: Sequence[torch.Tensor], drop_rate: float, seed: int, name: str
) -> list[torch.Tensor]:
    return [
        drop_and_rescale(theta - init, dare_mask(init.shape, drop_rate, seed, i, name), drop_rate)
        for i, theta in enumerate(thetas)
    ]


def dare(
    init: torch.Tensor | None,
    thetas: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    name: str,
    drop_rate: float = 0.9,
    seed: float = 0,
    **_: Any,
) -> torch.Tensor:
    """θ_init + Σ wᵢ · DARE(θᵢ − θ_init) for the parameter called ``name``.

    ``name`` (the normalised parameter name) selects the mask, so every parameter of an
    adapter gets its own; terms with weight 0 are skipped as in task arithmetic.
    """
    if init is None:
        raise LangarithError("dare needs θ_init (the shared init adapter)")
    p, seed_int = _check(drop_rate, seed)
    out = init.clone()
    for i, (weight, theta) in enumerate(zip(weights, thetas, strict=True)):
        if weight != 0:
            keep = dare_mask(init.shape, p, seed_int, i, name)
            out.add_(drop_and_rescale(theta - init, keep, p), alpha=weight)
    return out


def dare_ties(
    init: torch.Tensor | None,
    thetas: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    name: str,
    lam: float = 1.0,
    drop_rate: float = 0.9,
    seed: float = 0,
    **_: Any,
) -> torch.Tensor:
    """θ_init + λ · disjoint mean of the sign-elected DARE(τᵢ) · wᵢ for ``name``."""
    if init is None:
        raise LangarithError("dare_ties needs θ_init (the shared init adapter)")
    p, seed_int = _check(drop_rate, seed)
    dropped = _dropped_taus(init, thetas, p, seed_int, name)
    merged = disjoint_merge([tau * w for tau, w in zip(dropped, weights, strict=True)])
    return init + merged * lam if lam != 1 else init + merged


def _held_masks(held: HeldAdapters, p: float, seed: int) -> list[dict[str, torch.Tensor]]:
    """The keep masks of the held adapters on their device, kept for the last (p, seed)."""
    key = (p, seed)
    last = held.memo.get("dare_masks")
    if last is not None and last[0] == key:
        return last[1]
    held.memo.pop("dare_masks", None)
    assert held.init is not None
    device = held.init[held.names[0]].device
    masks = [
        {name: dare_mask(held.init[name].shape, p, seed, i, name).to(device) for name in held.names}
        for i in range(len(held.thetas))
    ]
    held.memo["dare_masks"] = (key, masks)
    return masks


def dare_in_place(
    held: HeldAdapters,
    weights: Sequence[float],
    *,
    drop_rate: float,
    seed: float,
    **_: Any,
) -> TensorWriter:
    """θ_init + Σ wᵢ · DARE(τᵢ) of the held adapters; masks drawn once per (p, seed)."""
    if held.init is None:
        raise LangarithError("dare needs θ_init; build the set with init")
    p, seed_int = _check(drop_rate, seed)
    init = held.init
    masks = _held_masks(held, p, seed_int)

    def write(name: str, buf: torch.Tensor) -> None:
        buf.copy_(init[name])
        for i, (w, theta) in enumerate(zip(weights, held.thetas, strict=True)):
            if w != 0:
                buf.add_(drop_and_rescale(theta[name] - init[name], masks[i][name], p), alpha=w)

    return write


def dare_ties_in_place(
    held: HeldAdapters,
    weights: Sequence[float],
    *,
    lam: float,
    drop_rate: float,
    seed: float,
    **_: Any,
) -> TensorWriter:
    """θ_init + λ·τ_merged; τ_merged kept while only λ changes (a λ grid)."""
    if held.init is None:
        raise LangarithError("dare_ties needs θ_init; build the set with init")
    p, seed_int = _check(drop_rate, seed)
    init = held.init
    key = (p, seed_int, tuple(weights))
    last = held.memo.get("dare_ties_merged")
    if last is not None and last[0] == key:
        merged = last[1]
    else:
        held.memo.pop("dare_ties_merged", None)
        masks = _held_masks(held, p, seed_int)
        merged = {}
        for name in held.names:
            dropped = [
                drop_and_rescale(theta[name] - init[name], masks[i][name], p) * w
                for i, (theta, w) in enumerate(zip(held.thetas, weights, strict=True))
            ]
            merged[name] = disjoint_merge(dropped)
        held.memo["dare_ties_merged"] = (key, merged)
    return scaled_merge_writer(init, merged, lam)


_DROP_RATE = ParamSpec(
    name="drop_rate",
    default=0.9,
    help="fraction p of each language vector's entries DARE drops (survivors ×1/(1−p))",
    cli_flag="--drop-rate",
    low=0.0,
    high=1.0,
    high_inclusive=False,
    metavar="P",
)
_SEED = ParamSpec(
    name="seed",
    default=0.0,
    help="integer seed of DARE's random masks (same seed, same merged adapter)",
    cli_flag="--seed",
    low=0.0,
    high=float(MAX_SEED),
    metavar="S",
)
_REFERENCE = (
    "Yu et al. (2024), Language Models are Super Mario: Absorbing Abilities from "
    "Homologous Models as a Free Lunch, ICML"
)

METHOD = MergeMethod(
    name="dare",
    reference=_REFERENCE,
    reference_url="https://arxiv.org/abs/2311.03099",
    needs_init=True,
    merge_tensor=dare,
    params=(_DROP_RATE, _SEED),
    in_place=dare_in_place,
    description="drop each τ entry with probability p, rescale by 1/(1−p), θ_init + Σ wᵢ τ̃ᵢ",
)

DARE_TIES_METHOD = MergeMethod(
    name="dare_ties",
    reference=_REFERENCE + "; sign election from Yadav et al. (2023), TIES-Merging",
    reference_url="https://arxiv.org/abs/2311.03099",
    needs_init=True,
    merge_tensor=dare_ties,
    params=(
        ParamSpec(
            name="lam",
            default=1.0,
            help="λ scaling the merged language vector: θ_init + λ·τ_merged",
            cli_flag="--lambda",
            metavar="L",
        ),
        _DROP_RATE,
        _SEED,
    ),
    default_weights=lambda n: [1.0] * n,
    in_place=dare_ties_in_place,
    description="DARE each τ, elect signs, disjoint mean, θ_init + λτ (TIES without the trim)",
)
