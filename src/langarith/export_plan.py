"""What the workflow plans for ``merge.keep``: the export folders and each one's inputs.

Split from :mod:`langarith.export` so that ``snakemake -n`` (``rules/common.smk`` and
``rules/merge.smk`` call these for every job they plan) does not import torch with the
merge code: the planner stays at a few pure functions over the evaluation plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langarith import LangarithError
from langarith.evaluate.jobs import ScoreJob
from langarith.evaluate.scenarios import SCENARIOS, find_job, plan_jobs
from langarith.paths import EXPORT_DIR, in_setup

__all__ = ["keep_inputs", "keep_method", "keep_outputs"]


def _merged_methods(job: ScoreJob) -> list[str]:
    """The job's merged methods: its λ curves and its N-way weight searches."""
    return list(dict.fromkeys([c.method for c in job.curves] + [s.method for s in job.searches]))


def _kept(config: Mapping[str, Any]) -> dict[ScoreJob, str | None]:
    """The evaluation jobs ``merge.keep`` names, each with the entry's ``method`` (None: the
    job's one merged method); a triple that matches none is refused."""
    keep = (config.get("merge") or {}).get("keep") or []
    kept: dict[ScoreJob, str | None] = {}
    for entry in keep:
        scenario = str(entry["scenario"])
        if scenario not in SCENARIOS:
            raise LangarithError(
                f"merge.keep entry {dict(entry)}: unknown scenario {scenario!r}; "
                f"must be one of {sorted(SCENARIOS)}"
            )
        method = entry.get("method")
        matching = [
            job
            for job in plan_jobs(config, [scenario])
            if job.model == entry["model"]
            and job.target == entry["target"]
            and entry.get("task") in (None, job.task)
            and entry.get("seed") in (None, job.seed)
            and (method in _merged_methods(job) if method else len(_merged_methods(job)) == 1)
        ]
        if not matching:
            raise LangarithError(
                f"merge.keep entry {dict(entry)}: the config plans no {scenario} score file "
                "with one merged curve (λ search) for it, nor with the entry's method; check "
                "its scenario, model, target, task and seed against scenarios, models and the "
                "tasks' targets, and name the method (e.g. LA-2) for a file of several"
            )
        for job in matching:
            if job in kept and kept[job] != method:
                raise LangarithError(
                    f"merge.keep keeps {job.output} with methods {kept[job]!r} and {method!r}; "
                    "its export folder holds one"
                )
            kept[job] = method
    return kept


def _kept_jobs(config: Mapping[str, Any]) -> list[ScoreJob]:
    """The evaluation jobs that ``merge.keep`` names; a triple that matches none is refused."""
    return list(_kept(config))


def keep_method(config: Mapping[str, Any], wildcards: Any) -> str:
    """The ``method`` of the ``merge.keep`` entry behind an export folder ("" if none)."""
    job = find_job(
        config, wildcards.scenario, wildcards.model, wildcards.task, wildcards.target,
        wildcards.seed,
    )  # fmt: skip
    return _kept(config).get(job) or ""


def keep_outputs(config: Mapping[str, Any]) -> list[str]:
    """The exported folders ``merge.keep`` asks for (for ``rule all``)."""
    return [
        in_setup(
            EXPORT_DIR.format(
                scenario=job.scenario,
                model=job.model,
                task=job.task,
                target=job.target,
                seed=job.seed,
            ),
            config,
        )  # fmt: skip
        for job in _kept_jobs(config)
    ]


def keep_inputs(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Named inputs of the ``export_adapter`` rule: the score CSV, θ_init, the adapters."""
    job = find_job(
        config, wildcards.scenario, wildcards.model, wildcards.task, wildcards.target,
        wildcards.seed,
    )  # fmt: skip
    return {"scores": job.output, "init": job.init, "adapters": [d for _, d in job.adapters]}
