"""What a config's ``fullft`` section makes: models to fine-tune, scoring jobs, outputs.

The section (``workflow/schemas/config.schema.yaml``, ``fullft``)::

    fullft:
      models: [tinyxlmr]             # default: every model
      seeds: [1]                     # default: the config's seeds
      lambda_grid: {start: 0.1, stop: 1.0, step: 0.1}
      lambda_choice: dataset         # or target (a deviation from the paper)
      variants: [model, src, tgt, src-tgt, neg-src-tgt]
      sparsity: {keep: [10, 50, 90], variants: [tgt, src-tgt]}
      no_text: [nij]                 # targets without text: skipped, noted in the table
      language: {training: {...}, per_language: {sw: {...}}}
      task: {training: {...}}
      per_model:                     # a backbone's own settings, on top of the above
        xlmr-large: {language: {training: {...}}, task: {training: {...}},
                     datasets: {nli: {training: {...}}}}
      datasets:
        nli: {kind: nli, train_dataset: xnli, eval_dataset: xnli, source: en,
              targets: [de, ru], training: {...}, metric: accuracy}
        anli: {kind: nli, train_dataset: xnli, eval_dataset: americasnli, task_from: nli,
               targets: [quy]}

A dataset key is the ``<task>`` of the score paths; its task model is trained on the
``source`` language's ``train_dataset`` (or is ``task_from``'s), its targets evaluated
on ``eval_dataset``; ``metric`` picks the task checkpoint and λ.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from langarith import LangarithError
from langarith.config import grid
from langarith.data import dataset_covers
from langarith.paths import (
    DATA_DIR,
    FULLFT_LANG_DIR,
    FULLFT_SPARSITY,
    FULLFT_SPARSITY_PART,
    FULLFT_TASK_DIR,
    SCORE_CSV,
    in_setup,
)
from langarith.plan import model_names
from langarith.settings import fullft_language_settings, fullft_task_settings

__all__ = [
    "ALL_VARIANTS",
    "DEFAULT_GRID",
    "fullft_datasets",
    "fullft_job",
    "fullft_languages",
    "fullft_models",
    "fullft_outputs",
    "fullft_section",
    "fullft_seeds",
    "fullft_targets",
    "job_inputs",
    "job_outputs",
    "sparsity_parts",
    "task_data",
    "language_hparams",
    "score_path",
    "task_hparams",
    "task_metric",
    "task_models",
    "task_owner",
]

log = logging.getLogger(__name__)

ALL_VARIANTS = ("model", "src", "tgt", "src-tgt", "neg-src-tgt")
#: (dataset, target) pairs already logged as skipped (the planner runs many times).
_LOGGED_SKIPS: set[tuple[str, str]] = set()
DEFAULT_GRID = {"start": 0.1, "stop": 1.0, "step": 0.1}


def fullft_section(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``fullft`` section (empty: the arm is off)."""
    return dict(config.get("fullft") or {})


def fullft_models(config: Mapping[str, Any]) -> list[str]:
    section = fullft_section(config)
    if not section:
        return []
    wanted = section.get("models")
    names = model_names(config)
    unknown = sorted(set(wanted or []) - set(names))
    if unknown:
        raise LangarithError(f"fullft.models {unknown} are not in the config's models {names}")
    return names if not wanted else [n for n in names if n in wanted]


def fullft_seeds(config: Mapping[str, Any]) -> list[int]:
    return [int(s) for s in fullft_section(config).get("seeds") or config.get("seeds") or [1]]


def fullft_datasets(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(k): dict(v) for k, v in (fullft_section(config).get("datasets") or {}).items()}


def task_owner(config: Mapping[str, Any], dataset: str) -> str:
    """The dataset whose task model ``dataset`` uses: its ``task_from`` (AmericasNLI
    scores XNLI's MultiNLI model, the paper's one task vector for both), else itself.

    The owner must train the same kind on the same data and source, and own its model.
    """
    datasets = fullft_datasets(config)
    owner = datasets[dataset].get("task_from")
    if owner is None or owner == dataset:
        return dataset
    where = f"fullft.datasets.{dataset}.task_from"
    if owner not in datasets:
        raise LangarithError(f"{where}: {owner!r} is not a dataset of fullft.datasets")
    if datasets[owner].get("task_from") not in (None, owner):
        raise LangarithError(f"{where}: {owner!r} uses another dataset's task model itself")
    mine, theirs = datasets[dataset], datasets[owner]
    for key, default in (
        ("kind", "nli"),
        ("train_dataset", None),
        ("source", config.get("source_language", "en")),
        ("metric", None),
        ("training", None),
    ):
        if key in mine and mine.get(key, default) != theirs.get(key, default):
            raise LangarithError(
                f"{where}: {owner!r} has another {key} ({theirs.get(key, default)!r}, not "
                f"{mine.get(key, default)!r}); drop task_from or make them equal"
            )
    return str(owner)


