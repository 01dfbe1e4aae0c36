"""Scoring the five variants of task arithmetic with full fine-tuning, and sparsity.

One job per (model, dataset, seed), because λ is chosen per (variant, dataset): the λ
with the best *mean* validation score over the dataset's targets (the paper's Table 9;
``lambda_choice: target`` picks one per target instead, a deviation). The order is the
core runner's (:mod:`langarith.evaluate.runner`): every validation score of every
target first, then the choices, and only then the test splits are read.

Evaluation is the core's λ engine (:class:`~langarith.evaluate.LambdaGridEngine`) on a
whole model: the task model θ_T (encoder and head) is loaded once; θ0, θ_T, θ_src and
one target's θ_tgt are held as a :class:`~langarith.merge.LanguageVectorSet`, and each
point's θ0 + τ^T + λ_s τ^src + λ_t τ^tgt is written into the encoder's live parameters
with the registered ``task-arithmetic`` merge (sparsity: ``top-k``/``bottom-k`` with
the task vector dense). The head is θ_T's and is never rewritten.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from langarith import LangarithError
from langarith.backbone.folder import load_backbone, load_tokenizer
from langarith.evaluate.lambda_engine import LambdaGridEngine, Point
from langarith.evaluate.model import TaskModel, pick_device
from langarith.evaluate.score_files import ScoreRow, format_number, write_scores
from langarith.evaluate.search import best_lambda
from langarith.evaluate.tasks import EncodedSplit
from langarith.fullft.train import load_task_classifier
from langarith.fullft.variants import SPARSITY_COLUMNS, VARIANTS, Variant, get_variant
from langarith.fullft.vectors import (
    check_vector,
    encoder_state,
    read_model_folder,
    theta0_checksum,
)
from langarith.io import write_csv_records
from langarith.merge import LanguageVectorSet
from langarith.metrics import TASK_METRICS
from langarith.training.inputs import read_rows

__all__ = [
    "SPARSITY_COLUMNS",
    "SPARSITY_MODES",
    "FullFtJob",
    "FullModelEngine",
    "LoadedModels",
    "choose_lambdas",
    "run_fullft_job",
    "variant_point",
    "write_sparsity",
]

log = logging.getLogger(__name__)

#: The two masks of Figures 1-3 and their registered merge methods.
SPARSITY_MODES = {"top": "top-k", "bottom": "bottom-k"}
LABELS = ("task", "src", "tgt")
#: The scores each kind's evaluation gives, any of which may choose λ.
METRICS_OF_KIND = {"nli": ("accuracy",), "ner": ("f1",), "sentiment": ("accuracy", "f1")}


@dataclass(frozen=True)
class FullFtJob:
    """Everything one scoring job reads and writes (built by the rule from the config).

    Attributes:
        targets: target language → its MLM model folder; ``data`` target → its
            evaluation data folder (validation and test splits).
        outputs: ``"<variant>/<target>"`` → the score CSV to write.
        lambda_choice: ``dataset`` (the paper) or ``target`` (a deviation).
        metric: the validation score λ is chosen on (default: the kind's main metric;
            NusaX: ``f1``, the macro F1).
    """

    model: str
    task: str
    kind: str
    seed: int
    backbone: str
    task_dir: str
    source: str
    source_dir: str
    targets: Mapping[str, str]
    data: Mapping[str, str]
    grid: Sequence[float]
    outputs: Mapping[str, str]
    variants: Sequence[str] = tuple(VARIANTS)
    lambda_choice: str = "dataset"
    sparsity_keep: Sequence[float] = ()
    sparsity_variants: Sequence[str] = ("tgt", "src-tgt")
    sparsity_output: str | None = None
    max_length: int = 128
    skipped: Sequence[str] = field(default_factory=tuple)
    metric: str | None = None

    def check(self) -> None:
        """The job's "bad input" refusals, before anything is loaded."""
        for slug in (*self.variants, *self.sparsity_variants):
            get_variant(slug)
        if not self.grid or any(not (lam > 0 and math.isfinite(lam)) for lam in self.grid):
            raise LangarithError(
                f"fullft λ grid {list(self.grid)} must hold numbers > 0 (λ = 0 is MODEL)"
            )
        allowed = METRICS_OF_KIND.get(self.kind, ())
        if self.metric is not None and self.metric not in allowed:
            raise LangarithError(
                f"fullft dataset {self.task!r}: metric {self.metric!r} is not one of a "
                f"{self.kind} task's {list(allowed)}"
            )
        if self.lambda_choice not in ("dataset", "target"):
            raise LangarithError(
                f"fullft lambda_choice {self.lambda_choice!r} must be 'dataset' or 'target'"
            )
        if self.source in self.targets:
            raise LangarithError(
                f"fullft dataset {self.task!r}: target {self.source!r} is its source language; "
                "drop it from the targets"
            )
        if not self.targets:
            raise LangarithError(f"fullft dataset {self.task!r} has no target with text")
        for target in self.targets:
            if target not in self.data:
                raise LangarithError(f"fullft {self.task}: no evaluation data for {target!r}")
            for slug in self.variants:
                if f"{slug}/{target}" not in self.outputs:
                    raise LangarithError(f"fullft {self.task}: no output for {slug}/{target}")
        if any(not 0 < k <= 100 for k in self.sparsity_keep):
            raise LangarithError(
                f"fullft sparsity keep {list(self.sparsity_keep)} must be in (0, 100]"
            )


