"""Which evaluation jobs a config asks for: the papers' scenarios as plain data.

Every job is one (scenario, model, task, target, seed) and writes one tidy score CSV,
``results/scores/<scenario>/<model>/<task>/<target>/seed<seed>.csv``; the λ grid of a
target is one job, so its backbone, heads and data are loaded once. This module only
plans: config in, :class:`ScoreJob` records and paths out, no torch. The rules of
``rules/evaluate.smk`` take their inputs and parameters from here, and
:func:`langarith.evaluate.run_job` executes a job.

Scenarios (method names as in the papers; "LA(A, B)" is θ_init + λτ_A + (1 − λ)τ_B):

``zero_shot`` (ACL §4.2, ECAI Table 1)
    The target has no adapter: pEA (English adapter), pRA (related language's adapter)
    and ``LA`` = LA_t(en, rel), λ chosen on the target's validation split. The target's
    own adapter is never loaded.
``enhancement`` (ACL §4.3, ECAI Table 2)
    The target's own adapter ``T``, ``LA(T,en)``, ``LA(T,REL)`` and ``MIX``: per
    language, the better of the two by validation score.
``low_resource`` (ECAI §4.4, Figure 2)
    ``T``, ``LA(T,en)``, ``LA(T,REL)`` for the targets of ``scenarios.low_resource``
    (e.g. Assamese on IndicXNLI through task ``nli_as``) with their full adapters, and
    for every token-budget adapter of ``token_budget`` (``pt/budget10000``).
``romance`` (ACL Table 1)
    ``LA(T,l2)`` = LA_{l1}(l1, l2) for every other language l2 of the Romance pool, with
    ``T`` as the baseline.
``ties`` (ACL appendix E, Table 3)
    Zero-shot ``TIES``(en, rel) for each top-k and λ of ``scenarios.ties.lambda_grid``,
    against ``LA``; the LA rows are copied from the zero-shot job of the same target
    when that job exists.

The related language of a target comes from ``results/related_languages.tsv``, which
:mod:`langarith.related` writes with :func:`langarith.related.pick_related`. The
planner calls the same function with the same config values (so the DAG knows which
adapters a job reads), and the job checks at run time that the table agrees.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from langarith import LangarithError, plan
from langarith.config import grid, task_targets
from langarith.paths import ANALYSIS_COSINE, ANALYSIS_SPARSITY, SCORE_CSV

__all__ = [
    "COSINE_CSV",
    "SCENARIOS",
    "SCORE_CSV",
    "SPARSITY_CSV",
    "Baseline",
    "Curve",
    "ScoreJob",
    "analysis_adapters",
    "analysis_inputs",
    "analysis_outputs",
    "find_job",
    "job_inputs",
    "job_params",
    "plan_jobs",
    "related_languages",
    "score_outputs",
]

log = logging.getLogger(__name__)

SCENARIOS = ("zero_shot", "enhancement", "low_resource", "romance", "ties")
COSINE_CSV = ANALYSIS_COSINE
SPARSITY_CSV = ANALYSIS_SPARSITY

#: Defaults of the TIES study (ACL appendix E: λ in [0.8, 1.8], top-k 20 and 80).
TIES_GRID = {"start": 0.8, "stop": 1.8, "step": 0.1}
TIES_TOP_K = (20.0, 80.0)
#: Input lengths when ``task_adapter.per_task`` does not say (issue 4's defaults).
MAX_LENGTH = {"ner": 128, "nli": 128, "qa": 384}
DOC_STRIDE = 128


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
class ScoreJob:
    """Everything one evaluation job needs, as plain values (it is a Snakemake param).

    Attributes:
        scenario, model, task, target, seed: the job's identity (its output path).
        kind: task kind (``ner``, ``nli``, ``qa``).
        backbone, task_adapter, init, data: input folders.
        adapters: (label, folder) of every language adapter the job merges.
        baselines: single adapters evaluated as they are.
        curves: λ searches.
        mix: methods among ``curves`` of which ``MIX`` takes the better by validation.
        related: the target's related language (``None`` when the job needs none); the
            job checks it against ``results/related_languages.tsv``.
        reuse: a zero-shot score CSV whose ``reuse_methods`` rows are copied.
        search: ``full`` or ``coarse_to_fine`` (config ``lambda_search``).
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
            named["related"] = plan.RELATED_TSV
        if self.reuse is not None:
            named["reuse"] = self.reuse
        return named

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and dicts (for Snakemake params and JSON)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoreJob:
        values = dict(data)
        values["adapters"] = tuple(tuple(pair) for pair in values["adapters"])
        values["baselines"] = tuple(Baseline(**b) for b in values.get("baselines", ()))
        values["curves"] = tuple(
            Curve(**{**c, "adapters": tuple(c["adapters"]), "grid": tuple(c["grid"])})
            for c in values.get("curves", ())
        )
        for key in ("mix", "reuse_methods"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)

    def labels_used(self) -> set[str]:
        used = {b.adapter for b in self.baselines}
        for curve in self.curves:
            used.update(curve.adapters)
        return used