def task_models(config: Mapping[str, Any]) -> list[str]:
    """The datasets that train a task model (every one without ``task_from``)."""
    return [d for d in fullft_datasets(config) if task_owner(config, d) == d]


def fullft_targets(config: Mapping[str, Any], dataset: str) -> tuple[list[str], list[str]]:
    """(targets evaluated, targets skipped for lack of text) of one dataset.

    A target equal to the dataset's source is refused.
    """
    spec = fullft_datasets(config)[dataset]
    no_text = _without_text(config)
    targets = [str(t) for t in spec.get("targets") or []]
    source = str(spec.get("source", config.get("source_language", "en")))
    if source in targets:
        raise LangarithError(
            f"fullft.datasets.{dataset}: target {source!r} is the dataset's source; drop it"
        )
    if source in no_text:
        raise LangarithError(
            f"fullft.datasets.{dataset}: source {source!r} has no text (fullft.no_text), so it "
            "has no language vector; give it text or use another source"
        )
    skipped = [t for t in targets if t in no_text]
    for target in skipped:
        if (dataset, target) not in _LOGGED_SKIPS:
            _LOGGED_SKIPS.add((dataset, target))
            log.info(
                "fullft.datasets.%s: target %s has no text for a language vector (no "
                "Wikipedia, no data.text or data.local_paths.wikipedia entry, or listed in "
                "fullft.no_text); skipped and noted under the task_arithmetic table",
                dataset,
                target,
            )
    return [t for t in targets if t not in no_text], skipped


def _without_text(config: Mapping[str, Any]) -> set[str]:
    """Languages with no text for an MLM model: ``fullft.no_text``, and languages that
    Wikipedia does not cover and neither ``data.text`` (a language's own text files)
    nor ``data.local_paths.wikipedia`` gives (the demo generates every language it
    knows)."""
    listed = {str(x) for x in fullft_section(config).get("no_text") or []}
    data = config.get("data") or {}
    if data.get("source") == "demo":
        return listed
    local = set((data.get("local_paths") or {}).get("wikipedia") or {})
    local |= set(data.get("text") or {})
    langs = set()
    for spec in fullft_datasets(config).values():
        langs.update(str(t) for t in spec.get("targets") or [])
    return listed | {t for t in langs if not dataset_covers("wikipedia", t) and t not in local}


def fullft_languages(config: Mapping[str, Any]) -> list[str]:
    """Languages with an MLM model: every dataset's source and targets with text."""
    langs: list[str] = []
    for dataset, spec in fullft_datasets(config).items():
        source = str(spec.get("source", config.get("source_language", "en")))
        for lang in [source, *fullft_targets(config, dataset)[0]]:
            if lang not in langs:
                langs.append(lang)
    return langs


def language_hparams(
    config: Mapping[str, Any], lang: str, model: str | None = None
) -> dict[str, Any]:
    """MLM settings of ``lang`` for ``model``
    (:func:`~langarith.settings.fullft_language_settings`)."""
    return fullft_language_settings(config, lang, model).as_dict()


def task_hparams(
    config: Mapping[str, Any], dataset: str, model: str | None = None
) -> dict[str, Any]:
    """Task settings of a dataset for ``model``
    (:func:`~langarith.settings.fullft_task_settings`)."""
    hp = fullft_task_settings(config, dataset, model).as_dict()
    hp.pop("adapter_config", None)
    return hp


def score_path(config: Mapping[str, Any], variant: str, model: str, task: str, target: str,
               seed: int) -> str:  # fmt: skip
    """``results/scores/ta-<variant>/<model>/<task>/<target>/seed<s>.csv`` (in the setup)."""
    path = SCORE_CSV.format(scenario=f"ta-{variant}", model=model, task=task, target=target,
                            seed=seed)  # fmt: skip
    return in_setup(path, config)


def _variants(config: Mapping[str, Any]) -> list[str]:
    return [str(v) for v in fullft_section(config).get("variants") or ALL_VARIANTS]


def _sparsity(config: Mapping[str, Any]) -> tuple[list[float], list[str]]:
    spec = fullft_section(config).get("sparsity") or {}
    return [float(k) for k in spec.get("keep") or []], [
        str(v) for v in spec.get("variants") or ("tgt", "src-tgt")
    ]


