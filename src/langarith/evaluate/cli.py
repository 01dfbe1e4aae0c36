"""``langarith evaluate``: plan and run evaluation jobs outside Snakemake.

    langarith evaluate plan CONFIG                 # jobs per scenario
    langarith evaluate run CONFIG --scenario zero_shot --model tinybert --task ner \\
        --target es --seed 1 [--out FILE] [--device cpu]

``run`` plans the job exactly as the workflow does and runs it in the current
directory, where the workflow's inputs must already exist. The runner (torch) is
loaded through the package's lazy attribute ``langarith.evaluate.run_job`` when a job
runs, not when the command line is built.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from langarith import evaluate
from langarith.config import load_config
from langarith.evaluate.scenarios import find_job, plan_jobs
from langarith.paths import RELATED_TSV, in_setup


def _cli_plan(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    jobs = plan_jobs(config)
    counts = Counter(job.scenario for job in jobs)
    for scenario, count in counts.items():
        print(f"{scenario}\t{count}")
    print(f"total\t{len(jobs)}")
    return 0


def _cli_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    job = find_job(config, args.scenario, args.model, args.task, args.target, args.seed)
    # the package attribute loads the runner (torch) only now, so `--help` stays fast
    out = evaluate.run_job(
        job, output=args.out, related_tsv=in_setup(RELATED_TSV, config), device=args.device
    )
    print(f"wrote {out}")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``langarith evaluate plan|run``."""
    parser = subparsers.add_parser("evaluate", help="plan or run λ-grid evaluation jobs")
    sub = parser.add_subparsers(dest="evaluate_command", metavar="ACTION", required=True)
    plan = sub.add_parser("plan", help="count the evaluation jobs of a config per scenario")
    plan.add_argument("config", type=Path)
    plan.set_defaults(func=_cli_plan)
    run = sub.add_parser("run", help="run one evaluation job and write its score CSV")
    run.add_argument("config", type=Path)
    for name in ("scenario", "model", "task", "target"):
        run.add_argument(f"--{name}", required=True)
    run.add_argument("--seed", required=True, type=int)
    run.add_argument("--out", type=Path, help="CSV to write (default: the workflow's path)")
    run.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    run.set_defaults(func=_cli_run)
