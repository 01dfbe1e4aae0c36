"""Linear merging: a weighted average of adapter weights, Σ wᵢ θᵢ with Σ wᵢ = 1.

With a shared θ_init this is the paper's language arithmetic (Klimaszewski et al., 2024,
eq. 4): λ θ_A + (1 − λ) θ_B = θ_init + λ τ_A + (1 − λ) τ_B, which is why it needs no
θ_init at all. It is also the "model soup" of Wortsman et al. (2022).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from langarith.merge.base import MergeMethod

__all__ = ["METHOD", "linear"]


def linear(
    init: torch.Tensor | None,
    thetas: Sequence[torch.Tensor],
    weights: Sequence[float],
    **_: Any,
) -> torch.Tensor:
    """Σ wᵢ θᵢ for one parameter name; ``init`` is ignored.

    Terms with weight 0 are skipped, so weights (1, 0) return θ_A exactly (in the input
    dtype) even if θ_B holds infinities.
    """
    out: torch.Tensor | None = None
    for weight, theta in zip(weights, thetas, strict=True):
        if weight == 0:
            continue
        term = theta.clone() if weight == 1 else theta * weight
        out = term if out is None else out.add_(term)
    if out is None:  # all weights zero: only reachable when the sum rule is bypassed
        out = torch.zeros_like(thetas[0])
    return out


METHOD = MergeMethod(
    name="linear",
    reference=(
        "Klimaszewski et al. (2024), No Train but Gain: Language Arithmetic for "
        "training-free Language Adapters enhancement, eq. 4; Wortsman et al. (2022), "
        "Model soups"
    ),
    reference_url="https://arxiv.org/abs/2404.15737",
    needs_init=False,
    merge_tensor=linear,
    weights_sum_to_one=True,
    default_weights=lambda n: [1.0 / n] * n,
    description="weighted average Σ wᵢ θᵢ, weights summing to 1 (default: uniform)",
)
