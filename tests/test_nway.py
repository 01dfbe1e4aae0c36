"""N-way language arithmetic with searched weights (scenario ``zero_shot_nway``).

The search (langarith.evaluate.nway) on synthetic scores: lattice, simplex, box, budget
and the same weights in another process; whole jobs on the toy setup of
tests/test_evaluate.py (random BERT, four "trained" language adapters), where with
k = 1 and English the search must end on the 2-way LA curve's best point; the
planner and the config check on the demo config; the table.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from toy_setup import build_toy_setup

from langarith import LangarithError
from langarith.adapter_io import read_adapter
from langarith.config import check_config, load_config
from langarith.evaluate.jobs import Baseline, Curve, ScoreJob, WeightSearch
from langarith.evaluate.nway import (
    best_weights,
    check_search,
    check_weights,
    search_weights,
    snap,
    start_weights,
    weights_point,
)
from langarith.evaluate.runner import run_job
from langarith.evaluate.scenarios import nearest_languages, plan_jobs, related_languages
from langarith.evaluate.score_files import format_weights, parse_weights, read_scores
from langarith.evaluate.search import best_lambda
from langarith.export import export_adapter, keep_outputs
from langarith.report.tables import write_table

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
GRID = tuple(round(0.05 * i, 10) for i in range(21))


def _search(**changes) -> WeightSearch:
    base = WeightSearch(method="LA-3", adapters=("en", "es", "pt", "it"), budget=12, seed=7)
    return dataclasses.replace(base, **changes)


def _bumpy(weights) -> float:
    """A synthetic validation score with its peak off the start point."""
    target = (0.2, 0.5, 0.3, 0.0)[: len(weights)]
    return 80.0 - 10.0 * sum(abs(w - t) for w, t in zip(weights, target, strict=False))


# ----------------------------------------------------------------------------- search


def test_simplex_candidates_are_lattice_points_that_sum_to_one():
    search = _search()
    scored = search_weights(search, _bumpy, start=(0.6, 0.4, 0.0, 0.0))
    assert len(scored) == search.budget  # distinct merged models, the budget exactly
    assert list(scored)[0] == (0.6, 0.4, 0.0, 0.0)  # LA's choice is the first candidate
    for weights in scored:
        assert min(weights) >= 0
        assert math.fsum(weights) == pytest.approx(1.0, abs=1e-12)
        assert all(abs(w * 20 - round(w * 20)) < 1e-9 for w in weights)  # step 0.05
        check_weights(search, weights)
    best = best_weights(scored)
    assert scored[best] == max(scored.values())
    assert scored[best] > scored[(0.6, 0.4, 0.0, 0.0)]  # the search improved on the start


def test_box_weights_stay_in_the_box_and_may_negate():
    search = _search(domain="box", low=-0.5, high=1.5, budget=16)

    def negation_helps(weights) -> float:  # rewards subtracting the last language
        return max(0.0, min(100.0, 50.0 + 20.0 * weights[0] - 20.0 * weights[3]))

    scored = search_weights(search, negation_helps, start=(0.6, 0.4, 0.0, 0.0))
    assert len(scored) == search.budget
    for weights in scored:
        assert all(-0.5 <= w <= 1.5 for w in weights)
    assert any(w[3] < 0 for w in scored)
    assert best_weights(scored)[3] < 0
    assert weights_point(search, best_weights(scored)).merge == "task-arithmetic"
    with pytest.raises(LangarithError, match="leave the box"):
        check_weights(search, (1.6, 0.0, 0.0, 0.0))
    # a proposal outside the box is clipped to it
    assert snap(search, (3.0, -2.0, 0.26, 0.0)) == (1.5, -0.5, 0.25, 0.0)


def test_equal_scores_keep_the_first_candidate():
    scored = {(0.5, 0.5): 70.0, (1.0, 0.0): 70.0, (0.0, 1.0): 60.0}
    assert best_weights(scored) == (0.5, 0.5)


_SUBPROCESS = """
import json
from langarith.evaluate.jobs import WeightSearch
from langarith.evaluate.nway import search_weights
score = lambda w: 80.0 - 10.0 * sum(abs(a - b) for a, b in zip(w, (0.2, 0.5, 0.3, 0.0)))
out = {}
for seed, domain, low in ((7, "simplex", 0.0), (7, "box", -0.5), (8, "simplex", 0.0)):
    search = WeightSearch(method="LA-3", adapters=("en", "es", "pt", "it"), budget=12,
                          seed=seed, domain=domain, low=low, high=1.5)
    found = search_weights(search, score, start=(0.6, 0.4, 0.0, 0.0))
    out[f"{seed}/{domain}"] = [list(w) for w in found]
