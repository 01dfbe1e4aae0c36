"""The whole workflow on config/test.yaml: every stage, partial re-runs and the report.

One real run (a few minutes on 2 cores) in a temporary directory, shared by the tests
of this module; the re-run tests only ask Snakemake what it *would* do (`--summary`),
so they cannot disturb the finished run.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake_runs import run_snakemake

from langarith.evaluate.search import best_lambda

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "test.yaml"
TRIGGERS = ["--rerun-triggers", "mtime", "params", "input"]

pytestmark = pytest.mark.slow


def _snakemake(workdir: Path, *args: str, config: Path = CONFIG, timeout: int = 1800):
    return run_snakemake(*args, configfile=config, directory=workdir, timeout=timeout)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished run; LANGARITH_E2E_DIR reuses one (for working on these tests)."""
    reuse = os.environ.get("LANGARITH_E2E_DIR")
    workdir = Path(reuse) if reuse else tmp_path_factory.mktemp("e2e")
    result = _snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir


def _pending(workdir: Path, config: Path = CONFIG) -> list[tuple[str, str]]:
    """(rule, output) of every job a run would execute, from ``snakemake --summary``."""
    result = _snakemake(workdir, "-n", "--summary", *TRIGGERS, config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]
    header, body = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    return [(r[col["rule"]], r[col["output_file"]]) for r in body if r[col["plan"]] != "no update"]


