"""Task arithmetic on language vectors: θ_init + Σ wᵢ τᵢ with τᵢ = θᵢ − θ_init.

Ilharco et al. (2023) add and negate task vectors; language arithmetic (Klimaszewski et
al., 2024) does the same with language vectors of adapters that share one θ_init. The
weights are any real numbers: negative ones subtract a language, several combine N
languages, and weights that do not sum to 1 extrapolate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from langarith import LangarithError
from langarith.merge.base import MergeMethod

__all__ = ["METHOD", "task_arithmetic"]


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


METHOD = MergeMethod(
    name="task-arithmetic",
    reference=(
        "Ilharco et al. (2023), Editing Models with Task Arithmetic, ICLR; applied to "
        "language vectors by Klimaszewski et al. (2024)"
    ),
    reference_url="https://arxiv.org/abs/2212.04089",
    needs_init=True,
    merge_tensor=task_arithmetic,
    description="θ_init + Σ wᵢ τᵢ with any real weights (negation, N-way sums)",
)
