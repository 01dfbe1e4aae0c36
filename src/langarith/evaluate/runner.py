"""Running one evaluation job: validation curves, λ choice, then test, then the CSV.

The order is the point of this module. :func:`execute` receives the validation scorer
and a *factory* for the test scorer; it runs every validation evaluation, makes every
choice (λ of each curve, the method of ``MIX``) from validation scores alone, and only
then calls the factory, which is where :func:`run_job` reads and encodes the test
split. Nothing computed from test data flows back into a choice, and test data is not
even read before the choices are fixed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from langarith import LangarithError
from langarith.data import read_split
from langarith.evaluate.jobs import Curve, ScoreJob, WeightSearch
from langarith.evaluate.label_free import LabelFreeRow, label_free_kind, write_label_free
from langarith.evaluate.label_free_run import LabelFreeSelection, unlabelled_rows
from langarith.evaluate.lambda_engine import LambdaGridEngine, Point
from langarith.evaluate.nway import (
    best_weights,
    check_search,
    search_weights,
    start_weights,
    weights_point,
)
from langarith.evaluate.race import RaceData, race_search
from langarith.evaluate.score_files import (
    ScoreRow,
    format_weights,
    read_scores,
    score_file_kind,
    write_scores,
)
from langarith.evaluate.search import best_lambda, search_lambda
from langarith.evaluate.tasks import EncodedSplit
from langarith.io import check_replaceable
from langarith.merge import get_method
from langarith.metrics import TASK_METRICS
from langarith.related import read_related_table
from langarith.train.task_features import select_rows

__all__ = [
    "Choice",
    "LabelFreeRequest",
    "WeightChoice",
    "curve_point",
    "execute",
    "race_rows",
    "run_job",
]

log = logging.getLogger(__name__)

Scorer = Callable[[Point], Mapping[str, float]]
#: ``lambda_search: race``: the per-row statistics of a curve's points on validation rows.
RaceRows = Callable[[Curve], RaceData]


@dataclass(frozen=True)
class Choice:
    """The λ chosen for one curve on validation data, with its validation metrics."""

    curve: Curve
    lam: float
    validation: Mapping[str, float]


def curve_point(curve: Curve, lam: float) -> Point:
    """The merge a curve evaluates at λ.

    ``linear``: LA(first, second) = λθ_first + (1 − λ)θ_second. Any other registered
    merge method with a ``lam`` parameter (``ties``): every adapter at weight 1, λ as
    that parameter, and the curve's ``top_k`` where the method has one.
    """
    if curve.merge == "linear":
        return Point.pair(curve.adapters[0], curve.adapters[1], lam)
    method = get_method(curve.merge)
    if "lam" not in method.param_names:
        raise LangarithError(
            f"Curve {curve.method}: merge method {curve.merge!r} has no λ parameter to search"
        )
    if "top_k" in method.param_names and curve.top_k is None:
        raise LangarithError(f"{curve.merge} curve {curve.method} has no top_k")
    top_k = None if curve.top_k is None else float(curve.top_k)
    return Point(curve.merge, tuple((label, 1.0) for label in curve.adapters), float(lam), top_k)


def _rows(
    job: ScoreJob,
    method: str,
    adapters: tuple[str, ...],
    lam: float | None,
    top_k: float | None,
    split: str,
    metrics: Mapping[str, float],
) -> list[ScoreRow]:
    return [
        ScoreRow(
            scenario=job.scenario,
            model=job.model,
            task=job.task,
            target=job.target,
            seed=job.seed,
            method=method,
            adapters=",".join(adapters),
            lam=lam,
            top_k=top_k,
            split=split,
            metric=metric,
            score=float(value),
        )
        for metric, value in sorted(metrics.items())
    ]


def _search_curves(
    job: ScoreJob, validation: Scorer, main: str, race: RaceRows | None = None
) -> tuple[list[Choice], list[ScoreRow]]:
    """Each curve's λ search on validation data: its choice and its evaluated points as rows.

    ``race`` gives the racing search its per-row statistics; its curve is the chosen λ alone, scored
    on the whole validation split (the race's subset scores are not written).
    """
    if job.search == "race" and race is None:
        raise LangarithError("lambda_search 'race' needs per-row validation statistics")
    choices: list[Choice] = []
    rows: list[ScoreRow] = []
    for curve in job.curves:
        metrics_at: dict[float, Mapping[str, float]] = {}

        def score(lam: float, curve: Curve = curve, metrics_at=metrics_at) -> float:
            metrics = validation(curve_point(curve, lam))
            metrics_at[lam] = metrics
            return float(metrics[main])

        if job.search == "race":
            assert race is not None
            values = race_search(curve.grid, score, race(curve))
        else:
            values = search_lambda(curve.grid, score, job.search)
        lam = best_lambda(values)
        choices.append(Choice(curve, lam, metrics_at[lam]))
        for point_lam in values:
            rows += _rows(
                job,
                curve.method,
                curve.adapters,
                point_lam,
                curve.top_k,
                "validation",
                metrics_at[point_lam],
            )
    return choices, rows


def _pick_mix(job: ScoreJob, choices: list[Choice], main: str) -> Choice | None:
    """``MIX``: the better of ``job.mix`` by validation score; on a tie the one listed first."""
    if not job.mix:
        return None
    candidates = [c for c in choices if c.curve.method in job.mix]
    if not candidates:
        raise LangarithError(f"MIX of {job.mix} has no such curve in the job")
    order = {method: i for i, method in enumerate(job.mix)}
    return max(candidates, key=lambda c: (float(c.validation[main]), -order[c.curve.method]))


@dataclass(frozen=True)
class WeightChoice:
    """The weights chosen for one N-way search on validation data, with their metrics."""

    search: WeightSearch
    weights: tuple[float, ...]
    validation: Mapping[str, float]


def _start_of(
    search: WeightSearch, choices: list[Choice], reused: list[ScoreRow], main: str
) -> tuple[float, ...] | None:
    """The first candidate: the 2-way choice of ``search.start`` (a curve, or reused rows)."""
    if search.start is None:
        return None
    for choice in choices:
        if choice.curve.method == search.start:
            return start_weights(search, tuple(choice.curve.adapters), choice.lam)
    curve = {
        row.lam: row.score
        for row in reused
        if row.method == search.start and row.split == "validation"
        and row.metric == main and row.lam is not None
    }  # fmt: skip
    if not curve:
        raise LangarithError(
            f"{search.method} starts from {search.start}, which this job neither scores nor "
            "reuses; the planner should give it the LA curve or the zero-shot rows"
        )
    pair = next(r.adapters for r in reused if r.method == search.start)
    first, second = pair.split(",")
    return start_weights(search, (first, second), best_lambda(curve))


def _search_weights(
    job: ScoreJob,
    validation: Scorer,
    main: str,
    choices: list[Choice],
    reused: list[ScoreRow],
) -> tuple[list[WeightChoice], list[ScoreRow]]:
    """Each N-way search on validation data: its chosen weights and every scored candidate."""
    picks: list[WeightChoice] = []
    rows: list[ScoreRow] = []
    for search in job.searches:
        metrics_at: dict[tuple[float, ...], Mapping[str, float]] = {}

        def score(weights, search=search, metrics_at=metrics_at) -> float:
            metrics = validation(weights_point(search, weights))
            metrics_at[tuple(weights)] = metrics
            return float(metrics[main])

        scored = search_weights(search, score, _start_of(search, choices, reused, main))
        chosen = best_weights(scored)
        picks.append(WeightChoice(search, chosen, metrics_at[chosen]))
        for weights in scored:
            cell = (format_weights(search.adapters, weights),)
            rows += _rows(job, search.method, cell, None, None, "validation", metrics_at[weights])
    return picks, rows


def _test_rows(
    job: ScoreJob,
    choices: list[Choice],
    mixed: Choice | None,
    test: Scorer,
    picks: Sequence[WeightChoice] = (),
) -> list[ScoreRow]:
    """Test scores of the baselines, of each curve at its chosen λ, and of ``MIX``."""
    rows: list[ScoreRow] = []
    for baseline in job.baselines:
        metrics = test(Point.single(baseline.adapter))
        rows += _rows(job, baseline.method, (baseline.adapter,), None, None, "test", metrics)
    for choice in choices:
        metrics = test(curve_point(choice.curve, choice.lam))
        curve = choice.curve
        rows += _rows(job, curve.method, curve.adapters, choice.lam, curve.top_k, "test", metrics)
        if choice is mixed:
            rows += _rows(job, "MIX", curve.adapters, choice.lam, curve.top_k, "test", metrics)
    for pick in picks:
        metrics = test(weights_point(pick.search, pick.weights))
        cell = format_weights(pick.search.adapters, pick.weights)
        rows += _rows(job, pick.search.method, (cell,), None, None, "test", metrics)
    return rows


def execute(
    job: ScoreJob,
    validation: Scorer,
    open_test: Callable[[], Scorer],
    race: RaceRows | None = None,
    reused: list[ScoreRow] | None = None,
) -> list[ScoreRow]:
    """Evaluate a job's plan: all validation first, choices, then test.

    Args:
        job: the plan (baselines, curves, MIX candidates).
        validation: metrics of a point on the validation split.
        open_test: called once, after every choice is made; returns the test scorer.
        race: for ``job.search == "race"``: a curve → its :class:`RaceData` on
            the validation rows.
        reused: rows copied from another score file (``job.reuse``); an N-way search
            starts from the choice of its ``start`` method among them when the job
            does not score that curve itself.

    Returns the score rows: the validation curves whole, the baselines on both splits,
    each curve's chosen λ on test, ``MIX`` (the better of ``job.mix`` by its best
    validation score; on equal scores the one listed first), and for each N-way
    search every candidate on validation and the chosen weights on test.
    """
    main = TASK_METRICS[job.kind]
    for search in job.searches:
        check_search(search)

    # 1. validation only
    baseline_val = {b: validation(Point.single(b.adapter)) for b in job.baselines}
    choices, rows = _search_curves(job, validation, main, race)
    picks, search_rows = _search_weights(job, validation, main, choices, list(reused or ()))
    rows += search_rows
    mixed = _pick_mix(job, choices, main)
    for baseline, metrics in baseline_val.items():
        rows += _rows(job, baseline.method, (baseline.adapter,), None, None, "validation", metrics)
    if mixed is not None:
        rows += _rows(
            job,
            "MIX",
            mixed.curve.adapters,
            mixed.lam,
            mixed.curve.top_k,
            "validation",
            mixed.validation,
        )

    # 2. every choice is fixed: now, and only now, the test split
    return rows + _test_rows(job, choices, mixed, open_test(), picks)


def _check_related(job: ScoreJob, related_tsv: str | PathLike[str]) -> None:
    table = read_related_table(related_tsv)
    found = table.get(job.target)
    if found is None:
        raise LangarithError(
            f"{related_tsv} has no related language for {job.target!r}; rerun the "
            "related_languages rule with the current config"
        )
    if found != job.related:
        raise LangarithError(
            f"{related_tsv} gives {found!r} as the related language of {job.target!r}, but "
            f"this job was planned with {job.related!r} from the config; the table is out of "
            "date or was edited: delete it and rerun"
        )


def _reused_rows(job: ScoreJob) -> list[ScoreRow]:
    assert job.reuse is not None
    rows = []
    for row in read_scores(job.reuse):
        same = (row.model, row.task, row.target, row.seed) == (
            job.model,
            job.task,
            job.target,
            job.seed,
        )
        if not same:
            raise LangarithError(
                f"{job.reuse} holds scores of {row.model}/{row.task}/{row.target}/seed"
                f"{row.seed}, not of this job's {job.model}/{job.task}/{job.target}/seed{job.seed}"
            )
        if row.method in job.reuse_methods:
            rows.append(
                ScoreRow(**{**row.__dict__, "scenario": job.scenario})  # same point, new table
            )
    missing = set(job.reuse_methods) - {row.method for row in rows}
    if missing:
        raise LangarithError(f"{job.reuse} has no rows of method(s) {sorted(missing)}")
    return rows


def _job_engine(job: ScoreJob, device: str | None) -> LambdaGridEngine:
    """Load the job's model and only the adapters its baselines and curves use."""
    used = job.labels_used()
    dirs = {label: folder for label, folder in job.adapters if label in used}
    return LambdaGridEngine.load(
        job.backbone, job.task_adapter, job.init, dirs, job.kind, device=device
    )


