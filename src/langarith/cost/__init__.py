"""The cost of a config before anything runs: ``langarith plan --configfile CONFIG``.

Modules:

* :mod:`~langarith.cost.sizes` — backbone shapes, adapter parameter counts, the
  documented sizes of the datasets;
* :mod:`~langarith.cost.estimate` — jobs per stage, training steps and tokens, disk,
  peak memory and GPU-hours (:func:`estimate_cost`, :func:`render`);
* :mod:`~langarith.cost.cli` — the ``plan`` subcommand (parser only).

The public names are imported lazily, so that building the command line stays quick.
"""

from __future__ import annotations

from langarith.cost.cli import register_cli
from langarith.lazy import lazy_getattr

_LAZY = {
    "CostEstimate": "langarith.cost.estimate",
    "Throughput": "langarith.cost.estimate",
    "estimate_cost": "langarith.cost.estimate",
    "job_counts": "langarith.cost.estimate",
    "render": "langarith.cost.estimate",
}

__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = ["register_cli", *_LAZY]
