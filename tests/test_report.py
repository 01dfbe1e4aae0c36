"""Tables, figures, statistics and the report rules, on synthetic score CSVs.

The fixtures write score files in the evaluation's format (docs/interfaces.md,
``langarith.evaluate.score_files``): validation rows hold each merge's whole λ curve, test
rows the λ chosen on validation and the single-adapter baselines. Every score is a
known function of its key, and the expected table values are recomputed here from the
rows the generator wrote, independently of the report code.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from docutils.core import publish_parts
from jinja2 import Environment, StrictUndefined
from report_toys import TOY_FIGURE, TOY_TABLE

from langarith import LangarithError, related
from langarith.evaluate.label_free import LabelFreeRow, label_free_jobs, output_of, write_label_free
from langarith.evaluate.scenarios import plan_jobs, score_outputs
from langarith.plan import related_targets
from langarith.report import inputs, paper, rules, tables
from langarith.report.cli import register_cli, summary
from langarith.report.figures import (
    FIGURES,
    cosine_figure,
    lambda_curves_figure,
    paper_cosine_figure,
    paper_cosine_matrix,
    relative_bars_figure,
    sparsity_figure,
    token_budget_figure,
    vector_cosines_figure,
    write_figure,
)
from langarith.report.scores import (
    adapter_languages,
    canonical_method,
    chosen_points,
    find_score_files,
    parse_budget,
    primary_metric,
    read_scores,
)
from langarith.report.stats import bootstrap_ci, mean_std
from langarith.report.tables import (
    SCENARIO_TABLES,
    TABLES,
    _gains_display,
    gains_table,
    scenario_points,
    scenario_table,
    write_table,
)

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = [
    "scenario",
    "model",
    "task",
    "target",
    "seed",
    "method",
    "adapters",
    "lambda",
    "top_k",
    "split",
    "metric",
    "score",
]
GRID = [round(0.05 * i, 2) for i in range(21)]
TIES_GRID = [round(0.8 + 0.1 * i, 1) for i in range(11)]
MODELS = ("tinybert", "tinyxlmr")
SEEDS = (1, 2, 3)
RELATED = {"de": "es", "es": "it", "ru": "bg", "it": "es", "pt": "es", "bg": "ru", "uk": "ru"}
METRICS = {"ner": ("f1",), "ner_uk": ("f1",), "nli": ("accuracy",), "qa": ("f1", "exact_match")}


# --------------------------------------------------------------------------- generator
def _h(*key: object) -> int:
    return zlib.crc32(repr(key).encode())


def _curve(key: tuple, grid: list[float]) -> tuple[dict[float, float], float]:
    """A validation curve with a unique best λ on the grid, and that λ."""
    best = grid[_h("best", *key) % len(grid)]
    base = 40 + (_h("base", *key) % 3000) / 100
    return {lam: base + 6 - 20 * (lam - best) ** 2 for lam in grid}, best


def _test_score(key: tuple) -> float:
    return 35 + (_h("test", *key) % 4000) / 100


def job_rows(scenario, model, task, target, seed, *, baselines=(), curves=(), mix=()):
    """Rows of one job: baselines [(method, adapter)], curves [(method, (a, b), grid, top_k)]."""
    rows, chosen = [], {}

    def add(method, adapters, lam, top_k, split, score):
        for metric in METRICS[task]:
            value = score - (10 if metric == "exact_match" else 0)
            rows.append(
                dict(
                    scenario=scenario,
                    model=model,
                    task=task,
                    target=target,
                    seed=seed,
                    method=method,
                    adapters=adapters,
                    top_k=top_k,
                    split=split,
                    metric=metric,
                    score=round(value, 4),
                    **{"lambda": lam},
                )
            )

    for method, adapter in baselines:
        add(method, adapter, None, None, "test", _test_score((model, task, target, seed, adapter)))
    for method, pair, grid, top_k in curves:
        key = (model, task, target, seed, method, pair, top_k)
        values, best = _curve(key, grid)
        for lam, value in values.items():
            add(method, ",".join(pair), lam, top_k, "validation", value)
        chosen[method] = (best, values[best], ",".join(pair), _test_score(key))
        add(method, ",".join(pair), best, top_k, "test", _test_score(key))
    if mix:
        name = max(mix, key=lambda m: chosen[m][1])
        best, _, adapters, test = chosen[name]
        add("MIX", adapters, best, None, "test", test)
    return rows


def write_rows(root: Path, rows: list[dict]) -> list[Path]:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    paths = []
    for key, group in frame.groupby(["scenario", "model", "task", "target", "seed"]):
        scenario, model, task, target, seed = key
        path = root / "scores" / scenario / model / task / target / f"seed{seed}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        group.to_csv(path, index=False)
        paths.append(path)
    return paths


def synthetic_rows(*, models=MODELS, seeds=SEEDS) -> list[dict]:
    rows = []
    for model in models:
        for seed in seeds:
            for task, targets in (
                ("ner", ["de", "es", "ru"]),
                ("nli", ["de", "es", "ru"]),
                ("qa", ["de", "es"]),
            ):
                for t in targets:
                    rel = RELATED[t]
                    la = ("LA", ("en", rel), GRID, None)
                    rows += job_rows(
                        "zero_shot",
                        model,
                        task,
                        t,
                        seed,
                        baselines=[("pEA", "en"), ("pRA", rel)],
                        curves=[la],
                    )
                    rows += job_rows(
                        "enhancement",
                        model,
                        task,
                        t,
                        seed,
                        baselines=[("T", t)],
                        curves=[
                            ("LA(T,en)", (t, "en"), GRID, None),
                            ("LA(T,REL)", (t, rel), GRID, None),
                        ],
                        mix=("LA(T,en)", "LA(T,REL)"),
                    )
                    if task == "ner":
                        ties = [("TIES", ("en", rel), TIES_GRID, k) for k in (20.0, 80.0)]
                        rows += job_rows("ties", model, task, t, seed, curves=[la, *ties])
            for task in ("ner", "nli"):
                rows += job_rows(
                    "romance",
                    model,
                    task,
                    "es",
                    seed,
                    baselines=[("T", "es")],
                    curves=[("LA(T,l2)", ("es", l2), GRID, None) for l2 in ("it", "pt")],
                )
            for tokens in (1000, 10000):
                label = f"pt/budget{tokens}"
                rows += job_rows(
                    "low_resource",
                    model,
                    "nli",
                    "pt",
                    seed,
                    baselines=[("T", label)],
                    curves=[
                        ("LA(T,en)", (label, "en"), GRID, None),
                        ("LA(T,REL)", (label, "es"), GRID, None),
                    ],
                )
            rows += job_rows(
                "low_resource",
                model,
                "nli",
                "pt",
                seed,
                baselines=[("T", "pt")],
                curves=[("LA(T,en)", ("pt", "en"), GRID, None)],
            )
    return rows


def write_budget_metadata(root: Path, models=MODELS, seeds=SEEDS, lang="pt") -> list[Path]:
    dirs = []
    for model in models:
        for tokens in (1000, 10000):
            for seed in seeds:
                folder = (
                    root / "adapters" / model / "lang" / lang / f"budget{tokens}" / f"seed{seed}"
                )
                folder.mkdir(parents=True, exist_ok=True)
                seen = tokens - 10 * seed
                (folder / "metadata.json").write_text(json.dumps({"tokens_seen": seen}))
                dirs.append(folder)
    return dirs


def write_analysis(root: Path, model: str) -> tuple[Path, Path]:
    langs = ["bg", "de", "en", "es", "it", "pt", "ru"]
    rng = np.random.default_rng(0)
    rows = []
    for seed in (1, 2):
        for a in langs:
            for b in langs:
                value = 1.0 if a == b else 0.2 + 0.1 * ({a, b} == {"es", "it"}) + 0.02 * seed
                rows.append(
                    {"lang_a": f"{a}/seed{seed}", "lang_b": f"{b}/seed{seed}", "cosine": value}
                )
    cosine = root / "analysis" / model / "cosine.csv"
    cosine.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(cosine, index=False)
    spars = []
    for lang in langs:
        for seed in (1, 2):
            q = np.sort(np.abs(rng.standard_cauchy(2000)) * 1e-3)
            top = q.max()
            row = {
                "label": f"{lang}/seed{seed}",
                "n_params": 2000,
                "max_abs": top,
                "mean_abs": q.mean(),
                "std": q.std(),
                "frac_zero": 0.0,
            }
            for t in (1e-3, 1e-2, 1e-1):
                row[f"frac_below_{t:g}"] = float((q < t * top).mean())
            for p in (0.5, 0.9, 0.99):
                row[f"q{p * 100:g}_abs"] = float(np.quantile(q, p))
            spars.append(row)
    sparsity = root / "analysis" / model / "sparsity.csv"
    pd.DataFrame(spars).to_csv(sparsity, index=False)
    tasks = pd.DataFrame(
        {
            "lang_a": ["ner", "ner", "nli"],
            "lang_b": ["nli", "qa", "qa"],
            "cosine": [0.02, 0.01, 0.03],
        }
    )
    tasks.to_csv(root / "analysis" / model / "task_cosine.csv", index=False)
    return cosine, sparsity


def write_related(root: Path) -> Path:
    path = root / "related_languages.tsv"
    lines = [
        "target\trelated\tdistance\toverridden\tpaper_acl\tagrees_acl\tpaper_ecai\tagrees_ecai",
        "de\tes\t0.41\tfalse\tfr\tfalse\tfr\tfalse",
        "es\tit\t0.20\tfalse\tfr\tfalse\tit\ttrue",
        "ru\tbg\t0.15\ttrue\tbg\ttrue\tbg\ttrue",
        "it\tes\t0.20\tfalse\t\t\t\t",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    rows = synthetic_rows()
    paths = write_rows(root, rows)
    truth = pd.DataFrame(rows, columns=COLUMNS)
    return {"root": root, "paths": paths, "truth": truth, "scores": read_scores(paths)}


def _truth_test(truth, scenario, metric_of=None):
    test = truth[(truth["scenario"] == scenario) & (truth["split"] == "test")]
    keep = test["metric"].isin(["f1", "accuracy"])
    return test[keep]


# --------------------------------------------------------------------------- reading
def test_read_scores_names_the_missing_column(tmp_path):
    path = tmp_path / "seed1.csv"
    pd.DataFrame({"scenario": ["zero_shot"], "model": ["m"], "task": ["ner"]}).to_csv(path)
    with pytest.raises(LangarithError, match=r"lacks the column\(s\).*'target'"):
        read_scores([path])


def test_read_scores_refuses_text_scores_and_missing_files(tmp_path):
    rows = job_rows("zero_shot", "m", "ner", "de", 1, baselines=[("pEA", "en")])
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["score"] = frame["score"].astype(object)
    frame.loc[0, "score"] = "high"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(LangarithError, match="is not a number"):
        read_scores([tmp_path / "bad.csv"])
    with pytest.raises(LangarithError, match="does not exist"):
        read_scores([tmp_path / "missing.csv"])


def test_method_names_budgets_and_adapters_are_understood():
    assert canonical_method("LA(T, REL)") == "LA(T,REL)"
    assert canonical_method("la(t,en)") == "LA(T,en)"
    assert canonical_method("LA(T,MIX)") == "MIX"
    assert canonical_method("TIES-80") == "TIES"
    assert canonical_method("something new") == "something new"
    assert parse_budget("pt/budget10000,en") == 10000
    assert parse_budget("pt@budget10k") == 10000
    assert np.isnan(parse_budget("pt,en"))
    assert adapter_languages("pt/budget10000,en") == ["pt", "en"]
    assert adapter_languages("en+it") == ["en", "it"]
    assert primary_metric(["exact_match", "f1"]) == "f1"
    assert primary_metric(["accuracy"]) == "accuracy"


# --------------------------------------------------------------------------- statistics
def test_mean_std_is_the_sample_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    mean, std = mean_std([5.0])
    assert mean == 5.0 and np.isnan(std)


def test_bootstrap_ci_on_constructed_cases():
    constant = bootstrap_ci(np.full((4, 3), 2.5))
    assert (constant.mean, constant.low, constant.high) == (2.5, 2.5, 2.5)
    assert constant.excludes_zero

    # One seed: a bootstrap over languages only; its interval matches the normal one.
    values = np.random.default_rng(1).normal(1.0, 2.0, size=(60, 1))
    ci = bootstrap_ci(values, n_resamples=20_000)
    half = 1.96 * values.std() / np.sqrt(len(values))
    assert ci.mean == pytest.approx(values.mean())
    assert ci.low == pytest.approx(values.mean() - half, abs=0.12)
    assert ci.high == pytest.approx(values.mean() + half, abs=0.12)

    # Gains of +1 and -1 in equal share: the interval straddles 0, not a real gain.
    balanced = bootstrap_ci(np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]]))
    assert balanced.low < 0 < balanced.high and not balanced.excludes_zero
    assert balanced.n_targets == 4 and balanced.n_seeds == 2

    # A seed effect shared by every language widens the interval (crossed resampling).
    languages = np.linspace(0.8, 1.2, 10)[:, None]
    shared = bootstrap_ci(languages + np.array([[-1.0, 0.0, 1.0]]))
    independent = bootstrap_ci(languages + np.zeros((1, 3)))
    assert shared.high - shared.low > 3 * (independent.high - independent.low)

    # Deterministic; missing cells are left out.
    assert bootstrap_ci(values) == bootstrap_ci(values)
    gappy = np.array([[1.0, np.nan], [3.0, 5.0]])
    assert bootstrap_ci(gappy).mean == pytest.approx(3.0)
    with pytest.raises(LangarithError):
        bootstrap_ci(np.full((2, 2), np.nan))


# --------------------------------------------------------------------------- tables
def _expected(truth, scenario, model, task, method, top_k=None, budget_label=None):
    test = truth[
        (truth["scenario"] == scenario)
        & (truth["split"] == "test")
        & (truth["model"] == model)
        & (truth["task"] == task)
        & (truth["method"] == method)
        & (truth["metric"] != "exact_match")
    ]
    if top_k is not None:
        test = test[test["top_k"] == top_k]
    grid = test.pivot_table(index="target", columns="seed", values="score")
    per_seed = grid.mean(axis=0)
    return grid, per_seed.mean(), per_seed.std(ddof=1), test


def test_zero_shot_table_holds_the_scores_averages_and_chosen_lambda(synthetic, tmp_path):
    out = {"csv": tmp_path / "zs.csv", "md": tmp_path / "zs.md", "tex": tmp_path / "zs.tex"}
    write_table("zero_shot", {"scores": synthetic["paths"]}, out)
    table = pd.read_csv(out["csv"], keep_default_na=False, na_values=[""])
    truth = synthetic["truth"]
    for model in MODELS:
        for task in ("ner", "nli", "qa"):
            for method in ("pEA", "pRA", "LA"):
                grid, avg, std, test = _expected(truth, "zero_shot", model, task, method)
                rows = table[
                    (table["model"] == model)
                    & (table["task"] == task)
                    & (table["method"] == method)
                ]
                avg_row = rows[rows["target"] == "AVG"].iloc[0]
                assert avg_row["mean"] == pytest.approx(avg)
                assert avg_row["std"] == pytest.approx(std)
                assert avg_row["n_targets"] == len(grid) and avg_row["n_seeds"] == 3
                assert avg_row["metric"] == ("accuracy" if task == "nli" else "f1")
                for target in grid.index:
                    cell = rows[rows["target"] == target].iloc[0]
                    assert cell["mean"] == pytest.approx(grid.loc[target].mean())
                    assert cell["std"] == pytest.approx(grid.loc[target].std(ddof=1))
                    if method == "LA":
                        lams = test[test["target"] == target]["lambda"].astype(float)
                        assert cell["lambda_mean"] == pytest.approx(lams.mean())
                        # The chosen λ is the validation curve's best point.
                        valid = truth[
                            (truth["scenario"] == "zero_shot")
                            & (truth["split"] == "validation")
                            & (truth["model"] == model)
                            & (truth["task"] == task)
                            & (truth["target"] == target)
                            & (truth["metric"] != "exact_match")
                        ]
                        best = valid.loc[valid.groupby("seed")["score"].idxmax(), "lambda"]
                        assert sorted(best.astype(float)) == sorted(lams)
    md = out["md"].read_text()
    assert "λ* LA" in md and " ± " in md and "Gain over the baseline" in md
    assert "better proxy" in md
    tex = out["tex"].read_text()
    assert "\\begin{tabular}" in tex and "$\\pm$" in tex and "\\midrule" in tex


def test_a_one_seed_table_says_it_has_no_spread(tmp_path):
    """The demo runs one seed: its notes say so instead of "± over seeds (1 seeds)"."""
    paths = write_rows(tmp_path / "results", synthetic_rows(seeds=(1,)))
    out = {"csv": tmp_path / "zs.csv", "md": tmp_path / "zs.md", "tex": tmp_path / "zs.tex"}
    write_table("zero_shot", {"scores": paths}, out)
    md = out["md"].read_text()
    assert "one seed, so no standard deviation" in md and "(1 seeds)" not in md
    table = pd.read_csv(out["csv"], keep_default_na=False, na_values=[""])
    assert set(table["n_seeds"].dropna()) == {1}


def test_gains_are_paired_and_against_the_better_proxy(synthetic):
    truth = synthetic["truth"]
    points = scenario_points(synthetic["scores"], "zero_shot")
    gains = gains_table(points, "zero_shot")
    row = gains[
        (gains["model"] == "tinybert")
        & (gains["task"] == "ner")
        & (gains["baseline"] == "better proxy")
    ].iloc[0]
    la, _, _, _ = _expected(truth, "zero_shot", "tinybert", "ner", "LA")
    pea, _, _, _ = _expected(truth, "zero_shot", "tinybert", "ner", "pEA")
    pra, _, _, _ = _expected(truth, "zero_shot", "tinybert", "ner", "pRA")
    expected = (la - np.maximum(pea, pra)).to_numpy()
    assert row["gain"] == pytest.approx(expected.mean())
    assert row["ci_low"] <= row["gain"] <= row["ci_high"]
    assert row["real"] == (row["ci_low"] > 0 or row["ci_high"] < 0)
    assert (row["n_targets"], row["n_seeds"]) == (3, 3)
    assert set(gains["baseline"]) == {"pEA", "pRA", "better proxy"}


def test_a_gain_from_one_language_and_one_seed_gets_no_verdict(tmp_path):
    """One cell (the demo's low-resource Ukrainian at one seed) has no spread to test."""
    rows = [r for r in synthetic_rows(seeds=(1,)) if r["target"] in ("de", "es")]
    two = read_scores(write_rows(tmp_path / "two", rows))
    one = read_scores(write_rows(tmp_path / "one", [r for r in rows if r["target"] == "es"]))
    for scores, cells in ((two, 2), (one, 1)):
        gains = gains_table(scenario_points(scores, "zero_shot"), "zero_shot")
        ner = gains[(gains["model"] == "tinybert") & (gains["task"] == "ner")]
        assert set(ner["n_targets"] * ner["n_seeds"]) == {cells}
        shown = _gains_display(ner, 2)
        if cells == 1:
            assert not ner["real"].any()
            assert set(shown["Real?"]) == {"not tested (one language, one seed)"}
            assert set(shown["95% CI"]) == {"–"}
        else:
            assert list(ner["real"]) == list((ner["ci_low"] > 0) | (ner["ci_high"] < 0))
            assert all(ci.startswith("[") for ci in shown["95% CI"])


def test_enhancement_ties_and_low_resource_tables(synthetic, tmp_path):
    truth = synthetic["truth"]
    for name in ("enhancement", "ties", "low_resource"):
        out = {
            "csv": tmp_path / f"{name}.csv",
            "md": tmp_path / f"{name}.md",
            "tex": tmp_path / f"{name}.tex",
        }
        write_table(name, {"scores": synthetic["paths"]}, out, n_resamples=500)
    enh = pd.read_csv(tmp_path / "enhancement.csv")
    assert set(enh["method"]) == {"T", "LA(T,en)", "LA(T,REL)", "MIX-val", "MIX"}
    # MIX-val is the score files' MIX (chosen by validation per seed)
    _, avg, std, _ = _expected(truth, "enhancement", "tinyxlmr", "nli", "MIX")
    row = enh[
        (enh["model"] == "tinyxlmr")
        & (enh["task"] == "nli")
        & (enh["method"] == "MIX-val")
        & (enh["target"] == "AVG")
    ].iloc[0]
    assert (row["mean"], row["std"]) == (pytest.approx(avg), pytest.approx(std))
    # MIX (the paper's) is, per target, the arm with the better seed-averaged test score
    cells = enh[(enh["target"] != "AVG") & (enh["model"] == "tinyxlmr") & (enh["task"] == "nli")]
    by = cells.set_index(["method", "target"])["mean"]
    for target in set(cells["target"]):
        arms = max(by[("LA(T,en)", target)], by[("LA(T,REL)", target)])
        assert by[("MIX", target)] == pytest.approx(arms)
        assert by[("MIX", target)] >= by[("MIX-val", target)] - 1e-9
    assert "oracle ceiling" in (tmp_path / "enhancement.md").read_text()

    ties = pd.read_csv(tmp_path / "ties.csv")
    assert sorted(ties["top_k"].dropna().unique()) == [20.0, 80.0]
    _, avg, _, test = _expected(truth, "ties", "tinybert", "ner", "TIES", top_k=20.0)
    row = ties[(ties["model"] == "tinybert") & (ties["top_k"] == 20.0) & (ties["target"] == "AVG")]
    assert row["mean"].iloc[0] == pytest.approx(avg)
    assert row["lambda_mean"].iloc[0] == pytest.approx(test["lambda"].astype(float).mean())
    assert "TIES top-k 20%" in (tmp_path / "ties.md").read_text()

    low = pd.read_csv(tmp_path / "low_resource.csv")
    assert sorted(low["budget"].dropna().unique()) == [1000.0, 10000.0]
    assert low["budget"].isna().any()  # the full-corpus adapter
    assert "@ 1k whitespace tokens" in (tmp_path / "low_resource.md").read_text()


def test_mix_oracle_takes_the_arm_with_the_better_mean_test_score():
    rows = []
    # target de: LA(T,en) wins seed 1 by a little, LA(T,REL) wins seed 2 by a lot
    for seed, en, rel, val in ((1, 60.0, 59.0, "LA(T,en)"), (2, 50.0, 58.0, "LA(T,en)")):
        for method, score in (("LA(T,en)", en), ("LA(T,REL)", rel), ("MIX", {"LA(T,en)": en}[val])):
            rows.append(
                dict(scenario="enhancement", model="m", task="ner", metric="f1", method=method,
                     top_k=np.nan, budget=np.nan, target="de", seed=seed, score=score,
                     partner="", **{"lambda": 0.5})
            )  # fmt: skip
    points = tables.with_mix_variants(pd.DataFrame(rows))
    mix = points[points["method"] == "MIX"].sort_values("seed")
    assert mix["score"].tolist() == [59.0, 58.0]  # LA(T,REL): mean 58.5 > 55.0
    assert points[points["method"] == "MIX-val"]["score"].tolist() == [60.0, 50.0]
    assert tables.LAYOUTS["enhancement"].methods[-2:] == ("MIX-val", "MIX")


def test_romance_table_pivots_l2(synthetic, tmp_path):
    out = {"csv": tmp_path / "r.csv", "md": tmp_path / "r.md", "tex": tmp_path / "r.tex"}
    write_table("romance", {"scores": synthetic["paths"]}, out)
    table = pd.read_csv(out["csv"], keep_default_na=False, na_values=[""])
    merged = table[table["method"] == "LA(T,l2)"]
    assert set(merged["partner"]) == {"it", "pt"}
    truth = synthetic["truth"]
    test = truth[
        (truth["scenario"] == "romance")
        & (truth["split"] == "test")
        & (truth["model"] == "tinybert")
        & (truth["task"] == "nli")
        & (truth["adapters"] == "es,pt")
    ]
    cell = merged[
        (merged["model"] == "tinybert")
        & (merged["task"] == "nli")
        & (merged["partner"] == "pt")
        & (merged["target"] == "es")
    ].iloc[0]
    assert cell["mean"] == pytest.approx(test["score"].mean())
    md = out["md"].read_text()
    assert "T alone" in md and "best l2" in md and "| es " in md


def test_token_budget_table_reads_tokens_seen(synthetic, tmp_path):
    dirs = write_budget_metadata(tmp_path)
    out = {"csv": tmp_path / "tb.csv", "md": tmp_path / "tb.md"}
    write_table("token_budget", {"scores": synthetic["paths"], "adapters": dirs}, out)
    table = pd.read_csv(out["csv"])
    row = table[
        (table["model"] == "tinybert") & (table["budget"] == 1000) & (table["method"] == "T")
    ]
    assert row["tokens_seen"].iloc[0] == pytest.approx(1000 - 20)  # mean of 990, 980, 970
    md = out["md"].read_text()
    assert "| 1k" in md and "full corpus" in md and "Tokens seen" in md


def test_related_languages_table(tmp_path):
    out = {"csv": tmp_path / "rel.csv", "md": tmp_path / "rel.md"}
    write_table("related_languages", {"related": write_related(tmp_path)}, out)
    md = out["md"].read_text()
    assert "ACL list for 1 of 3" in md and "ECAI list for 2 of 3" in md
    assert "Overridden in the config: 1" in md
    with pytest.raises(LangarithError, match="lacks the column"):
        bad = tmp_path / "bad.tsv"
        bad.write_text("lang\tpick\nde\tes\n")
        write_table("related_languages", {"related": bad}, out)


def test_paper_numbers_are_consistent_and_sourced():
    numbers = paper.load()
    assert set(numbers["paper"]) == {"acl", "ecai", "xmod", "ta-crosslingual", "tlr"}
    assert (numbers["table"] != "").all() and (numbers["note"] != "").all()
    look = numbers.set_index(["paper", "table", "model", "task", "language", "method", "top_k"])
    assert look.loc[("ecai", "Table 1", "xlmr", "ner", "AVG", "LA", ""), "score"] == 61.20
    assert look.loc[("ecai", "Table 2", "mbert", "qa", "AVG", "MIX", ""), "score"] == 60.22
    assert look.loc[("acl", "Table 3", "xlmr", "ner", "AVG", "TIES", "20"), "score"] == 52.94
    assert look.loc[("ecai", "Table 4", "xlmr", "ner", "AVG", "TIES", "80"), "score"] == 59.88
    xmod = ("xmod", "Table 2", "xmod-base-60-265k")
    assert look.loc[(*xmod, "qa", "AVG", "X-MOD", ""), "score"] == 72.8
    assert (
        look.loc[("xmod", "Table 3", "xmod-base-60-265k", "mlqa", "AVG", "SHARED", ""), "score"]
        == 60.7
    )
    # Every printed AVG is the mean of its row's per-language numbers (one flagged exception).
    scores = numbers[
        numbers["metric"].isin(["f1", "accuracy"]) & (numbers["scenario"] != "romance")
    ]
    for key, group in scores.groupby(["paper", "table", "model", "task", "method", "top_k"]):
        langs, avg = group[group["language"] != "AVG"], group[group["language"] == "AVG"]
        if len(langs) and len(avg):
            if "differs from the mean" in avg["note"].iloc[0]:
                continue
            # X-MOD prints one decimal
            tolerance = 0.051 if key[0] == "xmod" else 0.011
            assert langs["score"].mean() == pytest.approx(avg["score"].iloc[0], abs=tolerance), key
    # The texts' claims about the Romance tables hold for the copied numbers.
    romance = numbers[numbers["scenario"] == "romance"]
    spread = romance.groupby(["paper", "task", "language"])["score"].agg(
        lambda s: s.max() - s.min()
    )
    assert spread[("ecai", "ner", "es")] == pytest.approx(0.40)  # "only a 0.40 F1 score"
    assert spread[("acl", "nli", "es")] == pytest.approx(0.29)  # "around 0.3"
    flagged = scores[scores["note"].str.contains("differs from the mean")]
    # ECAI Table 1, mBERT NER LA: 62.77 printed, 62.92 from the row; X-MOD Table 2 NER
    # X-MOD (62.8 printed, 62.28), XNLI SHARED (72.5, 71.31) and Table 3 MLQA X-MOD
    assert len(flagged[flagged["paper"] != "xmod"]) == 1
    assert len(flagged[flagged["paper"] == "xmod"]) == 3


def test_paper_comparison_demo_states_the_setup_differs(synthetic, tmp_path):
    out = {"csv": tmp_path / "pc.csv", "md": tmp_path / "pc.md"}
    write_table("paper_comparison", {"scores": synthetic["paths"]}, out, backbones={})
    assert "setup differs" in out["md"].read_text()
    table = pd.read_csv(out["csv"])
    assert table["run_mean"].isna().all() and not table["comparable"].any()
    demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    real = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert paper.paper_backbones(demo) == {}
    assert paper.paper_backbones(real) == {
        "mbert": "mbert",
        "xlmr": "xlmr",
        "60-265k": "xmod-base-60-265k",  # the X-MOD arm's released checkpoint
    }


ECAI_POOL = "ar bg de el es fr hi ru sw tr ur vi zh fa it".split()


def _paper_run(tmp_path, partner_of, seeds=(1, 2)):
    """Zero-shot QA scores of xlmr on XQuAD's languages with the given partners."""
    targets = "ar de el es hi ru tr vi zh".split()  # XQuAD's languages in the papers
    rows = []
    for seed in seeds:
        for t in targets:
            rel = partner_of(t)
            rows += job_rows(
                "zero_shot",
                "xlmr",
                "qa",
                t,
                seed,
                baselines=[("pEA", "en"), ("pRA", rel)],
                curves=[("LA", ("en", rel), GRID, None)],
            )
        for t in targets[:3]:
            rows += job_rows("zero_shot", "xlmr", "nli", t, seed, baselines=[("pEA", "en")])
    return rows, write_rows(tmp_path, rows)


def _comparison(tmp_path, paths, pool):
    out = {"csv": tmp_path / "pc.csv", "md": tmp_path / "pc.md"}
    pools = {"zero_shot": pool, "enhancement": pool, "ties": pool, "romance": []}
    write_table(
        "paper_comparison", {"scores": paths}, out, backbones={"xlmr": "xlmr"}, run_pools=pools
    )
    return pd.read_csv(out["csv"], keep_default_na=False, na_values=[""]), out["md"].read_text()


def _row(table, paper_table, task, method, language, model="xlmr"):
    return table[
        (table["paper_table"] == paper_table)
        & (table["paper_model"] == model)
        & (table["task"] == task)
        & (table["method"] == method)
        & (table["language"] == language)
    ].iloc[0]


def test_paper_comparison_matches_a_paper_run(tmp_path):
    ecai = related.paper_related_languages()["ecai"]
    rows, paths = _paper_run(tmp_path, ecai.get)
    table, md = _comparison(tmp_path, paths, ECAI_POOL)
    row = _row(table, "ECAI Table 1", "qa", "LA", "AVG")
    truth = pd.DataFrame(rows, columns=COLUMNS)
    run = truth[
        (truth["split"] == "test")
        & (truth["method"] == "LA")
        & (truth["task"] == "qa")
        & (truth["metric"] == "f1")
    ]
    assert row["run_mean"] == pytest.approx(run["score"].mean())
    assert row["difference"] == pytest.approx(run["score"].mean() - 68.43)
    assert row["comparable"] and pd.isna(row["why_not"])
    ar = _row(table, "ECAI Table 1", "qa", "pRA", "ar")
    assert ar["run_partner"] == "fa" and ar["comparable"]
    nli = _row(table, "ECAI Table 1", "nli", "pEA", "AVG")
    assert not nli["comparable"] and "other languages" in nli["why_not"]
    mbert = table[table["paper_model"] == "mbert"]
    matchable = mbert[~mbert["why_not"].str.startswith("published only")]
    assert mbert["run_mean"].isna().all() and matchable["why_not"].str.contains("mbert").all()
    assert "Why not" in md and "ECAI Table 1" in md


def test_paper_comparison_says_why_other_partners_pools_and_seeds_do_not_compare(tmp_path):
    acl = related.paper_related_languages()["acl"]
    _, paths = _paper_run(tmp_path, acl.get)
    acl_pool = ECAI_POOL[:13]
    table, _ = _comparison(tmp_path, paths, acl_pool)
    la = _row(table, "ECAI Table 1", "qa", "LA", "AVG")
    assert not la["comparable"]
    assert "other partners" in la["why_not"] and "ar (run sw, paper fa)" in la["why_not"]
    assert "other pool: the run lacks fa it" in la["why_not"]
    # pEA uses no related language: neither partner nor pool matters
    pea = _row(table, "ECAI Table 1", "qa", "pEA", "de")
    assert pea["comparable"], pea["why_not"]
    de = _row(table, "ECAI Table 1", "qa", "LA", "de")  # de -> fr in both papers
    assert "other partners" not in de["why_not"] and "other pool" in de["why_not"]
    # ACL Table 3 states three runs: two seeds are not comparable
    ties = tables.paper_comparison_table(
        read_scores(paths),
        {"xlmr": "xlmr"},
        papers=paper.load().assign(
            scenario=lambda f: f["scenario"].where(f["table"] != "Table 3", "zero_shot"),
            task=lambda f: f["task"].where(f["table"] != "Table 3", "qa"),
        ),
        run_pools={"zero_shot": acl_pool},
    )
    pick = ties[(ties["paper_table"] == "ACL Table 3") & (ties["method"] == "LA")].iloc[0]
    assert "2 seeds, the paper 3" in pick["why_not"] and not pick["comparable"]
    # three seeds, the ACL pairs and pool: comparable, partners from ACL Table 2
    _, paths = _paper_run(tmp_path / "three", acl.get, seeds=(1, 2, 3))
    ties = tables.paper_comparison_table(
        read_scores(paths),
        {"xlmr": "xlmr"},
        papers=paper.load().assign(
            scenario=lambda f: f["scenario"].where(f["table"] != "Table 3", "zero_shot"),
            task=lambda f: f["task"].where(f["table"] != "Table 3", "qa"),
        ),
        run_pools={"zero_shot": acl_pool},
    )
    pick = ties[(ties["paper_table"] == "ACL Table 3") & (ties["method"] == "LA")].iloc[0]
    assert pick["comparable"], pick["why_not"]
    assert "partners: the paper's related-language table" in pick["note"]


# --------------------------------------------------------------------------- figures
def _pixels_vary(path: Path) -> bool:
    from matplotlib.image import imread

    image = imread(path)
    return float(image[..., :3].std()) > 0.05


def test_lambda_curve_figure_has_one_axis_per_target(synthetic, tmp_path):
    out = {
        "png": tmp_path / "lambda_curves_ner_tinybert.png",
        "pdf": tmp_path / "lambda_curves_ner_tinybert.pdf",
    }
    figure = write_figure(
        "lambda_curves", {"scores": synthetic["paths"]}, out, model="tinybert", task="ner"
    )
    assert len(figure.axes) == 3
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[0].startswith("de: LA(en, es)") and "λ* = " in titles[0]
    for ax in figure.axes:
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert len(dashed) == 2  # the two single adapters
        assert any(line.get_marker() == "v" for line in ax.get_lines())  # chosen λ
    assert out["png"].stat().st_size > 30_000 and out["pdf"].stat().st_size > 10_000
    assert _pixels_vary(out["png"])
    with pytest.raises(LangarithError, match="no zero_shot scores"):
        lambda_curves_figure(synthetic["scores"], "pos", "tinybert")


def test_cosine_sparsity_and_token_budget_figures(synthetic, tmp_path):
    cosine, sparsity = write_analysis(tmp_path, "tinybert")
    figure = cosine_figure(cosine, "tinybert")
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert len(texts) == 49 and texts.count("0.33") == 2  # es-it: mean of seeds 0.32 and 0.34
    write_figure(
        "cosine_similarity",
        {"cosine": cosine},
        {"png": tmp_path / "c.png", "pdf": tmp_path / "c.pdf"},
        model="tinybert",
    )
    assert (tmp_path / "c.png").stat().st_size > 30_000 and _pixels_vary(tmp_path / "c.png")

    figure = sparsity_figure(sparsity, "tinybert")
    assert len(figure.axes) == 2 and len(figure.axes[0].get_lines()) == 7
    histogram = tmp_path / "hist.csv"
    pd.DataFrame(
        {
            "label": ["es/seed1"] * 3,
            "log10_lo": [-3, -2, -1],
            "log10_hi": [-2, -1, 0],
            "count": [5, 3, 1],
            "fraction": [0.5, 0.3, 0.1],
        }
    ).to_csv(histogram, index=False)
    assert len(sparsity_figure(histogram, "tinybert").axes[0].get_lines()) == 1
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"label": ["es"], "other": [1]}).to_csv(bad, index=False)
    with pytest.raises(LangarithError, match="neither histogram columns"):
        sparsity_figure(bad, "tinybert")

    figure = token_budget_figure(synthetic["scores"], "nli", "tinybert")
    assert len(figure.axes) == 1 and figure.axes[0].get_xscale() == "log"
    # x is the budget in whitespace tokens (the papers' and the config's unit)
    assert figure.axes[0].get_xlabel() == "token budget (whitespace tokens)"
    assert sorted({x for line in figure.axes[0].get_lines() for x in line.get_xdata()})
    write_figure(
        "sparsity",
        {"sparsity": sparsity},
        {"png": tmp_path / "s.png", "pdf": tmp_path / "s.pdf"},
        model="tinybert",
    )
    assert (tmp_path / "s.png").stat().st_size > 30_000


