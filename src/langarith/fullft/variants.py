"""The five variants of task arithmetic with full fine-tuning (Table 2), without torch.

Kept apart from :mod:`langarith.fullft.vectors` so that planning and the report (which
name variants) do not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from langarith import LangarithError

__all__ = ["SPARSITY_COLUMNS", "VARIANTS", "Variant", "get_variant"]

#: Columns of a sparsity CSV (one row per target, variant, mode and k).
SPARSITY_COLUMNS = (
    "model", "task", "seed", "target", "variant", "lambda", "mode", "keep", "split", "metric",
    "score",
)  # fmt: skip


@dataclass(frozen=True)
class Variant:
    """One row of Table 2: the signs of λ on the source and target language vectors.

    Attributes:
        slug: the name in paths and configs (``src-tgt``).
        label: the paper's name (``+SRC+TGT``).
        src, tgt: the coefficient of λ for τ^src and τ^tgt (0, 1 or −1).
    """

    slug: str
    label: str
    src: float
    tgt: float

    @property
    def scenario(self) -> str:
        """The score files' scenario: ``ta-<slug>``."""
        return f"ta-{self.slug}"

    @property
    def searched(self) -> bool:
        """Whether the variant has a λ to choose (all but MODEL)."""
        return bool(self.src or self.tgt)

    def weights(self, lam: float) -> tuple[float, float, float]:
        """The weights of (θ_T, θ_src, θ_tgt) at λ (zero terms are skipped by the merge)."""
        return (1.0, self.src * lam, self.tgt * lam)


VARIANTS: dict[str, Variant] = {
    v.slug: v
    for v in (
        Variant("model", "MODEL", 0.0, 0.0),
        Variant("src", "+SRC", 1.0, 0.0),
        Variant("tgt", "+TGT", 0.0, 1.0),
        Variant("src-tgt", "+SRC+TGT", 1.0, 1.0),
        Variant("neg-src-tgt", "−SRC+TGT", -1.0, 1.0),
    )
}


def get_variant(slug: str) -> Variant:
    """The variant called ``slug``; an unknown one lists the valid ones."""
    if slug not in VARIANTS:
        raise LangarithError(
            f"Unknown task-arithmetic variant {slug!r}; must be one of {list(VARIANTS)}"
        )
    return VARIANTS[slug]
