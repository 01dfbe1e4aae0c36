"""The X-MOD arm in the core's registries: table ``xmod``, figure
``xmod_pretrained_vs_added_<set>``, the arm's final outputs and its job counts
(:mod:`langarith.arms` imports this module; the core never imports the arm).

The ``xmod`` table: X-MOD against SHARED on pre-trained and added languages.

Cells are test scores, mean ± standard deviation over seeds (the papers' Tables 2 and
3 report the mean over 5 seeds); ``AVG`` rows average the targets of a group
(pre-trained, added) per seed first, then over seeds, as the core's scenario tables do.
A target is *added* when the table's inputs name its added-language folder
(``results/xmod/<arm>-<set>/added/<lang>``), *pre-trained* otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from langarith.arm_registry import ARM_JOB_COUNTS, ARM_OUTPUTS, ARM_SCORES, ArmJobs
from langarith.io import read_json
from langarith.paths import XMOD_ADDED_DIR
from langarith.report.figures import FIGURES, FigureRequest, FigureSpec
from langarith.report.render import format_mean_std, markdown_table
from langarith.report.scores import primary_metric
from langarith.report.tables import TABLES, BuiltTable, TableRequest, TableSpec
from langarith.xmod import plan as xmod_plan

__all__ = [
    "METHOD_ORDER",
    "build_xmod",
    "language_count_figure",
    "language_counts",
    "xmod_job_counts",
    "pretrained_vs_added_figure",
    "xmod_figure_inputs",
    "xmod_figure_sets",
    "xmod_frame",
    "xmod_inputs",
    "xmod_markdown",
    "xmod_wanted",
]

#: Column order of the table.
METHOD_ORDER = ("X-MOD", "SHARED", "X-MOD LA")


def xmod_inputs(config: Mapping[str, Any], table: str) -> dict[str, list[str]]:
    """Every score CSV of the arm and every added language's folder."""
    added = [
        path
        for name in xmod_plan.sets(config)
        for arm in xmod_plan.arms(config, name)
        for path in xmod_plan.added_dirs(config, arm, name).values()
    ]
    return {"scores": xmod_plan.final_outputs(config), "added": added}


def xmod_wanted(config: Mapping[str, Any], table: str) -> bool:
    """Made when the config runs the arm on at least one task."""
    return bool(xmod_plan.sets(config) and xmod_plan.tasks(config))


def _added(paths: Sequence[str]) -> set[str]:
    assert XMOD_ADDED_DIR.endswith("/{lang}")
    return {Path(p).name for p in paths}


def xmod_frame(scores: pd.DataFrame, added_paths: Sequence[str]) -> pd.DataFrame:
    """One row per (set, task, group, target or AVG, method): mean, std, seeds."""
    added = _added(added_paths)
    test = scores[scores["split"] == "test"].copy()
    rows = []
    for (model, task), part in test.groupby(["model", "task"], sort=True):
        metric = primary_metric(part["metric"].unique())
        part = part[part["metric"] == metric].copy()
        part["group"] = ["added" if t in added else "pre-trained" for t in part["target"]]
        for (group, method), cell in part.groupby(["group", "method"], sort=True):
            per_target = cell.groupby("target")["score"]
            for target, values in per_target:
                rows.append(_row(model, task, metric, group, str(target), method, values))
            # AVG: per seed over the targets every seed has, then over seeds
            counts = cell.groupby("target")["seed"].nunique()
            complete = counts[counts == cell["seed"].nunique()].index
            per_seed = cell[cell["target"].isin(complete)].groupby("seed")["score"].mean()
            rows.append(_row(model, task, metric, group, "AVG", method, per_seed))
    return pd.DataFrame(
        rows,
        columns=["model", "task", "metric", "group", "target", "method", "mean", "std", "seeds"],
    )


def _row(model, task, metric, group, target, method, values: pd.Series) -> dict[str, Any]:
    return {
        "model": model,
        "task": task,
        "metric": metric,
        "group": group,
        "target": target,
        "method": method,
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
        "seeds": int(len(values)),
    }


