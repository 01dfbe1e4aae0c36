"""``langarith export``: the merged adapter a finished run chose, as a loadable folder.

A real zero-shot job runs on the toy setup (tests/toy_setup.py) and writes its score CSV
where the workflow would; the export must then be the direct merge at the chosen λ,
load with ``adapters``' default ``load_adapter(path)``, and score what the CSV says.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from adapters import AutoAdapterModel
from toy_setup import build_toy_setup

from langarith import LangarithError
from langarith.adapter_io import read_adapter
from langarith.config import load_config
from langarith.data import read_split
from langarith.evaluate.jobs import Baseline, Curve, ScoreJob
from langarith.evaluate.lambda_engine import LambdaGridEngine, Point
from langarith.evaluate.runner import run_job
from langarith.evaluate.score_files import read_scores
from langarith.export import export_adapter, export_from_rule, keep_outputs
from langarith.merge import live_adapter_parameters, merge_adapters
from langarith.paths import SCORE_CSV

#: No endpoint, so the chosen merge mixes both adapters (λ = 0 would be θ_it itself).
GRID = (0.25, 0.5, 0.75)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """A toy results tree with one finished zero-shot job (ner, target es, seed 1)."""
    torch.set_num_threads(1)
    toy = build_toy_setup(tmp_path_factory.mktemp("toy"), kinds=("ner",), rows=40)
    output = toy.root / SCORE_CSV.format(
        scenario="zero_shot", model="toy", task="ner", target="es", seed=1
    )
    job = ScoreJob(
        scenario="zero_shot", model="toy", task="ner", target="es", seed=1, kind="ner",
        backbone=str(toy.backbone), task_adapter=str(toy.task["ner"]), init=str(toy.init),
        data=str(toy.data_dir("ner", "es")),
        adapters=(("en", str(toy.lang["en"])), ("it", str(toy.lang["it"]))),
        baselines=(Baseline("pEA", "en"), Baseline("pRA", "it")),
        curves=(Curve("LA", ("en", "it"), GRID),), max_length=128, output=str(output),
    )  # fmt: skip
    run_job(job)
    return {"toy": toy, "results": toy.root / "results", "csv": output}


def test_export_is_the_chosen_merge_and_reproduces_the_test_score(run, tmp_path) -> None:
    toy, results = run["toy"], run["results"]
    rows = read_scores(run["csv"])
    (test_row,) = [r for r in rows if r.method == "LA" and r.split == "test"]
    lam = test_row.lam
    assert lam is not None and 0 < lam < 1
    out = export_adapter(results, "zero_shot", "toy", "es", tmp_path / "es_la")

    direct = merge_adapters(
        "linear", [toy.lang["en"], toy.lang["it"]], [lam, 1 - lam], out_dir=tmp_path / "direct"
    )
    exported, expected = read_adapter(out).state, read_adapter(direct).state
    assert set(exported) == set(expected)
    for name in expected:
        assert torch.equal(exported[name], expected[name]), name

    # adapters' default loading of the folder gives the same parameters
    model = AutoAdapterModel.from_pretrained(str(toy.backbone))
    loaded_name = model.load_adapter(str(out))
    live = live_adapter_parameters(model, loaded_name)
    assert sorted(live) == sorted(expected)
    for name, param in live.items():
        assert torch.equal(param.detach(), expected[name]), name

    # the exported adapter, stacked under the task adapter, scores the CSV's test score
    engine = LambdaGridEngine.load(toy.backbone, toy.task["ner"], toy.init, {"x": out}, "ner")
    test = engine.encode("test", read_split(toy.data_dir("ner", "es"), "test"), max_length=128)
    assert engine.score(Point.single("x"), test)["f1"] == pytest.approx(test_row.score, abs=1e-9)

    card = (out / "README.md").read_text(encoding="utf-8")
    (val_row,) = [r for r in rows if r.method == "LA" and r.split == "validation" and r.lam == lam]
    assert f"λ = {lam:g}" in card and str(toy.lang["it"]) in card
    assert f"| validation | {val_row.score:.2f} |" in card
    assert f"| test | {test_row.score:.2f} |" in card
    assert "langarith export --results" in card and "--target es" in card

    # an earlier export may be replaced; a folder with other files may not
    assert export_adapter(results, "zero_shot", "toy", "es", out) == out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(LangarithError, match="other"):
        export_adapter(results, "zero_shot", "toy", "es", tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target": "pt"}, r"zero_shot/toy/pt under .*: no score file"),
        ({"scenario": "zero_shoot"}, r"Unknown scenario 'zero_shoot'\. Must be one of"),
        ({"task": "nli"}, r"No score file .*nli/es/seed0\.csv"),
        ({"seed": 2}, r"No score file .*seed2\.csv"),
        ({"method": "TIES"}, r"has no merged method 'TIES'; it has \['LA'\]"),
    ],
)
def test_export_bad_input_is_one_clear_line(run, tmp_path, changes, message) -> None:
    args = {"scenario": "zero_shot", "target": "es"} | changes
    kwargs = {k: v for k, v in changes.items() if k in ("task", "seed", "method")}
    with pytest.raises(LangarithError, match=message) as err:
        export_adapter(run["results"], args["scenario"], "toy", args["target"], tmp_path / "o",
                       **kwargs)  # fmt: skip
    assert "\n" not in str(err.value)
    assert not (tmp_path / "o").exists()


def test_export_cli(run, tmp_path, capsys) -> None:
    from langarith.cli import main

    out = tmp_path / "cli"
    argv = ["export", "--results", str(run["results"]), "--model", "toy", "--target", "es",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert (out / "metadata.json").is_file() and (out / "README.md").is_file()
    assert main(["export", "--results", str(run["results"]), "--model", "toy", "--target",
                 "xx", "--out", str(tmp_path / "x")]) != 0  # fmt: skip
    assert "no score file" in capsys.readouterr().err


def test_merge_keep_names_planned_jobs_and_refuses_others() -> None:
    """``merge.keep`` triples become export folders; one with no score file stops the plan."""
    config = load_config(ROOT / "config" / "demo.yaml")
    config["seeds"] = [1, 2]  # the demo has one; a study's several each get a folder
    config["merge"] = {"keep": [{"scenario": "zero_shot", "model": "tinybert", "target": "es"}]}
    outputs = keep_outputs(config)
    assert outputs == [
        f"results/exported/zero_shot/tinybert/{task}/es/seed{seed}"
        for task in ("ner", "nli", "qa")
        for seed in (1, 2)
    ]
    config["merge"]["keep"][0] |= {"task": "nli", "seed": 2}
    assert keep_outputs(config) == ["results/exported/zero_shot/tinybert/nli/es/seed2"]
    for bad, message in [
        ({"target": "en"}, "plans no zero_shot score file"),  # the source is no target
        ({"model": "xlmr"}, "plans no zero_shot score file"),
        ({"seed": 7}, "plans no zero_shot score file"),
        ({"scenario": "enhancement"}, "one merged curve"),  # two curves: which one?
        ({"scenario": "nway"}, r"unknown scenario 'nway'"),
    ]:
        config["merge"]["keep"] = [
            {"scenario": "zero_shot", "model": "tinybert", "target": "es"} | bad
        ]
        with pytest.raises(LangarithError, match=message):
            keep_outputs(config)


def test_the_rule_exports_the_job_behind_its_score_file(run, tmp_path) -> None:
    out = export_from_rule(run["csv"], tmp_path / "rule")
    by_cli = export_adapter(run["results"], "zero_shot", "toy", "es", tmp_path / "cli")
    first, second = read_adapter(out).state, read_adapter(by_cli).state
    assert all(torch.equal(first[n], second[n]) for n in first)
    assert "--task ner --seed 1 --method LA" in (out / "README.md").read_text(encoding="utf-8")
