"""Which evaluation jobs a config asks for: one planner function per scenario, registered.

Every job is one (scenario, model, task, target, seed) and writes one tidy score CSV,
``results/scores/<scenario>/<model>/<task>/<target>/seed<seed>.csv``; the λ grid of a
target is one job, so its backbone, heads and data are loaded once. This module only
plans: config in, :class:`~langarith.evaluate.jobs.ScoreJob` records and paths out, no
torch (the rules import it while Snakemake builds the DAG). The rules of
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
    for every token-budget adapter of ``token_budget`` (``pt/budget10000``; budgets in
    whitespace tokens, ``tokens`` plus the language's ``extra_tokens``), on the
    backbones of ``token_budget.models`` only (the papers: XLM-R).
``romance`` (ACL Table 1)
    ``LA(T,l2)`` = LA_{l1}(l1, l2) for every other language l2 of the Romance pool, with
    ``T`` as the baseline.
``ties`` (ACL appendix E, Table 3)
    Zero-shot ``TIES``(en, rel) for each top-k and λ of ``scenarios.ties.lambda_grid``,
    against ``LA``; the LA rows are copied from the zero-shot job of the same target
    when that job exists.
``zero_shot_tlr`` (the TLR seed's ALL-MULTI under language arithmetic, issue 17)
    ``zero_shot``'s pEA, pRA and LA with the TLR arm's ALL-MULTI task adapter
    (``results/adapters/<model>/task-tlr/all_multi/<task>/all/seed<s>/``, trained by
    ``rules/tlr.smk``) in place of the English one: the λ engine accepts any task
    adapter. Needs the task under ``tlr.tasks`` with ``all_multi`` among
    ``tlr.variants``; runs on ``tlr.models`` × ``tlr.seeds`` only. The merged language
    adapter keeps every layer, also one the task adapter leaves out (MAD-X 2.0's last).
``zero_shot_nway`` (beyond the papers: their future work, "more components")
    Zero-shot ``LA-k`` = θ_init + w_en·τ_en + Σᵢ wᵢτᵢ over English and the k nearest
    related languages of the pool (the related language first, then by URIEL
    distance), for each k of ``scenarios.zero_shot_nway.k``; the weights are searched
    on validation (:mod:`langarith.evaluate.nway`), on the simplex or in a box that
    allows negation, with ``budget`` merged models scored per k. pEA, pRA and LA rows
    come from the zero-shot job of the same target when that job exists (else the job
    scores them), and LA's choice is the search's first candidate.

Adding a scenario is one planner function plus one registry line (and its key in the
config schema's ``scenarios``, which a test compares with :data:`SCENARIOS`)::

    @register_scenario("my_scenario")
    def _plan_my_scenario(ctx: JobContext) -> JobPlan | None:
        return JobPlan(adapters={...}, baselines=(...), curves=(...))

The planner sees one (model, task, target, seed) of the scenario's (task, target)
pairs (by default ``scenarios.<name>.tasks`` × their targets) and says which adapters
the job merges and what it scores; paths, lengths and the output are common to every
scenario. The config schema lists the same names under ``scenarios`` (tested).

The related language of a target comes from ``results/related_languages.tsv``, which
:mod:`langarith.related` writes with :func:`langarith.related.pick_related`. The
planner calls the same function with the same config values (so the DAG knows which
adapters a job reads), and the job checks at run time that the table agrees.
"""

from __future__ import annotations

import functools
import logging
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from langarith import LangarithError, plan
from langarith.config import config_fingerprint, grid, task_targets
from langarith.evaluate.jobs import Baseline, Curve, ScoreJob, WeightSearch
from langarith.paths import (
    BACKBONE_DIR,
    BUDGET_ADAPTER_DIR,
    DATA_DIR,
    INIT_DIR,
    LANG_ADAPTER_DIR,
    RELATED_TSV,
    SCORE_CSV,
    TASK_ADAPTER_DIR,
    TLR_TASK_ADAPTER_DIR,
    in_setup,
)
from langarith.registry import lookup
from langarith.related import language_distance, pick_related
from langarith.task_kinds import DOC_STRIDE, TASK_MAX_LENGTH

