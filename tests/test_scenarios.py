"""Planning of the evaluation jobs (langarith.evaluate.scenarios) for the paper's and the
demo config, and the scenario registry.

Pure planning, no model: which (scenario, model, task, target, seed) jobs exist, which
adapters each one merges, and what the rules get as inputs. The related languages are
injected where a test does not need URIEL, so these tests take well under a second
each; the ones on the paper's config use the real URIEL picks, as the workflow does.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from langarith import LangarithError, plan
from langarith.analysis_plan import analysis_adapters, analysis_outputs, task_analysis_adapters
from langarith.cli import main
from langarith.config import task_targets
from langarith.evaluate import scenarios
from langarith.evaluate.jobs import Baseline, ScoreJob
from langarith.evaluate.runner import execute
from langarith.evaluate.scenarios import (
    SCENARIOS,
    JobContext,
    JobPlan,
    find_job,
    job_inputs,
    job_params,
    plan_jobs,
    register_scenario,
    related_languages,
    scenario_search,
    score_outputs,
)
from langarith.evaluate.search import SEARCH_MODES
from langarith.paths import RELATED_TSV, SCORE_CSV
from langarith.task_kinds import TASK_KINDS

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
XQUAD_MISSING = {"bg", "fr", "sw", "ur"}


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def paper() -> dict:
    return _load("config.yaml")


@pytest.fixture(scope="module")
def demo() -> dict:
    """The demo config planned with two seeds (it runs one), as a study has several."""
    return _load("demo.yaml") | {"seeds": [1, 2]}


@pytest.fixture(scope="module")
def paper_jobs(paper) -> list[ScoreJob]:
    return plan_jobs(paper)


@pytest.fixture(scope="module")
def demo_jobs(demo) -> list[ScoreJob]:
    return plan_jobs(demo)


def _lang_of(folder: str) -> str:
    match = re.search(r"/lang/([a-z]+)/", folder)
    assert match, folder
    return match.group(1)


# ----------------------------------------------------------------------------- counts


def test_paper_config_job_counts(paper, paper_jobs):
    counts = Counter(job.scenario for job in paper_jobs)
    runs = len(paper["models"]) * len(paper["seeds"])  # 2 backbones x 3 seeds
    # 13 NER + 13 NLI + 9 QA targets (XQuAD lacks bg fr sw ur)
    assert counts["zero_shot"] == 35 * runs
    assert counts["enhancement"] == 35 * runs
    assert counts["ties"] == 13 * runs  # zero-shot NER only
    assert counts["romance"] == 2 * 2 * runs  # {ner, nli} x {es, fr}
    # nli_as/as with the full adapter on both backbones; the budget study on XLM-R
    # only: ner_as/as and {ner, nli} x {sw, fr} (and budgets in the nli_as/as job)
    assert counts["low_resource"] == 1 * runs + 5 * len(paper["seeds"])
    # ALL-MULTI under language arithmetic: zero_shot's NLI and QA targets on the TLR
    # arm's backbones (XLM-R restricted by tlr.per_model to tasks that include both)
    tlr = paper["tlr"]
    assert counts["zero_shot_tlr"] == (13 + 9) * len(tlr["models"]) * len(tlr["seeds"])
    assert len(paper_jobs) == 543 + counts["zero_shot_tlr"]
    outputs = score_outputs(paper)
    assert len(outputs) == len(set(outputs)) == len(paper_jobs)


def test_zero_shot_tlr_follows_tlr_per_model(paper):
    """A backbone that tlr.per_model keeps off a task has no ALL-MULTI adapter of it."""
    import copy

    config = copy.deepcopy(paper)
    config["tlr"]["per_model"] = {"xlmr": {"tasks": ["nli"]}}
    jobs = [j for j in plan_jobs(config) if j.scenario == "zero_shot_tlr"]
    assert {(j.model, j.task) for j in jobs} == {("mbert", "nli"), ("mbert", "qa"), ("xlmr", "nli")}


def test_demo_config_job_counts(demo, demo_jobs):
    counts = Counter(job.scenario for job in demo_jobs)
    runs = len(demo["models"]) * len(demo["seeds"])
    budget = demo.get("token_budget") or {}
    budget_pairs = {
        (task, lang)
        for task in budget.get("tasks", [])
        for lang in budget.get("languages", [])
        if lang in task_targets(demo, task)[0]
    }
    assert budget_pairs == {("ner_uk", "uk")}
    assert counts == {
        "zero_shot": 10 * runs,  # NER es it pt ru bg, NLI es ru bg, QA es ru
        "enhancement": 10 * runs,
        "ties": 5 * runs,
        "romance": 2 * runs,  # es on NER and NLI
        # uk, unseen by the backbones: its full adapter and its token-budget adapters
        "low_resource": len(budget_pairs) * runs,
        "zero_shot_nway": 3 * len(demo["seeds"]),  # NER es pt bg on tinyxlmr only
    }
    for job in demo_jobs:
        if job.scenario == "low_resource":
            assert (job.task, job.target) in budget_pairs
            # budget adapters on the XLM-R-shaped backbone only, as in the papers
            budgets = [f"{job.target}/budget{t}" for t in budget["tokens"]]
            if job.model not in budget["models"]:
                budgets = []
            assert [b.adapter for b in job.baselines] == [job.target, *budgets]


def test_every_job_writes_its_own_csv(paper_jobs):
    for job in paper_jobs:
        assert job.output == "results/acl/" + SCORE_CSV.removeprefix("results/").format(
            scenario=job.scenario,
            model=job.model,
            task=job.task,
            target=job.target,
            seed=job.seed,
        )


# ----------------------------------------------------------------------------- targets


def test_xquad_targets_skip_the_uncovered_languages(paper, paper_jobs):
    qa = {job.target for job in paper_jobs if job.task == "qa"}
    assert qa == set(paper["evaluation_languages"]) - XQUAD_MISSING
    for scenario in ("zero_shot", "enhancement"):
        targets = {j.target for j in paper_jobs if j.task == "qa" and j.scenario == scenario}
        assert not targets & XQUAD_MISSING
    with pytest.raises(LangarithError, match="plans no zero_shot evaluation"):
        find_job(paper, "zero_shot", "xlmr", "qa", "bg", 42)


def test_related_languages_follow_the_related_stage(paper):
    related = related_languages(paper)
    assert set(related) == set(plan.related_targets(paper))
    assert all(rel != target for target, rel in related.items())
    assert set(related.values()) <= set(plan.related_pool(paper))


# ----------------------------------------------------------------------------- scenarios


def test_zero_shot_never_uses_the_targets_own_adapter(paper_jobs, demo_jobs):
    checked = 0
    for job in paper_jobs + demo_jobs:
        if job.scenario not in ("zero_shot", "ties"):
            continue
        langs = {_lang_of(folder) for _, folder in job.adapters}
        assert job.target not in langs, job.output
        assert job.target not in dict(job.adapters)
        assert job.related not in (None, job.target)
        assert langs == {"en", job.related}
        checked += 1
    assert checked == 210 + 78 + 40 + 20  # paper zero-shot, TIES; demo zero-shot, TIES


def test_zero_shot_methods(paper):
    job = find_job(paper, "zero_shot", "xlmr", "ner", "es", 42, related={"es": "fr"})
    assert [(b.method, b.adapter) for b in job.baselines] == [("pEA", "en"), ("pRA", "fr")]
    (curve,) = job.curves
    assert curve.method == "LA" and curve.adapters == ("en", "fr") and curve.merge == "linear"
    assert len(curve.grid) == 21 and curve.grid[0] == 0.0 and curve.grid[-1] == 1.0
    assert job.related == "fr" and not job.mix
    assert dict(job.adapters) == {
        "en": "results/adapters/xlmr/lang/en/seed42",
        "fr": "results/adapters/xlmr/lang/fr/seed42",
    }
    assert job.task_adapter == "results/adapters/xlmr/task/ner/seed42"
    assert job.data == "resources/data/wikiann/es"


def test_enhancement_methods_and_mix(paper):
    job = find_job(paper, "enhancement", "mbert", "nli", "sw", 51, related={"sw": "ar"})
    assert [(b.method, b.adapter) for b in job.baselines] == [("T", "sw")]
    assert [(c.method, c.adapters) for c in job.curves] == [
        ("LA(T,en)", ("sw", "en")),
        ("LA(T,REL)", ("sw", "ar")),
    ]
    assert job.mix == ("LA(T,en)", "LA(T,REL)")


def test_romance_pairs_every_other_pool_language(paper, demo):
    for target in ("es", "fr"):
        for task in ("ner", "nli"):
            job = find_job(paper, "romance", "xlmr", task, target, 99)
            others = [lang for lang in ("ca", "es", "fr", "it", "pt", "ro") if lang != target]
            # ACL Table 1: LA_{l1}(l1, l2), the target's own adapter on the left
            assert [c.adapters for c in job.curves] == [(target, l2) for l2 in others]
            assert {c.method for c in job.curves} == {"LA(T,l2)"}
            assert [(b.method, b.adapter) for b in job.baselines] == [("T", target)]
            assert job.related is None and "related" not in job.inputs()
    job = find_job(demo, "romance", "tinyxlmr", "nli", "es", 2)
    assert [c.adapters for c in job.curves] == [("es", "it"), ("es", "pt")]


def test_ties_against_linear_reuses_the_zero_shot_curve(paper):
    job = find_job(paper, "ties", "xlmr", "ner", "de", 42, related={"de": "fr"})
    assert [(c.method, c.merge, c.top_k) for c in job.curves] == [
        ("TIES", "ties", 20.0),
        ("TIES", "ties", 80.0),
    ]
    assert job.curves[0].grid == pytest.approx([0.8 + 0.1 * i for i in range(11)])
    assert job.reuse == "results/acl/scores/zero_shot/xlmr/ner/de/seed42.csv"
    assert job.reuse_methods == ("LA",)
    assert job.inputs()["reuse"] == job.reuse
    # without a zero-shot NER job the LA curve is computed in the TIES job itself
    alone = dict(paper, scenarios={"ties": paper["scenarios"]["ties"]})
    job = find_job(alone, "ties", "xlmr", "ner", "de", 42, related={"de": "fr"})
    assert job.reuse is None and job.curves[0].method == "LA"


def test_low_resource_uses_full_and_budget_adapters(paper):
    related = {"as": "hi", "sw": "ar", "fr": "es"}
    job = find_job(paper, "low_resource", "xlmr", "nli_as", "as", 42, related=related)
    assert job.task_adapter == "results/adapters/xlmr/task/nli/seed42"  # adapter_from
    assert job.data == "resources/data/indicxnli/as"
    budgets = [f"as/budget{t}" for t in (10000, 100000, 1000000, 10000000)]
    assert [b.adapter for b in job.baselines] == ["as", *budgets]
    assert {c.adapters for c in job.curves} == {
        (t, other) for t in ["as", *budgets] for other in ("en", "hi")
    }
    assert dict(job.adapters)["as/budget10000"] == (
        "results/adapters/xlmr/lang/as/budget10000/seed42"
    )
    job = find_job(paper, "low_resource", "xlmr", "nli", "sw", 42, related=related)
    assert [b.adapter for b in job.baselines] == [
        f"sw/budget{t}" for t in (10**4, 10**5, 10**6, 10**7)
    ]


def test_token_budget_plans_the_papers_study(paper):
    """ACL §5.2 / ECAI Figure 2: XLM-R, as/sw/fr, NER and NLI, 10k-10M (and 1B for fr)."""
    related = {"as": "hi", "sw": "ar", "fr": "es"}
    budgets = (10**4, 10**5, 10**6, 10**7)
    # Assamese NER: WikiANN as, with the NER task adapter, only the budget adapters
    job = find_job(paper, "low_resource", "xlmr", "ner_as", "as", 42, related=related)
    assert job.data == "resources/data/wikiann/as"
    assert job.task_adapter == "results/adapters/xlmr/task/ner/seed42"
    assert [b.adapter for b in job.baselines] == [f"as/budget{t}" for t in budgets]
    assert ("as/budget10000", "en") in {c.adapters for c in job.curves}
    # French has the extra 1B budget; Swahili does not
    job = find_job(paper, "low_resource", "xlmr", "ner", "fr", 42, related=related)
    assert [b.adapter for b in job.baselines] == [f"fr/budget{t}" for t in (*budgets, 10**9)]
    assert plan.budget_tokens(paper, "sw") == list(budgets)
    # XLM-R only: mBERT has no budget adapters and no budget-only job
    assert plan.budget_models(paper) == ["xlmr"]
    with pytest.raises(LangarithError, match="plans no low_resource"):
        find_job(paper, "low_resource", "mbert", "ner_as", "as", 42, related=related)
    jobs = plan_jobs(paper, ["low_resource"], related=related)
    pairs = {(j.model, j.task, j.target) for j in jobs}
    assert pairs == {
        ("mbert", "nli_as", "as"),  # the configured low-resource scenario, full adapter
        *(
            ("xlmr", task, lang)
            for task, lang in [("nli_as", "as"), ("ner_as", "as")]
            + [(t, lang) for t in ("ner", "nli") for lang in ("sw", "fr")]
        ),
    }
    adapters = [p for p in plan.language_adapter_outputs(paper) if "/budget" in p]
    assert len(adapters) == (4 + 4 + 5) * len(paper["seeds"])
    assert all(p.startswith("results/adapters/xlmr/") for p in adapters)


def test_job_records_round_trip(paper_jobs):
    for job in paper_jobs[::37]:
        assert ScoreJob.from_dict(job.to_dict()) == job


# ----------------------------------------------------------------------------- rule inputs


def test_rule_inputs_and_params(demo):
    wc = SimpleNamespace(scenario="zero_shot", model="tinybert", task="qa", target="es", seed="1")
    inputs = job_inputs(demo, wc)
    assert inputs["related"] == RELATED_TSV
    assert inputs["task_adapter"] == "results/adapters/tinybert/task/qa/seed1"
    assert inputs["data"] == "resources/data/xquad/es"
    assert inputs["backbone"] == "resources/backbones/tinybert"
    assert inputs["init"] == "results/adapters/tinybert/lang/init"
    assert all(a.startswith("results/adapters/tinybert/lang/") for a in inputs["adapters"])
    params = job_params(demo, wc)
    assert params["max_length"] == 128 and params["doc_stride"] == 64
    assert ScoreJob.from_dict(params).output == "results/scores/zero_shot/tinybert/qa/es/seed1.csv"


def test_analysis_covers_every_language_and_seed(demo):
    assert analysis_outputs(demo) == [
        "results/analysis/tinybert/cosine.csv",
        "results/analysis/tinybert/sparsity.csv",
        "results/analysis/tinybert/task_cosine.csv",
        "results/analysis/tinyxlmr/cosine.csv",
        "results/analysis/tinyxlmr/sparsity.csv",
        "results/analysis/tinyxlmr/task_cosine.csv",
    ]
    labelled = analysis_adapters(demo, "tinybert")
    assert len(labelled) == len(demo["languages"]) * len(demo["seeds"])
    assert labelled["es/seed2"] == "results/adapters/tinybert/lang/es/seed2"
    tasks = task_analysis_adapters(demo, "tinyxlmr")
    assert len(tasks) == 3 * len(demo["seeds"])  # ner, nli, qa
    assert tasks["nli/seed1"] == "results/adapters/tinyxlmr/task/nli/seed1"
    one_task = {**demo, "tasks": {"ner": demo["tasks"]["ner"]}}
    assert not any(p.endswith("task_cosine.csv") for p in analysis_outputs(one_task))


def test_related_language_that_is_english_is_refused(demo):
    with pytest.raises(LangarithError, match="source language"):
        find_job(demo, "zero_shot", "tinybert", "ner", "es", 1, related={"es": "en"})


# ----------------------------------------------------------------------------- Snakemake


def test_dry_run_plans_every_score_and_analysis_table(tmp_path, demo):
    """The rules with the demo config: one lambda_grid job per planned CSV."""
    work = tmp_path / "wf"
    for name in ("rules", "workflow", "config", "envs"):
        shutil.copytree(ROOT / name, work / name)
    snakefile = (ROOT / "Snakefile").read_text(encoding="utf-8")
    for name in ("evaluate", "analysis"):
        if f'include: "rules/{name}.smk"' not in snakefile:
            snakefile += f'\ninclude: "rules/{name}.smk"\n'
    snakefile += (
        "\n\nrule all_scores:\n    input:\n"
        "        scenarios.score_outputs(config) + analysis_plan.analysis_outputs(config),\n"
    )
    (work / "Snakefile").write_text(snakefile, encoding="utf-8")
    (work / "src").symlink_to(ROOT / "src")
    (work / "two_seeds.yaml").write_text(yaml.safe_dump({"seeds": demo["seeds"]}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "all_scores",
            "--configfile",
            "config/demo.yaml",
            "two_seeds.yaml",
            "--quiet",
            "rules",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.MULTILINE))
    # the zero-shot jobs run under lambda_grid_label_free (the demo's label_free)
    grids = int(counts["lambda_grid"]) + int(counts.get("lambda_grid_label_free", 0))
    assert int(counts["lambda_grid_label_free"]) == 10 * 4
    assert grids == len(plan_jobs(demo))
    # by hand: 2 models x 2 seeds x (10 zero-shot + 10 enhancement + 5 TIES + 2 romance
    # + 1 low-resource NER uk) jobs, and N-way NER es pt bg on tinyxlmr x 2 seeds
    assert grids == 4 * (10 + 10 + 5 + 2 + 1) + 3 * 2 == 118
    assert int(counts["language_vector_analysis"]) == 2


def test_the_test_config_plans_the_hand_written_jobs():
    """config/test.yaml, job by job, written out by hand (related: es→pt, ru→bg, bg→ru)."""
    config = _load("test.yaml")
    grid = (0.0, 0.25, 0.5, 0.75, 1.0)
    related = {"es": "pt", "ru": "bg", "bg": "ru"}
    expected = []
    for task in ("ner", "nli"):
        for target in ("es", "ru", "bg"):
            rel = related[target]
            expected.append((
                f"results/scores/zero_shot/tinybert/{task}/{target}/seed1.csv",
                [("pEA", "en"), ("pRA", rel)], [("LA", ("en", rel), grid, None)], None,
            ))  # fmt: skip
    for target in ("es", "ru", "bg"):
        rel = related[target]
        expected.append((
            f"results/scores/enhancement/tinybert/ner/{target}/seed1.csv",
            [("T", target)],
            [("LA(T,en)", (target, "en"), grid, None), ("LA(T,REL)", (target, rel), grid, None)],
            None,
        ))  # fmt: skip
    expected.append((
        "results/scores/low_resource/tinybert/nli/es/seed1.csv",
        [("T", "es/budget2000")],
        [("LA(T,en)", ("es/budget2000", "en"), grid, None),
         ("LA(T,REL)", ("es/budget2000", "pt"), grid, None)],
        None,
    ))  # fmt: skip
    for target in ("es", "ru", "bg"):
        expected.append((
            f"results/scores/ties/tinybert/ner/{target}/seed1.csv",
            [], [("TIES", ("en", related[target]), (0.8, 1.3, 1.8), 20.0)],
            f"results/scores/zero_shot/tinybert/ner/{target}/seed1.csv",
        ))  # fmt: skip
    planned = [
        (
            job.output,
            [(b.method, b.adapter) for b in job.baselines],
            [(c.method, c.adapters, tuple(c.grid), c.top_k) for c in job.curves],
            job.reuse,
        )
        for job in plan_jobs(config, related=related)
    ]
    assert sorted(planned) == sorted(expected)
    job = find_job(config, "zero_shot", "tinybert", "nli", "ru", 1, related=related)
    assert dict(job.adapters) == {
        "en": "results/adapters/tinybert/lang/en/seed1",
        "bg": "results/adapters/tinybert/lang/bg/seed1",
    }
    assert job.task_adapter == "results/adapters/tinybert/task/nli/seed1"
    assert job.data == "resources/data/xnli/ru"


def test_cli_plan_counts_the_jobs(capsys):
    assert main(["evaluate", "plan", str(ROOT / "config" / "demo.yaml")]) == 0
    out = capsys.readouterr().out
    # the demo's one seed: 2 models x 10 zero-shot targets; {ner, nli} x es x 2 models
    assert "zero_shot\t20" in out and "romance\t4" in out and "total\t" in out


# ----------------------------------------------------------------------------- registry


def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))


def test_schema_scenarios_are_the_registered_ones():
    allowed = _schema()["properties"]["scenarios"]["properties"]
    assert list(allowed) == list(SCENARIOS)


def test_schema_enums_match_the_task_kinds_and_search_modes():
    schema = _schema()
    task = schema["properties"]["tasks"]["additionalProperties"]["properties"]
    assert tuple(task["kind"]["enum"]) == TASK_KINDS
    assert tuple(schema["properties"]["lambda_search"]["enum"]) == SEARCH_MODES


def test_schema_scenario_search_matches_the_search_modes():
    assert tuple(_schema()["definitions"]["scenario_search"]["enum"]) == SEARCH_MODES


def test_a_scenario_races_while_zero_shot_keeps_the_full_curve(demo):
    config = copy.deepcopy(demo)
    config["lambda_search"] = "full"
    for spec in config["scenarios"].values():
        spec.pop("lambda_search", None)
    config["scenarios"]["enhancement"]["lambda_search"] = "race"
    by_scenario: dict[str, set[str]] = {}
    for job in plan_jobs(config):
        by_scenario.setdefault(job.scenario, set()).add(job.search)
    assert by_scenario["zero_shot"] == {"full"}
    assert by_scenario["enhancement"] == {"race"}
    assert scenario_search(config, "romance") == "full"  # no own key: the top-level search
    config["lambda_search"] = "coarse_to_fine"
    assert scenario_search(config, "romance") == "coarse_to_fine"
    assert scenario_search(config, "enhancement") == "race"


def _plan_own_adapter(ctx: JobContext) -> JobPlan:
    """A toy scenario: the target's own adapter alone, no merging."""
    return JobPlan(
        adapters={ctx.target: ctx.lang_dir(ctx.target)}, baselines=(Baseline("T", ctx.target),)
    )


