"""Evaluation: λ search on validation data, test scores, one tidy CSV per job.

* :func:`run_job` runs one planned job (:class:`langarith.scenarios.ScoreJob`) and
  writes ``results/scores/<scenario>/<model>/<task>/<target>/seed<seed>.csv``.
* :func:`execute` is the job's logic without a model: validation, choices, then test.
* :class:`LambdaGridEngine` is the fast engine: one model, merged weights written in
  place, length-sorted batches, ``torch.inference_mode()``, cached scores.
* :func:`search_lambda` / :func:`best_lambda`: the full grid or coarse-to-fine.
* :data:`SCORE_COLUMNS`, :func:`write_scores`, :func:`read_scores`: the CSV format.
* :func:`write_vector_analysis`: cosine and sparsity tables of a backbone's adapters.

Heavy modules (torch, transformers) load on first use, so that planning code and the
command line stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "SCORE_COLUMNS",
    "LambdaGridEngine",
    "Point",
    "ScoreRow",
    "best_lambda",
    "execute",
    "read_scores",
    "register_cli",
    "run_job",
    "search_lambda",
    "write_scores",
    "write_vector_analysis",
]

_LAZY = {
    "SCORE_COLUMNS": "langarith.evaluate.scores",
    "ScoreRow": "langarith.evaluate.scores",
    "read_scores": "langarith.evaluate.scores",
    "write_scores": "langarith.evaluate.scores",
    "best_lambda": "langarith.evaluate.search",
    "search_lambda": "langarith.evaluate.search",
    "LambdaGridEngine": "langarith.evaluate.engine",
    "Point": "langarith.evaluate.engine",
    "execute": "langarith.evaluate.runner",
    "run_job": "langarith.evaluate.runner",
    "write_vector_analysis": "langarith.evaluate.vectors",
    "register_cli": "langarith.evaluate.cli",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'langarith.evaluate' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
