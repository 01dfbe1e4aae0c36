"""Linear merging: a weighted average of adapter weights, Σ wᵢ θᵢ with Σ wᵢ = 1.

With a shared θ_init this is the paper's language arithmetic (Klimaszewski et al., 2024,
eq. 4): λ θ_A + (1 − λ) θ_B = θ_init + λ τ_A + (1 − λ) τ_B, which is why it needs no
θ_init at all. It is also the "model soup" of Wortsman et al. (2022).

In place (:func:`linear_in_place`) the sum is written term by term into the target,
first term copied and scaled, the others added, zero terms skipped; task arithmetic
writes the same kind of sum with a θ_init term in front (:func:`write_weighted_sum`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from langarith.merge.base import HeldAdapters, MergeMethod, TensorWriter

__all__ = ["METHOD", "Term", "linear", "linear_in_place", "write_weighted_sum"]

#: (coefficient, state by name) of one term of a weighted sum.
Term = tuple[float, Mapping[str, torch.Tensor]]


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


def write_weighted_sum(terms: Sequence[Term]) -> TensorWriter:
    """A writer of Σ cₖ·stateₖ[name]: the first term copied (and scaled unless cₖ = 1),
    the others added with ``alpha``; no terms write 0.

    Callers leave out zero terms, so a single term with coefficient 1 writes its state
    bit for bit.
    """

    def write(name: str, buf: torch.Tensor) -> None:
        if not terms:
            buf.zero_()
        for i, (coef, state) in enumerate(terms):
            if i == 0:
                buf.copy_(state[name])
                if coef != 1:
                    buf.mul_(coef)
            else:
                buf.add_(state[name], alpha=coef)

    return write


def linear_in_place(held: HeldAdapters, weights: Sequence[float], **_: Any) -> TensorWriter:
    """Σ wᵢ θᵢ of the held adapters, terms with weight 0 left out (θ_init unused)."""
    return write_weighted_sum(
        [(w, theta) for w, theta in zip(weights, held.thetas, strict=True) if w != 0]
    )


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
    in_place=linear_in_place,
    description="weighted average Σ wᵢ θᵢ, weights summing to 1 (default: uniform)",
)
