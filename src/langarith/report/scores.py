"""Reading the evaluation's score CSVs into one tidy, checked table.

Every score file (``results/scores/<scenario>/<model>/<task>/<target>/seed<s>.csv``)
holds one row per evaluated point::

    scenario, model, task, target, seed, method, adapters, lambda, top_k, split, metric, score

Validation rows hold the whole λ curve of a merge method; test rows hold the chosen λ
and the baselines. This module is tolerant about spelling (``LA(T, en)`` and
``la(t,en)`` are one method, ``valid``/``dev`` are the validation split, ``seed`` may be
``"seed42"``) but explicit about content, checked once when a file is read: a file
that is damaged (not UTF-8, cut short mid-row, a row of the wrong length), lacks a
required column, holds a score that is not a number or lies outside 0-100, or a row
whose seed disagrees with the file name raises :class:`~langarith.LangarithError`
naming the file and the line. Scores are 0-100 throughout; nothing is rescaled. A
point scored twice with different scores is refused; identical repeats are collapsed
(a file listed twice is harmless). Rows without a score (empty or NaN) are dropped
with a warning, and the tables count the languages that were averaged.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from langarith import LangarithError
from langarith.evaluate.score_files import SCORE_COLUMNS, read_score_records, score_problem
from langarith.evaluate.search import best_lambda

__all__ = [
    "KEY_COLUMNS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "adapter_languages",
    "canonical_method",
    "chosen_points",
    "find_score_files",
    "parse_budget",
    "primary_metric",
    "read_scores",
    "select_metric",
]

log = logging.getLogger(__name__)

#: Columns that may be absent, with the value used when they are (score CSVs written
#: by hand or by other tools; the workflow always writes them).
OPTIONAL_COLUMNS = {"adapters": "", "top_k": math.nan, "metric": "score"}
#: Every other column of the workflow's score CSVs is required.
REQUIRED_COLUMNS = tuple(c for c in SCORE_COLUMNS if c not in OPTIONAL_COLUMNS)

#: The columns that identify one table row (one method variant of one task and model).
KEY_COLUMNS = ("scenario", "model", "task", "metric", "method", "top_k", "budget")

#: Spellings of the papers' method names, keyed by the lowercase name without spaces
#: or underscores. Values are the names the tables print (as in the papers).
_METHOD_ALIASES = {
    "pea": "pEA",
    "pra": "pRA",
    "la": "LA",
    "la(en,rel)": "LA",
    "la0s(en,rel)": "LA",
    "t": "T",
    "madx": "T",
    "mad-x": "T",
    "la(t,en)": "LA(T,en)",
    "la(en,t)": "LA(T,en)",
    "la(t,rel)": "LA(T,REL)",
    "la(rel,t)": "LA(T,REL)",
    "la(t,l2)": "LA(T,l2)",
    "mix": "MIX",
    "la(t,mix)": "MIX",
    "ties": "TIES",
    "ties-merging": "TIES",
    "tiesmerging": "TIES",
}
_SPLIT_ALIASES = {
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
}
_BUDGET = re.compile(r"budget[-_=]?(\d+(?:\.\d+)?)\s*([kmb])?", re.IGNORECASE)
_TIES_TOPK = re.compile(r"^ties(?:-?merging)?[-_ ]?(?:top-?k)?[-_ ]?(\d+(?:\.\d+)?)%?$", re.I)
_ADAPTER_SPLIT = re.compile(r"[+,;|\s\[\]'\"()]+")
_MULTIPLIER = {"k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
#: Preferred metric per task when a score file holds several (QA: F1 before exact match).
_METRIC_PREFERENCE = ("f1", "accuracy", "acc", "exact_match", "em")


def canonical_method(name: object) -> str:
    """The papers' spelling of a method name (``"la(t, en)"`` → ``"LA(T,en)"``).

    A budget suffix (``"T@budget1000"``) is dropped: the budget is its own column.
    The evaluation writes ``pEA, pRA, LA, T, LA(T,en), LA(T,REL), MIX, LA(T,l2), TIES``.
    Names the papers do not use are returned stripped but otherwise unchanged.
    """
    text = _BUDGET.sub("", str(name)).strip().rstrip("@/").strip()
    key = re.sub(r"[\s_]", "", text).lower()
    if key in _METHOD_ALIASES:
        return _METHOD_ALIASES[key]
    if _TIES_TOPK.match(text):
        return "TIES"
    return text


def parse_budget(*texts: object) -> float:
    """The token budget named in any of ``texts`` (``"pt@budget1000"`` → 1000), else NaN.

    ``budget10k`` / ``budget1M`` style suffixes are understood.
    """
    for text in texts:
        if text is None or (isinstance(text, float) and math.isnan(text)):
            continue
        match = _BUDGET.search(str(text))
        if match:
            value = float(match.group(1)) * _MULTIPLIER.get((match.group(2) or "").lower(), 1)
            return float(value)
    return math.nan


def adapter_languages(adapters: object) -> list[str]:
    """Language codes of an ``adapters`` cell, in order (``"en+it"`` → ``["en", "it"]``).

    Separators ``+ , ; |``, spaces, brackets and quotes are accepted; a suffix after
    ``/`` or ``@`` (``"pt/budget10000"``, ``"pt@budget1000"``) is dropped.
    """
    if adapters is None or (isinstance(adapters, float) and math.isnan(adapters)):
        return []
    langs = []
    for token in _ADAPTER_SPLIT.split(str(adapters)):
        lang = re.split(r"[@/=]", token)[0].strip().lower()
        if re.fullmatch(r"[a-z]{2,3}", lang):
            langs.append(lang)
    return langs


def _seed(value: object, path: Path, line: int) -> int:
    match = re.search(r"\d+", str(value))
    if not match:
        raise LangarithError(f"score file {path} line {line}: seed {value!r} is not a number")
    return int(match.group())


#: Cells read as "no score" (the spellings pandas reads as missing).
_MISSING = frozenset({"", "nan", "NaN", "NA", "N/A", "n/a", "null", "NULL", "None", "<NA>"})
#: ``.../scores/<scenario>/<model>/<task>/<target>/seed<s>.csv``: what the path says.
_SEED_FILE = re.compile(r"seed(\d+)\.csv")
_PATH_COLUMNS = ("scenario", "model", "task", "target")


def _read_one(path: Path) -> pd.DataFrame:
    """One score file, checked once here: whole, numeric, 0-100, and as its path says.

    :func:`~langarith.evaluate.score_files.read_score_records` refuses a damaged file
    (not UTF-8, cut short, a row of the wrong length); here a score that is not a
    number or lies outside 0-100, and a row whose seed (or scenario, model, task,
    target) disagrees with the file's path, are refused naming the file and line.
    """
    header, records = read_score_records(path)
    frame = pd.DataFrame([values for _, values in records], columns=header, dtype=object)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    frame["line"] = [line for line, _ in records]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise LangarithError(
            f"score file {path} lacks the column(s) {missing}; it has {list(header)}. "
            f"Score files need {list(REQUIRED_COLUMNS)} (optional: {list(OPTIONAL_COLUMNS)})"
        )
    for column, default in OPTIONAL_COLUMNS.items():
        if column not in frame.columns:
            frame[column] = default
    text = frame["score"].astype(str).str.strip()
    scores = pd.to_numeric(text.where(~text.isin(_MISSING)), errors="coerce")
    bad = frame[scores.isna() & ~text.isin(_MISSING)]
    if len(bad):
        raise LangarithError(
            f"score file {path} line {bad['line'].iloc[0]}: score {bad['score'].iloc[0]!r} "
            "is not a number; scores must be numeric"
        )
    for line, value in zip(frame["line"], scores, strict=True):
        problem = score_problem(float(value))
        if problem:
            raise LangarithError(f"score file {path} line {line}: {problem}")
    frame["score"] = scores.astype(float)
    frame["seed"] = [_seed(v, path, n) for v, n in zip(frame["seed"], frame["line"], strict=True)]
    _check_against_path(frame, path)
    for column in ("lambda", "top_k"):
        cells = frame[column].astype(str).str.strip()
        frame[column] = pd.to_numeric(cells.where(~cells.isin(_MISSING)), errors="coerce")
    for column in ("adapters", "method", "target"):
        frame[column] = frame[column].where(~frame[column].isin(_MISSING - {"NA"}), math.nan)
    frame["source"] = str(path)
    return frame


def _check_against_path(frame: pd.DataFrame, path: Path) -> None:
    """Rows must be what their file's name says: ``seed<s>.csv`` and, under ``scores/``,
    the scenario, model, task and target folders (a copied or renamed file would
    otherwise count its rows twice, under the wrong seed)."""
    name = _SEED_FILE.fullmatch(path.name)
    if name:
        wrong = frame[frame["seed"] != int(name.group(1))]
        if len(wrong):
            raise LangarithError(
                f"score file {path} line {wrong['line'].iloc[0]}: seed {wrong['seed'].iloc[0]} "
                f"disagrees with the file name {path.name}; the file was copied or renamed, "
                "rerun the evaluation that writes it"
            )
    parts = path.parts
    if len(parts) < 6 or parts[-6] != "scores":
        return
    for column, folder in zip(_PATH_COLUMNS, parts[-5:-1], strict=True):
        cells = frame[column].astype(str).str.strip()
        wrong = frame[cells.str.lower() != folder.lower()]
        if len(wrong):
            raise LangarithError(
                f"score file {path} line {wrong['line'].iloc[0]}: {column} "
                f"{wrong[column].iloc[0]!r} disagrees with the folder {folder!r} of its path; "
                "rerun the evaluation that writes it"
            )


def read_scores(paths: Iterable[str | PathLike[str]]) -> pd.DataFrame:
    """Read and normalise score files into one table.

    Adds the columns ``method_name`` (as written), ``budget`` (token budget of the
    adapters, NaN when none) and ``source`` (file). ``method`` becomes the papers'
    spelling (:func:`canonical_method`), ``split`` ``validation`` or ``test``, and
    ``top_k`` is kept for TIES only. Rows without a score are dropped with a warning;
    rows of other splits are dropped with a warning.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise LangarithError("no score files given; run the evaluation first")
    frame = pd.concat([_read_one(p) for p in paths], ignore_index=True)
    for column in ("scenario", "model", "task", "target", "metric", "split"):
        frame[column] = frame[column].astype(str).str.strip()
    frame["metric"] = frame["metric"].str.lower()
    frame["target"] = frame["target"].str.lower()
    split = frame["split"].str.lower().map(_SPLIT_ALIASES)
    unknown = sorted(set(frame.loc[split.isna(), "split"]))
    if unknown:
        log.warning("ignoring rows of unknown split(s) %s (known: validation, test)", unknown)
    frame["split"] = split
    frame = frame[split.notna()]
    missing_score = frame["score"].isna()
    if missing_score.any():
        log.warning("ignoring %d row(s) without a score", int(missing_score.sum()))
        frame = frame[~missing_score]
    frame = frame.copy()
    frame["method_name"] = frame["method"].astype(str).str.strip()
    frame["budget"] = [
        parse_budget(a, m) for a, m in zip(frame["adapters"], frame["method_name"], strict=True)
    ]
    frame["method"] = [canonical_method(m) for m in frame["method_name"]]
    topk_in_name = [
        float(m.group(1)) if (m := _TIES_TOPK.match(name)) else math.nan
        for name in frame["method_name"]
    ]
    frame["top_k"] = frame["top_k"].fillna(pd.Series(topk_in_name, index=frame.index))
    frame.loc[frame["method"] != "TIES", "top_k"] = math.nan
    frame["adapters"] = frame["adapters"].fillna("").astype(str)
    return _without_duplicates(frame).reset_index(drop=True)


