"""The papers' tables from the score CSVs: per language, averaged, with seeds and CIs.

Every table is built from test rows (the λ chosen on validation, and the baselines) and
written three ways under ``results/tables/``: a tidy CSV (one row per cell, numbers
unformatted, for programs), Markdown (for people and the README) and, for the
paper-style tables, LaTeX (``booktabs``).

How seeds are aggregated
------------------------
* A cell (method, target) is the mean ± sample standard deviation (``ddof=1``) of its
  test scores over seeds.
* ``AVG`` is computed per seed first (the mean over the targets that have a score for
  every seed of that method, so that no seed averages over a different set of
  languages) and then the mean ± standard deviation of those per-seed averages.
* λ* is the λ chosen on validation, mean ± standard deviation over seeds.
* Each method's gain over its baseline gets a crossed bootstrap 95% interval over
  languages and seeds (:mod:`langarith.report.stats`); a gain whose interval excludes
  0 is marked as real.

Every table is one builder function (``build_*``, a :class:`TableRequest` in, a
:class:`BuiltTable` out) and one entry of :data:`TABLES`, which also says what the
workflow's rule reads and when a config wants the table; the report rules are
generated from that registry (``rules/report.smk``).

Baselines (``ScenarioLayout.comparisons``): zero-shot LA against each proxy and
against the *better proxy* of each (target, seed), a stronger baseline than either
proxy alone; the enhancement and low-resource methods against the target's own
adapter T; TIES against LA.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from langarith import LangarithError
from langarith.arm_registry import arm_paper_tasks, arm_scores
from langarith.evaluate.label_free import label_free_jobs, label_free_outputs
from langarith.evaluate.scenarios import scenario_search
from langarith.evaluate.score_files import parse_weights
from langarith.evaluate.search import best_lambda
from langarith.io import read_json
from langarith.paths import RELATED_TSV, TABLE, in_setup
from langarith.plan import related_pool as related_pool_of
from langarith.registry import lookup
from langarith.related import paper_related_languages, read_related_frame
from langarith.report import paper as paper_numbers
from langarith.report.inputs import (
    BUDGET_SCENARIOS,
    Config,
    budget_adapter_dirs,
    budget_settings,
    budget_targets,
    configured_scenarios,
    score_paths,
)
from langarith.report.label_free import label_free_table
from langarith.report.paper import paper_backbones
from langarith.report.paper_arms import ARM_METRICS, arm_points, fill_arm_row, per_language_rows
from langarith.report.render import (
    format_fixed,
    format_mean_std,
    latex_table,
    markdown_table,
    named_paths,
    path_list,
    write_csv,
    write_text,
)
from langarith.report.scores import (
    adapter_languages,
    chosen_points,
    read_scores,
    select_metric,
)
from langarith.report.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci, mean_std

__all__ = [
    "BETTER_PROXY",
    "LAYOUTS",
    "MIX_ARMS",
    "MIX_ORACLE",
    "MIX_VALIDATION",
    "SCENARIO_TABLES",
    "ScenarioLayout",
    "TABLES",
    "BuiltTable",
    "TableRequest",
    "TableSpec",
    "aggregate",
    "gains_table",
    "method_label",
    "nway_weights_table",
    "with_mix_variants",
    "paper_comparison_table",
    "lambda_subgrid_table",
    "read_tokens_seen",
    "relative_differences",
    "scenario_points",
    "scenario_table",
    "score_decimals",
    "table_inputs",
    "table_outputs",
    "table_spec",
    "token_budget_points",
    "token_budget_table",
    "write_table",
]

log = logging.getLogger(__name__)

#: The virtual baseline "better of pEA and pRA", taken per (target, seed).
BETTER_PROXY = "better proxy"

#: The two merges MIX chooses between (ECAI Table 2).
MIX_ARMS = ("LA(T,en)", "LA(T,REL)")
#: MIX as the ECAI paper reports it: per language, the better of :data:`MIX_ARMS` by the
#: seed-averaged *test* score (its Table 2 equals that in all 70 cells). Test data
#: chooses, so it is an oracle ceiling, not a method one could run.
MIX_ORACLE = "MIX"
#: MIX as the evaluation runs it: per language and seed, the better arm by validation
#: score (the honest protocol; the score files call it ``MIX``).
MIX_VALIDATION = "MIX-val"
#: The N-way methods ``LA-k`` (English and k related languages), k as the schema allows.
NWAY_METHODS = tuple(f"LA-{k}" for k in range(1, 9))


@dataclasses.dataclass(frozen=True)
class ScenarioLayout:
    """How a scenario's table is laid out: method order, baselines, λ columns."""

    title: str
    methods: tuple[str, ...]
    comparisons: tuple[tuple[str, str], ...] = ()
    lambda_methods: tuple[str, ...] = ()


LAYOUTS: dict[str, ScenarioLayout] = {
    "zero_shot": ScenarioLayout(
        "Zero-shot: the target language has no adapter of its own",
        ("pEA", "pRA", "LA"),
        (("LA", "pEA"), ("LA", "pRA"), ("LA", BETTER_PROXY)),
        ("LA",),
    ),
    "enhancement": ScenarioLayout(
        "Enhancement of the target language's own adapter T",
        ("T", "LA(T,en)", "LA(T,REL)", MIX_VALIDATION, MIX_ORACLE),
        (("LA(T,en)", "T"), ("LA(T,REL)", "T"), (MIX_VALIDATION, "T"), (MIX_ORACLE, "T")),
        ("LA(T,en)", "LA(T,REL)"),
    ),
    "low_resource": ScenarioLayout(
        "Low-resource: adapters of languages with little text",
        ("T", "LA(T,en)", "LA(T,REL)", MIX_VALIDATION, MIX_ORACLE),
        (("LA(T,en)", "T"), ("LA(T,REL)", "T"), (MIX_VALIDATION, "T"), (MIX_ORACLE, "T")),
        ("LA(T,en)", "LA(T,REL)"),
    ),
    "romance": ScenarioLayout(
        "Romance languages: LA(l1, l2) evaluated on l1, for every l2 of the pool",
        ("T", "LA(T,l2)"),
        (),
        ("LA(T,l2)",),
    ),
    "ties": ScenarioLayout(
        "TIES-merging against language arithmetic (zero-shot)",
        ("LA", "TIES"),
        (("TIES", "LA"),),
        ("LA", "TIES"),
    ),
    "zero_shot_nway": ScenarioLayout(
        "N-way language arithmetic with searched weights (zero-shot, beyond the papers)",
        ("pEA", "pRA", "LA", *NWAY_METHODS),
        tuple(pair for m in NWAY_METHODS for pair in ((m, "LA"), (m, BETTER_PROXY))),
        ("LA",),
    ),
    "zero_shot_tlr": ScenarioLayout(
        "Zero-shot with the TLR ALL-MULTI task adapter (issue 17) instead of the English one",
        ("pEA", "pRA", "LA"),
        (("LA", "pEA"), ("LA", "pRA"), ("LA", BETTER_PROXY)),
        ("LA",),
    ),
}
#: Tables with one row per (method, target) built from one scenario's scores.
SCENARIO_TABLES = tuple(LAYOUTS)

_CELL_KEYS = ["scenario", "model", "task", "metric", "method", "top_k", "budget", "partner"]
_GAIN_COLUMNS = [
    "scenario",
    "model",
    "task",
    "metric",
    "method",
    "top_k",
    "budget",
    "baseline",
    "n_targets",
    "of_targets",
    "n_seeds",
    "gain",
    "ci_low",
    "ci_high",
    "real",
    "complete",
]
_LONG_COLUMNS = [
    *_CELL_KEYS,
    "target",
    "n_targets",
    "of_targets",
    "n_seeds",
    "mean",
    "std",
    "lambda_mean",
    "lambda_std",
]


# --------------------------------------------------------------------------- helpers
def _isnan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def method_label(method: str, top_k: float = math.nan, budget: float = math.nan) -> str:
    """A method's name in a table: ``"TIES top-k 20%"``, ``"T @ 10k whitespace tokens"``."""
    label = str(method)
    if not _isnan(top_k):
        label += f" top-k {top_k:g}%"
    if not _isnan(budget):
        label += f" @ {_tokens(budget)} whitespace tokens"
    return label


