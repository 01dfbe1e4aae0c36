"""The racing λ search (``lambda_search: race``): its rule on synthetic per-row statistics,
its place in a job, and its per-row statistics on a real (toy) model; and the cached
plan that keeps ``snakemake -n`` fast (the speed issue's other half)."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from toy_setup import build_toy_setup

from langarith import LangarithError
from langarith.config import ConfigError, validate_schema
from langarith.data import read_split
from langarith.evaluate import race as race_module
from langarith.evaluate.jobs import Baseline, Curve, ScoreJob
from langarith.evaluate.lambda_engine import LambdaGridEngine, Point
from langarith.evaluate.race import (
    RaceData,
    RaceTrace,
    anchor_indices,
    race_lambda,
    race_search,
)
from langarith.evaluate.runner import execute, race_rows, run_job
from langarith.evaluate.scenarios import find_job, plan_jobs, related_languages
from langarith.evaluate.score_files import read_scores
from langarith.evaluate.search import best_lambda, search_lambda
from langarith.train.task_features import select_rows

ROOT = Path(__file__).resolve().parents[1]
GRID = tuple(round(0.05 * i, 10) for i in range(21))


def _accuracy(totals: np.ndarray, rows: int) -> float:
    return 100.0 * float(totals[0]) / rows


class _Synthetic:
    """Per-row correctness of a λ curve: row r is right at λ when ``u[r] < p(λ)``.

    ``noise`` adds a per-row jitter that varies smoothly with λ (a random phase per
    row) plus a tenth of it independently per (λ, row): neighbouring λ disagree on a few
    rows, as real predictions do, and the curve on all rows is noisy.
    """

    def __init__(self, accuracy, rows: int = 400, noise: float = 0.0, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.u = rng.random(rows)
        self.phase = rng.random(rows)
        self.noise = noise
        self.accuracy = accuracy
        self.seed = seed
        self.calls: list[tuple[float, tuple[int, ...]]] = []
        self.trace = RaceTrace()

    def correct(self, lam: float) -> np.ndarray:
        own = np.random.default_rng((self.seed, round(lam * 1000))).normal(size=self.u.size)
        jitter = np.sin(2 * np.pi * (lam + self.phase)) + 0.1 * own
        return (self.u + self.noise * jitter < self.accuracy(lam)).astype(float)

    def curve(self) -> dict[float, float]:
        return {lam: 100.0 * self.correct(lam).mean() for lam in GRID}

    def data(self) -> RaceData:
        def stats(lam: float, rows: np.ndarray) -> np.ndarray:
            assert (np.diff(rows) > 0).all()  # ascending, each row once
            self.calls.append((lam, tuple(rows.tolist())))
            return self.correct(lam)[rows, None]

        return RaceData(self.u.size, stats, _accuracy, (1,))

    def race(self, **kwargs) -> float:
        return race_lambda(GRID, self.data(), trace=self.trace, **kwargs)

    def rows_scored(self) -> int:
        return sum(len(rows) for _, rows in self.calls)


def test_anchors_are_evenly_spaced_grid_points_with_both_ends():
    assert anchor_indices(21) == [0, 10, 20]
    assert anchor_indices(11, 2) == [0, 10]
    assert anchor_indices(11, 5) == [0, 2, 5, 8, 10]
    assert anchor_indices(2) == [0, 1]


@pytest.mark.parametrize("peak", [0.0, 0.3, 0.65, 1.0])
def test_race_picks_the_full_grid_best_of_a_clear_winner_with_fewer_rows(peak):
    toy = _Synthetic(lambda lam: 0.8 - abs(lam - peak))
    assert toy.race() == best_lambda(toy.curve()) == peak
    assert toy.rows_scored() < 0.35 * len(GRID) * toy.u.size  # a third of the full grid
    assert toy.trace.total_rows == toy.rows_scored()


def test_only_the_ends_are_scored_on_every_row():
    """λ = 0.5 is an anchor (its intervals are opened once), but scored like any new
    point: on the rows λ = 0 and 1 disagree on, plus a (larger) audit."""
    toy = _Synthetic(lambda lam: 0.5 + 0.2 * lam)  # rows right at 0 stay right: 20 % differ
    assert toy.race() == best_lambda(toy.curve()) == 1.0
    first = {}
    for lam, rows in toy.calls:
        first.setdefault(lam, len(rows))
    assert first[0.0] == first[1.0] == toy.u.size
    differ = int((toy.correct(0.0) != toy.correct(1.0)).sum())
    agree = toy.u.size - differ  # audited: INNER_AUDIT times an interval's share
    audit = int(race_module.INNER_AUDIT * max(race_module.MIN_AUDIT, -(-agree // 32)))
    assert first[0.5] == differ + audit < toy.u.size
    assert toy.trace.whole == {0.0, 1.0}


def test_the_audit_finds_a_gain_the_anchors_agree_to_hide(monkeypatch):
    """Rows wrong at λ = 0, 0.5 and 1 but right near 0.25: no row differs between the
    anchors, so only the audit can see that merging helps there."""

    def peaked(lam: float) -> float:
        return 0.3 + 0.5 * max(0.0, 1 - abs(lam - 0.25) / 0.2)

    toy = _Synthetic(peaked)
    assert toy.race() == best_lambda(toy.curve()) == 0.25
    assert toy.trace.audits_failed >= 1
    monkeypatch.setattr(race_module, "MIN_AUDIT", 0)
    blind = _Synthetic(peaked)
    assert blind.race(audit_share=0.0) == 1.0  # without it: the anchors' tie, λ = 1
    assert blind.trace.audits_failed == 0


def test_race_is_deterministic():
    first = _Synthetic(lambda lam: 0.6 - 0.2 * abs(lam - 0.4), noise=0.3, seed=3)
    again = _Synthetic(lambda lam: 0.6 - 0.2 * abs(lam - 0.4), noise=0.3, seed=3)
    assert first.race() == again.race()
    assert first.calls == again.calls


def test_race_breaks_ties_towards_the_larger_lambda_as_best_lambda():
    flat = _Synthetic(lambda lam: 0.5)
    assert flat.race() == best_lambda(flat.curve()) == 1.0
    assert flat.rows_scored() < 4 * flat.u.size  # anchors agree on every row: audits only
    # equal on all rows except a tie between 0.2 and 0.25 above the rest
    twin = _Synthetic(lambda lam: 0.7 if lam in (0.2, 0.25) else 0.4)
    assert twin.race() == best_lambda(twin.curve()) == 0.25


def test_race_regret_is_small_on_noisy_curves():
    regrets = []
    for seed in range(12):
        peak = [0.1, 0.35, 0.5, 0.8][seed % 4]
        toy = _Synthetic(
            lambda lam, peak=peak: 0.55 - 0.25 * (lam - peak) ** 2, noise=0.2, seed=seed
        )
        curve = toy.curve()
        regrets.append(curve[best_lambda(curve)] - curve[toy.race()])
        assert toy.rows_scored() < len(GRID) * toy.u.size
    assert min(regrets) >= 0
    assert np.mean(regrets) <= 0.5  # points of accuracy; single rows are 0.25 points


def test_race_refuses_statistics_of_the_wrong_size():
    data = RaceData(10, lambda lam, rows: np.ones((3, 1)), _accuracy, (1,))
    with pytest.raises(LangarithError, match=r"expected \(10, 1\)"):
        race_lambda(GRID, data)


def test_race_search_scores_only_the_choice_on_the_whole_split():
    toy = _Synthetic(lambda lam: 0.8 - abs(lam - 0.3))
    full_calls = []

    def score(lam: float) -> float:
        full_calls.append(lam)
        return toy.curve()[lam]

    assert race_search(GRID, score, toy.data()) == {0.3: toy.curve()[0.3]}
    assert full_calls == [0.3]
    with pytest.raises(LangarithError, match="race_search"):
        search_lambda(GRID, score, "race")


# ----------------------------------------------------------------------------- config


def test_config_accepts_race_and_refuses_unknown_searches():
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))
    assert config["lambda_search"] == "full"
    paper = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    assert paper["lambda_search"] == "full"  # the papers' protocol stays the default
    for mode in ("full", "coarse_to_fine", "race"):
        validate_schema({**copy.deepcopy(config), "lambda_search": mode})
    with pytest.raises(ConfigError, match="lambda_search"):
        validate_schema({**copy.deepcopy(config), "lambda_search": "racing"})


# ----------------------------------------------------------------------------- a job


def _race_job(**changes) -> ScoreJob:
    job = ScoreJob(
        scenario="zero_shot", model="m", task="nli", target="es", seed=1, kind="nli",
        backbone="b", task_adapter="t", init="i", data="d",
        adapters=(("en", "x"), ("it", "y")),
        baselines=(Baseline("pEA", "en"),),
        curves=(Curve("LA", ("en", "it"), GRID),), search="race",
    )  # fmt: skip
    return dataclasses.replace(job, **changes)


def test_race_job_writes_the_chosen_point_scored_on_the_whole_split():
    toy = _Synthetic(lambda lam: 0.8 - abs(lam - 0.45))
    curve = toy.curve()

    def validation(point: Point) -> dict[str, float]:
        weights = dict(point.weights)
        return {"accuracy": curve[round(weights.get("en", 0.0), 10)] if "it" in weights else 1.0}

    rows = execute(
        _race_job(), validation, lambda: lambda point: {"accuracy": 0.0}, lambda c: toy.data()
    )
    la = [r for r in rows if r.method == "LA"]
    assert [(r.split, r.lam, r.score) for r in la] == [
        ("validation", 0.45, curve[0.45]),
        ("test", 0.45, 0.0),
    ]
    with pytest.raises(LangarithError, match="per-row validation statistics"):
        execute(_race_job(), validation, lambda: validation)


# ----------------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    torch.set_num_threads(1)
    return build_toy_setup(tmp_path_factory.mktemp("toy"), rows=80)


@pytest.mark.parametrize("kind", ["ner", "nli", "qa"])
def test_per_row_statistics_add_up_to_the_split_score(toy, kind):
    lengths = {"max_length": 96, "doc_stride": 32} if kind == "qa" else {"max_length": 128}
    engine = LambdaGridEngine.load(
        toy.backbone, toy.task[kind], toy.init, dict(toy.lang), kind, device="cpu"
    )
    rows = read_split(toy.data_dir(kind, "es"), "validation")
    full = engine.encode("validation", rows, **lengths)
    point = Point.pair("en", "it", 0.35)
    stats = engine.example_stats(point, full)
    assert stats.shape[0] == len(rows)
    main = full.main_metric
    assert full.stats_metric(stats.sum(axis=0), len(rows)) == pytest.approx(
        engine.score(point, full)[main], abs=1e-9
    )
    # a subset of the rows and the rest, each encoded and scored on its own, add up too
    data = race_rows(
        engine, rows, full, lambda name, r, f: engine.encode(name, r, **lengths, encoded=f)
    )(Curve("LA", ("en", "it"), GRID))
    passes = engine.forward_passes
    assert (data.stats(0.35, np.arange(len(rows))) == stats).all()  # the split's own pass
    assert engine.forward_passes == passes
    some = np.arange(0, len(rows), 3)
    rest = np.setdiff1d(np.arange(len(rows)), some)
    parts = data.stats(0.35, some).sum(axis=0) + data.stats(0.35, rest).sum(axis=0)
    # a subset's features are selected from the split's, exactly as tokenizing it gives
    subset = [rows[i] for i in some.tolist()]
    alone = engine.encode("alone", subset, **lengths)
    assert select_rows(full.info["encoded"], some.tolist()) == alone.info["encoded"]
    assert (data.stats(0.35, some) == engine.example_stats(point, alone)).all()
    assert data.metric(parts, len(rows)) == pytest.approx(engine.score(point, full)[main], abs=1e-9)
    assert len(data.trend) == stats.shape[1]


def test_a_raced_point_is_reported_without_another_pass(toy):
    engine = LambdaGridEngine.load(
        toy.backbone, toy.task["nli"], toy.init, dict(toy.lang), "nli", device="cpu"
    )
    rows = read_split(toy.data_dir("nli", "es"), "validation")
    full = engine.encode("validation", rows, max_length=128)
    point = Point.pair("en", "it", 0.6)
    engine.score(Point.pair("en", "it", 0.1), full)
    engine.example_stats(Point.pair("en", "it", 0.1), full)  # not kept by default
    assert engine.forward_passes == 2
    engine.keep_outputs = True  # as the race sets it
    engine.example_stats(point, full)
    engine.score(point, full)
    engine.score(Point.pair("it", "en", 0.4), full)  # the same weights
    assert engine.forward_passes == 3


def _toy_job(toy, tmp_path, search: str) -> ScoreJob:
    return ScoreJob(
        scenario="zero_shot", model="toy", task="ner", target="es", seed=1, kind="ner",
        backbone=str(toy.backbone), task_adapter=str(toy.task["ner"]), init=str(toy.init),
        data=str(toy.data_dir("ner", "es")),
        adapters=tuple((lang, str(folder)) for lang, folder in toy.lang.items()),
        baselines=(Baseline("pEA", "en"),),
        curves=(Curve("LA", ("en", "it"), GRID), Curve("LA", ("pt", "it"), GRID)),
        search=search, output=f"results/scores/{search}.csv",
    )  # fmt: skip


def test_race_job_reports_the_full_searchs_scores_at_its_choice(toy, tmp_path):
    rows = {}
    for search in ("full", "race"):
        job = _toy_job(toy, tmp_path, search)
        rows[search] = read_scores(run_job(job, output=tmp_path / job.output, device="cpu"))
    full = {(r.adapters, r.lam, r.split, r.metric): r.score for r in rows["full"]}
    raced = [r for r in rows["race"] if r.method == "LA"]
    assert len([r for r in raced if r.split == "validation" and r.metric == "f1"]) == 2
    for r in raced:  # validation: the full search's rows at the race's λ
        if r.split == "validation":
            assert full[(r.adapters, r.lam, r.split, r.metric)] == r.score
    chosen = {(r.adapters, r.lam) for r in raced if r.split == "validation"}
    assert {(r.adapters, r.lam) for r in raced if r.split == "test"} == chosen


def _lambda_grid_benchmark():
    spec = importlib.util.spec_from_file_location(
        "lambda_grid_benchmark", ROOT / "benchmarks" / "lambda_grid.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_benchmark_races_every_curve_of_a_demo_tree(toy, tmp_path):
    bench = _lambda_grid_benchmark()
    job = _toy_job(toy, tmp_path, "full")
    run_job(job, output=tmp_path / job.output, device="cpu")
    regrets = bench._demo_race_regrets([job], tmp_path, "cpu")
    assert len(regrets) == 2  # both curves of the CSV
    table = read_scores(tmp_path / job.output)
    for (regret, passes), pair in zip(regrets, ("en,it", "pt,it"), strict=True):
        assert 0 < passes <= len(GRID) + 1
        curve = {
            r.lam: r.score
            for r in table
            if r.adapters == pair and r.split == "validation" and r.metric == "f1"
        }
        assert regret >= 0
        assert any(curve[best_lambda(curve)] - value == regret for value in curve.values())


# ----------------------------------------------------------------------------- planning


def test_cached_plan_and_fast_job_records_equal_the_uncached_ones():
    """The plan cache behind ``snakemake -n`` (benchmarks/dag_plan.py) changes nothing."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    jobs = plan_jobs(config)
    assert plan_jobs(config) == jobs  # the cached plan
    table = related_languages(config)
    for job in jobs[:: max(1, len(jobs) // 60)]:
        key = (job.scenario, job.model, job.task, job.target, job.seed)
        assert find_job(config, *key) == job == find_job(config, *key, related=table)
        expected = dataclasses.asdict(job)
        if not job.searches:  # left out, so the params of jobs without them are unchanged
            del expected["searches"]
        assert job.to_dict() == expected
    changed = copy.deepcopy(config)
    changed["seeds"] = [42]
    assert {job.seed for job in plan_jobs(changed)} == {42}  # a new config, a new plan
