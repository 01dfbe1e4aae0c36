"""TLR variants: which language adapters a task adapter cycles through, and what a config makes.

A variant is a rule that turns (source, target, the dataset's targets, every dataset's
targets) into the ordered list of language adapters [L_0 … L_K] whose members are active
on optimiser steps s ≡ i (mod K+1): source first, then targets in config order (the
seed paper does not fix an order, so the config's is used and recorded). Variants that
depend on the target train one task adapter per target; the others one per task,
stored under the target name ``all``.

The ``tlr`` config section (schema: ``workflow/schemas/config.schema.yaml``)::

    tlr:
      models: [tinybert]          # default: every model
      seeds: [1]                  # default: the config's seeds
      tasks: {ner: [es, de], nli: [es, de]}   # task -> its targets, in order
      datasets:                   # the arm's own task data (not the core's tasks:)
        ner: {kind: ner, train_dataset: conll2003, eval_dataset: masakhaner}
      variants: [madx, target, bilingual, task_multi, all_multi, leave_out_targ]
      leave_out_last: true        # MAD-X 2.0: no adapter in the last layer
      o_labels: [MISC, DATE]      # entity types read as O (CoNLL MISC, MasakhaNER DATE)
      training: {epochs: 2}       # on top of task_adapter.training / per_task
      alignment: {task: nli, examples: 500, variants: [madx, all_multi]}   # Figure 3
      language_adapters: core     # or paper: the seed's own LA setup, a separate family
      paper_language_adapter: {training: {...}, per_language: {sw: {max_steps: 30000}}}
      per_task: {ner: {...}}

A task of ``tlr.tasks`` is a task of the core (``tasks:``: its datasets, and its MAD-X
adapter when TLR trains as the core does) unless ``tlr.datasets`` defines it: then the
arm trains and scores it on those datasets alone (MasakhaNER with CoNLL-2003 as source,
TyDiQA-GoldP beside the core's XQuAD), and the core trains nothing for it.

Every "Bad input" of the issue that a config can cause is refused here, before any
job runs: an empty list, a language twice, a target without text for its adapter, a
target the test data lacks, NER tag sets of source and test data that differ after
``tlr.o_labels``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langarith import LangarithError
from langarith.config import config_fingerprint
from langarith.data import DATASETS, dataset_covers
from langarith.paths import (
    DATA_DIR,
    LANG_ADAPTER_DIR,
    SCORE_CSV,
    TASK_ADAPTER_DIR,
    TLR_ALIGNMENT_CSV,
    TLR_BADX_LANG_ADAPTER_DIR,
    TLR_PAPER_LANG_ADAPTER_DIR,
    TLR_TASK_ADAPTER_DIR,
    TLR_TTEST_CSV,
    in_setup,
)
from langarith.plan import model_names
from langarith.settings import LanguageAdapterConfig, LanguageAdapterSettings
from langarith.tlr.metrics import o_mapped_labels

__all__ = [
    "ALIGNMENT_DEFAULTS",
    "ALL_TARGETS",
    "DEFAULT_VARIANTS",
    "METHOD_NAMES",
    "PER_TARGET",
    "VARIANTS",
    "TlrPlan",
    "TlrTask",
    "adapter_dir",
    "badx_la_config",
    "badx_la_hparams",
    "badx_pairs",
    "alignment_inputs",
    "alignment_settings",
    "alignment_spec",
    "PAPER_LA_CONFIG",
    "PAPER_LA_TRAINING",
    "la_family",
    "lang_adapter_dir",
    "madx_from_core",
    "paper_la_config",
    "pair_name",
    "paper_la_hparams",
    "scenario_name",
    "score_inputs",
    "score_spec",
    "task_data",
    "tlr_hparams",
    "tlr_plan",
    "tlr_task",
    "train_inputs",
    "train_specs",
    "variant_languages",
]

#: Variant keys in the paper's order (Table 2).
VARIANTS: tuple[str, ...] = (
    "madx",
    "target",
    "bilingual",
    "task_multi",
    "all_multi",
    "leave_out_task",
    "leave_out_targ",
    "badx",
)
#: Variants when ``tlr.variants`` is not given: the seed's seven (BAD-X is asked for).
DEFAULT_VARIANTS: tuple[str, ...] = VARIANTS[:-1]
#: The paper's names, written to the score CSVs' ``method`` column.
METHOD_NAMES: dict[str, str] = {
    "madx": "MAD-X",
    "target": "TARGET",
    "bilingual": "BILINGUAL",
    "task_multi": "TASK-MULTI",
    "all_multi": "ALL-MULTI",
    "leave_out_task": "LEAVE-OUT-TASK",
    "leave_out_targ": "LEAVE-OUT-TARG",
    "badx": "BAD-X",
}
#: Variants whose language list depends on the target: one task adapter per target.
PER_TARGET: frozenset[str] = frozenset({"target", "bilingual", "leave_out_targ", "badx"})
#: The target folder name of a variant that trains one task adapter per task.
ALL_TARGETS = "all"


def _unique(langs: list[str], variant: str, task: str) -> list[str]:
    seen: set[str] = set()
    twice = sorted({lang for lang in langs if lang in seen or seen.add(lang)})
    if twice:
        raise LangarithError(
            f"tlr variant {variant} of task {task}: language(s) {twice} appear twice in "
            f"its language-adapter list {langs}; list each target once under tlr.tasks."
        )
    if not langs:
        raise LangarithError(
            f"tlr variant {variant} of task {task} has no language adapter to train over "
            "(e.g. leave_out_task when every target of ALL-MULTI is this task's); drop it "
            "from tlr.variants or add targets of other tasks."
        )
    return langs


def variant_languages(
    variant: str,
    *,
    source: str,
    target: str | None,
    task_targets: Sequence[str],
    all_targets: Sequence[str],
    task: str = "?",
) -> list[str]:
    """The ordered language-adapter list of ``variant`` (issue 17, "Variants").

    ``target`` is needed (and used) only by the per-target variants (:data:`PER_TARGET`).
    ``all_targets``: the targets of every dataset of the study, in config order. BAD-X's
    list is its one bilingual adapter, named by the pair (:func:`pair_name`).
    """
    if variant not in VARIANTS:
        raise LangarithError(f"Unknown tlr variant {variant!r}. Must be one of {list(VARIANTS)}")
    if variant in PER_TARGET and target is None:
        raise LangarithError(f"tlr variant {variant} trains one task adapter per target; name one")
    all_multi = [source, *[t for t in all_targets if t != source]]
    langs = {
        "madx": lambda: [source],
        "target": lambda: [target],
        "bilingual": lambda: [source, target],
        "task_multi": lambda: [source, *task_targets],
        "all_multi": lambda: all_multi,
        "leave_out_task": lambda: [lang for lang in all_multi if lang not in task_targets],
        "leave_out_targ": lambda: [lang for lang in all_multi if lang != target],
        "badx": lambda: [pair_name(source, str(target))],
    }[variant]()
    if variant.startswith("leave_out") and not [lang for lang in langs if lang != source]:
        raise LangarithError(
            f"tlr variant {variant} of task {task} has no language adapter left but the "
            f"source {source} (ALL-MULTI has no other language): it would be MAD-X. Drop "
            "it from tlr.variants or add targets of other tasks under tlr.tasks."
        )
    return _unique([str(lang) for lang in langs], variant, task)


def pair_name(source: str, target: str) -> str:
    """The label of a BAD-X bilingual corpus and adapter: ``en-sw``."""
    return f"{source}-{target}"


@dataclass(frozen=True)
class TlrTask:
    """What one task of ``tlr.tasks`` trains on (English) and is scored on (targets).

    ``core``: the core's task of that name, whose MAD-X adapter TLR may reuse
    (:func:`madx_from_core`); false for a task of ``tlr.datasets``.
    """

    name: str
    kind: str
    train_dataset: str | None
    eval_dataset: str | None
    core: bool


def tlr_task(config: Mapping[str, Any], task: str) -> TlrTask:
    """The datasets of ``task``: ``tlr.datasets.<task>`` if given, else ``tasks.<task>``."""
    own = ((config.get("tlr") or {}).get("datasets") or {}).get(task)
    if own:
        return TlrTask(task, str(own["kind"]), own["train_dataset"], own["eval_dataset"], False)
    spec = (config.get("tasks") or {}).get(task)
    if spec is None:
        raise LangarithError(
            f"tlr.tasks names {task!r}, which is neither under tasks: nor under tlr.datasets:; "
            "define its kind, train_dataset and eval_dataset under tlr.datasets."
        )
    kind = str(spec.get("kind") or task)
    return TlrTask(task, kind, spec.get("train_dataset"), spec.get("eval_dataset"), True)


def _check_ner_labels(task: TlrTask, o_labels: Sequence[str]) -> None:
    """The task adapter's tags (source data) and the test tags must be the same set once
    ``tlr.o_labels`` are read as O: a test type the adapter never learnt is never found,
    a learnt type the test data lacks only adds false positives."""
    if task.kind != "ner" or task.train_dataset not in DATASETS:
        return
    if task.eval_dataset not in DATASETS:
        return
    train = set(o_mapped_labels(DATASETS[task.train_dataset].labels, o_labels))
    test = set(o_mapped_labels(DATASETS[task.eval_dataset].labels, o_labels))
    if train != test:
        types = sorted({t.partition("-")[2] for t in train ^ test})
        raise LangarithError(
            f"tlr.tasks.{task.name}: the NER tags of {task.train_dataset} (source) and "
            f"{task.eval_dataset} (test) differ in the type(s) {types} after tlr.o_labels "
            f"{list(o_labels)}; add them to tlr.o_labels so both read them as O."
        )


def scenario_name(variant: str) -> str:
    """The score folder of a variant: ``tlr-<variant>`` with hyphens (``tlr-all-multi``)."""
    return "tlr-" + variant.replace("_", "-")


def adapter_dir(model: str, variant: str, task: str, target: str, seed: int | str) -> str:
    """Where one TLR task adapter lives (``target`` is ``all`` for per-task variants)."""
    return TLR_TASK_ADAPTER_DIR.format(
        model=model, variant=variant, task=task, target=target, seed=seed
    )


#: ``tlr.language_adapters: paper``: the seed's language adapters (§4: Pfeiffer with
#: invertible adapters, reduction 2; batch 8, lr 5e-5, length 256, 100k steps, the best
#: held-out perplexity), trained by the core's trainer into their own family.
#: ``adapters``' own Pfeiffer activation (relu) differs from the core's, hence an own θ_init.
PAPER_LA_CONFIG: dict[str, Any] = {
    "architecture": "seq_bn_inv",
    "reduction_factor": 2,
    "non_linearity": "relu",
}
PAPER_LA_TRAINING: dict[str, Any] = {
    "max_steps": 100_000,
    "batch_size": 8,
    "grad_accum": 1,
    "lr": 5.0e-5,
    "block_size": 256,
    "eval_every": 1000,
    "checkpoint_every": 1000,
    # perplexity on the whole held-out split (the trainer stops at its end)
    "max_eval_blocks": 1_000_000,
}


def la_family(config: Mapping[str, Any]) -> str:
    """``core`` (the core's language adapters, default) or ``paper`` (the arm's own)."""
    return str((config.get("tlr") or {}).get("language_adapters") or "core")


def lang_adapter_dir(config: Mapping[str, Any], model: str, lang: str, seed: int | str) -> str:
    """The language adapter TLR stacks for ``lang``: the core's or the paper family's, or
    for a pair ``en-sw`` (:func:`pair_name`) the BAD-X bilingual adapter."""
    if "-" in lang:
        source, target = lang.split("-", 1)
        return TLR_BADX_LANG_ADAPTER_DIR.format(model=model, source=source, lang=target, seed=seed)
    pattern = TLR_PAPER_LANG_ADAPTER_DIR if la_family(config) == "paper" else LANG_ADAPTER_DIR
    return pattern.format(model=model, lang=lang, seed=seed)


def paper_la_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The paper family's adapter config (θ_init seeded as the core's)."""
    core = (config.get("language_adapter") or {}).get("adapter_config") or {}
    spec = {**PAPER_LA_CONFIG, "init_seed": int(core.get("init_seed", 0))}
    return LanguageAdapterConfig.from_mapping(spec, where="tlr paper language adapter").as_dict()


