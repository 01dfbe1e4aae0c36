"""Honest aggregation over seeds: mean ± standard deviation and bootstrap intervals.

The papers report averages over three runs (seeds) without spread. Here every cell is
a mean with the sample standard deviation over seeds (``ddof=1``; undefined for one
seed), and each method's gain over its baseline gets a bootstrap 95% confidence
interval over languages *and* seeds, so a reader can tell a real gain from seed noise.

The bootstrap is *crossed* (two-way): the gains form a targets × seeds matrix, and each
resample draws targets with replacement and, independently, seeds with replacement,
then averages the cells of the chosen rows and columns. Seeds are resampled as whole
columns because one seed's task adapter is shared by every target language, so its
effect is common to a column; languages are resampled as whole rows for the same
reason. The interval is the percentile interval of the resampled means. The random
generator is seeded, so the same scores always give the same interval.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from langarith import LangarithError

__all__ = ["DEFAULT_RESAMPLES", "DEFAULT_SEED", "BootstrapCI", "bootstrap_ci", "mean_std"]

#: Number of bootstrap resamples: enough for a stable 2.5% / 97.5% percentile.
DEFAULT_RESAMPLES = 10_000
#: Seed of the bootstrap's random generator (fixed, so intervals are reproducible).
DEFAULT_SEED = 0


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) of the finite values.

    The standard deviation is NaN for fewer than two values (one seed has no spread).
    """
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return math.nan, math.nan
    std = float(array.std(ddof=1)) if array.size > 1 else math.nan
    return float(array.mean()), std


@dataclasses.dataclass(frozen=True)
class BootstrapCI:
    """A mean with its bootstrap confidence interval.

    ``mean`` is the mean over all available (target, seed) cells, ``low``/``high`` the
    percentile interval at ``level``; ``n_targets``/``n_seeds`` say what was resampled.
    """

    mean: float
    low: float
    high: float
    n_targets: int
    n_seeds: int
    level: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (a gain or a loss)."""
        return bool(self.low > 0 or self.high < 0)


def bootstrap_ci(
    gains: pd.DataFrame | np.ndarray,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = 0.95,
    seed: int = DEFAULT_SEED,
) -> BootstrapCI:
    """Crossed bootstrap interval of the mean of a targets × seeds matrix of gains.

    Args:
        gains: rows are target languages, columns seeds; NaN marks a missing cell
            (it is left out of every mean that would include it).
        n_resamples: number of resamples (default 10,000).
        level: coverage of the interval (default 0.95, the 2.5th to 97.5th percentile).
        seed: seed of the random generator (default 0), for reproducible intervals.

    With one seed the interval is over languages only; with one language, over seeds
    only; with one cell it is that cell.
    """
    matrix = np.asarray(gains, dtype=float)
    if matrix.ndim != 2 or matrix.size == 0:
        raise LangarithError(
            f"gains must be a non-empty targets × seeds matrix, got {matrix.shape}"
        )
    if not 0 < level < 1:
        raise LangarithError(f"level must be between 0 and 1, got {level}")
    if n_resamples < 1:
        raise LangarithError(f"n_resamples must be positive, got {n_resamples}")
    mask = np.isfinite(matrix)
    if not mask.any():
        raise LangarithError("gains has no finite value to bootstrap")
    keep_rows, keep_cols = mask.any(axis=1), mask.any(axis=0)
    matrix, mask = matrix[keep_rows][:, keep_cols], mask[keep_rows][:, keep_cols]
    values = np.where(mask, matrix, 0.0)
    weights = mask.astype(float)
    n_rows, n_cols = matrix.shape
    rng = np.random.default_rng(seed)
    # Resampling with replacement = multinomial counts of how often each row/column is drawn;
    # the mean of the resampled cells is then (r @ G @ c) / (r @ M @ c) per resample.
    rows = rng.multinomial(n_rows, np.full(n_rows, 1 / n_rows), size=n_resamples)
    cols = rng.multinomial(n_cols, np.full(n_cols, 1 / n_cols), size=n_resamples)
    sums = np.einsum("bi,ij,bj->b", rows, values, cols)
    counts = np.einsum("bi,ij,bj->b", rows, weights, cols)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    means = means[np.isfinite(means)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return BootstrapCI(
        mean=float(values.sum() / weights.sum()),
        low=float(low),
        high=float(high),
        n_targets=n_rows,
        n_seeds=n_cols,
        level=level,
    )
