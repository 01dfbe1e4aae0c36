"""What choosing λ without labels adds to a demo evaluation job, measured in one process.

For one zero-shot job of a finished demo tree it runs, taking turns for ``--repeats``
rounds (the machine is shared; each keeps its best round):

1. **plain**: the job as ``lambda_grid`` runs it (model load, 21-point validation curve,
   test), writing a score CSV to a temporary folder;
2. **label-free**: the same job with every selector (``lambda_grid_label_free``): the
   entropy read from the validation passes, the MLM loss of each merged adapter on the
   target's validation text, and the test passes at the selectors' λ.

It checks that both write the same score CSV and prints, last, one line::

    plain_s=<best plain job> label_free_s=<best label-free job> added_s=<difference> \
ratio=<label-free/plain> demo_added_s=<added_s × the demo's label-free jobs / 2 cores>

``demo_added_s`` is a rough estimate of what ``label_free`` adds to the demo's wall time
(its jobs run two at a time, one thread each); Python start-up and Snakemake's own
per-job time are the same for both and not counted.

Usage (in a finished demo tree, e.g. a copy of one)::

    .venv/bin/python benchmarks/label_free.py --demo-dir /tmp/demo-run
    .venv/bin/python benchmarks/label_free.py --demo-dir /tmp/demo-run --task qa --blocks 20
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
from langarith.paths import DATA_DIR, TOKENS_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo-dir", default=".", help="a finished demo tree")
    parser.add_argument("--config", default="config/demo.yaml")
    parser.add_argument("--model", default="tinybert")
    parser.add_argument("--task", default="ner")
    parser.add_argument("--target", default="es")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--blocks", type=int, default=None, help="override label_free.blocks")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.chdir(args.demo_dir)
    torch.set_num_threads(1)
    config = yaml.safe_load(Path(args.config).read_text())
    if args.blocks is not None:
        config["label_free"] = {**(config.get("label_free") or {}), "blocks": args.blocks}
    job = find_job(config, "zero_shot", args.model, args.task, args.target, args.seed)
    wildcards = argparse.Namespace(
        scenario="zero_shot", model=args.model, task=args.task, target=args.target,
        seed=args.seed,
    )  # fmt: skip
    settings = label_free_params(config, wildcards)
    tokens = TOKENS_DIR.format(model=args.model, lang=args.target)
    text = DATA_DIR.format(dataset="wikipedia", lang=args.target)
    best = {"plain": float("inf"), "label_free": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for round_ in range(args.repeats):
            for name in best:
                scores = out / f"{name}{round_}.csv"
                request = None
                if name == "label_free":
                    request = LabelFreeRequest(settings, out / f"lf{round_}.csv", tokens, text)
                started = time.perf_counter()
                run_job(job, output=scores, device="cpu", threads=1, label_free=request)
                best[name] = min(best[name], time.perf_counter() - started)
        same = (out / "plain0.csv").read_text() == (out / "label_free0.csv").read_text()
    if not same:
        raise SystemExit("the score CSVs with and without label_free differ")
    added = best["label_free"] - best["plain"]
    jobs = len(label_free_jobs(config))
    print(f"job {job.output}: {jobs} label-free jobs in the demo, blocks {settings['blocks']}")
    print(
        f"plain_s={best['plain']:.2f} label_free_s={best['label_free']:.2f} "
        f"added_s={added:.2f} ratio={best['label_free'] / best['plain']:.2f} "
        f"demo_added_s={added * jobs / 2:.0f}"
    )


if __name__ == "__main__":
    main()