@dataclass(frozen=True)
class LabelFreeRequest:
    """The label-free λ choice a job makes too (``label_free_params``' ``label_free``),
    with the target's token folder and text for ``mlm_loss``."""

    settings: Mapping[str, Any]
    output: Path
    tokens_dir: str | None = None
    text_dir: str | None = None


def _score_rows(
    job: ScoreJob,
    engine: LambdaGridEngine,
    reused: list[ScoreRow] | None = None,
    label_free: LabelFreeRequest | None = None,
) -> tuple[list[ScoreRow], list[LabelFreeRow]]:
    """:func:`execute` on the job's data: validation encoded now, test only when opened.

    With ``label_free`` the selectors also pick their λ, after the labelled choices and
    before the test split is read, and their test rows are the second list.
    """

    def encoded(split: str, rows=None, features=None):
        rows = read_split(job.data, split) if rows is None else rows
        return engine.encode(
            split, rows, max_length=job.max_length, doc_stride=job.doc_stride, encoded=features
        )

    validation_rows = read_split(job.data, "validation")
    validation_split = encoded("validation", validation_rows)
    selection = None
    if label_free is not None:
        selection = LabelFreeSelection.start(
            job,
            engine,
            label_free.settings,
            unlabelled_rows(validation_rows, job.kind),
            curve_point,
            tokens_dir=label_free.tokens_dir,
            text_dir=label_free.text_dir,
        )
    planned = (
        len(job.baselines)
        + sum(len(curve.grid) for curve in job.curves)
        + sum(search.budget for search in job.searches)
    )
    if job.search != "race":  # the race passes the whole split only a few times
        engine.expect_passes(validation_split, planned)
    bar = tqdm(total=planned, desc=f"{job.scenario} {job.target} validation", unit="point",
               mininterval=1.0, dynamic_ncols=True)  # fmt: skip

    def validation(point: Point) -> Mapping[str, float]:
        bar.update(1)
        return engine.score(point, validation_split)

    test_scorers: list[Scorer] = []

    def open_test() -> Scorer:
        bar.close()
        if selection is not None:
            selection.choose(validation_split)  # label-free choices: before any test data
        test_split = encoded("test")
        test_scorers.append(lambda point: engine.score(point, test_split))
        return test_scorers[0]

    race = None
    if job.search == "race":
        race = race_rows(engine, validation_rows, validation_split, encoded)
    try:
        rows = execute(job, validation, open_test, race, reused)
    finally:
        bar.close()
    if selection is None:
        return rows, []
    return rows, selection.rows(test_scorers[0])


