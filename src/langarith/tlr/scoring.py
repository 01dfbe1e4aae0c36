"""Test scores of TLR task adapters, and the paired t-test of each variant against MAD-X.

Inference is ``Stack(L_t, TA)`` (the target's language adapter under the task adapter,
as MAD-X), with the left-out layers of the task adapter left out of the language
adapter too (MAD-X 2.0). One job scores every variant of one (model, task, seed) on
every target: each target's test split is encoded once and every adapter pair runs
over it, so the t-test pairs the same items. Scores go to the core's score CSVs
(``results/scores/tlr-<variant>/…``, method = the paper's name, adapters = the target,
split ``test``), read by the core's readers like any scenario's; the t-tests to one CSV
per job (:data:`~langarith.paths.TLR_TTEST_CSV`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from langarith import LangarithError
from langarith.adapter_io import load_adapter_into
from langarith.backbone.folder import load_tokenizer
from langarith.data import read_split
from langarith.evaluate.model import pick_device
from langarith.evaluate.score_files import ScoreRow, write_scores
from langarith.evaluate.tasks import EncodedSplit, encode_split
from langarith.io import read_json, write_csv_records
from langarith.modeling import (
    activate_task_stack,
    load_adapter_model,
    load_language_adapter,
    quiet_transformers,
)
from langarith.task_kinds import DOC_STRIDE, TASK_MAX_LENGTH
from langarith.tlr.metrics import map_tags_to_o, paired_t_test, per_item_scores
from langarith.tlr.variants import METHOD_NAMES, scenario_name

__all__ = ["TTEST_COLUMNS", "TlrScoreJob", "job_from_lists", "score_tlr_job"]

log = logging.getLogger(__name__)

#: Columns of a t-test CSV: one row per (variant other than MAD-X, target).
TTEST_COLUMNS = (
    "model",
    "task",
    "target",
    "seed",
    "method",
    "items",
    "madx",
    "score",
    "t",
    "p",
    "significant",
)

#: The slot of the target's language adapter in the scoring model.
_LANG = "lang"


@dataclass(frozen=True)
class TlrScoreJob:
    """One scoring job: every variant's task adapter of (model, task, seed) on every target.

    ``adapters[variant][target]`` is the task-adapter folder used for ``target`` (the
    same folder for every target of a per-task variant); ``scores[variant][target]`` the
    score CSV to write. ``o_labels``: NER entity types read as O in the gold tags.
    ``inference_lang_adapters[variant][target]`` replaces the target's language adapter
    for a variant that keeps its own at inference (BAD-X's bilingual one).
    """

    model: str
    task: str
    kind: str
    seed: int
    backbone: Path
    targets: tuple[str, ...]
    lang_adapters: Mapping[str, Path]
    test_data: Mapping[str, Path]
    adapters: Mapping[str, Mapping[str, Path]]
    scores: Mapping[str, Mapping[str, Path]]
    ttest: Path
    o_labels: tuple[str, ...] = ()
    inference_lang_adapters: Mapping[str, Mapping[str, Path]] = field(default_factory=dict)

    def lang_adapter(self, variant: str, target: str) -> Path:
        """The language adapter under ``variant``'s task adapter on ``target``."""
        own = self.inference_lang_adapters.get(variant) or {}
        if target in own:
            return own[target]
        if target not in self.lang_adapters:
            raise LangarithError(
                f"TLR scoring of {self.task}: target {target} has no language adapter"
            )
        return self.lang_adapters[target]


def _ta_settings(ta_dir: Path) -> tuple[int, int, list[int]]:
    """(max_length, doc_stride, left-out layers) the task adapter was trained with."""
    meta_path = ta_dir / "metadata.json"
    meta = read_json(meta_path, "Task adapter metadata") if meta_path.exists() else {}
    hp = meta.get("hparams") or {}
    config = read_json(ta_dir / "adapter_config.json", "Task adapter config")
    leave_out = [int(x) for x in ((config.get("config") or {}).get("leave_out") or [])]
    return int(hp.get("max_length") or 0), int(hp.get("doc_stride") or DOC_STRIDE), leave_out


def _model(job: TlrScoreJob, ta_dir: Path, la_dir: Path, leave_out: list[int], device):
    """Backbone + the LA (without ``leave_out`` layers) + the task adapter."""
    with quiet_transformers():
        model = load_adapter_model(job.backbone, for_inference=True)
        load_language_adapter(model, la_dir, name=_LANG, leave_out=leave_out)
        task_name = load_adapter_into(model, ta_dir, with_head=True)
    activate_task_stack(model, task_name, _LANG)
    model.to(device).eval()
    labels = None
    if job.kind != "qa":
        id2label = model.get_labels_dict(task_name) or {}
        labels = [str(id2label[i]) for i in sorted(id2label)]
    return model, labels


def _run(model, split: EncodedSplit) -> tuple[dict[str, float], np.ndarray]:
    parts = []
    with torch.inference_mode():
        for batch in split.batches:
            parts.append(split.reduce(model(**batch.inputs), batch))
    return split.finish(parts), split.example_stats(parts)


def _rows(job: TlrScoreJob, target: str) -> list[dict[str, Any]]:
    rows = read_split(job.test_data[target], "test")
    if job.kind == "ner" and job.o_labels:
        rows = [{**r, "ner_tags": map_tags_to_o(r["ner_tags"], job.o_labels)} for r in rows]
    return rows


def score_tlr_job(job: TlrScoreJob, *, device: str | None = None) -> list[Path]:
    """Score every (variant, target) on the target's test split; write the score CSVs
    and the t-test CSV. Returns the files written."""
    if "madx" not in job.adapters:
        raise LangarithError("TLR scoring needs the MAD-X task adapter: every test is against it")
    dev = pick_device(device)
    tokenizer = load_tokenizer(job.backbone)
    written: list[Path] = []
    tests: list[dict[str, Any]] = []
    for target in job.targets:
        rows = _rows(job, target)
        encoded: dict[tuple, EncodedSplit] = {}
        items: dict[str, np.ndarray] = {}
        for variant, per_target in job.adapters.items():
            ta_dir = Path(per_target[target])
            max_length, doc_stride, leave_out = _ta_settings(ta_dir)
            la_dir = job.lang_adapter(variant, target)
            model, labels = _model(job, ta_dir, la_dir, leave_out, dev)
            key = (max_length, doc_stride, tuple(labels or ()))
            if key not in encoded:
                encoded[key] = encode_split(
                    "test",
                    rows,
                    job.kind,
                    tokenizer,
                    labels=labels,
                    max_length=max_length or TASK_MAX_LENGTH[job.kind],
                    doc_stride=doc_stride,
                    device=dev,
                )
            split = encoded[key]
            metrics, stats = _run(model, split)
            items[variant] = per_item_scores(job.kind, stats)
            main = split.main_metric
            score_rows = [
                ScoreRow(
                    scenario_name(variant),
                    job.model,
                    job.task,
                    target,
                    job.seed,
                    METHOD_NAMES[variant],
                    target,
                    None,
                    None,
                    "test",
                    metric,
                    float(value),
                )
                for metric, value in metrics.items()
                if metric == main or job.kind == "qa"
            ]
            written.append(write_scores(score_rows, job.scores[variant][target]))
            log.info("TLR %s %s %s: %s %.2f", variant, job.task, target, main, metrics[main])
        for variant, scores in items.items():
            if variant == "madx":
                continue
            test = paired_t_test(items["madx"], scores)
            tests.append(
                {
                    "model": job.model,
                    "task": job.task,
                    "target": target,
                    "seed": job.seed,
                    "method": METHOD_NAMES[variant],
                    "items": test.n,
                    "madx": round(test.mean_a, 6),
                    "score": round(test.mean_b, 6),
                    "t": round(test.t, 6),
                    "p": round(test.p, 6),
                    "significant": int(test.significant()),
                }
            )
    written.append(write_csv_records(job.ttest, TTEST_COLUMNS, tests))
    return written


def job_from_lists(
    *,
    model: str,
    task: str,
    kind: str,
    seed: int,
    backbone: str,
    targets: Sequence[str],
    lang_adapters: Mapping[str, str],
    test_data: Mapping[str, str],
    adapters: Mapping[str, Mapping[str, str]],
    scores: Mapping[str, Mapping[str, str]],
    ttest: str,
    o_labels: Sequence[str] = (),
    inference_lang_adapters: Mapping[str, Mapping[str, str]] | None = None,
) -> TlrScoreJob:
    """A :class:`TlrScoreJob` from the plain strings a Snakemake rule passes."""
    return TlrScoreJob(
        model,
        task,
        kind,
        int(seed),
        Path(backbone),
        tuple(targets),
        {k: Path(v) for k, v in lang_adapters.items()},
        {k: Path(v) for k, v in test_data.items()},
        {v: {t: Path(p) for t, p in d.items()} for v, d in adapters.items()},
        {v: {t: Path(p) for t, p in d.items()} for v, d in scores.items()},
        Path(ttest),
        tuple(o_labels),
        {v: {t: Path(p) for t, p in d.items()} for v, d in (inference_lang_adapters or {}).items()},
    )