@pytest.fixture
def own_adapter_scenario():
    """Registers the toy scenario ``own_adapter`` (one function + one line) for a test."""
    register_scenario("own_adapter", uses_related=False)(_plan_own_adapter)
    yield "own_adapter"
    del SCENARIOS["own_adapter"]


def test_a_registered_scenario_is_planned_run_and_written(demo, own_adapter_scenario):
    config = dict(demo, scenarios={**demo["scenarios"], "own_adapter": {"tasks": ["nli"]}})
    jobs = plan_jobs(config, [own_adapter_scenario])
    runs = len(demo["models"]) * len(demo["seeds"])
    targets = [t for t in task_targets(demo, "nli")[0] if t != demo["source_language"]]
    assert len(jobs) == len(targets) * runs
    wc = SimpleNamespace(
        scenario="own_adapter", model="tinybert", task="nli", target="es", seed="1"
    )
    inputs = job_inputs(config, wc)
    assert inputs["adapters"] == ["results/adapters/tinybert/lang/es/seed1"]
    assert "related" not in inputs
    job = ScoreJob.from_dict(job_params(config, wc))
    assert job.output == "results/scores/own_adapter/tinybert/nli/es/seed1.csv"
    assert job.output in score_outputs(config)
    rows = execute(job, lambda point: {"accuracy": 50.0}, lambda: lambda point: {"accuracy": 40.0})
    assert [(r.scenario, r.method, r.split, r.score) for r in rows] == [
        ("own_adapter", "T", "validation", 50.0),
        ("own_adapter", "T", "test", 40.0),
    ]


def test_unknown_scenarios_are_refused_with_the_registered_names(demo):
    with pytest.raises(LangarithError, match="Unknown scenario 'zero'.*zero_shot"):
        find_job(demo, "zero", "tinybert", "ner", "es", 1)
    with pytest.raises(LangarithError, match="registered twice"):
        register_scenario("romance")(_plan_own_adapter)
    assert scenarios.SCENARIOS["romance"].plan is not _plan_own_adapter
