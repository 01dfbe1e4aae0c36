"""Tests of langarith.evaluate: λ choice on validation only, the engine against a naive
reload loop, in-place weights, the score CSV and whole jobs on a toy setup.

The toy setup (tests/toy_setup.py) is a random BERT with hidden size 32, θ_init, four
"trained" language adapters and NER/NLI/QA task adapters with random heads, plus demo
data of 40 rows per split: scores are meaningless, but they move with λ, which is all
these tests need.
"""

from __future__ import annotations

import csv
import dataclasses
import random

import numpy as np
import pytest
import torch
from naive_reference import naive_lambda_scores
from toy_setup import build_toy_setup

from langarith import LangarithError
from langarith.adapter_io import read_adapter
from langarith.data import NER_LABELS, read_split
from langarith.evaluate import runner
from langarith.evaluate.jobs import Baseline, Curve, ScoreJob
from langarith.evaluate.lambda_engine import LambdaGridEngine, Point
from langarith.evaluate.runner import curve_point, execute, run_job
from langarith.evaluate.score_files import SCORE_COLUMNS, ScoreRow, read_scores, write_scores
from langarith.evaluate.search import best_lambda, best_lambda_of, coarse_points, search_lambda
from langarith.evaluate.tasks import (
    encode_split,
    entity_f1,
    entity_keys,
    length_batches,
    tag_tables,
)
from langarith.merge import merge_states
from langarith.metrics import ner_f1

PAPER_GRID = tuple(round(0.05 * i, 10) for i in range(21))
QA_LENGTHS = {"max_length": 96, "doc_stride": 32}  # several windows per toy context


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    torch.set_num_threads(1)
    return build_toy_setup(tmp_path_factory.mktemp("toy"), rows=40)


def _lengths(kind: str) -> dict:
    return QA_LENGTHS if kind == "qa" else {"max_length": 128}


def _job(toy, scenario: str, kind: str, **changes) -> ScoreJob:
    """A job on the toy setup: target es, English and Italian (as 'related') adapters."""
    base = ScoreJob(
        scenario=scenario,
        model="toy",
        task=kind,
        target="es",
        seed=1,
        kind=kind,
        backbone=str(toy.backbone),
        task_adapter=str(toy.task[kind]),
        init=str(toy.init),
        data=str(toy.data_dir(kind, "es")),
        adapters=tuple((lang, str(folder)) for lang, folder in toy.lang.items()),
        **_lengths(kind),
    )
    return dataclasses.replace(base, **changes)


# ----------------------------------------------------------------------------- search


def test_best_lambda_breaks_ties_towards_the_first_adapter():
    assert best_lambda({0.0: 50.0, 0.5: 61.0, 1.0: 61.0}) == 1.0
    assert best_lambda({0.0: 70.0, 0.5: 61.0, 1.0: 61.0}) == 0.0
    with pytest.raises(LangarithError):
        best_lambda({})


def test_best_lambda_of_columns_uses_the_same_rule():
    assert best_lambda_of([0.0, 0.5, 1.0], [50.0, 61.0, 61.0]) == 1.0
    assert best_lambda_of(np.array([0.2, 0.4]), np.array([3.0, 2.0])) == 0.2
    with pytest.raises(LangarithError, match="more than once"):
        best_lambda_of([0.5, 0.5], [1.0, 2.0])
    with pytest.raises(LangarithError, match="not|nan"):
        best_lambda_of([0.5], [float("nan")])


@pytest.mark.parametrize("peak", PAPER_GRID)
def test_coarse_to_fine_finds_the_peak_of_any_single_peaked_curve(peak):
    curve = search_lambda(PAPER_GRID, lambda lam: -abs(lam - peak), "coarse_to_fine")
    assert best_lambda(curve) == peak
    assert len(curve) <= 10


def test_coarse_to_fine_on_a_grid_not_starting_at_zero():
    ties_grid = tuple(round(0.8 + 0.1 * i, 10) for i in range(11))  # 0.8 ... 1.8
    seen: list[float] = []

    def score(lam: float) -> float:
        seen.append(lam)
        return -abs(lam - 1.3)

    assert best_lambda(search_lambda(ties_grid, score, "coarse_to_fine")) == 1.3
    # coarse 0.2 steps, then one pass at the grid's own step around the best (1.4 wins
    # the 1.2/1.4 tie as the larger λ): 1.3 and 1.5
    assert seen == [0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 1.3, 1.5]


