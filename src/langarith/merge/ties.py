"""TIES-merging of language vectors (Yadav et al., 2023).

Three steps over the language vectors τᵢ = θᵢ − θ_init:

1. **Trim.** Each τᵢ keeps its ``top_k`` percent largest entries by magnitude; the rest
   become 0. The threshold is *global per vector*: all parameters of the adapter are
   flattened together, as in the paper (one vector per model), not one threshold per
   tensor. The number kept is ⌈D · top_k / 100⌉ (at least 1) of D entries. Entries whose
   magnitude equals the threshold are all kept, so repeated magnitudes can keep a few
   more than that count; this keeps the result independent of the order of entries.
2. **Elect.** Per entry, the sign of the sum of the trimmed values (the sign with the
   larger total mass).
3. **Disjoint mean.** Per entry, the mean over the vectors whose trimmed value is
   non-zero and has the elected sign; 0 where none does.

The result is θ_init + λ · τ_merged. Optional weights wᵢ scale each τᵢ before the
election (default 1; a negative weight flips a vector's signs). Scaling does not change
which entries of a vector are largest, so the trim mask is taken from the unscaled τᵢ;
this is the same as scaling first and keeps the mask identical for every weight.

In place (:func:`ties_in_place`, the λ engine) the trim thresholds of the held adapters
are computed once per ``top_k`` and τ_merged once per (``top_k``, weights), because a λ
grid only rescales it; each point then writes θ_init + λ·τ_merged.

Klimaszewski et al. (2024, appendix E) compare TIES with ``top_k`` 20 and 80 and λ in
[0.8, 1.8] against plain language arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from langarith import LangarithError
from langarith.merge.base import HeldAdapters, MergeMethod, ParamSpec, TensorWriter

__all__ = [
    "METHOD",
    "disjoint_merge",
    "keep_count",
    "scaled_merge_writer",
    "ties",
    "ties_in_place",
    "ties_prepare",
    "ties_threshold",
    "trim",
]


def keep_count(numel: int, top_k: float) -> int:
    """How many of ``numel`` entries the trim step keeps: ⌈numel · top_k / 100⌉, ≥ 1.

    The product is rounded to 9 decimals first so that e.g. 5 · 20 / 100 counts as 1,
    not 1.0000000000000002.
    """
    return max(1, min(numel, math.ceil(round(numel * top_k / 100.0, 9))))


def ties_threshold(tensors: Iterable[torch.Tensor], top_k: float) -> torch.Tensor:
    """Smallest magnitude kept when trimming the vector made of ``tensors`` flattened.

    Returns a 0-dim tensor in the tensors' dtype; entries with ``|τ| >= threshold`` are
    kept.
    """
    flat = torch.cat([t.detach().reshape(-1).abs() for t in tensors])
    if flat.numel() == 0:
        raise LangarithError("Cannot trim an empty language vector")
    n_keep = keep_count(flat.numel(), top_k)
    # the n_keep-th largest value is the (numel - n_keep + 1)-th smallest
    return flat.kthvalue(flat.numel() - n_keep + 1).values


def trim(tau: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """τ with every entry of magnitude below ``threshold`` set to 0."""
    return torch.where(tau.abs() >= threshold, tau, torch.zeros((), dtype=tau.dtype))


def disjoint_merge(trimmed: Sequence[torch.Tensor]) -> torch.Tensor:
    """Elect a sign per entry and average the non-zero values that agree with it."""
    stacked = torch.stack(list(trimmed))
    elected = torch.sign(stacked.sum(dim=0))
    agree = (stacked != 0) & (torch.sign(stacked) == elected)
    count = agree.sum(dim=0)
    total = torch.where(agree, stacked, torch.zeros((), dtype=stacked.dtype)).sum(dim=0)
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


def ties(
    init: torch.Tensor | None,
    thetas: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    lam: float = 1.0,
    top_k: float = 20.0,
    thresholds: Sequence[torch.Tensor] | None = None,
    **_: Any,
) -> torch.Tensor:
    """θ_init + λ · TIES(τ₁…τₙ) for one parameter name.

    ``thresholds`` (one per adapter, from :func:`ties_prepare`) make the trim global over
    all parameters of each vector; without them each tensor is trimmed on its own
    (per-tensor TIES, kept for comparison and tests).
    """
    if init is None:
        raise LangarithError("ties needs θ_init (the shared init adapter)")
    taus = [theta - init for theta in thetas]
    if thresholds is None:
        thresholds = [ties_threshold([tau], top_k) for tau in taus]
    trimmed = [
        trim(tau, threshold) * weight
        for tau, threshold, weight in zip(taus, thresholds, weights, strict=True)
    ]
    merged = disjoint_merge(trimmed)
    return init + merged * lam if lam != 1 else init + merged


def ties_prepare(
    init_state: Mapping[str, torch.Tensor] | None,
    states: Sequence[Mapping[str, torch.Tensor]],
    weights: Sequence[float],
    *,
    top_k: float = 20.0,
    **_: Any,
) -> dict[str, Any]:
    """The global trim threshold of each language vector (all names, sorted)."""
    if init_state is None:
        raise LangarithError("ties needs θ_init (the shared init adapter)")
    names = sorted(init_state)
    thresholds = [
        ties_threshold((state[name] - init_state[name] for name in names), top_k)
        for state in states
    ]
    return {"thresholds": thresholds}


def _merged_tau(
    held: HeldAdapters, weights: Sequence[float], top_k: float
) -> dict[str, torch.Tensor]:
    """τ_merged of the held adapters, remembered for the last (top_k, weights) only."""
    key = (top_k, tuple(weights))
    last = held.memo.get("ties_merged")
    if last is not None and last[0] == key:
        return last[1]
    thresholds = held.memo.setdefault("ties_thresholds", {})
    if top_k not in thresholds:
        thresholds[top_k] = ties_prepare(held.init, held.thetas, weights, top_k=top_k)["thresholds"]
    held.memo.pop("ties_merged", None)  # a failure leaves no stale τ_merged behind
    assert held.init is not None
    merged = {}
    for name in held.names:
        taus = [theta[name] - held.init[name] for theta in held.thetas]
        trimmed = [
            trim(tau, threshold) * w
            for tau, threshold, w in zip(taus, thresholds[top_k], weights, strict=True)
        ]
        merged[name] = disjoint_merge(trimmed)
    held.memo["ties_merged"] = (key, merged)
    return merged


def ties_in_place(
    held: HeldAdapters, weights: Sequence[float], *, lam: float, top_k: float, **_: Any
) -> TensorWriter:
    """θ_init + λ·τ_merged of the held adapters (λ = 0 writes θ_init bit for bit)."""
    if held.init is None:
        raise LangarithError("ties needs θ_init (the shared init adapter)")
    return scaled_merge_writer(held.init, _merged_tau(held, weights, top_k), lam)


def scaled_merge_writer(
    init: Mapping[str, torch.Tensor], merged: Mapping[str, torch.Tensor], lam: float
) -> TensorWriter:
    """The writer of θ_init + λ·τ_merged (λ = 0 writes θ_init bit for bit); shared by
    the methods that merge vectors once and only rescale them along a λ grid."""

    def write(name: str, buf: torch.Tensor) -> None:
        buf.copy_(init[name])
        if lam != 0:
            buf.add_(merged[name], alpha=lam)

    return write


METHOD = MergeMethod(
    name="ties",
    reference=(
        "Yadav et al. (2023), TIES-Merging: Resolving Interference When Merging Models, "
        "NeurIPS; on language vectors in Klimaszewski et al. (2024), appendix E"
    ),
    reference_url="https://arxiv.org/abs/2306.01708",
    needs_init=True,
    merge_tensor=ties,
    params=(
        ParamSpec(
            name="lam",
            default=1.0,
            help="λ scaling the merged language vector: θ_init + λ·τ_merged",
            cli_flag="--lambda",
            metavar="L",
        ),
        ParamSpec(
            name="top_k",
            default=20.0,
            help="percent of each language vector's entries kept by magnitude",
            cli_flag="--top-k",
            low=0.0,
            high=100.0,
            low_inclusive=False,
            metavar="K",
        ),
    ),
    default_weights=lambda n: [1.0] * n,
    prepare=ties_prepare,
    in_place=ties_in_place,
    description="trim to top-k % (global per vector), elect signs, disjoint mean, θ_init + λτ",
)
