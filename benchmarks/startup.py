"""Benchmark: the start-up of a rule job, cold (its own interpreter) and warm (langarith.warm).

A job is run the way Snakemake runs a rule script, ``python <script>``, alternately
with ``LANGARITH_WARM=0`` (cold: the script imports torch, transformers, adapters and
the package itself) and ``LANGARITH_WARM=1`` (warm: a child forked from a server that
has those imports done). The first warm run, which starts the server and does its
imports, is reported apart (``first_warm_s``); the others reuse it. Each ratio is the
median over turns of the ratio within a turn, so machine load drifting between turns
cancels out.

Two kinds of job:

- default: a *null* λ job, the imports of ``workflow/scripts/evaluate.py`` and nothing
  else, i.e. the per-job overhead;
- ``--script S --workdir D``: a real job script kept by ``snakemake
  --skip-script-cleanup`` (``D/.snakemake/scripts/tmp*.evaluate.py``), run in ``D``
  (a scratch copy of a demo tree: the job rewrites its output).

Prints every turn, then one line::

    cold_s=<median cold job> warm_s=<median warm job> first_warm_s=<server start> \
startup_ratio=<cold/warm> saved_s=<cold - warm per job>

Usage::

    .venv/bin/python benchmarks/startup.py --repeats 5
    .venv/bin/python benchmarks/startup.py --script /tmp/d/.snakemake/scripts/tmpab.evaluate.py \
        --workdir /tmp/d
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

NULL_JOB = """
from langarith.warm import handoff

handoff()

from langarith.evaluate import run_job
from langarith.scripting import rule_step

assert run_job is not None and rule_step is not None
"""


def _time_job(script: Path, workdir: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(script)],
        cwd=workdir,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def _servers(runtime: Path) -> list[int]:
    """Process ids of the servers started in this benchmark's own socket directory."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"langarith.warm" in args and any(str(runtime).encode() in a for a in args):
            pids.append(int(proc.name))
    return pids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--script", type=Path, help="a kept Snakemake job script")
    parser.add_argument("--workdir", type=Path, help="where that job runs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        runtime = Path(tmp) / "rt"
        if args.script is None:
            script = Path(tmp) / "null_job.py"
            script.write_text(NULL_JOB)
            workdir = Path(tmp)
        else:
            script, workdir = args.script.resolve(), (args.workdir or Path.cwd()).resolve()
        src = str(ROOT / "src")
        base = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
        base["PYTHONPATH"] = os.pathsep.join(filter(None, [src, base.get("PYTHONPATH")]))
        base.update(LANGARITH_WARM_DIR=str(runtime), LANGARITH_WARM_IDLE="600")
        cold_env = dict(base, LANGARITH_WARM="0")
        warm_env = dict(base, LANGARITH_WARM="1")
        try:
            first = _time_job(script, workdir, warm_env)
            print(f"first warm (starts the server): {first:.2f} s", flush=True)
            colds, warms, ratios = [], [], []
            for turn in range(args.repeats):
                cold = _time_job(script, workdir, cold_env)
                hot = _time_job(script, workdir, warm_env)
                colds.append(cold)
                warms.append(hot)
                ratios.append(cold / hot)
                print(f"turn {turn}: cold {cold:.2f} s, warm {hot:.2f} s", flush=True)
        finally:
            for pid in _servers(runtime):
                os.kill(pid, signal.SIGTERM)
    cold_s, warm_s = statistics.median(colds), statistics.median(warms)
    print(
        f"cold_s={cold_s:.2f} warm_s={warm_s:.2f} first_warm_s={first:.2f} "
        f"startup_ratio={statistics.median(ratios):.2f} saved_s={cold_s - warm_s:.2f}"
    )


if __name__ == "__main__":
    main()