__all__ = [
    "SCENARIOS",
    "JobContext",
    "JobPlan",
    "Scenario",
    "configured_pairs",
    "find_job",
    "nearest_languages",
    "nway_settings",
    "job_inputs",
    "job_params",
    "plan_jobs",
    "register_scenario",
    "related_languages",
    "scenario_search",
    "score_outputs",
]

log = logging.getLogger(__name__)

#: Defaults of the TIES study (ACL appendix E: λ in [0.8, 1.8], top-k 20 and 80).
TIES_GRID = {"start": 0.8, "stop": 1.8, "step": 0.1}
TIES_TOP_K = (20.0, 80.0)
#: Defaults of the N-way scenario (``scenarios.zero_shot_nway``).
NWAY_DEFAULTS: dict[str, Any] = {
    "k": [2, 3],
    "budget": 20,
    "domain": "simplex",
    "box": {"low": -0.5, "high": 1.5},
    "step": 0.05,
    "seed": 0,
}

Pair = tuple[str, str]


# ----------------------------------------------------------------------------- config


def _scenario_spec(config: Mapping[str, Any], scenario: str) -> dict[str, Any] | None:
    spec = (config.get("scenarios") or {}).get(scenario)
    return None if spec is None else dict(spec)


def _source(config: Mapping[str, Any]) -> str:
    return str(config.get("source_language", "en"))


def _adapter_task(config: Mapping[str, Any], task: str) -> str:
    return str(config["tasks"][task].get("adapter_from") or task)


def _lengths(config: Mapping[str, Any], task: str, kind: str) -> tuple[int, int]:
    """max_length and doc_stride of the task adapter (its training lengths)."""
    per_task = (config.get("task_adapter") or {}).get("per_task") or {}
    spec = per_task.get(task) or per_task.get(_adapter_task(config, task)) or {}
    return (
        int(spec.get("max_length", TASK_MAX_LENGTH[kind])),
        int(spec.get("doc_stride", DOC_STRIDE)),
    )


def _targets(config: Mapping[str, Any], task: str) -> list[str]:
    return task_targets(config, task)[0]


def configured_pairs(config: Mapping[str, Any], scenario: str) -> list[Pair]:
    """(task, target) of ``scenarios.<scenario>``: its tasks × targets (default: all).

    Targets a task is not evaluated on are left out; config order is kept.
    """
    spec = _scenario_spec(config, scenario)
    if spec is None:
        return []
    pairs = []
    for task in spec.get("tasks") or []:
        covered = _targets(config, task)
        targets = spec.get("targets") or covered
        pairs.extend((task, lang) for lang in targets if lang in covered)
    return pairs


def _budget_pairs(config: Mapping[str, Any], *, log_skipped: bool = False) -> list[Pair]:
    """(task, language) of the token-budget study whose task is evaluated on the language.

    A language may be a target of some budget tasks only (Assamese: ``ner_as`` and
    ``nli_as``; Swahili and French: ``ner`` and ``nli``); a language no budget task is
    evaluated on is logged (its budget adapters are trained but never scored).
    """
    budget = config.get("token_budget") or {}
    pairs = []
    covered: dict[str, list[str]] = {}
    for task in budget.get("tasks") or []:
        covered[task] = _targets(config, task)
        pairs.extend(
            (task, lang) for lang in budget.get("languages") or [] if lang in covered[task]
        )
    if log_skipped:
        for lang in budget.get("languages") or []:
            if not any(lang in targets for targets in covered.values()):
                log.info(
                    "token_budget: no task of token_budget.tasks %s is evaluated on %s",
                    list(covered),
                    lang,
                )
    return pairs


def _low_resource_pairs(config: Mapping[str, Any], scenario: str = "low_resource") -> list[Pair]:
    """The configured low-resource pairs, then the token-budget pairs, without repeats."""
    seen = dict.fromkeys(configured_pairs(config, scenario) + _budget_pairs(config))
    return list(seen)


# ----------------------------------------------------------------------------- related


