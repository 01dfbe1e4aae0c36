"""Label-free λ selectors: pick a curve's λ without reading a single target label.

The papers choose λ on the *labelled* target-language validation split; a zero-shot
user has no such labels. A selector here picks λ over the same grid from a
*signal* that needs none:

* ``mlm_loss``: the masked-LM loss of the merged language adapter on held-out
  target-language text (lowest wins): the adapter that models the target's text best.
* ``entropy``: the mean prediction entropy of the task model on the target's task
  inputs, labels removed (lowest wins): the most confident model.
* ``fixed_0.5``: λ = 0.5, which the ACL paper (§5.1) reports as near-optimal; it reads
  nothing.

Adding a selector: one function ``(grid, signal values) -> λ`` and one
:data:`SELECTORS` line (and the name in the schema's list, which a test compares). The
signals themselves are computed in :mod:`langarith.evaluate.label_free_run`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from langarith import LangarithError
from langarith.registry import lookup

__all__ = ["SELECTORS", "SIGNALS", "Selector", "get_selector", "nearest", "pick", "signals_of"]

#: The signals a selector may read, each computed once per λ of a curve.
SIGNALS = ("mlm_loss", "entropy")

Pick = Callable[[Sequence[float], Mapping[float, float]], float]


@dataclass(frozen=True)
class Selector:
    """One label-free way to choose λ.

    Attributes:
        name: the name in the config (``label_free.selectors``) and the tables.
        signal: the per-λ signal it reads (one of :data:`SIGNALS`), or ``None``.
        pick: ``(grid, signal value per λ) -> λ``.
        description: one line for tables and the README.
    """

    name: str
    signal: str | None
    pick: Pick
    description: str


def _checked(grid: Sequence[float], values: Mapping[float, float], what: str) -> list[float]:
    lams = [float(lam) for lam in grid]
    if not lams:
        raise LangarithError(f"{what}: the λ grid is empty")
    missing = [lam for lam in lams if lam not in values]
    if missing:
        raise LangarithError(f"{what}: no signal value at λ = {missing[:5]}")
    bad = [lam for lam in lams if not math.isfinite(float(values[lam]))]
    if bad:
        raise LangarithError(f"{what}: the signal is not finite at λ = {bad[:5]}; cannot choose λ")
    return lams


def lowest(grid: Sequence[float], values: Mapping[float, float], what: str = "selector") -> float:
    """The λ of the grid with the lowest signal; equal values go to the larger λ.

    The tie rule is :func:`langarith.evaluate.search.best_lambda`'s, so a selector and
    the labelled search agree on how a flat curve is read.
    """
    lams = _checked(grid, values, what)
    return min(lams, key=lambda lam: (float(values[lam]), -lam))


def nearest(grid: Sequence[float], lam: float) -> float:
    """The grid point nearest to ``lam`` (equally near: the larger one)."""
    if not grid:
        raise LangarithError("the λ grid is empty")
    return min((float(g) for g in grid), key=lambda g: (abs(g - lam), -g))


def _pick_mlm_loss(grid: Sequence[float], values: Mapping[float, float]) -> float:
    return lowest(grid, values, "mlm_loss")


def _pick_entropy(grid: Sequence[float], values: Mapping[float, float]) -> float:
    return lowest(grid, values, "entropy")


def _pick_fixed_half(grid: Sequence[float], values: Mapping[float, float]) -> float:
    return nearest(grid, 0.5)


#: Every label-free selector, by name.
SELECTORS: dict[str, Selector] = {
    s.name: s
    for s in (
        Selector(
            "mlm_loss",
            "mlm_loss",
            _pick_mlm_loss,
            "lowest masked-LM loss of the merged language adapter on target validation text",
        ),
        Selector(
            "entropy",
            "entropy",
            _pick_entropy,
            "lowest mean prediction entropy of the task model on unlabelled target inputs",
        ),
        Selector(
            "fixed_0.5",
            None,
            _pick_fixed_half,
            "λ = 0.5 (ACL paper §5.1; the grid point nearest 0.5)",
        ),
    )
}


def get_selector(name: str) -> Selector:
    """The registered selector ``name``, or an error listing the known ones."""
    return lookup(SELECTORS, name, "label-free selector")


def signals_of(names: Sequence[str]) -> list[str]:
    """The signals the selectors ``names`` need, in :data:`SIGNALS` order."""
    wanted = {get_selector(name).signal for name in names}
    return [signal for signal in SIGNALS if signal in wanted]


def pick(name: str, grid: Sequence[float], signals: Mapping[str, Mapping[float, float]]) -> float:
    """The λ selector ``name`` picks over ``grid`` from ``signals`` (signal → λ → value)."""
    selector = get_selector(name)
    values = signals.get(selector.signal, {}) if selector.signal is not None else {}
    return float(selector.pick(grid, values))
