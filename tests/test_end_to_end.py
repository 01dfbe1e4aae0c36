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

import pandas as pd
import pytest
import yaml
from snakemake_runs import run_snakemake

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


def test_scores_hold_the_validation_curve_and_the_chosen_test_point(run_dir):
    frame = pd.read_csv(run_dir / "results/scores/zero_shot/tinybert/ner/es/seed1.csv")
    la = frame[frame["method"] == "LA"]
    validation = la[la["split"] == "validation"]
    assert sorted(validation["lambda"]) == [0.0, 0.25, 0.5, 0.75, 1.0]
    test = la[la["split"] == "test"]
    assert len(test) == 1
    best = validation.loc[validation["score"].idxmax(), "lambda"]
    assert test["lambda"].iloc[0] == best or validation["score"].nunique() < len(validation)
    assert set(frame["method"]) >= {"pEA", "pRA", "LA"}


def test_tables_figures_and_related_languages(run_dir):
    for table in ("zero_shot", "enhancement", "ties", "token_budget", "paper_comparison"):
        assert (run_dir / f"results/tables/{table}.csv").exists(), table
    for figure in ("lambda_curves_ner_tinybert", "cosine_similarity_tinybert", "sparsity_tinybert"):
        assert (run_dir / f"figures/{figure}.png").stat().st_size > 5000, figure
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
