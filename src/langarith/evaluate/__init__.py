"""Evaluation: planned jobs, λ search on validation data, test scores, one CSV per job.

* :mod:`~langarith.evaluate.scenarios`: one planner per scenario in a registry
  (:data:`~langarith.evaluate.scenarios.SCENARIOS`), :func:`plan_jobs` and the rules'
  input functions; :mod:`~langarith.evaluate.jobs`: the :class:`ScoreJob` record.
* :func:`run_job` runs one planned job and writes
  ``results/scores/<scenario>/<model>/<task>/<target>/seed<seed>.csv``.
* :func:`execute` is the job's logic without a model: validation, choices, then test.
* :class:`LambdaGridEngine` is the fast engine: one model, merged weights written in
  place through the merge registry, length-sorted batches, ``torch.inference_mode()``,
  cached scores; :mod:`~langarith.evaluate.replay` runs its passes (a checked
  TorchScript replay and parallel lanes on a CPU).
* :func:`search_lambda` / :func:`best_lambda`: the full grid or coarse-to-fine, and the
  one rule that picks λ from a validation curve (ties go to the larger λ).
* :data:`SCORE_COLUMNS`, :func:`write_scores`, :func:`read_scores`: the CSV format.

Heavy modules (torch, transformers) load on first use of their names here, so that
planning code and the command line stay fast.
"""

from __future__ import annotations

from langarith.lazy import lazy_getattr

__all__ = [
    "SCORE_COLUMNS",
    "Baseline",
    "Curve",
    "LambdaGridEngine",
    "Point",
    "ScoreJob",
    "ScoreRow",
    "best_lambda",
    "execute",
    "find_job",
    "plan_jobs",
    "read_scores",
    "register_cli",
    "run_job",
    "search_lambda",
    "write_scores",
]

_LAZY = {
    "SCORE_COLUMNS": "langarith.evaluate.score_files",
    "ScoreRow": "langarith.evaluate.score_files",
    "read_scores": "langarith.evaluate.score_files",
    "write_scores": "langarith.evaluate.score_files",
    "Baseline": "langarith.evaluate.jobs",
    "Curve": "langarith.evaluate.jobs",
    "ScoreJob": "langarith.evaluate.jobs",
    "find_job": "langarith.evaluate.scenarios",
    "plan_jobs": "langarith.evaluate.scenarios",
    "best_lambda": "langarith.evaluate.search",
    "search_lambda": "langarith.evaluate.search",
    "LambdaGridEngine": "langarith.evaluate.lambda_engine",
    "Point": "langarith.evaluate.lambda_engine",
    "execute": "langarith.evaluate.runner",
    "run_job": "langarith.evaluate.runner",
    "register_cli": "langarith.evaluate.cli",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