def fullft_outputs(config: Mapping[str, Any]) -> list[str]:
    """Every score CSV and sparsity CSV the section ends with (``rule all``)."""
    out: list[str] = []
    keep, _ = _sparsity(config)
    for model in fullft_models(config):
        for dataset in fullft_datasets(config):
            targets, _ = fullft_targets(config, dataset)
            for seed in fullft_seeds(config):
                for variant in _variants(config):
                    out += [score_path(config, variant, model, dataset, t, seed) for t in targets]
        if keep:
            out.append(FULLFT_SPARSITY.format(model=model))
    return out


def fullft_job(config: Mapping[str, Any], model: str, task: str, seed: int | str) -> dict[str, Any]:
    """The :class:`~langarith.fullft.evaluate.FullFtJob` fields of one scoring job."""
    spec = fullft_datasets(config)[task]
    targets, skipped = fullft_targets(config, task)
    source = str(spec.get("source", config.get("source_language", "en")))
    keep, sparse_variants = _sparsity(config)
    eval_dataset = str(spec.get("eval_dataset") or spec.get("train_dataset"))
    section = fullft_section(config)
    max_length = task_hparams(config, task_owner(config, task), model)["max_length"] or 128
    return {
        "model": model,
        "task": task,
        "kind": str(spec.get("kind", "nli")),
        "seed": seed if isinstance(seed, str) and not seed.isdigit() else int(seed),
        "backbone": f"resources/backbones/{model}",
        "task_dir": FULLFT_TASK_DIR.format(model=model, task=task_owner(config, task), seed=seed),
        "source": source,
        "source_dir": FULLFT_LANG_DIR.format(model=model, lang=source, seed=seed),
        "targets": {t: FULLFT_LANG_DIR.format(model=model, lang=t, seed=seed) for t in targets},
        "data": {t: DATA_DIR.format(dataset=eval_dataset, lang=t) for t in targets},
        "grid": grid(section.get("lambda_grid") or DEFAULT_GRID),
        "outputs": {
            f"{v}/{t}": score_path(config, v, model, task, t, seed)
            for v in _variants(config)
            for t in targets
        },
        "variants": _variants(config),
        "lambda_choice": str(section.get("lambda_choice", "dataset")),
        "sparsity_keep": keep,
        "sparsity_variants": sparse_variants,
        "sparsity_output": FULLFT_SPARSITY_PART.format(model=model, task=task, seed=seed)
        if keep
        else None,
        "max_length": int(max_length),
        "skipped": skipped,
        "metric": task_metric(config, task),
    }


def task_metric(config: Mapping[str, Any], task: str) -> str | None:
    """The validation metric of a dataset (``fullft.datasets.<d>.metric``; ``None``: the
    kind's main one): it picks the task model's checkpoint and the λ."""
    metric = fullft_datasets(config)[task].get("metric")
    return None if metric is None else str(metric)


# --------------------------------------------------------------------------- rule helpers


def task_data(config: Mapping[str, Any], task: str) -> str:
    """The source-language training data folder of a dataset's task model."""
    spec = fullft_datasets(config)[task]
    source = spec.get("source", config.get("source_language", "en"))
    return DATA_DIR.format(dataset=spec["train_dataset"], lang=source)


def job_inputs(config: Mapping[str, Any], model: str, task: str, seed: int | str) -> dict:
    """Named inputs of one scoring job (``rules/fullft.smk``)."""
    job = fullft_job(config, model, task, seed)
    return {
        "backbone": job["backbone"],
        "task": job["task_dir"],
        "source": job["source_dir"],
        "targets": list(job["targets"].values()),
        "data": list(job["data"].values()),
    }


def job_outputs(config: Mapping[str, Any], task: str) -> dict[str, str]:
    """Named outputs of a dataset's scoring rule, ``{model}`` and ``{seed}`` left open:
    a score CSV per (variant, target) and the sparsity part."""
    job = fullft_job(config, "{model}", task, "{seed}")
    outputs = dict(job["outputs"])
    if job["sparsity_output"]:
        outputs["sparsity"] = job["sparsity_output"]
    return {key.replace("/", "_").replace("-", "_"): path for key, path in outputs.items()}


def sparsity_parts(config: Mapping[str, Any], model: str) -> list[str]:
    """The scoring jobs' sparsity CSVs of one model."""
    return [
        FULLFT_SPARSITY_PART.format(model=model, task=task, seed=seed)
        for task in fullft_datasets(config)
        for seed in fullft_seeds(config)
    ]