#: What makes two score rows the same evaluated point.
_POINT_COLUMNS = (
    "scenario",
    "model",
    "task",
    "target",
    "seed",
    "method",
    "adapters",
    "lambda",
    "top_k",
    "budget",
    "split",
    "metric",
)


def _without_duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluated point: identical repeats collapse, conflicting ones are refused.

    A point scored twice with the same score (a file listed twice, a job's rows
    written twice) is kept once; with different scores no row can be trusted over the
    other, so the error names both places.
    """
    keys = list(_POINT_COLUMNS)
    repeated = frame[frame.duplicated(subset=keys, keep=False)]
    if repeated.empty:
        return frame
    for _, group in repeated.groupby(keys, sort=False, dropna=False):
        if group["score"].nunique() > 1:
            first, second = group.iloc[0], group.iloc[1]
            raise LangarithError(
                f"score file {first['source']} line {first['line']} and "
                f"{second['source']} line {second['line']} score the same point "
                f"({first['method_name']}, target {first['target']}, seed {first['seed']}, "
                f"λ {first['lambda']}, {first['split']}) differently "
                f"({first['score']:g} vs {second['score']:g}); remove the wrong one"
            )
    log.info("collapsing %d repeated identical score row(s)", int(frame.duplicated(keys).sum()))
    return frame.drop_duplicates(subset=keys, keep="first")


def find_score_files(
    results: str | PathLike[str], scenarios: Sequence[str] | None = None
) -> list[Path]:
    """Score CSVs under ``<results>/scores/<scenario>/...``, sorted (all scenarios if None)."""
    root = Path(results) / "scores"
    names = scenarios if scenarios is not None else ["*"]
    found: list[Path] = []
    for scenario in names:
        found.extend(root.glob(f"{scenario}/*/*/*/*.csv"))
    return sorted(set(found))


def primary_metric(metrics: Iterable[str]) -> str:
    """The metric a table reports when a task has several: F1, then accuracy, then EM.

    Exact names win over names that merely contain them (``f1`` before ``span_f1``);
    anything else falls back to the alphabetically first name.
    """
    names = sorted(set(metrics))
    if not names:
        raise LangarithError("no metric to choose from")
    for wanted in _METRIC_PREFERENCE:
        if wanted in names:
            return wanted
    for wanted in _METRIC_PREFERENCE:
        for name in names:
            if wanted in name:
                return name
    return names[0]


def select_metric(scores: pd.DataFrame) -> pd.DataFrame:
    """Keep one metric per (model, task): :func:`primary_metric` of the ones present."""
    if scores.empty:
        return scores
    keep = []
    for _, group in scores.groupby(["model", "task"], sort=False):
        keep.append(group[group["metric"] == primary_metric(group["metric"])])
    return pd.concat(keep, ignore_index=True)


def _group_keys(frame: pd.DataFrame) -> list[str]:
    return [c for c in (*KEY_COLUMNS, "target", "seed") if c in frame.columns]


def chosen_points(scores: pd.DataFrame) -> pd.DataFrame:
    """One test score per (row key, target, seed), with the λ it was evaluated at.

    Test rows are the chosen λ and the baselines; when a file holds several test rows
    for one method (a whole test curve), the one at the validation curve's best λ is
    taken (ties: the larger λ, the evaluation's own rule,
    :func:`langarith.evaluate.search.best_lambda`), so that test data never chooses λ.
    Columns: the key columns, ``target``, ``seed``, ``score``, ``lambda``.
    """
    test = scores[scores["split"] == "test"]
    validation = scores[scores["split"] == "validation"]
    keys = _group_keys(scores)
    rows = []
    for key, group in test.groupby(keys, sort=False, dropna=False):
        if len(group) == 1 or group["lambda"].nunique(dropna=True) <= 1:
            pick = group.iloc[0]
        else:
            curve = _validation_curve(validation, dict(zip(keys, key, strict=True)))
            if not curve:
                raise LangarithError(
                    f"{len(group)} test rows for {dict(zip(keys, key, strict=True))} and no "
                    "validation curve to choose λ from; test rows must be the chosen λ only"
                )
            best = best_lambda(curve)
            pick = group.iloc[int(np.argmin(np.abs(group["lambda"].to_numpy() - best)))]
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "score": float(pick["score"]),
                "lambda": float(pick["lambda"]),
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "score", "lambda"])


def _validation_curve(validation: pd.DataFrame, key: dict) -> dict[float, float]:
    """The validation curve (λ → score) of one row key, empty when there is none."""
    mask = np.ones(len(validation), dtype=bool)
    for column, value in key.items():
        column_values = validation[column]
        if isinstance(value, float) and math.isnan(value):
            mask &= column_values.isna().to_numpy()
        else:
            mask &= (column_values == value).to_numpy()
    curve = validation[mask].dropna(subset=["lambda"])
    return dict(zip(curve["lambda"].astype(float), curve["score"].astype(float), strict=True))
