"""The record of one evaluation job: what it merges, what it evaluates, where it writes.

A :class:`ScoreJob` is plain data, so that it can travel as a Snakemake param and as
JSON: the planners of :mod:`langarith.evaluate.scenarios` build it from the config
(no torch), and :func:`langarith.evaluate.run_job` executes it. ``Baseline``,
``Curve`` and ``WeightSearch`` are the kinds of thing a job scores: one adapter as it
is, a λ search between two adapters, or a searched weight per adapter of an N-way sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from langarith.paths import RELATED_TSV
from langarith.task_kinds import DOC_STRIDE

__all__ = ["Baseline", "Curve", "ScoreJob", "WeightSearch"]


@dataclass(frozen=True)
class Baseline:
    """A single adapter evaluated as it is (``pEA``, ``pRA``, ``T``)."""

    method: str
    adapter: str


@dataclass(frozen=True)
class Curve:
    """A λ search between two adapters.

    ``merge`` ``linear``: LA(first, second) = θ_init + λτ_first + (1 − λ)τ_second.
    ``merge`` ``ties``: θ_init + λ·TIES(τ_first, τ_second) with ``top_k``.
    """

    method: str
    adapters: tuple[str, str]
    grid: tuple[float, ...]
    merge: str = "linear"
    top_k: float | None = None


@dataclass(frozen=True)
class WeightSearch:
    """A gradient-free search of one weight per adapter: θ_init + Σ wᵢτᵢ (N-way LA).

    ``domain`` ``simplex``: wᵢ ≥ 0, Σ wᵢ = 1 (a linear merge, as LA's λ and 1 − λ);
    ``box``: each wᵢ in [``low``, ``high``] (task arithmetic; a negative weight negates
    a language). Candidates lie on a lattice of ``step`` (the λ grid's step), and at
    most ``budget`` distinct merged models are scored on validation. The first
    candidate is the choice of the job's 2-way method ``start`` (``LA``: λ* on the
    first adapter, 1 − λ* on the second, 0 on the rest); ``seed`` seeds the optimiser
    (:mod:`langarith.evaluate.nway`).
    """

    method: str
    adapters: tuple[str, ...]
    budget: int
    domain: str = "simplex"
    low: float = 0.0
    high: float = 1.0
    step: float = 0.05
    seed: int = 0
    start: str | None = "LA"


@dataclass(frozen=True)
class ScoreJob:
    """Everything one evaluation job needs, as plain values (it is a Snakemake param).

    Attributes:
        scenario, model, task, target, seed: the job's identity (its output path).
        kind: task kind (``ner``, ``nli``, ``qa``).
        backbone, task_adapter, init, data: input folders.
        adapters: (label, folder) of every language adapter the job merges.
        baselines: single adapters evaluated as they are.
        curves: λ searches.
        searches: weight searches of N-way sums (``zero_shot_nway``).
        mix: methods among ``curves`` of which ``MIX`` takes the better by validation.
        related: the target's related language (``None`` when the job needs none); the
            job checks it against ``results/related_languages.tsv``.
        reuse: a zero-shot score CSV whose ``reuse_methods`` rows are copied.
        search: ``full``, ``coarse_to_fine`` or ``race`` (config ``lambda_search``).
        max_length, doc_stride: input lengths of the task adapter.
        output: the score CSV.
    """

    scenario: str
    model: str
    task: str
    target: str
    seed: int
    kind: str
    backbone: str
    task_adapter: str
    init: str
    data: str
    adapters: tuple[tuple[str, str], ...]
    baselines: tuple[Baseline, ...] = ()
    curves: tuple[Curve, ...] = ()
    searches: tuple[WeightSearch, ...] = ()
    mix: tuple[str, ...] = ()
    related: str | None = None
    reuse: str | None = None
    reuse_methods: tuple[str, ...] = ()
    search: str = "full"
    max_length: int = 128
    doc_stride: int = DOC_STRIDE
    output: str = field(default="")

    @property
    def adapter_dirs(self) -> dict[str, str]:
        return dict(self.adapters)

    def inputs(self) -> dict[str, Any]:
        """Named inputs of the job's rule."""
        named: dict[str, Any] = {
            "backbone": self.backbone,
            "task_adapter": self.task_adapter,
            "init": self.init,
            "data": self.data,
            "adapters": sorted({folder for _, folder in self.adapters}),
        }
        if self.related is not None:
            named["related"] = RELATED_TSV
        if self.reuse is not None:
            named["reuse"] = self.reuse
        return named

    def to_dict(self) -> dict[str, Any]:
        """Plain tuples and dicts (for Snakemake params and JSON): ``dataclasses.asdict``.

        Written out because ``asdict`` deep-copies every value recursively, which was a
        third of the time ``snakemake -n`` spent in this package on a large config; the
        result is equal to ``asdict(self)`` (tested), so no params change re-runs a job;
        except that a job without weight searches leaves ``searches`` out, so the params
        of the jobs that existed before N-way searches are as they were.
        """
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["adapters"] = tuple(tuple(pair) for pair in self.adapters)
        values["baselines"] = tuple(dict(b.__dict__) for b in self.baselines)
        values["curves"] = tuple(dict(c.__dict__) for c in self.curves)
        if self.searches:
            values["searches"] = tuple(dict(s.__dict__) for s in self.searches)
        else:
            del values["searches"]
        return values

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoreJob:
        values = dict(data)
        values["adapters"] = tuple(tuple(pair) for pair in values["adapters"])
        values["baselines"] = tuple(Baseline(**b) for b in values.get("baselines", ()))
        values["curves"] = tuple(
            Curve(**{**c, "adapters": tuple(c["adapters"]), "grid": tuple(c["grid"])})
            for c in values.get("curves", ())
        )
        values["searches"] = tuple(
            WeightSearch(**{**s, "adapters": tuple(s["adapters"])})
            for s in values.get("searches", ())
        )
        for key in ("mix", "reuse_methods"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)

    def labels_used(self) -> set[str]:
        """Adapter labels the job actually scores (it loads only these)."""
        used = {b.adapter for b in self.baselines}
        for curve in self.curves:
            used.update(curve.adapters)
        for search in self.searches:
            used.update(search.adapters)
        return used