# --------------------------------------------------------------------------- summary CLI
def test_summary_prints_the_zero_shot_averages(synthetic, capsys):
    text = summary(synthetic["root"], n_resamples=500)
    assert "Zero-shot" in text and "tinybert" in text and "LA − better proxy" in text
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers())
    args = parser.parse_args(["summary", "--results", str(synthetic["root"]), "--resamples", "200"])
    assert args.func(args) == 0
    assert "pEA" in capsys.readouterr().out
    with pytest.raises(LangarithError, match="no score files"):
        summary(synthetic["root"] / "nowhere")


# --------------------------------------------------------------------------- workflow side
def test_report_outputs_of_the_demo_config():
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    # the demo's unseen language: NER through ner_uk, whose only target is uk
    assert "figures/token_budget_ner_uk_tinyxlmr.png" in rules.report_outputs(config)
    # budget adapters on the XLM-R-shaped backbone only (token_budget.models), as in the papers
    assert "figures/token_budget_ner_uk_tinybert.png" not in rules.report_outputs(config)
    config["token_budget"]["languages"] = ["pt"]
    assert "figures/token_budget_ner_uk_tinyxlmr.png" not in rules.report_outputs(config)
    # XNLI has no Portuguese: a token-budget study on pt with nli has no target.
    config["token_budget"]["tasks"] = ["nli"]
    assert "figures/token_budget_nli_tinyxlmr.png" not in rules.report_outputs(config)
    config["token_budget"]["languages"] = ["es"]
    outputs = rules.report_outputs(config)
    for name in (
        "zero_shot.csv",
        "zero_shot.tex",
        "enhancement.md",
        "romance.tex",
        "ties.csv",
        "gains.csv",
        "related_languages.md",
        "token_budget.csv",
        "paper_comparison.md",
        "lambda_subgrids.md",
    ):
        assert f"results/tables/{name}" in outputs
    assert "results/tables/low_resource.csv" in outputs  # uk, unseen by the backbones
    del config["scenarios"]["low_resource"]
    assert "results/tables/low_resource.csv" not in rules.report_outputs(config)
    for name in (
        "lambda_curves_qa_tinyxlmr",
        "cosine_similarity_tinybert",
        "sparsity_tinyxlmr",
        "token_budget_nli_tinyxlmr",
        "zero_shot_bars_ner_tinybert",
        "enhancement_bars_qa_tinyxlmr",
        "cosine_paper_tinybert",
        "vector_cosines_tinyxlmr",
    ):
        assert f"figures/{name}.png" in outputs and f"figures/{name}.pdf" in outputs
    scores = tables.table_inputs(config, "zero_shot")["scores"]
    assert scores and all(
        re.fullmatch(r"results/scores/zero_shot/\w+/\w+/\w+/seed\d+\.csv", p) for p in scores
    )
    budget = tables.table_inputs(config, "token_budget")
    assert budget["adapters"] and all("/budget" in p for p in budget["adapters"])
    assert budget["scores"] and all("/low_resource/" in p for p in budget["scores"])


