"""Label-free λ choice: which jobs compute it, their inputs, and their CSV files.

The evaluation jobs of the scenarios listed in the config's ``label_free.scenarios``
run under rule ``lambda_grid_label_free`` (``rules/evaluate.smk``) instead of
``lambda_grid``: the same job, the same score CSV, plus the per-λ signals of the
configured selectors (:mod:`langarith.evaluate.selectors`), each selector's λ and the
test score there, in ``results/label_free/<scenario>/<model>/<task>/<target>/seed<s>.csv``
(the ``label_free`` table puts the two side by side).

Inside the evaluation job rather than a job of its own, because that job already has
every λ's merged weights in place and runs a validation pass for each: the entropy
selector reads those passes' logits (no pass of its own), and a separate job would pay
a process start and a model load per job, which on the demo are several times the
signals' own cost (README, "Choosing λ without labels").

This module is planning and files only (no torch): the signals are
:mod:`langarith.evaluate.label_free_run`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from langarith import LangarithError
from langarith.evaluate.jobs import ScoreJob
from langarith.evaluate.scenarios import SCENARIOS, job_inputs, plan_jobs
from langarith.evaluate.score_files import format_number, read_whole_csv
from langarith.evaluate.selectors import SELECTORS, signals_of
from langarith.io import OutputKind, write_csv_records
from langarith.paths import DATA_DIR, LABEL_FREE_CSV, TOKENS_DIR, in_setup
from langarith.settings import language_settings

__all__ = [
    "LABEL_FREE_COLUMNS",
    "LabelFreeRow",
    "LabelFreeSettings",
    "check_label_free",
    "label_free_inputs",
    "label_free_jobs",
    "label_free_outputs",
    "label_free_params",
    "label_free_scenarios",
    "label_free_settings",
    "other_scenarios",
    "output_of",
    "scenario_constraint",
    "read_label_free",
    "write_label_free",
]

#: Columns of a label-free CSV. ``kind`` ``signal``: ``metric`` is the signal, ``value``
#: its value at ``lam`` (no selector). ``kind`` ``choice``: ``selector`` picked ``lam``,
#: ``value`` is the test score in ``metric`` there.
LABEL_FREE_COLUMNS = (
    "scenario",
    "model",
    "task",
    "target",
    "seed",
    "method",
    "adapters",
    "selector",
    "lam",
    "kind",
    "metric",
    "value",
)

#: Defaults of the ``label_free`` block (the schema states the same).
DEFAULT_BLOCKS = 100
DEFAULT_MASK_SEED = 0


def label_free_kind() -> OutputKind:
    """A label-free CSV as an output: an earlier one is recognised by its header line."""
    return OutputKind("label-free λ table", is_dir=False, header=",".join(LABEL_FREE_COLUMNS))


@dataclass(frozen=True)
class LabelFreeSettings:
    """The ``label_free`` block: which selectors, for which scenarios, on how much text."""

    selectors: tuple[str, ...]
    scenarios: tuple[str, ...]
    blocks: int
    mask_seed: int


def label_free_settings(config: Mapping[str, Any]) -> LabelFreeSettings:
    """The config's ``label_free`` block with its defaults (no scenario: off)."""
    block = dict(config.get("label_free") or {})
    return LabelFreeSettings(
        selectors=tuple(str(s) for s in block.get("selectors") or SELECTORS),
        scenarios=tuple(str(s) for s in block.get("scenarios") or ()),
        blocks=int(block.get("blocks") or DEFAULT_BLOCKS),
        mask_seed=int(block.get("mask_seed") or DEFAULT_MASK_SEED),
    )


def check_label_free(config: Mapping[str, Any]) -> None:
    """Errors the schema cannot express, before any job runs.

    Every selector is registered, every listed scenario is configured, and with
    ``mlm_loss`` every target has a corpus (it is in ``languages``), since its
    validation text is what the merged adapter is scored on.
    """
    settings = label_free_settings(config)
    unknown = [name for name in settings.selectors if name not in SELECTORS]
    if unknown:
        raise LangarithError(
            f"label_free.selectors: unknown selector(s) {unknown}; must be among {list(SELECTORS)}"
        )
    if not settings.scenarios:
        return
    configured = set(config.get("scenarios") or {})
    missing = [s for s in settings.scenarios if s not in configured]
    if missing:
        raise LangarithError(
            f"label_free.scenarios lists {missing}, which the config does not run; add them "
            f"under scenarios or remove them (configured: {sorted(configured)})"
        )
    if "mlm_loss" in signals_of(settings.selectors):
        languages = set(config.get("languages") or ())
        no_text = sorted({j.target for j in label_free_jobs(config)} - languages)
        if no_text:
            raise LangarithError(
                f"label_free: selector mlm_loss needs target-language text, but target(s) "
                f"{no_text} are not in languages (no corpus); add them or drop mlm_loss"
            )


