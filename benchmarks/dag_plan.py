"""Benchmark of workflow planning: how long ``snakemake -n`` takes to build the DAG.

A user's own study grows the DAG with languages × tasks × seeds × scenarios, and every
job's inputs and params come from input functions (``rules/common.smk``,
``langarith.evaluate.scenarios``) that Snakemake calls once or more per job. This
script times ``snakemake -n`` (a subprocess, as a user runs it) on

* the paper's setup, ``config/config.yaml``;
* the same config with languages added until it has ``--languages`` (default 100):
  ISO 639-1 codes (those WikiANN covers first) added to ``languages`` and, where URIEL
  knows them, to ``evaluation_languages`` (NER then gets a target per added language
  WikiANN covers, XNLI and XQuAD the ones they cover; each target's related language
  comes from URIEL at plan time).

Each is run ``--repeats`` times and keeps its best wall time (the machine is shared),
then one line is printed::

    dag_s=<paper> dag_s_100=<generated> dag_cpu_s=<paper, CPU> dag_cpu_s_100=<generated, CPU> \
jobs=<paper jobs> jobs_100=<generated jobs>

Usage::

    .venv/bin/python benchmarks/dag_plan.py
    .venv/bin/python benchmarks/dag_plan.py --languages 50 --repeats 1
    .venv/bin/python benchmarks/dag_plan.py --repeats 1 --profile /tmp/plan.prof  # + cProfile
"""

from __future__ import annotations

import argparse
import os
import pstats
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from langarith.config import ISO_639_1  # noqa: E402
from langarith.data.coverage import WIKIANN_LANGUAGES  # noqa: E402
from langarith.related import iso3, language_distance  # noqa: E402


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--languages", type=int, default=100, help="languages of the big config")
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs")
    parser.add_argument(
        "--src", type=Path, default=ROOT / "src", help="the package source snakemake imports"
    )
    parser.add_argument("--snakemake", default=str(Path(sys.executable).with_name("snakemake")))
    parser.add_argument(
        "--profile",
        type=Path,
        help="also run `snakemake -n` of the grown config once under cProfile, write the "
        "stats here and print the package's functions by cumulative time",
    )
    return parser.parse_args(argv)


def _known_to_uriel(lang: str) -> bool:
    try:
        iso3(lang)
        language_distance(lang, "en")
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False
    return True


def grown_config(config: dict, n_languages: int) -> dict:
    """``config`` with languages added until it has ``n_languages``.

    Added are ISO 639-1 codes (the config's rule), those WikiANN covers first; each goes
    to ``languages`` (an adapter per seed) and, when URIEL knows it (a related language
    must be found for every evaluation language), to ``evaluation_languages``.
    """
    languages = list(config["languages"])
    candidates = sorted(
        (c for c in ISO_639_1 if c not in languages), key=lambda c: (c not in WIKIANN_LANGUAGES, c)
    )
    added = candidates[: max(0, n_languages - len(languages))]
    if len(languages) + len(added) < n_languages:
        raise SystemExit(f"only {len(languages) + len(added)} languages, not {n_languages}")
    grown = dict(config)
    grown["languages"] = languages + added
    grown["evaluation_languages"] = list(config["evaluation_languages"]) + [
        lang for lang in added if _known_to_uriel(lang)
    ]
    return grown


def plan_seconds(
    snakemake: str, configfile: Path, repeats: int, src: Path = ROOT / "src"
) -> tuple[float, float, int]:
    """Best wall and CPU seconds of ``snakemake -n`` on ``configfile``, and the jobs.

    CPU time (user + system of the child) is what a shared machine does not inflate.
    """
    env = dict(os.environ, PYTHONPATH=str(src), HF_HUB_OFFLINE="1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    best, best_cpu, jobs = float("inf"), float("inf"), -1
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
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
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"snakemake -n failed on {configfile}:\n{done.stderr[-2000:]}")
        found = re.search(r"^total\s+(\d+)", done.stdout + done.stderr, re.MULTILINE)
        jobs = int(found.group(1)) if found else -1
        best, best_cpu = min(best, seconds), min(best_cpu, cpu)
    return best, best_cpu, jobs


def profile_plan(snakemake: str, configfile: Path, out: Path, src: Path, top: int = 25) -> None:
    """``snakemake -n`` under cProfile; the package's and the rules' functions, slowest first.

    Profiling slows Python code several times over: read it for where the time goes,
    not for the seconds.
    """
    env = dict(os.environ, PYTHONPATH=str(src), HF_HUB_OFFLINE="1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    command = [sys.executable, "-m", "cProfile", "-o", str(out), snakemake, "-n"]
    done = subprocess.run(
        [*command, "--configfile", str(configfile)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"profiled snakemake -n failed:\n{done.stderr[-2000:]}")
    stats = pstats.Stats(str(out), stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(rf"{re.escape(str(ROOT))}/(src|rules)", top)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    paper_s, paper_cpu, paper_jobs = plan_seconds(
        args.snakemake, args.config, args.repeats, args.src
    )
    print(f"paper config {args.config}: {paper_jobs} jobs, {paper_s:.2f} s ({paper_cpu:.2f} s CPU)")
    grown = grown_config(config, args.languages)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"config_{args.languages}_languages.yaml"
        path.write_text(yaml.safe_dump(grown, sort_keys=False), encoding="utf-8")
        big_s, big_cpu, big_jobs = plan_seconds(args.snakemake, path, args.repeats, args.src)
        if args.profile:
            profile_plan(args.snakemake, path, args.profile, args.src)
    print(
        f"{args.languages} languages ({len(grown['evaluation_languages'])} evaluation "
        f"languages): {big_jobs} jobs, {big_s:.2f} s ({big_cpu:.2f} s CPU)"
    )
    print(
        f"dag_s={paper_s:.2f} dag_s_{args.languages}={big_s:.2f} "
        f"dag_cpu_s={paper_cpu:.2f} dag_cpu_s_{args.languages}={big_cpu:.2f} "
        f"jobs={paper_jobs} jobs_{args.languages}={big_jobs}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