@functools.lru_cache(maxsize=8)
def _related_cached(
    targets: tuple[str, ...], pool: tuple[str, ...], overrides: tuple[tuple[str, str], ...]
) -> dict[str, str]:
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


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class JobContext:
    """What a planner knows about the job it plans: the config and the job's identity.

    ``related`` is the target → related language table given to :func:`plan_jobs`
    (``None``: looked up with :func:`related_languages` when a planner asks).
    """

    config: Mapping[str, Any]
    scenario: str
    model: str
    task: str
    target: str
    seed: int
    related_table: Mapping[str, str] | None = None

    @property
    def source(self) -> str:
        """The source language (``en``): the language of the task adapters' training data."""
        return _source(self.config)

    @property
    def languages(self) -> list[str]:
        """Languages that have a language adapter."""
        return list(self.config["languages"])

    @property
    def lambda_grid(self) -> tuple[float, ...]:
        """The λ grid of language arithmetic (config ``lambda_grid``)."""
        return tuple(grid(self.config["lambda_grid"]))

    def spec(self, scenario: str | None = None) -> dict[str, Any]:
        """``scenarios.<scenario>`` of the config (default: this job's), ``{}`` if absent."""
        return _scenario_spec(self.config, scenario or self.scenario) or {}

    def related(self) -> str:
        """The target's related language, checked (an error says why it cannot be used)."""
        table = self.related_table
        if table is None:
            table = related_languages(self.config)
        return _related_of(self.config, table, self.target)

    def lang_dir(self, lang: str) -> str:
        """The folder of a language adapter of this job's model and seed."""
        return LANG_ADAPTER_DIR.format(model=self.model, lang=lang, seed=self.seed)

    def budget_dir(self, lang: str, tokens: int) -> str:
        """The folder of a token-budget language adapter of this job's model and seed."""
        return BUDGET_ADAPTER_DIR.format(model=self.model, lang=lang, tokens=tokens, seed=self.seed)

    def score_csv(self, scenario: str) -> str:
        """The score CSV of this (model, task, target, seed) in ``scenario`` (in the setup)."""
        path = SCORE_CSV.format(
            scenario=scenario, model=self.model, task=self.task, target=self.target, seed=self.seed
        )
        return in_setup(path, self.config)


@dataclass(frozen=True)
class JobPlan:
    """A planner's answer: the adapters a job merges and what it scores.

    ``adapters`` maps labels to folders in the order the job lists them;
    ``task_adapter`` replaces the core's task adapter of the task (``None``: the
    core's); the other fields are those of :class:`~langarith.evaluate.jobs.ScoreJob`.
    """

    adapters: dict[str, str]
    baselines: tuple[Baseline, ...] = ()
    curves: tuple[Curve, ...] = ()
    mix: tuple[str, ...] = ()
    related: str | None = None
    reuse: str | None = None
    reuse_methods: tuple[str, ...] = ()
    searches: tuple[WeightSearch, ...] = ()
    task_adapter: str | None = None


PlanFn = Callable[[JobContext], JobPlan | None]
PairsFn = Callable[[Mapping[str, Any], str], list[Pair]]


@dataclass(frozen=True)
class Scenario:
    """A registered scenario.

    Attributes:
        name: the key under ``scenarios`` in the config and the score path's folder.
        plan: the planner; ``None`` from it means "no job for this target".
        pairs: (task, target) pairs the scenario evaluates, from the config.
        uses_related: whether its jobs need the related-language table.
        evaluates_source: whether the source language itself can be a target.
    """

    name: str
    plan: PlanFn
    pairs: PairsFn = configured_pairs
    uses_related: bool = True
    evaluates_source: bool = False


#: Every scenario, in the order jobs are planned and the rules list them.
SCENARIOS: dict[str, Scenario] = {}


def register_scenario(
    name: str,
    *,
    pairs: PairsFn = configured_pairs,
    uses_related: bool = True,
    evaluates_source: bool = False,
) -> Callable[[PlanFn], PlanFn]:
    """Decorator adding a planner to :data:`SCENARIOS` under ``name``."""

    def add(planner: PlanFn) -> PlanFn:
        if name in SCENARIOS:
            raise LangarithError(f"Scenario {name!r} is registered twice")
        SCENARIOS[name] = Scenario(name, planner, pairs, uses_related, evaluates_source)
        return planner

    return add


def _scenario(name: str) -> Scenario:
    return lookup(SCENARIOS, name, "scenario")


# ----------------------------------------------------------------------------- planners


def _la_against_target(ctx: JobContext, label: str, rel: str) -> tuple[tuple, tuple]:
    """``T`` and LA(T, en), LA(T, REL) for the target adapter ``label``."""
    lam_grid = ctx.lambda_grid
    baselines = (Baseline("T", label),)
    curves = (
        Curve("LA(T,en)", (label, ctx.source), lam_grid),
        Curve("LA(T,REL)", (label, rel), lam_grid),
    )
    return baselines, curves