def test_coarse_to_fine_visits_the_coarse_grid_then_the_neighbourhood():
    assert coarse_points(PAPER_GRID) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    seen: list[float] = []

    def score(lam: float) -> float:
        seen.append(lam)
        return -((lam - 0.65) ** 2)  # peak between coarse points

    curve = search_lambda(PAPER_GRID, score, "coarse_to_fine")
    assert best_lambda(curve) == 0.65
    # 6 coarse, then step 0.1 around 0.6 (0.5, 0.7), then 0.05 around 0.7 (0.65, 0.75)
    assert seen == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 0.5, 0.7, 0.65, 0.75]
    full = search_lambda(PAPER_GRID, lambda lam: -((lam - 0.65) ** 2))
    assert list(full) == list(PAPER_GRID)
    with pytest.raises(LangarithError, match="lambda_search"):
        search_lambda(PAPER_GRID, score, "random")


# ----------------------------------------------------------------------------- execute


class _Recorder:
    """Fake scorers: validation and test metrics from two functions of the point."""

    def __init__(self, val, test):
        self.val, self.test, self.events = val, test, []

    def validation(self, point: Point) -> dict[str, float]:
        self.events.append("validation")
        return {"accuracy": self.val(point)}

    def open_test(self):
        self.events.append("open_test")

        def scorer(point: Point) -> dict[str, float]:
            self.events.append("test")
            return {"accuracy": self.test(point)}

        return scorer


def _lam(point: Point) -> float:
    return dict(point.weights).get("en", 0.0) if len(point.weights) == 2 else -1.0


def test_curve_points_follow_the_merge_registry():
    assert curve_point(Curve("LA", ("en", "it"), (0.5,)), 0.25) == Point.pair("en", "it", 0.25)
    ties = Curve("TIES", ("en", "it"), (1.0,), merge="ties", top_k=20.0)
    assert curve_point(ties, 1.3) == Point.ties(("en", "it"), 1.3, 20.0)
    with pytest.raises(LangarithError, match="has no top_k"):
        curve_point(dataclasses.replace(ties, top_k=None), 1.0)
    with pytest.raises(LangarithError, match="no λ parameter"):
        curve_point(dataclasses.replace(ties, merge="task-arithmetic"), 1.0)
    with pytest.raises(LangarithError, match="Unknown merge method 'tie'"):
        curve_point(dataclasses.replace(ties, merge="tie"), 1.0)


def test_lambda_is_chosen_on_validation_and_test_is_opened_after_every_choice():
    job = ScoreJob(
        scenario="zero_shot", model="m", task="nli", target="es", seed=1, kind="nli",
        backbone="b", task_adapter="t", init="i", data="d",
        adapters=(("en", "x"), ("it", "y")),
        baselines=(Baseline("pEA", "en"), Baseline("pRA", "it")),
        curves=(Curve("LA", ("en", "it"), PAPER_GRID),),
    )  # fmt: skip
    # validation peaks at λ = 0.3, test at λ = 0.9: using test would change the choice
    rec = _Recorder(
        val=lambda p: 50 - abs(_lam(p) - 0.3) * 10 if _lam(p) >= 0 else 40.0,
        test=lambda p: 90 - abs(_lam(p) - 0.9) * 10 if _lam(p) >= 0 else 10.0,
    )
    rows = execute(job, rec.validation, rec.open_test)
    first_test = rec.events.index("open_test")
    assert "validation" not in rec.events[first_test:]
    assert rec.events.count("open_test") == 1
    test_rows = [r for r in rows if r.split == "test"]
    la = [r for r in test_rows if r.method == "LA"]
    assert len(la) == 1 and la[0].lam == 0.3
    assert la[0].score == pytest.approx(90 - 0.6 * 10)
    assert sorted(r.method for r in test_rows) == ["LA", "pEA", "pRA"]
    curve = [r for r in rows if r.method == "LA" and r.split == "validation"]
    assert [r.lam for r in curve] == list(PAPER_GRID)  # the whole curve is kept
    assert all(r.lam is None for r in rows if r.method in ("pEA", "pRA"))