def xmod_markdown(frame: pd.DataFrame) -> str:
    """One wide table per (set, task): targets down, X-MOD and SHARED across."""
    parts = [
        "# X-MOD and SHARED on pre-trained and added languages\n\n"
        "Test split, mean ± std over seeds. English fine-tuning through the en module; "
        "at test time the target's module (and, for an added language, its tokenizer and "
        "embeddings) is swapped in. X-MOD LA (scenario xmod_la, added languages only): "
        "no module is trained; the en module and the related pre-trained language's are "
        "merged, λ·m_en + (1 − λ)·m_rel, λ chosen on the target's validation split, with "
        "the base tokenizer and embeddings. No published system does this.\n"
    ]
    for (model, task, metric), part in frame.groupby(["model", "task", "metric"], sort=True):
        methods = [m for m in METHOD_ORDER if m in set(part["method"])]
        methods += sorted(set(part["method"]) - set(methods))
        wide = []
        for group in ("pre-trained", "added"):
            cells = part[part["group"] == group]
            targets = [t for t in dict.fromkeys(cells["target"]) if t != "AVG"] + ["AVG"]
            for target in targets:
                row = {"group": group, "target": target}
                for method in methods:
                    hit = cells[(cells["target"] == target) & (cells["method"] == method)]
                    row[method] = (
                        format_mean_std(hit["mean"].iloc[0], hit["std"].iloc[0])
                        if len(hit)
                        else "–"
                    )
                if len(cells):
                    wide.append(row)
        parts.append(
            f"\n## {task} ({metric}), set {model}\n\n" + markdown_table(pd.DataFrame(wide))
        )
    return "".join(parts)


def xmod_figure_inputs(config: Mapping[str, Any], model: str, task: str | None) -> dict:
    """The ``xmod_pretrained_vs_added_<set>`` figure reads the set's scores and added
    folders (``model`` is the language set)."""
    inputs = xmod_inputs(config, "xmod")
    marker = f"/{model}/"
    return {
        "scores": [p for p in inputs["scores"] if marker in p],
        "added": [p for p in inputs["added"] if Path(p).parent.parent.name.endswith(f"-{model}")],
    }


def xmod_figure_sets(config: Mapping[str, Any]) -> list[str]:
    """One figure per language set."""
    return xmod_plan.sets(config) if xmod_wanted(config, "xmod") else []