def paper_la_hparams(config: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """The paper family's training settings for ``lang``: :data:`PAPER_LA_TRAINING`, then
    ``tlr.paper_language_adapter.training``, then its ``per_language`` entry (e.g. 30k
    steps for a small corpus), checked as the core's language-adapter settings."""
    section = (config.get("tlr") or {}).get("paper_language_adapter") or {}
    hparams = {**PAPER_LA_TRAINING, **(section.get("training") or {})}
    hparams.update((section.get("per_language") or {}).get(lang) or {})
    where = f"tlr.paper_language_adapter ({lang})"
    return LanguageAdapterSettings.from_mapping(hparams, where=where).as_dict()


def badx_la_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """BAD-X's adapter config: the core's language adapter without the invertible adapter
    (``seq_bn_inv`` -> ``seq_bn``), seeded as the core's θ_init."""
    core = (config.get("language_adapter") or {}).get("adapter_config") or {}
    spec = LanguageAdapterConfig.from_mapping(core, where="language_adapter.adapter_config")
    out = spec.as_dict()
    out["architecture"] = str(out["architecture"]).removesuffix("_inv")
    return out


def badx_la_hparams(config: Mapping[str, Any], target: str) -> dict[str, Any]:
    """BAD-X's training settings for the pair with ``target`` (the seed gives none): the
    core's ``language_adapter.training`` and the target's ``per_language`` entry, then
    ``tlr.badx.training``."""
    core = config.get("language_adapter") or {}
    hparams = dict(core.get("training") or {})
    hparams.update((core.get("per_language") or {}).get(target) or {})
    hparams.update(((config.get("tlr") or {}).get("badx") or {}).get("training") or {})
    where = f"tlr.badx.training ({target})"
    return LanguageAdapterSettings.from_mapping(hparams, where=where).as_dict()


def badx_pairs(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every BAD-X bilingual adapter the config trains."""
    plan = tlr_plan(config)
    return [] if plan is None else plan.badx_pairs()


def madx_from_core(config: Mapping[str, Any]) -> bool:
    """Whether the MAD-X row is the core's task adapter (``results/adapters/…/task/``).

    It is when TLR trains exactly as the core does (no ``tlr.training``/``per_task``
    overrides, no left-out layers, the core's language adapters): the core's trainer is
    TLR with K = 0 (tested), so a second copy would cost a training run for the same
    weights.
    """
    section = config.get("tlr") or {}
    return (
        not section.get("training")
        and not section.get("per_task")
        and not section.get("leave_out_last", True)
        and la_family(config) == "core"
    )


@dataclass(frozen=True)
class TlrAdapter:
    """One TLR task adapter to train: where, over which language adapters."""

    model: str
    variant: str
    task: str
    target: str
    seed: int
    languages: tuple[str, ...]

    @property
    def path(self) -> str:
        return adapter_dir(self.model, self.variant, self.task, self.target, self.seed)


@dataclass(frozen=True)
class TlrPlan:
    """Everything the ``tlr`` section of a config makes."""

    models: tuple[str, ...]
    seeds: tuple[int, ...]
    tasks: dict[str, tuple[str, ...]]
    variants: tuple[str, ...]
    source: str
    adapters: tuple[TlrAdapter, ...]
    madx_core: bool
    badx_tasks: frozenset[str] = frozenset()
    #: the tasks of ``tlr.tasks`` that are the core's (not redefined by ``tlr.datasets``)
    core_tasks: frozenset[str] = frozenset()
    #: model -> the tasks it runs (``tlr.per_model.<model>.tasks``; absent: every task)
    model_tasks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def tasks_of(self, model: str) -> list[str]:
        """The tasks ``model`` runs, in ``tlr.tasks`` order."""
        allowed = self.model_tasks.get(model)
        return [t for t in self.tasks if allowed is None or t in allowed]

    def models_of(self, task: str) -> list[str]:
        """The models that run ``task``."""
        return [m for m in self.models if task in self.tasks_of(m)]

    def languages_of(self, model: str) -> list[str]:
        """The languages whose adapters ``model``'s jobs stack (its adapters' lists and
        its tasks' targets), source first; BAD-X pairs are not languages."""
        out = [self.source]
        for a in self.adapters:
            if a.model == model:
                out += [lang for lang in a.languages if lang not in out and "-" not in lang]
        for task in self.tasks_of(model):
            out += [t for t in self.tasks[task] if t not in out]
        return out

    def variants_of(self, task: str) -> list[str]:
        """The variants of ``task``: BAD-X only on ``tlr.badx.tasks`` (default: every)."""
        return [v for v in self.variants if v != "badx" or task in self.badx_tasks]

    def badx_pairs(self, model: str | None = None) -> list[tuple[str, str]]:
        """(source, target) of every BAD-X bilingual adapter (of ``model``'s tasks), once."""
        tasks = (
            self.badx_tasks if model is None else set(self.badx_tasks) & set(self.tasks_of(model))
        )
        pairs = [(self.source, t) for task in tasks for t in self.tasks[task]]
        return sorted(set(pairs))

    def madx_from_core(self, task: str) -> bool:
        """Whether ``task``'s MAD-X row is the core's task adapter (not trained here)."""
        return self.madx_core and task in self.core_tasks

    def trained(self, task: str) -> list[TlrAdapter]:
        """The adapters of ``task`` that TLR trains (the core's MAD-X one excluded)."""
        return [
            a
            for a in self.adapters
            if a.task == task and not (self.madx_from_core(task) and a.variant == "madx")
        ]

    def adapter_patterns(self, task: str) -> list[str]:
        """The folders a training job of ``task`` writes, ``{model}`` and ``{seed}`` open."""
        return [
            adapter_dir("{model}", v, task, t, "{seed}")
            for v in self.variants_of(task)
            if not (self.madx_from_core(task) and v == "madx")
            for t in self.targets(v, task)
        ]

    def adapter(self, model: str, variant: str, task: str, target: str, seed: int) -> TlrAdapter:
        """The planned adapter of (model, variant, task, target folder, seed)."""
        for a in self.adapters:
            if (a.model, a.variant, a.task, a.target, a.seed) == (
                model,
                variant,
                task,
                target,
                int(seed),
            ):
                return a
        raise LangarithError(f"No TLR adapter {variant}/{task}/{target} is planned for {model}.")

    def targets(self, variant: str, task: str) -> list[str]:
        """The folders of a variant's adapters of ``task``: its targets or ``all``."""
        return list(self.tasks[task]) if variant in PER_TARGET else [ALL_TARGETS]

    def languages(self) -> list[str]:
        """Every language whose adapter TLR stacks, source first."""
        out = [self.source]
        for targets in self.tasks.values():
            out += [t for t in targets if t not in out]
        return out

    def score_files(self, config: Mapping[str, Any], task: str) -> list[str]:
        """Score CSVs of ``task`` (pattern with ``{model}`` and ``{seed}`` left open)."""
        return [
            in_setup(SCORE_CSV, config).format(
                scenario=scenario_name(v), model="{model}", task=task, target=t, seed="{seed}"
            )
            for v in self.variants_of(task)
            for t in self.tasks[task]
        ]

    def ttest_file(self, config: Mapping[str, Any], task: str) -> str:
        return in_setup(TLR_TTEST_CSV, config).format(model="{model}", task=task, seed="{seed}")

    def outputs(self, config: Mapping[str, Any]) -> list[str]:
        """Every score file and t-test file (what ``rule all`` asks of the arm)."""
        out = []
        for model in self.models:
            for seed in self.seeds:
                for task in self.tasks_of(model):
                    files = [*self.score_files(config, task), self.ttest_file(config, task)]
                    out += [f.format(model=model, seed=seed) for f in files]
        return out


def has_text(config: Mapping[str, Any], lang: str) -> bool:
    """Whether the core can train ``lang``'s language adapter on demand: a Wikipedia the
    data step downloads, or the language's own text (``data.text.<lang>``,
    ``data.local_paths.wikipedia.<lang>``); the demo generates every language."""
    data = config.get("data") or {}
    if data.get("source") == "demo" or dataset_covers("wikipedia", lang):
        return True
    local = (data.get("local_paths") or {}).get("wikipedia") or {}
    return lang in (data.get("text") or {}) or lang in local


#: Plans by config content: Snakemake's input functions ask for the plan on every TLR
#: job (59 times on the paper's config), and building it walks every variant and target.
_PLANS: dict[bytes | str, TlrPlan | None] = {}
_PLANS_KEPT = 8


def tlr_plan(config: Mapping[str, Any]) -> TlrPlan | None:
    """The arm's plan, or None when the config has no ``tlr`` section (once per content)."""
    key = config_fingerprint(config)
    if key not in _PLANS:
        if len(_PLANS) >= _PLANS_KEPT:
            _PLANS.clear()
        _PLANS[key] = _build_plan(config)
    return _PLANS[key]


def _build_plan(config: Mapping[str, Any]) -> TlrPlan | None:
    section = config.get("tlr")
    if not section:
        return None
    models = tuple(section.get("models") or model_names(config))
    unknown = sorted(set(models) - set(model_names(config)))
    if unknown:
        raise LangarithError(f"tlr.models names {unknown}, which are not under models:")
    seeds = tuple(int(s) for s in (section.get("seeds") or config["seeds"]))
    source = str(config.get("source_language", "en"))
    tasks = {str(t): tuple(str(x) for x in targets) for t, targets in section["tasks"].items()}
    specs = {task: tlr_task(config, task) for task in tasks}
    untrained = sorted(t for t, spec in specs.items() if not spec.train_dataset)
    if untrained:
        raise LangarithError(
            f"tlr.tasks names {untrained}, which have no train_dataset (TLR trains its own "
            "task adapters); list tasks with English training data."
        )
    for spec in specs.values():
        unknown = [d for d in (spec.train_dataset, spec.eval_dataset) if d and d not in DATASETS]
        if unknown and not spec.core:
            raise LangarithError(
                f"tlr.datasets.{spec.name} names {unknown}, which are not datasets; "
                f"choose among {sorted(DATASETS)}."
            )
    langs = set(config["languages"])
    for task, targets in tasks.items():
        _check_ner_labels(specs[task], section.get("o_labels") or [])
        eval_dataset = specs[task].eval_dataset
        uncovered = [
            t for t in targets if eval_dataset in DATASETS and not dataset_covers(eval_dataset, t)
        ]
        if uncovered:
            raise LangarithError(
                f"tlr.tasks.{task}: target(s) {uncovered} are not in {eval_dataset} (it covers "
                f"{sorted(DATASETS[eval_dataset].languages)}); drop them from tlr.tasks.{task}."
            )
        no_text = [t for t in targets if t not in langs and not has_text(config, t)]
        if no_text:
            raise LangarithError(
                f"tlr.tasks.{task}: target(s) {no_text} have no text for a language adapter "
                "(no Wikipedia); give their text under data.text.<lang> or drop them."
            )
        if source in targets:
            raise LangarithError(f"tlr.tasks.{task} lists the source {source} as a target.")
    if la_family(config) == "paper":
        for lang in [source, *dict.fromkeys(t for ts in tasks.values() for t in ts)]:
            paper_la_hparams(config, lang)  # refuses bad settings before any job runs
    variants = tuple(section.get("variants") or DEFAULT_VARIANTS)
    if "madx" not in variants:
        raise LangarithError("tlr.variants must include madx: every comparison is against it.")
    badx_tasks = frozenset()
    if "badx" in variants:
        badx_tasks = frozenset((section.get("badx") or {}).get("tasks") or tasks)
        unknown_badx = sorted(badx_tasks - set(tasks))
        if unknown_badx:
            raise LangarithError(f"tlr.badx.tasks names {unknown_badx}, not under tlr.tasks")
    all_targets = [t for targets in tasks.values() for t in targets]
    all_targets = list(dict.fromkeys(all_targets))
    model_tasks = _model_tasks(section, models, tasks, model_names(config))
    adapters = []
    for model in models:
        for seed in seeds:
            for task, targets in tasks.items():
                if model in model_tasks and task not in model_tasks[model]:
                    continue
                for variant in variants:
                    if variant == "badx" and task not in badx_tasks:
                        continue
                    per = targets if variant in PER_TARGET else [None]
                    for target in per:
                        langs_of = variant_languages(
                            variant,
                            source=source,
                            target=target,
                            task_targets=targets,
                            all_targets=all_targets,
                            task=task,
                        )
                        folder = target if target is not None else ALL_TARGETS
                        adapters.append(
                            TlrAdapter(model, variant, task, folder, seed, tuple(langs_of))
                        )
    core_tasks = frozenset(t for t, spec in specs.items() if spec.core)
    return TlrPlan(
        models,
        seeds,
        tasks,
        variants,
        source,
        tuple(adapters),
        madx_from_core(config),
        badx_tasks,
        core_tasks,
        model_tasks,
    )


def _model_tasks(
    section: Mapping[str, Any],
    models: Sequence[str],
    tasks: Mapping[str, Any],
    known: Sequence[str],
) -> dict[str, tuple[str, ...]]:
    """``tlr.per_model``: model -> the tasks it is restricted to (the seed's Table 6 runs
    XLM-R on AmericasNLI, XNLI and XQuAD only). Names not under tlr.tasks are ignored, so
    that a config may shrink tlr.tasks alone; a model left with none is an error. ALL-MULTI
    keeps every task's targets whatever the model (the seed's definition)."""
    out = {}
    for model, spec in (section.get("per_model") or {}).items():
        if model not in known:
            raise LangarithError(f"tlr.per_model names {model!r}, which is not under models:")
        if model not in models:
            continue  # not run by this config's tlr.models
        wanted = {str(t) for t in (spec or {}).get("tasks") or []}
        kept = tuple(t for t in tasks if t in wanted)
        if not kept:
            raise LangarithError(
                f"tlr.per_model.{model}.tasks names none of tlr.tasks ({sorted(tasks)}): "
                f"add one, or drop {model} from tlr.models."
            )
        out[str(model)] = kept
    return out


# ----------------------------------------------------------------------------- rule inputs


def tlr_hparams(config: Mapping[str, Any], task: str) -> dict[str, Any]:
    """A TLR task adapter's hparams: the core's (``task_adapter.training``, its
    ``per_task``, ``adapter_config``) with ``tlr.training`` and ``tlr.per_task`` on top.
    A task of ``tlr.datasets`` takes the core's ``per_task`` of its kind (its sequence
    lengths: TyDiQA-GoldP as SQuAD/XQuAD)."""
    core = config.get("task_adapter") or {}
    section = config.get("tlr") or {}
    spec = tlr_task(config, task)
    hparams = dict(core.get("training") or {})
    hparams.update((core.get("per_task") or {}).get(task if spec.core else spec.kind) or {})
    hparams.update(section.get("training") or {})
    hparams.update((section.get("per_task") or {}).get(task) or {})
    hparams["adapter_config"] = dict(core.get("adapter_config") or {})
    return hparams


def train_specs(config: Mapping[str, Any], task: str, model: str, seed: int | str) -> list[dict]:
    """What one training job of ``task`` trains: per adapter its output folder, its
    language adapters (in cycle order) and their languages."""
    plan = tlr_plan(config)
    if plan is None:
        return []
    return [
        {
            "out": a.path,
            "lang_adapters": [lang_adapter_dir(config, model, lang, seed) for lang in a.languages],
            "languages": list(a.languages),
        }
        for a in plan.adapters
        if a.task == task
        and a.model == model
        and a.seed == int(seed)
        and not (plan.madx_from_core(task) and a.variant == "madx")
    ]


def train_inputs(config: Mapping[str, Any], task: str, model: str, seed: int | str) -> list[str]:
    """The language adapters a training job of ``task`` reads (each once)."""
    dirs = [d for spec in train_specs(config, task, model, seed) for d in spec["lang_adapters"]]
    return list(dict.fromkeys(dirs))


def task_data(config: Mapping[str, Any], task: str, lang: str, which: str) -> str:
    """``which`` = ``train_dataset`` or ``eval_dataset`` of ``task`` in ``lang``."""
    return DATA_DIR.format(dataset=getattr(tlr_task(config, task), which), lang=lang)


def score_spec(config: Mapping[str, Any], task: str, model: str, seed: int | str) -> dict:
    """Everything one scoring job of ``task`` reads and writes, as plain strings
    (:func:`langarith.tlr.scoring.job_from_lists`' keywords, backbone excluded)."""
    plan = tlr_plan(config)
    if plan is None:
        raise LangarithError("The config has no tlr section")
    targets = list(plan.tasks[task])
    adapters: dict[str, dict[str, str]] = {}
    scores: dict[str, dict[str, str]] = {}
    for variant in plan.variants_of(task):
        if variant == "madx" and plan.madx_from_core(task):
            core = TASK_ADAPTER_DIR.format(model=model, task=task, seed=seed)
            adapters[variant] = dict.fromkeys(targets, core)
        else:
            adapters[variant] = {
                t: adapter_dir(
                    model, variant, task, t if variant in PER_TARGET else ALL_TARGETS, seed
                )
                for t in targets
            }
        scores[variant] = {
            t: in_setup(SCORE_CSV, config).format(
                scenario=scenario_name(variant), model=model, task=task, target=t, seed=seed
            )
            for t in targets
        }
    section = config.get("tlr") or {}
    return {
        "model": model,
        "task": task,
        "kind": tlr_task(config, task).kind,
        "seed": int(seed),
        "targets": targets,
        "lang_adapters": {t: lang_adapter_dir(config, model, t, seed) for t in targets},
        "test_data": {t: task_data(config, task, t, "eval_dataset") for t in targets},
        "adapters": adapters,
        "scores": scores,
        "ttest": plan.ttest_file(config, task).format(model=model, seed=seed),
        "o_labels": list(section.get("o_labels") or []),
        # BAD-X keeps its bilingual adapter at inference, not the target's
        "inference_lang_adapters": {
            "badx": {
                t: lang_adapter_dir(config, model, pair_name(plan.source, t), seed) for t in targets
            }
        }
        if "badx" in plan.variants_of(task)
        else {},
    }


def score_inputs(config: Mapping[str, Any], task: str, model: str, seed: int | str) -> list[str]:
    """The folders a scoring job reads: task adapters, targets' LAs, test data."""
    spec = score_spec(config, task, model, seed)
    dirs = [d for per in spec["adapters"].values() for d in per.values()]
    dirs += list(spec["lang_adapters"].values()) + list(spec["test_data"].values())
    dirs += [d for per in spec["inference_lang_adapters"].values() for d in per.values()]
    return list(dict.fromkeys(dirs))


# ----------------------------------------------------------------------------- alignment

#: ``tlr.alignment`` defaults: the seed's Figure 3 (500 examples, MAD-X vs ALL-MULTI).
ALIGNMENT_DEFAULTS: dict[str, Any] = {"examples": 500, "variants": ["madx", "all_multi"]}


def alignment_settings(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """``tlr.alignment`` with defaults (task: the first of ``tlr.tasks``), checked; None
    when the config asks for no alignment figure."""
    plan = tlr_plan(config)
    spec = (config.get("tlr") or {}).get("alignment")
    if plan is None or not spec:
        return None
    task = str(spec.get("task") or next(iter(plan.tasks)))
    if task not in plan.tasks:
        raise LangarithError(f"tlr.alignment.task {task!r} is not under tlr.tasks")
    variants = list(spec.get("variants") or ALIGNMENT_DEFAULTS["variants"])
    missing = [v for v in variants if v not in plan.variants]
    per_target = [v for v in variants if v in PER_TARGET]
    if missing or per_target:
        raise LangarithError(
            f"tlr.alignment.variants {missing or per_target}: "
            + (
                "not under tlr.variants (add them there)"
                if missing
                else "train one task adapter per target; use per-task variants (madx, "
                "task_multi, all_multi, leave_out_task)"
            )
        )
    examples = int(spec.get("examples") or ALIGNMENT_DEFAULTS["examples"])
    return {"task": task, "examples": examples, "variants": variants}


def alignment_spec(config: Mapping[str, Any], model: str) -> dict[str, Any]:
    """What the alignment job of ``model`` reads and writes, as plain values
    (:func:`langarith.tlr.alignment.write_alignment`'s keywords, backbone excluded)."""
    plan, settings = tlr_plan(config), alignment_settings(config)
    if plan is None or settings is None:
        raise LangarithError("The config has no tlr.alignment section")
    task = settings["task"]
    langs = [plan.source, *plan.tasks[task]]
    runs = [
        {
            "variant": variant,
            "method": METHOD_NAMES[variant],
            "seed": seed,
            "task_adapter": (
                TASK_ADAPTER_DIR.format(model=model, task=task, seed=seed)
                if variant == "madx" and plan.madx_from_core(task)
                else adapter_dir(model, variant, task, ALL_TARGETS, seed)
            ),
            "lang_adapters": {lang: lang_adapter_dir(config, model, lang, seed) for lang in langs},
        }
        for variant in settings["variants"]
        for seed in plan.seeds
    ]
    return {
        "output": TLR_ALIGNMENT_CSV.format(model=model),
        "model": model,
        "task": task,
        "kind": tlr_task(config, task).kind,
        "source": plan.source,
        "data": {lang: task_data(config, task, lang, "eval_dataset") for lang in langs},
        "runs": runs,
        "examples": settings["examples"],
    }


def alignment_inputs(config: Mapping[str, Any], model: str) -> list[str]:
    """The folders the alignment job of ``model`` reads: task and language adapters, data."""
    spec = alignment_spec(config, model)
    dirs = [run["task_adapter"] for run in spec["runs"]]
    dirs += [d for run in spec["runs"] for d in run["lang_adapters"].values()]
    return list(dict.fromkeys([*dirs, *spec["data"].values()]))
