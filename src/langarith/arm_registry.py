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
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ARM_COSTS",
    "ARM_JOB_COUNTS",
    "ARM_OUTPUTS",
    "ARM_PAPER_TASKS",
    "ARM_SCORES",
    "ArmCost",
    "ArmJobs",
    "ArmSize",
    "ArmWork",
    "arm_costs",
    "arm_job_counts",
    "arm_jobs",
    "arm_outputs",
    "arm_paper_tasks",
    "arm_scores",
]


@dataclass(frozen=True)
class ArmJobs:
    """An arm's jobs: its own rules' counts, and the data folders, (model, language)
    corpora and core language adapters (model, language, seed) it needs, which count
    once with the core's own (a corpus the core tokenizes anyway is not a second
    ``tokenize_corpus`` job; an adapter of a language outside ``languages:`` that the
    arm's inputs pull is one more ``train_language_adapter`` job)."""

    counts: dict[str, int]
    data: frozenset[str] = frozenset()
    corpora: frozenset[tuple[str, str]] = frozenset()
    language_adapters: frozenset[tuple[str, str, int]] = frozenset()


@dataclass(frozen=True)
class ArmWork:
    """One line of an arm's training or evaluation work for ``langarith plan``: its
    jobs, optimizer steps (0: forward only) and tokens, and which measured rate turns
    the tokens into GPU-hours (``rate``: ``language``, ``task`` or ``evaluation``, the
    throughputs of ``langarith plan``)."""

    label: str
    jobs: int
    steps: int
    tokens: int
    formula: str
    rate: str


@dataclass(frozen=True)
class ArmSize:
    """One line of an arm's disk (``files``, ``bytes``) or peak GPU memory (``bytes``)."""

    label: str
    bytes: int
    note: str
    files: int = 0


@dataclass(frozen=True)
class ArmCost:
    """What an arm adds to ``langarith plan``'s work, disk and memory sections."""

    work: tuple[ArmWork, ...] = ()
    disk: tuple[ArmSize, ...] = ()
    memory: tuple[ArmSize, ...] = ()


#: arm name -> ``outputs(config)``: the files ``rule all`` asks of the arm.
ARM_OUTPUTS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {}
#: arm name -> ``counts(config)``: jobs per rule the arm adds to ``snakemake -n``, as a
#: plain mapping or as :class:`ArmJobs` when the arm also reads the core's data/corpora.
ARM_JOB_COUNTS: dict[str, Callable[[Mapping[str, Any]], Mapping[str, int] | ArmJobs]] = {}
#: arm name -> ``cost(config)``: the arm's work, disk and memory (``langarith plan``).
ARM_COSTS: dict[str, Callable[[Mapping[str, Any]], ArmCost]] = {}
#: arm name -> ``scores(config)``: the arm's score CSVs, which ``paper_comparison`` reads
#: to set the arm's runs beside its published numbers.
ARM_SCORES: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {}
#: arm name -> ``tasks(config)``: scenario -> {the arm's task: the dataset it is scored
#: on}, for arms whose task names are their own config keys (``paper_comparison``
#: matches them to the dataset a paper names).
ARM_PAPER_TASKS: dict[str, Callable[[Mapping[str, Any]], dict[str, dict[str, str]]]] = {}


def arm_outputs(config: Mapping[str, Any]) -> list[str]:
    """Every registered arm's final outputs for ``config``."""
    return [path for outputs in ARM_OUTPUTS.values() for path in outputs(config)]


def arm_job_counts(config: Mapping[str, Any]) -> dict[str, int]:
    """Jobs per rule of every registered arm for ``config``."""
    counts: dict[str, int] = {}
    for jobs in arm_jobs(config):
        counts.update(jobs.counts)
    return counts


def arm_costs(config: Mapping[str, Any]) -> list[ArmCost]:
    """Every registered arm's cost for ``config`` (arms that are off add nothing)."""
    return [cost(config) for cost in ARM_COSTS.values()]


def arm_scores(config: Mapping[str, Any]) -> list[str]:
    """Every registered arm's score CSVs for ``config``."""
    return [path for scores in ARM_SCORES.values() for path in scores(config)]


def arm_paper_tasks(config: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Scenario -> {task: dataset} of every registered arm."""
    found: dict[str, dict[str, str]] = {}
    for tasks in ARM_PAPER_TASKS.values():
        for scenario, mapping in tasks(config).items():
            found.setdefault(scenario, {}).update(mapping)
    return found


def arm_jobs(config: Mapping[str, Any]) -> list[ArmJobs]:
    """Every registered arm's jobs for ``config``, each as :class:`ArmJobs`."""
    jobs = []
    for count in ARM_JOB_COUNTS.values():
        found = count(config)
        jobs.append(found if isinstance(found, ArmJobs) else ArmJobs(dict(found)))
    return jobs