class FullModelEngine(LambdaGridEngine):
    """The core's λ engine on a whole model: the live parameters are the encoder's.

    ``vectors`` holds θ0 (as θ_init) and (θ_T, θ_src, θ_tgt) labelled ``task``, ``src``,
    ``tgt``; :meth:`hold` swaps in another target's set between targets.
    """

    def __init__(self, task_model: TaskModel, vectors: LanguageVectorSet) -> None:
        self.task_model = task_model
        self.vectors = vectors
        encoder = task_model.model.base_model
        live = dict(encoder.named_parameters())
        missing = sorted(set(vectors.names) - set(live))
        if missing:
            raise LangarithError(f"the task model has no encoder parameters {missing[:5]}")
        self.live = {name: live[name] for name in vectors.names}
        self._start_state()

    def hold(self, vectors: LanguageVectorSet) -> None:
        """Evaluate merges of other vectors from now on (the next point is written anew)."""
        self.vectors = vectors
        self._current = None

    def score_merge(
        self, split: EncodedSplit, method: str, weights: Sequence[float], **params: Any
    ) -> dict[str, float]:
        """Metrics of any registered merge of the held vectors (not cached)."""
        self._current = None
        started = time.perf_counter()
        self.vectors.fill(method, list(weights), out=self.live, **params)
        self.fill_seconds += time.perf_counter() - started
        return self.run(split)


def variant_point(variant: Variant, lam: float) -> Point:
    """The engine's point of a variant at λ: task-arithmetic of (θ_T, θ_src, θ_tgt)."""
    return Point("task-arithmetic", tuple(zip(LABELS, variant.weights(lam), strict=True)))


def choose_lambdas(
    curves: Mapping[str, Mapping[float, float]], per_target: bool = False
) -> dict[str, float]:
    """λ per target (target → λ → validation score): the best mean over targets for
    every target, or each target's own best with ``per_target``."""
    if not curves:
        raise LangarithError("Cannot choose λ without validation scores")
    if per_target:
        return {target: best_lambda(curve) for target, curve in curves.items()}
    grids = {tuple(sorted(curve)) for curve in curves.values()}
    if len(grids) != 1:
        raise LangarithError("The targets' validation curves have different λ grids")
    grid = next(iter(grids))
    mean = {lam: math.fsum(curve[lam] for curve in curves.values()) / len(curves) for lam in grid}
    chosen = best_lambda(mean)
    return dict.fromkeys(curves, chosen)


class LoadedModels:
    """θ0, θ_T and θ_src, checked, and the task model; one target's set at a time."""

    def __init__(self, job: FullFtJob, device: torch.device) -> None:
        self.job, self.device = job, device
        self.sha = theta0_checksum(job.backbone)
        mlm, _ = load_backbone(job.backbone)
        self.theta0 = encoder_state(mlm)
        del mlm
        task_state, task_meta = read_model_folder(job.task_dir)
        check_vector(f"task model {job.task_dir}", task_state, task_meta, self.theta0,
                     self.sha, extra_allowed=True)  # fmt: skip
        self.task_state = task_state
        src_state, src_meta = read_model_folder(job.source_dir)
        check_vector(f"{job.source} model {job.source_dir}", src_state, src_meta, self.theta0,
                     self.sha)  # fmt: skip
        self.src_state = src_state
        labels = [str(x) for x in task_meta.get("labels") or []]
        model = load_task_classifier(job.backbone, job.kind, labels)
        prefix = f"{model.base_model_prefix}."
        with torch.no_grad():
            for name, param in model.named_parameters():
                key = name.removeprefix(prefix) if name.startswith(prefix) else name
                if key not in task_state:
                    raise LangarithError(f"task model {job.task_dir} has no tensor {key!r}")
                param.copy_(task_state[key])
                param.requires_grad_(False)
        model.to(device).eval()
        tokenizer = load_tokenizer(job.backbone)
        self.task_model = TaskModel(model, tokenizer, job.kind, job.task, labels or None, device)
        self.engine: FullModelEngine | None = None

    def hold(self, target: str) -> FullModelEngine:
        """The engine holding θ0, θ_T, θ_src and ``target``'s θ_tgt."""
        folder = self.job.targets[target]
        tgt_state, tgt_meta = read_model_folder(folder)
        check_vector(f"{target} model {folder}", tgt_state, tgt_meta, self.theta0, self.sha)
        names = sorted(self.theta0)
        vectors = LanguageVectorSet(
            self.theta0,
            [{n: s[n] for n in names} for s in (self.task_state, self.src_state, tgt_state)],
            labels=LABELS,
            device=self.device,
        )
        if self.engine is None:
            self.engine = FullModelEngine(self.task_model, vectors)
        else:
            self.engine.hold(vectors)
        return self.engine


