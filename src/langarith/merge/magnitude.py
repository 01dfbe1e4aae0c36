"""Task arithmetic on magnitude-sparsified vectors: top-k and bottom-k (Parović, Vulić and
Korhonen, "Investigating the Potential of Task Arithmetic for Cross-Lingual Transfer",
Figures 1-3: language vectors of fully fine-tuned models keep their k % largest or
smallest entries).

θ_init + Σ wᵢ·mask(τᵢ), where the mask of a vector keeps its ``keep`` percent largest
(``top-k``) or smallest (``bottom-k``) entries by magnitude. As in the TIES trim
(:func:`langarith.merge.ties.ties_threshold`) the ranking is global over the whole vector
(every tensor flattened together) and the seed plays no part.

Bottom-k is defined as the complement of top-k: bottom-k(k) keeps exactly the entries
that top-k(100 − k) drops (``|τ| <`` top-k's threshold), so top-k(k) + bottom-k(100 − k)
is τ entry for entry, repeated magnitudes included; bottom-k(100) keeps everything.

The first ``dense`` vectors stay whole: with the task vector first, task arithmetic with
full fine-tuning sparsifies only the language vectors, θ0 + τ^T + λ·mask(τ^L).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from langarith import LangarithError
from langarith.merge.base import HeldAdapters, MergeMethod, ParamSpec, TensorWriter
from langarith.merge.ties import ties_threshold

__all__ = [
    "BOTTOM_K_METHOD",
    "TOP_K_METHOD",
    "magnitude_mask",
    "magnitude_merge",
    "magnitude_thresholds",
]


def magnitude_mask(tau: torch.Tensor, threshold: torch.Tensor | None, bottom: bool) -> torch.Tensor:
    """Which entries of ``tau`` a top-k (``|τ| >= threshold``) or bottom-k
    (``|τ| < threshold``) mask keeps; ``threshold`` None keeps every entry."""
    if threshold is None:
        return torch.ones_like(tau, dtype=torch.bool)
    kept = tau.abs() >= threshold
    return ~kept if bottom else kept


def magnitude_thresholds(
    init_state: Mapping[str, torch.Tensor] | None,
    states: Sequence[Mapping[str, torch.Tensor]],
    *,
    keep: float,
    bottom: bool,
    dense: int = 0,
) -> list[torch.Tensor | None]:
    """The per-vector threshold of the mask (``None`` for dense vectors or a full keep).

    Top-k(keep) uses TIES' threshold of ``keep``; bottom-k(keep) the threshold of
    top-k(100 − keep), whose entries it leaves out.
    """
    if init_state is None:
        raise LangarithError("top-k/bottom-k need θ_init (the shared initialisation)")
    names = sorted(init_state)
    ranked = 100.0 - keep if bottom else keep
    out: list[torch.Tensor | None] = []
    for index, state in enumerate(states):
        if index < dense or ranked >= 100.0 or (bottom and ranked <= 0.0):
            out.append(None)
            continue
        out.append(ties_threshold((state[n] - init_state[n] for n in names), ranked))
    return out


def _masked_sum(
    init: torch.Tensor,
    thetas: Sequence[torch.Tensor],
    weights: Sequence[float],
    thresholds: Sequence[torch.Tensor | None],
    bottom: bool,
) -> torch.Tensor:
    out = init.clone()
    for theta, weight, threshold in zip(thetas, weights, thresholds, strict=True):
        if weight == 0:
            continue
        tau = theta - init
        if threshold is not None:
            tau = torch.where(magnitude_mask(tau, threshold, bottom), tau, torch.zeros_like(tau))
        out.add_(tau, alpha=weight)
    return out


def magnitude_merge(
    init: torch.Tensor | None,
    thetas: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    keep: float = 100.0,
    dense: float = 0,
    bottom: bool = False,
    thresholds: Sequence[torch.Tensor | None] | None = None,
    **_: Any,
) -> torch.Tensor:
    """θ_init + Σ wᵢ·mask(τᵢ) for one parameter name.

    ``thresholds`` (from the method's ``prepare``) rank over whole vectors; without
    them each tensor is ranked on its own.
    """
    if init is None:
        raise LangarithError("top-k/bottom-k need θ_init (the shared initialisation)")
    if thresholds is None:
        thresholds = magnitude_thresholds(
            {"t": init},
            [{"t": theta} for theta in thetas],
            keep=keep,
            bottom=bottom,
            dense=int(dense),
        )
    return _masked_sum(init, thetas, weights, thresholds, bottom)


def _method(bottom: bool) -> MergeMethod:
    name = "bottom-k" if bottom else "top-k"

    def merge_tensor(init, thetas, weights, **params: Any) -> torch.Tensor:
        return magnitude_merge(init, thetas, weights, bottom=bottom, **params)

    def prepare(init_state, states, weights, *, keep: float, dense: float = 0, **_: Any):
        thresholds = magnitude_thresholds(
            init_state, states, keep=keep, bottom=bottom, dense=int(dense)
        )
        return {"thresholds": thresholds}

    def in_place(
        held: HeldAdapters, weights: Sequence[float], *, keep: float, dense: float = 0, **_: Any
    ) -> TensorWriter:
        if held.init is None:
            raise LangarithError(f"{name} needs θ_init; build the set with init")
        memo = held.memo.setdefault(f"{name}_thresholds", {})
        if (keep, dense) not in memo:
            memo[(keep, dense)] = prepare(held.init, held.thetas, weights, keep=keep, dense=dense)
        thresholds = memo[(keep, dense)]["thresholds"]
        init = held.init

        def write(param: str, buf: torch.Tensor) -> None:
            thetas = [theta[param] for theta in held.thetas]
            buf.copy_(_masked_sum(init[param], thetas, weights, thresholds, bottom))

        return write

    which = "smallest" if bottom else "largest"
    return MergeMethod(
        name=name,
        reference=(
            "Parović, Vulić and Korhonen (2024), Investigating the Potential of Task "
            "Arithmetic for Cross-Lingual Transfer, Figures 1-3; task arithmetic of "
            "Ilharco et al. (2023)"
        ),
        reference_url="https://arxiv.org/abs/2212.04089",
        needs_init=True,
        merge_tensor=merge_tensor,
        params=(
            ParamSpec(
                name="keep",
                default=100.0,
                help=f"percent of each vector's entries kept, the {which} by magnitude",
                cli_flag="--keep",
                low=0.0,
                high=100.0,
                low_inclusive=False,
                metavar="K",
            ),
            ParamSpec(
                name="dense",
                default=0.0,
                help="how many of the first vectors stay dense (the task vector: 1)",
                cli_flag="--dense",
                low=0.0,
                metavar="N",
            ),
        ),
        prepare=prepare,
        in_place=in_place,
        description=f"θ_init + Σ wᵢ τᵢ with each τᵢ cut to its {which} k % entries",
    )


TOP_K_METHOD = _method(bottom=False)
BOTTOM_K_METHOD = _method(bottom=True)