print(json.dumps(out))
"""


def test_same_seed_gives_the_same_weights_in_another_process():
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "123"}
    done = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS], capture_output=True, text=True, env=env, check=True
    )
    there = json.loads(done.stdout.strip().splitlines()[-1])
    here = [list(w) for w in search_weights(_search(), _bumpy, start=(0.6, 0.4, 0.0, 0.0))]
    assert there["7/simplex"] == here
    box = _search(domain="box", low=-0.5, high=1.5)
    assert there["7/box"] == [list(w) for w in search_weights(box, _bumpy, start=(0.6, 0.4, 0, 0))]
    assert there["8/simplex"] != here  # the seed matters


def test_weights_that_do_not_match_the_adapters_are_refused():
    search = _search()
    with pytest.raises(LangarithError, match="do not match the 4 adapters"):
        check_weights(search, (0.5, 0.5))
    with pytest.raises(LangarithError, match="do not match the 4 adapters"):
        weights_point(search, (0.2, 0.2, 0.2, 0.2, 0.2))
    with pytest.raises(LangarithError, match="do not match"):
        snap(search, (0.5, 0.5, 0.0))
    with pytest.raises(LangarithError, match="not on the simplex"):
        check_weights(search, (0.5, 0.5, 0.5, -0.5))
    with pytest.raises(LangarithError, match="not among its adapters"):
        start_weights(search, ("en", "ru"), 0.5)
    with pytest.raises(LangarithError, match="label=weight"):
        parse_weights("en,es")


def test_a_budget_below_the_number_of_adapters_is_refused():
    with pytest.raises(LangarithError, match="budget 3 is below the number of adapters 4"):
        check_search(_search(budget=3))
    with pytest.raises(LangarithError, match="must divide 1"):
        check_search(_search(step=0.3))
    with pytest.raises(LangarithError, match="box"):
        check_search(_search(domain="box", low=1.0, high=1.0))


def test_weights_cells_round_trip():
    labels, weights = ("en", "es", "pt"), (0.55, 0.25, 1.0 - 0.55 - 0.25)
    cell = format_weights(labels, weights)
    assert cell == "en=0.55,es=0.25,pt=0.2"
    assert parse_weights(cell) == (labels, (0.55, 0.25, 0.2))


# ----------------------------------------------------------------------------- jobs


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    torch.set_num_threads(1)
    return build_toy_setup(tmp_path_factory.mktemp("toy"), rows=40)


def _job(toy, out: Path, **changes) -> ScoreJob:
    base = ScoreJob(
        scenario="zero_shot_nway",
        model="toy",
        task="nli",
        target="es",
        seed=1,
        kind="nli",
        backbone=str(toy.backbone),
        task_adapter=str(toy.task["nli"]),
        init=str(toy.init),
        data=str(toy.data_dir("nli", "es")),
        adapters=tuple((lang, str(folder)) for lang, folder in toy.lang.items()),
        output=str(out),
    )
    return dataclasses.replace(base, **changes)


def _score_path(root: Path, scenario: str) -> Path:
    return root / f"results/scores/{scenario}/toy/nli/es/seed1.csv"


def _main(rows, method, split):
    return [r for r in rows if r.method == method and r.split == split and r.metric == "accuracy"]


def test_k1_search_reproduces_the_two_way_la_best_point(toy, tmp_path):
    """LA-1 (English + the related language) on the simplex lattice of the λ grid ends on
    LA's best point, both when the job scores the LA curve and when it reuses it."""
    out = _score_path(toy.root, "zero_shot_nway")  # beside the toy's adapters, for export
    searches = (
        WeightSearch("LA-1", ("en", "it"), budget=21, seed=3),
        WeightSearch("LA-2", ("en", "it", "pt"), budget=6, seed=4),
    )
    job = _job(
        toy, out,
        baselines=(Baseline("pEA", "en"), Baseline("pRA", "it")),
        curves=(Curve("LA", ("en", "it"), GRID),),
        searches=searches,
    )  # fmt: skip
    rows = read_scores(run_job(job))
    la_curve = {r.lam: r.score for r in _main(rows, "LA", "validation")}
    lam = best_lambda(la_curve)
    la_test = _main(rows, "LA", "test")
    assert la_test[0].lam == lam
    k1_val = {parse_weights(r.adapters)[1]: r.score for r in _main(rows, "LA-1", "validation")}
    k1_test = _main(rows, "LA-1", "test")
    assert len(k1_test) == 1
    labels, chosen = parse_weights(k1_test[0].adapters)
    assert labels == ("en", "it")
    assert chosen == (lam, round(1.0 - lam, 10))
    assert k1_test[0].score == la_test[0].score
    assert max(k1_val.values()) == max(la_curve.values())
    for weights, score in k1_val.items():  # every candidate is a grid point, scored as LA
        assert weights[0] in la_curve and score == la_curve[weights[0]]
    k2 = [parse_weights(r.adapters) for r in _main(rows, "LA-2", "validation")]
    assert len(k2) == 6 and all(labels == ("en", "it", "pt") for labels, _ in k2)
    assert all(min(w) >= 0 and math.fsum(w) == pytest.approx(1.0) for _, w in k2)
    k2_best = max(r.score for r in _main(rows, "LA-2", "validation"))
    assert k2_best >= max(la_curve.values())  # starts from LA's choice, never ends below it

    # the same search reusing a zero-shot job's rows starts from the same λ*
    zero = _job(
        toy, _score_path(tmp_path, "zero_shot"), scenario="zero_shot",
        baselines=job.baselines, curves=job.curves,
    )  # fmt: skip
    run_job(zero)
    reusing = dataclasses.replace(
        job, baselines=(), curves=(), searches=searches[:1], reuse=zero.output,
        reuse_methods=("pEA", "pRA", "LA"), output=str(tmp_path / "reused" / out.name),
    )  # fmt: skip
    again = read_scores(run_job(reusing))
    assert [(r.adapters, r.score) for r in _main(again, "LA-1", "test")] == [
        (r.adapters, r.score) for r in k1_test
    ]
    assert {r.scenario for r in again} == {"zero_shot_nway"}
    assert {r.method for r in again} == {"pEA", "pRA", "LA", "LA-1"}

    # the table: LA-k next to LA, pEA and pRA, and the chosen weights
    tables = tmp_path / "tables"
    write_table(
        "zero_shot_nway",
        {"scores": [str(out)]},
        {"csv": tables / "t.csv", "md": tables / "t.md", "tex": tables / "t.tex"},
        n_resamples=50,
    )
    markdown = (tables / "t.md").read_text(encoding="utf-8")
    methods = [line.split("|")[3].strip() for line in markdown.splitlines() if "| toy " in line]
    assert {"pEA", "pRA", "LA", "λ* LA", "LA-1", "LA-2"} <= set(methods)
    assert "## Chosen weights" in markdown

    # langarith export writes LA-2 at its chosen weights: Σ wᵢθᵢ of the sources
    (k2_test,) = _main(rows, "LA-2", "test")
    labels, weights = parse_weights(k2_test.adapters)
    folder = export_adapter(
        toy.root / "results", "zero_shot_nway", "toy", "es", tmp_path / "exported",
        task="nli", seed=1, method="LA-2",
    )  # fmt: skip
    assert "searched weights" in (folder / "README.md").read_text(encoding="utf-8")
    merged = read_adapter(folder).state
    sources = [read_adapter(toy.lang[label]).state for label in labels]
    for name, tensor in merged.items():
        expected = sum(w * state[name].double() for w, state in zip(weights, sources, strict=True))
        assert torch.allclose(tensor.double(), expected, atol=1e-6), name