# ----------------------------------------------------------------------------- config


def _scenario_spec(config: Mapping[str, Any], scenario: str) -> dict[str, Any] | None:
    spec = (config.get("scenarios") or {}).get(scenario)
    return None if spec is None else dict(spec)


def _source(config: Mapping[str, Any]) -> str:
    return str(config.get("source_language", "en"))


def _lambda_grid(config: Mapping[str, Any]) -> tuple[float, ...]:
    return tuple(grid(config["lambda_grid"]))


def _adapter_task(config: Mapping[str, Any], task: str) -> str:
    return str(config["tasks"][task].get("adapter_from") or task)


def _lengths(config: Mapping[str, Any], task: str, kind: str) -> tuple[int, int]:
    per_task = (config.get("task_adapter") or {}).get("per_task") or {}
    spec = per_task.get(task) or per_task.get(_adapter_task(config, task)) or {}
    return int(spec.get("max_length", MAX_LENGTH[kind])), int(spec.get("doc_stride", DOC_STRIDE))


def _targets(config: Mapping[str, Any], task: str) -> list[str]:
    return task_targets(config, task)[0]


def _budget_pairs(config: Mapping[str, Any], *, log_skipped: bool = False) -> list[tuple[str, str]]:
    """(task, language) of the token-budget study whose task is evaluated on the language."""
    budget = config.get("token_budget") or {}
    pairs = []
    for task in budget.get("tasks") or []:
        covered = _targets(config, task)
        for lang in budget.get("languages") or []:
            if lang in covered:
                pairs.append((task, lang))
            elif log_skipped:
                log.info(
                    "token_budget: task %s is not evaluated on %s (not one of its targets %s)",
                    task,
                    lang,
                    covered,
                )
    return pairs