def test_mix_picks_the_better_arithmetic_by_validation():
    job = ScoreJob(
        scenario="enhancement", model="m", task="nli", target="es", seed=1, kind="nli",
        backbone="b", task_adapter="t", init="i", data="d",
        adapters=(("es", "a"), ("en", "b"), ("it", "c")),
        baselines=(Baseline("T", "es"),),
        curves=(
            Curve("LA(T,en)", ("es", "en"), PAPER_GRID),
            Curve("LA(T,REL)", ("es", "it"), PAPER_GRID),
        ),
        mix=("LA(T,en)", "LA(T,REL)"),
    )  # fmt: skip

    def other(point: Point) -> str:
        return next((label for label, _ in point.weights if label != "es"), "es")

    # LA(T,en) is better on validation, LA(T,REL) on test: MIX must follow validation
    rec = _Recorder(
        val=lambda p: {"en": 70.0, "it": 65.0, "es": 60.0}[other(p)],
        test=lambda p: {"en": 50.0, "it": 80.0, "es": 60.0}[other(p)],
    )
    rows = execute(job, rec.validation, rec.open_test)
    mix = [r for r in rows if r.method == "MIX"]
    assert {r.split for r in mix} == {"validation", "test"}
    assert all(r.adapters == "es,en" for r in mix)
    assert [r.score for r in mix if r.split == "test"] == [50.0]


def test_coarse_to_fine_jobs_keep_only_the_evaluated_points():
    job = ScoreJob(
        scenario="zero_shot", model="m", task="nli", target="es", seed=1, kind="nli",
        backbone="b", task_adapter="t", init="i", data="d",
        adapters=(("en", "x"), ("it", "y")),
        curves=(Curve("LA", ("en", "it"), PAPER_GRID),), search="coarse_to_fine",
    )  # fmt: skip
    rec = _Recorder(val=lambda p: -abs(_lam(p) - 0.35), test=lambda p: 1.0)
    rows = execute(job, rec.validation, rec.open_test)
    assert rec.events.count("validation") == 10  # 6 coarse + 2 at step 0.1 + 2 at 0.05
    assert len([r for r in rows if r.split == "validation"]) == 10
    assert [r.lam for r in rows if r.split == "test"] == [0.35]


# ----------------------------------------------------------------------------- scores CSV


def test_score_csv_round_trip(tmp_path):
    rows = [
        ScoreRow("ties", "xlmr", "ner", "es", 42, "TIES", "en,fr", 1.3, 20.0, "validation",
                 "f1", 61.25),
        ScoreRow("zero_shot", "xlmr", "ner", "es", 42, "pEA", "en", None, None, "test", "f1",
                 100.0 / 3),
    ]  # fmt: skip
    path = write_scores(rows, tmp_path / "a" / "seed42.csv")
    with open(path, encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    assert tuple(records[0]) == SCORE_COLUMNS
    assert records[0]["lambda"] == "1.3" and records[0]["top_k"] == "20"
    assert records[1]["lambda"] == "" and records[1]["top_k"] == ""
    assert read_scores(path) == rows
    assert not list(tmp_path.glob("a/.*"))  # no temporary file left behind


# ----------------------------------------------------------------------------- NER F1


def test_vectorised_entity_f1_equals_seqeval():
    rng = random.Random(0)
    tags = list(NER_LABELS)
    prefix, types = tag_tables(tags)
    n_types = int(types.max()) + 1

    def keys(sentences):
        flat = []
        for sentence in sentences:
            flat += [tags.index(t) for t in sentence] + [0]
        ids = np.asarray(flat, dtype=np.int64)
        return entity_keys(prefix[ids], types[ids], n_types)

    for trial in range(60):
        gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(20)]
        # every other trial, predictions use only some entity types (as an untrained or
        # badly merged model does): gold and predicted keys must still be comparable
        pred = [[rng.choice(tags) if rng.random() < 0.5 else t for t in s] for s in gold]
        if trial % 2 == 0:
            last = tags[-1].partition("-")[2]
            pred = [["O" if t.endswith(f"-{last}") else t for t in s] for s in pred]

        assert entity_f1(keys(gold), keys(pred)) == pytest.approx(ner_f1(gold, pred), abs=1e-9)