def test_score_paths_are_the_evaluation_plan():
    """The report asks for exactly the score files the evaluation stage plans."""
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    assert inputs.score_paths(config) == [str(p) for p in score_outputs(config)]
    assert set(inputs.score_paths(config, ["romance"])) == {
        p for p in score_outputs(config) if "/romance/" in p
    }


def test_report_rules_register_outputs_with_captions():
    """Each generated rule: a captioned report() output, a log and a benchmark."""
    specs = rules.report_rules()
    names = [spec.name for spec in specs]
    assert len(names) == len(set(names)) == len(TABLES) - len(SCENARIO_TABLES) + 1 + len(FIGURES)
    assert {"lambda_subgrids_table", "zero_shot_bars_figure", "enhancement_bars_figure"} <= set(
        names
    )
    for spec in specs:
        assert (ROOT / "workflow" / "report" / spec.caption).is_file(), spec.caption
        assert spec.category in ("Tables", "Figures")
        assert spec.log.startswith("logs/") and spec.benchmark.startswith("benchmarks/")
        assert set(spec.outputs()) == set(spec.formats)
    scenario_rule = next(spec for spec in specs if spec.name == "scenario_table")
    assert scenario_rule.constraints == {"scenario": "|".join(SCENARIO_TABLES)}
    assert scenario_rule.outputs()["tex"] == "results/tables/{scenario}.tex"
    text = (ROOT / "rules" / "report.smk").read_text()
    for directive in ("log:", "benchmark:", "resources:", "conda:", "script:", "report("):
        assert directive in text, directive
    assert (ROOT / "workflow" / "report" / "workflow.rst").is_file()


