"""N-way language arithmetic: weights of θ_init + Σ wᵢτᵢ searched on validation data.

The papers merge two language vectors with one λ and choose it on a grid. With English
and the k nearest related languages there are k + 1 weights, too many for a grid, so a
gradient-free optimiser proposes them (nevergrad's CMA-ES, as LoraHub searches LoRA
weights) and the λ engine scores each proposal with its in-place weights, no reload.

* **Domain.** ``simplex`` (default): wᵢ ≥ 0 and Σ wᵢ = 1, merged ``linear``ly, which
  with a shared θ_init is θ_init + Σ wᵢτᵢ; for k = 1 it is LA(en, rel) exactly.
  ``box``: each wᵢ in [low, high], merged by task arithmetic; a negative weight
  subtracts a language ("forgetting via negation").
* **Lattice.** A proposal is rounded to multiples of ``step`` (the λ grid's step):
  on the simplex by largest remainders, so the weights are integers over 1/step that
  sum to exactly 1/step; in the box by rounding each weight. Weights are written as
  those fractions, so for k = 1 the lattice *is* the λ grid and a score file records
  exactly what was merged.
* **Budget.** At most ``budget`` distinct merged models are scored; a proposal that
  rounds to a point already scored costs nothing (the optimiser is told its score
  again), and after ``MAX_ASKS_PER_EVALUATION`` × budget proposals the search stops.
* **Start and choice.** The first candidate is the 2-way LA choice (λ* on English,
  1 − λ* on the nearest related language, 0 elsewhere); the chosen weights are those
  of the highest validation score, equal scores going to the candidate scored first.
  So the search never ends below the 2-way LA on validation, and with k = 1 it ends on
  LA's own choice (tested).
* **Determinism.** The optimiser's random state is seeded from the search's ``seed``,
  and nothing else is random: the same job gives the same weights in any process.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from langarith import LangarithError
from langarith.evaluate.jobs import WeightSearch
from langarith.evaluate.lambda_engine import Point

__all__ = [
    "DOMAINS",
    "MAX_ASKS_PER_EVALUATION",
    "best_weights",
    "check_search",
    "check_weights",
    "lattice_size",
    "search_weights",
    "snap",
    "start_weights",
    "weights_point",
]

log = logging.getLogger(__name__)

#: Weight domains of a search.
DOMAINS = ("simplex", "box")
#: Proposals per scored model before a search that keeps repeating itself stops.
MAX_ASKS_PER_EVALUATION = 20
#: Merge method of each domain (registered in langarith.merge).
_MERGE = {"simplex": "linear", "box": "task-arithmetic"}

Weights = tuple[float, ...]


def lattice_size(step: float) -> int:
    """1/step as an integer; a step that does not divide 1 is refused."""
    if not 0 < step <= 0.5:
        raise LangarithError(f"N-way weight step {step:g} must lie in (0, 0.5]")
    size = round(1.0 / step)
    if abs(size * step - 1.0) > 1e-9:
        raise LangarithError(f"N-way weight step {step:g} must divide 1 (0.05, 0.1, 0.25, ...)")
    return size


def check_search(search: WeightSearch) -> None:
    """Refuse a search that cannot run, before anything is loaded."""
    n = len(search.adapters)
    if n < 2 or len(set(search.adapters)) != n:
        raise LangarithError(
            f"{search.method}: an N-way search needs two different adapters or more, got "
            f"{list(search.adapters)}"
        )
    if search.domain not in DOMAINS:
        raise LangarithError(
            f"{search.method}: unknown weight domain {search.domain!r}; use one of {DOMAINS}"
        )
    if search.budget < n:
        raise LangarithError(
            f"{search.method}: the optimiser budget {search.budget} is below the number of "
            f"adapters {n} ({', '.join(search.adapters)}); raise "
            "scenarios.zero_shot_nway.budget to at least the largest k + 1"
        )
    size = lattice_size(search.step)
    if search.domain == "box":
        low, high = _box_counts(search, size)
        if not (math.isfinite(search.low) and math.isfinite(search.high)) or low >= high:
            raise LangarithError(
                f"{search.method}: the weight box [{search.low:g}, {search.high:g}] holds no "
                f"two weights {search.step:g} apart; give box.low < box.high"
            )


def _box_counts(search: WeightSearch, size: int) -> tuple[int, int]:
    """The box's bounds in lattice units (inside the box)."""
    return math.ceil(search.low * size - 1e-9), math.floor(search.high * size + 1e-9)


def _counts_to_weights(counts: Sequence[int], size: int, domain: str) -> Weights:
    """Lattice counts as weights; on the simplex the last is 1 − the others (as LA's 1 − λ)."""
    weights = [c / size for c in counts]
    if domain == "simplex":
        weights[-1] = 1.0 - math.fsum(weights[:-1])
    return tuple(weights)


