"""The Snakemake side: the DAG for the paper's config, lint, formatting, conda envs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from snakemake_runs import run_snakemake

from langarith import plan
from langarith.arms import load_arms
from langarith.config import load_config
from langarith.cost.estimate import job_counts
from langarith.xmod import plan as xmod_plan

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def paper_config() -> dict:
    return load_config(ROOT / "config" / "config.yaml")


#: the papers' 20 adapter languages (the TLR arm's other targets are not among them)
PAPER_LANGUAGES = "en ar bg de el es fr hi ru sw tr ur vi zh fa it ca pt ro as".split()
PAPER_TARGETS = "ar bg de el es fr hi ru sw tr ur vi zh".split()
#: every (dataset, language) the paper's config downloads, written out by hand: Wikipedia
#: of all 20 languages, WikiANN and XNLI of English (task training) and the 13 targets,
#: SQuAD (English), XQuAD of the targets it covers (not bg fr sw ur), IndicXNLI as.
PAPER_DATASETS = (
    {("wikipedia", lang) for lang in PAPER_LANGUAGES}
    | {(dataset, lang) for dataset in ("wikiann", "xnli") for lang in ["en", *PAPER_TARGETS]}
    | {("squad", "en"), ("indicxnli", "as"), ("wikiann", "as")}
    | {("xquad", lang) for lang in PAPER_TARGETS if lang not in ("bg", "fr", "sw", "ur")}
    # MLQA, for the X-MOD arm (task mlqa: the QA adapter's targets MLQA covers)
    | {("mlqa", lang) for lang in ("ar", "de", "es", "hi", "vi", "zh")}
)
#: What the X-MOD arm (config.yaml's xmod section) reads beyond the core's datasets:
#: WikiANN, XNLI and XQuAD of its pre-trained targets the papers do not evaluate, and
#: English XQuAD and MLQA (X-MOD scores the source language too).
XMOD_EXTRA_DATASETS = {
    *(("wikiann", lang) for lang in ("ko", "th", "ta", "id", "fi", "ka")),
    ("xnli", "th"),
    ("xquad", "th"),
    ("xquad", "en"),
    ("mlqa", "en"),
}


def _tlr_extra_adapters(config: dict) -> int:
    """Adapters of the TLR arm's targets outside languages:, for its models x seeds (each
    model's tasks' targets, and ALL-MULTI's every target)."""
    tlr = config["tlr"]
    others = {t for targets in tlr["tasks"].values() for t in targets} - set(config["languages"])
    return len(others) * len(tlr["models"]) * len(tlr["seeds"])


def _data_of(out: str) -> set[tuple[str, str]]:
    return set(re.findall(r"resources/data/([a-z0-9_]+)/([a-z]+)\b", out))


def test_paper_data_requests_cover_the_papers_datasets(paper_config):
    assert sorted(plan.dataset_requests(paper_config)) == sorted(PAPER_DATASETS)
    assert len(PAPER_DATASETS) == 20 + 14 + 14 + 1 + 1 + 1 + 9 + 6
    wanted = set(plan.dataset_requests(paper_config))
    for lang in paper_config["languages"]:
        assert ("wikipedia", lang) in wanted
    assert ("squad", "en") in wanted and ("wikiann", "en") in wanted and ("xnli", "en") in wanted
    assert ("indicxnli", "as") in wanted and ("wikiann", "as") in wanted  # the budget study
    xquad = {lang for dataset, lang in wanted if dataset == "xquad"}
    assert xquad == set(paper_config["evaluation_languages"]) - {"bg", "fr", "sw", "ur"}


