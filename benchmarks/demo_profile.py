"""Where a finished demo's time went: per stage, from the rules' benchmark files and logs.

The README's per-stage table of ``make demo`` comes from this script, so that it can be
made again on any finished demo tree. For each job it reads

* the benchmark file (``benchmarks/<stem>.tsv``): wall seconds (``s``) and
  ``cpu_time``; under a warm start (``warm_start: true``) ``cpu_time`` counts only the
  small process that waits for the forked child, so
* the job's log (``logs/<stem>.log``): its first line names the rule (which sets the
  stage) and the wildcards, and a warm child's last line carries its own CPU seconds
  (``langarith.warm: job cpu_s=...``), used instead when present.

It prints one row per stage (jobs, sum of CPU seconds, sum of wall seconds, longest
job) and the totals. On a shared machine the wall seconds are inflated by the other
processes; the CPU seconds are not (much), so ``cpu_s / cores`` is the figure to
project a quiet run from.

With ``--dry-run <file>`` (the output of ``snakemake -n --forceall --configfile
config/demo.yaml``, run in the demo's directory) it also gives the DAG's critical path
(the longest chain of dependent jobs, by each job's CPU or wall seconds) and a
simulated run on ``--cores`` one-thread jobs: a list schedule that starts, whenever a
core is free, the ready job with the longest remaining path below it (the order
Snakemake's ``--scheduler greedy`` approaches with rule priorities). Jobs found in the
DAG but without a benchmark file (``all``) take 0 s.

Usage::

    .venv/bin/python benchmarks/demo_profile.py /path/to/demo
    .venv/bin/python benchmarks/demo_profile.py /path/to/demo --dag dag.dot --cores 2
"""

from __future__ import annotations

import argparse
import ast
import heapq
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

#: Rule name -> stage of the README's table; rules not listed go to "light jobs".
STAGES: dict[str, str] = {
    "backbone": "backbones",
    "init_language_adapter": "θ_init",
    "tokenize_corpus": "token files",
    "train_language_adapter": "language adapters",
    "train_budget_adapter": "token-budget adapters",
    "train_task_adapter": "task adapters",
    "lambda_grid": "λ grids",
    "lambda_grid_label_free": "λ grids",
}
#: Rule-name prefixes of the arms (their own stage each).
ARM_PREFIXES: dict[str, str] = {
    "xmod_": "arm: X-MOD",
    "fullft_": "arm: full-model",
    "tlr_": "arm: TLR",
}
#: Rules of the arms outside those prefixes (their tables), and the arms' scenarios.
ARM_RULES = {"task_arithmetic_table", "task_arithmetic_lambda_table", "label_free_table"}
ARM_SCENARIOS = {"zero_shot_nway"}
LIGHT = "data, related, analysis, tables, figures"
_FIRST = re.compile(r"rule (\w+), wildcards (\{.*\})")
_CPU = re.compile(r"langarith\.warm: job cpu_s=([0-9.]+)")


@dataclass(frozen=True)
class Job:
    stem: str
    rule: str
    wildcards: tuple[tuple[str, str], ...]
    wall_s: float
    cpu_s: float
    warm: bool  # CPU seconds from the warm child's log line

    @property
    def stage(self) -> str:
        if self.rule in STAGES:
            return STAGES[self.rule]
        for prefix, stage in ARM_PREFIXES.items():
            if self.rule.startswith(prefix) and not self.rule.endswith(("_table", "_figure")):
                return stage
        return LIGHT

    @property
    def arm(self) -> bool:
        """A job of an arm (X-MOD, full-model, TLR, N-way, label-free table), not the core.

        The label-free selectors run inside the core's zero-shot λ jobs and count there.
        """
        wildcards = dict(self.wildcards)
        return (
            self.rule.startswith(tuple(ARM_PREFIXES))
            or self.rule in ARM_RULES
            or wildcards.get("scenario") in ARM_SCENARIOS
            or wildcards.get("table") in ARM_SCENARIOS
        )

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.rule, self.wildcards


