"""Choosing λ on validation data: the full grid (the papers), coarse-to-fine, or a race.

Language arithmetic has one free parameter, λ in θ_init + λτ_A + (1 − λ)τ_B. The papers
evaluate every λ of a 0.05-step grid on the target's validation split and keep the best
(ACL §3.1); §5.1 observes that a coarser grid keeps most of the gain at a quarter of the
evaluations. The third search, ``race``, scores a λ only on the validation rows whose
prediction can differ from its scored neighbours'; it needs per-row statistics and lives
in :mod:`langarith.evaluate.race`. All searches
here only ever see a *validation* scoring function: the caller evaluates test data once
the choice is made (see :mod:`langarith.evaluate.runner`), so test data cannot influence λ.

:func:`best_lambda` is the project's one rule for picking λ from a validation curve;
the evaluation jobs use it and so does the report when it recomputes a choice (via
:func:`best_lambda_of` for parallel sequences). Ties are broken towards the larger λ:
of equally good points the one closest to the first adapter of the pair wins. With
``LA(T, x)`` that keeps the target's own adapter when merging does not help (the
"fail-safe" of ECAI §4.3), with ``LA(en, rel)`` the English proxy. Scores count as
equal only when they are equal floats (no tolerance), as they are on the same split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise

from langarith import LangarithError

__all__ = [
    "COARSE_STEP",
    "SEARCH_MODES",
    "best_lambda",
    "best_lambda_of",
    "coarse_points",
    "refine_points",
    "search_lambda",
]

#: ``lambda_search`` values of the config.
SEARCH_MODES = ("full", "coarse_to_fine", "race")
#: Step of the coarse pass of ``coarse_to_fine`` (ACL §5.1: "a step of 0.1 or 0.2").
COARSE_STEP = 0.2

_EPS = 1e-9


def best_lambda(curve: Mapping[float, float]) -> float:
    """The λ with the highest validation score; equal scores go to the larger λ.

    Args:
        curve: λ → validation score (higher is better), e.g. what
            :func:`search_lambda` returns.

    Raises :class:`~langarith.LangarithError` for an empty curve or a score that is
    not a finite number (a NaN would otherwise win or lose arbitrarily).
    """
    if not curve:
        raise LangarithError("Cannot choose λ from an empty validation curve")
    for lam, score in curve.items():
        if not math.isfinite(score):
            raise LangarithError(f"Validation score at λ={lam} is {score}; cannot choose λ")
    return max(curve, key=lambda lam: (curve[lam], lam))


def best_lambda_of(lambdas: Sequence[float], scores: Sequence[float]) -> float:
    """:func:`best_lambda` of a curve given as two parallel sequences (e.g. table columns).

    Each λ may appear once; a repeated λ is refused rather than silently overwritten.
    """
    lams = [float(lam) for lam in lambdas]
    values = [float(score) for score in scores]
    if len(lams) != len(values):
        raise LangarithError(f"Got {len(lams)} λ values for {len(values)} scores")
    curve = dict(zip(lams, values, strict=True))
    if len(curve) != len(lams):
        raise LangarithError(f"A validation curve lists some λ more than once: {sorted(lams)}")
    return best_lambda(curve)


def coarse_points(grid: Sequence[float], coarse_step: float = COARSE_STEP) -> list[float]:
    """Grid points at multiples of ``coarse_step`` from the grid's start, plus its end.

    For the papers' grid (0 to 1, step 0.05) and a 0.2 step: 0, 0.2, 0.4, 0.6, 0.8, 1.
    A grid already as coarse as ``coarse_step`` is returned whole.
    """
    grid = sorted(grid)
    if len(grid) < 3:
        return list(grid)
    start = grid[0]
    picked = [
        lam
        for lam in grid
        if abs((lam - start) / coarse_step - round((lam - start) / coarse_step)) < 1e-6
    ]
    if picked[-1] != grid[-1]:
        picked.append(grid[-1])
    return picked


def refine_points(grid: Sequence[float], best: float, step: float) -> list[float]:
    """The grid's nearest points to ``best - step`` and ``best + step`` (one fine pass).

    Only points within ``step`` of ``best`` qualify, so a pass never jumps further than
    its step; at the grid's ends one side may be missing.
    """
    picked = []
    for direction in (-1, 1):
        side = [lam for lam in grid if 0 < direction * (lam - best) <= step + _EPS]
        if side:
            picked.append(min(side, key=lambda lam: abs(lam - (best + direction * step))))
    return picked


def search_lambda(
    grid: Sequence[float],
    score: Callable[[float], float],
    mode: str = "full",
    *,
    coarse_step: float = COARSE_STEP,
) -> dict[float, float]:
    """Evaluate ``score(λ)`` on validation data over ``grid`` and return the curve.

    Args:
        grid: the configured λ values (e.g. ``langarith.config.grid(lambda_grid)``).
        score: validation score of a λ (higher is better). Never a test score.
        mode: ``"full"`` evaluates every grid point (the papers); ``"coarse_to_fine"``
            evaluates :func:`coarse_points`, then halves the step until it reaches the
            grid's and evaluates the two neighbours of the best point so far at each
            step (:func:`refine_points`): for the papers' grid 6 + 2 + 2 = 10
            evaluations instead of 21, each pass moving at most its own step.
        coarse_step: step of the coarse pass.

    Returns:
        λ → score for every evaluated point, in ascending λ; the chosen λ is
        :func:`best_lambda` of it.
    """
    if mode not in SEARCH_MODES:
        raise LangarithError(f"Unknown lambda_search {mode!r}. Must be one of {list(SEARCH_MODES)}")
    if mode == "race":
        raise LangarithError(
            "lambda_search 'race' scores subsets of the validation rows: use "
            "langarith.evaluate.race.race_search, which needs per-row statistics"
        )
    if not grid:
        raise LangarithError("The λ grid is empty")
    curve: dict[float, float] = {}

    def visit(points: Sequence[float]) -> None:
        for lam in points:
            if lam not in curve:
                curve[lam] = float(score(lam))

    if mode == "full":
        visit(sorted(grid))
    else:
        points = sorted(grid)
        spacing = min((b - a for a, b in pairwise(points)), default=coarse_step)
        visit(coarse_points(points, coarse_step))
        step = coarse_step / 2
        while step > spacing / 2 + _EPS:
            visit(refine_points(points, best_lambda(curve), step))
            step /= 2
    return dict(sorted(curve.items()))
