"""Benchmark of the λ-grid engine against naive per-λ loops (load once, and reload).

On the demo's own validation split of one (model, task, target) it times, in one
process and on the same data:

1. **naive, load once**: what a researcher would write: the backbone, the task adapter
   and both language adapters loaded once; for each of the 21 λ of the grid the
   ``adapters`` library's ``average_adapter`` plus a hand-made merge of the invertible
   adapter re-merges the language adapters, then
   ``langarith.train.task_features.evaluate_task`` (batches of 32 in dataset order);
   the reference of the headline ``speedup``;
2. **naive, reload**: the same, but a fresh model from the backbone folder, the task
   adapter and both language adapters loaded from disk for every λ (``speedup_reload``);
3. **engine**: the workflow's engine over the same 21 λ (model loaded once, merged
   weights written in place, length-sorted batches, ``torch.inference_mode()``, passes
   replayed from a checked trace and run on ``--threads`` lanes:
   :mod:`langarith.evaluate.replay`; its trace and checks are in its time);
4. **bare passes**: 21 forward passes over the engine's batches, run as the engine runs
   them, nothing else: the limit the engine should sit on;
5. **coarse-to-fine**: the engine with ``lambda_search: coarse_to_fine`` (0.2 steps, then
   the best point's neighbours at 0.1 and at 0.05: 10 evaluations instead of 21);
6. **race**: the engine with ``lambda_search: race`` (:mod:`langarith.evaluate.race`:
   three anchors on every row, then the grid bisected where it can beat the leader,
   each new λ scored only on the rows that differ between its neighbours plus an audit;
   the choice scored on the whole split), its subsets' batching included.

The six take turns for ``--repeats`` rounds (the machine is shared; each keeps its best
round; each round's own ``speedup`` and ``race_speedup`` are printed too, to show how much
the machine moves them). It checks that both naive loops and the engine give the same
scores and prints, last, one line::

    speedup=<naive load-once/(engine + its one-time load)> \
speedup_reload=<naive reload/(engine + load)> limit_ratio=<engine/bare passes> \
search_speedup=<naive load-once/(coarse-to-fine + load)> \
search_speedup_reload=<naive reload/(coarse-to-fine + load)> \
same_lambda=<share of cases where coarse-to-fine picks the full grid's λ> \
race_speedup=<naive load-once/(race + load)> \
race_regret=<mean over curves of full-grid best − validation score at the race's λ>

``same_lambda`` replays coarse-to-fine on every full validation curve of the demo's score
CSVs (``results/scores``; evaluation is deterministic, so a replay picks what a run
would). ``race_regret`` (points of the main metric) needs per-row scores, which the CSVs
do not hold: for every score CSV of the demo tree it loads that job's model and adapters
again (the jobs planned by the demo's config), races each full λ curve of the CSV (not
TIES, not MIX) and reads the CSV's validation score at the race's λ. Without demo score
CSVs both use curves measured here.

Usage (after ``make demo``)::

    .venv/bin/python benchmarks/lambda_grid.py                 # tinybert, ner, first target
    .venv/bin/python benchmarks/lambda_grid.py --task nli --target de
    .venv/bin/python benchmarks/lambda_grid.py --toy /tmp/toy --rows 1000   # no demo needed
    .venv/bin/python benchmarks/lambda_grid.py --demo-dir /tmp/demo-run    # a demo run elsewhere
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the toy setup and the naive reference loop are test code: they live in tests/
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
import yaml  # noqa: E402
from naive_reference import naive_lambda_scores  # noqa: E402
from toy_setup import build_toy_setup  # noqa: E402

from langarith import LangarithError, paths  # noqa: E402
from langarith.config import grid, task_targets  # noqa: E402
from langarith.data import read_split  # noqa: E402
from langarith.evaluate.jobs import Curve, ScoreJob  # noqa: E402
from langarith.evaluate.lambda_engine import LambdaGridEngine, Point  # noqa: E402
from langarith.evaluate.race import RaceTrace, race_lambda, race_search  # noqa: E402
from langarith.evaluate.runner import race_rows  # noqa: E402
from langarith.evaluate.scenarios import plan_jobs  # noqa: E402
from langarith.evaluate.score_files import read_scores  # noqa: E402
from langarith.evaluate.search import best_lambda, search_lambda  # noqa: E402
from langarith.evaluate.tasks import EncodedSplit  # noqa: E402
from langarith.metrics import TASK_METRICS  # noqa: E402
from langarith.related import read_related_table  # noqa: E402

DATASET_OF_KIND = {"ner": "wikiann", "nli": "xnli", "qa": "xquad"}


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config",
        type=Path,
        help="the demo's config (default: config/demo.yaml of --demo-dir, else of the repo)",
    )
    parser.add_argument(
        "--demo-dir",
        "--root",
        dest="root",
        type=Path,
        default=ROOT,
        help="where the demo ran (its resources/ and results/; default: the repo)",
    )
    parser.add_argument("--model", help="default: the config's first model")
    parser.add_argument("--task", default="ner")
    parser.add_argument("--target", help="default: the task's first target")
    parser.add_argument("--seed", type=int, help="default: the config's first seed")
    parser.add_argument("--related", help="default: from results/related_languages.tsv")
    parser.add_argument("--toy", type=Path, help="build and use a toy setup in this folder")
    parser.add_argument("--rows", type=int, default=1000, help="toy: validation rows")
    parser.add_argument("--hidden", type=int, default=64, help="toy: hidden size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timings: best of N rounds")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


def _demo_case(args: argparse.Namespace) -> dict:
    """Paths of one (model, task, target, seed) of a finished demo run."""
    config_path = args.config
    if config_path is None:
        config_path = args.root / "config" / "demo.yaml"
        if not config_path.is_file():
            config_path = ROOT / "config" / "demo.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    model = args.model or config["models"][0]["name"]
    seed = args.seed if args.seed is not None else config["seeds"][0]
    spec = config["tasks"][args.task]
    target = args.target or task_targets(config, args.task)[0][0]
    source = config.get("source_language", "en")
    root = args.root
    related = args.related
    tsv = root / paths.RELATED_TSV
    if related is None and tsv.is_file():
        related = read_related_table(tsv).get(target)
    case = {
        "label": f"{model}/{args.task}/{target}/seed{seed}",
        "kind": spec["kind"],
        "backbone": root / paths.BACKBONE_DIR.format(model=model),
        "task_adapter": root
        / paths.TASK_ADAPTER_DIR.format(
            model=model, task=spec.get("adapter_from") or args.task, seed=seed
        ),
        "init": root / paths.INIT_DIR.format(model=model),
        "first": (
            source,
            root / paths.LANG_ADAPTER_DIR.format(model=model, lang=source, seed=seed),
        ),
        "data": root / paths.DATA_DIR.format(dataset=spec["eval_dataset"], lang=target),
        "grid": grid(config["lambda_grid"]),
        "per_task": (config.get("task_adapter") or {}).get("per_task", {}).get(args.task, {}),
        "scores": root / "results" / "scores",
        "config": config,
        "root": root,
    }
    if related is not None:
        case["second"] = (
            related,
            root / paths.LANG_ADAPTER_DIR.format(model=model, lang=related, seed=seed),
        )
    wanted = [case["backbone"], case["task_adapter"], case["init"], case["first"][1], case["data"]]
    if related is None:
        wanted.append(tsv)
    else:
        wanted.append(case["second"][1])
    missing = [str(p) for p in wanted if not Path(p).exists()]
    if missing:
        raise LangarithError(
            "The demo outputs this benchmark runs on are missing:\n  "
            + "\n  ".join(missing)
            + f"\nRun `make demo` in {root} first (or pass --root to where it ran), or run "
            "on a self-built fixture: python benchmarks/lambda_grid.py --toy /tmp/toy"
        )
    return case


def _toy_case(args: argparse.Namespace) -> dict:
    kind = args.task if args.task in DATASET_OF_KIND else "ner"
    setup = build_toy_setup(
        args.toy, kinds=(kind,), rows=args.rows, hidden_size=args.hidden, targets=("es",)
    )
    return {
        "label": f"toy/{kind}/es (hidden {args.hidden}, {args.rows} rows)",
        "kind": kind,
        "backbone": setup.backbone,
        "task_adapter": setup.task[kind],
        "init": setup.init,
        "first": ("en", setup.lang["en"]),
        "second": ("it", setup.lang["it"]),
        "data": setup.data_dir(kind, "es"),
        "grid": grid({"start": 0.0, "stop": 1.0, "step": 0.05}),
        "per_task": {"max_length": 128, "doc_stride": 64},
        "scores": None,
        "toy": setup,
    }


def _engine(case: dict, device: str) -> tuple[LambdaGridEngine, float]:
    started = time.perf_counter()
    engine = LambdaGridEngine.load(
        case["backbone"],
        case["task_adapter"],
        case["init"],
        dict([case["first"], case["second"]]),
        case["kind"],
        device=device,
    )
    return engine, time.perf_counter() - started


def _demo_curves(scores_dir: Path | None, full: list[float]) -> list[dict[float, float]]:
    """Full-grid validation curves (main metric) of every score CSV under ``scores_dir``."""
    curves: list[dict[float, float]] = []
    if scores_dir is None or not scores_dir.is_dir():
        return curves
    wanted = {round(x, 10) for x in full}
    main_metrics = set(TASK_METRICS.values())  # f1 (NER, QA), accuracy (NLI)
    for path in sorted(scores_dir.rglob("*.csv")):
        groups: dict[tuple, dict[float, float]] = {}
        for row in read_scores(path):
            if row.split != "validation" or row.lam is None:
                continue
            if row.method in ("MIX", "TIES") or row.metric not in main_metrics:
                continue
            groups.setdefault((row.method, row.adapters), {})[row.lam] = row.score
        curves += [c for c in groups.values() if {round(x, 10) for x in c} == wanted]
    return curves


def _same_lambda(curves: list[dict[float, float]], full: list[float]) -> float:
    same = 0
    for curve in curves:
        replay = search_lambda(full, lambda lam, curve=curve: curve[lam], "coarse_to_fine")
        same += best_lambda(replay) == best_lambda(curve)
    return same / len(curves)


@dataclass
class _Bench:
    """One benchmark case, loaded: the engine with the encoded validation split."""

    case: dict
    args: argparse.Namespace
    rows: list
    engine: LambdaGridEngine
    split: EncodedSplit
    race_passes: int = 0

    @property
    def lambdas(self) -> list[float]:
        return self.case["grid"]

    @property
    def pair(self) -> tuple[str, str]:
        return self.case["first"][0], self.case["second"][0]

    def naive(self, load_once: bool) -> tuple[dict, float]:
        """A naive loop over the grid: (λ → metrics, seconds); see the module docstring."""
        case = self.case
        return naive_lambda_scores(
            case["backbone"],
            case["task_adapter"],
            case["init"],
            case["first"][1],
            case["second"][1],
            case["kind"],
            self.rows,
            self.lambdas,
            max_length=int(case["per_task"].get("max_length", 128)),
            doc_stride=int(case["per_task"].get("doc_stride", 128)),
            device=self.args.device,
            load_once=load_once,
        )

    def fresh_engine(self, mode: str) -> tuple[dict, float, float]:
        """A fresh engine (load timed) over the grid; returns (curve, seconds, load)."""
        first, second = self.pair
        started = time.perf_counter()
        fresh, _ = _engine(self.case, self.args.device)
        load = time.perf_counter() - started
        fresh.expect_passes(self.split, len(self.lambdas))  # as a job does
        scores: dict[float, dict] = {}

        def score(lam: float) -> float:
            scores[lam] = fresh.score(Point.pair(first, second, lam), self.split)
            return scores[lam][self.split.main_metric]

        search_lambda(self.lambdas, score, mode)
        return scores, time.perf_counter() - started, load

    def fresh_race(self) -> tuple[float, float]:
        """A fresh engine (load timed) racing over the grid; returns (choice, seconds)."""
        first, second = self.pair
        started = time.perf_counter()
        fresh, _ = _engine(self.case, self.args.device)
        lengths = _lengths(self.case)
        split = self.split  # encoded once, as for the full grid's engine
        rows_of = race_rows(
            fresh,
            self.rows,
            split,
            lambda name, rows, features: fresh.encode(name, rows, **lengths, encoded=features),
        )

        def score(lam: float) -> float:
            return fresh.score(Point.pair(first, second, lam), split)[split.main_metric]

        curve = Curve("LA", (first, second), tuple(self.lambdas))
        chosen = race_search(self.lambdas, score, rows_of(curve))
        self.race_passes = fresh.forward_passes
        return next(iter(chosen)), time.perf_counter() - started

    def limit(self) -> tuple[float, float]:
        """Per λ, one engine evaluation and one bare pass, interleaved: (engine, bare)."""
        first, second = self.pair
        self.engine.clear_cache()
        evaluated = bare = 0.0
        for lam in self.lambdas:
            started = time.perf_counter()
            self.engine.score(Point.pair(first, second, lam), self.split)
            evaluated += time.perf_counter() - started
            bare += self.engine.bare_pass(self.split)
        return evaluated, bare


def _lengths(case: dict) -> dict[str, int]:
    return {
        "max_length": int(case["per_task"].get("max_length", 128)),
        "doc_stride": int(case["per_task"].get("doc_stride", 128)),
    }


def _load_bench(case: dict, args: argparse.Namespace) -> _Bench:
    """Load the engine and encode the split (the first load also imports; not timed)."""
    rows = read_split(case["data"], "validation")
    engine, _ = _engine(case, args.device)
    split = engine.encode(
        "validation",
        rows,
        max_length=int(case["per_task"].get("max_length", 128)),
        doc_stride=int(case["per_task"].get("doc_stride", 128)),
    )
    bench = _Bench(case, args, rows, engine, split)
    first, second = bench.pair
    lengths = split.info["lengths"]
    print(
        f"case: {case['label']}, LA({first}, {second}), {len(bench.lambdas)} λ, "
        f"{torch.get_num_threads()} threads, device {args.device}"
    )
    print(
        f"validation split: {split.n_examples} examples, {split.n_features} features, "
        f"{min(lengths)}-{max(lengths)} tokens (mean {statistics.mean(lengths):.1f}), "
        f"{len(split.batches)} sorted batches, {split.tokens} padded tokens"
    )
    engine.score(Point.pair(first, second, 0.5), split)  # warm-up, not timed
    return bench


def _rounds(bench: _Bench, repeats: int) -> dict:
    """The measurements, taking turns for ``repeats`` rounds.

    Load from other processes on the machine then hits them alike; each keeps its best
    round (the limit ratio: its median round).
    """
    naive_runs, once_runs, engine_runs, c2f_runs, ratios, loads = [], [], [], [], [], []
    race_runs, race_choice = [], None
    for _ in range(repeats):
        once, seconds = bench.naive(load_once=True)
        once_runs.append(seconds)
        naive, seconds = bench.naive(load_once=False)
        naive_runs.append(seconds)
        engine_scores, seconds, load = bench.fresh_engine("full")
        engine_runs.append(seconds)
        loads.append(load)
        evaluated, bare = bench.limit()
        ratios.append(evaluated / bare)
        c2f_scores, seconds, _ = bench.fresh_engine("coarse_to_fine")
        c2f_runs.append(seconds)
        race_choice, seconds = bench.fresh_race()
        race_runs.append(seconds)
    return {
        "naive": naive,
        "once": once,
        "engine": engine_scores,
        "c2f": c2f_scores,
        "naive_s": min(naive_runs),
        "once_s": min(once_runs),
        "engine_s": min(engine_runs),
        "c2f_s": min(c2f_runs),
        "race_s": min(race_runs),
        "race_choice": race_choice,
        "load": min(loads),
        "ratios": ratios,
        "per_round": [
            (once / engine, once / race)
            for once, engine, race in zip(once_runs, engine_runs, race_runs, strict=True)
        ],
    }


def _print_timings(bench: _Bench, result: dict, repeats: int) -> float:
    """Print the timings and the naive-vs-engine check; return the largest difference."""
    lambdas, main_metric = bench.lambdas, bench.split.main_metric
    naive, once, engine_scores = result["naive"], result["once"], result["engine"]
    naive_s, once_s = result["naive_s"], result["once_s"]
    engine_s, load = result["engine_s"], result["load"]
    c2f_curve = {lam: m[main_metric] for lam, m in result["c2f"].items()}
    diffs = [
        abs(reference[lam][m] - engine_scores[lam][m])
        for reference in (naive, once)
        for lam in lambdas
        for m in reference[lam]
    ]
    max_diff = max(diffs)
    full_curve = {lam: engine_scores[lam][main_metric] for lam in lambdas}
    print(f"timings: best of {repeats} rounds (limit ratio: median)")
    print(f"naive reload:   {naive_s:8.3f} s  ({naive_s / len(lambdas) * 1000:.1f} ms per λ)")
    print(f"naive load-once:{once_s:8.3f} s  ({once_s / len(lambdas) * 1000:.1f} ms per λ)")
    print(
        f"engine:         {engine_s:8.3f} s  (load {load:.3f} s + "
        f"{(engine_s - load) / len(lambdas) * 1000:.1f} ms per λ)"
    )
    print(
        f"limit ratio per round (engine / bare passes): {[round(r, 3) for r in result['ratios']]}"
    )
    print(  # the spread the machine itself adds; the summary line divides best by best
        "speedup and race_speedup per round (the round's own times): "
        + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in result["per_round"])
    )
    runner = bench.engine.runner
    print(
        f"passes run on {runner.lanes} lane(s); batches replayed from the checked trace: "
        f"{runner.replayed_batches}, eager: {runner.eager_batches} (the limit's engine)"
    )
    print(f"coarse-to-fine: {result['c2f_s']:8.3f} s  ({len(c2f_curve)} evaluations)")
    print(
        f"race:           {result['race_s']:8.3f} s  (chose λ = {result['race_choice']}, "
        f"{bench.race_passes} forward passes over whole or partial splits)"
    )
    print(
        f"scores equal: {max_diff == 0} (max |naive - engine| over both loops = "
        f"{max_diff:.3g}); "
        f"best λ full grid {best_lambda(full_curve)} ({full_curve[best_lambda(full_curve)]:.2f}), "
        f"coarse-to-fine {best_lambda(c2f_curve)}"
    )
    return max_diff


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    try:
        case = _toy_case(args) if args.toy else _demo_case(args)
        if "second" not in case:
            raise LangarithError(f"No related language for {case['label']}; pass --related LANG")
    except LangarithError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    bench = _load_bench(case, args)
    result = _rounds(bench, args.repeats)
    max_diff = _print_timings(bench, result, args.repeats)

    curves = _demo_curves(case["scores"], bench.lambdas)
    source = f"{len(curves)} full validation curves of {case['scores']}"
    if not curves:
        curves = _measured_curves(case, bench.engine, bench.split, args)
        source = f"{len(curves)} curves measured here (no demo score CSVs)"
    same = _same_lambda(curves, bench.lambdas)
    print(f"same_lambda over {source}")
    regrets, regret_source = [], ""
    if "toy" not in case:
        regrets = _demo_race_regrets(_demo_jobs(case), case["root"], args.device)
        regret_source = f"{len(regrets)} full validation curves of {case['scores']}"
    if not regrets:
        regrets = _measured_race_regrets(case, bench.split, args)
        regret_source = f"{len(regrets)} curves measured here (no demo score CSVs)"
    passes = [p for _, p in regrets]
    regrets = [r for r, _ in regrets]
    print(
        f"race_regret over {regret_source}: max {max(regrets):.3f}, "
        f"{sum(r > 0 for r in regrets)} curve(s) with a regret; passes' worth of rows per "
        f"race (report included): mean {statistics.mean(passes):.2f}, max {max(passes):.2f} "
        f"(the full grid: {len(bench.lambdas)})"
    )
    if max_diff > 1e-6:
        print("WARNING: naive and engine scores differ", file=sys.stderr)
    once_s, naive_s = result["once_s"], result["naive_s"]
    print(
        f"speedup={once_s / result['engine_s']:.2f} "
        f"speedup_reload={naive_s / result['engine_s']:.2f} "
        f"limit_ratio={statistics.median(result['ratios']):.3f} "
        f"search_speedup={once_s / result['c2f_s']:.2f} "
        f"search_speedup_reload={naive_s / result['c2f_s']:.2f} same_lambda={same:.2f} "
        f"race_speedup={once_s / result['race_s']:.2f} "
        f"race_regret={statistics.mean(regrets):.3f}"
    )
    return 0


def _measured_curves(case, engine, split, args) -> list[dict[float, float]]:
    """Full curves of the benchmark's own pair and, on a toy setup, of every other pair."""
    lambdas, metric = case["grid"], split.main_metric
    pairs = [(case["first"][0], case["second"][0])]
    if "toy" in case:
        setup = case["toy"]
        engine = LambdaGridEngine.load(
            case["backbone"],
            case["task_adapter"],
            case["init"],
            dict(setup.lang),
            case["kind"],
            device=args.device,
        )
        pairs = [(a, b) for a in sorted(setup.lang) for b in sorted(setup.lang) if a != b]
    return [
        {lam: engine.score(Point.pair(a, b, lam), split)[metric] for lam in lambdas}
        for a, b in pairs
    ]