def test_length_batches_sort_and_respect_the_token_budget():
    lengths = [5, 40, 12, 40, 7, 33, 2]
    batches = length_batches(lengths, max_tokens=80, max_batch=3)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for batch in batches:
        width = max(lengths[i] for i in batch)
        assert len(batch) * width <= 80 and len(batch) <= 3
    firsts = [lengths[b[0]] for b in batches]
    assert firsts == sorted(firsts, reverse=True)


# ----------------------------------------------------------------------------- engine


@pytest.mark.parametrize("kind", ["nli", "ner", "qa"])
def test_engine_scores_equal_the_naive_reload_loop(toy, kind):
    rows = read_split(toy.data_dir(kind, "es"), "validation")
    lambdas = [0.0, 0.35, 1.0]
    naive, _ = naive_lambda_scores(
        toy.backbone, toy.task[kind], toy.init, toy.lang["en"], toy.lang["it"], kind, rows,
        lambdas, **_lengths(kind),
    )  # fmt: skip
    engine = LambdaGridEngine.load(
        toy.backbone, toy.task[kind], toy.init, {"en": toy.lang["en"], "it": toy.lang["it"]}, kind
    )
    split = engine.encode("validation", rows, **_lengths(kind))
    scores = {lam: engine.score(Point.pair("en", "it", lam), split) for lam in lambdas}
    assert scores == naive
    # the benchmark's load-once loop (one model, language adapters re-merged per λ)
    once, _ = naive_lambda_scores(
        toy.backbone, toy.task[kind], toy.init, toy.lang["en"], toy.lang["it"], kind, rows,
        [1.0, 0.35, 0.0], load_once=True, **_lengths(kind),
    )  # fmt: skip
    assert once == naive
    assert len({round(s[split.main_metric], 9) for s in scores.values()}) > 1  # λ matters
    # the single adapter and λ = 1 are one evaluation
    passes = engine.forward_passes
    assert engine.score(Point.single("en"), split) == scores[1.0]
    assert engine.forward_passes == passes


def test_in_place_weights_equal_the_merged_state(toy):
    engine = LambdaGridEngine.load(
        toy.backbone, toy.task["nli"], toy.init, {"en": toy.lang["en"], "pt": toy.lang["pt"]}, "nli"
    )
    en, pt = read_adapter(toy.lang["en"]).state, read_adapter(toy.lang["pt"]).state
    init = read_adapter(toy.init).state
    assert any("invertible" in name for name in engine.live)
    ids_before = {name: id(p) for name, p in engine.live.items()}
    for point, expected in [
        (Point.pair("en", "pt", 0.3), merge_states("linear", [en, pt], [0.3, 0.7])),
        (Point.single("pt"), pt),
        (Point.ties(["en", "pt"], 1.4, 20.0),
         merge_states("ties", [en, pt], [1.0, 1.0], init, lam=1.4, top_k=20.0)),
    ]:  # fmt: skip
        engine.apply(point)
        for name, param in engine.live.items():
            torch.testing.assert_close(param.detach(), expected[name], rtol=1e-6, atol=1e-7)
    # the model's own parameter objects were written, none replaced
    live_now = dict(engine.task_model.model.named_parameters())
    assert {name: id(p) for name, p in engine.live.items()} == ids_before
    assert all(any(p is q for q in live_now.values()) for p in engine.live.values())


# ----------------------------------------------------------------------------- jobs


