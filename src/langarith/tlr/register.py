"""The TLR arm in the core's registries: table ``tlr``, figure ``tlr_averages_<model>``,
the arm's final outputs and its job counts (``langarith.arms`` loads this module).

Table ``tlr`` (Table 2 of the seed): per (model, task) one row per variant, the test
score of each target (mean over seeds), their average, and against MAD-X the number of
targets where the variant is better ("better") and where it is better with the paired
t-test over test items at p < 0.05 in every seed ("sig. better"); with the paper's
mBERT setup, the seed's published average beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from langarith.arm_registry import ARM_COSTS, ARM_JOB_COUNTS, ARM_OUTPUTS, ARM_SCORES, ArmJobs
from langarith.paths import DATA_DIR, TLR_ALIGNMENT_CSV
from langarith.report.figures import FIGURES, FigureRequest, FigureSpec
from langarith.report.render import markdown_table
from langarith.report.tables import TABLES, BuiltTable, TableRequest, TableSpec
from langarith.tlr.cost import tlr_cost
from langarith.tlr.variants import (
    METHOD_NAMES,
    alignment_settings,
    alignment_spec,
    badx_pairs,
    la_family,
    task_data,
    tlr_plan,
)

__all__ = [
    "PUBLISHED",
    "build_tlr_table",
    "draw_tlr_alignment",
    "draw_tlr_averages",
    "tlr_averages_frame",
]

#: The seed's published averages (Table 2, mBERT; Table 4 three seeds; Table 6 XLM-R):
#: (model, task, method) -> average over its languages. ``americasnli`` is
#: AmericasNLI; BAD-X is published-only (its language-adapter setup is not in the seed).
PUBLISHED: dict[tuple[str, str, str], float] = {
    ("mbert", "ner", "MAD-X"): 67.96,
    ("mbert", "ner", "ALL-MULTI"): 69.86,
    ("mbert", "dp", "MAD-X"): 33.59,
    ("mbert", "dp", "ALL-MULTI"): 36.89,
    ("mbert", "dp", "BAD-X"): 32.66,
    ("mbert", "americasnli", "MAD-X"): 43.49,
    ("mbert", "americasnli", "ALL-MULTI"): 49.80,
    ("mbert", "americasnli", "BAD-X"): 46.42,
    ("mbert", "nli", "MAD-X"): 52.76,
    ("mbert", "nli", "ALL-MULTI"): 58.33,
    ("mbert", "nli", "BILINGUAL"): 59.12,
    ("mbert", "qa", "MAD-X"): 51.91,
    ("mbert", "qa", "ALL-MULTI"): 54.17,
    ("mbert", "qa", "TARGET"): 54.75,
    ("mbert", "qa_tydiqa", "MAD-X"): 51.26,
    ("mbert", "qa_tydiqa", "ALL-MULTI"): 54.46,
    ("mbert", "qa_tydiqa", "TARGET"): 55.51,
    ("mbert-3seeds", "ner", "MAD-X"): 68.27,
    ("mbert-3seeds", "ner", "ALL-MULTI"): 69.10,
    ("mbert-3seeds", "americasnli", "MAD-X"): 44.66,
    ("mbert-3seeds", "americasnli", "ALL-MULTI"): 49.10,
    ("xlmr", "nli", "MAD-X"): 64.52,
    ("xlmr", "nli", "ALL-MULTI"): 65.95,
    ("xlmr", "americasnli", "MAD-X"): 48.25,
    ("xlmr", "americasnli", "ALL-MULTI"): 48.31,
}

_ORDER = list(METHOD_NAMES.values())


# ----------------------------------------------------------------------------- inputs


def _score_files(config: Mapping[str, Any], model: str | None = None) -> list[str]:
    plan = tlr_plan(config)
    if plan is None:
        return []
    return [
        f.format(model=m, seed=s)
        for m in plan.models
        if model in (None, m)
        for s in plan.seeds
        for task in plan.tasks_of(m)
        for f in plan.score_files(config, task)
    ]


def _ttest_files(config: Mapping[str, Any]) -> list[str]:
    plan = tlr_plan(config)
    if plan is None:
        return []
    return [
        plan.ttest_file(config, task).format(model=m, seed=s)
        for m in plan.models
        for s in plan.seeds
        for task in plan.tasks_of(m)
    ]


def tlr_inputs(config: Mapping[str, Any], table: str) -> dict[str, list[str]]:
    return {"scores": _score_files(config), "ttests": _ttest_files(config)}


def tlr_wanted(config: Mapping[str, Any], table: str) -> bool:
    return tlr_plan(config) is not None


def tlr_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run's model → published model key (mBERT, XLM-R), for the published column."""
    hub = {"bert-base-multilingual-cased": "mbert", "xlm-roberta-base": "xlmr"}
    backbones = {
        m["name"]: hub.get(str(m.get("hub") or m.get("name")), "") for m in config["models"]
    }
    return {"backbones": {k: v for k, v in backbones.items() if v}}