def _toy_pairs_engine(case: dict, args: argparse.Namespace) -> LambdaGridEngine:
    setup = case["toy"]
    return LambdaGridEngine.load(
        case["backbone"],
        case["task_adapter"],
        case["init"],
        dict(setup.lang),
        case["kind"],
        device=args.device,
    )


def _measured_race_regrets(case: dict, split: EncodedSplit, args) -> list[tuple[float, float]]:
    """(regret, passes) of the race on the curves of ``_measured_curves`` (toy: every pair)."""
    lambdas, metric = case["grid"], split.main_metric
    rows = read_split(case["data"], "validation")
    pairs = [(case["first"][0], case["second"][0])]
    engine, _ = _engine(case, args.device)
    if "toy" in case:
        engine = _toy_pairs_engine(case, args)
        pairs = [(a, b) for a in sorted(case["toy"].lang) for b in sorted(case["toy"].lang)]
        pairs = [(a, b) for a, b in pairs if a != b]
    lengths = _lengths(case)
    full = engine.encode("validation", rows, **lengths)
    rows_of = race_rows(
        engine, rows, full, lambda name, r, f: engine.encode(name, r, **lengths, encoded=f)
    )
    regrets = []
    for a, b in pairs:
        curve = {lam: engine.score(Point.pair(a, b, lam), full)[metric] for lam in lambdas}
        trace = RaceTrace()
        chosen = race_lambda(lambdas, rows_of(Curve("LA", (a, b), tuple(lambdas))), trace=trace)
        regrets.append((curve[best_lambda(curve)] - curve[chosen], _passes(trace, chosen, rows)))
    return regrets


