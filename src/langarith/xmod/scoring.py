"""Scoring a fine-tuned X-MOD or SHARED model on its targets: the core's score CSVs.

At test time the target's module is swapped in (``set_default_language``); a language
added post hoc also brings its tokenizer and embeddings (:func:`install_added`). A
target with neither a module nor an added folder is refused naming the checkpoint's
languages. Rows go to ``results/scores/{xmod,xmod-shared}/<model>/<task>/<target>/
seed<s>.csv`` in the core's format, split ``test`` (the paper scores XQuAD and MLQA on
their full test sets), so the core's readers and tables take them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langarith.backbone.folder import load_tokenizer
from langarith.evaluate.score_files import ScoreRow, write_scores
from langarith.io import read_json
from langarith.settings import XmodFinetuneSettings
from langarith.train.task_features import encode_task, evaluate_task
from langarith.training.inputs import read_data_manifest, read_rows
from langarith.xmod.adding import install_added
from langarith.xmod.finetune import TASK_CLASSES
from langarith.xmod.model import load_xmod, module_key

__all__ = ["FULL_TEST", "METHODS", "SCENARIOS", "score_target", "score_targets", "evaluation_rows"]

#: Datasets the core splits into validation and test halves (XQuAD, 50/50) that X-MOD
#: scores on whole: both halves together are the full test set.
FULL_TEST = ("xquad",)

#: Scenario name of each arm (the score path's first folder and the CSV's column).
SCENARIOS = {"xmod": "xmod", "shared": "xmod-shared"}
#: The method column: the paper's names.
METHODS = {"xmod": "X-MOD", "shared": "SHARED"}


def evaluation_rows(data_dir: Path | str) -> list[dict]:
    """The test rows X-MOD is scored on: the test split, or for a dataset of
    :data:`FULL_TEST` the validation and test halves together (the full set)."""
    manifest = read_data_manifest(data_dir)
    rows = read_rows(data_dir, "test")
    if manifest.get("dataset") in FULL_TEST and "validation" in (manifest.get("splits") or {}):
        rows = read_rows(data_dir, "validation") + rows
    return rows


def score_target(
    task_dir: Path | str,
    data_dir: Path | str,
    target: str,
    *,
    added_dir: Path | str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Metrics of the task model in ``task_dir`` on ``target``'s test split."""
    hp = XmodFinetuneSettings.from_mapping(settings or {}, where="xmod.finetune")
    meta = read_json(Path(task_dir) / "metadata.json", "X-MOD task model metadata")
    kind, labels = str(meta["task_kind"]), list(meta["labels"])
    model = load_xmod(task_dir, TASK_CLASSES[kind])
    where = f"scoring {task_dir} on {target!r}"
    if added_dir is not None:
        tokenizer, key = install_added(model, added_dir, where)
    else:
        tokenizer, key = load_tokenizer(task_dir), module_key(model.config, target, where)
    model.set_default_language(key)
    model.eval()
    rows = evaluation_rows(data_dir)[: hp.max_eval_rows]
    encoded = encode_task(kind, rows, tokenizer, labels=labels or None, max_length=hp.max_length)
    return evaluate_task(
        model, kind, encoded, rows=rows, labels=labels or None, pad_id=tokenizer.pad_token_id
    )


def score_targets(
    task_dir: Path | str,
    targets: Mapping[str, Path | str],
    outputs: Mapping[str, Path | str],
    *,
    model: str,
    task: str,
    seed: int,
    added: Mapping[str, Path | str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Score every target (ISO code → test data folder) and write its score CSV.

    ``added`` maps the languages added post hoc to their folders; the arm (X-MOD or
    SHARED) is read from the task model's config.
    """
    added = dict(added or {})
    config = read_json(Path(task_dir) / "config.json", "X-MOD task model config")
    arm = "shared" if config.get("langarith_shared_languages") is not None else "xmod"
    written = []
    for target, data_dir in targets.items():
        metrics = score_target(
            task_dir, data_dir, target, added_dir=added.get(target), settings=settings
        )
        rows = [
            ScoreRow(
                scenario=SCENARIOS[arm],
                model=model,
                task=task,
                target=target,
                seed=seed,
                method=METHODS[arm],
                adapters=target,
                lam=None,
                top_k=None,
                split="test",
                metric=metric,
                score=float(value),
            )
            for metric, value in sorted(metrics.items())
        ]
        written.append(write_scores(rows, outputs[target]))
    return written
