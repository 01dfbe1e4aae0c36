"""What the workflow has to make for a config: the paths of every stage's artifacts.

``rules/common.smk`` calls these functions for ``rule all`` and the input functions,
so the DAG's shape is plain Python that tests can check without Snakemake. Paths
follow docs/interfaces.md; every function here is pure (config in, paths out) but the
three that ready the Snakemake process itself: its jobs' environment
(:func:`prepare_environment`), its look-ups of which rules produce a path
(:func:`memoize_producer_lookups`) and its exit (:func:`release_rate_limiter_timers`).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from langarith.config import task_targets, trained_tasks
from langarith.data import data_dependencies
from langarith.paths import (
    BACKBONE_DIR,
    BUDGET_ADAPTER_DIR,
    DATA_DIR,
    INIT_DIR,
    LANG_ADAPTER_DIR,
    RELATED_TSV,
    TASK_ADAPTER_DIR,
    in_setup,
)

log = logging.getLogger(__name__)


def prepare_environment(config: Mapping[str, Any], basedir: Path, *, remote: bool = False) -> None:
    """Set the environment every job of the workflow inherits.

    - ``PYTHONPATH`` gains the source tree, so jobs in ``--use-conda`` environments
      (which do not install the package) import ``langarith`` from the checkout.
    - The demo is offline by definition: ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE``
      default to 1 so a missing model fails at once instead of hanging on the network.
      A real run leaves them as the user set them (download rules need the network).
    - ``LANGARITH_WARM`` is 1 when ``warm_start`` is on and this process runs jobs on
      this machine (``remote`` is False: not a cluster job), so that rule scripts fork
      from a warm process (:mod:`langarith.warm`); it is set either way, so a value
      inherited from a submitting process never applies on a cluster node.
    """
    src = str(Path(basedir) / "src")
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if src not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([src, *paths])
    if (config.get("data") or {}).get("source") == "demo":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ["LANGARITH_WARM"] = "1" if config.get("warm_start") and not remote else "0"


def release_rate_limiter_timers() -> int:
    """Cancel the job-rate limiter's pending timers once the run has ended; how many.

    Snakemake 9 arms a ``threading.Timer`` of the limiter's timespan after scheduling
    passes (``profiles/default``: 10 s) and its interpreter waits for those threads at
    exit, so a finished run lingered up to one timespan. The workflow's ``onsuccess``
    and ``onerror`` hooks call this after the last job, when no further pass can be
    needed. Only timers whose callback comes from Snakemake's scheduling package are
    touched; a Snakemake that arms none simply finds nothing to cancel.
    """
    cancelled = 0
    for thread in threading.enumerate():
        callback = getattr(thread, "function", None)
        module = getattr(callback, "__module__", "") or ""
        if isinstance(thread, threading.Timer) and module.startswith("snakemake.scheduling"):
            thread.cancel()
            cancelled += 1
    return cancelled


def memoized_producer_lookup(lookup: Callable[[Any, str], set]) -> Callable[[Any, str], set]:
    """``lookup`` (``OutputIndex.match_producers``) remembered per index and file path.

    Which rules can produce a path depends only on the path and the rules' outputs, both
    fixed while a DAG is built, but Snakemake 9 asks again for every job that reads the
    path: 16,467 look-ups of 2,936 paths on the paper config, each matching the path
    against the output patterns of every rule under the same leading folder (the arms'
    rules have up to 83 outputs under ``results/scores/`` or ``results/adapters/``).
    Each call returns a new set, as the unwrapped method does.
    """

    @functools.wraps(lookup)
    def match_producers(index: Any, targetfile: str) -> set:
        memo = index.__dict__.setdefault("_langarith_producers", {})
        key = str(targetfile)
        found = memo.get(key)
        if found is None:
            found = memo[key] = frozenset(lookup(index, targetfile))
        return set(found)

    match_producers.langarith_memoized = True  # type: ignore[attr-defined]
    return match_producers


def memoize_producer_lookups() -> bool:
    """Make Snakemake remember which rules produce a path while it builds the DAG.

    Planning the paper's DAG spent about a sixth of its time repeating these look-ups
    (README, "Planning the DAG"). Installed once per process by ``rules/common.smk``;
    False when this Snakemake has no ``OutputIndex.match_producers`` (nothing changed).
    """
    try:
        from snakemake.output_index import OutputIndex
    except ImportError:
        return False
    lookup = getattr(OutputIndex, "match_producers", None)
    if lookup is None:
        return False
    if not getattr(lookup, "langarith_memoized", False):
        OutputIndex.match_producers = memoized_producer_lookup(lookup)
    return True


def model_names(config: Mapping[str, Any]) -> list[str]:
    return [m["name"] for m in config["models"]]


def budget_models(config: Mapping[str, Any]) -> list[str]:
    """Backbones of the token-budget study: ``token_budget.models`` (default: every model).

    The papers run the study on XLM-R only (ACL §5.2, ECAI Figure 2); config order kept.
    """
    wanted = (config.get("token_budget") or {}).get("models")
    names = model_names(config)
    return names if not wanted else [name for name in names if name in wanted]


def budget_tokens(config: Mapping[str, Any], lang: str) -> list[int]:
    """Whitespace-token budgets of one language: ``tokens`` plus its ``extra_tokens``.

    ``extra_tokens`` adds budgets for some languages only (the papers' 1B for French,
    which Assamese and Swahili Wikipedia do not hold); ascending, without repeats.
    """
    budget = config.get("token_budget") or {}
    extra = (budget.get("extra_tokens") or {}).get(lang) or []
    return sorted({int(tokens) for tokens in [*(budget.get("tokens") or []), *extra]})


def model_spec(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    for model in config["models"]:
        if model["name"] == name:
            return dict(model)
    raise KeyError(name)


def dataset_requests(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (dataset, language) the config needs, uncovered target languages skipped.

    Wikipedia for each adapter language; each trained task's English training data;
    each task's evaluation data for its covered targets. Skipped languages are logged
    once here, so a dry run tells the user what will not be evaluated and why.
    """
    source = config.get("source_language", "en")
    wanted: list[tuple[str, str]] = [("wikipedia", lang) for lang in config["languages"]]
    for task in trained_tasks(config):
        spec = config["tasks"][task]
        # Its validation split picks the task adapter's best checkpoint.
        wanted.append((spec["train_dataset"], source))
    for task, spec in config["tasks"].items():
        targets, skipped = task_targets(config, task)
        for lang in skipped:
            log.info(
                "task %s: dataset %s has no %s split; %s is skipped for this task",
                task,
                spec["eval_dataset"],
                lang,
                lang,
            )
        wanted.extend((spec["eval_dataset"], lang) for lang in targets)
    return sorted(set(wanted))


