"""What the ``xmod`` section of a config makes: backbones, added languages, task models,
score files. Pure functions of the config (no torch), for ``rules/xmod.smk``, the
report's ``xmod`` table and ``langarith plan``.

A config's ``xmod.models`` lists language sets (``demo``, ``60-265k``); each is either a
tiny model pre-trained offline (``demo: {like: <an xlmr model key>}``) or a released
checkpoint (``hub: facebook/xmod-base-60-265k``), and runs the arms of ``arms``
(``xmod``, ``shared``). Paths (``resources/backbones/<arm>-<set>/``,
``results/xmod/<arm>-<set>/...``) come from :mod:`langarith.paths`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langarith import LangarithError
from langarith.config import grid, task_targets
from langarith.data import dataset_covers
from langarith.paths import (
    DATA_DIR,
    SCORE_CSV,
    XMOD_ADDED_DIR,
    XMOD_BACKBONE_DIR,
    XMOD_TASK_DIR,
    in_setup,
)
from langarith.settings import (
    SettingsError,
    XmodAddSettings,
    XmodFinetuneSettings,
    XmodPretrainSettings,
)

__all__ = [
    "ARMS",
    "SCENARIO_OF_ARM",
    "added_dirs",
    "adding_params",
    "finetune_params",
    "set_params",
    "added_languages",
    "arm_of_scenario",
    "backbone_inputs",
    "check_xmod",
    "data_dirs",
    "final_outputs",
    "dev_data",
    "finetuned_tasks",
    "grid_points",
    "model_task",
    "job_counts",
    "la_final_outputs",
    "la_inputs",
    "la_job",
    "la_score_outputs",
    "la_sets",
    "la_targets",
    "la_tasks",
    "la_wanted",
    "score_inputs",
    "score_job",
    "train_data",
    "score_outputs",
    "score_paths",
    "set_spec",
    "sets",
    "target_data",
    "targets",
    "task_dirs",
    "tasks",
    "xmod_section",
]

#: The arms a language set can run, and the scenario (score folder) of each.
ARMS = ("xmod", "shared")
SCENARIO_OF_ARM = {"xmod": "xmod", "shared": "xmod-shared"}
#: The score folder of scenario ``xmod_la`` (modules merged by language arithmetic).
LA_SCENARIO = "xmod-la"


def xmod_section(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config's ``xmod`` section (empty when the arm is not run)."""
    return dict(config.get("xmod") or {})


def sets(config: Mapping[str, Any]) -> list[str]:
    """Names of the configured language sets, in config order."""
    return [str(m["name"]) for m in xmod_section(config).get("models") or []]


