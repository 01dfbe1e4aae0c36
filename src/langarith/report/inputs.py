"""What the report reads for a config: score files, token-budget adapters, settings.

Pure functions of the config, shared by the table and figure registries
(:mod:`~langarith.report.tables`, :mod:`~langarith.report.figures`), which turn them
into each table's and figure's named inputs. Score files are the evaluation plan's own
list (``scenarios.score_outputs``), so the report asks for exactly the files the
evaluation stage writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langarith.config import task_targets
from langarith.evaluate import scenarios
from langarith.paths import BUDGET_ADAPTER_DIR
from langarith.plan import budget_models, budget_tokens

__all__ = [
    "BUDGET_SCENARIOS",
    "Config",
    "budget_adapter_dirs",
    "budget_settings",
    "budget_targets",
    "configured_scenarios",
    "score_paths",
]

#: A loaded config, as the rules and planners see it.
Config = Mapping[str, Any]

#: Scenarios whose scores hold the token-budget adapters (``pt@budget1000``).
BUDGET_SCENARIOS = ("low_resource", "token_budget")


def configured_scenarios(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The config's ``scenarios`` block, each spec a dict (empty when left blank)."""
    return {name: dict(spec or {}) for name, spec in (config.get("scenarios") or {}).items()}


def budget_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``token_budget`` block when it is complete (languages, tokens, tasks), else {}."""
    budget = dict(config.get("token_budget") or {})
    if budget.get("languages") and budget.get("tokens") and budget.get("tasks"):
        return budget
    return {}


def budget_targets(config: Mapping[str, Any], task: str) -> list[str]:
    """Token-budget languages a task is evaluated on (those among the task's targets)."""
    budget = budget_settings(config)
    if task not in (budget.get("tasks") or []):
        return []
    targets = task_targets(config, task)[0]
    return [lang for lang in budget["languages"] if lang in targets]


def _selected(
    path: str, scenario_names: Sequence[str] | None, model: str | None, task: str | None
) -> bool:
    """Whether a score path (``.../<scenario>/<model>/<task>/<target>/seed<s>.csv``) matches."""
    parts = path.split("/")  # the plan's own relative POSIX paths (PurePosixPath: 10x slower)
    if len(parts) < 5:
        return False
    p_scenario, p_model, p_task = parts[-5], parts[-4], parts[-3]
    if scenario_names is not None and p_scenario not in scenario_names:
        return False
    return (model is None or p_model == model) and (task is None or p_task == task)


def score_paths(
    config: Mapping[str, Any],
    scenario_names: Sequence[str] | None = None,
    *,
    model: str | None = None,
    task: str | None = None,
) -> list[str]:
    """Score files of the given scenarios (all if None), optionally of one model/task."""
    return [
        str(path)
        for path in scenarios.score_outputs(config)
        if _selected(str(path), scenario_names, model, task)
    ]


def budget_adapter_dirs(
    config: Mapping[str, Any], *, model: str | None = None, task: str | None = None
) -> list[str]:
    """Token-budget adapter folders (their ``metadata.json`` holds ``tokens_seen``)."""
    budget = budget_settings(config)
    if not budget:
        return []
    models = [m for m in budget_models(config) if model in (None, m)]
    langs = budget_targets(config, task) if task else list(budget["languages"])
    return [
        BUDGET_ADAPTER_DIR.format(model=m, lang=lang, tokens=tokens, seed=seed)
        for m in models
        for lang in langs
        for tokens in budget_tokens(config, lang)
        for seed in config["seeds"]
    ]