def _schema_enums(node: object) -> list[list]:
    """Every ``enum`` list anywhere in a JSON schema."""
    if isinstance(node, dict):
        found = [node["enum"]] if isinstance(node.get("enum"), list) else []
        return found + [e for value in node.values() for e in _schema_enums(value)]
    if isinstance(node, list):
        return [e for value in node for e in _schema_enums(value)]
    return []


def test_the_schema_agrees_with_the_registries():
    """A schema enum of table or figure names lists exactly the registered ones.

    Today the schema names no table or figure (nothing to keep in step); the check
    starts to bite when it does. Each scenario the schema allows has a table.
    """
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    only_tables = set(TABLES) - set(SCENARIO_TABLES)
    for enum in _schema_enums(schema):
        if set(enum) & only_tables:
            assert set(enum) == set(TABLES), enum
        if set(enum) & set(FIGURES):
            assert set(enum) == set(FIGURES), enum
    assert set(schema["properties"]["scenarios"]["properties"]) == set(SCENARIO_TABLES)


def test_captions_render_without_rst_errors():
    env = Environment(undefined=StrictUndefined)
    captions = sorted((ROOT / "workflow" / "report").glob("*.rst"))
    assert len(captions) >= 9
    for path in captions:
        for scenario in SCENARIO_TABLES:
            wildcards = SimpleNamespace(scenario=scenario, task="ner", model="tinybert")
            text = env.from_string(path.read_text()).render(
                snakemake=SimpleNamespace(wildcards=wildcards, config={})
            )
            assert text.strip(), path.name
            # halt_level 2: an rst warning (e.g. |x| read as a substitution) is an error
            publish_parts(text, writer="html", settings_overrides={"halt_level": 2})


