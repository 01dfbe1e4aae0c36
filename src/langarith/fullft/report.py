"""The arm's tables and figure, registered in the core's report registries on import.

* table ``task_arithmetic`` (Table 2/7): test score per (dataset, variant, target) and the
  average, mean ± std over seeds;
* table ``task_arithmetic_lambda`` (Tables 3 and 9): the chosen λ of each (dataset,
  variant) and the mean validation score over targets at every λ;
* figure ``fullft_sparsity_<task>_<model>`` (Figures 1-3): test score against the share
  k of each language vector kept, top-k and bottom-k, at the variant's chosen λ.

:mod:`langarith.arms` imports this module, so that the report rules, the report scripts
and ``langarith plan`` see the entries; the core itself never imports it.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from langarith import LangarithError
from langarith.arm_registry import (
    ARM_COSTS,
    ARM_JOB_COUNTS,
    ARM_OUTPUTS,
    ARM_PAPER_TASKS,
    ARM_SCORES,
    ArmJobs,
)
from langarith.evaluate.score_files import read_scores
from langarith.fullft.cost import fullft_cost
from langarith.fullft.plan import (
    fullft_datasets,
    fullft_job,
    fullft_languages,
    fullft_models,
    fullft_outputs,
    fullft_section,
    fullft_seeds,
    fullft_targets,
    task_models,
)
from langarith.fullft.variants import SPARSITY_COLUMNS, VARIANTS
from langarith.io import atomic_file
from langarith.paths import DATA_DIR, FULLFT_SPARSITY
from langarith.plan import dataset_inputs
from langarith.report.figures import FIGURES, FigureRequest, FigureSpec
from langarith.report.render import markdown_table
from langarith.report.tables import TABLES, BuiltTable, TableRequest, TableSpec

__all__ = [
    "build_lambda_table",
    "build_task_arithmetic",
    "combine_sparsity",
    "draw_fullft_sparsity",
    "fullft_job_counts",
    "paper_averages",
    "sparsity_figure",
]

_LABEL_ORDER = {v.label: i for i, v in enumerate(VARIANTS.values())}


def _score_frame(paths: Sequence[str]) -> pd.DataFrame:
    if not paths:
        raise LangarithError("the task-arithmetic tables need the ta-* score files")
    rows = [row.as_record() for path in paths for row in read_scores(path)]
    frame = pd.DataFrame(rows)
    frame["score"] = frame["score"].astype(float)
    frame["lambda"] = pd.to_numeric(frame["lambda"], errors="coerce")
    return frame


def _mean_std(values: pd.Series) -> str:
    std = values.std(ddof=1) if len(values) > 1 else float("nan")
    return f"{values.mean():.2f}" + ("" if pd.isna(std) else f" ± {std:.2f}")


#: The paper's published averages (Tables 2, 4, 7), by dataset key, backbone and variant.
PAPER_NUMBERS = Path(__file__).resolve().parents[1] / "resources" / "paper_numbers_fullft.csv"


def paper_averages() -> pd.DataFrame:
    """The published averages of task-arithmetic-crosslingual (single runs)."""
    return pd.read_csv(PAPER_NUMBERS)


def _paper_markdown(tidy: pd.DataFrame, backbones: dict[str, str]) -> str:
    """Published averages beside the run's, for datasets and backbones the paper has."""
    paper = paper_averages()
    rows = []
    for record in tidy[tidy["target"] == "avg"].itertuples(index=False):
        model = backbones.get(record.model, record.model)
        slug = next((v.slug for v in VARIANTS.values() if v.label == record.method), None)
        hit = paper[(paper["dataset"] == record.task) & (paper["model"] == model)]
        hit = hit[hit["variant"] == slug]
        if len(hit):
            rows.append({"task": record.task, "model": record.model, "variant": record.method,
                         "run": f"{record.mean:.2f}", "paper": f"{hit['score'].iloc[0]:.2f}",
                         "paper table": hit["table"].iloc[0]})  # fmt: skip
    if not rows:
        return ""
    return "\n\n## Published averages (single runs)\n\n" + markdown_table(pd.DataFrame(rows))