def test_run_job_reads_test_data_only_after_choosing(toy, tmp_path, monkeypatch):
    job = _job(
        toy, "zero_shot", "ner",
        baselines=(Baseline("pEA", "en"), Baseline("pRA", "it")),
        curves=(Curve("LA", ("en", "it"), (0.0, 0.5, 1.0)),),
        related="it",
    )  # fmt: skip
    (tmp_path / "related.tsv").write_text("target\trelated\tdistance\nes\tit\t0.1\n")
    events: list[str] = []
    real_read = runner.read_split
    monkeypatch.setattr(
        runner, "read_split", lambda d, s: events.append(f"read {s}") or real_read(d, s)
    )
    engine = LambdaGridEngine.load(
        job.backbone, job.task_adapter, job.init, {"en": toy.lang["en"], "it": toy.lang["it"]},
        "ner",
    )  # fmt: skip
    real_score = engine.score
    monkeypatch.setattr(
        engine, "score", lambda p, s: events.append(f"score {s.name}") or real_score(p, s)
    )
    out = run_job(job, output=tmp_path / "scores.csv", related_tsv=tmp_path / "related.tsv",
                  engine=engine)  # fmt: skip
    assert events[0] == "read validation"
    reading_test = events.index("read test")
    assert all(e != "score validation" for e in events[reading_test:])
    assert events.count("read test") == 1
    rows = read_scores(out)
    assert {(r.method, r.split) for r in rows} == {
        ("LA", "validation"), ("LA", "test"), ("pEA", "validation"), ("pEA", "test"),
        ("pRA", "validation"), ("pRA", "test"),
    }  # fmt: skip
    assert {r.metric for r in rows} == {"f1"}
    assert all(r.adapters == "en,it" for r in rows if r.method == "LA")

    # a table that disagrees with the plan stops the job before any work
    (tmp_path / "related.tsv").write_text("target\trelated\nes\tpt\n")
    with pytest.raises(LangarithError, match="out of date"):
        run_job(job, output=tmp_path / "x.csv", related_tsv=tmp_path / "related.tsv")


def test_enhancement_and_ties_jobs_end_to_end(toy, tmp_path):
    grid = (0.0, 0.5, 1.0)
    zero = _job(
        toy, "zero_shot", "qa", curves=(Curve("LA", ("en", "it"), grid),),
        output=str(tmp_path / "zero_shot.csv"),
    )  # fmt: skip
    run_job(zero)
    zero_rows = read_scores(zero.output)
    assert {r.metric for r in zero_rows} == {"exact_match", "f1"}

    ties = _job(
        toy, "ties", "qa",
        curves=(Curve("TIES", ("en", "it"), (0.8, 1.3, 1.8), merge="ties", top_k=20.0),),
        reuse=zero.output, reuse_methods=("LA",), output=str(tmp_path / "ties.csv"),
    )  # fmt: skip
    run_job(ties)
    rows = read_scores(ties.output)
    copied = [r for r in rows if r.method == "LA"]
    assert len(copied) == len(zero_rows) and {r.scenario for r in copied} == {"ties"}
    assert {r.top_k for r in rows if r.method == "TIES"} == {20.0}
    assert len([r for r in rows if r.method == "TIES" and r.split == "test"]) == 2  # EM, F1

    enhancement = _job(
        toy, "enhancement", "nli",
        baselines=(Baseline("T", "es"),),
        curves=(Curve("LA(T,en)", ("es", "en"), grid), Curve("LA(T,REL)", ("es", "pt"), grid)),
        mix=("LA(T,en)", "LA(T,REL)"), output=str(tmp_path / "enhancement.csv"),
    )  # fmt: skip
    run_job(enhancement)
    rows = read_scores(enhancement.output)
    val = {(r.method, r.lam): r.score for r in rows if r.split == "validation"}
    best = max(
        ("LA(T,en)", "LA(T,REL)"),
        key=lambda m: max(v for (k, _), v in val.items() if k == m),
    )
    mix = [r for r in rows if r.method == "MIX"]
    chosen = [r for r in rows if r.method == best and r.split == "test"]
    assert [(r.adapters, r.lam, r.score) for r in mix if r.split == "test"] == [
        (r.adapters, r.lam, r.score) for r in chosen
    ]
    # T equals both curves at λ = 1 (the target's own adapter), bit for bit
    t_val = val[("T", None)]
    assert val[("LA(T,en)", 1.0)] == val[("LA(T,REL)", 1.0)] == t_val


# ----------------------------------------------------------------------------- caches

TIES_GRID = (0.8, 1.3, 1.8)
TIES_TOP_K = (20.0, 80.0)


def _splits(toy, kind: str) -> dict[str, list]:
    """Validation and test rows of the toy target; the two splits share no row."""
    folder = toy.data_dir(kind, "es")
    rows = {split: read_split(folder, split) for split in ("validation", "test")}
    texts = {split: {" ".join(r["tokens"]) for r in rows[split]} for split in rows}
    assert rows["validation"] and rows["test"]
    assert not texts["validation"] & texts["test"]
    return rows


