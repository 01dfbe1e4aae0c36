"""Racing λ search: spend forward passes only where they can still change the choice.

The full grid scores every λ on every validation row; most of those passes go to points
that are clearly worse after a fraction of the rows. The race (config
``lambda_search: race``) scores candidates on growing *slices* of the validation rows
and drops a candidate as soon as the leader is better than it with bootstrap
confidence:

1. **Slices.** The validation rows in a fixed pseudo-random order (seeded, the same in
   every job: :func:`race_order`) are cut into nested slices of :data:`FIRST_SHARE` of
   the rows (at least :data:`MIN_ROWS`), doubling up to all rows (:func:`slice_bounds`).
   A candidate that goes on to the next slice is scored only on the rows it has not
   seen, so a λ that survives to the end costs one pass over the split in all.
2. **Coarse race.** The :func:`~langarith.evaluate.search.coarse_points` of the grid
   race over the slices, stopping before the last slice (or when one is left). On each
   slice the leader is the :func:`~langarith.evaluate.search.best_lambda` of the
   slice's scores (ties → the larger λ); a candidate is dropped when the one-sided
   lower :data:`ALPHA` quantile of the *paired* bootstrap difference leader − candidate
   (:data:`RESAMPLES` resamples of the slice's rows, the same rows for every
   candidate) is above −:data:`TOLERANCE`: with 1 − ``ALPHA`` confidence the candidate
   is at most ``TOLERANCE`` points better than the leader (an indifference zone; a
   candidate equal to the leader on every row goes, and the leader is the larger λ as
   in ``best_lambda``).
3. **Refinement.** When the grid is finer than the coarse step, the grid points within
   half a coarse step of the coarse race's last leader join the survivors, and these
   race again from the first slice (the survivors' slice scores are reused) through
   all rows.
4. **Choice.** The last survivor; if several survive all rows, the
   :func:`~langarith.evaluate.search.best_lambda` of their scores on all rows. The
   caller then scores the choice on the whole validation split, exactly as the full
   search would, and that score is the one reported.

The score of a slice is the task's main metric recomputed from per-row statistics
(:attr:`langarith.evaluate.tasks.EncodedSplit.example_stats`), so a resample is a sum
of rows, not a forward pass. Everything is deterministic: the row order and every
resample come from fixed seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from langarith import LangarithError
from langarith.evaluate.search import COARSE_STEP, best_lambda, coarse_points

__all__ = [
    "ALPHA",
    "FIRST_SHARE",
    "MIN_ROWS",
    "RESAMPLES",
    "SEED",
    "TOLERANCE",
    "RaceData",
    "race_lambda",
    "race_order",
    "race_search",
    "slice_bounds",
]

#: Share of the validation rows in the first slice.
FIRST_SHARE = 1 / 8
#: Fewest rows in the first slice (a bootstrap over fewer rows says little).
MIN_ROWS = 32
#: Bootstrap resamples per slice.
RESAMPLES = 200
#: One-sided level: a candidate goes when the leader wins in more than 1 − ALPHA of them.
ALPHA = 0.05
#: Points of the main metric by which a dropped candidate may at most be better than the
#: leader (with 1 − ALPHA confidence): candidates the leader matches within it go too.
TOLERANCE = 0.2
#: Seed of the row order and of the resamples.
SEED = 20240521

_EPS = 1e-9


def slice_bounds(
    n_rows: int, first_share: float = FIRST_SHARE, min_rows: int = MIN_ROWS
) -> list[int]:
    """Rows of each nested slice: ``first_share`` of the rows, doubling, ending with all.

    For 300 rows: 38, 76, 152, 300; for 1000: 125, 250, 500, 1000.
    """
    if n_rows < 1:
        raise LangarithError("The racing λ search needs at least one validation row")
    size = max(min_rows, math.ceil(n_rows * first_share))
    bounds = []
    while size < n_rows:
        bounds.append(size)
        size *= 2
    return [*bounds, n_rows]


def race_order(n_rows: int, seed: int = SEED) -> np.ndarray:
    """The fixed pseudo-random order in which the race reads the validation rows."""
    return np.random.default_rng(seed).permutation(n_rows)


@dataclass(frozen=True)
class RaceData:
    """What the race needs to know about the validation rows of one curve.

    Attributes:
        bounds: :func:`slice_bounds` of the split (rows in the race's order).
        part: ``part(λ, i)`` → per-row statistics of the rows ``bounds[i - 1]`` to
            ``bounds[i]`` (from 0 for ``i = 0``) at λ: an array (rows, k).
        metric: ``metric(column totals, rows)`` → the main metric of those rows.
    """

    bounds: Sequence[int]
    part: Callable[[float, int], np.ndarray]
    metric: Callable[[np.ndarray, int], float]


class _Race:
    """The slice statistics seen so far, and the elimination rule."""

    def __init__(
        self, data: RaceData, resamples: int, alpha: float, tolerance: float, seed: int
    ) -> None:
        self.data = data
        self.tolerance = tolerance
        self.resamples = resamples
        self.alpha = alpha
        self.seed = seed
        self._parts: dict[tuple[float, int], np.ndarray] = {}

    def stats(self, lam: float, level: int) -> np.ndarray:
        """Per-row statistics of λ on slice ``level`` (all rows up to ``bounds[level]``)."""
        chunks = []
        for i in range(level + 1):
            if (lam, i) not in self._parts:
                part = np.asarray(self.data.part(lam, i), dtype=np.float64)
                expected = self.data.bounds[i] - (self.data.bounds[i - 1] if i else 0)
                if part.ndim != 2 or part.shape[0] != expected:
                    raise LangarithError(
                        f"Slice {i} of the racing λ search gave statistics of shape "
                        f"{part.shape}, expected {expected} rows"
                    )
                self._parts[(lam, i)] = part
            chunks.append(self._parts[(lam, i)])
        return np.concatenate(chunks)

    def _boot(self, stats: np.ndarray, picks: np.ndarray) -> np.ndarray:
        rows = stats.shape[0]
        totals = stats[picks].sum(axis=1)  # (resamples, k)
        return np.array([self.data.metric(t, rows) for t in totals])

    def run(
        self, candidates: Sequence[float], phase: int, last_level: int
    ) -> tuple[list[float], float]:
        """Race ``candidates`` over slices 0 … ``last_level``; (survivors, last leader)."""
        alive = sorted(set(candidates))
        leader = alive[-1]
        for level in range(last_level + 1):
            if len(alive) == 1:
                return alive, alive[0]
            rows = self.data.bounds[level]
            stats = {lam: self.stats(lam, level) for lam in alive}
            observed = {lam: self.data.metric(s.sum(axis=0), rows) for lam, s in stats.items()}
            for lam, value in observed.items():
                if not math.isfinite(value):
                    raise LangarithError(f"Slice score at λ={lam} is {value}; cannot race")
            leader = best_lambda(observed)
            rng = np.random.default_rng((self.seed, phase, level))
            picks = rng.integers(0, rows, size=(self.resamples, rows))
            leading = self._boot(stats[leader], picks)
            kept = []
            for lam in alive:
                if lam != leader:
                    gap = leading - self._boot(stats[lam], picks)
                    if np.quantile(gap, self.alpha) > -self.tolerance:
                        continue
                kept.append(lam)
            alive = kept
        return alive, leader

    def full_rows_best(self, alive: Sequence[float]) -> float:
        last = len(self.data.bounds) - 1
        rows = self.data.bounds[last]
        return best_lambda(
            {lam: self.data.metric(self.stats(lam, last).sum(axis=0), rows) for lam in alive}
        )


def race_lambda(
    grid: Sequence[float],
    data: RaceData,
    *,
    coarse_step: float = COARSE_STEP,
    resamples: int = RESAMPLES,
    alpha: float = ALPHA,
    tolerance: float = TOLERANCE,
    seed: int = SEED,
) -> float:
    """The λ of ``grid`` the race picks (see the module docstring); validation data only."""
    points = sorted(float(lam) for lam in grid)
    if not points:
        raise LangarithError("The λ grid is empty")
    race = _Race(data, resamples, alpha, tolerance, seed)
    last = len(data.bounds) - 1
    coarse = coarse_points(points, coarse_step)
    survivors, _ = race.run(coarse, phase=0, last_level=max(last - 1, 0))
    fine = [lam for lam in points if any(abs(lam - s) <= coarse_step / 2 + _EPS for s in survivors)]
    if set(fine) != set(survivors) or last > 0:
        survivors, _ = race.run(fine, phase=1, last_level=last)
    if len(survivors) == 1:
        return survivors[0]
    return race.full_rows_best(survivors)


def race_search(
    grid: Sequence[float],
    score: Callable[[float], float],
    data: RaceData,
    *,
    coarse_step: float = COARSE_STEP,
) -> dict[float, float]:
    """The race's counterpart of :func:`~langarith.evaluate.search.search_lambda`.

    Returns the chosen λ with ``score(λ)``, its score on the *whole* validation split (the
    value the full search would report at that λ); the slice scores stay internal.
    """
    lam = race_lambda(grid, data, coarse_step=coarse_step)
    return {lam: float(score(lam))}
