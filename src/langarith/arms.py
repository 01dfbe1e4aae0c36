"""The arms' plug-in point: the one place the core names an arm, by string only.

An arm (X-MOD, full-model task arithmetic, TLR task adapters) registers its tables and
figures in the report registries, its final outputs in :data:`ARM_OUTPUTS` and its job
counts (for ``langarith plan``, checked against ``snakemake -n``) in
:data:`ARM_JOB_COUNTS`, from one module listed in :data:`ARM_MODULES`.
:func:`load_arms` imports those modules; ``langarith.report`` calls it once it is
loaded, so every reader of the registries (the report rules and scripts, the cost
estimate, the tests) sees the arms' entries, while no core module imports an arm.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "ARM_JOB_COUNTS",
    "ARM_MODULES",
    "ARM_OUTPUTS",
    "arm_job_counts",
    "arm_outputs",
    "load_arms",
]

#: The registration module of each arm.
ARM_MODULES: tuple[str, ...] = ("langarith.tlr.register",)

#: arm name -> ``outputs(config)``: the files ``rule all`` asks of the arm.
ARM_OUTPUTS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {}
#: arm name -> ``counts(config)``: jobs per rule the arm adds to ``snakemake -n``.
ARM_JOB_COUNTS: dict[str, Callable[[Mapping[str, Any]], dict[str, int]]] = {}


def load_arms() -> None:
    """Import every arm's registration module (idempotent: Python imports once)."""
    for name in ARM_MODULES:
        importlib.import_module(name)


def arm_outputs(config: Mapping[str, Any]) -> list[str]:
    """Every arm's final outputs for ``config`` (empty when no arm is configured)."""
    load_arms()
    return [path for outputs in ARM_OUTPUTS.values() for path in outputs(config)]


def arm_job_counts(config: Mapping[str, Any]) -> dict[str, int]:
    """Jobs per rule of every arm for ``config``."""
    load_arms()
    counts: dict[str, int] = {}
    for count in ARM_JOB_COUNTS.values():
        counts.update(count(config))
    return counts
