"""Test scores over seeds: mean and standard deviation per method and target.

Every score CSV holds one seed. :func:`seed_summary` stacks the test rows of many of
them and aggregates over seeds, per (scenario, model, task, target, method, adapters,
top_k, metric): ``mean``, ``std`` (sample standard deviation, ``ddof=1``; empty for a
single seed), ``seeds`` (how many) and ``lambda_mean`` (the mean chosen λ; empty for
single adapters). It reads the files exactly as written (method names unchanged), for a
quick look at raw results; the tables' own reader is :mod:`langarith.report.scores`.
"""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike

import pandas as pd

from langarith import LangarithError
from langarith.evaluate.scores import SCORE_COLUMNS, read_scores

__all__ = ["GROUP_COLUMNS", "read_score_frame", "seed_summary"]

#: What identifies one aggregated number.
GROUP_COLUMNS = ("scenario", "model", "task", "target", "method", "adapters", "top_k", "metric")


def read_score_frame(paths: Iterable[str | PathLike[str]]) -> pd.DataFrame:
    """All rows of the given score CSVs as one DataFrame (columns ``SCORE_COLUMNS``)."""
    records = [row.as_record() for path in paths for row in read_scores(path)]
    frame = pd.DataFrame.from_records(records, columns=list(SCORE_COLUMNS))
    for column in ("lambda", "top_k", "score"):
        frame[column] = pd.to_numeric(frame[column].replace("", None))
    frame["seed"] = frame["seed"].astype(int)
    return frame


def seed_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of the test scores in ``frame``."""
    missing = set(SCORE_COLUMNS) - set(frame.columns)
    if missing:
        raise LangarithError(f"Score frame lacks the column(s) {sorted(missing)}")
    test = frame[frame["split"] == "test"].copy()
    test["top_k"] = test["top_k"].fillna(-1)  # groupby drops NaN keys
    grouped = test.groupby(list(GROUP_COLUMNS), sort=True, dropna=False)
    summary = grouped.agg(
        mean=("score", "mean"),
        std=("score", "std"),
        seeds=("seed", "nunique"),
        lambda_mean=("lambda", "mean"),
    ).reset_index()
    summary["top_k"] = summary["top_k"].where(summary["top_k"] >= 0)
    return pd.DataFrame(summary)