def _fresh_score(toy, kind: str, point: Point, split: str, rows) -> dict[str, float]:
    """A new engine, knowing nothing but this point and this split."""
    engine = LambdaGridEngine.load(
        toy.backbone, toy.task[kind], toy.init, {"en": toy.lang["en"], "it": toy.lang["it"]}, kind
    )
    return engine.score(point, engine.encode(split, rows, **_lengths(kind)))


def _naive(toy, kind: str, rows, lambdas) -> dict[float, dict[str, float]]:
    scores, _ = naive_lambda_scores(
        toy.backbone, toy.task[kind], toy.init, toy.lang["en"], toy.lang["it"], kind, rows,
        lambdas, **_lengths(kind),
    )  # fmt: skip
    return scores


def test_one_engine_in_sequence_scores_every_point_and_split_as_a_fresh_one(toy):
    """Caches keyed by split, TIES λ and top-k: nothing leaks from one point to the next.

    One engine scores TIES (λ 0.8/1.3/1.8 × top-k 20/80) interleaved with linear points,
    each on validation and then on test. Every score must equal a fresh engine's for
    that point and split (TIES) or the naive reload loop's (linear).
    """
    kind = "ner"
    rows = _splits(toy, kind)
    linear = (0.0, 0.35, 1.0)
    ties = [Point.ties(("en", "it"), lam, top_k) for top_k in TIES_TOP_K for lam in TIES_GRID]
    pairs = [Point.pair("en", "it", lam) for lam in linear]
    # TIES top-k 20, a linear point, more TIES, ...: top-k 80 right after top-k 20
    sequence = [ties[0], pairs[0], ties[1], ties[2], ties[3], pairs[1], ties[4], ties[5], pairs[2]]
    engine = LambdaGridEngine.load(
        toy.backbone, toy.task[kind], toy.init, {"en": toy.lang["en"], "it": toy.lang["it"]}, kind
    )
    encoded = {split: engine.encode(split, rows[split], **_lengths(kind)) for split in rows}
    got = {}
    for point in sequence:
        for split in ("validation", "test"):
            got[(point, split)] = engine.score(point, encoded[split])
    assert engine.forward_passes == 2 * len(sequence)  # every (point, split) evaluated once

    expected = {}
    for point in ties:
        for split in rows:
            expected[(point, split)] = _fresh_score(toy, kind, point, split, rows[split])
    for split in rows:
        naive = _naive(toy, kind, rows[split], linear)
        for lam, point in zip(linear, pairs, strict=True):
            expected[(point, split)] = naive[lam]
    assert got == expected

    # the points and splits really differ, so a cache that mixes them up cannot pass
    f1 = {key: scores["f1"] for key, scores in expected.items()}
    for split in rows:
        for top_k in TIES_TOP_K:
            curve = [f1[(Point.ties(("en", "it"), lam, top_k), split)] for lam in TIES_GRID]
            assert len(set(curve)) == len(TIES_GRID), (split, top_k, curve)
        by_top_k = [
            [f1[(Point.ties(("en", "it"), lam, top_k), split)] for lam in TIES_GRID]
            for top_k in TIES_TOP_K
        ]
        assert by_top_k[0] != by_top_k[1]
    assert all(f1[(p, "validation")] != f1[(p, "test")] for p in sequence)