def test_report_scripts_are_thin():
    for name in ("report_tables.py", "report_figures.py"):
        lines = (ROOT / "workflow" / "scripts" / name).read_text().strip().splitlines()
        assert len(lines) <= 12 and any("rule_step(snakemake)" in line for line in lines)


# --------------------------------------------------------------------------- registries
@pytest.fixture
def toys(monkeypatch):
    """The toy table and figure of tests/report_toys.py, registered for one test."""
    monkeypatch.setitem(TABLES, "toy", TOY_TABLE)
    monkeypatch.setitem(FIGURES, "toy", TOY_FIGURE)
    yield
    assert "toy" in TABLES  # removed by monkeypatch after the test


def test_a_toy_table_and_figure_are_written_from_score_files(toys, synthetic, tmp_path):
    out = {"csv": tmp_path / "toy.csv", "md": tmp_path / "toy.md"}
    write_table("toy", {"scores": synthetic["paths"]}, out)
    table = pd.read_csv(out["csv"])
    truth = synthetic["truth"]
    expected = truth[truth["split"] == "test"].groupby("method").size()
    assert dict(zip(table["method"], table["size"], strict=True)) == expected.to_dict()
    assert out["md"].read_text().startswith("# Toy")
    pictures = {"png": tmp_path / "toy_tinybert.png", "pdf": tmp_path / "toy_tinybert.pdf"}
    figure = write_figure("toy", {"scores": synthetic["paths"]}, pictures, model="tinybert")
    assert figure.axes[0].get_title() == "toy tinybert"
    assert pictures["png"].stat().st_size > 1000 and pictures["pdf"].is_file()