def race_rows(
    engine: LambdaGridEngine,
    rows: list,
    full: EncodedSplit,
    encode: Callable[..., EncodedSplit],
) -> RaceRows:
    """The racing search's per-row statistics of a curve's points on validation rows.

    All rows are scored on ``full`` itself, so the engine reuses that pass when the
    choice is reported (and a baseline's pass for a curve's end); any other set of rows
    is batched on its own by ``encode(name, rows, features)`` from ``full``'s features
    (:func:`~langarith.train.task_features.select_rows`: no second tokenization).
    """
    engine.keep_outputs = True  # a point's score and statistics share its pass
    everything = np.arange(len(rows))
    features = full.info.get("encoded")

    def of_curve(curve: Curve) -> RaceData:
        def stats(lam: float, picked: np.ndarray) -> np.ndarray:
            point = curve_point(curve, lam)
            if picked.size == len(rows) and (picked == everything).all():
                return engine.example_stats(point, full)
            digest = hashlib.blake2b(picked.astype(np.int64).tobytes(), digest_size=8)
            subset = encode(
                f"{full.name}[race rows {digest.hexdigest()}]",
                [rows[i] for i in picked.tolist()],
                None if features is None else select_rows(features, picked.tolist()),
            )
            return engine.example_stats(point, subset)

        return RaceData(len(rows), stats, full.stats_metric, full.stats_trend)

    return of_curve