def test_paper_dry_run_holds_the_real_download_dag(tmp_path, paper_config):
    result = run_snakemake(
        "-n", "--rerun-triggers", "mtime", configfile="config/config.yaml", directory=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.MULTILINE))
    xmod_data = {tuple(path.split("/")[2:4]) for path in xmod_plan.data_dirs(paper_config)}
    assert xmod_data - PAPER_DATASETS == XMOD_EXTRA_DATASETS
    core_data = set(plan.dataset_requests(paper_config))
    # the fullft arm's XNLI block adds Thai (its Wikipedia and XNLI data)
    fullft_data = {("wikipedia", "th"), ("xnli", "th")}
    # the TLR arm: CoNLL-2003 -> MasakhaNER, SQuAD -> TyDiQA-GoldP, XNLI and XQuAD of th
    tlr_data = {("conll2003", "en"), ("xnli", "th"), ("xquad", "th")}
    tlr_data |= {("masakhaner", t) for t in "ha ig rw lg luo pcm sw wo yo".split()}
    tlr_data |= {("tydiqa", t) for t in "ar bn sw te th".split()}
    assert core_data | xmod_data | fullft_data | tlr_data <= _data_of(out)
    # the arms' further data (fullft's AmericasNLI, NusaX, MARC; TLR's UD, AmericasNLI and
    # its targets' Wikipedias or own text) as langarith plan counts them (test_cost.py)
    load_arms()
    assert int(counts["prepare_dataset"]) == job_counts(paper_config)["prepare_dataset"]
    for folder in ("wikipedia/luo", "wikipedia/kpv", "wikipedia/bzd", "ud/kpv", "americasnli/ay"):
        assert f"resources/data/{folder}" in out
    assert len(PAPER_DATASETS) == 66 and "resources/data/wikipedia/th" in out
    assert "resources/data/masakhaner/luo" in out and "resources/data/tydiqa/th" in out
    assert int(counts["related_languages"]) == 1
    assert int(counts["backbone"]) == 2
    assert int(counts["train_language_adapter"]) == 2 * 20 * 3 + _tlr_extra_adapters(paper_config)
    assert "results/adapters/mbert/lang/luo/seed42" in out
    assert "results/adapters/xlmr/lang/luo/seed42" in out  # XLM-R's ALL-MULTI stacks it
    assert "results/adapters/mbert/lang/luo/seed51" not in out  # tlr.seeds: 42
    assert "resources/data/xquad/es" in out and "resources/data/xquad/bg" not in out
    assert "results/acl/scores/zero_shot/xlmr/ner/ar/seed42.csv" in out
    assert "results/acl/related_languages.tsv" in out and "results/ecai/" not in out
    # the token-budget study (ACL §5.2, ECAI Figure 2): XLM-R only; as, sw, fr on
    # 10k-10M whitespace tokens and fr on 1B too; NER and NLI, Assamese's through
    # ner_as (WikiANN) and nli_as (IndicXNLI)
    assert int(counts["train_budget_adapter"]) == (4 + 4 + 5) * 3
    assert "results/adapters/xlmr/lang/fr/budget1000000000/seed42" in out
    assert "results/adapters/xlmr/lang/sw/budget1000000000/" not in out
    assert "results/adapters/mbert/lang/as/budget" not in out
    for task, lang in [("ner_as", "as"), ("nli_as", "as"), ("ner", "sw"), ("nli", "fr")]:
        assert f"results/acl/scores/low_resource/xlmr/{task}/{lang}/seed99.csv" in out
    assert "results/acl/scores/low_resource/mbert/ner_as/" not in out
    assert "resources/data/wikiann/as" in out
    for task in ("ner", "ner_as", "nli", "nli_as"):
        assert f"figures/acl/token_budget_{task}_xlmr.png" in out
    assert "token_budget_nli_mbert" not in out