def _tokens(value: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


#: Decimals of a score: metrics are 0-100 throughout (a value outside is refused when
#: the score file is read), so nothing is rescaled or guessed from magnitudes.
SCORE_DECIMALS = 2


def score_decimals(values: Iterable[float] = ()) -> int:
    """Decimals of scores in tables: always :data:`SCORE_DECIMALS` (scores are 0-100)."""
    return SCORE_DECIMALS


def coverage_note(n_targets: int, of_targets: int) -> str:
    """`` (2 of 3 languages)`` when an average left languages out, else empty."""
    if pd.isna(n_targets) or pd.isna(of_targets) or int(n_targets) >= int(of_targets):
        return ""
    return f" ({int(n_targets)} of {int(of_targets)} languages)"


def _order(values: Iterable[str], preferred: Sequence[str] = ()) -> list[str]:
    values = list(dict.fromkeys(values))
    first = [v for v in preferred if v in values]
    return first + sorted(v for v in values if v not in first)


def _method_rank(layout: ScenarioLayout, method: str) -> int:
    return layout.methods.index(method) if method in layout.methods else len(layout.methods)


# --------------------------------------------------------------------------- points
def scenario_points(scores: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """Test points (one per method variant, target, seed) of one scenario.

    TIES tables borrow LA from the zero-shot scores of the same model and task when the
    TIES scores carry no LA rows. Romance points get the ``partner`` column: l2 of
    LA(l1, l2), read from the ``adapters`` column (``"es+fr"``) or the method name.
    """
    if scenario not in LAYOUTS:
        raise LangarithError(f"Unknown scenario table {scenario!r}. Must be one of {list(LAYOUTS)}")
    scoped = scores[scores["scenario"] == scenario]
    if scenario == "ties":
        scoped = _with_borrowed_la(scores, scoped)
    if scoped.empty:
        raise LangarithError(
            f"no scores of scenario {scenario!r} (found scenarios "
            f"{sorted(set(scores['scenario']))}); run the {scenario} evaluation first"
        )
    if scenario == "romance":
        return _romance_points(scoped)
    points = chosen_points(select_metric(scoped))
    points["partner"] = ""
    if MIX_ORACLE in LAYOUTS[scenario].methods:
        points = with_mix_variants(points)
    return points


def with_mix_variants(points: pd.DataFrame) -> pd.DataFrame:
    """The score files' MIX renamed ``MIX-val``, and the paper's oracle ``MIX`` added.

    ``MIX-val`` is what the evaluation wrote (per seed, the better arm by validation).
    ``MIX`` is the ECAI paper's: per (model, task, target, budget), the arm of
    :data:`MIX_ARMS` with the higher mean test score over seeds, with that arm's
    per-seed points (ties: the first arm). It is a ceiling, since test data chooses.
    """
    points = points.copy()
    points.loc[points["method"] == MIX_ORACLE, "method"] = MIX_VALIDATION
    arms = points[points["method"].isin(MIX_ARMS)]
    cell = [c for c in points.columns if c not in ("method", "seed", "score", "lambda")]
    chosen = []
    for _, group in arms.groupby(cell, sort=False, dropna=False):
        means = group.groupby("method")["score"].mean()
        if len(means) < len(MIX_ARMS):
            continue
        best = max(MIX_ARMS, key=lambda arm: (means[arm], -MIX_ARMS.index(arm)))
        chosen.append(group[group["method"] == best].assign(method=MIX_ORACLE))
    if not chosen:
        return points
    return pd.concat([points, *chosen], ignore_index=True)


def _with_borrowed_la(scores: pd.DataFrame, ties: pd.DataFrame) -> pd.DataFrame:
    if ties.empty or (ties["method"] == "LA").any():
        return ties
    pairs = set(zip(ties["model"], ties["task"], strict=True))
    zero_shot = scores[(scores["scenario"] == "zero_shot") & (scores["method"] == "LA")]
    borrowed = zero_shot[
        [(m, t) in pairs for m, t in zip(zero_shot["model"], zero_shot["task"], strict=True)]
    ].copy()
    if borrowed.empty:
        log.warning("TIES scores have no LA rows and no zero-shot LA scores to compare with")
        return ties
    log.info("TIES table: LA taken from the zero-shot scores (%d rows)", len(borrowed))
    borrowed["scenario"] = "ties"
    return pd.concat([ties, borrowed], ignore_index=True)


def _partner(target: str, adapters: str, method_name: str) -> str:
    """l2 of a romance row: the merged adapter that is not the target ("" for T alone)."""
    langs = adapter_languages(adapters)
    if not langs:
        langs = adapter_languages(method_name.partition("(")[2])
    others = [lang for lang in dict.fromkeys(langs) if lang != target]
    if len(langs) < 2:
        return ""
    if len(others) != 1:
        raise LangarithError(
            f"romance score of target {target!r}: cannot tell l2 of LA(l1, l2) from adapters "
            f"{adapters!r} (method {method_name!r}); write the adapters as 'l1,l2'"
        )
    return others[0]


def _romance_points(scoped: pd.DataFrame) -> pd.DataFrame:
    """Romance points, one per (method, target, partner, seed): each l2 is its own merge."""
    scoped = select_metric(scoped).copy()
    scoped["partner"] = [
        _partner(t, a, m)
        for t, a, m in zip(scoped["target"], scoped["adapters"], scoped["method_name"], strict=True)
    ]
    frames = []
    for partner, group in scoped.groupby("partner", sort=True):
        points = chosen_points(group)
        points["partner"] = partner
        frames.append(points)
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- aggregation
def aggregate(points: pd.DataFrame) -> pd.DataFrame:
    """Per-cell and ``AVG`` rows: mean ± std over seeds (see the module docstring).

    ``points`` has the key columns, ``target``, ``seed``, ``score`` and ``lambda``.
    Returns the long table (columns ``_LONG_COLUMNS``); ``AVG`` rows have
    ``target == "AVG"`` and ``n_targets`` the number of languages averaged.
    """
    points = points.copy()
    if "partner" not in points.columns:
        points["partner"] = ""
    languages = _languages_per_block(points)
    rows = []
    for key, group in points.groupby(_CELL_KEYS, sort=False, dropna=False):
        base = dict(zip(_CELL_KEYS, key, strict=True))
        of_targets = languages[(base["scenario"], base["model"], base["task"], base["metric"])]
        for target, cell in group.groupby("target", sort=True):
            mean, std = mean_std(cell["score"])
            lam_mean, lam_std = mean_std(cell["lambda"])
            rows.append(
                {
                    **base,
                    "target": target,
                    "n_targets": 1,
                    "of_targets": 1,
                    "n_seeds": int(cell["seed"].nunique()),
                    "mean": mean,
                    "std": std,
                    "lambda_mean": lam_mean,
                    "lambda_std": lam_std,
                }
            )
        grid = group.pivot_table(index="target", columns="seed", values="score", aggfunc="mean")
        complete = grid.dropna(axis=0, how="any")
        dropped = sorted(set(grid.index) - set(complete.index))
        if dropped:
            log.warning(
                "%s: AVG leaves out %s, which lack some of the seeds %s",
                method_label(base["method"], base["top_k"], base["budget"]),
                dropped,
                list(grid.columns),
            )
        if complete.empty:
            continue
        per_seed = complete.mean(axis=0)
        mean, std = mean_std(per_seed)
        lam = group[group["target"].isin(complete.index)]["lambda"]
        lam_mean, lam_std = mean_std(lam)
        rows.append(
            {
                **base,
                "target": "AVG",
                "n_targets": len(complete),
                "of_targets": of_targets,
                "n_seeds": len(per_seed),
                "mean": mean,
                "std": std,
                "lambda_mean": lam_mean,
                "lambda_std": lam_std,
            }
        )
    return pd.DataFrame(rows, columns=_LONG_COLUMNS)


_BLOCK_KEYS = ["scenario", "model", "task", "metric"]


def _languages_per_block(points: pd.DataFrame) -> dict[tuple, int]:
    """Languages with any score per (scenario, model, task, metric): the table's columns.

    An AVG over fewer (a method whose rows were NaN for a language) says so with
    ``n_targets`` < ``of_targets`` instead of passing for an average over all of them.
    """
    counts = points.groupby(_BLOCK_KEYS, sort=False, dropna=False)["target"].nunique()
    return {tuple(key): int(n) for key, n in counts.items()}


def scenario_table(scores: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """The long table of one scenario (per target and AVG), sorted as the papers do."""
    table = aggregate(scenario_points(scores, scenario))
    layout = LAYOUTS[scenario]
    table["_rank"] = [_method_rank(layout, m) for m in table["method"]]
    table["_avg"] = table["target"] == "AVG"
    table = table.sort_values(
        ["task", "model", "_rank", "method", "top_k", "budget", "partner", "_avg", "target"],
        kind="stable",
    )
    return table.drop(columns=["_rank", "_avg"]).reset_index(drop=True)


# --------------------------------------------------------------------------- relative
#: ACL Figures 2/6 and 3/7: the methods drawn, the merges whose best is compared, and
#: the reference (the better of its methods per language).
RELATIVE_LAYOUTS = {
    "zero_shot": (("pEA", "pRA", "LA"), ("LA",), ("pEA", "pRA")),
    "enhancement": (("T", "LA(T,en)", "LA(T,REL)"), ("LA(T,en)", "LA(T,REL)"), ("T",)),
}


def relative_differences(points: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """Per language: each method's mean test score and the relative difference (%).

    ``relative`` = 100 · (best merge − reference) / reference, on seed means, where
    the reference is the better proxy (zero-shot) or T (enhancement) and the best merge
    is LA (zero-shot) or the better of LA(T,en) and LA(T,REL) (enhancement, as ACL
    Figure 3: "a better LA setup"). Columns ``method, target, metric, mean, relative``;
    ``attrs`` names the methods, the best merge and the reference.
    """
    if scenario not in RELATIVE_LAYOUTS:
        raise LangarithError(f"no relative-difference layout for {scenario!r}")
    methods, merges, references = RELATIVE_LAYOUTS[scenario]
    shown = points[points["method"].isin(methods) & points["budget"].isna()]
    means = shown.groupby(["method", "target", "metric"], as_index=False)["score"].mean()
    means = means.rename(columns={"score": "mean"})
    wide = means.pivot_table(index="target", columns="method", values="mean")
    best = wide[[m for m in merges if m in wide]].max(axis=1) if wide.size else pd.Series()
    ref = wide[[m for m in references if m in wide]].max(axis=1) if wide.size else pd.Series()
    relative = (100.0 * (best - ref) / ref).rename("relative")
    frame = means.merge(relative, left_on="target", right_index=True, how="left")
    frame["_rank"] = [methods.index(m) for m in frame["method"]]
    frame = frame.sort_values(["target", "_rank"]).drop(columns="_rank").reset_index(drop=True)
    frame.attrs.update(
        methods=list(methods),
        best="LA" if scenario == "zero_shot" else "the better LA",
        reference="the better proxy" if scenario == "zero_shot" else "T",
    )
    return frame


# --------------------------------------------------------------------------- λ sub-grids
#: ACL §5.1 / ECAI §5.1: coarser λ grids than the paper's 0.05, and the fixed λ = 0.5.
SUBGRID_STEPS = (0.1, 0.2)
FIXED_LAMBDA = 0.5
_SUBGRID_COLUMNS = [
    "model", "task", "target", "choice", "n_lambdas", "n_seeds", "lambda_mean",
    "validation", "validation_loss", "gain", "gain_kept", "test",
]  # fmt: skip


def _on_step(lam: float, step: float) -> bool:
    return abs(lam / step - round(lam / step)) < 1e-6


def _subgrid_choices(curve: Mapping[float, float]) -> list[tuple[str, list[float]]]:
    full = sorted(curve)
    choices = [(f"full grid ({len(full)} λ)", full)]
    for step in SUBGRID_STEPS:
        sub = [lam for lam in full if _on_step(lam, step)]
        if sub and len(sub) < len(full):
            choices.append((f"step {step:g}", sub))
    if any(abs(lam - FIXED_LAMBDA) < 1e-9 for lam in full):
        choices.append(
            (f"λ = {FIXED_LAMBDA:g}", [lam for lam in full if abs(lam - FIXED_LAMBDA) < 1e-9])
        )
    return choices


def lambda_subgrid_table(scores: pd.DataFrame, method: str = "LA") -> pd.DataFrame:
    """What a coarser λ grid or a fixed λ = 0.5 loses, from the run's own zero-shot curves.

    For each (model, task, target, seed) the validation curve of ``method`` is searched
    on the full grid, on its sub-grids of step 0.1 and 0.2, and taken at λ = 0.5; each
    choice's validation score is compared with the full grid's (``validation_loss``)
    and its gain over the better single adapter (the curve's ends, λ = 0 and λ = 1)
    with the full grid's gain (``gain_kept`` = its gain / the full grid's, over the
    languages' means). ``test`` is the test score at the chosen λ where the run wrote
    a test row there (it writes one at the full grid's choice). Rows per target (mean
    over seeds) and ``AVG`` (mean over targets).
    """
    scoped = select_metric(
        scores[(scores["scenario"] == "zero_shot") & (scores["method"] == method)]
    )
    valid = scoped[(scoped["split"] == "validation") & scoped["lambda"].notna()]
    if valid.empty:
        raise LangarithError(
            f"no zero-shot validation λ curves of {method}; the evaluation writes one "
            "validation row per λ (lambda_search: full)"
        )
    test = scoped[(scoped["split"] == "test") & scoped["lambda"].notna()]
    test_at = {
        (model, task, target, seed, round(float(lam), 6)): float(score)
        for model, task, target, seed, lam, score in zip(
            test["model"], test["task"], test["target"], test["seed"], test["lambda"],
            test["score"], strict=True,
        )
    }  # fmt: skip
    rows = []
    for (model, task, target, seed), group in valid.groupby(["model", "task", "target", "seed"]):
        curve = dict(zip(group["lambda"].astype(float), group["score"].astype(float), strict=True))
        ends = [curve[lam] for lam in (0.0, 1.0) if lam in curve]
        full_best = curve[best_lambda(curve)]
        for choice, lams in _subgrid_choices(curve):
            lam = best_lambda({x: curve[x] for x in lams})
            rows.append(
                dict(model=model, task=task, target=target, seed=seed, choice=choice,
                     n_lambdas=len(lams), lam=lam, validation=curve[lam],
                     validation_loss=full_best - curve[lam],
                     gain=curve[lam] - max(ends) if ends else math.nan,
                     full_gain=full_best - max(ends) if ends else math.nan,
                     test=test_at.get((model, task, target, seed, round(lam, 6)), math.nan))
            )  # fmt: skip
    points = pd.DataFrame(rows)
    order = list(dict.fromkeys(points["choice"]))
    out = []
    keys = ["model", "task", "choice"]
    for (model, task, choice), group in points.groupby(keys, sort=False):
        per_target = group.groupby("target").agg(
            n_lambdas=("n_lambdas", "first"), n_seeds=("seed", "nunique"),
            lambda_mean=("lam", "mean"), validation=("validation", "mean"),
            validation_loss=("validation_loss", "mean"), gain=("gain", "mean"),
            full_gain=("full_gain", "mean"), test=("test", "mean"),
        )  # fmt: skip
        per_target.loc["AVG"] = per_target.mean(numeric_only=True)
        per_target.loc["AVG", "n_seeds"] = group["seed"].nunique()
        per_target.loc["AVG", "n_lambdas"] = group["n_lambdas"].iloc[0]
        for target, cell in per_target.iterrows():
            full = cell["full_gain"]
            out.append(
                dict(model=model, task=task, target=target, choice=choice,
                     n_lambdas=int(cell["n_lambdas"]), n_seeds=int(cell["n_seeds"]),
                     lambda_mean=cell["lambda_mean"], validation=cell["validation"],
                     validation_loss=cell["validation_loss"], gain=cell["gain"],
                     gain_kept=cell["gain"] / full if full > 0 else math.nan,
                     test=cell["test"])
            )  # fmt: skip
    frame = pd.DataFrame(out, columns=_SUBGRID_COLUMNS)
    frame["_c"] = [order.index(c) for c in frame["choice"]]
    frame["_avg"] = frame["target"] == "AVG"
    frame = frame.sort_values(["task", "model", "_avg", "target", "_c"], kind="stable")
    return frame.drop(columns=["_c", "_avg"]).reset_index(drop=True)


def _subgrid_markdown(frame: pd.DataFrame) -> str:
    avg = frame[frame["target"] == "AVG"]
    display = pd.DataFrame(
        {
            "Task": avg["task"],
            "Model": avg["model"],
            "λ choice": avg["choice"],
            "λ evaluated": avg["n_lambdas"],
            "mean λ*": [format_fixed(x, 2) for x in avg["lambda_mean"]],
            "Validation": [format_fixed(x, 2) for x in avg["validation"]],
            "Loss vs full grid": [format_fixed(x, 2) for x in avg["validation_loss"]],
            "Gain over better single adapter": [format_fixed(x, 2) for x in avg["gain"]],
            "Gain kept": ["–" if _isnan(float(x)) else f"{100 * x:.0f}%" for x in avg["gain_kept"]],
        }
    )
    return (
        "# λ on coarser grids and at λ = 0.5 (ACL §5.1, ECAI §5.1)\n\n"
        "From the run's own zero-shot validation curves of LA(en, rel): λ chosen on the "
        "full grid, on its sub-grids of step 0.1 and 0.2, and fixed at 0.5. 'Loss' is the "
        "validation score lost against the full grid; 'gain' is over the better single "
        "adapter (the curve's ends, λ = 0 and 1), and 'gain kept' is that gain as a share "
        "of the full grid's. Mean over seeds, then over languages (AVG); the CSV has every "
        "language, and the test score where the run wrote one at that λ.\n\n"
        + markdown_table(display)
    )


def build_lambda_subgrids(request: TableRequest) -> BuiltTable:
    """ACL §5.1: a coarser λ grid or λ = 0.5 against the full grid, from the run's curves."""
    frame = lambda_subgrid_table(request.scores())
    return BuiltTable(frame, _subgrid_markdown(frame))


# --------------------------------------------------------------------------- gains
def _gain_matrix(method_pts: pd.DataFrame, base_pts: pd.DataFrame) -> pd.DataFrame:
    method_grid = method_pts.pivot_table(index="target", columns="seed", values="score")
    base_grid = base_pts.pivot_table(index="target", columns="seed", values="score")
    return (method_grid - base_grid).dropna(how="all").dropna(axis=1, how="all")


def _baseline_points(points: pd.DataFrame, baseline: str, budget: float) -> pd.DataFrame:
    if baseline == BETTER_PROXY:
        proxies = points[points["method"].isin(["pEA", "pRA"])]
        if proxies["method"].nunique() < 2:
            return proxies.iloc[0:0]
        best = proxies.pivot_table(
            index=["target", "seed"], columns="method", values="score"
        ).dropna()
        return best.max(axis=1).rename("score").reset_index()
    rows = points[points["method"] == baseline]
    same_budget = rows[rows["budget"] == budget] if not _isnan(budget) else rows.iloc[0:0]
    if not same_budget.empty:
        return same_budget
    return rows[rows["budget"].isna()]


def gains_table(
    points: pd.DataFrame,
    scenario: str,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """Gain of each method over its baseline with a bootstrap 95% CI, per model and task.

    Gains are paired: method minus baseline on the same (target, seed). Columns:
    ``scenario, model, task, metric, method, top_k, budget, baseline, n_targets,
    n_seeds, gain, ci_low, ci_high, real, complete`` (``real``: the interval excludes 0
    and the gain covers every language and seed of the table, ``complete``; a gain
    over fewer, after NaN rows were dropped, gets no verdict, nor does one cell, one
    language and one seed, whose "interval" is the cell itself).
    """
    layout = LAYOUTS[scenario]
    rows = []
    for (model, task, metric), group in points.groupby(["model", "task", "metric"], sort=True):
        all_targets, all_seeds = group["target"].nunique(), group["seed"].nunique()
        for method, baseline in layout.comparisons:
            variants = group[group["method"] == method]
            for (top_k, budget), method_pts in variants.groupby(
                ["top_k", "budget"], dropna=False, sort=True
            ):
                base_pts = _baseline_points(group, baseline, budget)
                if base_pts.empty:
                    continue
                matrix = _gain_matrix(method_pts, base_pts)
                if matrix.empty:
                    continue
                ci = bootstrap_ci(matrix, n_resamples=n_resamples, seed=seed)
                # A star only for a gain over every language and seed of the table: over
                # fewer (NaN rows dropped) it would test another set than the AVG shows.
                complete = (
                    bool(np.isfinite(matrix.to_numpy()).all())
                    and ci.n_targets == all_targets
                    and ci.n_seeds == all_seeds
                )
                rows.append(
                    {
                        "scenario": scenario,
                        "model": model,
                        "task": task,
                        "metric": metric,
                        "method": method,
                        "top_k": top_k,
                        "budget": budget,
                        "baseline": baseline,
                        "n_targets": ci.n_targets,
                        "of_targets": all_targets,
                        "n_seeds": ci.n_seeds,
                        "gain": ci.mean,
                        "ci_low": ci.low,
                        "ci_high": ci.high,
                        "real": ci.excludes_zero
                        and complete
                        and not _one_cell(ci.n_targets, ci.n_seeds),
                        "complete": complete,
                    }
                )
    return pd.DataFrame(rows, columns=_GAIN_COLUMNS)


def _gains_display(gains: pd.DataFrame, decimals: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Scenario": gains["scenario"],
            "Task": gains["task"],
            "Model": gains["model"],
            "Method": [
                method_label(m, k, b)
                for m, k, b in zip(gains["method"], gains["top_k"], gains["budget"], strict=True)
            ],
            "Baseline": gains["baseline"],
            "Gain": [format_fixed(g, decimals) for g in gains["gain"]],
            "95% CI": [
                "–" if _one_cell(t, s) else _interval(lo, hi, decimals)
                for lo, hi, t, s in zip(
                    gains["ci_low"],
                    gains["ci_high"],
                    gains["n_targets"],
                    gains["n_seeds"],
                    strict=True,
                )
            ],
            "Languages × seeds": [
                f"{t} × {s}" for t, s in zip(gains["n_targets"], gains["n_seeds"], strict=True)
            ],
            "Real?": [
                _verdict(r, c, t, o, s)
                for r, c, t, o, s in zip(
                    gains["real"],
                    gains.get("complete", pd.Series(True, index=gains.index)),
                    gains["n_targets"],
                    gains.get("of_targets", gains["n_targets"]),
                    gains["n_seeds"],
                    strict=True,
                )
            ],
        }
    )


def _interval(low: float, high: float, decimals: int) -> str:
    return f"[{format_fixed(low, decimals)}, {format_fixed(high, decimals)}]"


def _one_cell(n_targets: int, n_seeds: int) -> bool:
    """A gain from one language and one seed: no spread to bootstrap, its "interval" is
    the cell itself, so it gets neither an interval nor a verdict."""
    return n_targets * n_seeds < 2


def _verdict(real: bool, complete: bool, n_targets: int, of_targets: int, n_seeds: int) -> str:
    if not complete:
        return f"not tested{coverage_note(n_targets, of_targets) or ' (missing scores)'}"
    if _one_cell(n_targets, n_seeds):
        return "not tested (one language, one seed)"
    return "yes" if real else "no"


# --------------------------------------------------------------------------- display
def _wide(table: pd.DataFrame, layout: ScenarioLayout, decimals: int) -> tuple[pd.DataFrame, list]:
    """Paper layout: a row per (task, model, method), a column per target, then AVG.

    λ* rows follow the methods whose λ was chosen. Returns the frame and the positions
    after which a new task starts (for LaTeX rules).
    """
    targets = sorted(t for t in set(table["target"]) if t != "AVG")
    columns = ["Task", "Model", "Method", *targets, "AVG"]
    rows, breaks = [], []
    for task in _order(table["task"]):
        if rows:
            breaks.append(len(rows) - 1)
        for model in _order(table[table["task"] == task]["model"]):
            block = table[(table["task"] == task) & (table["model"] == model)]
            keys = block[["method", "top_k", "budget", "partner"]].drop_duplicates()
            lam_rows = []
            for key in keys.itertuples(index=False):
                cells = block[
                    (block["method"] == key.method)
                    & _same(block["top_k"], key.top_k)
                    & _same(block["budget"], key.budget)
                    & (block["partner"] == key.partner)
                ].set_index("target")
                label = method_label(key.method, key.top_k, key.budget)
                if key.partner:
                    label += f" (+{key.partner})"
                score = {
                    t: format_mean_std(cells.at[t, "mean"], cells.at[t, "std"], decimals)
                    + coverage_note(cells.at[t, "n_targets"], cells.at[t, "of_targets"])
                    if t in cells.index
                    else "–"
                    for t in [*targets, "AVG"]
                }
                rows.append({"Task": task, "Model": model, "Method": label, **score})
                if key.method in layout.lambda_methods and cells["lambda_mean"].notna().any():
                    lam = {
                        t: format_mean_std(cells.at[t, "lambda_mean"], cells.at[t, "lambda_std"])
                        if t in cells.index
                        else "–"
                        for t in [*targets, "AVG"]
                    }
                    lam_rows.append({"Task": task, "Model": model, "Method": f"λ* {label}", **lam})
            rows.extend(lam_rows)
    return pd.DataFrame(rows, columns=columns), breaks


def _same(series: pd.Series, value: float) -> pd.Series:
    return series.isna() if _isnan(value) else series == value


def _romance_wide(table: pd.DataFrame, decimals: int) -> pd.DataFrame:
    """ACL Table 1 layout: a row per evaluated l1, a column per l2 (and T alone)."""
    merged = table[(table["partner"] != "") & (table["target"] != "AVG")]
    alone = table[(table["partner"] == "") & (table["target"] != "AVG")]
    partners = sorted(set(merged["partner"]))
    rows = []
    for (task, model, target), block in merged.groupby(["task", "model", "target"], sort=True):
        cells = block.set_index("partner")
        row = {"Task": task, "Model": model, "l1 (evaluated)": target}
        own = alone[
            (alone["task"] == task) & (alone["model"] == model) & (alone["target"] == target)
        ]
        row["T alone"] = (
            format_mean_std(own["mean"].iloc[0], own["std"].iloc[0], decimals) if len(own) else "–"
        )
        for partner in partners:
            row[partner] = (
                format_mean_std(cells.at[partner, "mean"], cells.at[partner, "std"], decimals)
                if partner in cells.index
                else "–"
            )
        means = cells["mean"].dropna()
        row["best l2"] = str(means.idxmax()) if len(means) else "–"
        row["best − worst"] = (
            format_fixed(means.max() - means.min(), decimals) if len(means) else "–"
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _notes(table: pd.DataFrame, scenario: str) -> str:
    metrics = ", ".join(
        f"{task}: {metric}"
        for task, metric in table[["task", "metric"]].drop_duplicates().itertuples(index=False)
    )
    seeds = sorted(set(table["n_seeds"]))
    spread = (
        "one seed, so no standard deviation"  # rather than "± over seeds (1 seeds)"
        if seeds == [1]
        else "each cell is the mean ± sample standard deviation over seeds "
        f"({'/'.join(map(str, seeds))} seeds)"
    )
    text = f"Test split, metric per task ({metrics}); {spread}. "
    if scenario != "romance":
        text += (
            "AVG: the mean over languages for each seed, then mean ± std over seeds "
            "(an AVG over fewer languages than the table's, where scores were missing, "
            "says '(2 of 3 languages)'). "
            "λ*: the λ chosen on the validation split (mean ± std over seeds; in AVG over "
            "languages and seeds)."
        )
    else:
        text += "Columns are the second language l2 of LA(l1, l2); the λ is chosen on validation."
    if MIX_ORACLE in LAYOUTS[scenario].methods and (table["method"] == MIX_ORACLE).any():
        text += (
            f" {MIX_VALIDATION}: per language and seed, the better of LA(T,en) and LA(T,REL) "
            f"by validation score. {MIX_ORACLE} (as ECAI Table 2): per language, the better "
            "of the two by the seed-averaged test score, an oracle ceiling, not a method."
        )
    return text


# --------------------------------------------------------------------------- other tables
def _related_markdown(frame: pd.DataFrame) -> str:
    display = frame.copy()
    for column in display.columns:
        if column == "overridden" or column.startswith("agrees_"):
            display[column] = display[column].map({True: "yes", False: "no"}).fillna("–")
    if "distance" in display.columns:
        display["distance"] = [format_fixed(d, 3) for d in display["distance"]]
    lines = [
        "# Related languages",
        "",
        "For each target language, the language whose adapter is merged with it "
        "(`related`: the config's override where it gives one, else the URIEL pick), the "
        "URIEL pick itself (`uriel`: nearest pool language by the mean of genetic, "
        "geographic and featural distances) and the papers' pairs (ACL Appendix A, "
        "Table 2; ECAI Appendix B, Table 5).",
        "",
    ]
    for paper in ("acl", "ecai"):
        column, listed = f"agrees_{paper}", f"paper_{paper}"
        if column in frame.columns:
            known = frame[column].dropna()
            lines.append(
                f"- The run's pairs agree with the {paper.upper()} list for {int(known.sum())} "
                f"of {len(known)} targets the paper lists."
            )
        if "uriel" in frame.columns and listed in frame.columns:
            given = frame[frame[listed].fillna("").astype(str) != ""]
            uriel_agrees = int((given["uriel"] == given[listed]).sum())
            lines.append(
                f"- URIEL's picks agree with the {paper.upper()} list for {uriel_agrees} of "
                f"{len(given)}."
            )
    if "overridden" in frame.columns:
        lines.append(f"- Overridden in the config: {int(frame['overridden'].fillna(False).sum())}.")
    return "\n".join(lines) + "\n\n" + markdown_table(display)


def read_tokens_seen(adapter_dirs: Iterable[str | PathLike[str]]) -> pd.DataFrame:
    """``tokens_seen`` of token-budget adapters from their ``metadata.json``.

    Folders follow ``.../adapters/<model>/lang/<lang>/budget<tokens>/seed<s>``. A folder
    without metadata (or without ``tokens_seen``) is skipped with a warning. Columns:
    ``model, target, budget, seed, tokens_seen``.
    """
    rows = []
    for folder in map(Path, adapter_dirs):
        parts = folder.parts
        try:
            i = next(k for k, p in enumerate(parts) if p.startswith("budget") and p[6:].isdigit())
            model, lang = parts[i - 3], parts[i - 1]
            budget, seed = float(parts[i][6:]), int(parts[i + 1].removeprefix("seed"))
        except (StopIteration, IndexError, ValueError):
            raise LangarithError(
                f"{folder} is not a token-budget adapter folder "
                "(<model>/lang/<lang>/budget<tokens>/seed<s>)"
            ) from None
        meta_path = folder / "metadata.json"
        if not meta_path.exists():
            log.warning("%s has no metadata.json; its tokens seen are unknown", folder)
            continue
        tokens = read_json(meta_path).get("tokens_seen")
        if tokens is None:
            log.warning("%s records no tokens_seen", meta_path)
            continue
        rows.append(
            {
                "model": model,
                "target": lang,
                "budget": budget,
                "seed": seed,
                "tokens_seen": float(tokens),
            }
        )
    return pd.DataFrame(rows, columns=["model", "target", "budget", "seed", "tokens_seen"])


def token_budget_points(scores: pd.DataFrame) -> pd.DataFrame:
    """Test points of the token-budget study: low-resource (or token_budget) scores.

    Adapters trained on a token budget carry it in their name (``pt@budget1000``);
    rows without a budget (full-corpus adapters) are kept too, as the reference.
    """
    scoped = scores[scores["scenario"].isin(["low_resource", "token_budget"])]
    if scoped.empty or scoped["budget"].isna().all():
        raise LangarithError(
            "no token-budget scores (adapters named like 'pt@budget1000' in the "
            "low_resource scores); run the low-resource evaluation with token_budget set"
        )
    points = chosen_points(select_metric(scoped))
    points["partner"] = ""
    return points


def token_budget_table(
    scores: pd.DataFrame, adapter_dirs: Iterable[str | PathLike[str]] = ()
) -> pd.DataFrame:
    """Score against token budget: one row per (model, task, target, method, budget).

    Columns of the long table plus ``tokens_seen`` (mean over seeds, from the adapters'
    metadata; NaN when unknown). Rows without a budget are the full-corpus adapters.
    """
    table = aggregate(token_budget_points(scores))
    table = table[table["target"] != "AVG"].copy()
    seen = read_tokens_seen(adapter_dirs)
    if not seen.empty:
        mean_seen = seen.groupby(["model", "target", "budget"])["tokens_seen"].mean()
        table["tokens_seen"] = [
            mean_seen.get((m, t, b), math.nan)
            for m, t, b in zip(table["model"], table["target"], table["budget"], strict=True)
        ]
    else:
        table["tokens_seen"] = math.nan
    table["_rank"] = [_method_rank(LAYOUTS["low_resource"], m) for m in table["method"]]
    table = table.sort_values(
        ["task", "model", "target", "_rank", "method", "budget"], na_position="last", kind="stable"
    )
    return table.drop(columns="_rank").reset_index(drop=True)


def _token_budget_wide(table: pd.DataFrame, decimals: int) -> pd.DataFrame:
    budgets = sorted(b for b in set(table["budget"]) if not _isnan(b))
    columns = [_tokens(b) for b in budgets]
    has_full = table["budget"].isna().any()
    rows = []
    for (task, model, target, method), block in table.groupby(
        ["task", "model", "target", "method"], sort=False
    ):
        row = {"Task": task, "Model": model, "Target": target, "Method": method}
        for budget, column in zip(budgets, columns, strict=True):
            cell = block[block["budget"] == budget]
            row[column] = (
                format_mean_std(cell["mean"].iloc[0], cell["std"].iloc[0], decimals)
                if len(cell)
                else "–"
            )
        if has_full:
            cell = block[block["budget"].isna()]
            row["full corpus"] = (
                format_mean_std(cell["mean"].iloc[0], cell["std"].iloc[0], decimals)
                if len(cell)
                else "–"
            )
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- paper comparison
#: Methods whose number depends on the related language (and so on the pool it is
#: drawn from); the paper's MIX chooses between LA(T,en) and LA(T,REL).
PARTNER_METHODS = ("pRA", "LA", "LA(T,REL)", MIX_ORACLE, "TIES")


def paper_comparison_table(
    scores: pd.DataFrame | None,
    backbones: Mapping[str, str] | None,
    *,
    papers: pd.DataFrame | None = None,
    run_pools: Mapping[str, Sequence[str]] | None = None,
    source: str = "en",
    task_datasets: Mapping[str, Mapping[str, str]] | None = None,
) -> pd.DataFrame:
    """The run's averages next to the published numbers, with the difference.

    Args:
        scores: the run's scores (all scenarios), or None when there are none yet.
        backbones: run model name → paper model key (``mbert``/``xlmr``) for backbones
            that are the papers' hub models; empty for the demo, whose setup differs.
        papers: the published numbers (default: ``paper_numbers.csv`` of the package).
        run_pools: scenario → the languages the run drew partners from (the config's
            related pool; the Romance pool for ``romance``); ``None``: not known, and
            rows whose number depends on the pool are then not comparable.
        source: the source language (never a partner).
        task_datasets: scenario → run task → the dataset it is evaluated on (key ``""``:
            any scenario), so that an arm's task matches the dataset a paper names
            (:mod:`langarith.report.paper_arms`).

    Every published score row is listed (cosine values and text-quoted gains are left
    out), with ``paper_table`` (e.g. ``ECAI Table 2``). ``run_*`` columns are filled
    where the run has the same scenario, backbone, task, method and language. A row is
    ``comparable`` only if, besides, the setups agree: for methods that use a related
    language (:data:`PARTNER_METHODS`) the run's partner of every language and its pool
    equal the paper's (``partner``, ``pool`` of ``paper_numbers.csv``); an AVG averages
    the same languages; the number of seeds equals the paper's where the paper states
    it; and MIX is the paper's definition (the run's ``MIX`` is the oracle of
    :func:`with_mix_variants`; ``MIX-val`` is never compared). ``why_not`` says which
    of these fail.

    The arms' scenarios (no core table layout: ``ta-*``, ``tlr-*``, ``xmod*``) are
    matched by :func:`~langarith.report.paper_arms.fill_arm_row`; a row marked
    ``published_only`` is listed with its reason and never matched.
    """
    papers = paper_numbers.load() if papers is None else papers
    for column in ("pool", "seeds", *paper_numbers.EXTRA_COLUMNS):
        if column not in papers.columns:
            papers = papers.assign(**{column: ""})
    published = papers[papers["metric"].isin(ARM_METRICS)].copy()
    backbones = dict(backbones or {})
    run_model_of = {paper: run for run, paper in backbones.items()}
    long = _run_long_tables(scores, set(published["scenario"])) if backbones else pd.DataFrame()
    partners = _run_partners(scores, source) if backbones else {}
    arm_scenarios = set(published["scenario"]) - set(LAYOUTS)
    points = arm_points(scores, arm_scenarios, task_datasets) if backbones else pd.DataFrame()
    rows = []
    for pub in published.itertuples(index=False):
        run_model = run_model_of.get(pub.model, "")
        row = {
            "paper": pub.paper,
            "table": pub.table,
            "paper_table": f"{str(pub.paper).upper()} {pub.table}",
            "scenario": pub.scenario,
            "paper_model": pub.model,
            "run_model": run_model,
            "task": pub.task,
            "method": pub.method,
            "top_k": pub.top_k,
            "partner": pub.partner,
            "language": pub.language,
            "metric": pub.metric,
            "paper_score": pub.score,
            "run_mean": math.nan,
            "run_std": math.nan,
            "run_seeds": math.nan,
            "run_languages": math.nan,
            "difference": math.nan,
            "run_partner": "",
            "comparable": False,
            "why_not": "",
            "note": "",
        }
        if str(pub.published_only).strip():
            row["why_not"] = f"published only: {pub.published_only}"
        elif not backbones:
            row["why_not"] = "setup differs: the run's backbones are not the papers' models"
        elif not run_model:
            row["why_not"] = f"the run has no backbone with the papers' {pub.model} hub model"
        elif pub.scenario in arm_scenarios:
            fill_arm_row(row, points, papers, pub)
            _check_setup(row, pub, papers, partners, run_pools)
        else:
            _fill_run(row, long, papers, pub)
            _check_setup(row, pub, papers, partners, run_pools)
        rows.append(row)
    return pd.DataFrame(rows)


def _run_partners(scores: pd.DataFrame | None, source: str) -> dict[tuple, str]:
    """(scenario, model, task, target) → the related language the run merged or used.

    Read from the ``adapters`` of the run's pRA, LA, LA(T,REL) and TIES rows: the
    adapter that is neither the target nor the source language.
    """
    if scores is None or scores.empty:
        return {}
    rows = scores[scores["method"].isin(["pRA", "LA", "LA(T,REL)", "TIES"])]
    found: dict[tuple, set[str]] = {}
    for row in rows[["scenario", "model", "task", "target", "adapters"]].itertuples(index=False):
        langs = [x for x in adapter_languages(row.adapters) if x not in (row.target, source)]
        found.setdefault((row.scenario, row.model, row.task, row.target), set()).update(langs)
    return {key: "+".join(sorted(langs)) for key, langs in found.items() if langs}


def _paper_partners(papers: pd.DataFrame, pub: Any) -> dict[str, str]:
    """language → the paper's partner for the per-language numbers behind ``pub``."""
    same = per_language_rows(papers, pub)
    return dict(zip(same["language"], same["partner"], strict=True))


def _check_setup(
    row: dict[str, Any],
    pub: Any,
    papers: pd.DataFrame,
    partners: Mapping[tuple, str],
    run_pools: Mapping[str, Sequence[str]] | None,
) -> None:
    """Mark ``row`` not comparable, with ``why_not``, where the setups differ."""
    why = [row["why_not"]] if row["why_not"] else []
    if math.isnan(row["run_mean"]):
        why.append(row["note"] or "not in the run")
        row["note"] = ""
    elif not row["comparable"]:  # _fill_run found an AVG over other languages
        why.append(row["note"])
        row["note"] = ""
    uses_partner = pub.method in PARTNER_METHODS and pub.scenario != "romance"
    if uses_partner:
        key = (pub.scenario, row["run_model"], pub.task)
        if pub.scenario == "ties" and not any(k[:3] == key for k in partners):
            key = ("zero_shot", row["run_model"], pub.task)  # LA borrowed from zero-shot
        wanted = (
            _paper_partners(papers, pub) if pub.language == "AVG" else {pub.language: pub.partner}
        )
        if pub.language != "AVG":
            row["run_partner"] = partners.get((*key, pub.language), "")
        elif not any(wanted.values()):  # an AVG printed alone (ACL Table 3, ECAI Table 4)
            listed = paper_related_languages().get(str(pub.paper), {})
            ran = {lang: rel for lang, rel in listed.items() if (*key, lang) in partners}
            wanted = ran or listed
        differ = [
            f"{lang} (run {partners.get((*key, lang), '?')}, paper {rel})"
            for lang, rel in sorted(wanted.items())
            if rel and partners.get((*key, lang), "") != rel
        ]
        if differ and not math.isnan(row["run_mean"]):
            why.append("other partners: " + ", ".join(differ))
        if not any(wanted.values()) and not math.isnan(row["run_mean"]):
            why.append("the paper does not list the partners of this number")
        elif pub.language == "AVG" and not _paper_partners(papers, pub):
            notes = [row["note"]] if row["note"] else []
            row["note"] = "; ".join([*notes, "partners: the paper's related-language table"])
    if (uses_partner or pub.scenario == "romance") and str(pub.pool).strip():
        paper_pool = set(str(pub.pool).split())
        run_pool = None if run_pools is None else run_pools.get(pub.scenario)
        if run_pool is None:
            why.append("the run's pool is not known")
        elif set(run_pool) != paper_pool:
            extra, missing = sorted(set(run_pool) - paper_pool), sorted(paper_pool - set(run_pool))
            why.append(
                "other pool:"
                + (f" the run adds {' '.join(extra)}" if extra else "")
                + (f" the run lacks {' '.join(missing)}" if missing else "")
            )
    seeds = str(pub.seeds).strip()
    if seeds and not math.isnan(row["run_mean"]) and int(float(seeds)) != row["run_seeds"]:
        why.append(f"{row['run_seeds']} seeds, the paper {int(float(seeds))}")
    elif not seeds and not math.isnan(row["run_mean"]):
        notes = [row["note"]] if row["note"] else []
        row["note"] = "; ".join([*notes, "the paper does not state its number of runs"])
    if pub.method == MIX_ORACLE and not math.isnan(row["run_mean"]):
        notes = [row["note"]] if row["note"] else []
        row["note"] = "; ".join(
            [*notes, "MIX as the paper: better arm by seed-averaged test score (oracle)"]
        )
    why = [w for w in why if w]
    row["why_not"] = "; ".join(dict.fromkeys(why))
    row["comparable"] = not why


def _run_long_tables(scores: pd.DataFrame | None, scenarios: set[str]) -> pd.DataFrame:
    if scores is None or scores.empty:
        return pd.DataFrame(columns=_LONG_COLUMNS)
    frames = []
    for scenario in sorted(scenarios & set(LAYOUTS)):
        try:
            frames.append(scenario_table(scores, scenario))
        except LangarithError as err:
            log.info("paper comparison: no %s numbers from the run (%s)", scenario, err)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_LONG_COLUMNS)


def _fill_run(row: dict[str, Any], long: pd.DataFrame, papers: pd.DataFrame, pub: Any) -> None:
    if long.empty:
        row["note"] = "no scores of this scenario in the run"
        return
    top_k = float(pub.top_k) if str(pub.top_k).strip() not in ("", "nan") else math.nan
    # a table's partner column is the Romance l2; other partners are checked afterwards
    partner = pub.partner if pub.scenario == "romance" and isinstance(pub.partner, str) else ""
    match = long[
        (long["scenario"] == pub.scenario)
        & (long["model"] == row["run_model"])
        & (long["task"] == pub.task)
        & (long["method"] == pub.method)
        & _same(long["top_k"], top_k)
        & long["budget"].isna()
        & (long["partner"] == partner)
        & (long["target"] == pub.language)
    ]
    if match.empty:
        row["note"] = "not in the run"
        return
    cell = match.iloc[0]
    row.update(
        run_mean=cell["mean"],
        run_std=cell["std"],
        run_seeds=int(cell["n_seeds"]),
        run_languages=int(cell["n_targets"]),
        difference=cell["mean"] - float(pub.score),
        comparable=True,
    )
    notes = []
    if cell["metric"] != pub.metric:
        notes.append(f"run metric {cell['metric']} vs paper {pub.metric}")
    if pub.language == "AVG":
        notes += _check_average_languages(row, long, papers, pub, top_k)
    row["note"] = "; ".join(notes)


def _check_average_languages(
    row: dict[str, Any], long: pd.DataFrame, papers: pd.DataFrame, pub: Any, top_k: float
) -> list[str]:
    """Notes on a published AVG: comparable only over the same languages as the paper's."""
    langs = papers[
        (papers["paper"] == pub.paper)
        & (papers["table"] == pub.table)
        & (papers["model"] == pub.model)
        & (papers["task"] == pub.task)
        & (papers["method"] == pub.method)
        & (papers["language"] != "AVG")
    ]["language"]
    run_langs = set(
        long[
            (long["scenario"] == pub.scenario)
            & (long["model"] == row["run_model"])
            & (long["task"] == pub.task)
            & (long["method"] == pub.method)
            & _same(long["top_k"], top_k)
            & (long["target"] != "AVG")
        ]["target"]
    )
    if len(langs) and set(langs) != run_langs:
        row["comparable"] = False
        return [f"AVG over other languages: run {sorted(run_langs)}, paper {sorted(set(langs))}"]
    if not len(langs):
        return ["the paper does not list the languages of this average"]
    return []


def _paper_comparison_markdown(table: pd.DataFrame, backbones: Mapping[str, str]) -> str:
    lines = ["# The run against the published numbers", ""]
    if not backbones:
        lines += [
            "**The setup differs**: this run's backbones are not the papers' models "
            "(bert-base-multilingual-cased as mbert, xlm-roberta-base as xlmr), so its "
            "scores are not comparable with the published ones and no difference is "
            "computed. The published averages are listed for reference.",
            "",
        ]
        shown = table[table["language"] == "AVG"]
    else:
        lines += [
            "Backbones matched to the papers' models: "
            + ", ".join(f"{run} = {paper}" for run, paper in backbones.items())
            + ". Difference = run − paper (test split; run mean ± std over seeds). "
            "A row is comparable when the scenario, model, task, method and language "
            "match and so do the related language (partner) of every language, the pool "
            "it is drawn from, the languages of an AVG, the number of seeds (where the "
            "paper states it) and the MIX definition (the paper's MIX is an oracle "
            "ceiling: the better arm by seed-averaged test score; MIX-val is never "
            "compared). 'Why not' names what differs.",
            "",
        ]
        shown = table[table["run_mean"].notna() | (table["language"] == "AVG")]
    decimals = 2
    display = pd.DataFrame(
        {
            "Paper": shown["paper_table"],
            "Scenario": shown["scenario"],
            "Model": shown["paper_model"],
            "Task": shown["task"],
            "Method": [
                method_label(m, float(k) if str(k) not in ("", "nan") else math.nan)
                + (f" (+{p})" if isinstance(p, str) and p else "")
                for m, k, p in zip(shown["method"], shown["top_k"], shown["partner"], strict=True)
            ],
            "Language": shown["language"],
            "Paper score": [format_fixed(s, decimals) for s in shown["paper_score"]],
            "Run": [
                format_mean_std(m, s, decimals)
                for m, s in zip(shown["run_mean"], shown["run_std"], strict=True)
            ],
            "Run − paper": [format_fixed(d, decimals) for d in shown["difference"]],
            "Comparable": ["yes" if c else "no" for c in shown["comparable"]],
            "Why not": shown["why_not"],
            "Note": shown["note"],
        }
    )
    return "\n".join(lines) + "\n" + markdown_table(display)


# --------------------------------------------------------------------------- builders
@dataclasses.dataclass(frozen=True)
class TableRequest:
    """What a table builder gets: the table's name, its named inputs and the options."""

    name: str
    inputs: Mapping[str, list[str]]
    backbones: Mapping[str, str] = dataclasses.field(default_factory=dict)
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    run_pools: Mapping[str, Sequence[str]] | None = None
    source: str = "en"
    notes: Sequence[str] = ()  # lines a table adds under itself (e.g. skipped targets)
    task_datasets: Mapping[str, Mapping[str, str]] | None = None  # paper_comparison

    def paths(self, key: str) -> list[str]:
        """The files of one named input (empty when the rule gives none)."""
        return list(self.inputs.get(key) or [])

    def optional_scores(self) -> pd.DataFrame | None:
        """The score files read into one table, or None when there are none."""
        paths = self.paths("scores")
        return read_scores(paths) if paths else None

    def scores(self) -> pd.DataFrame:
        """The score files read into one table; a table that needs them has them."""
        scores = self.optional_scores()
        if scores is None:
            raise LangarithError(f"table {self.name!r} needs score files (input 'scores')")
        return scores


@dataclasses.dataclass(frozen=True)
class BuiltTable:
    """A table as written: the tidy frame (CSV), Markdown and, for papers' tables, LaTeX."""

    frame: pd.DataFrame
    markdown: str
    latex: str | None = None


def _gains_markdown(gains: pd.DataFrame, decimals: int) -> str:
    if gains.empty:
        return ""
    return (
        "\n## Gain over the baseline (bootstrap 95% CI over languages and seeds)\n\n"
        + markdown_table(_gains_display(gains, decimals))
    )


def build_scenario_table(request: TableRequest) -> BuiltTable:
    """One scenario's table in the papers' layout (``request.name`` is the scenario)."""
    scenario = request.name
    scores = request.scores()
    long = scenario_table(scores, scenario)
    decimals = score_decimals(long["mean"])
    layout = LAYOUTS[scenario]
    if scenario == "romance":
        wide, breaks = _romance_wide(long, decimals), []
        gains = pd.DataFrame()
    else:
        wide, breaks = _wide(long, layout, decimals)
        points = scenario_points(scores, scenario)
        gains = gains_table(points, scenario, n_resamples=request.n_resamples, seed=request.seed)
    notes = _notes(long, scenario)
    markdown = f"# {layout.title}\n\n{notes}\n\n" + markdown_table(wide)
    latex = latex_table(
        wide, caption=f"{layout.title}. {notes}", label=f"tab:{scenario}", midrules_after=breaks
    )
    return BuiltTable(long, markdown + _gains_markdown(gains, decimals), latex)


def build_gains(request: TableRequest) -> BuiltTable:
    """Every scenario's gains over its baselines in one table."""
    scores = request.scores()
    present = set(scores["scenario"])
    frames = [
        gains_table(
            scenario_points(scores, scenario),
            scenario,
            n_resamples=request.n_resamples,
            seed=request.seed,
        )
        for scenario in SCENARIO_TABLES
        if LAYOUTS[scenario].comparisons and scenario in present
    ]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_GAIN_COLUMNS)
    markdown = (
        "# Gains over the baselines\n\nPaired gain (method − baseline on the same language "
        "and seed, test split), its mean over languages and seeds, and a crossed bootstrap "
        f"95% confidence interval ({request.n_resamples} resamples of languages and seeds, "
        f"random seed {request.seed}). 'Real' means the interval excludes 0.\n\n"
        + markdown_table(_gains_display(frame, score_decimals(scores["score"])))
    )
    return BuiltTable(frame, markdown)


def build_related_languages(request: TableRequest) -> BuiltTable:
    """The related language of each target, as ``results/related_languages.tsv`` has it."""
    related = request.paths("related")
    if not related:
        raise LangarithError("table 'related_languages' needs input 'related' (the TSV)")
    frame = read_related_frame(related[0])
    return BuiltTable(frame, _related_markdown(frame))


def _tokens_seen_markdown(frame: pd.DataFrame) -> str:
    seen = frame.dropna(subset=["tokens_seen"])
    if seen.empty:
        return ""
    display = seen[["model", "target", "budget", "tokens_seen"]].drop_duplicates()
    display = display.assign(
        budget=[_tokens(b) for b in display["budget"]],
        tokens_seen=[f"{t:,.0f}" for t in display["tokens_seen"]],
    )
    return (
        "\n## Tokens seen in training (sub-word tokens, mean over seeds; budgets are "
        "whitespace tokens)\n\n" + markdown_table(display)
    )


def build_token_budget(request: TableRequest) -> BuiltTable:
    """Score against the language adapter's training-token budget."""
    frame = token_budget_table(request.scores(), request.paths("adapters"))
    markdown = (
        "# Score against the language adapter's token budget\n\n"
        "Test split, mean ± std over seeds; columns are the adapter's training-token "
        "budget ('full corpus': the adapter trained on all text).\n\n"
        + markdown_table(_token_budget_wide(frame, score_decimals(frame["mean"])))
    )
    return BuiltTable(frame, markdown + _tokens_seen_markdown(frame))


def build_paper_comparison(request: TableRequest) -> BuiltTable:
    """The run's averages next to the published numbers."""
    frame = paper_comparison_table(
        request.optional_scores(),
        request.backbones,
        run_pools=request.run_pools,
        source=request.source,
        task_datasets=request.task_datasets,
    )
    return BuiltTable(frame, _paper_comparison_markdown(frame, request.backbones))


# --------------------------------------------------------------------------- N-way
_NWAY_WEIGHT_COLUMNS = [
    "model", "task", "method", "position", "language", "n_points", "weight_mean",
    "weight_std", "negative_share", "candidates",
]  # fmt: skip


def nway_weights_table(scores: pd.DataFrame) -> pd.DataFrame:
    """The weights each ``LA-k`` chose on validation, by position in its sum.

    Position 0 is English, 1 the related language of LA, 2 the next nearest, and so on
    (the languages differ per target: the table lists those that occur). Per
    (model, task, method, position): the mean and standard deviation of the chosen
    weight over targets and seeds, the share of negative weights (a box search) and the
    mean number of candidates scored on validation.
    """
    scoped = select_metric(
        scores[(scores["scenario"] == "zero_shot_nway") & scores["method"].str.match(r"LA-\d+$")]
    )
    rows = []
    for row in scoped[scoped["split"] == "test"].itertuples(index=False):
        labels, weights = parse_weights(row.adapters)
        for position, (label, weight) in enumerate(zip(labels, weights, strict=True)):
            rows.append(
                dict(model=row.model, task=row.task, method=row.method, target=row.target,
                     seed=row.seed, position=position, language=label, weight=weight)
            )  # fmt: skip
    keys = ["model", "task", "method"]
    points = pd.DataFrame(rows, columns=[*keys, "target", "seed", "position", "language", "weight"])
    validation = scoped[scoped["split"] == "validation"]
    per_job = validation.groupby([*keys, "target", "seed"]).size().rename("n").reset_index()
    candidates = per_job.groupby(keys)["n"].mean()
    out = []
    for (model, task, method, position), group in points.groupby([*keys, "position"]):
        mean, std = mean_std(group["weight"])
        out.append(
            dict(model=model, task=task, method=method, position=int(position),
                 language="/".join(sorted(set(group["language"]))),
                 n_points=len(group), weight_mean=mean, weight_std=std,
                 negative_share=float((group["weight"] < 0).mean()),
                 candidates=float(candidates.get((model, task, method), math.nan)))
        )  # fmt: skip
    return pd.DataFrame(out, columns=_NWAY_WEIGHT_COLUMNS)


def _nway_weights_markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return ""
    display = pd.DataFrame(
        {
            "Task": frame["task"],
            "Model": frame["model"],
            "Method": frame["method"],
            "Position": ["English" if p == 0 else f"related #{p}" for p in frame["position"]],
            "Languages": frame["language"],
            "Weight": [
                format_mean_std(m, s, 2)
                for m, s in zip(frame["weight_mean"], frame["weight_std"], strict=True)
            ],
            "Negative": [f"{100 * x:.0f}%" for x in frame["negative_share"]],
            "Candidates scored": [format_fixed(x, 1) for x in frame["candidates"]],
        }
    )
    return (
        "\n## Chosen weights (mean ± std over targets and seeds)\n\n"
        "LA-k = θ_init + Σ wᵢτᵢ over English (position 0) and the k nearest related "
        "languages (related #1 is LA's partner, then by URIEL distance); the weights were "
        "searched on validation with nevergrad's CMA-ES, starting from LA's λ*.\n\n"
        + markdown_table(display)
    )


def build_nway_table(request: TableRequest) -> BuiltTable:
    """The N-way scenario's table (LA-k next to LA, pEA, pRA) and its chosen weights."""
    built = build_scenario_table(request)
    weights = nway_weights_table(request.scores())
    return BuiltTable(built.frame, built.markdown + _nway_weights_markdown(weights), built.latex)


def build_label_free(request: TableRequest) -> BuiltTable:
    """Test score at each label-free selector's λ against the labelled λ, and the regret."""
    long, summary = label_free_table(request.paths("scores"), request.paths("label_free"))
    decimals = score_decimals(long["score"])
    per_job = pd.DataFrame(
        {
            "Scenario": long["scenario"],
            "Model": long["model"],
            "Task": long["task"],
            "Target": long["target"],
            "Curve": long["method"],
            "Selector": long["selector"],
            "λ": [format_fixed(v, 2) for v in long["lam"]],
            "Test": [format_fixed(v, decimals) for v in long["score"]],
            "Labelled λ": [format_fixed(v, 2) for v in long["labelled_lam"]],
            "Labelled test": [format_fixed(v, decimals) for v in long["labelled"]],
            "Regret": [format_fixed(v, decimals) for v in long["regret"]],
        }
    )
    means = pd.DataFrame(
        {
            "Scenario": summary["scenario"],
            "Selector": summary["selector"],
            "Mean regret": [format_fixed(v, decimals) for v in summary["mean_regret"]],
            "≥ labelled": [f"{v:.0%}" for v in summary["at_least_labelled"]],
            "Jobs": summary["jobs"],
        }
    )
    markdown = (
        "# Choosing λ without target labels\n\n"
        "The papers choose λ on labelled target-language validation data. Here each "
        "selector chooses it without reading a target label: `mlm_loss` (lowest "
        "masked-LM loss of the merged language adapter on held-out target text), "
        "`entropy` (lowest mean prediction entropy on unlabelled target validation "
        "inputs), `fixed_0.5` (λ = 0.5, ACL §5.1). Regret = labelled λ's test score − "
        "the selector's (points of the main metric, mean over seeds; negative: the "
        "selector did better).\n\n## Mean regret per selector\n\n"
        + markdown_table(means)
        + "\n## Per target\n\n"
        + markdown_table(per_job)
    )
    frame = pd.concat(
        [long.assign(row="job"), summary.assign(row="mean")], ignore_index=True, sort=False
    )
    return BuiltTable(frame, markdown)


# --------------------------------------------------------------------------- registry
def scenario_inputs(config: Config, table: str) -> dict[str, list[str]]:
    """A scenario table reads that scenario's scores."""
    return {"scores": score_paths(config, [table])}


def ties_inputs(config: Config, table: str) -> dict[str, list[str]]:
    """TIES compares with LA: its scores plus the zero-shot scores of the TIES tasks."""
    tasks = configured_scenarios(config).get(table, {}).get("tasks") or []
    zero_shot = [p for t in tasks for p in score_paths(config, ["zero_shot"], task=t)]
    return {"scores": list(dict.fromkeys(score_paths(config, [table]) + zero_shot))}


def all_scenario_inputs(config: Config, table: str) -> dict[str, list[str]]:
    """Tables over every scenario read the scores of all scenario tables."""
    return {"scores": score_paths(config, list(SCENARIO_TABLES))}


def zero_shot_inputs(config: Config, table: str) -> dict[str, list[str]]:
    """Tables of the zero-shot λ curves read the zero-shot scores."""
    return {"scores": score_paths(config, ["zero_shot"])}


def zero_shot_wanted(config: Config, table: str) -> bool:
    """Made when the config runs the zero-shot scenario with a full λ curve."""
    full = scenario_search(config, "zero_shot") == "full"
    return full and scenario_wanted(config, "zero_shot")


def related_inputs(config: Config, table: str) -> dict[str, list[str]]:
    """The related-languages table reads the TSV the ``related_languages`` rule writes."""
    return {"related": [in_setup(RELATED_TSV, config)]}


def token_budget_inputs(config: Config, table: str) -> dict[str, list[str]]:
    """Budget scores, and the adapters whose metadata records the tokens they saw."""
    return {
        "scores": score_paths(config, BUDGET_SCENARIOS),
        "adapters": budget_adapter_dirs(config),
    }


def label_free_table_inputs(config: Config, table: str) -> dict[str, list[str]]:
    """The label-free choices and the score files of the same jobs (the labelled λ)."""
    return {
        "scores": [job.output for job in label_free_jobs(config)],
        "label_free": label_free_outputs(config),
    }


def label_free_wanted(config: Config, table: str) -> bool:
    """Made when ``label_free.scenarios`` plans at least one job."""
    return bool(label_free_jobs(config))


def scenario_wanted(config: Config, table: str) -> bool:
    """A scenario's table is made when the config runs the scenario and it has scores."""
    return table in configured_scenarios(config) and bool(score_paths(config, [table]))


def gains_wanted(config: Config, table: str) -> bool:
    """Gains exist when a scenario with a baseline comparison is configured."""
    configured = configured_scenarios(config)
    return any(s in configured for s in SCENARIO_TABLES if LAYOUTS[s].comparisons)


def always_wanted(config: Config, table: str) -> bool:
    """Tables every run ends with."""
    return True


def token_budget_wanted(config: Config, table: str) -> bool:
    """The token-budget table needs a budget task with a target among its languages."""
    tasks = budget_settings(config).get("tasks") or []
    return any(budget_targets(config, task) for task in tasks)


def no_options(config: Config) -> dict[str, Any]:
    """Most tables take no options from the config."""
    return {}


def paper_options(config: Config) -> dict[str, Any]:
    """The paper comparison matches the run's backbones, pools and source to the papers',
    and the tasks to the datasets the papers name (core tasks: ``eval_dataset``; an
    arm's own task keys: :data:`~langarith.arm_registry.ARM_PAPER_TASKS`)."""
    romance = configured_scenarios(config).get("romance") or {}
    related_pool = related_pool_of(config)
    pools = {s: related_pool for s in ("zero_shot", "enhancement", "low_resource", "ties")}
    pools["romance"] = [str(lang) for lang in romance.get("pool") or []]
    core_tasks = {
        str(task): str(spec.get("eval_dataset") or spec.get("train_dataset") or task)
        for task, spec in (config.get("tasks") or {}).items()
    }
    return {
        "backbones": paper_backbones(config),
        "run_pools": pools,
        "source": str(config.get("source_language", "en")),
        "task_datasets": {"": core_tasks, **arm_paper_tasks(config)},
    }


def paper_inputs(config: Config, table: str) -> dict[str, list[str]]:
    """The scores of every scenario table and of the registered arms."""
    scores = all_scenario_inputs(config, table)["scores"] + arm_scores(config)
    return {"scores": list(dict.fromkeys(scores))}


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """One table of the report: its builder and what the workflow's rule needs.

    ``rule``/``stem`` are set for tables that share one rule with a wildcard (the
    scenario tables: rule ``scenario_table``, files ``{scenario}.csv``); by default a
    table ``x`` has rule ``x_table`` and files ``x.csv``, ``x.md`` (and ``x.tex``).
    """

    build: Callable[[TableRequest], BuiltTable]
    inputs: Callable[[Config, str], dict[str, list[str]]]
    wanted: Callable[[Config, str], bool]
    caption: str
    subcategory: str
    latex: bool = False
    options: Callable[[Config], dict[str, Any]] = no_options
    rule: str = ""
    stem: str = ""
    mem_mb: int = 2000
    runtime: int = 10

    @property
    def formats(self) -> tuple[str, ...]:
        """The file formats written, the first one shown in the Snakemake report."""
        return ("csv", "md", "tex") if self.latex else ("csv", "md")


_SCENARIO_TABLE = TableSpec(
    build_scenario_table,
    scenario_inputs,
    scenario_wanted,
    caption="scenario_table.rst",
    subcategory="Scenarios",
    latex=True,
    rule="scenario_table",
    stem="{scenario}",
)

#: Every table the report writes, in the order a config's outputs list them. Adding a
#: table: a ``build_x(request) -> BuiltTable`` function and one line here.
TABLES: dict[str, TableSpec] = {
    **dict.fromkeys(SCENARIO_TABLES, _SCENARIO_TABLE),
    "ties": dataclasses.replace(_SCENARIO_TABLE, inputs=ties_inputs),
    "zero_shot_nway": dataclasses.replace(_SCENARIO_TABLE, build=build_nway_table),
    "gains": TableSpec(build_gains, all_scenario_inputs, gains_wanted, "gains.rst", "Gains"),
    "related_languages": TableSpec(
        build_related_languages,
        related_inputs,
        always_wanted,
        "related_languages.rst",
        "Related languages",
        mem_mb=1000,
        runtime=5,
    ),
    "token_budget": TableSpec(
        build_token_budget,
        token_budget_inputs,
        token_budget_wanted,
        "token_budget_table.rst",
        "Token budget",
    ),
    "lambda_subgrids": TableSpec(
        build_lambda_subgrids,
        zero_shot_inputs,
        zero_shot_wanted,
        "lambda_subgrids.rst",
        "λ grids",
    ),
    "label_free": TableSpec(
        build_label_free,
        label_free_table_inputs,
        label_free_wanted,
        "label_free.rst",
        "Label-free λ",
    ),
    "paper_comparison": TableSpec(
        build_paper_comparison,
        paper_inputs,
        always_wanted,
        "paper_comparison.rst",
        "Paper comparison",
        options=paper_options,
    ),
}


def table_spec(table: str) -> TableSpec:
    """The registry entry of a table, or an error that lists the known tables."""
    return lookup(TABLES, table, "table")


def table_inputs(config: Config, table: str) -> dict[str, list[str]]:
    """Named inputs of one table's rule (``scores``, ``related``, ``adapters``)."""
    return table_spec(table).inputs(config, table)


def table_outputs(config: Config) -> dict[str, dict[str, str]]:
    """Tables a config ends with: name → {format: path}."""
    return {
        name: {ext: in_setup(TABLE.format(table=name, ext=ext), config) for ext in spec.formats}
        for name, spec in TABLES.items()
        if spec.wanted(config, name)
    }


# --------------------------------------------------------------------------- writing
def _write_built(table: str, built: BuiltTable, outputs: Mapping[str, Any]) -> list[Path]:
    if "tex" in outputs and built.latex is None:
        raise LangarithError(f"table {table!r} has no LaTeX version; drop the 'tex' output")
    write_csv(built.frame, outputs["csv"])
    write_text(built.markdown, outputs["md"])
    written = [Path(outputs["csv"]), Path(outputs["md"])]
    if "tex" in outputs:
        write_text(built.latex or "", outputs["tex"])
        written.append(Path(outputs["tex"]))
    return written


def write_table(
    table: str,
    inputs: Mapping[str, Any] | Any,
    outputs: Mapping[str, Any] | Any,
    *,
    backbones: Mapping[str, str] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    run_pools: Mapping[str, Sequence[str]] | None = None,
    source: str = "en",
    notes: Sequence[str] = (),
    task_datasets: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Path]:
    """Build one table and write it: the entry point of the Snakemake table rules.

    Args:
        table: a name in :data:`TABLES`.
        inputs: named inputs: ``scores`` (score CSVs), ``related`` (the related-languages
            TSV), ``adapters`` (token-budget adapter folders); each table uses its own.
        outputs: named outputs ``csv`` and ``md`` (and ``tex`` for the paper-style ones).
        backbones: run model → paper model, for ``paper_comparison`` (empty: demo).
        run_pools, source: the run's pools per scenario and its source language, for
            ``paper_comparison`` (see :func:`paper_comparison_table`).
        n_resamples, seed: of the bootstrap intervals.
        notes: lines a table adds under itself (the arms' skipped targets).
        task_datasets: scenario → run task → its dataset, for ``paper_comparison``.

    Returns the paths written.
    """
    spec = table_spec(table)
    outputs = named_paths(outputs)
    missing = [k for k in ("csv", "md") if k not in outputs]
    if missing:
        raise LangarithError(f"table {table!r} needs the outputs {missing}")
    named = {key: path_list(value) for key, value in named_paths(inputs).items()}
    pools = None if run_pools is None else {k: list(v) for k, v in dict(run_pools).items()}
    request = TableRequest(
        table,
        named,
        dict(backbones or {}),
        n_resamples,
        seed,
        run_pools=pools,
        source=source,
        notes=tuple(notes),
        task_datasets=task_datasets,
    )
    written = _write_built(table, spec.build(request), outputs)
    title = table.replace("_", " ").capitalize()
    log.info("table %s: %s", title, ", ".join(map(str, written)))
    return written
