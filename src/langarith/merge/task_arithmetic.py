"""Task arithmetic on language vectors: θ_init + Σ wᵢ τᵢ with τᵢ = θᵢ − θ_init.

Ilharco et al. (2023) add and negate task vectors; language arithmetic (Klimaszewski et
al., 2024) does the same with language vectors of adapters that share one θ_init. The
weights are any real numbers: negative ones subtract a language, several combine N
languages, and weights that do not sum to 1 extrapolate.

In place (:func:`task_arithmetic_in_place`) the same sum is written rearranged as
(1 − Σwᵢ)·θ_init + Σ wᵢθᵢ, so no τᵢ is formed: weights (1, 0) write θ_A bit for bit
and all-zero weights write θ_init bit for bit, also in float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from langarith import LangarithError
from langarith.merge.base import HeldAdapters, MergeMethod, TensorWriter
from langarith.merge.linear import Term, write_weighted_sum

__all__ = ["METHOD", "task_arithmetic", "task_arithmetic_in_place"]


def task_arithmetic(
    init: torch.Tensor | None,
    thetas: Sequence[torch.Tensor],
    weights: Sequence[float],
    **_: Any,
) -> torch.Tensor:
    """θ_init + Σ wᵢ (θᵢ − θ_init) for one parameter name.

    Terms with weight 0 are skipped, so all-zero weights return θ_init exactly.
    """
    if init is None:
        raise LangarithError("task-arithmetic needs θ_init (the shared init adapter)")
    out = init.clone()
    for weight, theta in zip(weights, thetas, strict=True):
        if weight != 0:
            out.add_(theta - init, alpha=weight)
    return out


def task_arithmetic_in_place(
    held: HeldAdapters, weights: Sequence[float], **_: Any
) -> TensorWriter:
    """(1 − Σwᵢ)·θ_init + Σ wᵢθᵢ of the held adapters, zero terms left out."""
    if held.init is None:
        raise LangarithError("task-arithmetic needs θ_init; build the set with init")
    terms: list[Term] = []
    c_init = math.fsum([1.0, *(-w for w in weights)])
    if c_init != 0:
        terms.append((c_init, held.init))
    terms.extend((w, theta) for w, theta in zip(weights, held.thetas, strict=True) if w != 0)
    return write_weighted_sum(terms)


METHOD = MergeMethod(
    name="task-arithmetic",
    reference=(
        "Ilharco et al. (2023), Editing Models with Task Arithmetic, ICLR; applied to "
        "language vectors by Klimaszewski et al. (2024)"
    ),
    reference_url="https://arxiv.org/abs/2212.04089",
    needs_init=True,
    merge_tensor=task_arithmetic,
    in_place=task_arithmetic_in_place,
    description="θ_init + Σ wᵢ τᵢ with any real weights (negation, N-way sums)",
)