def test_lint_is_clean(tmp_path):
    result = run_snakemake("--lint", configfile="config/demo.yaml", directory=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Lints for" not in result.stdout + result.stderr


def test_snakefiles_are_snakefmt_formatted():
    snakefmt = shutil.which("snakefmt", path=str(Path(sys.executable).parent))
    assert snakefmt, "snakefmt is part of requirements-dev.txt"
    files = ["Snakefile", *sorted(str(p) for p in (ROOT / "rules").glob("*.smk"))]
    result = subprocess.run(
        [snakefmt, "--check", *files], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.strip().lstrip("- ").strip()
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def test_conda_envs_follow_the_pinned_stack():
    required = _pins((ROOT / "requirements.txt").read_text().splitlines())
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs
    for env_file in envs:
        env = yaml.safe_load(env_file.read_text())
        assert env["channels"] == ["conda-forge", "nodefaults"], env_file.name
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        for name, version in _pins(pip).items():
            assert required.get(name) == version, f"{env_file.name}: {name}=={version}"


def test_every_rule_has_log_benchmark_and_an_env():
    text = "\n".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    rules = re.findall(r"^rule (\w+):", text, flags=re.MULTILINE)
    assert rules
    for block in re.split(r"^(?=rule |use rule )", text, flags=re.MULTILINE):
        if block.startswith("rule "):
            name = block.split(":")[0]
            for key in ("log:", "benchmark:", "conda:", "resources:"):
                assert key in block, f"{name} lacks {key}"


def test_jobs_take_the_configured_threads(tmp_path):
    """The demo asks for 1-thread jobs so that two run side by side on 2 cores; a rule
    that ignores `threads` serialises them (the λ grids once did: 17 minutes instead of
    about 9)."""
    result = run_snakemake("-n", "--cores", "2", configfile="config/demo.yaml", directory=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    threads: dict[str, set[int]] = {}
    for block in re.split(r"^(?=(?:local)?rule )", out, flags=re.MULTILINE):
        head = re.match(r"(?:local)?rule (\w+):", block)
        found = re.search(r"^\s+threads: (\d+)$", block, flags=re.MULTILINE)
        if head:
            threads.setdefault(head.group(1), set()).add(int(found.group(1)) if found else 1)
    assert threads["lambda_grid"] == {1}
    assert threads["train_language_adapter"] == threads["train_task_adapter"] == {1}
    assert all(values == {1} for values in threads.values()), threads
    text = "\n".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    fixed = re.findall(r"^\s+threads: (\d+)$", text, flags=re.MULTILINE)
    assert set(fixed) <= {"1"}, "heavy rules take threads from get_threads(stage)"


#: The papers' related pairs that the setups must use (ACL Table 2, ECAI Table 5).
ACL_PAIRS = {"ar": "sw", "el": "es", "vi": "ru", "zh": "ar", "bg": "ru", "hi": "ur"}
ECAI_PAIRS = {"ar": "fa", "el": "de", "es": "it", "fr": "it", "tr": "de", "vi": "zh"}


@pytest.mark.parametrize(
    ("configfile", "setup", "pairs"),
    [("config/config.yaml", "acl", ACL_PAIRS), ("config/ecai.yaml", "ecai", ECAI_PAIRS)],
)
def test_each_paper_setup_plans_its_papers_pairs(configfile, setup, pairs):
    from langarith.evaluate.scenarios import plan_jobs, related_languages

    config = load_config(ROOT / configfile)
    assert config["setup"] == setup
    related = related_languages(config)
    assert {target: related[target] for target in pairs} == pairs
    jobs = plan_jobs(config, ["zero_shot", "enhancement"])
    for job in jobs:
        assert job.output.startswith(f"results/{setup}/scores/")
        assert job.related == pairs.get(job.target, job.related)
        assert all(not folder.startswith(f"results/{setup}/") for _, folder in job.adapters)


def test_the_ecai_setup_differs_from_the_acl_one_only_in_pool_pairs_and_folder():
    acl = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    ecai = yaml.safe_load((ROOT / "config" / "ecai.yaml").read_text())
    assert set(ecai["related"]["pool"]) - set(acl["related"]["pool"]) == {"fa", "it"}
    # the X-MOD arm (its section and its MLQA task) runs in the ACL setup only
    assert "xmod" not in ecai and "mlqa" not in ecai["tasks"]
    acl["tasks"].pop("mlqa")
    for key in set(acl) | set(ecai):
        if key not in ("setup", "related", "xmod"):
            assert acl.get(key) == ecai.get(key), key


def test_the_ecai_dry_run_shares_adapters_and_keeps_its_results_apart(tmp_path):
    result = run_snakemake(
        "-n", "--rerun-triggers", "mtime", configfile="config/ecai.yaml", directory=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.output
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.MULTILINE))
    assert int(counts["related_languages"]) == 1
    ecai = load_config(ROOT / "config" / "ecai.yaml")
    assert int(counts["train_language_adapter"]) == 2 * 20 * 3 + _tlr_extra_adapters(ecai)
    assert "results/ecai/related_languages.tsv" in out
    assert "results/ecai/scores/zero_shot/xlmr/ner/ar/seed42.csv" in out
    assert "results/ecai/tables/paper_comparison.csv" in out
    assert "figures/ecai/" in out
    assert "results/adapters/xlmr/lang/fa/seed42" in out
    assert "results/scores/" not in out and "results/acl/" not in out


def test_in_setup_moves_only_a_setups_own_artifacts():
    from langarith import paths

    acl = {"setup": "acl"}
    assert paths.in_setup(paths.SCORE_CSV, acl).startswith("results/acl/scores/")
    assert paths.in_setup(paths.RELATED_TSV, acl) == "results/acl/related_languages.tsv"
    assert paths.in_setup("results/tables/gains.md", acl) == "results/acl/tables/gains.md"
    assert paths.in_setup("figures/x_{model}.{ext}", acl) == "figures/acl/x_{model}.{ext}"
    for shared in (paths.LANG_ADAPTER_DIR, paths.TASK_ADAPTER_DIR, paths.ANALYSIS_COSINE):
        assert paths.in_setup(shared, acl) == shared
    moved = paths.in_setup(paths.SCORE_CSV, acl)
    assert paths.in_setup(moved, acl) == moved  # idempotent
    assert paths.in_setup(paths.SCORE_CSV, {}) == paths.SCORE_CSV  # demo, tests


def test_the_demo_dry_run_plans_the_new_paper_tables_and_figures(tmp_path):
    result = run_snakemake("-n", configfile="config/demo.yaml", directory=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.output
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.MULTILINE))
    assert int(counts["task_vector_analysis"]) == 2  # one per backbone
    for path in (
        "results/tables/lambda_subgrids.md",
        "results/analysis/tinybert/task_cosine.csv",
        "figures/zero_shot_bars_ner_tinybert.png",
        "figures/enhancement_bars_nli_tinyxlmr.pdf",
        "figures/cosine_paper_tinybert.png",
        "figures/vector_cosines_tinyxlmr.png",
    ):
        assert path in out, path


def test_only_snakemakes_scheduling_timers_are_released():
    fired: list[str] = []

    def reevaluate() -> None:
        fired.append("scheduler")

    def other() -> None:
        fired.append("other")

    reevaluate.__module__ = "snakemake.scheduling.job_scheduler"
    scheduling = threading.Timer(30, reevaluate)
    unrelated = threading.Timer(0.2, other)
    scheduling.start()
    unrelated.start()
    try:
        assert plan.release_rate_limiter_timers() == 1
        scheduling.join(timeout=5)
        assert not scheduling.is_alive()
        unrelated.join(timeout=5)
        assert fired == ["other"]
    finally:
        scheduling.cancel()
        unrelated.cancel()


def test_a_finished_run_exits_without_waiting_out_the_rate_limiters_timespan(tmp_path):
    """Snakemake waits at exit for the timers its job-rate limiter arms (one timespan);
    the workflow's onsuccess hook cancels them, so a run with a 10-minute timespan still
    ends as soon as its one short job has."""
    try:
        result = run_snakemake(
            "results/related_languages.tsv",
            "--cores",
            "1",
            "--max-jobs-per-timespan",
            "100/600s",
            configfile="config/demo.yaml",
            directory=tmp_path,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the run outlived its job by the rate limiter's timespan")
    assert result.returncode == 0, result.output[-3000:]
    assert (tmp_path / "results/related_languages.tsv").exists()


def test_producer_lookups_are_asked_once_per_index_and_path():
    asked: list[tuple[int, str]] = []

    class Index:
        def match_producers(self, targetfile: str) -> set:
            asked.append((id(self), str(targetfile)))
            return {f"rule-for-{targetfile}"}

    lookup = plan.memoized_producer_lookup(Index.match_producers)
    first, second = Index(), Index()
    found = lookup(first, "results/scores/a.csv")
    found.add("changed by the caller")
    assert lookup(first, "results/scores/a.csv") == {"rule-for-results/scores/a.csv"}
    assert lookup(first, "results/scores/b.csv") == {"rule-for-results/scores/b.csv"}
    assert lookup(second, "results/scores/a.csv") == {"rule-for-results/scores/a.csv"}
    assert [path for _, path in asked] == [
        "results/scores/a.csv",
        "results/scores/b.csv",
        "results/scores/a.csv",
    ]
    assert len({index for index, _ in asked}) == 2


def test_snakemake_takes_the_memoized_producer_lookup():
    """The workflow installs the memo on the Snakemake it runs with (a version without
    the method would leave it alone); installing twice wraps once."""
    from snakemake.output_index import OutputIndex

    original = OutputIndex.match_producers
    try:
        assert plan.memoize_producer_lookups()
        installed = OutputIndex.match_producers
        assert getattr(installed, "langarith_memoized", False)
        assert plan.memoize_producer_lookups()
        assert OutputIndex.match_producers is installed
    finally:
        OutputIndex.match_producers = original