def test_run_job_rows_equal_the_naive_loop_on_each_split(toy, tmp_path):
    """The score CSV of a job: validation rows are the naive loop on validation, test rows
    the naive loop on test at the λ chosen (by the search's rule) on validation."""
    kind = "ner"
    rows = _splits(toy, kind)
    grid = (0.0, 0.25, 0.5, 0.75, 1.0)
    job = _job(
        toy, "zero_shot", kind,
        baselines=(Baseline("pEA", "en"), Baseline("pRA", "it")),
        curves=(
            Curve("LA", ("en", "it"), grid),
            *(Curve("TIES", ("en", "it"), TIES_GRID, merge="ties", top_k=k) for k in TIES_TOP_K),
        ),
        output=str(tmp_path / "scores.csv"),
    )  # fmt: skip
    written = read_scores(run_job(job))
    naive = {split: _naive(toy, kind, rows[split], grid) for split in rows}
    chosen = best_lambda({lam: naive["validation"][lam]["f1"] for lam in grid})

    def table(method: str, split: str, top_k=None) -> dict:
        return {
            (r.lam, r.metric): r.score
            for r in written
            if r.method == method and r.split == split and r.top_k == top_k
        }

    assert table("LA", "validation") == {
        (lam, "f1"): naive["validation"][lam]["f1"] for lam in grid
    }
    assert table("LA", "test") == {(chosen, "f1"): naive["test"][chosen]["f1"]}
    for split in rows:  # pEA is λ = 1, pRA λ = 0 of the same pair
        assert table("pEA", split) == {(None, "f1"): naive[split][1.0]["f1"]}
        assert table("pRA", split) == {(None, "f1"): naive[split][0.0]["f1"]}
    for top_k in TIES_TOP_K:
        fresh = {
            (lam, split): _fresh_score(
                toy, kind, Point.ties(("en", "it"), lam, top_k), split, rows[split]
            )["f1"]
            for lam in TIES_GRID
            for split in rows
        }
        val = {lam: fresh[(lam, "validation")] for lam in TIES_GRID}
        assert table("TIES", "validation", top_k) == {(lam, "f1"): val[lam] for lam in TIES_GRID}
        best = best_lambda(val)
        assert table("TIES", "test", top_k) == {(best, "f1"): fresh[(best, "test")]}
    # a test score differs from the validation score of the same point
    assert naive["test"][chosen]["f1"] != naive["validation"][chosen]["f1"]


# ----------------------------------------------------------------------------- decoders


def _tokenizer(toy):
    from langarith.backbone import load_tokenizer

    return load_tokenizer(toy.backbone)


def test_qa_decoder_finds_gold_spans_across_windows(toy):
    from types import SimpleNamespace

    rows = read_split(toy.data_dir("qa", "es"), "validation")
    split = encode_split("validation", rows, "qa", _tokenizer(toy), max_length=48, doc_stride=16)
    assert split.n_features > split.n_examples  # contexts span several windows
    offsets, example = split.info["offsets"], split.info["example"]
    parts = []
    for batch in split.batches:
        width = batch.width
        start = torch.zeros(len(batch.index), width)
        end = torch.zeros(len(batch.index), width)
        for row, feature in enumerate(batch.index):
            answer = rows[example[feature]]["answers"]
            first = answer["answer_start"][0]
            last = first + len(answer["text"][0])
            for pos, off in enumerate(offsets[feature]):
                if off is not None and off[0] == first:
                    start[row, pos] = 10.0
                if off is not None and off[1] == last:
                    end[row, pos] = 10.0
        parts.append(split.reduce(SimpleNamespace(start_logits=start, end_logits=end), batch))
    assert split.finish(parts) == {"exact_match": 100.0, "f1": 100.0}


def test_ner_decoder_labels_words_by_their_first_subtoken(toy):
    from types import SimpleNamespace

    rows = read_split(toy.data_dir("ner", "es"), "validation")
    labels = list(NER_LABELS)
    gold = [r["ner_tags"] for r in rows]

    def run(max_length: int) -> tuple[float, float]:
        """F1 of logits that are right at each word's first sub-token, and its expectation."""
        split = encode_split(
            "validation", rows, "ner", _tokenizer(toy), labels=labels, max_length=max_length
        )
        feature, position = split.info["word_feature"], split.info["word_position"]
        flat = split.info["word_flat"]
        starts = np.cumsum([0] + [len(g) + 1 for g in gold])
        expected = [["O"] * len(g) for g in gold]  # words without a sub-token: O
        parts = []
        for batch in split.batches:
            logits = torch.zeros(len(batch.index), batch.width, len(labels))
            logits[:, :, 3] = 1.0  # every other sub-token says B-ORG
            for row, i in enumerate(batch.index):
                for k in np.flatnonzero(feature == i):
                    word = flat[k] - starts[i]
                    logits[row, position[k], labels.index(gold[i][word])] = 5.0
                    expected[i][word] = gold[i][word]
            parts.append(split.reduce(SimpleNamespace(logits=logits), batch))
        return split.finish(parts)["f1"], ner_f1(gold, expected)

    assert run(128) == (100.0, 100.0)
    score, expected = run(8)  # words cut off by max_length are predicted O
    assert score < 100.0
    assert score == pytest.approx(expected, abs=1e-9)