# ----------------------------------------------------------------------------- table


def tlr_averages_frame(scores: pd.DataFrame, ttests: pd.DataFrame | None) -> pd.DataFrame:
    """Tidy rows (model, task, method, target, score, better, sig_better): the test
    score of each target averaged over seeds, and its comparison with MAD-X."""
    if "method_name" in scores:  # the core's reader reads "MAD-X" as its T; keep TLR's names
        scores = scores.assign(method=scores["method_name"])
    test = scores[scores["split"] == "test"]
    main = test.groupby(["model", "task"])["metric"].transform("first")
    test = test[test["metric"] == main]
    cell = test.groupby(["model", "task", "method", "target"], as_index=False)["score"].mean()
    madx = cell[cell["method"] == "MAD-X"].set_index(["model", "task", "target"])["score"]
    keys = list(zip(cell["model"], cell["task"], cell["target"], strict=True))
    cell["madx"] = [madx.get(k, np.nan) for k in keys]
    cell["better"] = (cell["score"] > cell["madx"]) & (cell["method"] != "MAD-X")
    sig: dict[tuple, bool] = {}
    if ttests is not None and not ttests.empty:
        for key, group in ttests.groupby(["model", "task", "method", "target"]):
            sig[key] = bool((group["significant"] == 1).all() and (group["t"] > 0).all())
    cell["sig_better"] = [
        sig.get((m, t, me, tg), False)
        for m, t, me, tg in zip(
            cell["model"], cell["task"], cell["method"], cell["target"], strict=True
        )
    ]
    return cell


def build_tlr_table(request: TableRequest) -> BuiltTable:
    scores = request.scores()
    paths = request.paths("ttests")
    ttests = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True) if paths else None
    cells = tlr_averages_frame(scores, ttests)
    backbones = dict(request.backbones)
    rows, parts = [], []
    for (model, task), group in cells.groupby(["model", "task"], sort=False):
        targets = list(dict.fromkeys(group["target"]))
        methods = sorted(set(group["method"]), key=lambda m: _ORDER.index(m) if m in _ORDER else 99)
        table = []
        for method in methods:
            g = group[group["method"] == method].set_index("target")
            row = {"model": model, "task": task, "method": method}
            row.update({t: round(float(g["score"].get(t, np.nan)), 2) for t in targets})
            row["avg"] = round(float(g["score"].mean()), 2)
            row["better"] = int(g["better"].sum()) if method != "MAD-X" else None
            row["sig_better"] = int(g["sig_better"].sum()) if method != "MAD-X" else None
            published = PUBLISHED.get((backbones.get(model, ""), task, method))
            row["published_avg"] = published
            table.append(row)
        frame = pd.DataFrame(table)
        frame[["better", "sig_better"]] = frame[["better", "sig_better"]].astype("Int64")
        if frame["published_avg"].isna().all():
            frame = frame.drop(columns="published_avg")
        parts.append(
            f"## {task} ({model}), test, mean over seeds\n\n"
            + markdown_table(frame.drop(columns=["model", "task"]).astype(object).fillna(""))
        )
        rows += table
    frame = pd.DataFrame(rows)
    frame[["better", "sig_better"]] = frame[["better", "sig_better"]].astype("Int64")
    markdown = (
        "# Target language-ready task adapters against MAD-X\n\n"
        "better: targets where the variant beats MAD-X; sig_better: and the paired t-test "
        "over test items gives p < 0.05 in every seed.\n\n" + "\n".join(parts)
    )
    return BuiltTable(frame, markdown)