@register_scenario("zero_shot")
def _plan_zero_shot(ctx: JobContext) -> JobPlan:
    """pEA, pRA and LA(en, rel): the target's own adapter is never loaded."""
    rel = ctx.related()
    source = ctx.source
    return JobPlan(
        adapters={source: ctx.lang_dir(source), rel: ctx.lang_dir(rel)},
        baselines=(Baseline("pEA", source), Baseline("pRA", rel)),
        curves=(Curve("LA", (source, rel), ctx.lambda_grid),),
        related=rel,
    )


@register_scenario("enhancement")
def _plan_enhancement(ctx: JobContext) -> JobPlan | None:
    """T, LA(T,en), LA(T,REL) and MIX, for targets with an adapter of their own."""
    if ctx.target not in ctx.languages:
        # warned once at config load (langarith.config.config_warnings)
        log.debug("enhancement: %s has no language adapter of its own; skipped", ctx.target)
        return None
    rel = ctx.related()
    adapters = {ctx.target: ctx.lang_dir(ctx.target), ctx.source: ctx.lang_dir(ctx.source)}
    adapters[rel] = ctx.lang_dir(rel)
    baselines, curves = _la_against_target(ctx, ctx.target, rel)
    return JobPlan(adapters, baselines, curves, mix=("LA(T,en)", "LA(T,REL)"), related=rel)


@register_scenario("low_resource", pairs=_low_resource_pairs)
def _plan_low_resource(ctx: JobContext) -> JobPlan | None:
    """Enhancement's methods for the full adapter and every token-budget adapter.

    Budget adapters exist only for ``token_budget.models`` (the papers: XLM-R), so a
    pair of the budget study alone plans no job for the other backbones.
    """
    pair = (ctx.task, ctx.target)
    configured = pair in configured_pairs(ctx.config, "low_resource")
    budgeted = pair in _budget_pairs(ctx.config) and ctx.model in plan.budget_models(ctx.config)
    if not (configured or budgeted):
        return None
    rel = ctx.related()
    adapters = {ctx.source: ctx.lang_dir(ctx.source), rel: ctx.lang_dir(rel)}
    baselines: tuple[Baseline, ...] = ()
    curves: tuple[Curve, ...] = ()
    if configured:
        if ctx.target not in ctx.languages:
            raise LangarithError(
                f"scenarios.low_resource: target {ctx.target!r} has no language adapter; add "
                "it to languages"
            )
        adapters[ctx.target] = ctx.lang_dir(ctx.target)
        baselines, curves = _la_against_target(ctx, ctx.target, rel)
    if budgeted:
        for tokens in plan.budget_tokens(ctx.config, ctx.target):
            label = f"{ctx.target}/budget{int(tokens)}"
            adapters[label] = ctx.budget_dir(ctx.target, tokens)
            more_baselines, more_curves = _la_against_target(ctx, label, rel)
            baselines += more_baselines
            curves += more_curves
    return JobPlan(adapters, baselines, curves, related=rel)


@register_scenario("romance", uses_related=False, evaluates_source=True)
def _plan_romance(ctx: JobContext) -> JobPlan:
    """T and LA(T, l2) for every other language l2 of the pool."""
    target = ctx.target
    if target not in ctx.languages:
        raise LangarithError(
            f"scenarios.romance: target {target!r} has no language adapter; add it to languages"
        )
    pool = [lang for lang in ctx.spec().get("pool") or [] if lang != target]
    if not pool:
        raise LangarithError(
            f"scenarios.romance.pool has no language other than the target {target!r}"
        )
    adapters = {target: ctx.lang_dir(target)}
    adapters.update({lang: ctx.lang_dir(lang) for lang in pool})
    return JobPlan(
        adapters,
        baselines=(Baseline("T", target),),
        curves=tuple(Curve("LA(T,l2)", (target, lang), ctx.lambda_grid) for lang in pool),
    )


