"""The ``label_free`` table: λ chosen without target labels against the labelled choice.

For each evaluation job a label-free CSV (:mod:`langarith.evaluate.label_free`) holds
every selector's λ and the test score there; the job's score CSV holds the test score
at the λ the papers' protocol chose on *labelled* target validation data. The regret
of a selector is ``labelled − selector`` on the test split (points of the task's main
metric): 0 when it found the same λ, negative when it happened to do better.

Rows are per (scenario, model, task, target, curve, selector), averaged over seeds; the
summary is each selector's mean regret over all of them, with the share of jobs in
which it did at least as well as the labelled λ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from os import PathLike

import pandas as pd

from langarith import LangarithError
from langarith.evaluate.label_free import read_label_free
from langarith.report.scores import primary_metric, read_scores

__all__ = ["JOB_KEYS", "label_free_table", "read_choices"]

#: What identifies one curve of one evaluation job.
JOB_KEYS = ("scenario", "model", "task", "target", "seed", "method")


def read_choices(paths: Iterable[str | PathLike[str]]) -> pd.DataFrame:
    """The ``choice`` rows of label-free CSVs (selector, λ, metric, test score)."""
    rows = [row.__dict__ for path in paths for row in read_label_free(path)]
    frame = pd.DataFrame(rows, columns=[*JOB_KEYS, "selector", "lam", "kind", "metric", "value"])
    return frame[frame["kind"] == "choice"].drop(columns="kind")


def _main_metric(frame: pd.DataFrame) -> pd.DataFrame:
    keep = [
        group[group["metric"] == primary_metric(group["metric"])]
        for _, group in frame.groupby(["model", "task"], sort=False)
    ]
    return pd.concat(keep, ignore_index=True) if keep else frame


def label_free_table(
    score_paths: Sequence[str | PathLike[str]], label_free_paths: Sequence[str | PathLike[str]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per job and selector, per selector) frames of the label-free choices' regret.

    The first has one row per (scenario, model, task, target, method, selector) with
    the mean over seeds of ``lam`` (the selector's λ), ``labelled_lam``, ``score``,
    ``labelled`` and ``regret``, and ``seeds``; the second one row per (scenario,
    selector): ``mean_regret`` over those rows' jobs, ``at_least_labelled`` (share of
    jobs with regret ≤ 0) and ``jobs``.
    """
    choices = _main_metric(read_choices(label_free_paths))
    if choices.empty:
        raise LangarithError("the label_free table has no label-free choices to show")
    scores = read_scores(score_paths)
    labelled = scores[(scores["split"] == "test") & scores["lambda"].notna()]
    labelled = labelled[[*JOB_KEYS, "metric", "lambda", "score"]].rename(
        columns={"lambda": "labelled_lam", "score": "labelled"}
    )
    merged = choices.merge(labelled, on=[*JOB_KEYS, "metric"], how="left")
    missing = merged[merged["labelled"].isna()]
    if len(missing):
        first = missing.iloc[0]
        raise LangarithError(
            f"label_free table: no labelled test row of {first['method']} for "
            f"{first['scenario']}/{first['model']}/{first['task']}/{first['target']}/seed"
            f"{first['seed']} in the score files; rerun that evaluation"
        )
    merged = merged.rename(columns={"value": "score"})
    merged["regret"] = merged["labelled"] - merged["score"]
    keys = [k for k in JOB_KEYS if k != "seed"] + ["selector", "metric"]
    long = (
        merged.groupby(keys, sort=True)
        .agg(
            lam=("lam", "mean"),
            labelled_lam=("labelled_lam", "mean"),
            score=("score", "mean"),
            labelled=("labelled", "mean"),
            regret=("regret", "mean"),
            seeds=("seed", "nunique"),
        )
        .reset_index()
    )
    summary = (
        merged.assign(at_least=merged["regret"] <= 0)
        .groupby(["scenario", "selector"], sort=True)
        .agg(
            mean_regret=("regret", "mean"),
            at_least_labelled=("at_least", "mean"),
            jobs=("regret", "size"),
        )
        .reset_index()
    )
    return long, summary
