"""benchmarks/demo_profile.py: per-stage sums of a demo tree, its critical path, a 2-core run.

A toy tree of benchmark files and logs in the demo's layout, and a toy dry run, so that
the figures the README quotes come from code that is checked.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


@pytest.fixture(scope="module")
def profile():
    spec = importlib.util.spec_from_file_location(
        "demo_profile", ROOT / "benchmarks" / "demo_profile.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _job(root: Path, stem: str, rule: str, wildcards: dict, wall: float, cpu: float, warm=None):
    bench = root / "benchmarks" / f"{stem}.tsv"
    log = root / "logs" / f"{stem}.log"
    bench.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    bench.write_text(HEADER + f"{wall}\t0:00:01\t1\t1\t1\t1\t0\t0\t0\t{cpu}\n")
    lines = [
        f"2026-12-02 04:00:00,000 INFO langarith.rules.{rule}: rule {rule}, wildcards {wildcards}"
    ]
    if warm is not None:
        lines.append(f"2026-12-02 04:00:09,000 INFO langarith.warm: job cpu_s={warm:.2f}")
    log.write_text("\n".join(lines) + "\n")


@pytest.fixture
def demo(tmp_path):
    _job(tmp_path, "backbones/tiny", "backbone", {"model": "tiny"}, 10.0, 9.0)
    _job(
        tmp_path, "adapters/tiny/lang/es/seed1", "train_language_adapter",
        {"model": "tiny", "lang": "es", "seed": "1"}, 5.0, 0.1, warm=4.5,
    )  # fmt: skip
    _job(
        tmp_path, "scores/zero_shot_nway/tiny/ner/es/seed1", "lambda_grid",
        {"scenario": "zero_shot_nway", "model": "tiny", "task": "ner", "target": "es",
         "seed": "1"}, 8.0, 7.0,
    )  # fmt: skip
    return tmp_path


DRY_RUN = """\
rule backbone:
    input: resources/data/wikipedia/es
    output: resources/backbones/tiny
    jobid: 1
    benchmark: benchmarks/backbones/tiny.tsv
    wildcards: model=tiny

rule train_language_adapter:
    input: resources/backbones/tiny
    output: results/adapters/tiny/lang/es/seed1
    jobid: 2
    benchmark: benchmarks/adapters/tiny/lang/es/seed1.tsv

rule lambda_grid:
    input: resources/data/wikiann/es
    output: results/scores/zero_shot_nway/tiny/ner/es/seed1.csv
    jobid: 3
    benchmark: benchmarks/scores/zero_shot_nway/tiny/ner/es/seed1.tsv

localrule all:
    input: results/adapters/tiny/lang/es/seed1, results/scores/zero_shot_nway/tiny/ner/es/seed1.csv
    jobid: 0
"""


def test_stages_sum_cpu_and_wall_and_a_warm_job_counts_its_child(profile, demo):
    jobs = profile.read_jobs(demo)
    assert len(jobs) == 3
    by_stem = {j.stem: j for j in jobs}
    lang = by_stem["adapters/tiny/lang/es/seed1"]
    assert lang.warm and lang.cpu_s == 4.5  # the child's log line, not cpu_time 0.1
    assert not by_stem["backbones/tiny"].warm and by_stem["backbones/tiny"].cpu_s == 9.0
    rows = {row[0]: row for row in profile.stage_table(jobs)}
    assert rows["backbones"][1:4] == (1, 9.0, 10.0)
    assert rows["λ grids"][1:4] == (1, 7.0, 8.0)
    assert [j.stem for j in jobs if j.arm] == ["scores/zero_shot_nway/tiny/ner/es/seed1"]


def test_critical_path_and_simulated_run(profile, demo):
    nodes, edges = profile.read_dry_run(DRY_RUN)
    assert [rule for rule, _ in nodes.values()] == [
        "backbone", "train_language_adapter", "lambda_grid", "all",
    ]  # fmt: skip
    assert sorted(edges) == [(0, 1), (1, 3), (2, 3)]
    seconds = {0: 9.0, 1: 4.5, 2: 7.0, 3: 0.0}
    critical, makespan, path = profile.schedule(seconds, edges, cores=2)
    assert (critical, makespan, path) == (13.5, 13.5, [0, 1, 3])
    critical, makespan, _ = profile.schedule(seconds, edges, cores=1)
    assert (critical, makespan) == (13.5, 20.5)  # one core: the sum


def test_the_command_prints_the_table_and_the_dag_figures(profile, demo, tmp_path, capsys):
    dry = tmp_path / "dry.txt"
    dry.write_text(DRY_RUN)
    assert profile.main([str(demo), "--dry-run", str(dry), "--cores", "2"]) == 0
    out = capsys.readouterr().out
    assert "| the core (no arm) | 2 | 14 | 15 | |" in out
    assert "jobs=3 warm_cpu_logged=1 cpu_s=20" in out
    assert "critical_s=14 simulated_makespan_s=14" in out