def _low_resource_pairs(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    spec = _scenario_spec(config, "low_resource") or {}
    pairs = []
    for task in spec.get("tasks") or []:
        covered = _targets(config, task)
        for lang in spec.get("targets") or covered:
            if lang in covered:
                pairs.append((task, lang))
    return pairs


def _pairs(config: Mapping[str, Any], scenario: str) -> list[tuple[str, str]]:
    """(task, target) of a scenario, in config order."""
    if scenario == "low_resource":
        seen: dict[tuple[str, str], None] = {}
        for pair in _low_resource_pairs(config) + _budget_pairs(config):
            seen.setdefault(pair, None)
        return list(seen)
    spec = _scenario_spec(config, scenario)
    if spec is None:
        return []
    pairs = []
    for task in spec.get("tasks") or []:
        covered = _targets(config, task)
        targets = spec.get("targets") or covered
        pairs.extend((task, lang) for lang in targets if lang in covered)
    return pairs


# ----------------------------------------------------------------------------- related


@functools.lru_cache(maxsize=8)
def _related_cached(
    targets: tuple[str, ...], pool: tuple[str, ...], overrides: tuple[tuple[str, str], ...]
) -> dict[str, str]:
    from langarith.related import pick_related

    return {p.target: p.related for p in pick_related(targets, pool, dict(overrides))}


def related_languages(config: Mapping[str, Any]) -> dict[str, str]:
    """target → related language, as the ``related_languages`` rule computes it."""
    overrides = (config.get("related") or {}).get("overrides") or {}
    return dict(
        _related_cached(
            tuple(plan.related_targets(config)),
            tuple(plan.related_pool(config)),
            tuple(sorted((str(k), str(v)) for k, v in overrides.items())),
        )
    )


def _related_of(config: Mapping[str, Any], related: Mapping[str, str], target: str) -> str:
    if target not in related:
        raise LangarithError(
            f"No related language is planned for {target!r}: it is not among the related "
            f"languages' targets {sorted(related)} (evaluation languages and task targets)"
        )
    rel = related[target]
    if rel == target:
        raise LangarithError(f"The related language of {target!r} is {target!r} itself")
    if rel == _source(config):
        raise LangarithError(
            f"The related language of {target!r} is the source language {rel!r}, so LA(en, "
            "rel) would merge English with itself; remove it from related.pool or override it"
        )
    if rel not in config["languages"]:
        raise LangarithError(
            f"The related language {rel!r} of {target!r} has no language adapter; add it to "
            "languages or choose another related.pool"
        )
    return rel


# ----------------------------------------------------------------------------- jobs


def _lang_dir(model: str, lang: str, seed: int) -> str:
    return plan.LANG_ADAPTER_DIR.format(model=model, lang=lang, seed=seed)


def _budget_label(lang: str, tokens: int) -> str:
    return f"{lang}/budget{tokens}"


def _enhancement_plan(target_label: str, rel: str, source: str, lam_grid) -> tuple:
    baselines = (Baseline("T", target_label),)
    curves = (
        Curve("LA(T,en)", (target_label, source), lam_grid),
        Curve("LA(T,REL)", (target_label, rel), lam_grid),
    )
    return baselines, curves


def _build_job(
    config: Mapping[str, Any],
    scenario: str,
    model: str,
    task: str,
    target: str,
    seed: int,
    related: Mapping[str, str] | None,
    *,
    check: bool = True,
) -> ScoreJob | None:
    """The job of one (scenario, model, task, target, seed), or ``None`` if not planned.

    ``check=False`` skips the membership checks (the caller iterates planned pairs).
    """
    if scenario not in SCENARIOS:
        raise LangarithError(f"Unknown scenario {scenario!r}. Must be one of {list(SCENARIOS)}")
    if check:
        if model not in plan.model_names(config):
            return None
        if int(seed) not in [int(s) for s in config["seeds"]]:
            return None
        if task not in config["tasks"] or (task, target) not in _pairs(config, scenario):
            return None
    seed = int(seed)
    spec = config["tasks"][task]
    kind = str(spec["kind"])
    source = _source(config)
    languages = list(config["languages"])
    lam_grid = _lambda_grid(config)
    adapters: dict[str, str] = {}
    baselines: tuple[Baseline, ...] = ()
    curves: tuple[Curve, ...] = ()
    mix: tuple[str, ...] = ()
    rel: str | None = None
    reuse: str | None = None
    reuse_methods: tuple[str, ...] = ()

    def related_of() -> str:
        table = related if related is not None else related_languages(config)
        return _related_of(config, table, target)

    if target == source and scenario != "romance":
        log.info("%s: target %s is the source language; not evaluated", scenario, target)
        return None

    if scenario in ("zero_shot", "ties"):
        rel = related_of()
        adapters = {source: _lang_dir(model, source, seed), rel: _lang_dir(model, rel, seed)}
        if scenario == "zero_shot":
            baselines = (Baseline("pEA", source), Baseline("pRA", rel))
            curves = (Curve("LA", (source, rel), lam_grid),)
        else:
            ties = _scenario_spec(config, "ties") or {}
            ties_grid = tuple(grid(ties.get("lambda_grid") or TIES_GRID))
            curves = tuple(
                Curve("TIES", (source, rel), ties_grid, merge="ties", top_k=float(k))
                for k in ties.get("top_k") or TIES_TOP_K
            )
            zero_shot = _scenario_spec(config, "zero_shot") or {}
            if task in (zero_shot.get("tasks") or []):
                reuse = SCORE_CSV.format(
                    scenario="zero_shot", model=model, task=task, target=target, seed=seed
                )
                reuse_methods = ("LA",)
            else:
                curves = (Curve("LA", (source, rel), lam_grid), *curves)
    elif scenario == "enhancement":
        if target not in languages:
            log.info("enhancement: %s has no language adapter of its own; skipped", target)
            return None
        rel = related_of()
        adapters = {target: _lang_dir(model, target, seed), source: _lang_dir(model, source, seed)}
        adapters[rel] = _lang_dir(model, rel, seed)
        baselines, curves = _enhancement_plan(target, rel, source, lam_grid)
        mix = ("LA(T,en)", "LA(T,REL)")
    elif scenario == "low_resource":
        rel = related_of()
        adapters = {source: _lang_dir(model, source, seed), rel: _lang_dir(model, rel, seed)}
        if (task, target) in _low_resource_pairs(config):
            if target not in languages:
                raise LangarithError(
                    f"scenarios.low_resource: target {target!r} has no language adapter; add it "
                    "to languages"
                )
            adapters[target] = _lang_dir(model, target, seed)
            baselines, curves = _enhancement_plan(target, rel, source, lam_grid)
        if (task, target) in _budget_pairs(config):
            for tokens in (config.get("token_budget") or {}).get("tokens") or []:
                label = _budget_label(target, int(tokens))
                adapters[label] = plan.BUDGET_ADAPTER_DIR.format(
                    model=model, lang=target, tokens=tokens, seed=seed
                )
                more_baselines, more_curves = _enhancement_plan(label, rel, source, lam_grid)
                baselines += more_baselines
                curves += more_curves
    else:  # romance
        spec_r = _scenario_spec(config, "romance") or {}
        if target not in languages:
            raise LangarithError(
                f"scenarios.romance: target {target!r} has no language adapter; add it to languages"
            )
        pool = [lang for lang in spec_r.get("pool") or [] if lang != target]
        if not pool:
            raise LangarithError(
                f"scenarios.romance.pool has no language other than the target {target!r}"
            )
        adapters = {target: _lang_dir(model, target, seed)}
        adapters.update({lang: _lang_dir(model, lang, seed) for lang in pool})
        baselines = (Baseline("T", target),)
        curves = tuple(Curve("LA(T,l2)", (target, lang), lam_grid) for lang in pool)

    max_length, doc_stride = _lengths(config, task, kind)
    return ScoreJob(
        scenario=scenario,
        model=model,
        task=task,
        target=target,
        seed=seed,
        kind=kind,
        backbone=plan.BACKBONE_DIR.format(model=model),
        task_adapter=plan.TASK_ADAPTER_DIR.format(
            model=model, task=_adapter_task(config, task), seed=seed
        ),
        init=plan.INIT_DIR.format(model=model),
        data=plan.DATA_DIR.format(dataset=spec["eval_dataset"], lang=target),
        adapters=tuple(adapters.items()),
        baselines=baselines,
        curves=curves,
        mix=mix,
        related=rel,
        reuse=reuse,
        reuse_methods=reuse_methods,
        search=str(config.get("lambda_search") or "full"),
        max_length=max_length,
        doc_stride=doc_stride,
        output=SCORE_CSV.format(
            scenario=scenario, model=model, task=task, target=target, seed=seed
        ),
    )


def plan_jobs(
    config: Mapping[str, Any],
    scenarios: Iterable[str] | None = None,
    *,
    related: Mapping[str, str] | None = None,
) -> list[ScoreJob]:
    """Every evaluation job of the config (optionally of some scenarios only).

    ``related`` (target → related language) replaces the URIEL lookup, e.g. in tests.
    """
    wanted = list(SCENARIOS if scenarios is None else scenarios)
    needs_related = any(
        s in ("zero_shot", "enhancement", "low_resource", "ties") and _pairs(config, s)
        for s in wanted
    )
    if related is None and needs_related:
        related = related_languages(config)
    if "low_resource" in wanted:
        _budget_pairs(config, log_skipped=True)
    jobs = []
    for scenario in wanted:
        for task, target in _pairs(config, scenario):
            for model in plan.model_names(config):
                for seed in config["seeds"]:
                    job = _build_job(
                        config, scenario, model, task, target, seed, related, check=False
                    )
                    if job is not None:
                        jobs.append(job)
    return jobs


def find_job(
    config: Mapping[str, Any],
    scenario: str,
    model: str,
    task: str,
    target: str,
    seed: int | str,
    *,
    related: Mapping[str, str] | None = None,
) -> ScoreJob:
    """The job behind one score CSV; an error names what the config does not plan."""
    job = _build_job(config, scenario, model, task, target, int(seed), related)
    if job is None:
        raise LangarithError(
            f"The config plans no {scenario} evaluation of {model}/{task}/{target}/seed{seed}; "
            "see scenarios in the config and the task's targets"
        )
    return job


def score_outputs(config: Mapping[str, Any]) -> list[str]:
    """Every score CSV of the config (for ``rule all``)."""
    return [job.output for job in plan_jobs(config)]


def _wildcard_job(config: Mapping[str, Any], wildcards: Any) -> ScoreJob:
    return find_job(
        config,
        wildcards.scenario,
        wildcards.model,
        wildcards.task,
        wildcards.target,
        wildcards.seed,
    )


def job_inputs(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Named inputs of the ``lambda_grid`` rule for its wildcards (use with ``unpack``)."""
    return _wildcard_job(config, wildcards).inputs()


def job_params(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """The job record of the ``lambda_grid`` rule's wildcards, as plain values."""
    return _wildcard_job(config, wildcards).to_dict()


# ----------------------------------------------------------------------------- analysis


def analysis_adapters(config: Mapping[str, Any], model: str) -> dict[str, str]:
    """``<lang>/seed<s>`` → folder of every language adapter of a backbone."""
    return {
        f"{lang}/seed{seed}": _lang_dir(model, lang, seed)
        for lang in config["languages"]
        for seed in config["seeds"]
    }


def analysis_inputs(config: Mapping[str, Any], model: str) -> dict[str, Any]:
    return {
        "init": plan.INIT_DIR.format(model=model),
        "adapters": list(analysis_adapters(config, model).values()),
    }


def analysis_outputs(config: Mapping[str, Any]) -> list[str]:
    """The cosine and sparsity tables of every backbone (for ``rule all``)."""
    return [
        path.format(model=model)
        for model in plan.model_names(config)
        for path in (COSINE_CSV, SPARSITY_CSV)
    ]
