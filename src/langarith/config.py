"""Configuration: loading, schema validation and the checks a schema cannot express.

The Snakefile validates the config with :func:`validate_schema` (Snakemake's
``validate()`` against ``workflow/schemas/config.schema.yaml``, which also fills in
defaults outside the training sections) and then calls :func:`check_config`, which
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
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from langarith import LangarithError, settings
from langarith.data import DATASETS, DEMO_LANGUAGES, dataset_covers

#: Default location of the schema, relative to the repository root.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

#: ISO 639-1 codes (the papers' language codes), plus the 639-3 code of Assamese's
#: neighbours that have no two-letter code are not needed: every language the papers
#: use has one.
ISO_639_1 = frozenset(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs
    cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha
    he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn
    ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb
    nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd
    se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw
    ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
    """.split()
)


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
    for i, lang in enumerate(langs or []):
        if lang not in ISO_639_1:
            problems.append(
                f"unknown language code {lang!r} in {name}[{i}]; use an ISO 639-1 code "
                "as the papers do (e.g. en, es, sw, as)"
            )


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
    _check_required_lists(config, problems)
    _check_language_codes(config, problems)
    _check_models(config, base_dir, problems)
    _check_grids(config, problems)
    _check_tasks(config, problems)
    _check_related(config, problems)
    _check_scenarios(config, problems)
    _check_token_budget(config, problems)
    _check_data(config, base_dir, problems)
    _check_settings(config, problems)
    if problems:
        unique = list(dict.fromkeys(problems))
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(unique))


def _source(config: Mapping[str, Any]) -> str:
    return config.get("source_language", "en")


def _adapter_languages(config: Mapping[str, Any]) -> list[str]:
    return list(config.get("languages") or [])


def _check_required_lists(config: Mapping[str, Any], problems: list[str]) -> None:
    """Empty lists pass a schema without ``minItems`` but leave nothing to run."""
    if not config.get("models"):
        problems.append("models is empty; list at least one backbone (hub name or demo spec)")
    if not config.get("languages"):
        problems.append("languages is empty; list the languages that get a language adapter")
    if not config.get("evaluation_languages"):
        problems.append("evaluation_languages is empty; list at least one target language")


def _check_language_codes(config: Mapping[str, Any], problems: list[str]) -> None:
    """Codes must be real ISO 639-1 codes, and the source language needs an adapter.

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
        if lang in ISO_639_1 and not dataset_covers(eval_dataset, lang):
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


def _check_data(config: Mapping[str, Any], base_dir: Path, problems: list[str]) -> None:
    """Local dataset files must exist; the demo generator only knows some languages."""
    data = config.get("data") or {}
    for dataset, per_lang in (data.get("local_paths") or {}).items():
        if dataset not in DATASETS:
            problems.append(
                f"data.local_paths names dataset {dataset!r}; allowed: {sorted(DATASETS)}"
            )
        for lang, path in (per_lang or {}).items():
            if not (base_dir / Path(path).expanduser()).exists():
                problems.append(
                    f"data.local_paths.{dataset}.{lang}: local file {path!r} does not exist"
                )
    if data.get("source") != "demo":
        return
    used = set(_adapter_languages(config)) | set(config.get("evaluation_languages") or [])
    for lang in sorted(used - set(DEMO_LANGUAGES)):
        if lang in ISO_639_1:
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
)


def validate_schema(config: dict[str, Any], schema_path: Path = SCHEMA_PATH) -> None:
    """Validate against the JSON schema and fill its defaults, except in :data:`AS_WRITTEN`.

    The one validation the Snakefile and ``langarith config check`` both use; a
    problem is raised as :class:`ConfigError` with one sentence naming the key.
    """
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    kept = [
        (path, copy.deepcopy(value))
        for path in AS_WRITTEN
        if (value := _at(config, path)) is not None
    ]
    try:
        validate(config, str(schema_path), set_default=True)
    except WorkflowError as err:
        raise ConfigError(schema_error_message(err)) from None
    for path, value in kept:
        parent = _at(config, path[:-1])
        parent[path[-1]] = value


def _at(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` of nested mappings, or None when a key is missing."""
    node: Any = config
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def schema_error_message(err: BaseException) -> str:
    """Turn Snakemake's schema error (which embeds the whole schema) into one sentence.

    Snakemake wraps the jsonschema ``ValidationError`` in the arguments of a
    ``WorkflowError``; its ``message`` and ``absolute_path`` are what a user needs. An
    unknown key gets its own sentence: the key, where it is, the closest allowed key
    and all allowed ones (jsonschema's own message names neither place nor choices).
    """
    import jsonschema

    cause = next(
        (a for a in getattr(err, "args", ()) if isinstance(a, jsonschema.ValidationError)),
        err.__cause__ or err.__context__,
    )
    if not isinstance(cause, jsonschema.ValidationError):
        return f"invalid configuration: {str(err).splitlines()[0]}"
    best = jsonschema.exceptions.best_match([cause]) or cause
    where = dotted_path(best.absolute_path)
    if best.validator == "additionalProperties" and best.validator_value is False:
        unknown = _unknown_key_message(best, where)
        if unknown:
            return f"invalid configuration: {unknown}"
    return f"invalid configuration at {where or 'top level'}: {best.message}{_yaml_hint(best)}"


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


def load_config(path: Path | str, *, base_dir: Path | None = None) -> dict[str, Any]:
    """Load a config file, validate it against the schema and run the semantic checks."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from None
    validate_schema(config)
    check_config(config, base_dir=base_dir or path.resolve().parent.parent)
    return config


def _cli_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    n_targets = {task: len(task_targets(config, task)[0]) for task in config["tasks"]}
    print(
        f"{args.config}: valid ({len(config['models'])} models, "
        f"{len(config['languages'])} language adapters, {len(config['seeds'])} seeds, "
        f"targets per task {n_targets})"
    )
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="check a workflow config file")
    sub = parser.add_subparsers(dest="config_command", required=True)
    check = sub.add_parser("check", help="validate schema and semantics, print a summary")
    check.add_argument("config", type=Path)
    check.set_defaults(func=_cli_check)