def snap(search: WeightSearch, values: Sequence[float]) -> Weights:
    """The lattice point of ``values`` in the search's domain (see the module docstring)."""
    size = lattice_size(search.step)
    x = np.asarray(values, dtype=np.float64)
    if x.shape != (len(search.adapters),) or not np.isfinite(x).all():
        raise LangarithError(
            f"{search.method}: {len(x)} weight(s) {list(map(float, x))} do not match the "
            f"{len(search.adapters)} adapters {list(search.adapters)}"
        )
    if search.domain == "box":
        low, high = _box_counts(search, size)
        counts = [int(min(high, max(low, round(v * size)))) for v in x]
        return _counts_to_weights(counts, size, "box")
    x = np.clip(x, 0.0, None)
    total = float(x.sum())
    share = x / total * size if total > 0 else np.full(len(x), size / len(x))
    counts = np.floor(share + 1e-9).astype(int)
    rest = size - int(counts.sum())
    order = sorted(range(len(x)), key=lambda i: (-(share[i] - counts[i]), i))
    for i in order[:rest]:
        counts[i] += 1
    return _counts_to_weights([int(c) for c in counts], size, "simplex")


def check_weights(search: WeightSearch, weights: Sequence[float]) -> Weights:
    """``weights`` as a tuple if they fit the search's adapters and domain, else an error."""
    values = tuple(float(w) for w in weights)
    if len(values) != len(search.adapters):
        raise LangarithError(
            f"{search.method}: {len(values)} weight(s) {list(values)} do not match the "
            f"{len(search.adapters)} adapters {list(search.adapters)}"
        )
    if not all(math.isfinite(w) for w in values):
        raise LangarithError(f"{search.method}: weights {list(values)} are not all finite")
    if search.domain == "simplex":
        if min(values) < 0 or abs(math.fsum(values) - 1.0) > 1e-9:
            raise LangarithError(
                f"{search.method}: weights {list(values)} are not on the simplex "
                "(each ≥ 0, summing to 1)"
            )
    elif min(values) < search.low - 1e-12 or max(values) > search.high + 1e-12:
        raise LangarithError(
            f"{search.method}: weights {list(values)} leave the box "
            f"[{search.low:g}, {search.high:g}]"
        )
    return values


def weights_point(search: WeightSearch, weights: Sequence[float]) -> Point:
    """The engine's point of ``weights``: linear on the simplex, task arithmetic in the box."""
    values = check_weights(search, weights)
    return Point(_MERGE[search.domain], tuple(zip(search.adapters, values, strict=True)))


def start_weights(search: WeightSearch, pair: tuple[str, str], lam: float) -> Weights:
    """The 2-way choice LA(first, second) at λ as a lattice point of the search.

    λ on ``first``, 1 − λ on ``second``, 0 on the other adapters; both adapters must be
    among the search's.
    """
    missing = [label for label in pair if label not in search.adapters]
    if missing:
        raise LangarithError(
            f"{search.method}: its start {search.start} merges {list(pair)}, but "
            f"{missing} are not among its adapters {list(search.adapters)}"
        )
    size = lattice_size(search.step)
    counts = [0] * len(search.adapters)
    first, second = (search.adapters.index(label) for label in pair)
    counts[first] = round(lam * size)
    counts[second] = size - counts[first]
    if search.domain == "box":
        low, high = _box_counts(search, size)
        counts = [min(high, max(low, c)) for c in counts]
        return _counts_to_weights(counts, size, "box")
    weights = [c / size for c in counts]
    weights[second] = 1.0 - weights[first]  # as LA writes 1 − λ
    return tuple(weights)


def best_weights(scored: Mapping[Weights, float]) -> Weights:
    """The candidate with the highest score; equal scores go to the one scored first."""
    if not scored:
        raise LangarithError("No N-way candidate was scored")
    for weights, score in scored.items():
        if not math.isfinite(score):
            raise LangarithError(f"Validation score of weights {weights} is {score}")
    best = max(scored.values())
    return next(w for w, score in scored.items() if score == best)


def search_weights(
    search: WeightSearch,
    score: Callable[[Weights], float],
    start: Sequence[float] | None = None,
) -> dict[Weights, float]:
    """Score up to ``search.budget`` distinct lattice points and return them in order.

    Args:
        search: adapters, domain, lattice step, budget and seed.
        score: the validation score of a weight vector (higher is better).
        start: the first candidate (e.g. :func:`start_weights`); snapped to the lattice.

    Returns weights → score in the order scored; the choice is :func:`best_weights`.
    """
    import nevergrad as ng  # ~2 s to import: only jobs that search weights pay it

    check_search(search)
    n = len(search.adapters)
    low, high = (search.low, search.high) if search.domain == "box" else (0.0, 1.0)
    param = ng.p.Array(shape=(n,), lower=low, upper=high)
    param.random_state = np.random.RandomState(search.seed)
    optimiser = ng.optimizers.CMA(parametrization=param, budget=search.budget, num_workers=1)
    if start is not None:
        first = snap(search, start)
        optimiser.suggest(np.clip(np.asarray(first, dtype=np.float64), low, high))
    scored: dict[Weights, float] = {}
    seen: dict[Weights, Weights] = {}  # rounded → as scored (1 − λ and c/size may differ in ulp)
    asks = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nevergrad's notes on budgets and convergence
        while len(scored) < search.budget and asks < MAX_ASKS_PER_EVALUATION * search.budget:
            candidate = optimiser.ask()
            asks += 1
            weights = first if asks == 1 and start is not None else snap(search, candidate.value)
            key = tuple(round(w, 10) for w in weights)
            if key not in seen:
                seen[key] = weights
                scored[weights] = float(score(weights))
            optimiser.tell(candidate, -scored[seen[key]])
    if len(scored) < search.budget:
        log.info(
            "%s: %d distinct lattice points after %d proposals (budget %d)",
            search.method, len(scored), asks, search.budget,
        )  # fmt: skip
    return scored