def test_a_toy_table_and_figure_are_in_the_outputs_and_rules(toys):
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    outputs = rules.report_outputs(config)
    assert {"results/tables/toy.csv", "results/tables/toy.md"} <= set(outputs)
    assert "results/tables/toy.tex" not in outputs
    assert {"figures/toy_tinybert.png", "figures/toy_tinyxlmr.pdf"} <= set(outputs)
    by_name = {spec.name: spec for spec in rules.report_rules()}
    assert by_name["toy_table"].outputs() == {
        "csv": "results/tables/toy.csv",
        "md": "results/tables/toy.md",
    }
    assert by_name["toy_figure"].pattern == "figures/toy_{model}.{ext}"
    assert by_name["toy_table"].params(config) == {
        "script": "report_tables",
        "table": "toy",
        "options": {},
    }


def test_a_toy_table_and_figure_are_planned_by_snakemake(tmp_path):
    """A Snakefile that registers the toys plans their rules (``snakemake -n``)."""
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    rows = [row for row in _plan_rows(config) if row["scenario"] == "zero_shot"]
    write_rows(tmp_path / "results", rows)
    (tmp_path / "Snakefile").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "import report_toys\n\nreport_toys.register()\n\n"
        'configfile: "config.yaml"\n\n'
        f'include: "{ROOT}/rules/common.smk"\n'
        f'include: "{ROOT}/rules/report.smk"\n\n'
        'rule all:\n    input:\n        "results/tables/toy.md",\n'
        '        "figures/toy_tinybert.png",\n'
    )
    command = [sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path)]
    command += ["--snakefile", str(tmp_path / "Snakefile")]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-4000:]
    plan = run.stdout + run.stderr
    assert "rule toy_table:" in plan and "rule toy_figure:" in plan
    assert "output: figures/toy_tinybert.png, figures/toy_tinybert.pdf" in plan
    assert "log: logs/tables/toy.log" in plan


def test_write_table_and_figure_name_the_registered_ones(tmp_path):
    with pytest.raises(LangarithError, match="Unknown table 'nope'.*paper_comparison"):
        write_table("nope", {}, {"csv": tmp_path / "a.csv", "md": tmp_path / "a.md"})
    with pytest.raises(LangarithError, match="Unknown figure 'nope'.*token_budget"):
        write_figure("nope", {}, {"png": tmp_path / "a.png"}, model="m")


def _curve_rows(seed: int, curve: dict[float, tuple[float, float]], method: str = "LA"):
    """Validation and test rows of one LA curve: λ → (validation score, test score)."""
    rows = []
    for lam, (valid, test) in curve.items():
        for split, score in (("validation", valid), ("test", test)):
            rows.append(
                {
                    "scenario": "zero_shot",
                    "model": "m",
                    "task": "ner",
                    "target": "es",
                    "seed": seed,
                    "method": method,
                    "adapters": "en,pt",
                    "lambda": lam,
                    "top_k": None,
                    "split": split,
                    "metric": "f1",
                    "score": score,
                }
            )
    return rows


#: Validation ties at λ 0.3 and 0.7 (the search takes the larger, 0.7); the best test
#: score is at 0.5 and the worst at 0.3, so taking the best test row, or breaking the
#: tie toward the smaller λ, gives another number.
TIED_CURVE = {0.3: (70.0, 10.0), 0.5: (60.0, 40.0), 0.7: (70.0, 30.0)}


def test_a_test_curve_takes_the_validation_choice_with_the_searchs_tie_rule():
    """The report chooses λ as the evaluation does (evaluate.search.best_lambda)."""
    frame = pd.DataFrame(_curve_rows(1, TIED_CURVE), columns=COLUMNS)
    frame["budget"] = np.nan
    picked = chosen_points(frame)
    assert picked[["lambda", "score"]].values.tolist() == [[0.7, 30.0]]


def test_every_table_takes_the_validation_choice(tmp_path):
    """Score files with whole test curves: every table reports the validation choice.

    Seed 1 ties on validation (λ 0.3 and 0.7 → 0.7, test 30); seed 2 peaks on validation
    at 0.5 (test 20) while its best test λ is 0.9 (test 90). Independent expected values:
    LA = mean(30, 20) = 25 at λ̄ = 0.6; pEA (λ = 1) and pRA (λ = 0) are single rows.
    """
    rows = _curve_rows(1, TIED_CURVE)
    rows += _curve_rows(2, {0.1: (10.0, 5.0), 0.5: (80.0, 20.0), 0.9: (50.0, 90.0)})
    for seed, (pea, pra) in ((1, (12.0, 14.0)), (2, (16.0, 18.0))):
        for method, adapter, score in (("pEA", "en", pea), ("pRA", "pt", pra)):
            row = dict(rows[0], seed=seed, method=method, adapters=adapter, split="test")
            rows.append(dict(row, **{"lambda": None, "score": score}))
    paths = write_rows(tmp_path / "results", rows)

    out = {"csv": tmp_path / "zs.csv", "md": tmp_path / "zs.md", "tex": tmp_path / "zs.tex"}
    write_table("zero_shot", {"scores": paths}, out)
    table = pd.read_csv(out["csv"])
    la = table[(table["method"] == "LA") & (table["target"] == "es")].iloc[0]
    assert la["mean"] == pytest.approx(25.0)
    assert la["lambda_mean"] == pytest.approx(0.6)

    gains = {"csv": tmp_path / "g.csv", "md": tmp_path / "g.md"}
    write_table("gains", {"scores": paths}, gains)
    frame = pd.read_csv(gains["csv"])
    by_baseline = frame[frame["method"] == "LA"].set_index("baseline")["gain"]
    assert by_baseline["pEA"] == pytest.approx(25.0 - 14.0)
    assert by_baseline["pRA"] == pytest.approx(25.0 - 16.0)

    comparison = {"csv": tmp_path / "p.csv", "md": tmp_path / "p.md"}
    write_table("paper_comparison", {"scores": paths}, comparison, backbones={"m": "xlmr"})
    run = pd.read_csv(comparison["csv"])
    la_run = run[(run["method"] == "LA") & (run["language"] == "es") & run["run_mean"].notna()]
    assert len(la_run) > 0
    assert la_run["run_mean"].tolist() == pytest.approx([25.0] * len(la_run))


