"""The arms' entries beside the core's registries: their final outputs and job counts.

An arm (X-MOD, full-model task arithmetic, TLR task adapters) adds its tables and
figures to the report registries and, here, its final outputs (:data:`ARM_OUTPUTS`,
what ``rule all`` asks of it) and its jobs per rule (:data:`ARM_JOB_COUNTS`, for
``langarith plan``, checked against ``snakemake -n``), all from one registration
module that :func:`langarith.arms.load_arms` imports. This module only holds the
entries, so that the core reads them without importing an arm.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ARM_JOB_COUNTS", "ARM_OUTPUTS", "arm_job_counts", "arm_outputs"]

#: arm name -> ``outputs(config)``: the files ``rule all`` asks of the arm.
ARM_OUTPUTS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {}
#: arm name -> ``counts(config)``: jobs per rule the arm adds to ``snakemake -n``.
ARM_JOB_COUNTS: dict[str, Callable[[Mapping[str, Any]], dict[str, int]]] = {}


def arm_outputs(config: Mapping[str, Any]) -> list[str]:
    """Every registered arm's final outputs for ``config``."""
    return [path for outputs in ARM_OUTPUTS.values() for path in outputs(config)]


def arm_job_counts(config: Mapping[str, Any]) -> dict[str, int]:
    """Jobs per rule of every registered arm for ``config``."""
    counts: dict[str, int] = {}
    for count in ARM_JOB_COUNTS.values():
        counts.update(count(config))
    return counts