def set_spec(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    for spec in xmod_section(config).get("models") or []:
        if spec["name"] == name:
            return dict(spec)
    raise LangarithError(f"xmod.models has no set {name!r}; sets: {', '.join(sets(config))}.")


def arms(config: Mapping[str, Any], name: str) -> list[str]:
    """Arms of one set: its ``arms`` (default both; a released checkpoint has no SHARED)."""
    spec = set_spec(config, name)
    default = ["xmod"] if spec.get("hub") else list(ARMS)
    return [str(a) for a in spec.get("arms") or default]


def arm_of_scenario(scenario: str) -> str:
    for arm, name in SCENARIO_OF_ARM.items():
        if name == scenario:
            return arm
    raise LangarithError(f"{scenario!r} is not an X-MOD scenario ({', '.join(SCENARIO_OF_ARM)}).")


def tasks(config: Mapping[str, Any]) -> list[str]:
    """Task keys fine-tuned and scored by the arm."""
    return [str(t) for t in xmod_section(config).get("tasks") or []]


def finetuned_tasks(config: Mapping[str, Any]) -> list[str]:
    """Tasks fine-tuned on English; a task with ``adapter_from`` (MLQA from QA) is scored
    with the model fine-tuned for that task, as X-MOD scores XQuAD and MLQA with one
    SQuAD model."""
    return [t for t in tasks(config) if not config["tasks"][t].get("adapter_from")]


def model_task(config: Mapping[str, Any], task: str) -> str:
    """The fine-tuned task whose model scores ``task``."""
    return str(config["tasks"][task].get("adapter_from") or task)


def added_languages(config: Mapping[str, Any]) -> list[str]:
    return [str(lang) for lang in xmod_section(config).get("added") or []]


def targets(config: Mapping[str, Any], task: str) -> list[str]:
    """Languages a task is scored on: ``xmod.targets[task]``, else the source language
    and the task's targets in the core's sense (evaluation languages its dataset covers).

    Every target must have a module in every set or be added post hoc; one with neither
    is refused naming the set's languages.
    """
    explicit = (xmod_section(config).get("targets") or {}).get(task)
    if explicit:
        found = [str(lang) for lang in explicit]
    else:
        source = str(config.get("source_language", "en"))
        eval_dataset = config["tasks"][task]["eval_dataset"]
        found = [source] if dataset_covers(eval_dataset, source) else []
        found += [lang for lang in task_targets(config, task)[0] if lang not in found]
    added = set(added_languages(config))
    for name in sets(config):
        known = set(set_spec(config, name).get("languages") or [])
        missing = [lang for lang in found if lang not in known | added]
        if missing:
            raise LangarithError(
                f"xmod task {task}: target(s) {missing} have no module in set {name!r} "
                f"(its languages: {', '.join(sorted(known))}) and are not in xmod.added; "
                "add them post hoc or drop them from the targets."
            )
    return found


def backbone_dir(arm: str, name: str) -> str:
    return XMOD_BACKBONE_DIR.format(arm=arm, xset=name)


def backbone_inputs(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A demo set's inputs: the XLM-R-shaped core backbone it takes its sizes and
    tokenizer from, and the Wikipedia corpora of its pre-trained languages."""
    spec = set_spec(config, name)
    demo = spec.get("demo")
    if not demo:
        return {}
    return {
        "base": f"resources/backbones/{demo['like']}",
        "corpora": [DATA_DIR.format(dataset="wikipedia", lang=lang) for lang in spec["languages"]],
    }


def added_dirs(config: Mapping[str, Any], arm: str, name: str) -> dict[str, str]:
    return {
        lang: XMOD_ADDED_DIR.format(arm=arm, xset=name, lang=lang)
        for lang in added_languages(config)
    }


def task_dirs(config: Mapping[str, Any], arm: str, name: str, seed: int | str) -> dict[str, str]:
    return {
        task: XMOD_TASK_DIR.format(arm=arm, xset=name, task=model_task(config, task), seed=seed)
        for task in tasks(config)
    }


def target_data(config: Mapping[str, Any], task: str) -> dict[str, str]:
    """Test data folder of every target of ``task``."""
    dataset = config["tasks"][task]["eval_dataset"]
    return {lang: DATA_DIR.format(dataset=dataset, lang=lang) for lang in targets(config, task)}


def score_paths(
    config: Mapping[str, Any], arm: str, name: str, seed: int | str
) -> dict[str, dict[str, str]]:
    """task → target → score CSV of one scoring job (arm, set, seed)."""
    scenario = SCENARIO_OF_ARM[arm]
    pattern = in_setup(SCORE_CSV, config)
    return {
        task: {
            lang: pattern.format(scenario=scenario, model=name, task=task, target=lang, seed=seed)
            for lang in targets(config, task)
        }
        for task in tasks(config)
    }


def score_outputs(config: Mapping[str, Any]) -> list[str]:
    """The score CSVs of one scoring job as patterns with the wildcards ``xscenario``,
    ``xset`` and ``seed`` (the targets do not depend on the set: every set must cover
    them), the output list of ``rules/xmod.smk``'s scoring rule."""
    pattern = in_setup(SCORE_CSV, config)
    return [
        pattern.format(
            scenario="{xscenario}", model="{xset}", task=task, target=lang, seed="{seed}"
        )
        for task in tasks(config)
        for lang in targets(config, task)
    ]


def score_inputs(config: Mapping[str, Any], arm: str, name: str, seed: str) -> dict[str, Any]:
    """Task models, test data and added languages a scoring job reads."""
    data = sorted({d for task in tasks(config) for d in target_data(config, task).values()})
    return {
        "tasks": sorted(set(task_dirs(config, arm, name, seed).values())),
        "data": data,
        "added": list(added_dirs(config, arm, name).values()),
    }


def data_dirs(config: Mapping[str, Any]) -> list[str]:
    """Every dataset folder the arm reads: corpora of demo sets and added languages,
    English training data and the targets' test data."""
    source = str(config.get("source_language", "en"))
    wanted = {DATA_DIR.format(dataset="wikipedia", lang=lang) for lang in added_languages(config)}
    for name in sets(config):
        wanted.update(backbone_inputs(config, name).get("corpora") or [])
    for task in finetuned_tasks(config):
        spec = config["tasks"][task]
        wanted.add(DATA_DIR.format(dataset=spec["train_dataset"], lang=source))
    for task in tasks(config):
        wanted.update(target_data(config, task).values())
    return sorted(wanted)


def final_outputs(config: Mapping[str, Any]) -> list[str]:
    """Every score CSV of the arm, ``xmod_la``'s included (the ``xmod`` table's inputs)."""
    out = []
    for name in sets(config):
        for arm in arms(config, name):
            for seed in config["seeds"]:
                for by_target in score_paths(config, arm, name, seed).values():
                    out += list(by_target.values())
    return out + la_final_outputs(config)


# ----------------------------------------------------------------------------- xmod_la


def la_wanted(config: Mapping[str, Any]) -> bool:
    """Scenario ``xmod_la`` runs when the section has an ``la`` mapping (``la: {}`` too)
    and some X-MOD set has a target without a module."""
    return isinstance(xmod_section(config).get("la"), Mapping) and bool(
        la_sets(config) and la_tasks(config)
    )


def la_sets(config: Mapping[str, Any]) -> list[str]:
    """Sets that run the X-MOD arm (SHARED has one module: nothing to merge)."""
    return [name for name in sets(config) if "xmod" in arms(config, name)]


def la_targets(config: Mapping[str, Any], task: str) -> list[str]:
    """Targets of ``task`` without a module: its added languages."""
    added = set(added_languages(config))
    return [lang for lang in targets(config, task) if lang in added]


def la_tasks(config: Mapping[str, Any]) -> list[str]:
    return [task for task in tasks(config) if la_targets(config, task)]


def la_score_paths(config: Mapping[str, Any], name: str, seed: int | str) -> dict:
    """task → target → score CSV of one ``xmod_la`` job (set, seed)."""
    pattern = in_setup(SCORE_CSV, config)
    return {
        task: {
            lang: pattern.format(
                scenario=LA_SCENARIO, model=name, task=task, target=lang, seed=seed
            )
            for lang in la_targets(config, task)
        }
        for task in la_tasks(config)
    }


def la_score_outputs(config: Mapping[str, Any]) -> list[str]:
    """Outputs of ``rules/xmod.smk``'s ``xmod_la_score`` (wildcards ``xset``, ``seed``)."""
    paths = la_score_paths(config, "{xset}", "{seed}")
    return [path for by_target in paths.values() for path in by_target.values()]


def la_final_outputs(config: Mapping[str, Any]) -> list[str]:
    if not la_wanted(config):
        return []
    return [
        path
        for name in la_sets(config)
        for seed in config["seeds"]
        for by_target in la_score_paths(config, name, seed).values()
        for path in by_target.values()
    ]


def la_inputs(config: Mapping[str, Any], name: str, seed: str) -> dict[str, Any]:
    """Task models and the targets' data (validation and test) an ``xmod_la`` job reads:
    no added-language folder (training-free: base tokenizer and embeddings)."""
    models = task_dirs(config, "xmod", name, seed)
    return {
        "tasks": sorted({models[task] for task in la_tasks(config)}),
        "data": sorted(
            {
                target_data(config, task)[lang]
                for task in la_tasks(config)
                for lang in la_targets(config, task)
            }
        ),
    }


def la_job(config: Mapping[str, Any], name: str, seed: int | str) -> dict[str, Any]:
    """One ``xmod_la`` job: per task its model, targets' data, score files and settings;
    the λ grid and search (``xmod.la`` over the core's ``lambda_grid``/``lambda_search``)
    and the related-language overrides."""
    section = xmod_section(config).get("la") or {}
    models = task_dirs(config, "xmod", name, seed)
    scores = la_score_paths(config, name, seed)
    data = {task: target_data(config, task) for task in la_tasks(config)}
    return {
        "grid": grid(section.get("lambda_grid") or config["lambda_grid"]),
        "search": str(section.get("lambda_search") or config.get("lambda_search", "full")),
        "source": str(config.get("source_language", "en")),
        "related": _sorted(dict(section.get("related") or {})),
        "tasks": {
            task: {
                "model": models[task],
                "targets": {lang: data[task][lang] for lang in la_targets(config, task)},
                "scores": scores[task],
                "settings": finetune_params(config, task),
            }
            for task in la_tasks(config)
        },
    }


def _la_problems(config: Mapping[str, Any]) -> list[str]:
    section = xmod_section(config).get("la")
    if not isinstance(section, Mapping):
        return []
    problems = []
    if str(section.get("lambda_search") or config.get("lambda_search", "full")) == "race":
        problems.append("xmod.la: lambda_search race is not supported; use full or coarse_to_fine")
    source = str(config.get("source_language", "en"))
    wanted = {
        lang
        for task in tasks(config)
        if task in config["tasks"]
        for lang in la_targets(config, task)
    }
    for target, related in (section.get("related") or {}).items():
        if target not in wanted:
            problems.append(
                f"xmod.la.related names {target!r}, which is no added target of xmod.tasks"
            )
        for name in la_sets(config):
            known = set(set_spec(config, name).get("languages") or []) - {source}
            if related not in known:
                problems.append(
                    f"xmod.la.related {target}: {related!r} is not a pre-trained language of "
                    f"set {name!r} other than {source} ({', '.join(sorted(known))})"
                )
    return problems


def job_counts(config: Mapping[str, Any]) -> dict[str, int]:
    """Jobs of each rule of ``rules/xmod.smk`` (for ``langarith plan``)."""
    counts = dict.fromkeys(("xmod_backbone", "xmod_add_language", "xmod_finetune", "xmod_score"), 0)
    if la_wanted(config):
        counts["xmod_la_score"] = len(la_sets(config)) * len(config.get("seeds") or [])
    n_seeds = len(config.get("seeds") or [])
    for name in sets(config):
        for _arm in arms(config, name):
            counts["xmod_backbone"] += 1
            counts["xmod_add_language"] += len(added_languages(config))
            counts["xmod_finetune"] += len(finetuned_tasks(config)) * n_seeds
            counts["xmod_score"] += n_seeds if tasks(config) else 0
    return counts


def check_xmod(config: Mapping[str, Any]) -> None:
    """What the schema cannot check of the ``xmod`` section, at dry-run time: typed
    settings, the core model a demo set is shaped like, tasks, targets, and added
    languages that already have a module. Raises one error listing every problem."""
    section = xmod_section(config)
    if not section:
        return
    problems: list[str] = []
    models = {m["name"]: m for m in config.get("models") or []}
    for name in sets(config):
        spec = set_spec(config, name)
        demo = dict(spec.get("demo") or {})
        like = demo.pop("like", None)
        if bool(demo or like) == bool(spec.get("hub")):
            problems.append(f"xmod.models[{name}] needs exactly one of demo and hub")
        if like is not None:
            arch = (models.get(like) or {}).get("demo", {}).get("arch")
            if arch != "xlmr":
                problems.append(
                    f"xmod.models[{name}].demo.like is {like!r}; it must name a models[] "
                    "entry with demo arch xlmr (its sizes and tokenizer are used)"
                )
        pretrain = dict(section.get("pretrain") or {}, **demo)
        problems += _settings_problems(XmodPretrainSettings, pretrain, f"xmod.models[{name}]")
        if spec.get("hub") and "shared" in (spec.get("arms") or []):
            problems.append(
                f"xmod.models[{name}]: released checkpoints are X-MOD only; SHARED needs its "
                "own pre-training (a demo set), or stays published-only"
            )
        clash = sorted(set(added_languages(config)) & set(spec.get("languages") or []))
        if clash:
            problems.append(
                f"xmod.added lists {clash}, which already have a module in set {name!r}; "
                "a pre-trained language is not added again"
            )
    problems += _settings_problems(XmodAddSettings, section.get("adding"), "xmod.adding")
    problems += _la_problems(config)
    for task in tasks(config):
        if task not in config["tasks"]:
            problems.append(f"xmod.tasks names {task!r}, which is not a key of tasks")
            continue
        if model_task(config, task) not in tasks(config):
            problems.append(
                f"xmod task {task} takes its model from {model_task(config, task)!r}, which "
                "is not in xmod.tasks"
            )
        per_task = (section.get("per_task") or {}).get(task) or {}
        merged = dict(section.get("finetune") or {}, **per_task)
        for point in grid_points(config, task):
            where = f"xmod.finetune ({task}{', grid ' + str(point) if point else ''})"
            problems += _settings_problems(XmodFinetuneSettings, dict(merged, **point), where)
        try:
            targets(config, task)
        except LangarithError as err:
            problems.append(str(err))
    if problems:
        raise LangarithError("invalid xmod section: " + "; ".join(problems))


def _settings_problems(kind: type, mapping: Any, where: str) -> list[str]:
    try:
        kind.from_mapping(mapping or {}, where=where)
    except SettingsError as err:
        return list(err.problems)
    return []


def _sorted(value: Any) -> Any:
    """Mapping keys sorted (recursively), so that reordering a config is no params change."""
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    return value


def set_params(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A set's spec for its backbone rule, the pre-training settings it overrides
    (``demo`` keys other than ``like``) merged over ``xmod.pretrain``."""
    spec = set_spec(config, name)
    demo = dict(spec.get("demo") or {})
    demo.pop("like", None)
    pretrain = dict(xmod_section(config).get("pretrain") or {}, **demo)
    return _sorted(dict(spec, pretrain=pretrain))


def adding_params(config: Mapping[str, Any]) -> dict[str, Any]:
    return _sorted(dict(xmod_section(config).get("adding") or {}))


def finetune_params(config: Mapping[str, Any], task: str) -> dict[str, Any]:
    """``xmod.finetune`` with the task's ``xmod.per_task`` overrides."""
    section = xmod_section(config)
    per_task = (section.get("per_task") or {}).get(task) or {}
    return _sorted(dict(section.get("finetune") or {}, **per_task))


def grid_points(config: Mapping[str, Any], task: str) -> list[dict[str, Any]]:
    """The fine-tuning grid of a fine-tuned task (``xmod.grid``: lr × epochs, with the
    task's ``per_task`` lists over them), each point a settings override; without a
    grid one empty point (``xmod.finetune`` as it is)."""
    spec = dict(xmod_section(config).get("grid") or {})
    spec.update((spec.pop("per_task", None) or {}).get(task) or {})
    lrs, epochs = spec.get("lr") or [None], spec.get("epochs") or [None]
    return [
        {k: v for k, v in (("lr", lr), ("epochs", ep)) if v is not None}
        for lr in lrs
        for ep in epochs
    ]


def dev_data(config: Mapping[str, Any], name: str, task: str) -> dict[str, str]:
    """Validation data that chooses a fine-tuned task's grid point (language → folder):
    QA the English training data's; NER and NLI every pre-trained language among the
    targets of the tasks this model scores (X-MOD §4.2). Empty without a grid."""
    if len(grid_points(config, task)) < 2:
        return {}
    source = str(config.get("source_language", "en"))
    if config["tasks"][task]["kind"] == "qa":
        return {source: train_data(config, task)}
    known = set(set_spec(config, name).get("languages") or [])
    dev: dict[str, str] = {}
    for scored in tasks(config):
        if model_task(config, scored) == task:
            for lang, folder in target_data(config, scored).items():
                if lang in known:
                    dev.setdefault(lang, folder)
    return dev


def train_data(config: Mapping[str, Any], task: str) -> str:
    """The English training data of a fine-tuned task."""
    dataset = config["tasks"][task]["train_dataset"]
    return DATA_DIR.format(dataset=dataset, lang=config.get("source_language", "en"))


def score_job(config: Mapping[str, Any], arm: str, name: str, seed: int | str) -> dict[str, Any]:
    """What one scoring job needs, per task: its model, targets' data, score files and
    settings, and the added languages' folders."""
    models = task_dirs(config, arm, name, seed)
    scores = score_paths(config, arm, name, seed)
    return {
        "added": added_dirs(config, arm, name),
        "tasks": {
            task: {
                "model": models[task],
                "targets": target_data(config, task),
                "scores": scores[task],
                "settings": finetune_params(config, task),
            }
            for task in tasks(config)
        },
    }