# ----------------------------------------------------------------------------- figure


def _figure_inputs(config: Mapping[str, Any], model: str, task: str | None) -> dict[str, list[str]]:
    return {"scores": _score_files(config, model)}


def _figure_models(config: Mapping[str, Any]) -> list[str]:
    plan = tlr_plan(config)
    return list(plan.models) if plan is not None else []


def _alignment_models(config: Mapping[str, Any]) -> list[str]:
    """The models whose tasks include ``tlr.alignment.task`` (none without alignment)."""
    plan, settings = tlr_plan(config), alignment_settings(config)
    if plan is None or settings is None:
        return []
    return plan.models_of(settings["task"])


def draw_tlr_averages(request: FigureRequest):
    """Figure 2 of the seed: each variant's average test score per task, one bar group
    per task, MAD-X first."""
    from matplotlib.figure import Figure

    cells = tlr_averages_frame(request.scores(), None)
    cells = cells[cells["model"] == request.model]
    avg = cells.groupby(["task", "method"])["score"].mean().unstack("method")
    methods = [m for m in _ORDER if m in avg.columns]
    figure = Figure(
        layout="constrained", figsize=(max(5.0, 1.2 * len(avg) * len(methods) / 2), 3.4)
    )
    ax = figure.subplots()
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(avg))
    for i, method in enumerate(methods):
        ax.bar(x + i * width, avg[method].to_numpy(), width, label=method)
    ax.set_xticks(x + width * (len(methods) - 1) / 2, list(avg.index))
    ax.set_ylabel("average test score")
    ax.set_title(f"TLR variants, average over targets ({request.model})", fontsize=10)
    ax.legend(fontsize=7, ncols=2)
    ax.grid(axis="y", alpha=0.3)
    return figure


def _alignment_inputs(
    config: Mapping[str, Any], model: str, task: str | None
) -> dict[str, list[str]]:
    return {"alignment": [TLR_ALIGNMENT_CSV.format(model=model)]}