def _benchmark_row(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of a benchmark TSV (the last row: the last attempt)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    header, row = lines[0].split("\t"), lines[-1].split("\t")
    values = dict(zip(header, row, strict=False))

    def number(name: str) -> float:
        try:
            return float(values.get(name, "nan"))
        except ValueError:
            return float("nan")

    return number("s"), number("cpu_time")


def read_jobs(demo: Path) -> list[Job]:
    """Every job of a finished demo tree that left a benchmark file and a log."""
    jobs = []
    for bench in sorted((demo / "benchmarks").rglob("*.tsv")):
        stem = bench.relative_to(demo / "benchmarks").as_posix()[: -len(".tsv")]
        log = demo / "logs" / f"{stem}.log"
        if not log.is_file():
            continue
        text = log.read_text(encoding="utf-8", errors="replace")
        first = _FIRST.search(text.split("\n", 1)[0])
        if not first:
            continue
        wildcards = ast.literal_eval(first.group(2))
        wall, cpu = _benchmark_row(bench)
        warm_cpu = _CPU.findall(text)
        jobs.append(
            Job(
                stem=stem,
                rule=first.group(1),
                wildcards=tuple(sorted((str(k), str(v)) for k, v in wildcards.items())),
                wall_s=wall,
                cpu_s=float(warm_cpu[-1]) if warm_cpu else cpu,
                warm=bool(warm_cpu),
            )
        )
    return jobs


def stage_table(jobs: list[Job]) -> list[tuple[str, int, float, float, str, float]]:
    """(stage, jobs, CPU s, wall s, longest job's stem, its wall s), largest CPU first."""
    by_stage: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        by_stage[job.stage].append(job)
    rows = []
    for stage, members in by_stage.items():
        longest = max(members, key=lambda j: j.wall_s)
        rows.append(
            (
                stage,
                len(members),
                sum(j.cpu_s for j in members),
                sum(j.wall_s for j in members),
                longest.stem,
                longest.wall_s,
            )
        )
    return sorted(rows, key=lambda r: -r[2])


# -- the DAG -------------------------------------------------------------------------

_BLOCK = re.compile(r"^(?:local)?rule (\w+):\n((?:    \w+: .*\n?)+)", re.MULTILINE)


def read_dry_run(text: str) -> tuple[dict[int, tuple[str, str]], list[tuple[int, int]]]:
    """Jobs (id -> (rule, benchmark stem or "")) and edges (producer, consumer) of the
    output of ``snakemake -n --forceall``: a job depends on the job whose output it reads.
    """
    jobs: dict[int, tuple[str, str]] = {}
    inputs: dict[int, list[str]] = {}
    producer: dict[str, int] = {}
    for number, (rule, body) in enumerate(_BLOCK.findall(text)):
        fields = dict(line.strip().split(": ", 1) for line in body.splitlines() if ": " in line)
        bench = fields.get("benchmark", "")
        stem = bench[len("benchmarks/") : -len(".tsv")] if bench.endswith(".tsv") else ""
        jobs[number] = (rule, stem)
        inputs[number] = [p.strip() for p in fields.get("input", "").split(",") if p.strip()]
        for path in fields.get("output", "").split(","):
            if path.strip():
                producer[path.strip()] = number
    edges = sorted(
        {(producer[p], job) for job, paths in inputs.items() for p in paths if p in producer}
    )
    return jobs, edges


def schedule(
    durations: dict[int, float], edges: list[tuple[int, int]], cores: int
) -> tuple[float, float, list[int]]:
    """Critical path length, simulated makespan on ``cores`` and the critical path's jobs.

    Every job takes one core. Ready jobs start longest-remaining-path first.
    """
    after: dict[int, list[int]] = defaultdict(list)
    waiting = dict.fromkeys(durations, 0)
    for a, b in edges:
        after[a].append(b)
        waiting[b] += 1
    # longest path from each job to the end (its own duration included)
    order, indegree = [], dict(waiting)
    ready = [n for n, d in indegree.items() if d == 0]
    while ready:
        node = ready.pop()
        order.append(node)
        for nxt in after[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    below: dict[int, float] = {}
    for node in reversed(order):
        below[node] = durations[node] + max((below[n] for n in after[node]), default=0.0)
    start = max(below, key=below.__getitem__)
    path = [start]
    while after[path[-1]]:
        path.append(max(after[path[-1]], key=below.__getitem__))
    # list schedule
    clock, free, running = 0.0, cores, []  # running: heap of (end, node)
    queue = [(-below[n], n) for n, d in waiting.items() if d == 0]
    heapq.heapify(queue)
    while queue or running:
        while queue and free:
            _, node = heapq.heappop(queue)
            heapq.heappush(running, (clock + durations[node], node))
            free -= 1
        clock, node = heapq.heappop(running)
        free += 1
        for nxt in after[node]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(queue, (-below[nxt], nxt))
    return below[start], clock, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("demo", type=Path, help="a finished demo's directory")
    parser.add_argument("--dry-run", type=Path, help="`snakemake -n --forceall` output")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--by", choices=("cpu", "wall"), default="cpu", help="job durations of the DAG figures"
    )
    args = parser.parse_args(argv)
    jobs = read_jobs(args.demo)
    if not jobs:
        print(f"no benchmark files with logs under {args.demo}", file=sys.stderr)
        return 1
    print("| stage | jobs | CPU s | wall s | longest job (wall s) |\n|---|---|---|---|---|")
    for stage, count, cpu, wall, stem, longest in stage_table(jobs):
        print(f"| {stage} | {count} | {cpu:,.0f} | {wall:,.0f} | {stem} ({longest:.1f}) |")
    cpu_total = sum(j.cpu_s for j in jobs)
    wall_total = sum(j.wall_s for j in jobs)
    warm = sum(j.warm for j in jobs)
    core = [j for j in jobs if not j.arm]
    core_cpu, core_wall = sum(j.cpu_s for j in core), sum(j.wall_s for j in core)
    print(f"| the core (no arm) | {len(core)} | {core_cpu:,.0f} | {core_wall:,.0f} | |")
    print(f"| all | {len(jobs)} | {cpu_total:,.0f} | {wall_total:,.0f} | |")
    print(
        f"jobs={len(jobs)} warm_cpu_logged={warm} cpu_s={cpu_total:.0f} wall_s={wall_total:.0f} "
        f"cpu_per_core_min={cpu_total / args.cores / 60:.1f} core_jobs={len(core)} "
        f"core_cpu_s={core_cpu:.0f} core_wall_s={core_wall:.0f}"
    )
    if args.dry_run:
        nodes, edges = read_dry_run(args.dry_run.read_text(encoding="utf-8"))
        by_stem = {j.stem: j for j in jobs}
        durations = {}
        for node, (_rule, stem) in nodes.items():
            job = by_stem.get(stem)
            seconds = 0.0 if job is None else (job.cpu_s if args.by == "cpu" else job.wall_s)
            durations[node] = seconds
        missing = sum(1 for rule, stem in nodes.values() if stem not in by_stem and rule != "all")
        critical, makespan, path = schedule(durations, edges, args.cores)
        print(f"critical path ({args.by} s), {len(path)} jobs:")
        for node in path:
            print(f"  {durations[node]:7.1f}  {nodes[node][0]} {nodes[node][1]}")
        print(
            f"critical_s={critical:.0f} simulated_makespan_s={makespan:.0f} "
            f"(cores={args.cores}, by={args.by}, dag_jobs={len(nodes)}, "
            f"without_benchmark={missing})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