@register_scenario("ties")
def _plan_ties(ctx: JobContext) -> JobPlan:
    """TIES(en, rel) per top-k against LA, whose rows come from zero_shot when it runs."""
    rel = ctx.related()
    source = ctx.source
    spec = ctx.spec()
    ties_grid = tuple(grid(spec.get("lambda_grid") or TIES_GRID))
    curves: tuple[Curve, ...] = tuple(
        Curve("TIES", (source, rel), ties_grid, merge="ties", top_k=float(k))
        for k in spec.get("top_k") or TIES_TOP_K
    )
    reuse: str | None = None
    reuse_methods: tuple[str, ...] = ()
    if ctx.task in (ctx.spec("zero_shot").get("tasks") or []):
        reuse, reuse_methods = ctx.score_csv("zero_shot"), ("LA",)
    else:
        curves = (Curve("LA", (source, rel), ctx.lambda_grid), *curves)
    return JobPlan(
        adapters={source: ctx.lang_dir(source), rel: ctx.lang_dir(rel)},
        curves=curves,
        related=rel,
        reuse=reuse,
        reuse_methods=reuse_methods,
    )


# ----------------------------------------------------------------------------- N-way


def nway_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """``scenarios.zero_shot_nway`` with its defaults filled in (:data:`NWAY_DEFAULTS`)."""
    spec = {**NWAY_DEFAULTS, **(_scenario_spec(config, "zero_shot_nway") or {})}
    spec["k"] = sorted({int(k) for k in spec["k"]})
    spec["box"] = {**NWAY_DEFAULTS["box"], **(spec.get("box") or {})}
    return spec


@functools.lru_cache(maxsize=256)
def _by_distance(target: str, candidates: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(candidates, key=lambda lang: (language_distance(target, lang), lang)))


def nearest_languages(config: Mapping[str, Any], target: str, related: str) -> list[str]:
    """Pool languages for an N-way merge of ``target``: its related language first, then
    the others of the related pool that have an adapter, nearest first (URIEL distance,
    ties by code); never the target or the source language."""
    source = _source(config)
    languages = set(config["languages"])
    others = tuple(
        lang
        for lang in plan.related_pool(config)
        if lang in languages and lang not in (target, source, related)
    )
    return [related, *_by_distance(target, others)]


def _nway_seed(ctx: JobContext, base: int, k: int) -> int:
    """The optimiser's seed of one search: fixed by the config, the job and k."""
    text = f"{base}/{ctx.model}/{ctx.task}/{ctx.target}/{ctx.seed}/{k}"
    return zlib.crc32(text.encode("utf-8"))


@register_scenario("zero_shot_nway")
def _plan_zero_shot_nway(ctx: JobContext) -> JobPlan | None:
    """LA-k for each k (searched weights), next to pEA, pRA and LA (reused or scored)."""
    spec = nway_settings(ctx.config)
    models = spec.get("models")
    if models and ctx.model not in models:
        return None
    rel = ctx.related()
    source = ctx.source
    ranked = nearest_languages(ctx.config, ctx.target, rel)
    largest = max(spec["k"])
    if largest > len(ranked):
        raise LangarithError(
            f"scenarios.zero_shot_nway.k {largest} is larger than the pool: {ctx.target!r} has "
            f"{len(ranked)} related language(s) with an adapter ({', '.join(ranked)}); lower k "
            "or add languages to related.pool"
        )
    if int(spec["budget"]) < largest + 1:
        raise LangarithError(
            f"scenarios.zero_shot_nway.budget {spec['budget']} is below the number of adapters "
            f"of LA-{largest} ({largest + 1}: English and {largest} related languages); give a "
            f"budget of at least {largest + 1}"
        )
    domain = str(spec["domain"])
    low, high = (
        (float(spec["box"]["low"]), float(spec["box"]["high"])) if domain == "box" else (0.0, 1.0)
    )
    searches = tuple(
        WeightSearch(
            method=f"LA-{k}",
            adapters=(source, *ranked[:k]),
            budget=int(spec["budget"]),
            domain=domain,
            low=low,
            high=high,
            step=float(spec["step"]),
            seed=_nway_seed(ctx, int(spec["seed"]), k),
            start="LA",
        )
        for k in spec["k"]
    )
    adapters = {lang: ctx.lang_dir(lang) for lang in (source, *ranked[:largest])}
    if ctx.task in (ctx.spec("zero_shot").get("tasks") or []):
        return JobPlan(
            adapters,
            searches=searches,
            related=rel,
            reuse=ctx.score_csv("zero_shot"),
            reuse_methods=("pEA", "pRA", "LA"),
        )
    return JobPlan(
        adapters,
        baselines=(Baseline("pEA", source), Baseline("pRA", rel)),
        curves=(Curve("LA", (source, rel), ctx.lambda_grid),),
        searches=searches,
        related=rel,
    )