def draw_tlr_alignment(request: FigureRequest):
    """Figure 3 of the seed: per layer, the mean cosine of English and target [CLS]
    states, one curve per variant (MAD-X and ALL-MULTI by default)."""
    from matplotlib.figure import Figure

    frame = pd.read_csv(request.first("alignment"))
    figure = Figure(layout="constrained", figsize=(4.8, 3.2))
    ax = figure.subplots()
    for method, group in frame.groupby("method", sort=False):
        group = group.sort_values("layer")
        ax.plot(group["layer"], group["cosine"], marker="o", label=method)
    first = frame.iloc[0]
    ax.set_xticks(sorted(set(frame["layer"])))
    ax.set_xlabel("layer (0: embedding output)")
    ax.set_ylabel("cosine, English vs target [CLS]")
    ax.set_title(
        f"{first['task']} ({request.model}): {int(first['examples'])} examples, "
        f"targets {first['targets']}",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure


# ----------------------------------------------------------------------------- arm


def tlr_outputs(config: Mapping[str, Any]) -> list[str]:
    plan = tlr_plan(config)
    return [] if plan is None else plan.outputs(config)


def tlr_job_counts(config: Mapping[str, Any]) -> ArmJobs:
    """Jobs per rule of ``rules/tlr.smk`` on an empty directory, and the data folders,
    corpora and core language adapters the arm reads (its own datasets of
    ``tlr.datasets``, and targets outside ``languages:``, whose adapters its training
    jobs pull for ``tlr.models`` x ``tlr.seeds``, are jobs the core does not plan; shared
    ones count once)."""
    plan = tlr_plan(config)
    if plan is None:
        return ArmJobs({})
    per = {task: len(plan.models_of(task)) * len(plan.seeds) for task in plan.tasks}
    counts = {f"tlr_score_{task}": per[task] for task in plan.tasks}
    counts.update(
        {f"tlr_train_{task}": per[task] for task in plan.tasks if plan.adapter_patterns(task)}
    )
    data: set[str] = set()
    for task, targets in plan.tasks.items():
        data.add(task_data(config, task, plan.source, "train_dataset"))
        data.update(task_data(config, task, t, "eval_dataset") for t in targets)
    corpora: set[tuple[str, str]] = set()
    adapters: set[tuple[str, str, int]] = set()
    if la_family(config) == "core":
        # the core's adapters the arm stacks, for the arm's models and seeds only: a
        # target outside `languages:` is trained on demand for these, not for every model
        for m in plan.models:
            langs = plan.languages_of(m)
            adapters.update((m, lang, s) for lang in langs for s in plan.seeds)
            corpora.update((m, lang) for lang in langs)
            data.update(DATA_DIR.format(dataset="wikipedia", lang=lang) for lang in langs)
    aligned = _alignment_models(config)
    if aligned:
        counts["tlr_alignment"] = len(aligned)
        data.update(alignment_spec(config, aligned[0])["data"].values())
    if la_family(config) == "paper":
        counts["tlr_paper_init"] = len(plan.models)
        counts["tlr_paper_language_adapter"] = len(plan.seeds) * sum(
            len(plan.languages_of(m)) for m in plan.models
        )
        for m in plan.models:
            data.update(
                DATA_DIR.format(dataset="wikipedia", lang=lang) for lang in plan.languages_of(m)
            )
            corpora.update((m, lang) for lang in plan.languages_of(m))
    pairs = badx_pairs(config)
    if pairs:
        counts["tlr_badx_init"] = sum(1 for m in plan.models if plan.badx_pairs(m))
        counts["tlr_badx_corpus"] = len(pairs)
        counts["tlr_badx_language_adapter"] = len(plan.seeds) * sum(
            len(plan.badx_pairs(m)) for m in plan.models
        )
        data.update(
            DATA_DIR.format(dataset="wikipedia", lang=lang) for pair in pairs for lang in pair
        )
    return ArmJobs(counts, frozenset(data), frozenset(corpora), frozenset(adapters))


TABLES["tlr"] = TableSpec(
    build_tlr_table, tlr_inputs, tlr_wanted, "tlr.rst", "TLR task adapters", options=tlr_options
)
FIGURES["tlr_averages"] = FigureSpec(
    draw_tlr_averages,
    _figure_inputs,
    "tlr_averages.rst",
    "TLR task adapters",
    wanted=lambda config: tlr_plan(config) is not None,
    models=_figure_models,
)
FIGURES["tlr_alignment"] = FigureSpec(
    draw_tlr_alignment,
    _alignment_inputs,
    "tlr_alignment.rst",
    "TLR task adapters",
    wanted=lambda config: bool(_alignment_models(config)),
    models=_alignment_models,
)
ARM_OUTPUTS["tlr"] = tlr_outputs
ARM_JOB_COUNTS["tlr"] = tlr_job_counts
ARM_SCORES["tlr"] = _score_files  # paper_comparison: TLR's runs beside Tables 2, 4, 6
ARM_COSTS["tlr"] = tlr_cost
