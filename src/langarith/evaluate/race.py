"""Racing λ search: spend forward passes only on the rows and λ that can change the choice.

Along a λ curve most validation rows keep their prediction: between neighbouring λ of
the papers' grid (0.05 apart) about 4 % of the demo's NER sentences change, between
λ = 0 and λ = 1 about half. The full grid scores every row at every λ; the race
(config ``lambda_search: race``) scores a row at a λ only where that can matter:

1. **Anchors.** :data:`ANCHORS` evenly spaced grid points (for the papers' grid: 0, 0.5
   and 1) fence the curve: a row whose statistics agree at the two ends of an interval
   is taken to keep them inside it. The two ends are scored on every row; an inner
   anchor, like any new point (step 2), on the rows the ends disagree on plus an audit
   (on the demo's curves about half the rows: a whole pass saved by half).
2. **Bisection on the rows that differ.** An interval (a, b) of evaluated points is
   opened at its middle grid point m: m is scored on the rows whose statistics differ
   between a and b, plus an *audit* sample (:data:`AUDIT_SHARE`, seeded) of the rows
   that agree. If an audited row turns out *better* at m than at both ends (the
   agreement hid a gain, as when merging helps rows both adapters alone get wrong), m
   is scored on all remaining rows too. Every other agreeing row keeps a's statistics.
   Each new point splits its interval in two; scoring a point costs the rows that
   differ around it, not the split.
3. **Branch and bound.** Intervals are opened best first, by an upper bound of the
   score anywhere inside: every differing row takes whichever end's statistics help the
   main metric more (``RaceData.trend``). The race stops when no unopened interval can
   beat the best point found by more than :data:`TOLERANCE` (ties: the larger λ, as in
   :func:`~langarith.evaluate.search.best_lambda`), so regions of the curve clearly
   below the leader are never refined. The leader's two grid neighbours are always
   opened (a peak between two points that agree on every row shows only there).
4. **Choice.** :func:`~langarith.evaluate.search.best_lambda` of the points' scores on
   all rows (scored or carried). The caller then scores the choice on the whole
   validation split, exactly as the full search would (free when the choice was scored
   on every row in one pass), and that score is the one reported.

The carrying rule is an assumption (a row's statistics change monotonically between two
evaluated λ), not a theorem; the audit catches intervals where it hides a gain, and
``benchmarks/lambda_grid.py`` measures what it costs on every demo curve
(``race_regret``). Scores of a set of rows are the task's main metric recomputed from
per-row statistics (:attr:`langarith.evaluate.tasks.EncodedSplit.example_stats`).
Everything is deterministic: the audit samples come from fixed seeds. Only validation
rows are read.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from langarith import LangarithError

__all__ = [
    "ANCHORS",
    "AUDIT_SHARE",
    "MIN_AUDIT",
    "SEED",
    "RaceData",
    "RaceTrace",
    "race_lambda",
    "race_search",
]

#: Grid points scored on every row, evenly spaced from the grid's start to its end.
ANCHORS = 3
#: Share of the agreeing rows of an interval scored at its middle as an audit.
AUDIT_SHARE = 1 / 32
#: Fewest audited rows per opened interval (all of them when fewer agree).
MIN_AUDIT = 4
#: Audit multiplier for the leader's neighbours: a peak's own gain hides there.
NEIGHBOUR_AUDIT = 8.0
#: Audit multiplier for the inner anchors: the ends' agreement spans the whole grid.
INNER_AUDIT = 4.0
#: Points of the main metric an interval's upper bound must beat the leader by to be
#: opened: the indifference zone that bounds what the race may give up on a curve.
TOLERANCE = 0.2
#: Seed of the audit samples.
SEED = 20240521


@dataclass(frozen=True)
class RaceData:
    """What the race needs to know about the validation rows of one curve.

    Attributes:
        n_rows: validation rows (NER sentences, NLI pairs, QA questions).
        stats: ``stats(λ, rows)`` → per-row statistics of those rows (ascending row
            indices, a NumPy array) at λ: an array (len(rows), k).
        metric: ``metric(column totals, rows)`` → the main metric of those rows.
        trend: per statistics column, +1 when the main metric grows with it, −1 when it
            falls, 0 when it does not depend on it (e.g. NER: true positives +1,
            predicted entities −1, gold entities 0).
    """

    n_rows: int
    stats: Callable[[float, np.ndarray], np.ndarray]
    metric: Callable[[np.ndarray, int], float]
    trend: Sequence[int]


@dataclass
class RaceTrace:
    """What a race did (for benchmarks and tests).

    Attributes:
        rows_scored: per evaluated λ, the rows scored (summed over its passes).
        whole: the λ scored on all rows in one pass (the caller's report of such a
            choice needs no pass of its own).
        audits_failed: intervals whose audit made the race score their middle on all rows.
    """

    rows_scored: dict[float, int] = field(default_factory=dict)
    whole: set[float] = field(default_factory=set)
    audits_failed: int = 0

    @property
    def total_rows(self) -> int:
        return sum(self.rows_scored.values())


def anchor_indices(n_points: int, anchors: int = ANCHORS) -> list[int]:
    """Grid indices of the anchors: ``anchors`` evenly spaced points, both ends included."""
    if n_points <= anchors:
        return list(range(n_points))
    return sorted({round(j * (n_points - 1) / (anchors - 1)) for j in range(anchors)})


class _Race:
    """The evaluated points' per-row statistics, and how to open an interval."""

    def __init__(self, points: list[float], data: RaceData, audit_share: float, seed: int) -> None:
        self.points = points
        self.data = data
        self.n = data.n_rows
        self.trend = np.asarray(data.trend, dtype=np.int8)
        self.audit_share = audit_share
        self.seed = seed
        self.est: dict[int, np.ndarray] = {}
        self.score: dict[int, float] = {}
        self.trace = RaceTrace()

    def scored(self, i: int, rows: np.ndarray) -> np.ndarray:
        lam = self.points[i]
        got = np.asarray(self.data.stats(lam, rows), dtype=np.float64)
        if got.ndim != 2 or got.shape[0] != rows.size or got.shape[1] != self.trend.size:
            raise LangarithError(
                f"Per-row statistics at λ={lam} have shape {got.shape}; expected "
                f"({rows.size}, {self.trend.size})"
            )
        self.trace.rows_scored[lam] = self.trace.rows_scored.get(lam, 0) + int(rows.size)
        if rows.size == self.n:
            self.trace.whole.add(lam)
        return got

    def settle(self, i: int, est: np.ndarray) -> None:
        value = float(self.data.metric(est.sum(axis=0), self.n))
        if not math.isfinite(value):
            raise LangarithError(f"Validation score at λ={self.points[i]} is {value}; cannot race")
        self.est[i] = est
        self.score[i] = value

    def anchor(self, i: int) -> None:
        self.settle(i, self.scored(i, np.arange(self.n)))

    def differing(self, a: int, b: int) -> np.ndarray:
        return np.any(self.est[a] != self.est[b], axis=1)

    def upper(self, a: int, b: int) -> float:
        """Best score inside (a, b) if every differing row takes its better end."""
        lo, hi = self.est[a], self.est[b]
        differ = self.differing(a, b)
        if not differ.any():
            return self.score[a]
        best = np.where(self.trend >= 0, np.maximum(lo, hi), np.minimum(lo, hi))
        totals = np.where(differ[:, None], best, lo).sum(axis=0)
        return float(self.data.metric(totals, self.n))

    def open(self, a: int, b: int, scale: float = 1.0, m: int | None = None) -> int:
        """Score the middle point m of (a, b) (or the given ``m`` inside it) where needed
        (audit × ``scale``); return m."""
        m = (a + b) // 2 if m is None else m
        differ = self.differing(a, b)
        agree = np.flatnonzero(~differ)
        share = math.ceil(scale * max(MIN_AUDIT, math.ceil(self.audit_share * agree.size)))
        rng = np.random.default_rng((self.seed, a, b))
        audit = np.sort(rng.permutation(agree)[:share])
        rows = np.sort(np.concatenate([np.flatnonzero(differ), audit]))
        est = self.est[a].copy()
        if rows.size:
            est[rows] = self.scored(m, rows)
        if self.hidden_gain(a, est, audit, agree.size):
            self.trace.audits_failed += 1
            rest = np.setdiff1d(np.arange(self.n), rows, assume_unique=True)
            if rest.size:
                est[rest] = self.scored(m, rest)
        self.settle(m, est)
        return m

    def hidden_gain(self, a: int, est: np.ndarray, audit: np.ndarray, agreeing: int) -> bool:
        """Whether the audit says the carried rows may lift the new point above the leader.

        The audited rows' change against what was carried from ``a``, scaled up to all
        ``agreeing`` rows, is added to the new point's totals: if that beats the leader,
        the carry is not trusted.
        """
        if not audit.size:
            return False
        delta = est[audit] - self.est[a][audit]
        if not np.any(delta != 0):
            return False
        totals = est.sum(axis=0) + delta.sum(axis=0) * (agreeing / audit.size - 1)
        return float(self.data.metric(totals, self.n)) > self.leader()[0]

    def leader(self) -> tuple[float, float]:
        """(score, λ) of the best point so far, ties to the larger λ."""
        i = max(self.score, key=lambda j: (self.score[j], self.points[j]))
        return self.score[i], self.points[i]


