"""A changed language adapter re-runs exactly the jobs that read it, on the paper's config.

Speeding the workflow up must not widen what a change costs: jobs merged for speed, or a
score file shared by several targets, would make one retrained adapter re-run work that
never read it. Here every output of the paper's DAG is laid out (empty, all of one
age) in a scratch directory, one adapter is made newer, and ``snakemake -n`` must plan
exactly the jobs downstream of it, computed from the full dry run's own inputs and
outputs: its score files, analysis, tables and figures, and no training job.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from snakemake_runs import run_snakemake

ADAPTER = "results/adapters/xlmr/lang/fr/seed42"
FIELDS = ("input", "output")
OLD = 1_600_000_000  # one age for every laid-out output (2020)


def _jobs(out: str) -> list[tuple[str, list[str], list[str]]]:
    """(rule, inputs, outputs) of every job a dry run prints."""
    jobs = []
    for block in re.split(r"^(?:local)?rule ", out, flags=re.MULTILINE)[1:]:
        rule = block.split(":", 1)[0].strip()
        fields = dict(re.findall(r"^\s+(input|output): (.*)$", block, flags=re.MULTILINE))
        inputs, outputs = ([p for p in fields.get(k, "").split(", ") if p] for k in FIELDS)
        jobs.append((rule, inputs, outputs))
    return jobs


def _dry_run(workdir: Path) -> str:
    result = run_snakemake(
        "-n", "--rerun-triggers", "mtime", configfile="config/config.yaml", directory=workdir
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.output


def _lay_out(workdir: Path, outputs: set[str]) -> None:
    for rel in outputs:
        path = workdir / rel
        if path.suffix:  # a file; directory outputs (adapters, data, backbones) have none
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:
            path.mkdir(parents=True, exist_ok=True)
    for rel in outputs:
        os.utime(workdir / rel, (OLD, OLD))


def test_a_changed_language_adapter_reruns_only_the_jobs_that_read_it(tmp_path):
    jobs = _jobs(_dry_run(tmp_path))
    assert len(jobs) > 500  # the paper's DAG
    _lay_out(tmp_path, {out for _, _, outs in jobs for out in outs})

    # downstream of the adapter: a job reading a changed file changes its outputs
    changed, planned_expected = {ADAPTER}, set()
    grew = True
    while grew:
        grew = False
        for _rule, inputs, outputs in jobs:
            if outputs and outputs[0] not in planned_expected and changed & set(inputs):
                planned_expected.add(outputs[0])
                changed.update(outputs)
                grew = True

    os.utime(tmp_path / ADAPTER, (OLD + 3600, OLD + 3600))
    rerun = _jobs(_dry_run(tmp_path))
    planned = {outputs[0] for _, _, outputs in rerun if outputs}
    assert planned == planned_expected
    rules = {rule for rule, _, outputs in rerun if outputs}
    assert "lambda_grid" in rules
    assert not {r for r in rules if r.startswith(("train_", "backbone", "prepare_"))}
    scores = sorted(p for p in planned if "/scores/" in p)
    assert scores and all("/xlmr/" in p and p.endswith("seed42.csv") for p in scores)
    assert len(planned) < len(jobs) / 5