def run_job(
    job: ScoreJob | Mapping[str, Any],
    *,
    output: str | PathLike[str] | None = None,
    related_tsv: str | PathLike[str] | None = None,
    device: str | None = None,
    threads: int | None = None,
    engine: LambdaGridEngine | None = None,
    label_free: LabelFreeRequest | None = None,
) -> Path:
    """Run one planned evaluation job and write its score CSV.

    Args:
        job: a :class:`~langarith.evaluate.jobs.ScoreJob` or its ``to_dict()``.
        output: the CSV to write (default ``job.output``).
        related_tsv: ``results/related_languages.tsv``; required when the job has a
            related language, which must agree with the table.
        device: evaluation device (default: CUDA when available).
        threads: CPU threads for torch (default: torch's choice).
        engine: an already loaded engine (tests); by default one is loaded from the
            job's folders.
        label_free: also choose λ without target labels and write those choices to
            ``label_free.output`` (:mod:`langarith.evaluate.label_free`); the score
            CSV is the same with or without it.
    """
    if not isinstance(job, ScoreJob):
        job = ScoreJob.from_dict(job)
    output = Path(output or job.output)
    check_replaceable(output, score_file_kind())  # before the work, not only at the end
    for search in job.searches:  # a search that cannot run stops before the model loads
        check_search(search)
    if label_free is not None:
        check_replaceable(label_free.output, label_free_kind())
    started = time.perf_counter()
    if threads:
        torch.set_num_threads(int(threads))
    if job.related is not None:
        if related_tsv is None:
            raise LangarithError(f"Job {output} needs the related-language table")
        _check_related(job, related_tsv)
    reused = _reused_rows(job) if job.reuse else []
    if engine is None:
        engine = _job_engine(job, device)
    rows, label_free_rows = _score_rows(job, engine, reused, label_free)
    write_scores(reused + rows, output)
    if label_free is not None:
        write_label_free(label_free_rows, label_free.output)
    log.info(
        "%s/%s/%s/%s/seed%d: %d forward passes (%.1f s), weight fills %.2f s, total %.1f s -> %s",
        job.scenario,
        job.model,
        job.task,
        job.target,
        job.seed,
        engine.forward_passes,
        engine.forward_seconds,
        engine.fill_seconds,
        time.perf_counter() - started,
        output,
    )
    return output