def build_task_arithmetic(request: TableRequest) -> BuiltTable:
    """Table 2: test scores of the five variants, per target and on average."""
    frame = _score_frame(request.paths("scores"))
    test = frame[frame["split"] == "test"]
    per_seed = test.groupby(["model", "task", "method", "seed", "metric"], as_index=False)
    average = per_seed["score"].mean().assign(target="avg")
    both = pd.concat([test, average], ignore_index=True)
    tidy = both.groupby(["model", "task", "method", "target", "metric"], as_index=False).agg(
        mean=("score", "mean"), std=("score", "std"), n=("score", "size")
    )
    tidy["order"] = tidy["method"].map(_LABEL_ORDER)
    tidy = tidy.sort_values(["model", "task", "order", "target"]).drop(columns="order")
    parts = [
        "# Task arithmetic with full fine-tuning\n\nTest split, mean ± std over seeds; λ "
        "chosen per (variant, dataset) on the mean validation score of its targets.\n"
    ]
    for (model, task), group in both.groupby(["model", "task"], sort=True):
        cells = group.groupby(["method", "target"])["score"].apply(_mean_std).unstack()
        targets = sorted(c for c in cells.columns if c != "avg") + ["avg"]
        cells = cells[targets].reindex(sorted(cells.index, key=lambda m: _LABEL_ORDER.get(m, 99)))
        display = cells.reset_index().rename(columns={"method": "variant"})
        parts.append(f"\n## {task} ({model}, {group['metric'].iloc[0]})\n\n")
        parts.append(markdown_table(display))
    parts.append(_paper_markdown(tidy, dict(request.backbones)))
    if request.notes:
        parts.append("\n\n" + "\n".join(f"Note: {note}" for note in request.notes) + "\n")
    return BuiltTable(tidy.reset_index(drop=True), "".join(parts))


def build_lambda_table(request: TableRequest) -> BuiltTable:
    """Tables 3 and 9: the chosen λ, and the mean validation score over targets per λ."""
    frame = _score_frame(request.paths("scores"))
    searched = frame[frame["method"] != VARIANTS["model"].label]
    val = searched[searched["split"] == "validation"]
    curve = val.groupby(["model", "task", "method", "lambda", "metric"], as_index=False).agg(
        mean_validation=("score", "mean")
    )
    chosen = (
        searched[searched["split"] == "test"]
        .groupby(["model", "task", "method"], as_index=False)["lambda"]
        .agg(lambda s: ",".join(sorted({f"{x:g}" for x in s})))
    )
    chosen = chosen.rename(columns={"lambda": "chosen"})
    tidy = curve.merge(chosen, on=["model", "task", "method"], how="left")
    parts = [
        "# Chosen λ of task arithmetic with full fine-tuning\n\n"
        "One λ per (variant, dataset): the best mean validation score over its targets "
        "(several values: per-target choice, a deviation, or seeds that disagree).\n\n"
    ]
    display = chosen.assign(order=chosen["method"].map(_LABEL_ORDER)).sort_values(
        ["model", "task", "order"]
    )
    parts.append(
        markdown_table(display.drop(columns="order").rename(columns={"method": "variant"}))
    )
    for (model, task), group in curve.groupby(["model", "task"]):
        table = group.pivot_table(index="method", columns="lambda", values="mean_validation")
        table = table.reindex(sorted(table.index, key=lambda m: _LABEL_ORDER.get(m, 99)))
        table.columns = [f"{c:g}" for c in table.columns]
        shown = table.map(lambda x: f"{x:.2f}").reset_index().rename(columns={"method": "variant"})
        parts.append(f"\n\n## Validation score per λ: {task} ({model})\n\n")
        parts.append(markdown_table(shown))
    return BuiltTable(tidy, "".join(parts))


def combine_sparsity(parts: Sequence[str | PathLike[str]], out: str | PathLike[str]) -> Path:
    """``results/analysis/<model>/fullft_sparsity.csv``: the jobs' sparsity CSVs in one."""
    out = Path(out)
    with atomic_file(out, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SPARSITY_COLUMNS)
        for part in parts:
            with open(part, encoding="utf-8", newline="") as source:
                reader = csv.reader(source)
                header = next(reader, None)
                if header is None or tuple(header) != SPARSITY_COLUMNS:
                    raise LangarithError(f"{part} is not a fullft sparsity CSV; rerun its job")
                writer.writerows(reader)
    return out


def sparsity_figure(path: str | PathLike[str], model: str, task: str):
    """Score against k (percent of each language vector kept), mean over targets and
    seeds: one line per (variant, top/bottom)."""
    from matplotlib.figure import Figure

    frame = pd.read_csv(path)
    frame = frame[(frame["task"] == task) & (frame["model"] == model)]
    if frame.empty:
        raise LangarithError(f"{path} has no sparsity rows of {task}/{model}")
    figure = Figure(layout="constrained", figsize=(5.5, 3.6))
    ax = figure.add_subplot()
    for (variant, mode), group in frame.groupby(["variant", "mode"]):
        curve = group.groupby("keep")["score"].mean()
        style = "-" if mode == "top" else "--"
        label = f"{VARIANTS[variant].label} {mode}-k"
        ax.plot(curve.index, curve.values, style, marker="o", label=label)
    ax.set_xlabel("k: percent of each language vector kept")
    ax.set_ylabel(f"test {frame['metric'].iloc[0]}")
    ax.set_title(f"Sparsified language vectors: {task} ({model})")
    ax.legend(fontsize="small")
    return figure