# --------------------------------------------------------------------------- slow: report
def _plan_rows(config) -> list[dict]:
    """Synthetic rows for every evaluation job the evaluation stage plans for a config."""
    related = {t: RELATED.get(t, "es") for t in related_targets(config) + ["pt"]}
    rows = []
    for job in plan_jobs(config, related=related):
        baselines = [(b.method, b.adapter) for b in job.baselines]
        curves = [(c.method, tuple(c.adapters), list(c.grid), c.top_k) for c in job.curves]
        if job.reuse_methods:
            curves.insert(0, ("LA", (config["source_language"], job.related), GRID, None))
        rows += job_rows(
            job.scenario,
            job.model,
            job.task,
            job.target,
            job.seed,
            baselines=baselines,
            curves=curves,
            mix=job.mix,
        )
    return rows


def write_label_free_choices(root: Path, config: dict, rows: list[dict]) -> None:
    """Label-free CSVs of the config's jobs: every selector at the curve's test λ."""
    for job in label_free_jobs(config):
        picked = [
            LabelFreeRow(job.scenario, job.model, job.task, job.target, job.seed, r["method"],
                         r["adapters"], selector, r["lambda"], "choice", r["metric"], r["score"])
            for r in rows
            if (r["scenario"], r["model"], r["task"], r["target"], r["seed"], r["split"])
            == (job.scenario, job.model, job.task, job.target, job.seed, "test")
            and r["lambda"] is not None and r["method"] != "MIX"
            for selector in ("mlm_loss", "entropy", "fixed_0.5")
        ]  # fmt: skip
        write_label_free(picked, root / output_of(job, config))


@pytest.mark.slow
def test_report_rules_build_the_report_from_synthetic_results(tmp_path):
    """Run the report rules alone on synthetic results and build ``report.zip``."""
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["seeds"] = [1, 2]
    # the arms' tables are built in their own tests from real scores (test_tlr,
    # test_fullft, test_xmod)
    for arm in ("tlr", "fullft", "xmod"):
        config.pop(arm, None)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    results = tmp_path / "results"
    rows = [r for r in _plan_rows(config)]
    wanted = set(inputs.score_paths(config))
    written = write_rows(results, rows)
    assert {str(p.relative_to(tmp_path)) for p in written} >= wanted
    models = [m["name"] for m in config["models"]]
    for model in models:
        write_analysis(results, model)
        for lang in config["token_budget"]["languages"]:
            write_budget_metadata(results, models=[model], seeds=config["seeds"], lang=lang)
    write_related(results)
    write_label_free_choices(tmp_path, config, rows)
    for folder in inputs.budget_adapter_dirs(config):
        assert (tmp_path / folder / "metadata.json").is_file(), folder
    (tmp_path / "Snakefile").write_text(
        f'configfile: "config.yaml"\n'
        f'report: "{ROOT}/workflow/report/workflow.rst"\n\n'
        f'include: "{ROOT}/rules/common.smk"\n'
        f'include: "{ROOT}/rules/report.smk"\n\n'
        "from langarith.report import report_outputs\n\n"
        "rule all:\n    input:\n        report_outputs(config),\n"
    )
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "2",
        "--directory",
        str(tmp_path),
        "--snakefile",
        str(tmp_path / "Snakefile"),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-4000:]
    for path in rules.report_outputs(config):
        assert (tmp_path / path).is_file(), path
    run = subprocess.run(
        [*command, "--report", str(tmp_path / "report.zip")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "ERROR/" not in run.stderr, run.stderr[-4000:]  # captions are valid rst
    names = zipfile.ZipFile(tmp_path / "report.zip").namelist()
    shown = [p for p in rules.report_outputs(config) if p.endswith((".png", ".csv"))]
    assert len(shown) > 10
    for path in shown:  # every table (its CSV) and every figure (its PNG) is in the report
        assert any(n.endswith(Path(path).name) for n in names), path


# --------------------------------------------------------------------------- issue 11
def _one_file(root: Path, seed: int = 1) -> Path:
    """A valid zero-shot score file (pEA, pRA, LA curve) at its workflow path."""
    rows = job_rows(
        "zero_shot",
        "m",
        "ner",
        "de",
        seed,
        baselines=[("pEA", "en"), ("pRA", "es")],
        curves=[("LA", ("en", "es"), GRID, None)],
    )
    (path,) = write_rows(root, rows)
    return path


def _edit_line(path: Path, line: int, column: str, value: str) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[line - 2, column] = value
    frame.to_csv(path, index=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1000000000.0", r"line 3: score 1e\+09 is outside 0-100"),
        ("-0.5", "line 3: score -0.5 is outside 0-100"),
        ("100.5", "line 3: score 100.5 is outside 0-100"),
        ("inf", "line 3: score inf is outside 0-100"),
    ],
)
def test_scores_outside_0_100_are_refused_naming_file_and_row(tmp_path, value, expected):
    path = _one_file(tmp_path)
    _edit_line(path, 3, "score", value)
    with pytest.raises(LangarithError, match=expected) as err:
        read_scores([path])
    assert str(path) in str(err.value)


def test_small_scores_are_not_rescaled(tmp_path):
    """Scores are 0-100: a run whose means are all below 1.5 is shown as it is."""
    path = _one_file(tmp_path)
    frame = pd.read_csv(path)
    frame["score"] = frame["score"] / 100
    frame.to_csv(path, index=False)
    long = scenario_table(read_scores([path]), "zero_shot")
    truth = frame[(frame["split"] == "test") & (frame["method"] == "pEA")]["score"].iloc[0]
    avg = long[(long["method"] == "pEA") & (long["target"] == "AVG")]["mean"].iloc[0]
    assert avg == pytest.approx(truth)
    assert tables.score_decimals([0.5, 0.7]) == 2
    papers = pd.DataFrame(
        [
            dict(
                paper="acl",
                table="Table 1",
                scenario="zero_shot",
                model="mbert",
                task="ner",
                method="pEA",
                top_k="",
                partner="",
                language="de",
                metric="f1",
                score=60.0,
            )
        ]
    )
    compared = tables.paper_comparison_table(
        read_scores([path]), {"m": "mbert"}, papers=papers
    ).iloc[0]
    assert compared["run_mean"] == pytest.approx(truth)  # not x 100
    assert "scaled" not in compared["note"]


def test_conflicting_duplicate_rows_are_refused_identical_ones_collapsed(tmp_path):
    path = _one_file(tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    once = read_scores([_one_file(tmp_path / "clean")])
    assert len(read_scores([path])) == len(once)
    assert len(read_scores([path, path])) == len(once)
    _edit_line(path, len(lines) + 1, "score", "12.5")
    with pytest.raises(LangarithError, match=r"line 2 and .* line \d+ score the same point"):
        read_scores([path])


def test_a_row_whose_seed_disagrees_with_the_file_name_is_refused(tmp_path):
    path = _one_file(tmp_path, seed=1)
    _edit_line(path, 4, "seed", "2")
    with pytest.raises(LangarithError, match="line 4: seed 2 disagrees with the file name seed1"):
        read_scores([path])
    copy = _one_file(tmp_path / "other", seed=2)
    renamed = copy.with_name("seed3.csv")
    copy.rename(renamed)
    with pytest.raises(LangarithError, match="seed 2 disagrees with the file name seed3.csv"):
        read_scores([renamed])


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda b: b[:-4], "ends in the middle of line"),
        (lambda b: b.rstrip(b"\n"), "ends in the middle of line"),
        (lambda b: b.replace(b"\n", b",x\n", 3).replace(b",x\n", b"\n", 2), "has 13 values"),
        (lambda b: b + b"zero_shot,m,ner\n", "has 3 values where the header has 12"),
        (lambda b: b[:200] + b"\xff\xfe" + b[200:], "is not UTF-8 text"),
        (lambda b: b"", "is empty"),
    ],
)
def test_damaged_score_files_are_refused(tmp_path, damage, expected):
    path = _one_file(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(LangarithError, match=expected) as err:
        read_scores([path])
    assert str(path) in str(err.value)


def test_truncated_file_is_not_read_as_a_short_score(tmp_path):
    """The issue's case: a file cut mid-row read its last score 12.5 as 1."""
    path = _one_file(tmp_path)
    _edit_line(path, len(path.read_text().splitlines()), "score", "12.5")
    path.write_bytes(path.read_bytes()[:-4])  # "...,1" left of "12.5\n"
    assert path.read_bytes().endswith(b",1")
    with pytest.raises(LangarithError, match="cut short"):
        read_scores([path])


def _nan_run(root: Path) -> None:
    """Zero-shot scores of 3 languages x 3 seeds in which LA has no score for ru."""
    rows = []
    for seed in (1, 2, 3):
        for target in ("de", "es", "ru"):
            rel = RELATED[target]
            rows += job_rows(
                "zero_shot",
                "m",
                "ner",
                target,
                seed,
                baselines=[("pEA", "en"), ("pRA", rel)],
                curves=[("LA", ("en", rel), GRID, None)],
            )
    for row in rows:
        if row["method"] == "LA" and row["target"] == "ru" and row["split"] == "test":
            row["score"] = float("nan")
    write_rows(root, rows)


def test_nan_rows_make_the_language_count_match_what_was_averaged(tmp_path):
    _nan_run(tmp_path)
    scores = read_scores(find_score_files(tmp_path, ["zero_shot"]))
    long = scenario_table(scores, "zero_shot")
    avg = long[long["target"] == "AVG"].set_index("method")
    assert (avg.at["LA", "n_targets"], avg.at["LA", "of_targets"]) == (2, 3)
    assert (avg.at["pEA", "n_targets"], avg.at["pEA", "of_targets"]) == (3, 3)
    gains = gains_table(scenario_points(scores, "zero_shot"), "zero_shot", n_resamples=200)
    la = gains[gains["method"] == "LA"]
    assert len(la) and not la["complete"].any() and not la["real"].any()
    assert (la["n_targets"] == 2).all() and (la["of_targets"] == 3).all()
    text = summary(tmp_path, n_resamples=200)
    la_cells = [line for line in text.splitlines() if line.startswith("m ")]
    assert la_cells and "(2 of 3 languages)" in la_cells[0]
    assert " *" not in la_cells[0]
    table = tables.build_scenario_table(
        SimpleNamespace(name="zero_shot", scores=lambda: scores, n_resamples=200, seed=0)
    )
    assert "(2 of 3 languages)" in table.markdown and "not tested (2 of 3 languages)" in (
        table.markdown
    )


def test_summary_cli_gives_one_line_for_a_damaged_score_file(tmp_path):
    path = _one_file(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"pEA", b"p\xe9A", 1))
    cli = "import sys; from langarith.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", cli, "summary", "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    assert "is not UTF-8 text" in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------- new paper figures
