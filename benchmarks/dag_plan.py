"""Benchmark of workflow planning: how long ``snakemake -n`` takes to build the DAG.

A user's own study grows the DAG with languages × tasks × seeds × scenarios, and every
job's inputs and params come from input functions (``rules/common.smk``,
``langarith.evaluate.scenarios``) that Snakemake calls once or more per job. This
script times ``snakemake -n`` (a subprocess, as a user runs it) on

* the paper's setup, ``config/config.yaml``;
* the same config with languages added until it has ``--languages`` (default 100):
  ISO 639-1 codes that WikiANN covers and URIEL knows, added to ``languages`` and to
  ``evaluation_languages`` (NER then gets a target per added language, XNLI and XQuAD
  the ones they cover; each target's related language comes from URIEL at plan time).

Each is run ``--repeats`` times and keeps its best wall time (the machine is shared),
then one line is printed::

    dag_s=<paper> dag_s_100=<generated> jobs=<paper jobs> jobs_100=<generated jobs>

Usage::

    .venv/bin/python benchmarks/dag_plan.py
    .venv/bin/python benchmarks/dag_plan.py --languages 50 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from langarith.data.coverage import WIKIANN_LANGUAGES  # noqa: E402
from langarith.related import iso3, language_distance  # noqa: E402


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--languages", type=int, default=100, help="languages of the big config")
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs")
    parser.add_argument("--snakemake", default=str(Path(sys.executable).with_name("snakemake")))
    return parser.parse_args(argv)


def _known_to_uriel(lang: str) -> bool:
    try:
        iso3(lang)
        language_distance(lang, "en")
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False
    return True


def grown_config(config: dict, n_languages: int) -> dict:
    """``config`` with WikiANN/URIEL languages added until it has ``n_languages``."""
    languages = list(config["languages"])
    candidates = sorted(c for c in WIKIANN_LANGUAGES if len(c) == 2 and c not in languages)
    added = []
    for lang in candidates:
        if len(languages) + len(added) >= n_languages:
            break
        if _known_to_uriel(lang):
            added.append(lang)
    if len(languages) + len(added) < n_languages:
        raise SystemExit(f"only {len(languages) + len(added)} usable languages, not {n_languages}")
    grown = dict(config)
    grown["languages"] = languages + added
    grown["evaluation_languages"] = list(config["evaluation_languages"]) + added
    return grown


def plan_seconds(snakemake: str, configfile: Path, repeats: int) -> tuple[float, int]:
    """Best wall time of ``snakemake -n`` on ``configfile``, and the number of jobs."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), HF_HUB_OFFLINE="1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    best, jobs = float("inf"), -1
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(
            [snakemake, "-n", "--configfile", str(configfile)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"snakemake -n failed on {configfile}:\n{done.stderr[-2000:]}")
        found = re.search(r"^total\s+(\d+)", done.stdout + done.stderr, re.MULTILINE)
        jobs = int(found.group(1)) if found else -1
        best = min(best, seconds)
    return best, jobs


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    paper_s, paper_jobs = plan_seconds(args.snakemake, args.config, args.repeats)
    print(f"paper config {args.config}: {paper_jobs} jobs, {paper_s:.2f} s")
    grown = grown_config(config, args.languages)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"config_{args.languages}_languages.yaml"
        path.write_text(yaml.safe_dump(grown, sort_keys=False), encoding="utf-8")
        big_s, big_jobs = plan_seconds(args.snakemake, path, args.repeats)
    print(
        f"{args.languages} languages ({len(grown['evaluation_languages'])} evaluation "
        f"languages): {big_jobs} jobs, {big_s:.2f} s"
    )
    print(
        f"dag_s={paper_s:.2f} dag_s_{args.languages}={big_s:.2f} "
        f"jobs={paper_jobs} jobs_{args.languages}={big_jobs}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