def label_free_jobs(config: Mapping[str, Any]) -> list[ScoreJob]:
    """The evaluation jobs whose λ the selectors choose too: those with a curve."""
    settings = label_free_settings(config)
    if not settings.scenarios:
        return []
    return [job for job in plan_jobs(config, settings.scenarios) if job.curves]


def output_of(job: ScoreJob, config: Mapping[str, Any]) -> str:
    """The label-free CSV of one evaluation job."""
    return in_setup(
        LABEL_FREE_CSV.format(
            scenario=job.scenario, model=job.model, task=job.task, target=job.target, seed=job.seed
        ),
        config,
    )


def label_free_outputs(config: Mapping[str, Any]) -> list[str]:
    """Every label-free CSV of the config (for ``rule all`` and ``langarith plan``)."""
    return [output_of(job, config) for job in label_free_jobs(config)]


def label_free_scenarios(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Scenarios whose evaluation jobs also choose λ without labels (rule
    ``lambda_grid_label_free``; the others stay with ``lambda_grid``)."""
    return label_free_settings(config).scenarios


def other_scenarios(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Registered scenarios that ``lambda_grid`` evaluates (those not label-free)."""
    chosen = set(label_free_scenarios(config))
    return tuple(name for name in SCENARIOS if name not in chosen)


#: A wildcard constraint no value matches (an empty one would match everything).
NO_MATCH = "(?!)"


def scenario_constraint(names: Iterable[str]) -> str:
    """The ``scenario`` wildcard constraint of a rule that evaluates ``names``."""
    names = list(names)
    return "|".join(names) if names else NO_MATCH


def label_free_inputs(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """Named inputs of ``lambda_grid_label_free``: the evaluation job's, and for
    ``mlm_loss`` the target's corpus (``text``) and its token folder (``tokens``)."""
    named = dict(job_inputs(config, wildcards))
    if "mlm_loss" in signals_of(label_free_settings(config).selectors):
        named["tokens"] = TOKENS_DIR.format(model=wildcards.model, lang=wildcards.target)
        named["text"] = DATA_DIR.format(dataset="wikipedia", lang=wildcards.target)
    return named


def label_free_params(config: Mapping[str, Any], wildcards: Any) -> dict[str, Any]:
    """The selectors' settings of one job (``LabelFreeSelection.start``): the configured
    selectors and text blocks, and the target adapter's block size and masking rate."""
    settings = label_free_settings(config)
    lang = language_settings(config, wildcards.target)
    return {
        "selectors": list(settings.selectors),
        "blocks": settings.blocks,
        "mask_seed": settings.mask_seed,
        "block_size": int(lang.block_size),
        "mlm_probability": float(lang.mlm_probability),
    }


# ----------------------------------------------------------------------------- files


@dataclass(frozen=True)
class LabelFreeRow:
    """One line of a label-free CSV (see :data:`LABEL_FREE_COLUMNS`)."""

    scenario: str
    model: str
    task: str
    target: str
    seed: int
    method: str
    adapters: str
    selector: str
    lam: float
    kind: str
    metric: str
    value: float

    def as_record(self) -> dict[str, str]:
        record = {name: str(getattr(self, name)) for name in LABEL_FREE_COLUMNS}
        record["lam"] = format_number(self.lam)
        record["value"] = format_number(self.value)
        return record


def write_label_free(rows: Iterable[LabelFreeRow], path: str | PathLike[str]) -> Path:
    """Write rows atomically; ``path`` may replace only a missing path or an earlier one."""
    records = (row.as_record() for row in rows)
    return write_csv_records(path, LABEL_FREE_COLUMNS, records, label_free_kind())


def read_label_free(path: str | PathLike[str]) -> list[LabelFreeRow]:
    """The rows of one label-free CSV; a damaged file or another format is a clear error.

    The whole-file checks (UTF-8, final newline, row lengths) are the score files', so a
    CSV cut short is refused with the same sentence before any value is parsed.
    """
    path = Path(path)
    header, records = read_whole_csv(path, "label-free CSV", "rerun the label_free rule")
    if tuple(header) != LABEL_FREE_COLUMNS:
        raise LangarithError(
            f"{path} is not a label-free CSV (header {header}, expected "
            f"{list(LABEL_FREE_COLUMNS)}); rerun the label_free rule"
        )
    rows = []
    for line, record in records:
        try:
            values: dict[str, Any] = dict(zip(header, record, strict=True))
            values["seed"] = int(values["seed"])
            values["lam"] = float(values["lam"])
            values["value"] = float(values["value"])
            rows.append(LabelFreeRow(**values))
        except (TypeError, ValueError) as err:
            raise LangarithError(f"{path}, line {line}: {err}") from err
    return rows