def race_lambda(
    grid: Sequence[float],
    data: RaceData,
    *,
    anchors: int = ANCHORS,
    audit_share: float = AUDIT_SHARE,
    tolerance: float = TOLERANCE,
    seed: int = SEED,
    trace: RaceTrace | None = None,
) -> float:
    """The λ of ``grid`` the race picks (see the module docstring); validation data only.

    ``trace``, when given, is filled with the rows scored per λ.
    """
    points = sorted({float(lam) for lam in grid})
    if not points:
        raise LangarithError("The λ grid is empty")
    if data.n_rows < 1:
        raise LangarithError("The racing λ search needs at least one validation row")
    race = _Race(points, data, audit_share, seed)
    fences = anchor_indices(len(points), max(2, anchors))
    race.anchor(fences[0])
    if len(fences) > 1:
        race.anchor(fences[-1])
    for i in fences[1:-1]:  # inner anchors: the rows the ends disagree on, and an audit
        race.open(fences[0], fences[-1], INNER_AUDIT, m=i)
    heap: list[tuple[float, int, int]] = []

    def push(a: int, b: int) -> None:
        if b - a > 1:
            heapq.heappush(heap, (-race.upper(a, b), a, b))

    for a, b in zip(fences, fences[1:], strict=False):
        if b - a > 1:  # every fenced interval is opened (audited) once
            heapq.heappush(heap, (-math.inf, a, b))
    while True:
        while heap:
            bound, a, b = heapq.heappop(heap)
            best, best_lam = race.leader()
            inside_wins_tie = points[b - 1] > best_lam and race.differing(a, b).any()
            if -bound < best + tolerance or (-bound == best + tolerance and not inside_wins_tie):
                continue  # nothing inside can beat the leader
            m = race.open(a, b)
            push(a, m)
            push(m, b)
        # the leader's grid neighbours are always looked at (a peak between two points
        # that agree on every row shows only there)
        lead = points.index(race.leader()[1])
        unseen = [j for j in (lead - 1, lead + 1) if 0 <= j < len(points) and j not in race.est]
        if not unseen:
            break
        a = max(i for i in race.est if i < unseen[0])
        b = min(i for i in race.est if i > unseen[0])
        m = race.open(a, b, NEIGHBOUR_AUDIT)
        push(a, m)
        push(m, b)
    if trace is not None:
        trace.rows_scored.update(race.trace.rows_scored)
        trace.whole |= race.trace.whole
        trace.audits_failed += race.trace.audits_failed
    return race.leader()[1]


def race_search(
    grid: Sequence[float],
    score: Callable[[float], float],
    data: RaceData,
) -> dict[float, float]:
    """The race's counterpart of :func:`~langarith.evaluate.search.search_lambda`.

    Returns the chosen λ with ``score(λ)``, its score on the *whole* validation split (the
    value the full search would report at that λ); the race's own scores stay internal.
    """
    lam = race_lambda(grid, data)
    return {lam: float(score(lam))}
