"""What choosing λ without labels adds to a demo evaluation job, measured in one process.

For one zero-shot job of a finished demo tree it runs, taking turns for ``--repeats``
rounds (the machine is shared; each keeps its best round):

1. **plain**: the job as ``lambda_grid`` runs it (model load, 21-point validation curve,
   test), writing a score CSV to a temporary folder;
2. **label-free**: the same job with every selector (``lambda_grid_label_free``): the
   entropy read from the validation passes, the MLM loss of each merged adapter on the
   target's validation text, and the test passes at the selectors' λ.

It checks that both write the same score CSV and prints, last, one line::

    blocks<N>: plain_s=<best plain job, wall> label_free_s=<best label-free job, wall> \
plain_cpu_s=... label_free_cpu_s=... added_cpu_s=<difference of CPU seconds> \
ratio=<label-free/plain CPU> demo_added_s=<added_cpu_s × the demo's label-free jobs / 2>

per ``--blocks`` value (the MLM text blocks). CPU seconds of the process (one torch
thread) are what a job costs on a quiet core; on a shared machine wall time is mostly
waiting. ``demo_added_s`` is a rough estimate of what ``label_free`` adds to the demo's
wall time (its jobs run two at a time, one thread each); Python start-up and
Snakemake's own per-job time are the same for both and not counted.

Usage (in a finished demo tree, e.g. a copy of one)::

    .venv/bin/python benchmarks/label_free.py --demo-dir /tmp/demo-run
    .venv/bin/python benchmarks/label_free.py --demo-dir /tmp/demo-run --task qa --blocks 50 16
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import torch
import yaml

from langarith.evaluate.label_free import label_free_jobs, label_free_params
from langarith.evaluate.runner import LabelFreeRequest, run_job
from langarith.evaluate.scenarios import find_job
from langarith.paths import DATA_DIR, RELATED_TSV, TOKENS_DIR, in_setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo-dir", default=".", help="a finished demo tree")
    parser.add_argument("--config", default="config/demo.yaml")
    parser.add_argument("--model", default="tinybert")
    parser.add_argument("--task", default="ner")
    parser.add_argument("--target", default="es")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--blocks", type=int, nargs="*", default=[], help="label_free.blocks to time (config's)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.chdir(args.demo_dir)
    torch.set_num_threads(1)
    config = yaml.safe_load(Path(args.config).read_text())
    job = find_job(config, "zero_shot", args.model, args.task, args.target, args.seed)
    wildcards = argparse.Namespace(
        scenario="zero_shot", model=args.model, task=args.task, target=args.target,
        seed=args.seed,
    )  # fmt: skip
    settings = label_free_params(config, wildcards)
    variants: dict[str, dict | None] = {"plain": None}
    for blocks in args.blocks or [settings["blocks"]]:
        variants[f"blocks{blocks}"] = {**settings, "blocks": blocks}
    tokens = TOKENS_DIR.format(model=args.model, lang=args.target)
    text = DATA_DIR.format(dataset="wikipedia", lang=args.target)
    wall = dict.fromkeys(variants, float("inf"))
    cpu = dict.fromkeys(variants, float("inf"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for round_ in range(args.repeats):
            for name, lf_settings in variants.items():
                scores = out / f"{name}{round_}.csv"
                request = None
                if lf_settings is not None:
                    request = LabelFreeRequest(
                        lf_settings, out / f"lf{name}{round_}.csv", tokens, text
                    )
                started, started_cpu = time.perf_counter(), time.process_time()
                run_job(
                    job,
                    output=scores,
                    related_tsv=in_setup(RELATED_TSV, config),
                    device="cpu",
                    threads=1,
                    label_free=request,
                )
                wall[name] = min(wall[name], time.perf_counter() - started)
                cpu[name] = min(cpu[name], time.process_time() - started_cpu)
        texts = {(out / f"{name}0.csv").read_text() for name in variants}
    if len(texts) != 1:
        raise SystemExit("the score CSVs with and without label_free differ")
    jobs = len(label_free_jobs(config))
    print(f"job {job.output}; {jobs} label-free jobs in the demo")
    for name in variants:
        if name == "plain":
            continue
        added = cpu[name] - cpu["plain"]
        print(
            f"{name}: plain_s={wall['plain']:.2f} label_free_s={wall[name]:.2f} "
            f"plain_cpu_s={cpu['plain']:.2f} label_free_cpu_s={cpu[name]:.2f} "
            f"added_cpu_s={added:.2f} ratio={cpu[name] / cpu['plain']:.2f} "
            f"demo_added_s={added * jobs / 2:.0f}"
        )


if __name__ == "__main__":
    main()
