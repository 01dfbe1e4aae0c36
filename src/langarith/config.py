"""Configuration: loading, schema validation and the checks a schema cannot express.

The Snakefile validates the config with :func:`validate_schema` (against
``workflow/schemas/config.schema.yaml``, filling in defaults outside the training
sections as Snakemake's ``validate()`` does) and then calls :func:`check_config`, which
also builds every training's typed settings (:mod:`langarith.settings`). The same two
steps are available outside Snakemake through :func:`load_config` and
``langarith config check FILE``, so a researcher can check a config before submitting
hundreds of cluster jobs.

Every problem is reported as one sentence that names the offending key, the bad value
and what is allowed (an unknown key: the closest allowed one and all of them); the
semantic problems are collected before raising, so one dry run shows everything that
needs fixing.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import pickle
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from langarith import LangarithError, settings
from langarith import languages as language_codes
from langarith.data import DATASETS, DEMO_LANGUAGES, dataset_covers

#: Default location of the schema, relative to the repository root.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

#: ISO 639-1 codes (the papers' language codes); see :mod:`langarith.languages`, which
#: also accepts the ISO 639-3 code of a language without a two-letter one.
ISO_639_1 = language_codes.ISO_639_1


class ConfigError(LangarithError):
    """The configuration is invalid; the message lists every problem found."""


def grid(spec: Mapping[str, float]) -> list[float]:
    """Expand a ``{start, stop, step}`` range into its values, stop included.

    Values are rounded to 10 decimals so that 0.1 + 0.2 style drift never produces
    a λ of 0.30000000000000004 in a path or a table.
    """
    return list(_grid(float(spec["start"]), float(spec["stop"]), float(spec["step"])))


@functools.lru_cache(maxsize=64)
def _grid(start: float, stop: float, step: float) -> tuple[float, ...]:
    # planning expands the same few grids for every job of the DAG: once is enough
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    return tuple(round(start + i * step, 10) for i in range(count))


def _check_range(name: str, spec: Mapping[str, Any] | None, problems: list[str]) -> None:
    if not spec:
        return
    step = spec.get("step")
    if step is None or not (0 < float(step) <= 1):
        problems.append(f"{name}.step is {step!r}; it must be greater than 0 and at most 1")
    elif float(spec["start"]) > float(spec["stop"]):
        problems.append(
            f"{name}.start ({spec['start']}) is greater than {name}.stop ({spec['stop']}); "
            "the grid would be empty"
        )


def _check_languages(name: str, langs: Iterable[str] | None, problems: list[str]) -> None:
    """ISO 639-1 codes, or ISO 639-3 where a language has no 639-1 code (langarith.languages)."""
    for i, lang in enumerate(langs or []):
        problem = language_codes.code_problem(lang)
        if problem:
            problems.append(f"unknown language code {lang!r} in {name}[{i}]; {problem}")


#: What the subset checks of adapter languages call the allowed set.
_WITH_ADAPTER = "a language with an adapter (languages)"


def _check_subset(
    name: str, langs: Iterable[str], allowed: Iterable[str], what: str, problems: list[str]
) -> None:
    allowed = list(allowed)
    for lang in langs:
        if lang not in allowed:
            problems.append(f"{name} contains {lang!r}, which is not {what} {sorted(allowed)}")


def task_targets(config: Mapping[str, Any], task: str) -> tuple[list[str], list[str]]:
    """Return (targets, skipped) of a task: the languages it is evaluated on.

    Without explicit ``targets``, a task is evaluated on every evaluation language its
    evaluation dataset covers; the others are returned as ``skipped`` so that the
    workflow can log them (XQuAD has no bg, fr, sw, ur) instead of failing.
    """
    spec = config["tasks"][task]
    if spec.get("targets"):
        return list(spec["targets"]), []
    covered, skipped = [], []
    for lang in config["evaluation_languages"]:
        (covered if dataset_covers(spec["eval_dataset"], lang) else skipped).append(lang)
    return covered, skipped


def trained_tasks(config: Mapping[str, Any]) -> list[str]:
    """Tasks that have a task adapter of their own (not ``adapter_from`` another)."""
    return [name for name, spec in config["tasks"].items() if not spec.get("adapter_from")]


def check_config(config: Mapping[str, Any], *, base_dir: Path | None = None) -> None:
    """Check what the JSON schema cannot: codes, coverage, references, files and settings.

    ``base_dir`` resolves relative local paths (the workflow's directory). Every step
    below adds to one list, so one dry run shows every problem; raises
    :class:`ConfigError` listing them.
    """
    base_dir = base_dir or Path.cwd()
    problems: list[str] = []
    _check_finite({k: v for k, v in config.items() if k not in _TYPED_SECTIONS}, "", problems)
    _check_required_lists(config, problems)
    _check_language_codes(config, problems)
    _check_models(config, base_dir, problems)
    _check_grids(config, problems)
    _check_tasks(config, problems)
    _check_related(config, problems)
    _check_scenarios(config, problems)
    _check_nway(config, problems)
    _check_token_budget(config, problems)
    _check_data(config, base_dir, problems)
    _check_settings(config, problems)
    if problems:
        unique = list(dict.fromkeys(problems))
        if len(unique) == 1:
            raise ConfigError(f"invalid configuration: {unique[0]}")
        raise ConfigError(
            f"invalid configuration ({len(unique)} problems):\n  - " + "\n  - ".join(unique)
        )


def config_warnings(config: Mapping[str, Any]) -> list[str]:
    """What a valid config silently leaves out, one sentence each (logged at dry run).

    The enhancement scenario enhances a target's *own* adapter, so a target without
    one (not in ``languages``) has no enhancement job; the planner skips it, and the
    user should hear which scenario is skipped for which target before the run.
    """
    found = []
    adapters = set(_adapter_languages(config))
    enhancement = (config.get("scenarios") or {}).get("enhancement")
    tasks = config.get("tasks") or {}
    for task in (enhancement or {}).get("tasks") or []:
        if task not in tasks:
            continue
        for target in task_targets(config, task)[0]:
            if target not in adapters:
                found.append(
                    f"scenarios.enhancement: target {target!r} of task {task!r} has no "
                    f"language adapter (it is not in languages), so its enhancement "
                    f"scenario is skipped; add {target!r} to languages to run it"
                )
    return found


def _source(config: Mapping[str, Any]) -> str:
    return config.get("source_language", "en")


def _adapter_languages(config: Mapping[str, Any]) -> list[str]:
    return list(config.get("languages") or [])


#: Sections checked by the typed settings (:mod:`langarith.settings`), which refuse
#: non-finite numbers themselves, with the key's range.
_TYPED_SECTIONS = ("language_adapter", "task_adapter", "models")


def _check_finite(node: Any, where: str, problems: list[str]) -> None:
    """Every number must be finite: JSON-schema bounds let YAML's ``.nan`` through
    (NaN compares false with every bound), and ``.inf`` passes an open-ended range."""
    if isinstance(node, float) and not math.isfinite(node):
        problems.append(
            f"{where or 'the config'} is {settings.show_value(node)}; numbers must be finite"
        )
    elif isinstance(node, Mapping):
        for key, value in node.items():
            _check_finite(value, f"{where}.{key}" if where else str(key), problems)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_finite(value, f"{where}[{i}]", problems)


def _check_required_lists(config: Mapping[str, Any], problems: list[str]) -> None:
    """Empty lists pass a schema without ``minItems`` but leave nothing to run."""
    if not config.get("models"):
        problems.append("models is empty; list at least one backbone (hub name or demo spec)")
    if not config.get("languages"):
        problems.append("languages is empty; list the languages that get a language adapter")
    if not config.get("evaluation_languages"):
        problems.append("evaluation_languages is empty; list at least one target language")


def _check_language_codes(config: Mapping[str, Any], problems: list[str]) -> None:
    """Codes must be known (:mod:`langarith.languages`); the source language needs an adapter.

    The schema's pattern accepts any two letters; a typo such as ``xx`` would only fail
    when its dataset is downloaded. Task adapters stack on the source language adapter.
    """
    languages, source = _adapter_languages(config), _source(config)
    _check_languages("languages", languages, problems)
    _check_languages("evaluation_languages", config.get("evaluation_languages"), problems)
    _check_languages("source_language", [source], problems)
    if languages and source not in languages:
        problems.append(
            f"source_language {source!r} has no language adapter: add it to languages "
            f"{languages}; the task adapters are trained on top of it"
        )


def _check_models(config: Mapping[str, Any], base_dir: Path, problems: list[str]) -> None:
    """Model names key every path (so they must be unique); local backbones must exist."""
    models = config.get("models") or []
    names = [m.get("name") for m in models]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"model name {name!r} is used twice in models; names must be unique")
    for model in models:
        hub = model.get("hub", "")
        if hub.startswith((".", "/", "~")) and not (base_dir / Path(hub).expanduser()).exists():
            problems.append(
                f"models: local backbone folder {hub!r} of {model['name']!r} does not exist"
            )


def _check_grids(config: Mapping[str, Any], problems: list[str]) -> None:
    """λ grids must be non-empty and finite; the schema cannot compare start with stop."""
    _check_range("lambda_grid", config.get("lambda_grid"), problems)
    ties = (config.get("scenarios") or {}).get("ties") or {}
    _check_range("scenarios.ties.lambda_grid", ties.get("lambda_grid"), problems)


def _check_tasks(config: Mapping[str, Any], problems: list[str]) -> None:
    """Each task needs known datasets, a source-language training split, covered targets."""
    tasks = config.get("tasks") or {}
    for task, spec in tasks.items():
        where = f"tasks.{task}"
        for key in ("train_dataset", "eval_dataset"):
            dataset = spec.get(key)
            if dataset and dataset not in DATASETS:
                problems.append(f"{where}.{key} is {dataset!r}; allowed: {sorted(DATASETS)}")
        _check_task_training_data(where, spec, tasks, _source(config), problems)
        _check_languages(f"{where}.targets", spec.get("targets"), problems)
        _check_task_targets(where, spec, problems)


def _check_task_training_data(
    where: str, spec: Mapping[str, Any], tasks: Mapping[str, Any], source: str, problems: list[str]
) -> None:
    """A task trains its own adapter on source-language data, or reuses another task's."""
    if spec.get("adapter_from"):
        if spec["adapter_from"] not in tasks:
            problems.append(
                f"{where}.adapter_from names {spec['adapter_from']!r}, "
                f"which is not a task; tasks are {sorted(tasks)}"
            )
    elif not spec.get("train_dataset"):
        problems.append(f"{where} needs train_dataset (or adapter_from another task)")
    elif spec["train_dataset"] in DATASETS and not dataset_covers(spec["train_dataset"], source):
        problems.append(
            f"{where}.train_dataset {spec['train_dataset']!r} has no split "
            f"for the source language {source!r}"
        )


def _check_task_targets(where: str, spec: Mapping[str, Any], problems: list[str]) -> None:
    """Explicit targets must be covered by the evaluation dataset (defaults skip instead)."""
    eval_dataset = spec.get("eval_dataset")
    if eval_dataset not in DATASETS:
        return
    for lang in spec.get("targets") or []:
        if language_codes.known_code(lang) and not dataset_covers(eval_dataset, lang):
            covered = sorted(DATASETS[eval_dataset].languages)
            problems.append(
                f"{where}: dataset {eval_dataset!r} has no split for language "
                f"{lang!r}; it covers {covered}"
            )


def _check_related(config: Mapping[str, Any], problems: list[str]) -> None:
    """Every target needs a related language that has an adapter to merge with."""
    languages, source = _adapter_languages(config), _source(config)
    related = config.get("related") or {}
    overrides = related.get("overrides") or {}
    _check_languages("related.pool", related.get("pool"), problems)
    _check_subset("related.pool", related.get("pool") or [], languages, _WITH_ADAPTER, problems)
    pool = related.get("pool") or [lang for lang in languages if lang != source]
    for target in config.get("evaluation_languages") or []:
        if target not in overrides and not set(pool) - {target}:
            problems.append(
                f"related.pool {pool} holds no language other than the target {target!r}; "
                "add at least one other language with an adapter, or an override"
            )
    for target, rel in overrides.items():
        _check_languages("related.overrides", [target, rel], problems)
        if rel not in languages:
            problems.append(
                f"related.overrides maps {target!r} to {rel!r}, which has no "
                f"language adapter; choose one of {languages}"
            )


def _check_scenarios(config: Mapping[str, Any], problems: list[str]) -> None:
    """Scenarios may only name tasks that exist and languages that have adapters."""
    languages = _adapter_languages(config)
    tasks = config.get("tasks") or {}
    for scenario, spec in (config.get("scenarios") or {}).items():
        spec = spec or {}
        where = f"scenarios.{scenario}"
        for task in spec.get("tasks", []):
            if task not in tasks:
                problems.append(f"{where}.tasks names {task!r}; tasks are {sorted(tasks)}")
        _check_languages(f"{where}.targets", spec.get("targets"), problems)
        _check_languages(f"{where}.pool", spec.get("pool"), problems)
        _check_subset(f"{where}.pool", spec.get("pool") or [], languages, _WITH_ADAPTER, problems)


def _check_nway(config: Mapping[str, Any], problems: list[str]) -> None:
    """``scenarios.zero_shot_nway``: a budget of at least k + 1 adapters, k within the
    pool of every target, known models, a step dividing 1, a box with room.

    The planner (``langarith.evaluate.scenarios``) applies the same rules; checking them
    here stops the dry run before any job runs.
    """
    spec = (config.get("scenarios") or {}).get("zero_shot_nway")
    if spec is None:
        return
    where = "scenarios.zero_shot_nway"
    spec = spec or {}
    ks = [int(k) for k in spec.get("k") or [2, 3]]
    largest = max(ks)
    budget = int(spec.get("budget", 20))
    if budget < largest + 1:
        problems.append(
            f"{where}.budget {budget} is below the number of adapters of LA-{largest} "
            f"({largest + 1}: English and {largest} related languages); give at least "
            f"{largest + 1}"
        )
    step = float(spec.get("step", 0.05))
    if step <= 0 or abs(round(1 / step) * step - 1) > 1e-9:
        problems.append(f"{where}.step {step:g} must divide 1 (0.05, 0.1, 0.25, ...)")
    box = spec.get("box") or {}
    if spec.get("domain") == "box" and float(box.get("low", -0.5)) >= float(box.get("high", 1.5)):
        problems.append(f"{where}.box: low {box.get('low')} must be below high {box.get('high')}")
    names = [str(m.get("name")) for m in config.get("models") or [] if isinstance(m, Mapping)]
    for model in spec.get("models") or []:
        if model not in names:
            problems.append(f"{where}.models names {model!r}; models are {names}")
    languages, source = set(_adapter_languages(config)), _source(config)
    related = config.get("related") or {}
    pool = related.get("pool") or [lang for lang in languages if lang != source]
    tasks = config.get("tasks") or {}
    for task in spec.get("tasks") or []:
        if task not in tasks:
            continue
        covered = task_targets(config, task)[0]
        for target in [t for t in spec.get("targets") or covered if t in covered]:
            usable = sorted({lang for lang in pool if lang in languages} - {target, source})
            if largest > len(usable):
                problems.append(
                    f"{where}.k {largest} is larger than the pool of {target!r} ({task}): "
                    f"{len(usable)} related language(s) with an adapter {usable}; lower k or "
                    "add languages to related.pool"
                )


def _check_token_budget(config: Mapping[str, Any], problems: list[str]) -> None:
    """Budget adapters are trained for adapter languages and evaluated on known tasks."""
    languages = _adapter_languages(config)
    tasks = config.get("tasks") or {}
    budget = config.get("token_budget") or {}
    _check_languages("token_budget.languages", budget.get("languages"), problems)
    _check_subset(
        "token_budget.languages", budget.get("languages") or [], languages, _WITH_ADAPTER, problems
    )
    for task in budget.get("tasks") or []:
        if task not in tasks:
            problems.append(f"token_budget.tasks names {task!r}; tasks are {sorted(tasks)}")
    budget_langs = budget.get("languages") or []
    for lang in budget.get("extra_tokens") or {}:
        if lang not in budget_langs:
            problems.append(
                f"token_budget.extra_tokens names {lang!r}, which is not in "
                f"token_budget.languages {budget_langs}; add it there or remove its budgets"
            )
    models = [m.get("name") for m in config.get("models") or [] if isinstance(m, Mapping)]
    for model in budget.get("models") or []:
        if model not in models:
            problems.append(f"token_budget.models names {model!r}; models are {models}")


def _check_data(config: Mapping[str, Any], base_dir: Path, problems: list[str]) -> None:
    """Local dataset files must exist; the demo generator only knows some languages."""
    data = config.get("data") or {}
    for dataset in data.get("revisions") or {}:
        if dataset not in DATASETS:
            problems.append(
                f"data.revisions names dataset {dataset!r}; allowed: {sorted(DATASETS)}"
            )
    for dataset, per_lang in (data.get("local_paths") or {}).items():
        if dataset not in DATASETS:
            problems.append(
                f"data.local_paths names dataset {dataset!r}; allowed: {sorted(DATASETS)}"
            )
        _check_languages(f"data.local_paths.{dataset}", list(per_lang or {}), problems)
        for lang, path in (per_lang or {}).items():
            if not (base_dir / Path(path).expanduser()).exists():
                problems.append(
                    f"data.local_paths.{dataset}.{lang}: local file {path!r} does not exist"
                )
    if data.get("source") != "demo":
        return
    used = set(_adapter_languages(config)) | set(config.get("evaluation_languages") or [])
    for lang in sorted(used - set(DEMO_LANGUAGES)):
        if language_codes.known_code(lang):
            problems.append(
                f"data.source is demo, but the offline demo generator has no "
                f"language {lang!r}; it supports {sorted(DEMO_LANGUAGES)}"
            )


def _check_settings(config: Mapping[str, Any], problems: list[str]) -> None:
    """Build every training's typed settings, so a bad one fails now, not in its job.

    The same builders give the training code its settings: the base training of each
    adapter kind, each ``per_language``/``per_task`` override merged on top of it, and
    each demo backbone.
    """
    languages = _adapter_languages(config)
    per_language = (config.get("language_adapter") or {}).get("per_language") or {}
    _check_languages("language_adapter.per_language", list(per_language), problems)
    _check_subset(
        "language_adapter.per_language", list(per_language), languages, _WITH_ADAPTER, problems
    )
    tasks = config.get("tasks") or {}
    per_task = (config.get("task_adapter") or {}).get("per_task") or {}
    for task in per_task:
        if task not in tasks:
            problems.append(
                f"task_adapter.per_task names {task!r}, which is not a task; "
                f"tasks are {sorted(tasks)}"
            )
    builders: list[Callable[[], object]] = [
        lambda: settings.language_adapter_config(config),
        lambda: settings.language_settings(config),
        lambda: settings.task_settings(config),
    ]
    builders += [
        lambda lang=lang: settings.language_settings(config, lang) for lang in per_language
    ]
    builders += [lambda task=task: settings.task_settings(config, task) for task in per_task]
    for i, model in enumerate(config.get("models") or []):
        if "demo" in model:
            where = f"models[{i}].demo"
            builders.append(lambda m=model, w=where: settings.demo_backbone_settings(m, w))
    for build in builders:
        try:
            build()
        except settings.SettingsError as err:
            problems.extend(err.problems)


#: Sections the schema's defaults are *not* filled into: their defaults are applied by
#: the training code (``langarith.settings``). Filled in, a ``per_language`` override
#: would carry every default and so undo ``training``, and rule params would change
#: (re-running every finished backbone, adapter and dataset) although nothing else did.
AS_WRITTEN: tuple[tuple[str, ...], ...] = (
    ("models",),
    ("language_adapter",),
    ("task_adapter",),
    ("data", "demo"),
    ("tlr",),
    ("fullft",),
)


@functools.cache
def _strict_class() -> Any:
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return jsonschema.validators.extend(base, type_checker=checker)


def strict_validator(schema: Mapping[str, Any]) -> Any:
    """A JSON-schema validator whose ``integer`` is a Python int, never a float or a bool.

    jsonschema counts ``1.0`` as an integer; the typed settings do not, and a seed of
    ``1.0`` would name a path ``seed1.0``. YAML's ``true`` is a bool, not 1, in both.
    """
    return _strict_class()(schema)


@functools.cache
def _filling_class() -> Any:
    """:func:`strict_validator`'s class that also fills in defaults, as Snakemake's
    ``validate(..., set_default=True)`` does (the jsonschema FAQ's recipe: a missing
    property with a ``default`` is set before its object's properties are checked).
    The default is copied, so a config never shares a list or a mapping with the
    cached schema."""
    import jsonschema

    strict = _strict_class()
    check_properties = strict.VALIDATORS["properties"]

    def fill_then_check(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from check_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(strict, {"properties": fill_then_check})


@functools.lru_cache(maxsize=4)
def _parsed_schema(path: str, stamp: tuple[int, int]) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~20x faster
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)


def load_schema(schema_path: Path | str = SCHEMA_PATH) -> dict[str, Any]:
    """The parsed schema, once per process and file version (every ``snakemake`` run
    parses it; the pure-Python YAML parser took about 0.3 s). Treat it as read-only."""
    stat = Path(schema_path).stat()
    return _parsed_schema(str(schema_path), (stat.st_mtime_ns, stat.st_size))


def validate_schema(config: dict[str, Any], schema_path: Path = SCHEMA_PATH) -> None:
    """Validate against the JSON schema and fill its defaults, except in :data:`AS_WRITTEN`.

    The one validation the Snakefile and ``langarith config check`` both use: first
    with :func:`strict_validator` (whole numbers must be written as such), then a pass
    that fills the defaults the way Snakemake's ``validate(..., set_default=True)``
    does. A problem is raised as :class:`ConfigError` with one sentence naming the key,
    the value and what is allowed.
    """
    import jsonschema

    schema = load_schema(schema_path)
    best = jsonschema.exceptions.best_match(strict_validator(schema).iter_errors(config))
    if best is not None:
        raise ConfigError(validation_message(best))
    kept = [
        (path, copy.deepcopy(value))
        for path in AS_WRITTEN
        if (value := _at(config, path)) is not None
    ]
    try:
        _filling_class()(schema).validate(config)
    except jsonschema.ValidationError as err:
        best = jsonschema.exceptions.best_match([err]) or err
        raise ConfigError(validation_message(best)) from None
    for path, value in kept:
        parent = _at(config, path[:-1])
        parent[path[-1]] = value


def config_fingerprint(config: Mapping[str, Any]) -> bytes | str:
    """The config's content as a hashable key, for caches of what a config plans.

    A pickle (about a third of the time of sorted JSON; Snakemake's input functions ask
    for it on every job): equal keys mean equal content; the same content written in
    another key order gets another key, which costs a cache miss, never a wrong plan.
    Not cached by the object's identity, so a config changed in place is planned again.
    """
    try:
        return pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return json.dumps(config, sort_keys=True, default=repr)


def _at(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` of nested mappings, or None when a key is missing."""
    node: Any = config
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def validation_message(best: Any) -> str:
    """One sentence for a jsonschema ``ValidationError``: the key, the value, what is allowed."""
    where = dotted_path(best.absolute_path)
    if best.validator == "additionalProperties" and best.validator_value is False:
        unknown = _unknown_key_message(best, where)
        if unknown:
            return f"invalid configuration: {unknown}"
    expected = _expected(best.schema) if best.validator in _RANGE_VALIDATORS else None
    if expected and where:
        shown = settings.show_value(best.instance)
        return f"invalid configuration: {where} is {shown}; it must be {expected}{_yaml_hint(best)}"
    return f"invalid configuration at {where or 'top level'}: {best.message}{_yaml_hint(best)}"


#: Validators whose failure is a value of the wrong type or out of range.
_RANGE_VALIDATORS = frozenset(
    {"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "pattern"}
)


def _expected(schema: Mapping[str, Any]) -> str | None:
    """What a schema node allows, in words: 'a whole number from 1 to 1,000,000,000'."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    optional = " or null" if "null" in types else ""
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"]) + optional
    if "boolean" in types:
        return "true or false" + optional
    if "string" in types:
        pattern = schema.get("pattern")
        return ("text" + (f" matching {pattern}" if pattern else "")) + optional
    if "integer" in types:
        kind = "a whole number"
    elif "number" in types:
        kind = "a finite number"
    else:
        return None
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    low_open, high_open = "exclusiveMinimum" in schema, "exclusiveMaximum" in schema
    if low is not None and high is not None:
        if not low_open and not high_open:
            return f"{kind} from {low:,} to {high:,}{optional}"
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return f"{kind} in {left}{low:g}, {high:g}{right}{optional}"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {low:g}{optional}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {high:g}{optional}"
    return kind + optional


def _yaml_hint(error: Any) -> str:
    """Why a number the user wrote is text: YAML 1.1 reads ``1e-4`` (no dot) as a string."""
    value = getattr(error, "instance", None)
    if error.validator != "type" or not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    mantissa, e, exponent = value.lower().partition("e")
    if not e or "." in mantissa:
        return ""
    return f" (YAML reads {value} as text; write it with a dot: {mantissa}.0e{exponent})"


def dotted_path(path: Iterable[Any]) -> str:
    """``language_adapter.training.lr`` / ``models[0].demo`` from a jsonschema path."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unknown_key_message(error: Any, where: str) -> str | None:
    """The sentence for the first key of ``error.instance`` its schema does not list."""
    allowed = list((error.schema.get("properties") or {}).keys())
    for key in error.instance:
        message = settings.unknown_key_message(key, where, allowed)
        if message:
            return message
    return None


def read_config_file(path: Path | str) -> dict[str, Any]:
    """The mapping a YAML config file holds; one :class:`ConfigError` line for anything else.

    A missing file, a folder, an unreadable file, bytes that are not UTF-8, broken YAML
    and a document that is not a mapping (a list, a number) each get their own sentence
    naming the file, never a traceback.
    """
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise ConfigError(f"config file {name!r} does not exist")
    if path.is_dir():
        raise ConfigError(f"config file {name!r} is a folder; give the path of a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except PermissionError:
        raise ConfigError(f"config file {name!r} cannot be read (permission denied)") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"config file {name!r} is not UTF-8 text (byte {err.start}); save it as UTF-8"
        ) from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(err, "problem", None) or " ".join(str(err).split())
        raise ConfigError(f"config file {name!r} is not valid YAML{at}: {reason}") from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(
            f"config file {name!r} holds a {_yaml_kind(config)}, not a mapping of settings "
            "(models:, languages:, ...); see config/config.yaml"
        )
    return config


def _yaml_kind(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "text"
    return "single value" if not isinstance(value, Mapping) else "mapping"


def load_config(path: Path | str, *, base_dir: Path | None = None) -> dict[str, Any]:
    """Load a config file, validate it against the schema and run the semantic checks."""
    path = Path(path)
    config = read_config_file(path)
    validate_schema(config)
    check_config(config, base_dir=base_dir or path.resolve().parent.parent)
    return config


def _cli_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    for warning in config_warnings(config):
        print(f"langarith config: warning: {warning}", file=sys.stderr)
    n_targets = {task: len(task_targets(config, task)[0]) for task in config["tasks"]}
    seeds = len(config["seeds"])
    print(
        f"{args.config}: valid ({len(config['models'])} models, "
        f"{len(config['languages'])} language adapters, {seeds} seed{'s' * (seeds != 1)}, "
        f"targets per task {n_targets})"
    )
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="check a workflow config file")
    sub = parser.add_subparsers(dest="config_command", required=True)
    check = sub.add_parser("check", help="validate schema and semantics, print a summary")
    check.add_argument("config", type=Path)
    check.set_defaults(func=_cli_check)