def _encode(engine: FullModelEngine, job: FullFtJob, target: str, split: str) -> EncodedSplit:
    rows = read_rows(job.data[target], split)
    return engine.encode(f"{split}/{target}", rows, max_length=job.max_length)


def _row(job: FullFtJob, variant: Variant, target: str, lam, split: str, metric: str, score):
    return ScoreRow(
        scenario=variant.scenario, model=job.model, task=job.task, target=target,
        seed=job.seed, method=variant.label, adapters=f"T,{job.source},{target}",
        lam=lam, top_k=None, split=split, metric=metric, score=float(score),
    )  # fmt: skip


def run_fullft_job(job: FullFtJob, *, device: str | None = None) -> list[Path]:
    """Validation of every variant on every target, λ choices, then test and sparsity;
    writes one score CSV per (variant, target) and the job's sparsity CSV."""
    job.check()
    started = time.perf_counter()
    loaded = LoadedModels(job, pick_device(device))
    variants = [VARIANTS[slug] for slug in job.variants]
    main = job.metric or TASK_METRICS[job.kind]
    # 1. validation only: every target, every variant, every λ
    validation: dict[tuple[str, str, float | None], dict[str, float]] = {}
    for target in job.targets:
        engine = loaded.hold(target)
        split = _encode(engine, job, target, "validation")
        for variant in variants:
            for lam in job.grid if variant.searched else [None]:
                point = variant_point(variant, 0.0 if lam is None else lam)
                validation[(variant.slug, target, lam)] = engine.score(point, split)
    # 2. the choices, from validation scores alone
    chosen: dict[str, dict[str, float]] = {}
    for variant in variants:
        if variant.searched:
            curves = {
                t: {lam: validation[(variant.slug, t, lam)][main] for lam in job.grid}
                for t in job.targets
            }
            chosen[variant.slug] = choose_lambdas(curves, job.lambda_choice == "target")
    for slug, lams in chosen.items():
        log.info("fullft %s %s: chosen λ %s", job.task, slug, lams)
    # 3. test, at the chosen λ, and the sparsity curves
    rows: dict[str, list[ScoreRow]] = {}
    sparsity: list[dict[str, Any]] = []
    for target in job.targets:
        engine = loaded.hold(target)
        test = _encode(engine, job, target, "test")
        for variant in variants:
            lams = job.grid if variant.searched else [None]
            out = [
                _row(job, variant, target, lam, "validation", metric, value)
                for lam in lams
                for metric, value in sorted(validation[(variant.slug, target, lam)].items())
            ]
            lam = chosen[variant.slug][target] if variant.searched else None
            metrics = engine.score(variant_point(variant, 0.0 if lam is None else lam), test)
            out += [
                _row(job, variant, target, lam, "test", m, v) for m, v in sorted(metrics.items())
            ]
            rows[f"{variant.slug}/{target}"] = out
        for slug in job.sparsity_variants if job.sparsity_keep else ():
            variant = VARIANTS[slug]
            lam = chosen[slug][target]
            for mode, method in SPARSITY_MODES.items():
                for keep in job.sparsity_keep:
                    metrics = engine.score_merge(
                        test, method, variant.weights(lam), keep=float(keep), dense=1
                    )
                    sparsity += [
                        {
                            "model": job.model,
                            "task": job.task,
                            "seed": job.seed,
                            "target": target,
                            "variant": slug,
                            "lambda": lam,
                            "mode": mode,
                            "keep": keep,
                            "split": "test",
                            "metric": m,
                            "score": v,
                        }  # fmt: skip
                        for m, v in sorted(metrics.items())
                    ]
    written = [write_scores(rows[key], job.outputs[key]) for key in rows]
    if job.sparsity_output is not None:
        written.append(write_sparsity(sparsity, job.sparsity_output))
    engine = loaded.engine
    log.info(
        "fullft %s/%s seed %d: %d forward passes (%.1f s), fills %.2f s, total %.1f s",
        job.model, job.task, job.seed, engine.forward_passes if engine else 0,
        engine.forward_seconds if engine else 0.0, engine.fill_seconds if engine else 0.0,
        time.perf_counter() - started,
    )  # fmt: skip
    return written


def write_sparsity(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """A sparsity CSV (:data:`SPARSITY_COLUMNS`), written atomically."""
    records = (
        {**row, **{key: format_number(row[key]) for key in ("lambda", "keep", "score")}}
        for row in rows
    )
    return write_csv_records(path, SPARSITY_COLUMNS, records)