@register_scenario("zero_shot_tlr")
def _plan_zero_shot_tlr(ctx: JobContext) -> JobPlan | None:
    """``zero_shot`` with the TLR arm's ALL-MULTI task adapter instead of the English one.

    Reads the ``tlr`` section of the config only (the core imports no arm): the folder
    is the arm's path pattern, so the job depends on the arm's training job.
    """
    section = ctx.config.get("tlr") or {}
    variants = section.get("variants") or ["all_multi"]
    if ctx.task not in (section.get("tasks") or {}) or "all_multi" not in variants:
        raise LangarithError(
            f"scenarios.zero_shot_tlr lists task {ctx.task!r}, which has no TLR ALL-MULTI task "
            "adapter: add it under tlr.tasks and all_multi to tlr.variants, or drop it"
        )
    if ctx.model not in (section.get("models") or [ctx.model]):
        return None
    restricted = ((section.get("per_model") or {}).get(ctx.model) or {}).get("tasks")
    if restricted and ctx.task not in restricted:
        return None  # tlr.per_model: this backbone trains no adapter of the task
    if ctx.seed not in [int(s) for s in (section.get("seeds") or [ctx.seed])]:
        return None
    task_adapter = TLR_TASK_ADAPTER_DIR.format(
        model=ctx.model, variant="all_multi", task=ctx.task, target="all", seed=ctx.seed
    )
    return replace(_plan_zero_shot(ctx), task_adapter=task_adapter)


# ----------------------------------------------------------------------------- jobs


def scenario_search(config: Mapping[str, Any], scenario: str) -> str:
    """The λ search of a scenario's jobs: its own ``lambda_search``, else the config's.

    A scenario whose curves are only read at the chosen λ (enhancement bars, tables) can
    race while zero-shot keeps the whole curve that figures and the sub-grid table draw.
    """
    own = (_scenario_spec(config, scenario) or {}).get("lambda_search")
    return str(own or config.get("lambda_search") or "full")


def _is_planned(ctx: JobContext) -> bool:
    """Whether the config plans this (scenario, model, task, target, seed) at all."""
    config = ctx.config
    if ctx.model not in plan.model_names(config):
        return False
    if ctx.seed not in [int(s) for s in config["seeds"]]:
        return False
    if ctx.task not in config["tasks"]:
        return False
    return (ctx.task, ctx.target) in SCENARIOS[ctx.scenario].pairs(config, ctx.scenario)


def _score_job(ctx: JobContext, planned: JobPlan) -> ScoreJob:
    """The job record: the planner's adapters and methods plus the common inputs."""
    config, model, task, seed = ctx.config, ctx.model, ctx.task, ctx.seed
    spec = config["tasks"][task]
    kind = str(spec["kind"])
    max_length, doc_stride = _lengths(config, task, kind)
    return ScoreJob(
        scenario=ctx.scenario,
        model=model,
        task=task,
        target=ctx.target,
        seed=seed,
        kind=kind,
        backbone=BACKBONE_DIR.format(model=model),
        task_adapter=planned.task_adapter
        or TASK_ADAPTER_DIR.format(model=model, task=_adapter_task(config, task), seed=seed),
        init=INIT_DIR.format(model=model),
        data=DATA_DIR.format(dataset=spec["eval_dataset"], lang=ctx.target),
        adapters=tuple(planned.adapters.items()),
        baselines=planned.baselines,
        curves=planned.curves,
        searches=planned.searches,
        mix=planned.mix,
        related=planned.related,
        reuse=planned.reuse,
        reuse_methods=planned.reuse_methods,
        search=scenario_search(config, ctx.scenario),
        max_length=max_length,
        doc_stride=doc_stride,
        output=ctx.score_csv(ctx.scenario),
    )