def dataset_inputs(config: Mapping[str, Any], dataset: str, lang: str) -> dict[str, str]:
    """Data folders the real preparation of (``dataset``, ``lang``) reads: SMSA reads
    NusaX Indonesian, whose test texts it leaves out (``langarith.data.real``); the demo
    generator reads none."""
    if (config.get("data") or {}).get("source") == "demo":
        return {}
    inputs = {}
    for number, (name, code) in enumerate(data_dependencies(dataset)):
        inputs["exclude" if number == 0 else f"exclude{number}"] = DATA_DIR.format(
            dataset=name, lang=code
        )
    return inputs


def text_manifest(config: Mapping[str, Any], lang: str) -> str | None:
    """``data.text.<lang>``: the ``sha256sum`` manifest of a language's own text, which
    the data step writes in place of its Wikipedia (languages without one)."""
    path = ((config.get("data") or {}).get("text") or {}).get(lang)
    return None if path is None else str(path)


def data_outputs(config: Mapping[str, Any]) -> list[str]:
    return [DATA_DIR.format(dataset=d, lang=lang) for d, lang in dataset_requests(config)]


def related_targets(config: Mapping[str, Any]) -> list[str]:
    """Languages that need a related language: every target of every task."""
    targets: set[str] = set(config["evaluation_languages"])
    for task in config["tasks"]:
        targets.update(task_targets(config, task)[0])
    return sorted(targets)


def related_pool(config: Mapping[str, Any]) -> list[str]:
    """Languages a related language may be drawn from (they must have adapters)."""
    pool = (config.get("related") or {}).get("pool")
    if pool:
        return list(pool)
    source = config.get("source_language", "en")
    return [lang for lang in config["languages"] if lang != source]


def backbone_outputs(config: Mapping[str, Any]) -> list[str]:
    return [BACKBONE_DIR.format(model=m) for m in model_names(config)]


def language_adapter_outputs(config: Mapping[str, Any]) -> list[str]:
    out = []
    for model in model_names(config):
        out.append(INIT_DIR.format(model=model))
        out += [
            LANG_ADAPTER_DIR.format(model=model, lang=lang, seed=seed)
            for lang in config["languages"]
            for seed in config["seeds"]
        ]
        if model not in budget_models(config):
            continue
        budget = config.get("token_budget") or {}
        out += [
            BUDGET_ADAPTER_DIR.format(model=model, lang=lang, tokens=tokens, seed=seed)
            for lang in budget.get("languages") or []
            for tokens in budget_tokens(config, lang)
            for seed in config["seeds"]
        ]
    return out


def task_adapter_outputs(config: Mapping[str, Any]) -> list[str]:
    return [
        TASK_ADAPTER_DIR.format(model=model, task=task, seed=seed)
        for model in model_names(config)
        for task in trained_tasks(config)
        for seed in config["seeds"]
    ]


def final_targets(config: Mapping[str, Any]) -> list[str]:
    """Everything ``rule all`` asks for, stage by stage."""
    return (
        data_outputs(config)
        + [in_setup(RELATED_TSV, config)]
        + backbone_outputs(config)
        + language_adapter_outputs(config)
        + task_adapter_outputs(config)
    )