def test_relative_differences_are_those_of_the_papers_bar_charts(synthetic, tmp_path):
    truth = synthetic["truth"]
    test = truth[(truth["split"] == "test") & (truth["model"] == "tinybert")]
    test = test[(test["task"] == "ner")]
    means = test.groupby(["scenario", "method", "target"])["score"].mean()
    points = tables.scenario_points(synthetic["scores"], "zero_shot")
    points = points[(points["model"] == "tinybert") & (points["task"] == "ner")]
    zs = tables.relative_differences(points, "zero_shot").drop_duplicates("target")
    for target, value in zip(zs["target"], zs["relative"], strict=True):
        better = max(means[("zero_shot", "pEA", target)], means[("zero_shot", "pRA", target)])
        expected = 100 * (means[("zero_shot", "LA", target)] - better) / better
        assert value == pytest.approx(expected)
    points = tables.scenario_points(synthetic["scores"], "enhancement")
    points = points[(points["model"] == "tinybert") & (points["task"] == "ner")]
    enh = tables.relative_differences(points, "enhancement")
    assert set(enh["method"]) == {"T", "LA(T,en)", "LA(T,REL)"}  # no MIX bars
    es = enh[enh["target"] == "es"].iloc[0]["relative"]
    best = max(means[("enhancement", "LA(T,en)", "es")], means[("enhancement", "LA(T,REL)", "es")])
    t = means[("enhancement", "T", "es")]
    assert es == pytest.approx(100 * (best - t) / t)

    for name in ("zero_shot_bars", "enhancement_bars"):
        out = {"png": tmp_path / f"{name}.png", "pdf": tmp_path / f"{name}.pdf"}
        figure = write_figure(
            name, {"scores": synthetic["paths"]}, out, model="tinybert", task="ner"
        )
        labels = [t.get_text() for t in figure.axes[0].texts]
        assert len(labels) == 3 and all(label.endswith("%") for label in labels)
        assert _pixels_vary(out["png"])
    assert f"{zs['relative'].iloc[0]:+.1f}%" in [
        t.get_text()
        for t in relative_bars_figure(synthetic["scores"], "zero_shot", "tinybert", "ner")
        .axes[0]
        .texts
    ]


def test_lambda_subgrids_from_the_runs_own_curves(synthetic, tmp_path):
    out = {"csv": tmp_path / "lg.csv", "md": tmp_path / "lg.md"}
    write_table("lambda_subgrids", {"scores": synthetic["paths"]}, out)
    table = pd.read_csv(out["csv"])
    truth = synthetic["truth"]
    valid = truth[
        (truth["scenario"] == "zero_shot")
        & (truth["split"] == "validation")
        & (truth["method"] == "LA")
        & (truth["model"] == "tinyxlmr")
        & (truth["task"] == "nli")
        & (truth["target"] == "de")
    ]
    expected = {}
    for _, curve in valid.groupby("seed"):
        points = dict(zip(curve["lambda"].astype(float), curve["score"], strict=True))
        full = max(points.values())
        coarse = {lam: v for lam, v in points.items() if round(lam / 0.2, 6) % 1 == 0}
        best = max(coarse, key=lambda lam: (coarse[lam], lam))
        expected.setdefault("step 0.2", []).append(full - coarse[best])
        expected.setdefault("λ = 0.5", []).append(full - points[0.5])
        expected.setdefault("full", []).append(0.0)
    cell = table[
        (table["model"] == "tinyxlmr") & (table["task"] == "nli") & (table["target"] == "de")
    ]
    by = cell.set_index("choice")
    assert by.loc["step 0.2", "validation_loss"] == pytest.approx(np.mean(expected["step 0.2"]))
    assert by.loc["λ = 0.5", "validation_loss"] == pytest.approx(np.mean(expected["λ = 0.5"]))
    full = by.loc[[c for c in by.index if c.startswith("full grid")][0]]
    assert full["validation_loss"] == 0 and full["gain_kept"] == pytest.approx(1.0)
    assert full["n_lambdas"] == 21 and by.loc["step 0.1", "n_lambdas"] == 11
    assert by.loc["step 0.2", "n_lambdas"] == 6 and by.loc["λ = 0.5", "n_lambdas"] == 1
    assert (by["validation_loss"] >= 0).all()
    # the run wrote a test row at the full grid's choice only
    assert np.isfinite(full["test"])
    md = out["md"].read_text()
    assert "Gain kept" in md and "step 0.1" in md and "λ = 0.5" in md


def test_the_papers_cosine_matrix_beside_the_runs(synthetic, tmp_path):
    matrix, asymmetric = paper_cosine_matrix()
    assert list(matrix.index) == "ar bg de el es fr hi ru sw tr ur vi zh".split()
    assert (matrix.to_numpy() == matrix.to_numpy().T).all()
    assert matrix.loc["es", "fr"] == 0.31 and matrix.loc["bg", "ru"] == 0.30
    assert len(asymmetric) == 8 and "zh-ru (column 0.24, row 0.20)" in asymmetric
    cosine, _ = write_analysis(tmp_path, "tinybert")
    figure = paper_cosine_figure(cosine, "tinybert")
    heatmaps = [ax for ax in figure.axes if ax.get_title()]
    assert len(heatmaps) == 2
    assert "8 of 12" in heatmaps[0].get_title() and "tinybert" in heatmaps[1].get_title()
    assert len(heatmaps[0].texts) == 13 * 13 and len(heatmaps[1].texts) == 49
    out = {"png": tmp_path / "cp.png", "pdf": tmp_path / "cp.pdf"}
    write_figure("cosine_paper", {"cosine": cosine}, out, model="tinybert")
    assert _pixels_vary(out["png"])


def test_language_against_task_vector_cosines(synthetic, tmp_path):
    cosine, _ = write_analysis(tmp_path, "tinybert")
    tasks = tmp_path / "task_cosine.csv"
    pd.DataFrame(
        {
            "lang_a": ["ner", "ner", "nli"],
            "lang_b": ["nli", "qa", "qa"],
            "cosine": [0.02, 0.01, 0.03],
        }
    ).to_csv(tasks, index=False)
    figure = vector_cosines_figure(cosine, tasks, "tinybert")
    ax = figure.axes[0]
    from matplotlib.collections import PathCollection

    dots = [c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)]
    assert sorted(len(d) for d in dots) == [3, 21]  # 3 task pairs, 7 languages: 21 pairs
    labels = {t.get_text() for t in ax.texts}
    assert {"ner-nli", "ner-qa", "nli-qa"} <= labels
    assert "papers' language vectors" in labels and "Ilharco et al.'s task vectors" in labels
    out = {"png": tmp_path / "vc.png", "pdf": tmp_path / "vc.pdf"}
    write_figure("vector_cosines", {"cosine": cosine, "task_cosine": tasks}, out, model="tinybert")
    assert _pixels_vary(out["png"])
    one_task = {"tasks": {"ner": {}}, "models": [{"name": "m", "demo": {}}], "seeds": [1]}
    assert FIGURES["vector_cosines"].instances(one_task) == []