def _build_job(ctx: JobContext, *, check: bool = True) -> ScoreJob | None:
    """The job of one (scenario, model, task, target, seed), or ``None`` if not planned.

    ``check=False`` skips the membership checks (the caller iterates planned pairs).
    """
    scenario = _scenario(ctx.scenario)
    if check and not _is_planned(ctx):
        return None
    if ctx.target == ctx.source and not scenario.evaluates_source:
        log.info("%s: target %s is the source language; not evaluated", ctx.scenario, ctx.target)
        return None
    planned = scenario.plan(ctx)
    return None if planned is None else _score_job(ctx, planned)


#: Plans by (config content, scenarios, related table). Snakemake asks for the plan once
#: per rule that lists score files and twice per evaluation job (inputs and params):
#: planning the config once keeps ``snakemake -n`` linear in the number of jobs.
_PLANS: dict[tuple, tuple[ScoreJob, ...]] = {}
_INDEXES: dict[tuple, dict[tuple, ScoreJob]] = {}
_PLANS_KEPT = 8


def plan_jobs(
    config: Mapping[str, Any],
    scenarios: Iterable[str] | None = None,
    *,
    related: Mapping[str, str] | None = None,
) -> list[ScoreJob]:
    """Every evaluation job of the config (optionally of some scenarios only).

    ``related`` (target → related language) replaces the URIEL lookup, e.g. in tests.
    The plan is computed once per config content (cached; jobs are immutable).
    """
    return list(_PLANS[_plan_key(config, scenarios, related)])


def _plan_key(
    config: Mapping[str, Any],
    scenarios: Iterable[str] | None = None,
    related: Mapping[str, str] | None = None,
) -> tuple:
    """Plan the config (once per content) and return the key of the cached plan."""
    key = (
        config_fingerprint(config),
        None if scenarios is None else tuple(scenarios),
        None if related is None else tuple(sorted(related.items())),
    )
    if key not in _PLANS:
        if len(_PLANS) >= _PLANS_KEPT:
            _PLANS.clear()
            _INDEXES.clear()
        jobs = tuple(_plan_jobs(config, key[1], related=related))
        _PLANS[key] = jobs
        _INDEXES[key] = {(j.scenario, j.model, j.task, j.target, j.seed): j for j in jobs}
    return key


def _plan_jobs(
    config: Mapping[str, Any],
    scenarios: Iterable[str] | None = None,
    *,
    related: Mapping[str, str] | None = None,
) -> list[ScoreJob]:
    wanted = [_scenario(name) for name in (SCENARIOS if scenarios is None else scenarios)]
    pairs = {s.name: s.pairs(config, s.name) for s in wanted}
    if related is None and any(s.uses_related and pairs[s.name] for s in wanted):
        related = related_languages(config)
    if any(s.name == "low_resource" for s in wanted):
        _budget_pairs(config, log_skipped=True)
    jobs = []
    for scenario in wanted:
        for task, target in pairs[scenario.name]:
            for model in plan.model_names(config):
                for seed in config["seeds"]:
                    ctx = JobContext(config, scenario.name, model, task, target, int(seed), related)
                    job = _build_job(ctx, check=False)
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
    if related is None:  # the cached plan of the whole config: no re-planning per job
        index = _job_index(config)
        found = index.get((scenario, model, task, target, int(seed)))
        if found is not None:
            return found
    ctx = JobContext(config, scenario, model, task, target, int(seed), related)
    job = _build_job(ctx)
    if job is None:
        raise LangarithError(
            f"The config plans no {scenario} evaluation of {model}/{task}/{target}/seed{seed}; "
            "see scenarios in the config and the task's targets"
        )
    return job


def _job_index(config: Mapping[str, Any]) -> dict[tuple, ScoreJob]:
    """(scenario, model, task, target, seed) → job, over the cached plan of the config."""
    return _INDEXES[_plan_key(config)]


@functools.lru_cache(maxsize=4096)
def _job_dict(job: ScoreJob) -> dict[str, Any]:
    return job.to_dict()


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
    """Named inputs of the ``lambda_grid`` rule for its wildcards (use with ``unpack``).

    The related table is the setup's (:func:`langarith.paths.in_setup`).
    """
    named = _wildcard_job(config, wildcards).inputs()
    if "related" in named:
        named["related"] = in_setup(RELATED_TSV, config)
    return named


def job_params(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """The job record of the ``lambda_grid`` rule's wildcards, as plain values (read only)."""
    return _job_dict(_wildcard_job(config, wildcards))
