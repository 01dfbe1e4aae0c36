"""The arms' published numbers against the run: full-model task arithmetic, TLR, X-MOD.

``paper_comparison`` lists every published number; the core's scenarios are matched
through their scenario tables, the arms' (``ta-<variant>``, ``tlr-<variant>``,
``xmod``, ``xmod-shared``: scenarios without a core table layout) here, straight from
their score files' test rows. A published row matches the run's cells of the same
scenario, backbone, method and task, where the task is the run's task name or the
dataset it is evaluated on (``task_datasets``: an arm's ``<task>`` is a config key,
e.g. ``qa_tydiqa``, while the papers name datasets, e.g. ``tydiqa``).

Averages compare like with like: the run's average is taken over the published
average's languages only (the arms' files state them; X-MOD's per-language rows give
them). When the run lacks some of them the row is not comparable and says
``(k of n languages)``, as the core's tables do. A row no run can match (SFT, BAD-X's
language adapters, SHARED pre-training) stays listed as published only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from langarith.report.scores import chosen_points, select_metric
from langarith.report.stats import mean_std

__all__ = ["ARM_METRICS", "arm_points", "average_languages", "fill_arm_row", "per_language_rows"]

#: Published metrics the comparison covers (LAS: TLR's dependency parsing).
ARM_METRICS = ("f1", "accuracy", "las")
_POINT_COLUMNS = ["scenario", "model", "task", "dataset", "method", "target", "seed", "score"]


def arm_points(
    scores: pd.DataFrame | None,
    scenarios: set[str],
    task_datasets: Mapping[str, Mapping[str, str]] | None = None,
) -> pd.DataFrame:
    """One test score per (scenario, model, task, method, target, seed) of ``scenarios``.

    ``method`` is the name as the score file writes it (TLR's ``MAD-X`` stays MAD-X);
    ``dataset`` is ``task_datasets[scenario][task]`` (else ``task_datasets[""][task]``,
    else the task itself). A λ variant's test rows are its chosen λ only
    (:func:`~langarith.report.scores.chosen_points`).
    """
    if scores is None or scores.empty:
        return pd.DataFrame(columns=_POINT_COLUMNS)
    scoped = scores[scores["scenario"].isin(scenarios)]
    if scoped.empty:
        return pd.DataFrame(columns=_POINT_COLUMNS)
    scoped = scoped.assign(method=scoped["method_name"])
    points = chosen_points(select_metric(scoped))
    mapping = dict(task_datasets or {})
    points["dataset"] = [
        (mapping.get(scenario) or {}).get(task) or (mapping.get("") or {}).get(task) or task
        for scenario, task in zip(points["scenario"], points["task"], strict=True)
    ]
    return points


def average_languages(papers: pd.DataFrame, pub: Any) -> list[str]:
    """The languages a published AVG averages: its ``languages`` cell, else the
    per-language rows of the same paper, table, model, task and method."""
    listed = str(getattr(pub, "languages", "") or "").split()
    if listed:
        return listed
    return sorted(set(per_language_rows(papers, pub)["language"]))


def per_language_rows(papers: pd.DataFrame, pub: Any) -> pd.DataFrame:
    """The per-language published rows behind the AVG ``pub``: same paper, table, model,
    task and method (shared by the core's and the arms' comparison)."""
    return papers[
        (papers["paper"] == pub.paper)
        & (papers["table"] == pub.table)
        & (papers["model"] == pub.model)
        & (papers["task"] == pub.task)
        & (papers["method"] == pub.method)
        & (papers["language"] != "AVG")
    ]


def fill_arm_row(row: dict[str, Any], points: pd.DataFrame, papers: pd.DataFrame, pub: Any) -> None:
    """Fill ``row``'s run columns from the arm's points; ``note`` says why not when the
    run has no cell, ``comparable`` stays False for an average over fewer languages."""
    match = points[
        (points["scenario"] == pub.scenario)
        & (points["model"] == row["run_model"])
        & ((points["task"] == pub.task) | (points["dataset"] == pub.task))
        & (points["method"] == pub.method)
    ]
    if match.empty:
        row["note"] = "not in the run"
        return
    metric = str(match["metric"].iloc[0])
    if pub.language != "AVG":
        cell = match[match["target"] == pub.language]
        if cell.empty:
            row["note"] = "not in the run"
            return
        per_seed = cell.groupby("seed")["score"].mean()
        _set_run(row, per_seed, 1, pub)
        row["comparable"] = True
    else:
        wanted = average_languages(papers, pub)
        if not wanted:
            row["note"] = "the paper does not list the languages of this average"
            return
        cells = match[match["target"].isin(wanted)]
        grid = cells.pivot_table(index="target", columns="seed", values="score", aggfunc="mean")
        complete = grid.dropna(axis=0, how="any")
        if complete.empty:
            row["note"] = f"not in the run (none of the average's {len(wanted)} languages)"
            return
        _set_run(row, complete.mean(axis=0), len(complete), pub)
        missing = sorted(set(wanted) - set(complete.index))
        row["comparable"] = not missing
        if missing:
            row["note"] = (
                f"AVG ({len(complete)} of {len(wanted)} languages): the run lacks "
                + " ".join(missing)
            )
    if metric != pub.metric:
        notes = [row["note"]] if row["note"] else []
        row["note"] = "; ".join([*notes, f"run metric {metric} vs paper {pub.metric}"])


def _set_run(row: dict[str, Any], per_seed: pd.Series, n_languages: int, pub: Any) -> None:
    mean, std = mean_std(list(per_seed))
    row.update(
        run_mean=mean,
        run_std=std,
        run_seeds=len(per_seed),
        run_languages=n_languages,
        difference=mean - float(pub.score) if not math.isnan(mean) else math.nan,
    )