def _demo_jobs(case: dict) -> list[ScoreJob]:
    """The demo config's evaluation jobs whose score CSV exists under the demo tree."""
    root = case["root"]
    tsv = root / paths.RELATED_TSV
    related = read_related_table(tsv) if tsv.is_file() else None
    try:
        jobs = plan_jobs(case["config"], related=related)
    except LangarithError as err:
        print(f"race_regret: cannot plan the demo's jobs ({err})", file=sys.stderr)
        return []
    return [job for job in jobs if (root / job.output).is_file()]


def _csv_curves(path: Path) -> dict[tuple[str, str], dict[float, float]]:
    """(method, adapters) → λ → validation score (main metric) of one score CSV."""
    main_metrics = set(TASK_METRICS.values())
    curves: dict[tuple[str, str], dict[float, float]] = {}
    for row in read_scores(path):
        if row.split == "validation" and row.lam is not None and row.metric in main_metrics:
            curves.setdefault((row.method, row.adapters), {})[round(row.lam, 10)] = row.score
    return curves


def _demo_race_regrets(jobs: list[ScoreJob], root: Path, device: str) -> list[tuple[float, float]]:
    """Race every full linear λ curve of each job's score CSV again; (regret, passes) each.

    The job's folders are relative to ``root`` (the demo tree); absolute ones are kept.
    """
    regrets = []
    for job in jobs:
        held = _csv_curves(root / job.output)
        todo = []
        for curve in job.curves:
            found = held.get((curve.method, ",".join(curve.adapters)), {})
            if curve.merge == "linear" and set(found) == {round(x, 10) for x in curve.grid}:
                todo.append((curve, found))
        if not todo:
            continue
        used = {label for curve, _ in todo for label in curve.adapters}
        engine = LambdaGridEngine.load(
            root / job.backbone,
            root / job.task_adapter,
            root / job.init,
            {label: root / folder for label, folder in job.adapters if label in used},
            job.kind,
            device=device,
        )
        rows = read_split(root / job.data, "validation")
        lengths = {"max_length": job.max_length, "doc_stride": job.doc_stride}
        full = engine.encode("validation", rows, **lengths)
        rows_of = race_rows(
            engine,
            rows,
            full,
            lambda name, r, f, e=engine, kw=lengths: e.encode(name, r, **kw, encoded=f),
        )
        for curve, values in todo:
            trace = RaceTrace()
            chosen = race_lambda(curve.grid, rows_of(curve), trace=trace)
            regret = values[best_lambda(values)] - values[round(chosen, 10)]
            regrets.append((regret, _passes(trace, chosen, rows)))
    return regrets


def _passes(trace: RaceTrace, chosen: float, rows: list) -> float:
    """Passes' worth of rows a race scored, with the report's pass unless it had all rows."""
    final = 0 if chosen in trace.whole else len(rows)
    return (trace.total_rows + final) / len(rows)


if __name__ == "__main__":
    sys.exit(main())