def pretrained_vs_added_figure(frame: pd.DataFrame, model: str):
    """Per task, the average test score of pre-trained and of added languages, X-MOD
    beside SHARED, error bars ± std over seeds (X-MOD Figure 4's right-hand panels and
    Figure 5 in one view)."""
    from matplotlib.figure import Figure

    averages = frame[(frame["model"] == model) & (frame["target"] == "AVG")]
    tasks = sorted(set(averages["task"]))
    figure = Figure(layout="constrained", figsize=(max(4.0, 3.2 * len(tasks)), 3.4))
    axes = figure.subplots(1, max(1, len(tasks)), squeeze=False).ravel()
    methods = [m for m in METHOD_ORDER if m in set(averages["method"])]
    groups = ("pre-trained", "added")
    width = 0.8 / max(1, len(methods))
    for ax, task in zip(axes, tasks, strict=False):
        part = averages[averages["task"] == task]
        for i, method in enumerate(methods):
            means, stds = [], []
            for group in groups:
                hit = part[(part["group"] == group) & (part["method"] == method)]
                means.append(float(hit["mean"].iloc[0]) if len(hit) else float("nan"))
                stds.append(float(hit["std"].iloc[0]) if len(hit) else float("nan"))
            xs = [g + (i - (len(methods) - 1) / 2) * width for g in range(len(groups))]
            ax.bar(xs, means, width, yerr=[0 if s != s else s for s in stds], label=method)
        ax.set_xticks(range(len(groups)), groups)
        metric = part["metric"].iloc[0] if len(part) else ""
        ax.set_title(f"{task}", fontsize=10)
        ax.set_ylabel(f"test {metric}", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    figure.suptitle(f"X-MOD and SHARED, set {model}: pre-trained vs added languages", fontsize=10)
    return figure


# ----------------------------------------------------------------------------- language count

#: The ``model`` wildcard of ``xmod_languages_<task>_sets``: the figure spans every set.
LANGUAGE_COUNT_MODEL = "sets"


def language_counts(backbones: Sequence[str]) -> dict[tuple[str, str], int]:
    """(set, method) → number of pre-trained languages, read from each backbone's
    config.json (a released checkpoint's own ``languages``, not the config's subset)."""
    counts = {}
    for folder in backbones:
        config = read_json(Path(folder) / "config.json", "X-MOD backbone config")
        arm, _, name = Path(folder).name.partition("-")
        languages = config.get("langarith_shared_languages") or config.get("languages") or []
        method = "SHARED" if config.get("langarith_shared_languages") is not None else "X-MOD"
        counts[(name, method)] = len(languages)
    return counts


def language_count_figure(frame: pd.DataFrame, counts: Mapping[tuple[str, str], int], task: str):
    """X-MOD Figure 4: the average test score of a task against the number of
    pre-trained languages of the set, X-MOD beside SHARED (pre-trained targets solid,
    added ones dashed), error bars ± std over seeds."""
    from matplotlib.figure import Figure

    averages = frame[(frame["task"] == task) & (frame["target"] == "AVG")]
    figure = Figure(layout="constrained", figsize=(4.6, 3.4))
    ax = figure.subplots()
    for method in [m for m in METHOD_ORDER if m in set(averages["method"])]:
        for group, style in (("pre-trained", "-"), ("added", "--")):
            part = averages[(averages["method"] == method) & (averages["group"] == group)]
            points = sorted(
                (counts[(m, method)], mean, 0.0 if std != std else std)
                for m, mean, std in zip(part["model"], part["mean"], part["std"], strict=True)
                if (m, method) in counts
            )
            if points:
                xs, ys, errs = zip(*points, strict=True)
                ax.errorbar(xs, ys, yerr=errs, fmt=style, marker="o", capsize=3,
                            label=f"{method} ({group})")  # fmt: skip
    metric = averages["metric"].iloc[0] if len(averages) else ""
    ax.set_xlabel("pre-trained languages")
    ax.set_ylabel(f"test {metric}, average over targets")
    ax.set_title(f"X-MOD and SHARED against the number of languages: {task}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return figure


def draw_xmod_languages(request: FigureRequest):
    frame = xmod_frame(request.scores(), request.paths("added"))
    return language_count_figure(
        frame, language_counts(request.paths("backbones")), str(request.task)
    )


def _language_count_tasks(config: Mapping[str, Any]) -> list[str]:
    """The figure needs at least two sets with different numbers of languages."""
    counts = {
        len(xmod_plan.set_spec(config, name).get("languages") or [])
        for name in xmod_plan.sets(config)
    }
    return xmod_plan.tasks(config) if len(counts) > 1 and xmod_wanted(config, "xmod") else []


def _language_count_inputs(config: Mapping[str, Any], model: str, task: str | None) -> dict:
    inputs = xmod_inputs(config, "xmod")
    return {
        "scores": [p for p in inputs["scores"] if f"/{task}/" in p and "/xmod-la/" not in p],
        "added": inputs["added"],
        "backbones": [
            xmod_plan.backbone_dir(arm, name)
            for name in xmod_plan.sets(config)
            for arm in xmod_plan.arms(config, name)
        ],
    }


# ----------------------------------------------------------------------------- registration


def build_xmod(request: TableRequest) -> BuiltTable:
    """X-MOD against SHARED on pre-trained and added languages."""
    frame = xmod_frame(request.scores(), request.paths("added"))
    return BuiltTable(frame, xmod_markdown(frame))


def draw_xmod_pretrained_vs_added(request: FigureRequest):
    """Pre-trained against added languages, X-MOD beside SHARED."""
    frame = xmod_frame(request.scores(), request.paths("added"))
    return pretrained_vs_added_figure(frame, request.model)


def xmod_job_counts(config: Mapping[str, Any]) -> ArmJobs:
    """The arm's jobs per rule and the core data folders it reads, for ``langarith plan``
    (the same as ``snakemake -n`` plans)."""
    counts = {rule: n for rule, n in xmod_plan.job_counts(config).items() if n}
    return ArmJobs(counts, frozenset(xmod_plan.data_dirs(config)))


TABLES["xmod"] = TableSpec(build_xmod, xmod_inputs, xmod_wanted, "xmod.rst", "X-MOD")
FIGURES["xmod_pretrained_vs_added"] = FigureSpec(
    draw_xmod_pretrained_vs_added,
    xmod_figure_inputs,
    "xmod_pretrained_vs_added.rst",
    "X-MOD",
    models=xmod_figure_sets,
    model_pattern="[a-z0-9][a-z0-9_.-]*",
)
FIGURES["xmod_languages"] = FigureSpec(
    draw_xmod_languages,
    _language_count_inputs,
    "xmod_languages.rst",
    "X-MOD",
    tasks=_language_count_tasks,
    models=lambda config: [LANGUAGE_COUNT_MODEL],
    model_pattern=LANGUAGE_COUNT_MODEL,
)
ARM_OUTPUTS["xmod"] = xmod_plan.final_outputs
ARM_JOB_COUNTS["xmod"] = xmod_job_counts
ARM_SCORES["xmod"] = xmod_plan.final_outputs  # paper_comparison: Tables 2 and 3