def draw_fullft_sparsity(request: FigureRequest):
    return sparsity_figure(request.first("sparsity"), request.model, str(request.task))


# --------------------------------------------------------------------------- registration


def _wanted(config: Any, table: str) -> bool:
    return bool(fullft_models(config) and fullft_datasets(config))


def _score_inputs(config: Any, table: str) -> dict[str, list[str]]:
    return {"scores": fullft_scores(config)}


def _sparsity_tasks(config: Any) -> list[str]:
    keep = (fullft_section(config).get("sparsity") or {}).get("keep")
    return list(fullft_datasets(config)) if keep and fullft_models(config) else []


def _figure_inputs(config: Any, model: str, task: str | None) -> dict[str, list[str]]:
    return {"sparsity": [FULLFT_SPARSITY.format(model=model)]}


def skipped_notes(config: Any) -> dict[str, Any]:
    """The table's notes: targets each dataset skips for lack of text (as the paper's nij)."""
    notes = [
        f"{dataset}: {', '.join(skipped)} skipped (no text for a language vector)"
        for dataset in fullft_datasets(config)
        if (skipped := fullft_targets(config, dataset)[1])
    ]
    return {"notes": notes}


TABLES["task_arithmetic"] = TableSpec(
    build_task_arithmetic,
    _score_inputs,
    _wanted,
    "task_arithmetic.rst",
    "Task arithmetic",
    options=skipped_notes,
)
TABLES["task_arithmetic_lambda"] = TableSpec(
    build_lambda_table,
    _score_inputs,
    _wanted,
    "task_arithmetic_lambda.rst",
    "Task arithmetic",
)
FIGURES["fullft_sparsity"] = FigureSpec(
    draw_fullft_sparsity,
    _figure_inputs,
    "fullft_sparsity.rst",
    "Task arithmetic",
    tasks=_sparsity_tasks,
    models=fullft_models,
    mem_mb=1000,
    runtime=5,
)


def fullft_job_counts(config: Any) -> ArmJobs:
    """The arm's jobs for ``langarith plan`` (the same as ``snakemake -n`` plans)."""
    models, seeds = fullft_models(config), fullft_seeds(config)
    datasets = fullft_datasets(config)
    if not models or not datasets:
        return ArmJobs({})
    langs = fullft_languages(config)
    counts = {
        "fullft_language": len(models) * len(langs) * len(seeds),
        "fullft_task": len(models) * len(task_models(config)) * len(seeds),
        **{f"fullft_evaluate_{task}": len(models) * len(seeds) for task in datasets},
    }
    if (fullft_section(config).get("sparsity") or {}).get("keep"):
        counts["fullft_sparsity"] = len(models)
    data = {DATA_DIR.format(dataset="wikipedia", lang=lang) for lang in langs}
    for task, spec in datasets.items():
        source = spec.get("source", config.get("source_language", "en"))
        data.add(DATA_DIR.format(dataset=spec["train_dataset"], lang=source))
        data.update(dataset_inputs(config, spec["train_dataset"], source).values())
        data.update(fullft_job(config, models[0], task, seeds[0])["data"].values())
    corpora = {(model, lang) for model in models for lang in langs}
    return ArmJobs(counts, frozenset(data), frozenset(corpora))


def paper_tasks(config: Any) -> dict[str, dict[str, str]]:
    """``ta-<variant>`` → {dataset key: the dataset its targets are scored on}, so that
    ``paper_comparison`` finds the paper's ``americasnli`` under any key."""
    datasets = {
        key: str(spec.get("eval_dataset") or spec.get("train_dataset") or key)
        for key, spec in fullft_datasets(config).items()
    }
    return {variant.scenario: dict(datasets) for variant in VARIANTS.values()}


def fullft_scores(config: Any) -> list[str]:
    """The arm's score CSVs (``paper_comparison`` reads them)."""
    return [p for p in fullft_outputs(config) if "/scores/" in p]


ARM_JOB_COUNTS["fullft"] = fullft_job_counts
ARM_OUTPUTS["fullft"] = fullft_outputs
ARM_SCORES["fullft"] = fullft_scores
ARM_COSTS["fullft"] = fullft_cost
ARM_PAPER_TASKS["fullft"] = paper_tasks
