"""What the report rules read and write, as pure functions of the config.

``rules/report.smk`` calls these for its inputs, and ``rule all`` calls
:func:`report_outputs` for the tables and figures a config should end with; tests call
them without Snakemake.

Score files come from ``langarith.scenarios.score_outputs(config)`` (the evaluation
stage's own list) when that module exists; until then they follow the documented
pattern ``results/scores/<scenario>/<model>/<task>/<target>/seed<s>.csv`` over the
config's scenarios, tasks, targets and seeds (:func:`expected_score_paths`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from langarith.config import task_targets
from langarith.paths import ANALYSIS_COSINE, ANALYSIS_SPARSITY, FIGURE, SCORE_CSV, TABLE
from langarith.plan import BUDGET_ADAPTER_DIR, RELATED_TSV, model_names
from langarith.report.paper import paper_backbones
from langarith.report.tables import PAPER_STYLE_TABLES, SCENARIO_TABLES

__all__ = [
    "ANALYSIS_COSINE",
    "ANALYSIS_SPARSITY",
    "FIGURE",
    "SCORE_CSV",
    "TABLE",
    "budget_adapter_dirs",
    "budget_targets",
    "expected_score_paths",
    "figure_outputs",
    "paper_backbones",
    "report_outputs",
    "score_paths",
    "table_inputs",
    "table_outputs",
]


#: Scenarios whose scores hold the token-budget adapters (``pt@budget1000``).
BUDGET_SCENARIOS = ("low_resource", "token_budget")


def _scenarios(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: dict(spec or {}) for name, spec in (config.get("scenarios") or {}).items()}


def _budget(config: Mapping[str, Any]) -> dict[str, Any]:
    budget = dict(config.get("token_budget") or {})
    if budget.get("languages") and budget.get("tokens") and budget.get("tasks"):
        return budget
    return {}


def budget_targets(config: Mapping[str, Any], task: str) -> list[str]:
    """Token-budget languages a task is evaluated on (those among the task's targets)."""
    budget = _budget(config)
    if task not in (budget.get("tasks") or []):
        return []
    targets = task_targets(config, task)[0]
    return [lang for lang in budget["languages"] if lang in targets]


def expected_score_paths(config: Mapping[str, Any]) -> list[str]:
    """Score files by the documented pattern, for every configured scenario.

    Targets: a scenario's own ``targets`` (else the task's targets); enhancement only
    for targets that have an adapter; the token-budget languages of each budget task
    under ``low_resource``.
    """
    seeds = config["seeds"]
    models = model_names(config)
    source = config.get("source_language", "en")
    wanted: list[tuple[str, str, str]] = []
    for scenario, spec in _scenarios(config).items():
        for task in spec.get("tasks") or []:
            covered = task_targets(config, task)[0]
            targets = [t for t in spec.get("targets") or covered if t in covered]
            if scenario != "romance":
                targets = [t for t in targets if t != source]
            if scenario == "enhancement":
                targets = [t for t in targets if t in config["languages"]]
            wanted += [(scenario, task, target) for target in targets]
    for task in _budget(config).get("tasks") or []:
        wanted += [("low_resource", task, target) for target in budget_targets(config, task)]
    paths = [
        SCORE_CSV.format(scenario=s, model=m, task=t, target=g, seed=seed)
        for s, t, g in dict.fromkeys(wanted)
        for m in models
        for seed in seeds
    ]
    return list(dict.fromkeys(paths))


def _upstream_score_outputs(config: Mapping[str, Any]) -> list[str] | None:
    try:
        module = importlib.import_module("langarith.evaluate.scenarios")
    except ModuleNotFoundError as err:
        if err.name == "langarith.evaluate.scenarios":
            return None
        raise
    function = getattr(module, "score_outputs", None)
    return None if function is None else [str(p) for p in function(config)]


def score_paths(
    config: Mapping[str, Any],
    scenarios: Sequence[str] | None = None,
    *,
    model: str | None = None,
    task: str | None = None,
) -> list[str]:
    """Score files of the given scenarios (all if None), optionally of one model/task."""
    paths = _upstream_score_outputs(config)
    if paths is None:
        paths = expected_score_paths(config)
    selected = []
    for path in paths:
        parts = PurePosixPath(path).parts
        if len(parts) < 5:
            continue
        p_scenario, p_model, p_task = parts[-5], parts[-4], parts[-3]
        if scenarios is not None and p_scenario not in scenarios:
            continue
        if (model is not None and p_model != model) or (task is not None and p_task != task):
            continue
        selected.append(path)
    return selected


def budget_adapter_dirs(
    config: Mapping[str, Any], *, model: str | None = None, task: str | None = None
) -> list[str]:
    """Token-budget adapter folders (their ``metadata.json`` holds ``tokens_seen``)."""
    budget = _budget(config)
    if not budget:
        return []
    models = [model] if model else model_names(config)
    langs = budget_targets(config, task) if task else list(budget["languages"])
    return [
        BUDGET_ADAPTER_DIR.format(model=m, lang=lang, tokens=tokens, seed=seed)
        for m in models
        for lang in langs
        for tokens in budget["tokens"]
        for seed in config["seeds"]
    ]


def table_inputs(config: Mapping[str, Any], table: str) -> dict[str, list[str]]:
    """Named inputs of one table's rule: ``scores``, ``related`` or ``adapters``."""
    if table == "related_languages":
        return {"related": [RELATED_TSV]}
    if table == "token_budget":
        return {
            "scores": score_paths(config, BUDGET_SCENARIOS),
            "adapters": budget_adapter_dirs(config),
        }
    if table == "ties":
        tasks = _scenarios(config).get("ties", {}).get("tasks") or []
        zero_shot = [p for t in tasks for p in score_paths(config, ["zero_shot"], task=t)]
        return {"scores": list(dict.fromkeys(score_paths(config, ["ties"]) + zero_shot))}
    if table in SCENARIO_TABLES:
        return {"scores": score_paths(config, [table])}
    if table in ("gains", "paper_comparison"):
        return {"scores": score_paths(config, list(SCENARIO_TABLES))}
    raise KeyError(table)


def table_outputs(config: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Tables a config ends with: name → {``csv``, ``md`` (, ``tex``)} paths."""
    scenarios = _scenarios(config)
    names = [s for s in SCENARIO_TABLES if s in scenarios and score_paths(config, [s])]
    if any(s in scenarios for s in ("zero_shot", "enhancement", "low_resource", "ties")):
        names.append("gains")
    names.append("related_languages")
    if any(budget_targets(config, task) for task in _budget(config).get("tasks") or []):
        names.append("token_budget")
    names.append("paper_comparison")
    outputs = {}
    for name in names:
        exts = ("csv", "md", "tex") if name in PAPER_STYLE_TABLES else ("csv", "md")
        outputs[name] = {ext: TABLE.format(table=name, ext=ext) for ext in exts}
    return outputs


def figure_outputs(config: Mapping[str, Any]) -> list[str]:
    """Figures a config ends with (PNG and PDF each)."""
    models = model_names(config)
    names = [
        f"lambda_curves_{task}_{model}"
        for task in (_scenarios(config).get("zero_shot", {}).get("tasks") or [])
        for model in models
    ]
    names += [f"cosine_similarity_{model}" for model in models]
    names += [f"sparsity_{model}" for model in models]
    names += [
        f"token_budget_{task}_{model}"
        for task in (_budget(config).get("tasks") or [])
        if budget_targets(config, task)
        for model in models
    ]
    return [FIGURE.format(name=name, ext=ext) for name in names for ext in ("png", "pdf")]


def report_outputs(config: Mapping[str, Any]) -> list[str]:
    """Every table and figure file of a config: what ``rule all`` adds for the report."""
    tables = [path for paths in table_outputs(config).values() for path in paths.values()]
    return tables + figure_outputs(config)