def test_a_box_search_runs_on_the_engine_with_task_arithmetic(toy, tmp_path):
    search = WeightSearch("LA-2", ("en", "it", "pt"), budget=5, domain="box", low=-0.5,
                          high=1.5, seed=5)  # fmt: skip
    job = _job(
        toy, tmp_path / "seed1.csv",
        curves=(Curve("LA", ("en", "it"), (0.0, 0.5, 1.0)),), searches=(search,),
    )  # fmt: skip
    rows = read_scores(run_job(job))
    candidates = [parse_weights(r.adapters)[1] for r in _main(rows, "LA-2", "validation")]
    assert len(candidates) == 5
    assert all(-0.5 <= w <= 1.5 for weights in candidates for w in weights)
    assert any(abs(math.fsum(w) - 1.0) > 1e-9 for w in candidates)  # off the simplex
    (test_row,) = _main(rows, "LA-2", "test")
    assert parse_weights(test_row.adapters)[1] in candidates


def test_a_bad_search_stops_the_job_before_the_model_loads(tmp_path):
    job = ScoreJob(
        scenario="zero_shot_nway", model="toy", task="nli", target="es", seed=1, kind="nli",
        backbone=str(tmp_path / "missing"), task_adapter="x", init="x", data="x",
        adapters=(("en", "x"), ("es", "x"), ("pt", "x")),
        searches=(WeightSearch("LA-2", ("en", "es", "pt"), budget=2),),
        output=str(tmp_path / "seed1.csv"),
    )  # fmt: skip
    with pytest.raises(LangarithError, match="budget 2 is below the number of adapters 3"):
        run_job(job)
    assert ScoreJob.from_dict(job.to_dict()) == job
    assert "searches" not in dataclasses.replace(job, searches=()).to_dict()