def _edited_config(tmp_path: Path, edit) -> Path:
    cfg = yaml.safe_load(CONFIG.read_text())
    edit(cfg)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_nothing_left_to_do_and_nothing_half_written(run_dir):
    assert _pending(run_dir) == []
    leftovers = [p for p in run_dir.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


def test_language_adapters_share_one_init_and_differ(run_dir):
    from langarith.adapter_io import read_adapter

    lang_root = run_dir / "results/adapters/tinybert/lang"
    init = read_adapter(lang_root / "init")
    folders = sorted(lang_root.glob("*/seed1"))
    assert {f.parent.name for f in folders} == {"en", "es", "pt", "ru", "bg"}
    states = {}
    for folder in folders:
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["init_sha256"] == init.sha256
        states[folder.parent.name] = read_adapter(folder).state
    assert any("invertible" in name for name in init.state)
    for name, tensor in init.state.items():
        assert not all(s[name].equal(tensor) for s in states.values()), name
    assert not states["es"][next(iter(init.state))].equal(states["ru"][next(iter(init.state))])


def test_task_adapters_are_adapterhub_folders_with_heads(run_dir):
    from langarith.modeling import load_model_for_task

    for task in ("ner", "nli"):
        folder = run_dir / f"results/adapters/tinybert/task/{task}/seed1"
        assert (folder / "adapter_config.json").exists() and (folder / "head_config.json").exists()
        model = load_model_for_task(
            run_dir / "resources/backbones/tinybert",
            folder,
            run_dir / "results/adapters/tinybert/lang/en/seed1",
        )
        assert task in model.heads


MAIN_METRIC = {"ner": "f1", "nli": "accuracy"}  # config/test.yaml's tasks, by hand


def _score_rows(run_dir: Path) -> pd.DataFrame:
    paths = sorted((run_dir / "results/scores").rglob("*.csv"))
    assert len(paths) == 13  # 6 zero-shot, 3 enhancement, 3 TIES, 1 token budget
    frame = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    return frame[frame["metric"] == frame["task"].map(MAIN_METRIC)]


def _curves(frame: pd.DataFrame):
    """(scenario, ..., method, adapters, top_k) → (validation curve λ → score, test rows)."""
    keys = ["scenario", "model", "task", "target", "seed", "method", "adapters", "top_k"]
    for key, group in frame[frame["lambda"].notna()].groupby(keys, dropna=False):
        validation = group[group["split"] == "validation"]
        curve = dict(zip(validation["lambda"], validation["score"], strict=True))
        assert len(curve) == len(validation), key  # one row per λ
        yield dict(zip(keys, key, strict=True)), curve, group[group["split"] == "test"]


def test_every_curve_takes_the_searchs_lambda_on_test(run_dir):
    """Each curve's test row sits at best_lambda of its validation curve (ties: larger λ)."""
    frame = _score_rows(run_dir)
    la = frame[(frame["scenario"] == "zero_shot") & (frame["method"] == "LA")]
    for _, group in la[la["split"] == "validation"].groupby(["task", "target"]):
        assert sorted(group["lambda"]) == [0.0, 0.25, 0.5, 0.75, 1.0]
    checked = tied = 0
    for key, curve, test in _curves(frame):
        assert len(test) == 1, key
        assert test["lambda"].iloc[0] == best_lambda(curve), (key, curve)
        checked += 1
        tied += max(curve.values()) == sorted(curve.values())[-2] if len(curve) > 1 else 0
    # LA: 6 zero-shot + 3 copied into TIES; enhancement: 2 x 3 + 3 MIX; token budget: 2
    # (no MIX); TIES: 3
    assert checked == 6 + 3 + 6 + 3 + 2 + 3
    assert tied > 0  # curves with equal best scores, where the tie rule decides, are checked
    assert set(frame["method"]) >= {"pEA", "pRA", "LA", "T", "LA(T,en)", "LA(T,REL)", "MIX"}


def test_ties_rows_cover_the_configured_grid_and_test_the_best_point(run_dir):
    config = yaml.safe_load(CONFIG.read_text())["scenarios"]["ties"]
    assert config["lambda_grid"] == {"start": 0.8, "stop": 1.8, "step": 0.5}
    assert config["top_k"] == [20]
    frame = _score_rows(run_dir)
    ties = frame[(frame["scenario"] == "ties") & (frame["method"] == "TIES")]
    for target in ("es", "ru", "bg"):
        rows = ties[ties["target"] == target]
        validation = rows[rows["split"] == "validation"]
        points = set(zip(validation["lambda"], validation["top_k"], strict=True))
        assert points == {(0.8, 20.0), (1.3, 20.0), (1.8, 20.0)}
        assert len(validation) == 3
        curve = dict(zip(validation["lambda"], validation["score"], strict=True))
        best = max(curve, key=lambda lam: (curve[lam], lam))  # the search's rule, by hand
        test = rows[rows["split"] == "test"]
        assert list(zip(test["lambda"], test["top_k"], strict=True)) == [(best, 20.0)]
        # the LA curve of the comparison is the zero-shot job's, copied
        zero = frame[(frame["scenario"] == "zero_shot") & (frame["task"] == "ner")]
        zero = zero[(zero["target"] == target) & (zero["method"] == "LA")]
        copied = frame[(frame["scenario"] == "ties") & (frame["target"] == target)]
        copied = copied[copied["method"] == "LA"]
        columns = ["lambda", "split", "score"]
        assert copied[columns].values.tolist() == zero[columns].values.tolist()


def _top_k(value) -> float | None:
    return None if pd.isna(value) else float(value)


def _expected_cells(frame: pd.DataFrame, scenario: str) -> dict:
    """(task, method, top_k, target) → (mean score, mean λ) over seeds of the test rows.

    The score files' MIX (chosen by validation per seed) is the tables' ``MIX-val``; the
    tables add the ECAI paper's ``MIX``: per (task, target) the arm of LA(T,en) and
    LA(T,REL) with the higher mean test score (ties: LA(T,en)), an oracle ceiling.
    """
    test = frame[(frame["scenario"] == scenario) & (frame["split"] == "test")]
    cells = {}
    keys = ["task", "method", "top_k", "target"]
    for key, group in test.groupby(keys, dropna=False):
        per_seed = group.groupby("seed")[["score", "lambda"]].mean()
        task, method, top_k, target = key
        if scenario == "enhancement" and method == "MIX":
            method = "MIX-val"
        cells[(task, method, _top_k(top_k), target)] = (
            per_seed["score"].mean(),
            per_seed["lambda"].mean(),
        )
    if scenario == "enhancement":
        for task, target in {(t, g) for t, m, _, g in cells if m == "LA(T,en)"}:
            en = cells[(task, "LA(T,en)", None, target)]
            rel = cells.get((task, "LA(T,REL)", None, target))
            if rel is not None:
                cells[(task, "MIX", None, target)] = rel if rel[0] > en[0] else en
    return cells


@pytest.mark.parametrize("scenario", ["zero_shot", "enhancement", "ties"])
def test_tables_hold_the_mean_test_score_at_the_chosen_lambda(run_dir, scenario):
    frame = _score_rows(run_dir)
    expected = _expected_cells(frame, scenario)
    table = pd.read_csv(run_dir / f"results/tables/{scenario}.csv")
    cells = table[table["target"] != "AVG"]
    got = {
        (row.task, row.method, _top_k(row.top_k), row.target): (row.mean, row.lambda_mean)
        for row in cells.itertuples()
    }
    assert set(got) == set(expected)
    for key, (mean, lam) in expected.items():
        assert got[key][0] == pytest.approx(mean, abs=1e-9), key
        assert (np.isnan(lam) and np.isnan(got[key][1])) or got[key][1] == pytest.approx(lam)
    # AVG: the mean over the targets (one seed)
    for row in table[table["target"] == "AVG"].itertuples():
        cell = (row.task, row.method, _top_k(row.top_k))
        means = [m for (t, meth, k, _), (m, _) in expected.items() if (t, meth, k) == cell]
        assert row.n_targets == len(means) == 3
        assert row.mean == pytest.approx(np.mean(means), abs=1e-9)
    assert any(m > 0 for m, _ in expected.values()) or scenario != "zero_shot"


def test_figures_and_related_languages(run_dir):
    for figure in (
        "lambda_curves_ner_tinybert",
        "lambda_curves_nli_tinybert",
        "cosine_similarity_tinybert",
        "sparsity_tinybert",
        "token_budget_nli_tinybert",
    ):
        png = run_dir / f"figures/{figure}.png"
        pixels = plt.imread(png)[..., :3]
        assert pixels.shape[0] > 200 and pixels.shape[1] > 200, figure
        inked = (pixels < 0.9).any(axis=-1).mean()  # not a blank canvas
        colours = len(np.unique(pixels.reshape(-1, 3).round(2), axis=0))
        assert 0.01 < inked < 0.9 and colours > 10, (figure, inked, colours)
        assert (run_dir / f"figures/{figure}.pdf").read_bytes().startswith(b"%PDF"), figure
    related = pd.read_csv(run_dir / "results/related_languages.tsv", sep="\t")
    assert dict(zip(related["target"], related["related"], strict=True))["ru"] == "bg"


def test_changing_one_language_adapter_config_reruns_only_its_dependants(run_dir, tmp_path):
    config = _edited_config(
        tmp_path,
        lambda c: c["language_adapter"].__setitem__("per_language", {"es": {"max_steps": 21}}),
    )
    pending = _pending(run_dir, config)
    trained = {out for rule, out in pending if rule.startswith("train_")}
    assert trained == {
        "results/adapters/tinybert/lang/es/seed1",
        "results/adapters/tinybert/lang/es/budget2000/seed1",
    }
    scores = {out for rule, out in pending if rule == "lambda_grid"}
    assert scores and all("/es/" in out for out in scores)
    assert not any(
        rule in ("backbone", "prepare_dataset", "init_language_adapter") for rule, _ in pending
    )


def test_changing_the_lambda_grid_retrains_nothing(run_dir, tmp_path):
    config = _edited_config(tmp_path, lambda c: c["lambda_grid"].__setitem__("step", 0.5))
    pending = _pending(run_dir, config)
    rules = {rule for rule, _ in pending}
    assert "lambda_grid" in rules
    assert not any(rule.startswith(("train_", "backbone", "prepare_", "init_")) for rule in rules)


def test_changing_one_languages_data_reruns_only_its_adapters(run_dir, tmp_path):
    work = tmp_path / "copy"
    shutil.copytree(run_dir, work, symlinks=True)
    from langarith.data import prepare_demo_dataset, read_manifest

    data = work / "resources/data/wikipedia/ru"
    options = read_manifest(data)["options"]
    prepare_demo_dataset("wikipedia", "ru", data, options={**options, "seed": 7})
    pending = _pending(work)
    trained = {out for rule, out in pending if rule.startswith("train_")}
    assert trained == {"results/adapters/tinybert/lang/ru/seed1"}
    assert not any(rule == "backbone" for rule, _ in pending)


def test_report_holds_the_figures(run_dir):
    report = run_dir / "report.zip"
    result = _snakemake(run_dir, "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    names = zipfile.ZipFile(report).namelist()
    assert any(n.endswith("lambda_curves_ner_tinybert.png") for n in names)
    assert any(n.endswith("cosine_similarity_tinybert.png") for n in names)