# ----------------------------------------------------------------------------- planning


@pytest.fixture(scope="module")
def demo() -> dict:
    return load_config(ROOT / "config" / "demo.yaml")


def test_demo_plan_merges_english_and_the_nearest_related_languages(demo):
    jobs = plan_jobs(demo, ["zero_shot_nway"])
    spec = demo["scenarios"]["zero_shot_nway"]
    assert len(jobs) == len(spec["targets"]) * len(spec["models"]) * len(demo["seeds"])
    related = related_languages(demo)
    for job in jobs:
        ranked = nearest_languages(demo, job.target, related[job.target])
        assert ranked[0] == related[job.target] and job.target not in ranked
        assert "en" not in ranked
        assert [s.method for s in job.searches] == [f"LA-{k}" for k in spec["k"]]
        for search, k in zip(job.searches, spec["k"], strict=True):
            assert search.adapters == ("en", *ranked[:k])
            assert search.budget == spec["budget"] and search.domain == "simplex"
        assert job.reuse and "/zero_shot/" in job.reuse  # pEA, pRA, LA from zero-shot
        assert set(job.reuse_methods) == {"pEA", "pRA", "LA"}
    seeds = [s.seed for job in jobs for s in job.searches]
    assert len(set(seeds)) == len(seeds)  # every search has its own optimiser seed
    assert plan_jobs(demo, ["zero_shot_nway"]) == jobs


def _with_nway(demo, **spec) -> dict:
    config = copy.deepcopy(demo)
    config["scenarios"]["zero_shot_nway"].update(spec)
    return config


def test_bad_nway_settings_stop_the_config_check(demo):
    check_config(demo)
    with pytest.raises(LangarithError, match="budget 3 is below the number of adapters"):
        check_config(_with_nway(demo, budget=3))
    with pytest.raises(LangarithError, match="k 6 is larger than the pool of 'es'"):
        check_config(_with_nway(demo, k=[2, 6]))
    with pytest.raises(LangarithError, match="models names 'nope'"):
        check_config(_with_nway(demo, models=["nope"]))
    with pytest.raises(LangarithError, match="low 1 must be below high 0"):
        check_config(_with_nway(demo, domain="box", box={"low": 1, "high": 0}))
    # the planner refuses the same (for callers that skip the config check)
    with pytest.raises(LangarithError, match="larger than the pool"):
        plan_jobs(_with_nway(demo, k=[6]), ["zero_shot_nway"])
    with pytest.raises(LangarithError, match="budget 2 is below"):
        plan_jobs(_with_nway(demo, budget=2), ["zero_shot_nway"])


def test_the_box_domain_is_planned_with_its_bounds(demo):
    config = _with_nway(demo, domain="box", box={"low": -1.0, "high": 2.0})
    search = plan_jobs(config, ["zero_shot_nway"])[0].searches[0]
    assert (search.domain, search.low, search.high) == ("box", -1.0, 2.0)


def test_merge_keep_names_an_nway_method(demo):
    config = copy.deepcopy(demo) | {"seeds": [1, 2]}  # a study's seeds; the demo has one
    entry = {"scenario": "zero_shot_nway", "model": "tinyxlmr", "target": "bg", "task": "ner"}
    config["merge"] = {"keep": [entry | {"method": "LA-2", "seed": 2}]}
    assert keep_outputs(config) == ["results/exported/zero_shot_nway/tinyxlmr/ner/bg/seed2"]
    for bad, message in [
        ({}, "name the method"),  # LA-2 and LA-3: which one?
        ({"method": "LA-7"}, "name the method"),
    ]:
        config["merge"] = {"keep": [entry | bad]}
        with pytest.raises(LangarithError, match=message):
            keep_outputs(config)
    config["merge"] = {"keep": [entry | {"method": "LA-2"}, entry | {"method": "LA-3"}]}
    with pytest.raises(LangarithError, match="holds one"):
        keep_outputs(config)
